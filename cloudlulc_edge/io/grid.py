"""The output grid of a scene and the strip type every reader returns.

A map lives on the Sentinel-2 grid of its scene (10 m by default). Readers deliver that grid in
row strips so that memory is bounded by strip height × scene width, never by scene height.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_geom

__all__ = ["RasterGrid", "Strip"]


@dataclass(frozen=True)
class RasterGrid:
    """A north-up raster grid.

    Attributes:
        crs: Coordinate reference system.
        transform: Affine transform of the upper-left corner (pixel corner convention).
        width: Columns.
        height: Rows.
    """

    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def resolution(self) -> float:
        """Pixel size along x, in CRS units."""
        return float(abs(self.transform.a))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` in CRS units."""
        left, top = self.transform * (0, 0)
        right, bottom = self.transform * (self.width, self.height)
        return (min(left, right), min(top, bottom), max(left, right), max(top, bottom))

    def strip_transform(self, row0: int, col0: int = 0) -> Affine:
        """Transform of a window whose upper-left pixel is ``(row0, col0)``."""
        return self.transform @ Affine.translation(col0, row0)

    def footprint_lonlat(self) -> dict[str, Any]:
        """The grid's outline as a GeoJSON polygon in EPSG:4326 (densified edges)."""
        left, bottom, right, top = self.bounds
        n = 16
        xs = np.concatenate(
            [np.linspace(left, right, n), np.full(n, right), np.linspace(right, left, n), np.full(n, left)]
        )
        ys = np.concatenate(
            [np.full(n, top), np.linspace(top, bottom, n), np.full(n, bottom), np.linspace(bottom, top, n)]
        )
        ring = [[float(x), float(y)] for x, y in zip(xs, ys, strict=True)]
        ring.append(ring[0])
        geom = transform_geom(self.crs, "EPSG:4326", {"type": "Polygon", "coordinates": [ring]})
        return dict(geom)


@dataclass
class Strip:
    """Model-ready rows of a scene on its output grid.

    Attributes:
        row0: First grid row of the strip.
        s2: (12, h, W) float32 normalised reflectance (`contract.normalise_s2_reflectance`).
        s2_valid: (h, W) bool, False outside the optical footprint (DN 0).
        s1: (2, h, W) float32 normalised backscatter, or None when the scene has no S1.
        s1_valid: (h, W) bool SAR coverage, or None when the scene has no S1.
    """

    row0: int
    s2: npt.NDArray[np.float32]
    s2_valid: npt.NDArray[np.bool_]
    s1: npt.NDArray[np.float32] | None
    s1_valid: npt.NDArray[np.bool_] | None
