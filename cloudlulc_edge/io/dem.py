"""Digital elevation models as users have them: one GeoTIFF/VRT or a folder of tiles, in any vertical datum.

`Dem.open` takes a file GDAL reads (GeoTIFF, VRT, ``.hgt``) or a folder of tiles, mosaicked
through a GDAL VRT written among the run's temporary files (Copernicus DEM GLO-30
``Copernicus_DSM_COG_10_N41_00_E012_00_DEM.tif`` and SRTM ``N41E012.hgt`` names are recognised).
`Dem.heights` resamples it (bilinear) onto a window of the output grid and returns **ellipsoidal**
heights, which range-Doppler geocoding needs.

Vertical datum (``datum``): ``auto`` reads it from the DEM's CRS (a compound CRS with an
``EGM96 height`` or ``EGM2008 height`` vertical part, or a 3-D ellipsoidal CRS); a 2-D CRS is
taken as EGM2008 for Copernicus DEM names and EGM96 for SRTM names, and refused otherwise.
``ellipsoid``, ``egm96`` or ``egm2008`` override it. Geoid heights become ellipsoidal as
``h = H + N(lon, lat)`` with the undulation N bilinearly interpolated from PROJ's geoid grid
(``us_nga_egm96_15.tif`` / ``egm96_15.gtx`` — the Debian package ``proj-data`` ships the latter —
or ``us_nga_egm08_25.tif`` / ``egm08_25.gtx``), found in ``$PROJ_DATA``, ``$PROJ_LIB``,
``/usr/share/proj`` or ``/usr/local/share/proj``. A DEM whose grid is missing is refused with a
message naming the grid: silently using geoid heights as ellipsoidal ones would shift every S1
pixel by about N / tan θ (≈ 70 m in Rome).
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import escape

import numpy as np
import numpy.typing as npt
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.warp import reproject, transform_bounds
from rasterio.warp import transform as warp_transform

from cloudlulc_edge.errors import ProductError
from cloudlulc_edge.io.grid import RasterGrid, lattice_weights

__all__ = ["GEOID_GRIDS", "PROJ_DIRS", "Dem", "DemDatum", "DemError", "find_geoid_grid", "vertical_datum"]

DemDatum = Literal["auto", "ellipsoid", "egm96", "egm2008"]
#: Geoid model → grid file names PROJ uses for it (newest name first).
GEOID_GRIDS: dict[str, tuple[str, ...]] = {
    "egm96": ("us_nga_egm96_15.tif", "egm96_15.gtx"),
    "egm2008": ("us_nga_egm08_25.tif", "egm08_25.gtx"),
}
_COPERNICUS = re.compile(r"^Copernicus_DSM_(COG_)?\d+_[NS]\d+_\d+_[EW]\d+_\d+_DEM", re.IGNORECASE)
_SRTM = re.compile(r"^[NS]\d{2}[EW]\d{3}(\.SRTMGL1)?\.hgt$", re.IGNORECASE)
_WGS84 = CRS.from_epsg(4326)
#: Lattice step (pixels) of the geoid undulation over a window: N varies over hundreds of km.
_GEOID_STEP = 64


class DemError(ProductError):
    """A DEM is unreadable, does not cover the scene, or its vertical datum cannot be resolved."""


#: Where PROJ's grids live on Debian/Ubuntu (``proj-data``) and after a source install, searched after
#: ``$PROJ_DATA`` and ``$PROJ_LIB``.
PROJ_DIRS: tuple[Path, ...] = (Path("/usr/share/proj"), Path("/usr/local/share/proj"))


def _search_dirs() -> list[Path]:
    dirs = [Path(p) for var in ("PROJ_DATA", "PROJ_LIB") for p in os.environ.get(var, "").split(os.pathsep) if p]
    return [*dirs, *PROJ_DIRS]


def find_geoid_grid(model: str) -> Path:
    """The geoid grid file of ``egm96`` or ``egm2008``.

    Raises:
        DemError: No such grid in the search folders (the message names it and how to get it).
    """
    names = GEOID_GRIDS[model]
    for folder in _search_dirs():
        for name in names:
            if (folder / name).is_file():
                return folder / name
    hint = ("apt-get install proj-data (Debian/Ubuntu ship egm96_15.gtx)" if model == "egm96" else
            "download us_nga_egm08_25.tif from https://cdn.proj.org into a folder named by PROJ_DATA")  # fmt: skip
    raise DemError(f"the DEM's heights are {model.upper()} geoid heights but PROJ's grid ({' or '.join(names)}) is "
                   f"not installed: {hint}; or pass --dem-datum if the heights are something else")  # fmt: skip


def vertical_datum(crs: CRS | None, name: str) -> str | None:
    """``ellipsoid``, ``egm96``, ``egm2008`` from a DEM's CRS or its file name; None when neither tells."""
    wkt = crs.to_wkt() if crs is not None else ""
    vertical = re.search(r'VERT(?:_CS|CRS)\["([^"]+)"', wkt)
    if vertical:
        label = vertical.group(1).upper().replace(" ", "")
        if "EGM96" in label:
            return "egm96"
        if "EGM2008" in label or "EGM08" in label:
            return "egm2008"
        return f"unsupported:{vertical.group(1)}"
    if crs is not None and (crs.to_epsg() == 4979 or "ellipsoidal height" in wkt.lower()):
        return "ellipsoid"
    if _COPERNICUS.match(name):
        return "egm2008"  # Copernicus DEM heights are EGM2008 (its product handbook)
    if _SRTM.match(name):
        return "egm96"  # SRTM heights are EGM96
    return None


