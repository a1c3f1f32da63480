"""Finding and identifying products in an input directory, without reading pixels.

`scan` walks a directory recursively and returns every product it recognises: Sentinel-2
L1C/L2A SAFE (folder or zip), Sentinel-1 GRD SAFE (folder or zip) and GeoTIFF scenes (see
`geotiff`). Anything else is a *skip* with a reason naming the path, never an exception, so one
stray folder does not stop a batch. A product that is recognised but broken (malformed XML, a
GeoTIFF scene missing a band, an S1 SAFE without its measurement files: a metadata-only download)
is also a skip, with the product error as the reason.
"""

from __future__ import annotations

import logging
import re
import stat
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cloudlulc_edge.errors import CloudLULCError, ProductError
from cloudlulc_edge.io.archive import SafeArchive
from cloudlulc_edge.io.geotiff import find_geotiff_scene, scene_grid, scene_time
from cloudlulc_edge.io.s1_metadata import read_s1_metadata
from cloudlulc_edge.io.s2_safe import read_s2_metadata

__all__ = ["Product", "ScanResult", "Skipped", "identify", "scan"]

log = logging.getLogger(__name__)

_S2_SAFE = re.compile(r"^S2[ABCD]_MSIL(1C|2A)_")
_S1_SAFE = re.compile(r"^S1[ABCD]_\w{2}_GRD")
_TIME_PREFIX = re.compile(r"^(.*?\d{8}T\d{4,6})")


@dataclass(frozen=True)
class Product:
    """An identified product: enough to pair and plan, nothing read yet.

    Attributes:
        kind: ``s2_safe``, ``s1_safe``, ``s2_geotiff`` or ``s1_geotiff``.
        path: Folder, zip or file of the product.
        product_id: Product or scene name.
        sensing_time: Acquisition (start) time, ISO 8601, UTC.
        footprint: Data footprint, GeoJSON polygon in EPSG:4326.
        attrs: Kind-specific metadata (JSON values): ``crs``, ``level``, ``cloud_pct``, ``orbit``...
    """

    kind: str
    path: str
    product_id: str
    sensing_time: str
    footprint: dict[str, Any]
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def modality(self) -> str:
        """``s2`` or ``s1``."""
        return self.kind[:2]

    @property
    def time(self) -> datetime:
        """Sensing time as a datetime."""
        return datetime.fromisoformat(self.sensing_time)

    @property
    def acquisition_key(self) -> str:
        """Products with the same key are slices of one acquisition and may be mosaicked."""
        if self.kind == "s1_safe":
            return f"{self.attrs['mission']}_{self.attrs['absolute_orbit']}_{self.attrs['datatake_id']}"
        m = _TIME_PREFIX.match(self.product_id)
        return m.group(1) if m else self.product_id

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Product:
        """Inverse of `to_dict`."""
        return cls(**{k: data[k] for k in ("kind", "path", "product_id", "sensing_time", "footprint", "attrs")})


@dataclass(frozen=True)
class Skipped:
    """A path that is not (or not a usable) product, and why."""

    path: str
    reason: str


@dataclass
class ScanResult:
    """Products found by `scan`, and the paths skipped."""

    products: list[Product] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def _safe_product(path: Path) -> Product | None:
    archive = SafeArchive(path)
    name = archive.name
    if _S2_SAFE.match(name):
        m2 = read_s2_metadata(archive)
        return Product(
            "s2_safe", str(path), m2.product_id, m2.sensing_time.isoformat(), m2.footprint,
            {"crs": m2.crs.to_string(), "level": m2.level, "processing_baseline": m2.processing_baseline,
             "cloud_pct": m2.cloud_coverage_pct, "mgrs_tile": m2.mgrs_tile, "relative_orbit": m2.relative_orbit},
        )  # fmt: skip
    if _S1_SAFE.match(name):
        m1 = read_s1_metadata(archive)
        absent = [p.measurement for p in m1.polarisations.values() if not archive.exists(p.measurement)]
        if absent:  # a metadata-only download (or an incomplete one): nothing to calibrate
            what = "metadata-only product" if len(absent) == len(m1.polarisations) else "incomplete product"
            raise ProductError(f"{what}: measurement file(s) {', '.join(Path(a).name for a in absent)} missing; "
                               "download the full product to map it", path)  # fmt: skip
        return Product(
            "s1_safe", str(path), m1.product_id, m1.start_time.isoformat(), m1.footprint,
            {"mission": m1.mission, "absolute_orbit": m1.absolute_orbit, "datatake_id": m1.datatake_id,
             "pass": m1.orbit_pass, "polarisations": sorted(m1.polarisations), "ipf_version": m1.ipf_version,
             "stop_time": m1.stop_time.isoformat(), "slice_number": m1.slice_number},
        )  # fmt: skip
    return None


