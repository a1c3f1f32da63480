"""Uniform access to a SAFE product stored as a folder or as a ``.zip`` archive.

A zipped SAFE holds ``<name>.SAFE/…`` inside the archive. XML members are read with `zipfile`;
rasters are opened by GDAL through ``/vsizip/`` paths, so nothing is ever extracted to disk.

Products come from feeds nobody here controls, so every archive and member is untrusted:

* a zip is refused when any member name is absolute or has a ``..`` component, when a member is a
  symbolic link, or when a member declares more than `MAX_MEMBER_BYTES` uncompressed (or a
  compression ratio above `MAX_RATIO` beyond 1 MB): a decompression bomb is refused from its
  directory, before a byte is inflated;
* member paths asked for by metadata (manifest ``href``s) must stay inside the product;
* XML is read at most `MAX_XML_BYTES` and parsed with ``defusedxml`` with DTDs forbidden, so
  entity expansion ("billion laughs") and external entities are refused, never expanded or fetched.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import stat
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, ParamSpec, TypeVar
from xml.etree import ElementTree
from zlib import error as zlib_error

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring

from cloudlulc_edge.errors import ProductError
from cloudlulc_edge.files import leaves_root

__all__ = ["MAX_MEMBER_BYTES", "MAX_RATIO", "MAX_XML_BYTES", "SafeArchive", "find_text", "metadata_errors", "parse_xml"]

P = ParamSpec("P")
R = TypeVar("R")
#: Largest uncompressed member a zipped product may declare (an S1 IW GRD measurement is ≈ 1 GB).
MAX_MEMBER_BYTES = 8 * 2**30
#: Largest compression ratio of a member over 1 MB (JPEG 2000 and TIFF rasters compress ≈ 1–10×).
MAX_RATIO = 200
#: Largest XML member read (SAFE metadata files are ≤ ≈ 30 MB).
MAX_XML_BYTES = 64 * 2**20
#: ``manifest.safe`` checksum names → hashlib names.
_HASHES = {"SHA3-256": "sha3_256", "MD5": "md5"}
_HASH_BLOCK = 8 * 2**20


def _unsafe_member(info: zipfile.ZipInfo) -> str | None:
    """Why a zip member must not be touched, or None."""
    name = info.filename
    if leaves_root(name) or "\\" in name or ":" in name.split("/", 1)[0]:  # also Windows separators and drives
        return "its path leaves the archive"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "it is a symbolic link"
    if info.file_size > MAX_MEMBER_BYTES:
        return f"it declares {info.file_size} bytes uncompressed (limit {MAX_MEMBER_BYTES})"
    if info.file_size > 2**20 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        return f"its compression ratio exceeds {MAX_RATIO} (a decompression bomb)"
    return None


def _check_relative(relative: str, archive: Path) -> None:
    if leaves_root(relative):
        raise ProductError(f"member path {relative!r} leaves the product; refused", archive)


@dataclass
class SafeArchive:
    """A SAFE product folder or zip, addressed by paths relative to the ``.SAFE`` root.

    Args:
        path: The ``.SAFE`` folder or the ``.zip`` that contains one.
        verify_checksums: `check_integrity` also compares each file's checksum with the one
            ``manifest.safe`` records (SHA3-256 in Sentinel-2 products, MD5 in Sentinel-1).

    Raises:
        ProductError: The path is neither, or the zip holds no ``.SAFE`` folder.
    """

    path: Path
    verify_checksums: bool = True
    _zip_root: str | None = field(default=None, init=False)
    _members: frozenset[str] = field(default_factory=frozenset, init=False)
    _sizes: dict[str, int] | None = field(default=None, init=False)
    _checksums: dict[str, tuple[str, str]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.path.is_dir():
            return
        if self.path.suffix.lower() != ".zip" or not self.path.is_file():
            raise ProductError("not a SAFE folder or a zipped SAFE", self.path)
        try:
            with zipfile.ZipFile(self.path) as zf:
                infos = zf.infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ProductError(f"unreadable zip archive ({exc})", self.path) from exc
        for info in infos:
            reason = _unsafe_member(info)
            if reason is not None:
                raise ProductError(f"zip member {info.filename!r} refused: {reason}", self.path)
        names = [i.filename for i in infos]
        roots = sorted({n.split("/", 1)[0] for n in names if n.split("/", 1)[0].upper().endswith(".SAFE")})
        if len(roots) != 1:
            raise ProductError(f"expected one <name>.SAFE folder inside the zip, found {roots or 'none'}", self.path)
        self._zip_root = roots[0]
        prefix = roots[0] + "/"
        self._members = frozenset(n[len(prefix) :] for n in names if n.startswith(prefix) and not n.endswith("/"))

    @property
    def name(self) -> str:
        """The product name without ``.SAFE`` (and without ``.zip``)."""
        root = self._zip_root if self._zip_root is not None else self.path.name
        return root[:-5] if root.upper().endswith(".SAFE") else root

    def exists(self, relative: str) -> bool:
        """Whether a member exists (relative to the ``.SAFE`` root, ``/``-separated).

        Raises:
            ProductError: ``relative`` points outside the product.
        """
        _check_relative(relative, self.path)
        if self._zip_root is None:
            return (self.path / relative).is_file()
        return relative in self._members

    def members(self) -> list[str]:
        """All file members, relative to the ``.SAFE`` root, sorted."""
        if self._zip_root is None:
            return sorted(p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file())
        return sorted(self._members)

    def glob(self, pattern: str) -> list[str]:
        """Members matching a ``/``-separated glob pattern; ``*`` never crosses a ``/``."""
        return [m for m in self.members() if _match(m, pattern)]

    @contextlib.contextmanager
    def _open(self, relative: str) -> Iterator[IO[bytes]]:
        """A member opened for binary reading, from the folder or inside the zip (raises what they raise)."""
        _check_relative(relative, self.path)
        if self._zip_root is None:
            with (self.path / relative).open("rb") as f:
                yield f
        else:
            with zipfile.ZipFile(self.path) as zf, zf.open(f"{self._zip_root}/{relative}") as member:
                yield member

    def read_bytes(self, relative: str, limit: int | None = None) -> bytes:
        """Reads a member's bytes.

        Args:
            relative: Member path.
            limit: Refuse members larger than this many bytes.

        Raises:
            ProductError: The member is missing, unreadable, outside the product or over ``limit``.
        """
        try:
            with self._open(relative) as f:
                data = f.read(limit + 1 if limit is not None else -1)
        except (KeyError, OSError, zipfile.BadZipFile, EOFError, zlib_error) as exc:
            raise ProductError(f"cannot read {relative} ({exc})", self.path) from exc
        if limit is not None and len(data) > limit:
            raise ProductError(f"{relative} is larger than {limit} bytes; refused", self.path)
        return data

    def size(self, relative: str) -> int:
        """Size of a member in bytes (uncompressed size inside archives)."""
        _check_relative(relative, self.path)
        if self._zip_root is None:
            return (self.path / relative).stat().st_size
        with zipfile.ZipFile(self.path) as zf:
            return zf.getinfo(f"{self._zip_root}/{relative}").file_size

    def check_integrity(self, relative: str) -> None:
        """Compares a member's size, and (``verify_checksums``) its checksum, with what ``manifest.safe`` records.

        JPEG 2000 decoders read truncated codestreams "successfully" (progressive layers), so a
        truncated download would otherwise map as zeros or garbage without any error; a checksum
        also catches a file of the right size that is corrupt, edited, or another band's.

        Raises:
            ProductError: The sizes or the checksums differ.
        """
        expected = self._manifest_sizes().get(relative)
        if expected is not None:
            actual = self.size(relative)
            if actual != expected:
                raise ProductError(
                    f"file is {actual} bytes but manifest.safe records {expected}: truncated or corrupt download",
                    self.display(relative),
                )
        if self.verify_checksums and relative in self._checksums:
            algorithm, recorded = self._checksums[relative]
            if self.checksum(relative, algorithm) != recorded:
                raise ProductError(f"its {algorithm} differs from the one manifest.safe records: the file is corrupt, "
                                   "edited or not this product's; download it again (--skip-checksums maps it "
                                   "anyway)", self.display(relative))  # fmt: skip

    def checksum(self, relative: str, algorithm: str) -> str:
        """Hex digest of a member (``SHA3-256`` or ``MD5``, the names ``manifest.safe`` uses), read in 8 MiB blocks.

        Raises:
            ProductError: The member cannot be read, or the algorithm is unknown.
        """
        name = _HASHES.get(algorithm.upper())
        if name is None:
            raise ProductError(f"unknown checksum {algorithm!r} in manifest.safe", self.path)
        digest = hashlib.new(name)
        try:
            with self._open(relative) as f:
                while block := f.read(_HASH_BLOCK):
                    digest.update(block)
        except (KeyError, OSError, zipfile.BadZipFile, EOFError, zlib_error) as exc:
            raise ProductError(f"cannot read {relative} ({exc})", self.path) from exc
        return digest.hexdigest()

    def incomplete_members(self) -> list[str]:
        """Members ``manifest.safe`` lists with a size that are absent or of another size (a copy in progress).

        Returns:
            Their relative paths; empty when the product is complete, or when it has no manifest
            (then only a settle time can tell).

        Raises:
            ProductError: The manifest cannot be parsed.
        """
        missing = []
        for relative, expected in sorted(self._manifest_sizes().items()):
            try:
                if self.size(relative) != expected:
                    missing.append(relative)
            except (OSError, KeyError):
                missing.append(relative)
        return missing

    def _manifest_sizes(self) -> dict[str, int]:
        if self._sizes is None:
            self._sizes = {}
            if self.exists("manifest.safe"):
                root = parse_xml(self, "manifest.safe")
                for stream in root.iter("byteStream"):
                    loc = stream.find("fileLocation")
                    if loc is None:
                        continue
                    href = loc.attrib.get("href", "").removeprefix("./")
                    if "size" in stream.attrib:
                        self._sizes[href] = int(stream.attrib["size"])
                    checksum = stream.find("checksum")
                    if (
                        checksum is not None
                        and checksum.text
                        and checksum.attrib.get("checksumName", "").upper() in _HASHES
                    ):
                        self._checksums[href] = (checksum.attrib["checksumName"], checksum.text.strip().lower())
        return self._sizes

    def gdal_path(self, relative: str) -> str:
        """The path GDAL/rasterio opens for a member (``/vsizip/`` inside archives)."""
        _check_relative(relative, self.path)
        if self._zip_root is None:
            return str(self.path / relative)
        return f"/vsizip/{self.path.resolve()}/{self._zip_root}/{relative}"

    def display(self, relative: str) -> Path:
        """A human-readable path of a member, for error messages."""
        return self.path / relative if self._zip_root is None else self.path / self._zip_root / relative


def _match(member: str, pattern: str) -> bool:
    """Anchored glob match where ``*`` does not cross ``/``."""
    import fnmatch

    parts, pats = member.split("/"), pattern.split("/")
    return len(parts) == len(pats) and all(fnmatch.fnmatchcase(p, q) for p, q in zip(parts, pats, strict=True))


def parse_xml(archive: SafeArchive, relative: str) -> ElementTree.Element:
    """Parses an XML member, with namespaces stripped from tags so paths stay readable.

    Raises:
        ProductError: The member is missing, too large, not well-formed XML, or declares a DTD or
            entities (refused unexpanded: SAFE metadata never needs them).
    """
    data = archive.read_bytes(relative, MAX_XML_BYTES)
    try:
        root = safe_fromstring(data, forbid_dtd=True)
    except ElementTree.ParseError as exc:
        raise ProductError(f"malformed XML ({exc})", archive.display(relative)) from exc
    except DefusedXmlException as exc:
        raise ProductError(f"unsafe XML refused ({type(exc).__name__}: DTDs and entities are not allowed)",
                           archive.display(relative)) from exc  # fmt: skip
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
        el.attrib = {k.split("}", 1)[-1]: v for k, v in el.attrib.items()}
    return root


def find_text(root: ElementTree.Element, path: str, source: Path) -> str:
    """Text of the first element at ``path`` (ElementTree syntax, ``.//`` allowed).

    Raises:
        ProductError: No such element, or it is empty.
    """
    el = root.find(path)
    if el is None or el.text is None or not el.text.strip():
        raise ProductError(f"metadata element {path!r} is missing or empty", source)
    return el.text.strip()


def metadata_errors(parse: Callable[P, R]) -> Callable[P, R]:
    """Turns a metadata parser's stray ``ValueError``/``IndexError``/… into a `ProductError`.

    Decorates functions whose first argument is the `SafeArchive` (and whose second, if any, is the
    member parsed): a malformed number or a missing list element in a damaged file then fails like
    any other bad metadata, naming the product or the member, instead of crashing the batch.
    """

    @functools.wraps(parse)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return parse(*args, **kwargs)
        except (ValueError, IndexError, KeyError, TypeError, AttributeError, OverflowError) as exc:
            archive = args[0] if args else None
            if not isinstance(archive, SafeArchive):
                raise
            member = args[1] if len(args) > 1 and isinstance(args[1], str) else None
            where = archive.display(member) if member else archive.path
            raise ProductError(f"malformed metadata ({type(exc).__name__}: {exc})", where) from exc

    return wrapper