def _mosaic_vrt(folder: Path, dest: Path) -> Path:
    """A GDAL VRT mosaic of every DEM tile in ``folder`` (one band, the tiles' CRS and resolution).

    Raises:
        DemError: No tiles, or tiles in different CRSs or resolutions.
    """
    tiles = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".tif", ".tiff", ".hgt", ".dt2", ".vrt"))
    if not tiles:
        raise DemError("no DEM tiles (.tif, .hgt, .dt2) in the folder", folder)
    infos = []
    for path in tiles:
        try:
            with rasterio.open(path) as ds:
                infos.append((path, ds.crs, ds.transform, ds.width, ds.height, ds.nodata, ds.dtypes[0]))
        except RasterioError as exc:
            raise DemError(f"unreadable DEM tile ({exc})", path) from exc
    crs, res = infos[0][1], (infos[0][2].a, infos[0][2].e)
    for path, c, t, *_ in infos:
        if c != crs or not (math.isclose(t.a, res[0], rel_tol=1e-6) and math.isclose(t.e, res[1], rel_tol=1e-6)):
            raise DemError(f"DEM tiles differ in CRS or resolution ({path.name} vs {infos[0][0].name})", folder)
    left = min(t.c for _, _, t, *_ in infos)
    top = max(t.f for _, _, t, *_ in infos)
    right = max(t.c + w * t.a for _, _, t, w, *_ in infos)
    bottom = min(t.f + h * t.e for _, _, t, _, h, *_ in infos)
    width, height = round((right - left) / res[0]), round((bottom - top) / res[1])
    nodata = next((n for *_, n, _ in infos if n is not None), -32768.0)
    sources = "".join(
        f"<ComplexSource><SourceFilename relativeToVRT=\"0\">{escape(str(path.resolve()))}</SourceFilename>"
        f"<SourceBand>1</SourceBand><SrcRect xOff=\"0\" yOff=\"0\" xSize=\"{w}\" ySize=\"{h}\"/>"
        f"<DstRect xOff=\"{round((t.c - left) / res[0])}\" yOff=\"{round((t.f - top) / res[1])}\" xSize=\"{w}\" "
        f"ySize=\"{h}\"/><NODATA>{tile_nodata if tile_nodata is not None else nodata}</NODATA></ComplexSource>"
        for path, _, t, w, h, tile_nodata, _ in infos
    )  # fmt: skip
    dest.write_text(
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}"><SRS>{escape(crs.to_wkt())}</SRS>'
        f"<GeoTransform>{left!r}, {res[0]!r}, 0.0, {top!r}, 0.0, {res[1]!r}</GeoTransform>"
        f'<VRTRasterBand dataType="Float32" band="1"><NoDataValue>{nodata}</NoDataValue>{sources}</VRTRasterBand>'
        "</VRTDataset>\n"
    )
    return dest


