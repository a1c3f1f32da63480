"""The output grid of a scene and the strip type every reader returns.

A map lives on the Sentinel-2 grid of its scene (10 m by default). Readers deliver that grid in
row strips so that memory is bounded by strip height × scene width, never by scene height.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_geom

__all__ = ["RasterGrid", "Strip", "lattice_weights"]


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

    def pixel_size_m(self, row: float | None = None) -> tuple[float, float]:
        """Pixel width and height on the ground, metres, at grid row ``row`` (default: the middle row).

        Projected grids: the CRS units in metres (the projection's scale factor, ≤ 0.04 % in
        UTM, is ignored). Geographic grids: degrees times the WGS 84 meridian and prime-vertical
        radii at the row's latitude.
        """
        if not self.crs.is_geographic:
            factor = float(self.crs.linear_units_factor[1]) if self.crs.linear_units_factor else 1.0
            return abs(self.transform.a) * factor, abs(self.transform.e) * factor
        row = self.height / 2 if row is None else row
        lat = math.radians(self.transform.f + row * self.transform.e)
        a, e2 = 6_378_137.0, 6.694379990141317e-3
        w = 1.0 - e2 * math.sin(lat) ** 2
        meridian, prime_vertical = a * (1 - e2) / w**1.5, a / math.sqrt(w)
        rad = math.pi / 180.0
        return abs(self.transform.a) * rad * prime_vertical * math.cos(lat), abs(self.transform.e) * rad * meridian

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


def lattice_weights(n: int, nodes: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """(n, len(nodes)) weights of linear interpolation from lattice ``nodes`` (increasing indices) to ``0 … n−1``.

    A field known on a lattice of rows ``R`` and columns ``C`` is spread onto every pixel as
    ``lattice_weights(h, R) @ values @ lattice_weights(w, C).T`` (separable bilinear interpolation,
    two small matrix products).
    """
    out = np.zeros((n, nodes.size))
    if nodes.size == 1:
        out[:, 0] = 1.0
        return out
    pos = np.arange(n)
    k = np.clip(np.searchsorted(nodes, pos, side="right") - 1, 0, nodes.size - 2)
    w = (pos - nodes[k]) / (nodes[k + 1] - nodes[k])
    out[pos, k], out[pos, k + 1] = 1.0 - w, w
    return out
