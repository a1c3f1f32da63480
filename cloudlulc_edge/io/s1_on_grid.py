"""One Sentinel-1 GRD product as calibrated backscatter on the grid of a reference raster.

`write_s1_on_grid` is the ``cloudlulc-edge s1`` command: the pipeline's S1 stage
(`s1_safe.S1SafeReader`: calibration, noise removal, multilooking, GCP or range-Doppler
geocoding, optional γ⁰ flattening) run on its own and written as a tiled float32 GeoTIFF, one
band per polarisation, linear power or dB, NaN where the product has no data or the terrain is in
layover or shadow. Operators use it to inspect what the model sees; the tests use it to compare
the pipeline's S1 with sarsen's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.windows import Window

from cloudlulc_edge.errors import OutputError, ProductError
from cloudlulc_edge.files import atomic_write
from cloudlulc_edge.io.gdal_env import gdal_env
from cloudlulc_edge.io.grid import RasterGrid
from cloudlulc_edge.io.s1_safe import S1SafeReader
from cloudlulc_edge.io.s1_terrain import TerrainCorrection

__all__ = ["S1GridRequest", "S1GridResult", "reference_grid", "write_s1_on_grid"]

#: Output rows geocoded per pass.
_STRIP_ROWS = 512


@dataclass(frozen=True)
class S1GridRequest:
    """What ``cloudlulc-edge s1`` writes.

    Attributes:
        safe: The GRD product (``.SAFE`` folder or zip).
        output: GeoTIFF to write (replaced atomically if it exists).
        like: Reference raster whose CRS, transform and size the output takes.
        terrain: Range-Doppler terrain correction (None: GCP geocoding on the ellipsoid).
        polarisations: Bands to write, in order.
        db: Write 10·log10 of the backscatter instead of linear power.
        noise_removal: Subtract the thermal-noise LUTs.
        coefficient: ``sigma0`` or ``beta0`` (radar brightness, what sarsen's GTC delivers);
            ``terrain.rtc`` gives γ⁰ whatever this says.
    """

    safe: Path
    output: Path
    like: Path
    terrain: TerrainCorrection | None = None
    polarisations: tuple[str, ...] = ("VV", "VH")
    db: bool = False
    noise_removal: bool = True
    coefficient: Literal["sigma0", "beta0"] = "sigma0"


@dataclass(frozen=True)
class S1GridResult:
    """What `write_s1_on_grid` wrote.

    Attributes:
        output: The GeoTIFF.
        width: Columns.
        height: Rows.
        valid_pct: Share of the grid with backscatter in every band.
        tags: The file's tags (radiometry, geocoding, DEM, orbit, layover/shadow share...).
        seconds: Wall time.
    """

    output: Path
    width: int
    height: int
    valid_pct: float
    tags: dict[str, str]
    seconds: float


def reference_grid(path: Path) -> RasterGrid:
    """The grid of a georeferenced raster.

    Raises:
        ProductError: It cannot be read, has no CRS, or its pixels are not square and north-up.
    """
    try:
        with rasterio.open(path) as ds:
            crs, transform, width, height = ds.crs, ds.transform, ds.width, ds.height
    except RasterioError as exc:
        raise ProductError(f"cannot read the reference raster ({exc})", path) from exc
    if crs is None:
        raise ProductError("the reference raster has no CRS", path)
    if transform.b != 0 or transform.d != 0 or not np.isclose(transform.a, -transform.e):
        raise ProductError(f"the reference grid must be north-up with square pixels, got {tuple(transform)[:6]}", path)
    return RasterGrid(crs, transform, width, height)


def write_s1_on_grid(request: S1GridRequest) -> S1GridResult:
    """Calibrates, geocodes and writes one product onto the reference grid, strip by strip.

    Raises:
        CloudLULCError: A bad product, DEM, reference raster or orbit folder (naming the file), no
            overlap with the grid, or an output that cannot be written; nothing is left behind.
    """
    start = time.perf_counter()
    grid = reference_grid(request.like)
    if not request.output.parent.is_dir():
        raise OutputError("output folder does not exist", request.output.parent)
    valid = 0
    with gdal_env():
        reader = S1SafeReader(request.safe, grid, request.polarisations, noise_removal=request.noise_removal,
                              terrain=request.terrain, coefficient=request.coefficient)  # fmt: skip
        try:
            tags: dict[str, str] = {}

            def write(tmp: Path) -> None:
                nonlocal valid, tags
                profile = {"driver": "GTiff", "width": grid.width, "height": grid.height,
                           "count": len(request.polarisations), "dtype": "float32", "nodata": np.nan,
                           "crs": grid.crs, "transform": grid.transform, "tiled": True, "blockxsize": 512,
                           "blockysize": 512, "compress": "deflate", "predictor": 3, "BIGTIFF": "IF_SAFER"}  # fmt: skip
                with rasterio.open(tmp, "w", **profile) as dst:
                    for row0 in range(0, grid.height, _STRIP_ROWS):
                        values = reader.read_linear(row0, _STRIP_ROWS)
                        valid += int(np.isfinite(values).all(axis=0).sum())
                        if request.db:
                            with np.errstate(divide="ignore", invalid="ignore"):
                                values = (10.0 * np.log10(values)).astype(np.float32)
                        dst.write(values, window=Window(0, row0, grid.width, values.shape[1]))
                    tags = {**reader.tags(), "S1_PRODUCT": reader.meta.product_id,
                            "S1_UNITS": "dB" if request.db else "linear"}  # fmt: skip
                    dst.update_tags(**tags)
                    for band, pol in enumerate(request.polarisations, start=1):
                        dst.set_band_description(band, f"{pol} {reader.radiometry}")

            try:
                atomic_write(request.output, write)
            except (OSError, RasterioError) as exc:
                raise OutputError(f"cannot write the S1 raster ({exc})", request.output) from exc
        finally:
            reader.close()
    return S1GridResult(request.output, grid.width, grid.height, round(100.0 * valid / (grid.width * grid.height), 3),
                        tags, round(time.perf_counter() - start, 3))  # fmt: skip