@dataclass
class Dem:
    """A DEM ready to be resampled onto output windows.

    Attributes:
        path: The file GDAL opens (the VRT mosaic for a folder of tiles).
        name: What the user pointed at (file or folder name), for tags.
        datum: ``ellipsoid``, ``egm96`` or ``egm2008``: what its heights are.
        crs: Its CRS (a compound CRS's vertical part is ignored by the resampling).
        bounds_lonlat: (west, south, east, north) in degrees.
    """

    path: Path
    name: str
    datum: str
    crs: CRS
    bounds_lonlat: tuple[float, float, float, float]

    @classmethod
    def open(cls, source: str | Path, datum: DemDatum = "auto", workdir: str | Path | None = None) -> Dem:
        """Opens a DEM file or a folder of tiles.

        Raises:
            DemError: Missing or unreadable DEM, tiles that do not mosaic, an unresolved or unsupported
                vertical datum, or a geoid grid that is not installed.
        """
        source = Path(source)
        if source.is_dir():
            # The mosaic goes to the run's temporary folder, never into the user's DEM folder.
            folder = Path(workdir) if workdir is not None else Path(tempfile.gettempdir())
            key = hashlib.sha1(str(source.resolve()).encode()).hexdigest()[:12]
            path = _mosaic_vrt(source, folder / f"dem-mosaic-{key}-{os.getpid()}.vrt")
        elif source.is_file():
            path = source
        else:
            raise DemError("DEM not found", source)
        try:
            with rasterio.open(path) as ds:
                crs, bounds = ds.crs, ds.bounds
        except RasterioError as exc:
            raise DemError(f"unreadable DEM ({exc})", source) from exc
        if crs is None:
            raise DemError("the DEM has no CRS", source)
        first_tile = next((p.name for p in sorted(source.iterdir())), source.name) if source.is_dir() else source.name
        found = vertical_datum(crs, first_tile)
        resolved = found if datum == "auto" else datum
        if resolved is None:
            raise DemError("the DEM's CRS names no vertical datum and its name is not a Copernicus DEM or SRTM tile; "
                           "pass --dem-datum ellipsoid|egm96|egm2008", source)  # fmt: skip
        if resolved.startswith("unsupported:"):
            raise DemError(f"the DEM's vertical datum {resolved.split(':', 1)[1]!r} is not supported; pass --dem-datum "
                           "if you know its heights are ellipsoidal, EGM96 or EGM2008", source)  # fmt: skip
        if resolved in GEOID_GRIDS:
            find_geoid_grid(resolved)  # refuse now, not after the first strip
        west, south, east, north = transform_bounds(crs, _WGS84, *bounds)
        return cls(path, source.name, resolved, crs, (west, south, east, north))

    def heights(self, grid: RasterGrid, row0: int, nrows: int, col0: int = 0,
                ncols: int | None = None) -> npt.NDArray[np.float64]:  # fmt: skip
        """(n, w) ellipsoidal heights (m) of a grid window, NaN where the DEM has no data.

        Raises:
            DemError: The DEM cannot be read.
        """
        ncols = grid.width - col0 if ncols is None else ncols
        out = np.full((nrows, ncols), np.nan, dtype=np.float32)
        try:
            with rasterio.open(self.path) as ds:
                reproject(source=rasterio.band(ds, 1), destination=out, src_crs=self.crs,
                          src_nodata=ds.nodata, dst_transform=grid.strip_transform(row0, col0), dst_crs=grid.crs,
                          dst_nodata=np.nan, resampling=Resampling.bilinear)  # fmt: skip
        except RasterioError as exc:
            raise DemError(f"cannot resample the DEM ({exc})", self.path) from exc
        heights = out.astype(np.float64)
        if self.datum in GEOID_GRIDS:
            heights += self._undulation(grid, row0, nrows, col0, ncols)
        return heights

    def _undulation(self, grid: RasterGrid, row0: int, nrows: int, col0: int, ncols: int) -> npt.NDArray[np.float64]:
        """Geoid undulation N (m) over a grid window, from PROJ's grid on a coarse lattice, bilinear."""
        rows = np.unique(np.r_[np.arange(0, nrows, _GEOID_STEP), nrows - 1])
        cols = np.unique(np.r_[np.arange(0, ncols, _GEOID_STEP), ncols - 1])
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        xs, ys = rasterio.transform.xy(grid.strip_transform(row0, col0), rr.ravel(), cc.ravel())
        lon, lat = (np.asarray(v) for v in warp_transform(grid.crs, _WGS84, list(xs), list(ys)))
        n_nodes = _sample_geoid(find_geoid_grid(self.datum), lon, lat).reshape(rr.shape)
        # Separable bilinear spread of the lattice onto every pixel: N = R · nodes · Cᵀ.
        out: npt.NDArray[np.float64] = lattice_weights(nrows, rows) @ n_nodes @ lattice_weights(ncols, cols).T
        return out

    def covers(self, grid: RasterGrid) -> float:
        """Share of the grid's bounding box inside the DEM's bounds (a cheap first check)."""
        west, south, east, north = transform_bounds(grid.crs, _WGS84, *grid.bounds)
        dw, ds_, de, dn = self.bounds_lonlat
        overlap_x = max(0.0, min(east, de) - max(west, dw))
        overlap_y = max(0.0, min(north, dn) - max(south, ds_))
        area = max((east - west) * (north - south), 1e-12)
        return float(overlap_x * overlap_y / area)


@functools.lru_cache(maxsize=2)
def _geoid(path: Path) -> tuple[npt.NDArray[np.float64], Affine]:
    """A global geoid grid (a few MB) and its transform, read once per process."""
    with rasterio.open(path) as ds:
        return ds.read(1).astype(np.float64), ds.transform


def _sample_geoid(path: Path, lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Bilinear geoid undulation (m) from a global grid at longitudes/latitudes (degrees)."""
    grid, transform = _geoid(path)
    inverse, west = ~transform, transform.c
    # Global grids start at −180 or 0 and may go past 180: wrap the longitude into the grid's range.
    lon_w = (lon - west) % 360.0 + west
    col, row = inverse * (lon_w, lat)
    col, row = np.asarray(col) - 0.5, np.asarray(row) - 0.5  # pixel-centre indices
    c0 = np.clip(np.floor(col).astype(int), 0, grid.shape[1] - 2)
    r0 = np.clip(np.floor(row).astype(int), 0, grid.shape[0] - 2)
    fc, fr = np.clip(col - c0, 0, 1), np.clip(row - r0, 0, 1)
    top = grid[r0, c0] * (1 - fc) + grid[r0, c0 + 1] * fc
    bottom = grid[r0 + 1, c0] * (1 - fc) + grid[r0 + 1, c0 + 1] * fc
    out: npt.NDArray[np.float64] = top * (1 - fr) + bottom * fr
    return out
