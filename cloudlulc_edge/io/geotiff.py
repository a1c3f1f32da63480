"""GeoTIFF scenes: the directory convention for Sentinel-2 and Sentinel-1 exports.

A scene is either

* a **folder of per-band files** named ``<stem>_<BAND>.tif``, as BigEarthNet stores patches:
  S2 ``<stem>_B01.tif … <stem>_B12.tif`` (``B8A`` included, ``B10`` ignored; each band at its own
  resolution, all sharing one CRS and extent), S1 ``<stem>_VV.tif`` and ``<stem>_VH.tif``; or
* **one multiband file** whose band descriptions name the bands (``B01`` … ``B12`` or ``VV``, ``VH``).

Acquisition time, in order of preference: the ``ACQUISITION_TIME`` tag of the (first) file, the
BigEarthNet sidecar ``<stem>_labels_metadata.json`` (``acquisition_time`` / ``acquisition_date``),
then a ``YYYYMMDDTHHMMSS`` or ``YYYYMMDD`` group in the name.

Radiometry: S2 DNs become reflectance with ``(DN + offset) / quantification``. Both come from
the ``S2_OFFSET`` / ``S2_QUANTIFICATION`` tags, else from the band's GDAL scale/offset, else from
the caller; without any of these the reader assumes offset 0 and quantification 10000 (pre-04.00
L2A, as BigEarthNet) and warns. S1 values are σ⁰ in dB unless ``S1_UNITS=linear`` is tagged.
The S1 file must be in the same CRS as its S2 partner; it is resampled (in linear power) onto
the S2 grid.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import rasterio
from affine import Affine
from rasterio.errors import RasterioError
from rasterio.windows import Window

from cloudlulc_edge.contract import S1_POLARISATIONS, S2_BANDS
from cloudlulc_edge.errors import PairingError, ProductError
from cloudlulc_edge.io.bands import BandFile, BandStack
from cloudlulc_edge.io.grid import RasterGrid

__all__ = ["GeoTiffS1Reader", "GeoTiffS2Reader", "GeoTiffScene", "find_geotiff_scene"]

_TIME = re.compile(r"(\d{8})T(\d{4,6})")
_DATE = re.compile(r"(?<!\d)(20\d{6})(?!\d)")


@dataclass(frozen=True)
class GeoTiffScene:
    """A GeoTIFF scene found on disk.

    Attributes:
        modality: ``s2`` or ``s1``.
        name: Scene name (folder name or file stem).
        files: Band name → per-band file and 1-based band index, in channel order.
        root: The folder or file the scene was found at.
    """

    modality: str
    name: str
    files: dict[str, BandFile]
    root: Path

    def first_path(self) -> Path:
        """The file of the first channel."""
        return Path(next(iter(self.files.values())).path)


def _bands_in_folder(folder: Path, wanted: tuple[str, ...]) -> dict[str, BandFile] | None:
    found: dict[str, BandFile] = {}
    for band in wanted:
        hits = sorted(folder.glob(f"*_{band}.tif")) + sorted(folder.glob(f"*_{band}.TIF"))
        if not hits:
            return None if not found else found
        found[band] = BandFile(band, str(hits[0]), hits[0])
    return found


def _bands_in_file(path: Path) -> tuple[str, dict[str, BandFile]] | None:
    try:
        with rasterio.open(path) as ds:
            names = [(d or "").strip().upper() for d in ds.descriptions]
    except RasterioError:
        return None
    for modality, wanted in (("s2", S2_BANDS), ("s1", S1_POLARISATIONS)):
        if all(b in names for b in wanted):
            return modality, {b: BandFile(b, str(path), path, names.index(b) + 1) for b in wanted}
    return None


def find_geotiff_scene(path: Path) -> GeoTiffScene | None:
    """Recognises a GeoTIFF scene at ``path`` (a folder or a multiband file), or returns None.

    Raises:
        ProductError: A folder holds some but not all bands of a modality (named in the message).
    """
    if path.is_dir():
        for modality, wanted in (("s2", S2_BANDS), ("s1", S1_POLARISATIONS)):
            found = _bands_in_folder(path, wanted)
            if found and len(found) == len(wanted):
                return GeoTiffScene(modality, path.name, found, path)
            if found:
                missing = [b for b in wanted if b not in found]
                raise ProductError(f"{modality.upper()} GeoTIFF scene is missing band file(s) {missing}", path)
        return None
    if path.suffix.lower() in (".tif", ".tiff"):
        hit = _bands_in_file(path)
        if hit is not None:
            return GeoTiffScene(hit[0], path.stem, hit[1], path)
    return None


def scene_time(scene: GeoTiffScene) -> datetime:
    """Acquisition time of a GeoTIFF scene (see the module docstring for the order of sources).

    Raises:
        ProductError: No time can be found, or a tag or sidecar that should hold it is malformed
            (naming the file).
    """
    first = scene.first_path()
    try:
        with rasterio.open(first) as ds:
            tag = ds.tags().get("ACQUISITION_TIME")
    except RasterioError as exc:
        raise ProductError(f"cannot open ({exc})", first) from exc
    if tag:
        return _iso_time(tag.rstrip("Z"), "its ACQUISITION_TIME tag", first)
    sidecars = sorted(scene.root.glob("*_labels_metadata.json")) if scene.root.is_dir() else []
    for sidecar in sidecars:
        try:
            meta = json.loads(sidecar.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ProductError(
                f"unreadable BigEarthNet metadata sidecar ({type(exc).__name__}: {exc})", sidecar
            ) from exc
        if not isinstance(meta, dict):
            raise ProductError(f"BigEarthNet metadata sidecar is not a JSON object ({type(meta).__name__})", sidecar)
        text = meta.get("acquisition_time") or meta.get("acquisition_date")
        if text:
            return _iso_time(str(text).replace(" ", "T"), "its acquisition_time", sidecar)
    m = _TIME.search(scene.name)
    if m:
        hhmmss = m.group(2).ljust(6, "0")
        return datetime.strptime(m.group(1) + hhmmss, "%Y%m%d%H%M%S")
    m = _DATE.search(scene.name)
    if m:
        return datetime.strptime(m.group(1), "%Y%m%d")
    raise ProductError("no acquisition time: tag ACQUISITION_TIME or put YYYYMMDDTHHMMSS in the name", scene.root)


def _iso_time(text: str, what: str, path: Path) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise ProductError(f"{what} {text[:40]!r} is not an ISO 8601 time", path) from exc


def scene_grid(scene: GeoTiffScene) -> RasterGrid:
    """The grid of the finest band of a scene (its output grid).

    Raises:
        ProductError: A file cannot be opened or has no CRS.
    """
    best: RasterGrid | None = None
    for f in scene.files.values():
        try:
            with rasterio.open(f.path) as ds:
                if ds.crs is None:
                    raise ProductError("GeoTIFF has no CRS", f.display)
                grid = RasterGrid(ds.crs, ds.transform, ds.width, ds.height)
        except RasterioError as exc:
            raise ProductError(f"cannot open ({exc})", f.display) from exc
        if best is None or grid.resolution < best.resolution:
            best = grid
    assert best is not None
    return best


class GeoTiffS2Reader:
    """Sentinel-2 bands of a GeoTIFF scene as DNs on the scene grid, in row strips.

    Args:
        scene: An ``s2`` scene from `find_geotiff_scene`.
        resolution: Output resolution in metres; None keeps the finest band's grid.
        offset: DN offset to use when the files carry none.
        quantification: DN divisor to use when the files carry none.

    Raises:
        ProductError: Bands disagree in CRS or extent, or a file cannot be opened.
    """

    def __init__(
        self,
        scene: GeoTiffScene,
        resolution: float | None = None,
        offset: float | None = None,
        quantification: float | None = None,
    ) -> None:
        if scene.modality != "s2":
            raise ProductError("not a Sentinel-2 GeoTIFF scene", scene.root)
        self.scene = scene
        grid = scene_grid(scene)
        if resolution is not None and resolution != grid.resolution:
            left, bottom, right, top = grid.bounds
            grid = RasterGrid(grid.crs, Affine(resolution, 0, left, 0, -resolution, top),
                              round((right - left) / resolution), round((top - bottom) / resolution))  # fmt: skip
        self.grid = grid
        self.offsets, self.quantification, self.radiometry = self._radiometry(offset, quantification)
        self._check_domain()
        self._stack = BandStack([scene.files[b] for b in S2_BANDS], grid, nodata=0)

    def _check_domain(self) -> None:
        """Refuses reflectance (0–1) where the radiometry expects DNs (non-finite pixels are no data, not a refusal).

        Raises:
            ProductError: The red band's values are those of reflectance under a DN radiometry.
        """
        red = self.scene.files["B04"]
        values = _sample(red)
        positive = values[np.isfinite(values) & (values > 0)]
        if positive.size and self.quantification > 100 and float(np.percentile(positive, 99)) <= 2.0:
            raise ProductError(f"S2 values look like reflectance (99th percentile {np.percentile(positive, 99):.3g}), "
                               f"not DN: divided by {self.quantification:g} they would all be ≈ 0; pass "
                               "--s2-quantification 1 --s2-offset 0 (or tag S2_QUANTIFICATION=1)", red.display)  # fmt: skip

    def _radiometry(self, offset: float | None, quantification: float | None) -> tuple[list[float], float, str]:
        first = self.scene.files[S2_BANDS[0]]
        with rasterio.open(first.path) as ds:
            tags = ds.tags()
            scale, gdal_offset = ds.scales[first.index - 1], ds.offsets[first.index - 1]
        if "S2_OFFSET" in tags or "S2_QUANTIFICATION" in tags:
            values = [float(v) for v in tags.get("S2_OFFSET", "0").split(",")]
            offsets = values * len(S2_BANDS) if len(values) == 1 else values
            if len(offsets) != len(S2_BANDS):
                raise ProductError(f"S2_OFFSET has {len(values)} values; give 1 or {len(S2_BANDS)}", first.display)
            return offsets, float(tags.get("S2_QUANTIFICATION", "10000")), "tags"
        if scale not in (0.0, 1.0) or gdal_offset != 0.0:
            # reflectance = DN * scale + offset  ⇔  (DN + offset / scale) / (1 / scale)
            return [gdal_offset / scale] * len(S2_BANDS), 1.0 / scale, "gdal-scale-offset"
        if offset is not None or quantification is not None:
            return [offset or 0.0] * len(S2_BANDS), quantification or 10000.0, "user"
        warnings.warn(
            f"{self.scene.root}: no S2 radiometric offset/scale in the files or options; assuming offset 0 and "
            "quantification 10000 (processing baseline < 04.00). Pass s2_offset=-1000 for baseline >= 04.00 data.",
            stacklevel=3,
        )
        return [0.0] * len(S2_BANDS), 10000.0, "assumed"

    def read_dn(self, row0: int, nrows: int, col0: int = 0, ncols: int | None = None) -> npt.NDArray[np.float32]:
        """(12, n, W) float32 DNs on the output grid (0 = nodata)."""
        return self._stack.read(row0, nrows, col0, ncols)

    def scl_rows(self, row0: int, nrows: int) -> npt.NDArray[np.uint8] | None:
        """None: GeoTIFF scenes carry no scene classification layer."""
        return None

    def tags(self) -> dict[str, str]:
        """Provenance tags for the written map."""
        return {
            "S2_PRODUCT": self.scene.name,
            "S2_LEVEL": "GeoTIFF",
            "S2_OFFSETS": ",".join(f"{o:g}" for o in self.offsets),
            "S2_RADIOMETRY": self.radiometry,
        }

    def close(self) -> None:
        """Closes the band files."""
        self._stack.close()


def _db_to_linear(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Linear power of dB values; non-finite dB (−inf from log10(0), NaN) becomes NaN: no data, never 0 power."""
    linear: npt.NDArray[np.float32] = np.power(np.float32(10.0), x / np.float32(10.0)).astype(np.float32)
    linear[~np.isfinite(x)] = np.nan
    return linear