def identify(path: str | Path) -> Product | None:
    """Identifies the product at ``path``, or returns None if it is not one.

    Raises:
        CloudLULCError: The path looks like a product but its metadata is broken.
    """
    path = Path(path)
    if (path.is_dir() and path.name.upper().endswith(".SAFE")) or path.suffix.lower() == ".zip":
        return _safe_product(path)
    scene = find_geotiff_scene(path)
    if scene is None:
        return None
    grid = scene_grid(scene)
    return Product(
        f"{scene.modality}_geotiff", str(path), scene.name, scene_time(scene).isoformat(), grid.footprint_lonlat(),
        {"crs": grid.crs.to_string()},
    )  # fmt: skip


def scan(root: str | Path, log_skips: bool = True) -> ScanResult:
    """Finds every product under ``root`` (recursively); everything else becomes a skip.

    A ``root`` that is itself a ``.SAFE`` product folder yields that one product (with a warning:
    its partners are not searched). ``log_skips=False`` leaves the skips unlogged (``watch``
    rescans every few seconds and logs only what changes).

    Raises:
        CloudLULCError: ``root`` is not a directory.
    """
    root = Path(root)
    if not root.is_dir():
        raise CloudLULCError("input is not a directory", root)
    result = ScanResult()
    if root.name.upper().endswith(".SAFE"):  # a product given as the folder: map it alone
        log.warning("%s is itself a SAFE product: mapping it alone (no S1 partner is searched outside it); give "
                    "the folder that holds it to pair it", root)  # fmt: skip
        try:
            product = identify(root)
        except CloudLULCError as exc:
            result.skipped.append(Skipped(str(root), str(exc)))
        else:
            if product is not None:
                result.products.append(product)
            else:
                result.skipped.append(Skipped(str(root), "a .SAFE folder that is neither an S2 nor an S1 product"))
        return result
    _scan_dir(root, result, top=True)
    for s in result.skipped if log_skips else ():
        log.warning("skipped %s: %s", s.path, s.reason)
    return result


#: Folder levels below the input folder that a scan descends (deeper trees are listed as skipped).
MAX_SCAN_DEPTH = 16


def _scan_dir(folder: Path, result: ScanResult, top: bool = False, depth: int = 0,
              visited: set[tuple[int, int]] | None = None) -> None:  # fmt: skip
    """Scans one folder; ``visited`` holds the (device, inode) of every folder entered (symlink loops)."""
    visited = visited if visited is not None else set()
    try:
        info = folder.stat()
        entries = sorted(folder.iterdir())
    except OSError as exc:
        result.skipped.append(Skipped(str(folder), f"cannot list the folder ({exc.strerror or exc})"))
        return
    visited.add((info.st_dev, info.st_ino))
    for entry in entries:
        if entry.name.startswith("."):
            continue  # hidden files, and our own temporary outputs
        try:
            mode = entry.stat().st_mode
        except OSError as exc:  # a dangling symlink, a file removed meanwhile
            result.skipped.append(Skipped(str(entry), f"cannot be read ({exc.strerror or exc})"))
            continue
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # a FIFO or device would block a reader
            result.skipped.append(Skipped(str(entry), "not a regular file or folder (FIFO, socket or device)"))
            continue
        before = len(result.products)
        try:
            product = identify(entry)
        except CloudLULCError as exc:
            result.skipped.append(Skipped(str(entry), str(exc)))
            continue
        except Exception as exc:  # one product's unforeseen metadata must not stop the scan
            log.exception("unexpected error while identifying %s", entry)
            result.skipped.append(Skipped(str(entry), f"unusable input: unexpected {type(exc).__name__}: {exc}"))
            continue
        if product is not None:
            result.products.append(product)
        elif stat.S_ISDIR(mode) and not entry.name.upper().endswith(".SAFE"):
            key = (entry.stat().st_dev, entry.stat().st_ino)
            if key in visited:
                result.skipped.append(Skipped(str(entry), "a link back to a folder already scanned (symlink loop)"))
                continue
            if depth + 1 > MAX_SCAN_DEPTH:
                result.skipped.append(Skipped(str(entry), f"deeper than {MAX_SCAN_DEPTH} folder levels: not scanned"))
                continue
            n_skipped = len(result.skipped)
            _scan_dir(entry, result, depth=depth + 1, visited=visited)
            if len(result.products) == before and len(result.skipped) == n_skipped:
                result.skipped.append(
                    Skipped(str(entry), "not a product: no SAFE, zipped SAFE or GeoTIFF scene inside")
                )
        elif top or entry.suffix.lower() in (".zip", ".tif", ".tiff"):
            result.skipped.append(Skipped(str(entry), "not a recognised product file"))
