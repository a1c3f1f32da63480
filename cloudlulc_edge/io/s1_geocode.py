"""Geocoding Sentinel-1 GRD geometry: where a target grid lies in the radar image.

`radar_window` maps a lattice of target-grid points through the geolocation-grid GCPs (thin-plate
spline) to find the measurement window that covers the grid, plus a margin. The reader then warps
calibrated σ⁰ onto the grid through the same GCPs (GDAL ``SRC_METHOD=GCP_TPS``).

Geocoding uses the GCPs' ellipsoid heights only; relief shifts pixels by about 1.4·Δh at 35°
incidence, so the method is tagged ``S1_GEOCODING=GCP_ELLIPSOID``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import rasterio
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.transform import GCPTransformer
from rasterio.warp import transform
from rasterio.windows import Window

from cloudlulc_edge.io.grid import RasterGrid

__all__ = ["GEOCODING_METHOD", "WGS84", "radar_window"]

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
