"""GCP geocoding of Sentinel-1 GRD: the annotation's geolocation grid, without a DEM.

`radar_window` maps a lattice of target-grid points through the geolocation-grid GCPs (thin-plate
spline) to find the measurement window that covers the grid, plus a margin; `GcpGeocoder` warps
calibrated backscatter of that window onto the grid through the same GCPs (GDAL
``SRC_METHOD=GCP_TPS``), bilinear in linear power.

Pixel convention: the annotation's GCP ``line``/``pixel`` are image *sample indices*, i.e. the
centre of a pixel; GDAL reads GCP coordinates with (0, 0) at the *corner* of the first pixel. The
GCPs written for the warp are therefore shifted by half a pixel (``+ 0.5``), so a GCP's ground
position lands on the centre of its pixel. (GDAL's own SAFE driver passes them unshifted, which
puts its geocoded images half a pixel off the GCPs; so did this module before.)

Geocoding uses the GCPs' ellipsoid heights only; relief shifts pixels by about 1.4·Δh at 35°
incidence, so the method is tagged ``S1_GEOCODING=GCP_ELLIPSOID``; range-Doppler terrain
correction on a DEM is `cloudlulc_edge.io.s1_terrain`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import GCPTransformer
from rasterio.warp import reproject, transform
from rasterio.windows import Window

from cloudlulc_edge.io.grid import RasterGrid

__all__ = ["GEOCODING_METHOD", "WGS84", "GcpGeocoder", "radar_window"]

GEOCODING_METHOD = "GCP_ELLIPSOID"
WGS84 = CRS.from_epsg(4326)
#: Radar pixels added around the window that covers the grid.
_WINDOW_MARGIN = 64


def radar_window(
    gcps: Sequence[GroundControlPoint], lines: int, samples: int, grid: RasterGrid, margin: int = _WINDOW_MARGIN
) -> Window | None:
    """The measurement window that covers a target grid, or None when they do not overlap.

    Args:
        gcps: Geolocation-grid GCPs (row=line, col=pixel, x=lon, y=lat).
        lines: Image lines.
        samples: Image samples.
        grid: Target grid.
        margin: Radar pixels added on every side.

    Returns:
        The clipped window, or None if the grid maps entirely outside the image.
    """
    n = 17
    cols, rows = np.meshgrid(np.linspace(0, grid.width, n), np.linspace(0, grid.height, n))
    xs, ys = rasterio.transform.xy(grid.transform, rows.ravel(), cols.ravel(), offset="ul")
    lons, lats = transform(grid.crs, WGS84, list(xs), list(ys))
    with GCPTransformer(list(gcps), tps=True) as tr:
        r, c = tr.rowcol(lons, lats, op=float)
    r, c = np.asarray(r, dtype=np.float64), np.asarray(c, dtype=np.float64)
    inside = (r >= 0) & (r < lines) & (c >= 0) & (c < samples)
    # The lattice may straddle a small image corner without a sample inside: test the overlap of the boxes.
    if not inside.any() and (r.max() < 0 or r.min() >= lines or c.max() < 0 or c.min() >= samples):
        return None
    r0 = max(0, math.floor(r.min()) - margin)
    c0 = max(0, math.floor(c.min()) - margin)
    r1 = min(lines, math.ceil(r.max()) + margin)
    c1 = min(samples, math.ceil(c.max()) + margin)
    if r1 <= r0 or c1 <= c0:
        return None
    return Window(c0, r0, c1 - c0, r1 - r0)


class GcpGeocoder:
    """Geocodes calibrated radar windows onto a target grid through the annotation's GCPs.

    Args:
        gcps: The annotation's geolocation grid (row=line, col=pixel as sample indices).
        window: Radar window of the calibrated rasters.
        looks: Multilook factor of the calibrated rasters.
        grid: Target grid.
    """

    method = GEOCODING_METHOD

    def __init__(self, gcps: Sequence[GroundControlPoint], window: Window, looks: int, grid: RasterGrid) -> None:
        self.window, self.looks, self.grid = window, looks, grid
        spacing_r = max(np.diff(sorted({g.row for g in gcps})).max(initial=0.0), 1.0)
        spacing_c = max(np.diff(sorted({g.col for g in gcps})).max(initial=0.0), 1.0)
        near = [
            g for g in gcps
            if window.row_off - spacing_r <= g.row <= window.row_off + window.height + spacing_r
            and window.col_off - spacing_c <= g.col <= window.col_off + window.width + spacing_c
        ]  # fmt: skip
        chosen = near if len(near) >= 6 else list(gcps)
        # Sample index → GDAL corner-based coordinate of the multilooked window raster (module docstring).
        self.gcps = [
            GroundControlPoint(row=(g.row - window.row_off + 0.5) / looks, col=(g.col - window.col_off + 0.5) / looks,
                               x=g.x, y=g.y, z=g.z, id=g.id)
            for g in chosen
        ]  # fmt: skip

    def sample(self, files: Sequence[Path], row0: int, nrows: int, col0: int, ncols: int) -> npt.NDArray[np.float32]:
        """(P, n, w) float32 linear backscatter of a grid window, NaN where the product has no data."""
        out = np.full((len(files), nrows, ncols), np.nan, dtype=np.float32)
        for i, path in enumerate(files):
            with rasterio.open(path) as src:
                reproject(source=rasterio.band(src, 1), destination=out[i], gcps=self.gcps, src_crs=WGS84,
                          src_nodata=np.nan, dst_transform=self.grid.strip_transform(row0, col0),
                          dst_crs=self.grid.crs, dst_nodata=np.nan, resampling=Resampling.bilinear,
                          warp_mem_limit=256, SRC_METHOD="GCP_TPS")  # fmt: skip
        return out

    def tags(self) -> dict[str, str]:
        """Provenance tags of the geocoding."""
        return {"S1_GEOCODING": self.method}
