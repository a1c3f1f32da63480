"""Uniform access to a SAFE product stored as a folder or as a ``.zip`` archive.

A zipped SAFE holds ``<name>.SAFE/…`` inside the archive. XML members are read with `zipfile`;
rasters are opened by GDAL through ``/vsizip/`` paths, so nothing is ever extracted to disk.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from cloudlulc_edge.errors import ProductError

__all__ = ["SafeArchive", "find_text", "parse_xml"]


@dataclass
class SafeArchive:
    """A SAFE product folder or zip, addressed by paths relative to the ``.SAFE`` root.

    Args:
        path: The ``.SAFE`` folder or the ``.zip`` that contains one.

    Raises:
        ProductError: The path is neither, or the zip holds no ``.SAFE`` folder.
    """

    path: Path
    _zip_root: str | None = field(default=None, init=False)
    _members: frozenset[str] = field(default_factory=frozenset, init=False)
    _sizes: dict[str, int] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.path.is_dir():
            return
        if self.path.suffix.lower() != ".zip" or not self.path.is_file():
            raise ProductError("not a SAFE folder or a zipped SAFE", self.path)
        try:
            with zipfile.ZipFile(self.path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError) as exc:
            raise ProductError(f"unreadable zip archive ({exc})", self.path) from exc
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
        """Whether a member exists (relative to the ``.SAFE`` root, ``/``-separated)."""
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

    def read_bytes(self, relative: str) -> bytes:
        """Reads a member's bytes.

        Raises:
            ProductError: The member is missing or unreadable.
        """
        try:
            if self._zip_root is None:
                return (self.path / relative).read_bytes()
            with zipfile.ZipFile(self.path) as zf:
                return zf.read(f"{self._zip_root}/{relative}")
        except (KeyError, OSError, zipfile.BadZipFile) as exc:
            raise ProductError(f"cannot read {relative} ({exc})", self.path) from exc

    def size(self, relative: str) -> int:
        """Size of a member in bytes (uncompressed size inside archives)."""
        if self._zip_root is None:
            return (self.path / relative).stat().st_size
        with zipfile.ZipFile(self.path) as zf:
            return zf.getinfo(f"{self._zip_root}/{relative}").file_size

    def check_integrity(self, relative: str) -> None:
        """Compares a member's size with the size ``manifest.safe`` records for it.

        JPEG 2000 decoders read truncated codestreams "successfully" (progressive layers), so a
        truncated download would otherwise map as zeros or garbage without any error.

        Raises:
            ProductError: The sizes differ (the file is truncated or corrupt).
        """
        expected = self._manifest_sizes().get(relative)
        if expected is None:
            return
        actual = self.size(relative)
        if actual != expected:
            raise ProductError(
                f"file is {actual} bytes but manifest.safe records {expected}: truncated or corrupt download",
                self.display(relative),
            )

    def _manifest_sizes(self) -> dict[str, int]:
        if self._sizes is None:
            self._sizes = {}
            if self.exists("manifest.safe"):
                root = parse_xml(self, "manifest.safe")
                for stream in root.iter("byteStream"):
                    loc = stream.find("fileLocation")
                    if loc is not None and "size" in stream.attrib:
                        href = loc.attrib.get("href", "").removeprefix("./")
                        self._sizes[href] = int(stream.attrib["size"])
        return self._sizes

    def gdal_path(self, relative: str) -> str:
        """The path GDAL/rasterio opens for a member (``/vsizip/`` inside archives)."""
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
        ProductError: The member is missing or is not well-formed XML.
    """
    data = archive.read_bytes(relative)
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise ProductError(f"malformed XML ({exc})", archive.display(relative)) from exc
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