def _sample(band: BandFile, side: int = 256, windows: int = 8) -> npt.NDArray[np.float64]:
    """About ``side``² values of a band for its value-domain checks, nodata dropped.

    A band with overviews is read decimated from its coarsest useful overview. Without overviews a
    decimated read would decode every block of the file, and with the run's bounded block cache
    (`GDAL_CACHE_MB`) re-decode them: 7 s for the VV band of a 5490² scene (2-core AMD EPYC,
    2026-12-01). So a grid of ``windows × windows`` small windows spread over the band is read
    instead, which decodes at most a few blocks per window.

    Raises:
        ProductError: The file cannot be read.
    """
    try:
        with rasterio.open(band.path) as ds:
            if ds.overviews(band.index) or ds.height * ds.width <= 4 * side * side:
                shape = (min(side, ds.height), min(side, ds.width))
                data = ds.read(band.index, out_shape=shape, masked=True)
                return np.ma.compressed(data).astype(np.float64)
            h, w = min(ds.height, side // windows), min(ds.width, side // windows)
            rows = np.linspace(0, ds.height - h, windows).astype(int)
            cols = np.linspace(0, ds.width - w, windows).astype(int)
            parts = [np.ma.compressed(ds.read(band.index, window=Window(c, r, w, h), masked=True))
                     for r in rows for c in cols]  # fmt: skip
    except RasterioError as exc:
        raise ProductError(f"cannot read ({exc})", band.display) from exc
    return np.concatenate(parts).astype(np.float64)


class GeoTiffS1Reader:
    """Sentinel-1 σ⁰ of a GeoTIFF scene, resampled in linear power onto a partner's grid.

    Args:
        scene: An ``s1`` scene from `find_geotiff_scene`.
        grid: The S2 output grid.

    Raises:
        PairingError: The scene's CRS differs from the grid's.
        ProductError: A file cannot be opened.
    """

    def __init__(self, scene: GeoTiffScene, grid: RasterGrid) -> None:
        if scene.modality != "s1":
            raise ProductError("not a Sentinel-1 GeoTIFF scene", scene.root)
        self.scene = scene
        self.grid = grid
        own = scene_grid(scene)
        if own.crs != grid.crs:
            raise PairingError(
                f"S1 GeoTIFF CRS {own.crs} differs from its S2 partner's CRS {grid.crs}; reproject the S1 export to "
                "the S2 CRS first",
                scene.root,
            )
        first = scene.files[S1_POLARISATIONS[0]]
        with rasterio.open(first.path) as ds:
            self.units = ds.tags().get("S1_UNITS", "db").lower()
        if self.units not in ("db", "linear"):
            raise ProductError(f"S1_UNITS must be 'db' or 'linear', got {self.units!r}", first.display)
        self._check_units(first)
        self._stack = BandStack(
            [scene.files[p] for p in S1_POLARISATIONS],
            grid,
            nodata=float("nan"),
            check_extent=False,
            preprocess=_db_to_linear if self.units == "db" else None,
        )

    def _check_units(self, first: BandFile) -> None:
        """Refuses values whose statistics contradict the declared units (linear power vs dB).

        dB backscatter of land and water is mostly negative (σ⁰ −30…+5 dB); linear power is never
        negative and rarely above 1. Values are sampled from the first band (`_sample`).

        Raises:
            ProductError: dB declared (or assumed) but no value is negative and the 99th percentile is
                ≤ 2 (linear power), or linear declared with negative values (dB).
        """
        values = _sample(first)
        finite = values[np.isfinite(values) & (values != 0)]
        if finite.size < 100:
            return
        p99, negative = float(np.percentile(finite, 99)), float((finite < 0).mean())
        if self.units == "db" and negative == 0.0 and p99 <= 2.0:
            raise ProductError(f"S1 values look like linear power, not dB (none negative, 99th percentile {p99:.3g}) "
                               "and the file carries no S1_UNITS=linear tag; tag it (gdal_edit.py -mo "
                               "S1_UNITS=linear) or convert it to dB", first.display)  # fmt: skip
        if self.units == "linear" and negative > 0.01:
            raise ProductError(f"tagged S1_UNITS=linear but {100 * negative:.0f} % of the values are negative: these "
                               "are dB; drop the tag", first.display)  # fmt: skip

    def read_linear(self, row0: int, nrows: int, col0: int = 0, ncols: int | None = None) -> npt.NDArray[np.float32]:
        """(2, n, W) float32 linear backscatter as supplied, NaN where the scene has no data."""
        return self._stack.read(row0, nrows, col0, ncols)

    def tags(self) -> dict[str, str]:
        """Provenance tags for the written map."""
        return {"S1_RADIOMETRY": "as supplied", "S1_GEOCODING": "GEOTIFF_INPUT", "S1_UNITS_IN": self.units}

    def close(self) -> None:
        """Closes the files."""
        self._stack.close()
