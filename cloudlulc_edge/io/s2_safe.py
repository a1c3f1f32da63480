"""Sentinel-2 L1C / L2A SAFE products (compact naming, PSD ≥ 14), folder or zip.

Radiometry comes from the product metadata, per band: ``(DN + offset) / quantification`` with
``BOA_ADD_OFFSET`` (L2A) or ``RADIO_ADD_OFFSET`` (L1C), -1000 from processing baseline 04.00
and absent before; it is never inferred from the date (`sentinel.md` §3). The model's 12 bands
(B10 dropped) are read per band from their JP2 files and resampled onto the output grid by
`BandStack`. Cloud statistics come from the scene classification layer (SCL) where present.

Resolution rule: a band is upsampled only from its native resolution. At the default 10 m, a
product whose 10/20 m band files are missing (a partial download, or the 60 m-only test fixture)
fails with a message naming the missing file; ``resolution=60`` opens it from its R60m layers.
L2A has no B08 at 60 m, so at 60 m B08 is taken from B8A (865 nm vs 842 nm, both NIR) and the
substitution is recorded in the scene tags.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
import numpy.typing as npt
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.windows import Window

from cloudlulc_edge.contract import S2_BANDS
from cloudlulc_edge.errors import ProductError
from cloudlulc_edge.io.archive import SafeArchive, find_text, metadata_errors, parse_xml
from cloudlulc_edge.io.bands import BandFile, BandStack
from cloudlulc_edge.io.grid import RasterGrid
from cloudlulc_edge.optics import SCL_CLOUD, SCL_SHADOW

__all__ = [
    "NATIVE_RESOLUTION",
    "S2SafeMetadata",
    "S2SafeReader",
    "read_s2_metadata",
]

#: Band order of ``band_id`` attributes in the MTD (0..12).
_MTD_BAND_IDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
#: Native resolution of each band, metres.
NATIVE_RESOLUTION: dict[str, int] = {
    "B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20, "B08": 10, "B8A": 20,
    "B09": 60, "B10": 60, "B11": 20, "B12": 20,
}  # fmt: skip
_COMPACT_NAME = re.compile(r"^S2[ABCD]_MSIL(1C|2A)_(\d{8}T\d{6})_N(\d{4})_R(\d{3})_T(\w{5})_(\d{8}T\d{6})$")
_BAND_FILE = re.compile(r"_(B\d[\dA])(?:_(\d{2})m)?$")


@dataclass
class S2SafeMetadata:
    """What the product metadata says, before any pixel is read.

    Attributes:
        product_id: Product name without ``.SAFE``.
        level: ``L1C`` or ``L2A``.
        spacecraft: ``Sentinel-2A`` ...
        sensing_time: Datatake sensing start (UTC, naive).
        processing_baseline: ``04.00`` ...
        quantification: DN divisor (10000).
        offsets: Additive offset per band name (0 where the MTD lists none).
        band_files: Band name → {resolution m: member path of the .jp2}, as listed in the MTD.
        granule: Member path of the granule folder.
        crs: Tile CRS from ``MTD_TL.xml``.
        geoposition: Resolution → (ULX, ULY, NCOLS, NROWS).
        footprint: Data footprint polygon (GeoJSON, EPSG:4326) from ``EXT_POS_LIST``.
        cloud_coverage_pct: ``Cloud_Coverage_Assessment`` (%).
        nodata_pct: ``NODATA_PIXEL_PERCENTAGE`` (%), if given.
        mgrs_tile: MGRS tile id (``29UNU``).
        relative_orbit: Relative orbit number.
    """

    product_id: str
    level: str
    spacecraft: str
    sensing_time: datetime
    processing_baseline: str
    quantification: float
    offsets: dict[str, float]
    band_files: dict[str, dict[int, str]]
    granule: str
    crs: CRS
    geoposition: dict[int, tuple[float, float, int, int]]
    footprint: dict[str, Any]
    cloud_coverage_pct: float | None
    nodata_pct: float | None
    mgrs_tile: str
    relative_orbit: int

    def grid(self, resolution: int) -> RasterGrid:
        """The tile grid at a resolution (10, 20 or 60 m), from ``MTD_TL.xml``.

        Raises:
            ProductError: The tile metadata has no geoposition for that resolution.
        """
        if resolution not in self.geoposition:
            raise ProductError(f"no {resolution} m geoposition in MTD_TL.xml; choose one of {sorted(self.geoposition)}")
        ulx, uly, ncols, nrows = self.geoposition[resolution]
        return RasterGrid(self.crs, Affine(resolution, 0, ulx, 0, -resolution, uly), ncols, nrows)


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.rstrip("Z").split(".")[0])


@metadata_errors
def read_s2_metadata(archive: SafeArchive) -> S2SafeMetadata:
    """Parses ``MTD_MSIL{1C,2A}.xml`` and the granule's ``MTD_TL.xml``.

    Raises:
        ProductError: Metadata is missing, malformed, or not a compact-naming S2 product.
    """
    mtd_name = next((n for n in ("MTD_MSIL2A.xml", "MTD_MSIL1C.xml") if archive.exists(n)), None)
    if mtd_name is None:
        raise ProductError(
            "no MTD_MSIL2A.xml or MTD_MSIL1C.xml at the SAFE root; only compact-naming (PSD >= 14) Sentinel-2 "
            "products are supported",
            archive.path,
        )
    src = archive.display(mtd_name)
    root = parse_xml(archive, mtd_name)
    level = "L2A" if mtd_name.endswith("L2A.xml") else "L1C"
    quant_tag = ".//BOA_QUANTIFICATION_VALUE" if level == "L2A" else ".//QUANTIFICATION_VALUE"
    offset_tag = ".//BOA_ADD_OFFSET" if level == "L2A" else ".//RADIO_ADD_OFFSET"
    offsets = {b: 0.0 for b in _MTD_BAND_IDS}
    for el in root.iterfind(offset_tag):
        band_id = int(el.attrib.get("band_id", "-1"))
        if not 0 <= band_id < len(_MTD_BAND_IDS) or el.text is None:
            raise ProductError(f"bad {offset_tag[3:]} entry band_id={band_id}", src)
        offsets[_MTD_BAND_IDS[band_id]] = float(el.text)
    band_files: dict[str, dict[int, str]] = {}
    for el in root.iterfind(".//IMAGE_FILE"):
        rel = (el.text or "").strip()
        m = _BAND_FILE.search(rel)
        if m is None:
            continue  # TCI, AOT, WVP, SCL: not model bands
        band = m.group(1)
        res = int(m.group(2)) if m.group(2) else NATIVE_RESOLUTION[band]
        band_files.setdefault(band, {})[res] = rel + ".jp2"
    if not band_files:
        raise ProductError("the MTD lists no band image files", src)
    granule = "/".join(next(iter(next(iter(band_files.values())).values())).split("/")[:2])
    tl_name = f"{granule}/MTD_TL.xml"
    tl = parse_xml(archive, tl_name)
    tl_src = archive.display(tl_name)
    crs = CRS.from_user_input(find_text(tl, ".//HORIZONTAL_CS_CODE", tl_src))
    sizes = {int(s.attrib["resolution"]): (int(find_text(s, "NCOLS", tl_src)), int(find_text(s, "NROWS", tl_src)))
             for s in tl.iterfind(".//Tile_Geocoding/Size")}  # fmt: skip
    geoposition: dict[int, tuple[float, float, int, int]] = {}
    for g in tl.iterfind(".//Tile_Geocoding/Geoposition"):
        res = int(g.attrib["resolution"])
        if res in sizes:
            ulx, uly = float(find_text(g, "ULX", tl_src)), float(find_text(g, "ULY", tl_src))
            geoposition[res] = (ulx, uly, *sizes[res])
    product_id = archive.name
    m = _COMPACT_NAME.match(product_id)
    cloud = root.find(".//Cloud_Coverage_Assessment")
    nodata = root.find(".//NODATA_PIXEL_PERCENTAGE")
    return S2SafeMetadata(
        product_id=product_id,
        level=level,
        spacecraft=find_text(root, ".//SPACECRAFT_NAME", src),
        sensing_time=_parse_time(find_text(root, ".//PRODUCT_START_TIME", src)),
        processing_baseline=find_text(root, ".//PROCESSING_BASELINE", src),
        quantification=float(find_text(root, quant_tag, src)),
        offsets=offsets,
        band_files=band_files,
        granule=granule,
        crs=crs,
        geoposition=geoposition,
        footprint=_footprint(root, src),
        cloud_coverage_pct=float(cloud.text) if cloud is not None and cloud.text else None,
        nodata_pct=float(nodata.text) if nodata is not None and nodata.text else None,
        mgrs_tile=m.group(5) if m else granule.split("_")[1][1:],
        relative_orbit=int(m.group(4)) if m else int(find_text(root, ".//SENSING_ORBIT_NUMBER", src)),
    )


def _footprint(root: ElementTree.Element, src: Path) -> dict[str, Any]:
    values = [float(v) for v in find_text(root, ".//Global_Footprint/EXT_POS_LIST", src).split()]
    if len(values) < 8 or len(values) % 2:
        raise ProductError("EXT_POS_LIST must hold lat/lon pairs", src)
    ring = [[values[i + 1], values[i]] for i in range(0, len(values), 2)]  # (lat, lon) → (lon, lat)
    if ring[0] != ring[-1]:
        ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}


class S2SafeReader:
    """Reads the model's 12 bands of a Sentinel-2 SAFE product as reflectance, in row strips.

    Args:
        path: ``.SAFE`` folder or zip.
        resolution: Output grid resolution in metres (10, 20 or 60).
        verify_checksums: Check each band file's SHA3-256 against ``manifest.safe`` (sizes always).

    Raises:
        ProductError: Metadata is bad, or a band needed at this resolution is missing on disk.
    """

    def __init__(self, path: str | Path, resolution: int = 10, verify_checksums: bool = True) -> None:
        self.archive = SafeArchive(Path(path), verify_checksums)
        self.meta = read_s2_metadata(self.archive)
        self.resolution = resolution
        self.grid = self.meta.grid(resolution)
        self.substitutions: dict[str, str] = {}
        files = [self._band_file(band) for band in S2_BANDS]
        self.offsets = [self.meta.offsets[self.substitutions.get(b, b)] for b in S2_BANDS]
        self._stack = BandStack(files, self.grid, nodata=0)
        if self.meta.level == "L1C":
            warnings.warn(
                f"{self.meta.product_id} is L1C (top of atmosphere); CloudLULC-Net is trained on L2A, expect a "
                "domain shift (tagged S2_LEVEL=L1C)",
                stacklevel=2,
            )

    def _check_dimensions(self, band: str, rel: str, resolution: int) -> None:
        """Refuses a band file whose size or pixel spacing is not its resolution's grid in ``MTD_TL.xml``.

        Catches a preview, a band of another resolution or a cropped file put in a band's place
        (the manifest sizes and checksums catch it too, where the manifest has them).

        Raises:
            ProductError: The file's width × height or pixel size differs from the grid's.
        """
        if resolution not in self.meta.geoposition:
            return
        grid = self.meta.grid(resolution)
        try:
            with rasterio.open(self.archive.gdal_path(rel)) as ds:
                shape, res, georeferenced = (ds.width, ds.height), ds.res, ds.crs is not None
        except RasterioError as exc:
            raise ProductError(f"cannot open band {band} ({exc})", self.archive.display(rel)) from exc
        if shape != (grid.width, grid.height):
            raise ProductError(f"band {band} is {shape[0]} × {shape[1]} px, but its {resolution} m grid in MTD_TL.xml is "
                               f"{grid.width} × {grid.height}: a preview, a band of another resolution or a cropped "
                               "file", self.archive.display(rel))  # fmt: skip
        if georeferenced and abs(res[0] - resolution) > 1e-6:
            raise ProductError(f"band {band} has {res[0]:g} m pixels in a {resolution} m folder",
                               self.archive.display(rel))  # fmt: skip

    def _band_file(self, band: str) -> BandFile:
        """Picks the finest on-disk file of ``band`` that the resolution rule allows."""
        allowed = max(NATIVE_RESOLUTION[band], self.resolution)
        listed = self.meta.band_files.get(band, {})
        present = {r: rel for r, rel in listed.items() if self.archive.exists(rel)}
        usable = sorted(r for r in present if r <= allowed)
        if usable:
            rel = present[usable[0]]
            self.archive.check_integrity(rel)
            self._check_dimensions(band, rel, usable[0])
            return BandFile(band, self.archive.gdal_path(rel), self.archive.display(rel))
        if band == "B08" and self.resolution >= 60:
            self.substitutions["B08"] = "B8A"
            sub = self._band_file("B8A")
            return BandFile("B08", sub.path, sub.display)
        missing = [self.archive.display(listed[r]) for r in sorted(listed) if r <= allowed]
        coarser = sorted(r for r in present if r > allowed)
        hint = f"; this product has {band} only at {coarser} m, open it with resolution={coarser[0]}" if coarser else ""
        where = f"listed in the MTD but missing on disk: {missing[-1]}" if missing else "not listed in the MTD"
        raise ProductError(f"band {band} at <= {allowed} m is {where}{hint}", self.archive.path)

    def read_dn(self, row0: int, nrows: int, col0: int = 0, ncols: int | None = None) -> npt.NDArray[np.float32]:
        """(12, n, W) float32 DNs on the output grid (0 = nodata), bands in `S2_BANDS` order."""
        return self._stack.read(row0, nrows, col0, ncols)

    def cloud_statistics(self) -> dict[str, float]:
        """Cloud fractions from the SCL layer (coarsest available), in % of valid pixels.

        ``cloud_pct`` counts SCL {8, 9, 10} (medium/high-probability cloud and thin cirrus), the
        definition of the MTD's ``Cloud_Coverage_Assessment``; ``cloud_shadow_pct`` adds cloud shadow
        {3}. Without SCL (L1C), the MTD's assessment is returned as ``cloud_pct``.

        Raises:
            ProductError: The SCL file exists but cannot be decoded.
        """
        resolution = next((r for r in (60, 20) if self.archive.exists(self.scl_member(r))), None)
        if resolution is None:
            return {"cloud_pct": float("nan") if self.meta.cloud_coverage_pct is None else self.meta.cloud_coverage_pct}
        counts = np.bincount(self.read_scl(resolution).ravel(), minlength=256).astype(np.float64)
        valid = counts[1:].sum()
        pct = 100.0 / max(valid, 1.0)
        return {
            "cloud_pct": float(counts[list(SCL_CLOUD)].sum() * pct),
            "cloud_shadow_pct": float(counts[list(SCL_CLOUD + SCL_SHADOW)].sum() * pct),
            "snow_pct": float(counts[11] * pct),
            "nodata_pct": float(100.0 * counts[0] / max(counts.sum(), 1.0)),
        }

    def scl_member(self, resolution: int) -> str:
        """Member path of the scene classification layer at ``resolution`` m (it may be absent)."""
        return f"{self.meta.granule}/IMG_DATA/R{resolution}m/{self._tile_prefix()}_SCL_{resolution}m.jp2"

    def read_scl(self, resolution: int) -> npt.NDArray[np.uint8]:
        """The whole scene classification layer at ``resolution`` m.

        Raises:
            ProductError: The SCL file is missing or cannot be decoded (naming it).
        """
        rel = self.scl_member(resolution)
        if not self.archive.exists(rel):
            raise ProductError("the scene classification layer (SCL) is missing", self.archive.display(rel))
        try:
            with rasterio.open(self.archive.gdal_path(rel)) as ds:
                scl: npt.NDArray[np.uint8] = ds.read(1).astype(np.uint8)
        except RasterioError as exc:
            raise ProductError(f"cannot decode SCL ({exc})", self.archive.display(rel)) from exc
        return scl

    def scl_rows(self, row0: int, nrows: int) -> npt.NDArray[np.uint8] | None:
        """SCL classes of grid rows ``[row0, row0 + nrows)`` (nearest neighbour), or None without an SCL (L1C).

        The SCL of the grid's resolution is used when the product has it, else the finest one
        (20 m, then 60 m).

        Raises:
            ProductError: The SCL cannot be decoded (naming it).
        """
        choices = sorted({self.resolution, 20, 60}, key=lambda r: (r != self.resolution, r))
        resolution = next((r for r in choices if self.archive.exists(self.scl_member(r))), None)
        if resolution is None:
            return None
        rel = self.scl_member(resolution)
        scale = self.resolution / resolution  # SCL pixels per grid pixel
        nrows = min(nrows, self.grid.height - row0)
        window = Window(0, row0 * scale, self.grid.width * scale, nrows * scale)
        try:
            with rasterio.open(self.archive.gdal_path(rel)) as ds:
                scl: npt.NDArray[np.uint8] = ds.read(1, window=window, out_shape=(nrows, self.grid.width),
                                                     resampling=Resampling.nearest, boundless=True,
                                                     fill_value=0).astype(np.uint8)  # fmt: skip
        except RasterioError as exc:
            raise ProductError(f"cannot decode SCL ({exc})", self.archive.display(rel)) from exc
        return scl

    def _tile_prefix(self) -> str:
        any_file = next(iter(next(iter(self.meta.band_files.values())).values()))
        return "_".join(any_file.rsplit("/", 1)[-1].split("_")[:2])

    def tags(self) -> dict[str, str]:
        """Provenance tags for the written map."""
        tags = {
            "S2_PRODUCT": self.meta.product_id,
            "S2_LEVEL": self.meta.level,
            "S2_PROCESSING_BASELINE": self.meta.processing_baseline,
            "S2_OFFSETS": ",".join(f"{o:g}" for o in self.offsets),
            "S2_RESOLUTION_M": str(self.resolution),
        }
        if self.substitutions:
            tags["S2_BAND_SUBSTITUTIONS"] = ",".join(f"{k}<-{v}" for k, v in self.substitutions.items())
        return tags

    def close(self) -> None:
        """Closes the band files."""
        self._stack.close()
