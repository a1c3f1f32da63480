"""Range-Doppler terrain correction of Sentinel-1 GRD: where each output pixel lies in the radar image.

Backward geocoding (ESA "Guide to Sentinel-1 Geocoding", UZH-S1-GC-AD 1.10, §§3–4; as sarsen):

1. output pixel (x, y) in the target grid's CRS + its DEM height (ellipsoidal) → ECEF point P;
2. zero-Doppler time t: the root of ``f(t) = (P − S(t))·V(t)`` (the satellite S, V of `OrbitModel`),
   by Newton's method ``t ← t − f/f′``, ``f′ = (P − S)·A − |V|²``;
3. slant range ``R = |P − S(t)|``; ground range ``g = Σ_k c_k(t) (R − sr0(t))^k`` from the
   annotation's slant-to-ground-range polynomials, linear in t between them;
4. image line ``(t − t_first) / Δt`` and sample ``g / Δg``, both pixel-centre indices (line 0 is the
   first line's zero-Doppler time, sample 0 lies at ground range 0).

Doing that per output pixel would cost a Newton solve and a map-projection inverse for each of
121 M pixels of a 10980² tile. `GeometryCube` solves it exactly on a coarse lattice of the output
window (every `LATTICE_STEP` pixels) at three heights spanning the window's DEM, and interpolates:
bilinear in (x, y), quadratic in h. The image coordinates are smooth in x and y (orbit geometry)
and nearly linear in h (a height h shifts ground range by ≈ h / tan θ), so the interpolation
error is far below a pixel (`tests/io/test_s1_terrain.py` checks it against the exact solve).

Layover and shadow (`local_incidence`): with the DEM's surface normal n and the unit look vector
u (target → satellite) in the grid's local frame, the signed local incidence angle
``θ_loc = atan2(sin θ_e·n_z + cos θ_e·n_h, n·u)`` (n_h: the normal's component along the horizontal
look direction) is θ_e − α for a slope α facing the sensor. ``θ_loc < 0`` is layover (the slope
faces the sensor more steeply than the beam), ``θ_loc > 90°`` active shadow (it faces away more
steeply than grazing). Passive shadow (terrain hidden behind a ridge) is not traced.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning
from rasterio.warp import transform as warp_transform
from rasterio.windows import Window

from cloudlulc_edge.errors import OptionsError, PairingError
from cloudlulc_edge.io.dem import Dem, DemDatum, DemError
from cloudlulc_edge.io.grid import RasterGrid, lattice_weights
from cloudlulc_edge.io.orbit import OrbitModel
from cloudlulc_edge.io.s1_metadata import S1Geometry

__all__ = [
    "LATTICE_STEP",
    "RTC_GROUPING",
    "SPEED_OF_LIGHT",
    "GeometryCube",
    "RadarCoordinates",
    "RangeDoppler",
    "TerrainCorrection",
    "TerrainGeocoder",
    "geodetic_to_ecef",
    "local_incidence",
]

SPEED_OF_LIGHT = 299_792_458.0
#: WGS 84 semi-major axis (m) and first eccentricity squared.
_A, _E2 = 6_378_137.0, 6.694379990141317e-3
#: Output pixels between exact solves of `GeometryCube`.
LATTICE_STEP = 16
_WGS84 = CRS.from_epsg(4326)


def geodetic_to_ecef(
    lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64], h: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """(…, 3) WGS 84 ECEF coordinates (m) of longitudes and latitudes (degrees) at ellipsoidal heights (m)."""
    lon_r, lat_r = np.radians(lon), np.radians(lat)
    sin_lat, cos_lat = np.sin(lat_r), np.cos(lat_r)
    n = _A / np.sqrt(1.0 - _E2 * sin_lat**2)  # prime-vertical radius of curvature
    return np.stack(
        [(n + h) * cos_lat * np.cos(lon_r), (n + h) * cos_lat * np.sin(lon_r), (n * (1.0 - _E2) + h) * sin_lat],
        axis=-1,
    )


@dataclass(frozen=True)
class RadarCoordinates:
    """Where ground points lie in the radar image, and the geometry there.

    Attributes:
        line: (…) image line (pixel-centre index, fractional).
        pixel: (…) image sample (pixel-centre index, fractional).
        slant_range: (…) metres.
        look: (…, 3) unit ECEF vectors from the ground point to the satellite.
    """

    line: npt.NDArray[np.float64]
    pixel: npt.NDArray[np.float64]
    slant_range: npt.NDArray[np.float64]
    look: npt.NDArray[np.float64]


class RangeDoppler:
    """The range-Doppler model of one GRD product.

    Args:
        geometry: The product's timing, orbit and slant-to-ground-range polynomials.
        orbit: The orbit (from the annotation's or an orbit file's state vectors).
    """

    def __init__(self, geometry: S1Geometry, orbit: OrbitModel) -> None:
        self.geometry = geometry
        self.orbit = orbit

    def zero_doppler_time(self, ecef: npt.NDArray[np.float64], iterations: int = 8) -> npt.NDArray[np.float64]:
        """(…) zero-Doppler times (seconds since the epoch) of (…, 3) ECEF points; converges to < 1 μs."""
        g = self.geometry
        t = np.full(ecef.shape[:-1], 0.5 * g.lines * g.azimuth_time_interval)  # mid-scene start
        for _ in range(iterations):
            d = ecef - self.orbit.position(t)
            v = self.orbit.velocity(t)
            f = np.einsum("...k,...k->...", d, v)
            fp = np.einsum("...k,...k->...", d, self.orbit.acceleration(t)) - np.einsum("...k,...k->...", v, v)
            step = f / fp
            t = t - step
            if np.nanmax(np.abs(step)) < 1e-7:
                break
        return t

    def ground_range(self, t: npt.NDArray[np.float64], slant_range: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Ground range (m) of slant ranges at zero-Doppler times, polynomials interpolated linearly in time."""
        g = self.geometry
        sr0 = np.interp(t, g.conversion_times, g.sr0)
        x = slant_range - sr0
        out = np.zeros_like(x)
        for k in range(g.srgr.shape[1] - 1, -1, -1):  # Horner, coefficient k interpolated in time
            out = out * x + np.interp(t, g.conversion_times, g.srgr[:, k])
        return out

    def radar_coordinates(self, ecef: npt.NDArray[np.float64]) -> RadarCoordinates:
        """Image coordinates of (…, 3) ECEF ground points (the exact solve)."""
        g = self.geometry
        t = self.zero_doppler_time(ecef)
        to_satellite = self.orbit.position(t) - ecef
        slant = np.linalg.norm(to_satellite, axis=-1)
        return RadarCoordinates(
            line=t / g.azimuth_time_interval,
            pixel=self.ground_range(t, slant) / g.range_pixel_spacing,
            slant_range=slant,
            look=to_satellite / slant[..., None],
        )


def local_incidence(
    heights: npt.NDArray[np.float64], pixel_size: tuple[float, float], look_grid: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Signed local incidence angle (degrees) of every pixel (see the module docstring).

    Args:
        heights: (h, w) ellipsoidal heights on the output grid, metres.
        pixel_size: (x, y) pixel size of the output grid, metres (y positive; rows run south).
        look_grid: (h, w, 3) unit look vectors in the grid's local frame (east-ish x, north-ish y, up).

    Returns:
        (h, w) angles; < 0 layover, > 90 active shadow.
    """
    dz_dy, dz_dx = np.gradient(heights, pixel_size[1], pixel_size[0])
    # Rows run southward: d/d(north) = −d/d(row).
    normal = np.stack([-dz_dx, dz_dy, np.ones_like(heights)], axis=-1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    u = look_grid
    horizontal = -u[..., :2]  # the horizontal direction away from the satellite
    horizontal /= np.maximum(np.linalg.norm(horizontal, axis=-1, keepdims=True), 1e-12)
    sin_e, cos_e = np.linalg.norm(u[..., :2], axis=-1), u[..., 2]  # ellipsoid incidence θ_e from the look vector
    n_h = np.einsum("...k,...k->...", normal[..., :2], horizontal)
    cos_loc = np.einsum("...k,...k->...", normal, u)
    angle: npt.NDArray[np.float64] = np.degrees(np.arctan2(sin_e * normal[..., 2] + cos_e * n_h, cos_loc))
    return angle


@dataclass
class GeometryCube:
    """Exact image coordinates on a lattice of an output window at three heights, interpolated per pixel.

    Args:
        model: The range-Doppler model.
        crs: CRS of the output grid.
        x: (w,) x coordinates of the window's pixel centres.
        y: (h,) y coordinates of the window's pixel centres.
        h_min: Lowest ellipsoidal height of the window's DEM, metres.
        h_max: Highest.
        step: Output pixels between lattice nodes.
    """

    model: RangeDoppler
    crs: CRS
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    h_min: float
    h_max: float
    step: int = LATTICE_STEP

    def __post_init__(self) -> None:
        w, h = self.x.size, self.y.size
        self._ix = np.unique(np.r_[np.arange(0, w, self.step), w - 1])
        self._iy = np.unique(np.r_[np.arange(0, h, self.step), h - 1])
        self._rows, self._cols = lattice_weights(h, self._iy), lattice_weights(w, self._ix)
        span = max(self.h_max - self.h_min, 1.0)
        self.levels = np.array([self.h_min - 0.05 * span, 0.5 * (self.h_min + self.h_max), self.h_max + 0.05 * span])
        xx, yy = np.meshgrid(self.x[self._ix], self.y[self._iy])
        lon, lat = (np.asarray(v) for v in warp_transform(self.crs, _WGS84, xx.ravel(), yy.ravel()))
        lon, lat = lon.reshape(xx.shape), lat.reshape(xx.shape)
        nodes = [self.model.radar_coordinates(geodetic_to_ecef(lon, lat, np.full_like(lon, z))) for z in self.levels]
        self._line = np.stack([n.line for n in nodes])  # (3, ny, nx)
        self._pixel = np.stack([n.pixel for n in nodes])
        self._slant = np.stack([n.slant_range for n in nodes])
        self._look = self._grid_frame(lon, lat, nodes[1].look)  # (ny, nx, 3) at the middle height

    def _grid_frame(self, lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64],
                    look: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:  # fmt: skip
        """Look vectors in the local east/north/up frame (the grid's x/y/up up to its convergence angle)."""
        lo, la = np.radians(lon), np.radians(lat)
        east = np.stack([-np.sin(lo), np.cos(lo), np.zeros_like(lo)], axis=-1)
        north = np.stack([-np.sin(la) * np.cos(lo), -np.sin(la) * np.sin(lo), np.cos(la)], axis=-1)
        up = np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)
        enu = np.stack([np.einsum("...k,...k->...", look, e) for e in (east, north, up)], axis=-1)
        # Grid convergence: rotate east/north onto the grid's x/y (the angle of grid north from true north).
        gamma = self._convergence(lon, lat)
        c, s = np.cos(gamma), np.sin(gamma)
        # True north is (sin γ, cos γ) and true east (cos γ, −sin γ) in grid coordinates.
        gx, gy = c * enu[..., 0] + s * enu[..., 1], -s * enu[..., 0] + c * enu[..., 1]
        return np.stack([gx, gy, enu[..., 2]], axis=-1)

    def _convergence(self, lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Angle (radians) from true north to grid north at each node (0 for a lon/lat grid)."""
        if self.crs.is_geographic:
            return np.zeros_like(lon)
        x0, y0 = (np.asarray(v) for v in warp_transform(_WGS84, self.crs, lon.ravel(), lat.ravel()))
        x1, y1 = (np.asarray(v) for v in warp_transform(_WGS84, self.crs, lon.ravel(), (lat + 1e-4).ravel()))
        angle: npt.NDArray[np.float64] = np.arctan2(x1 - x0, y1 - y0).reshape(lon.shape)  # true north, grid frame
        return angle

    def _spread(self, nodes: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Bilinear interpolation of (…, ny, nx) lattice values onto every window pixel → (…, h, w)."""
        out: npt.NDArray[np.float64] = self._rows @ nodes @ self._cols.T  # separable: two small matrix products
        return out

    def coordinates(
        self, heights: npt.NDArray[np.float64], slant_range: bool = True
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64] | None]:
        """(line, pixel, slant range) of every window pixel at its DEM height, each (h, w); quadratic in h.

        Args:
            heights: (h, w) ellipsoidal heights, metres.
            slant_range: Also the slant range (None otherwise: only flattening needs it).
        """
        z0, z1, z2 = self.levels
        weights = (
            (heights - z1) * (heights - z2) / ((z0 - z1) * (z0 - z2)),  # Lagrange basis of the three levels
            (heights - z0) * (heights - z2) / ((z1 - z0) * (z1 - z2)),
            (heights - z0) * (heights - z1) / ((z2 - z0) * (z2 - z1)),
        )

        def at_height(nodes: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            spread = self._spread(nodes)
            out: npt.NDArray[np.float64] = sum(w * spread[k] for k, w in enumerate(weights))
            return out

        return at_height(self._line), at_height(self._pixel), at_height(self._slant) if slant_range else None

    def look_grid(self) -> npt.NDArray[np.float64]:
        """(h, w, 3) unit look vectors in the grid frame (x, y, up)."""
        look = np.moveaxis(self._spread(np.moveaxis(self._look, -1, 0)), 0, -1)
        out: npt.NDArray[np.float64] = look / np.linalg.norm(look, axis=-1, keepdims=True)
        return out


@dataclass(frozen=True)
class TerrainCorrection:
    """How Sentinel-1 is terrain-corrected (``--dem`` and its companions).

    Attributes:
        dem: A DEM file (GeoTIFF, VRT, .hgt) or a folder of DEM tiles.
        rtc: Radiometric terrain flattening: γ⁰ by area projection (Small 2011) instead of σ⁰.
        orbit_dir: Folder of POEORB/RESORB orbit files (default: the annotation's state vectors).
        dem_datum: ``auto`` (from the DEM's CRS or name), ``ellipsoid``, ``egm96`` or ``egm2008``.
        dem_fallback: ``fail`` (a scene the DEM does not cover fails) or ``gcp`` (it falls back to
            GCP geocoding, tagged).
    """

    dem: Path
    rtc: bool = False
    orbit_dir: Path | None = None
    dem_datum: DemDatum = "auto"
    dem_fallback: Literal["fail", "gcp"] = "fail"

    def __post_init__(self) -> None:
        if self.dem_datum not in ("auto", "ellipsoid", "egm96", "egm2008"):
            raise OptionsError(f"--dem-datum must be auto, ellipsoid, egm96 or egm2008, got {self.dem_datum!r}")
        if self.dem_fallback not in ("fail", "gcp"):
            raise OptionsError(f"--dem-fallback must be fail or gcp, got {self.dem_fallback!r}")

    @property
    def radiometry(self) -> str:
        """``gamma0_terrain`` (flattened) or ``sigma0``."""
        return "gamma0_terrain" if self.rtc else "sigma0"

    def to_dict(self) -> dict[str, Any]:
        """JSON form (paths as strings), as recorded in plans and run reports."""
        return {"dem": str(self.dem), "rtc": self.rtc, "orbit_dir": str(self.orbit_dir) if self.orbit_dir else None,
                "dem_datum": self.dem_datum, "dem_fallback": self.dem_fallback}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TerrainCorrection:
        """Inverse of `to_dict`.

        Raises:
            OptionsError: A missing or invalid field.
        """
        try:
            return cls(Path(data["dem"]), bool(data.get("rtc", False)),
                       Path(data["orbit_dir"]) if data.get("orbit_dir") else None,
                       data.get("dem_datum", "auto"), data.get("dem_fallback", "fail"))  # fmt: skip
        except (KeyError, TypeError) as exc:
            raise OptionsError(f"malformed terrain-correction settings {dict(data)!r} ({exc})") from exc


#: Radar pixels of one RTC area bin per axis (sarsen's ``grouping_area_factor``).
RTC_GROUPING = 3
#: Radar pixels added around the window that covers the grid.
_MARGIN = 64
#: Grid pixels (rows, columns) geocoded at a time: the geometry of one chunk is ≈ 40 MB of float64.
_CHUNK = (128, 1024)


def _bilinear(image: npt.NDArray[np.float32], rows: npt.NDArray[np.float64],
              cols: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:  # fmt: skip
    """Bilinear samples of ``image`` at fractional pixel-centre indices; NaN outside or next to NaN."""
    h, w = image.shape
    inside = (rows >= 0) & (rows <= h - 1) & (cols >= 0) & (cols <= w - 1)
    r0 = np.clip(np.floor(rows), 0, max(h - 2, 0)).astype(np.int64)
    c0 = np.clip(np.floor(cols), 0, max(w - 2, 0)).astype(np.int64)
    r1, c1 = np.minimum(r0 + 1, h - 1), np.minimum(c0 + 1, w - 1)
    fr, fc = np.clip(rows - r0, 0.0, 1.0), np.clip(cols - c0, 0.0, 1.0)
    out = ((image[r0, c0] * (1 - fc) + image[r0, c1] * fc) * (1 - fr)
           + (image[r1, c0] * (1 - fc) + image[r1, c1] * fc) * fr)  # fmt: skip
    return np.where(inside, out, np.nan).astype(np.float32)


def _extrapolate_halo(heights: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Heights with NaN in the outer ring (beyond the DEM) extrapolated linearly from the two pixels inside.

    Central differences at the window's edge then equal the one-sided differences inside it.
    """
    out: npt.NDArray[np.float64] = heights.copy()
    for edge, inner, next_ in ((0, 1, 2), (-1, -2, -3)):
        for view in (out, out.T):  # rows, then columns
            bad = ~np.isfinite(view[edge])
            view[edge, bad] = 2 * view[inner, bad] - view[next_, bad]
    return out


def _gamma_area(heights: npt.NDArray[np.float64], pixel_size: tuple[float, float],
                look: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:  # fmt: skip
    """Each pixel's terrain area projected perpendicular to the look direction, m² (≥ 0; sarsen's ``gamma_area``).

    Args:
        heights: (h, w) heights, metres.
        pixel_size: (x, y) pixel size, metres.
        look: (h, w, 3) unit look vectors in the grid frame (x, y, up).
    """
    dx, dy = pixel_size
    dz_dy, dz_dx = np.gradient(heights, dy, dx)
    normal = np.stack([-dz_dx, dz_dy, np.ones_like(dz_dx)], axis=-1)  # area vector per unit map area; rows run south
    area: npt.NDArray[np.float64] = np.maximum(dx * dy * np.einsum("...k,...k->...", normal, look), 0.0)
    return area


class TerrainGeocoder:
    """Range-Doppler terrain correction of calibrated radar windows onto a target grid.

    Args:
        model: The range-Doppler model.
        dem: The DEM (ellipsoidal heights via `Dem.heights`).
        grid: Target grid.
        looks: Multilook factor of the calibrated rasters.
        azimuth_spacing: Azimuth pixel spacing of the image, metres (RTC area normalisation).
        rtc: Flatten: divide β⁰ by the terrain's illuminated area (the calibrated rasters hold β⁰).

    Raises:
        PairingError: The product does not overlap the grid.
        DemError: The DEM does not cover the part of the grid the product images.
    """

    method = "RD_DEM"

    def __init__(self, model: RangeDoppler, dem: Dem, grid: RasterGrid, looks: int, azimuth_spacing: float,
                 rtc: bool = False) -> None:  # fmt: skip
        self.model, self.dem, self.grid, self.looks, self.rtc = model, dem, grid, looks, rtc
        self.azimuth_spacing = azimuth_spacing
        self.pixels = 0  # grid pixels imaged by the product (for the layover/shadow share)
        self.masked = 0  # of them, in layover or shadow
        self.window = self._window()
        self._area: npt.NDArray[np.float32] | None = self._accumulate_area() if rtc else None

    def _window(self) -> Window:
        """The image window that covers the grid, from exact solves on a coarse lattice of it."""
        g, geometry = self.grid, self.model.geometry
        n = 33
        coarse = RasterGrid(g.crs, g.transform * Affine.scale(g.width / n, g.height / n), n, n)
        heights = self.dem.heights(coarse, 0, n)
        covered = np.isfinite(heights)
        tr = coarse.transform
        xx, yy = np.meshgrid(tr.c + (np.arange(n) + 0.5) * tr.a, tr.f + (np.arange(n) + 0.5) * tr.e)
        lon, lat = (np.asarray(v).reshape(xx.shape) for v in warp_transform(g.crs, _WGS84, xx.ravel(), yy.ravel()))
        lo = float(np.nanmin(heights)) if covered.any() else 0.0
        hi = float(np.nanmax(heights)) if covered.any() else 0.0
        lines, pixels, slants = [], [], []
        for z in (lo - 100.0, hi + 300.0):  # below and above the lattice's relief: peaks between nodes
            rc = self.model.radar_coordinates(geodetic_to_ecef(lon, lat, np.full_like(lon, z)))
            lines.append(rc.line)
            pixels.append(rc.pixel)
            slants.append(rc.slant_range)
        line, pixel = np.stack(lines), np.stack(pixels)
        self._slant_span = (float(np.min(slants)), float(np.max(slants)))  # RTC bins cover this
        imaged = ((line >= 0) & (line < geometry.lines) & (pixel >= 0) & (pixel < geometry.samples)).any(axis=0)
        if not imaged.any():
            raise PairingError(f"does not overlap the target grid {g.bounds} ({g.crs})")
        gaps = imaged & ~covered
        if gaps.mean() > 0.005 * max(imaged.mean(), 1e-9):
            raise DemError(f"the DEM does not cover the scene ({100 * gaps.sum() / imaged.sum():.1f} % of the imaged "
                           "part has no height); use a DEM that covers it, or --dem-fallback gcp", self.dem.path)  # fmt: skip
        r0 = max(0, math.floor(np.nanmin(line)) - _MARGIN)
        r1 = min(geometry.lines, math.ceil(np.nanmax(line)) + _MARGIN)
        c0 = max(0, math.floor(np.nanmin(pixel)) - _MARGIN)
        c1 = min(geometry.samples, math.ceil(np.nanmax(pixel)) + _MARGIN)
        return Window(c0, r0, c1 - c0, r1 - r0)

    def _geometry(self, row0: int, nrows: int, col0: int, ncols: int) -> dict[str, npt.NDArray[np.float64]] | None:
        """Image coordinates, slant range, local incidence and γ-projected area of a grid window (None: no DEM).

        The window is solved with a one-pixel halo, so the slopes at its edges are central
        differences like everywhere else (chunks join without seams), and cropped.
        """
        heights = self.dem.heights(self.grid, row0 - 1, nrows + 2, col0 - 1, ncols + 2)
        valid = np.isfinite(heights)
        if not valid[1:-1, 1:-1].any():
            return None
        filled = _extrapolate_halo(heights)
        filled = np.where(np.isfinite(filled), filled, np.nanmean(heights))  # holes: invalid pixels anyway
        tr = self.grid.strip_transform(row0 - 1, col0 - 1)
        x = (tr.c + (np.arange(ncols + 2) + 0.5) * tr.a).astype(np.float64)
        y = (tr.f + (np.arange(nrows + 2) + 0.5) * tr.e).astype(np.float64)
        cube = GeometryCube(self.model, self.grid.crs, x, y, float(filled.min()), float(filled.max()))
        line, pixel, slant = cube.coordinates(filled, slant_range=self.rtc)
        look = cube.look_grid()
        dx, dy = self.grid.pixel_size_m(row0 + nrows / 2)  # metres, also for lon/lat grids
        incidence = local_incidence(filled, (dx, dy), look)
        inner = (slice(1, -1), slice(1, -1))
        geo = {"valid": valid, "line": line, "pixel": pixel, "incidence": incidence}
        out = {k: v[inner] for k, v in geo.items()}
        if slant is not None:  # flattening: the slant range and the γ-projected area
            out["slant"] = slant[inner]
            out["gamma_area"] = _gamma_area(filled, (dx, dy), look)[inner]
        return out

    def _bins(self, line: npt.NDArray[np.float64],
              slant: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:  # fmt: skip
        """Fractional (azimuth, slant-range) indices of the RTC area bins, from this window's first bin.

        Bins are ``RTC_GROUPING`` lines × ``RTC_GROUPING`` range spacings of slant range, counted
        from the first image line and the image's near slant range (the grid sarsen uses).
        """
        g, geometry = RTC_GROUPING, self.model.geometry
        return (line / g - self._bin0[0],
                (slant - geometry.near_slant_range) / (g * geometry.range_pixel_spacing) - self._bin0[1])  # fmt: skip

    def _chunks(self, row0: int, nrows: int, col0: int, ncols: int) -> Iterator[tuple[int, int, int, int]]:
        """Sub-windows ``(row0, nrows, col0, ncols)`` of at most `_CHUNK` pixels: bounded memory and radar reads."""
        for r in range(row0, row0 + nrows, _CHUNK[0]):
            for c in range(col0, col0 + ncols, _CHUNK[1]):
                yield r, min(_CHUNK[0], row0 + nrows - r), c, min(_CHUNK[1], col0 + ncols - c)

    def _accumulate_area(self) -> npt.NDArray[np.float32]:
        """Illuminated (γ-projected) terrain area per radar bin, normalised by the bin's own area.

        sarsen's ``gamma_weights_bilinear`` spreads every DEM pixel's area over the four bins around
        its image position with bilinear weights, and reads the four bins back with the same corner
        offsets; since the weights of a pixel sum to one, what a pixel reads is the total area of
        the pixels that share its bin (the floor of its fractional bin indices). That is computed
        here directly, with one accumulator. The grid is covered with a margin of pixels around it,
        whose terrain also falls into the bins of the grid's edge pixels.
        """
        g = RTC_GROUPING
        spacing = self.model.geometry.range_pixel_spacing
        margin = math.ceil(2 * g * spacing / min(self.grid.pixel_size_m())) + 2
        # Bins start below the window's first line and the grid's nearest slant range (and its margin),
        # and end beyond the last line and the farthest slant range.
        slack = 4 * g * spacing + 4 * max(self.grid.pixel_size_m())
        near = self.model.geometry.near_slant_range
        self._bin0 = (math.floor(self.window.row_off / g) - 1,
                      math.floor((self._slant_span[0] - slack - near) / (g * spacing)))  # fmt: skip
        n_az = math.ceil(self.window.height / g) + 4
        n_sr = math.ceil((self._slant_span[1] - self._slant_span[0] + 2 * slack) / (g * spacing)) + 3
        total = np.zeros(n_az * n_sr, dtype=np.float32)
        for chunk in self._chunks(-margin, self.grid.height + 2 * margin, -margin, self.grid.width + 2 * margin):
            geo = self._geometry(*chunk)
            if geo is None:
                continue
            area = geo["gamma_area"] * geo["valid"]
            a, r = self._bins(geo["line"], geo["slant"])
            ia, ir = np.floor(a).astype(np.int64), np.floor(r).astype(np.int64)
            ok = (ia >= 0) & (ia < n_az) & (ir >= 0) & (ir < n_sr) & (area > 0)
            if not ok.any():
                continue
            flat = (ia * n_sr + ir)[ok]
            lo, hi = int(flat.min()), int(flat.max()) + 1  # only the bins this chunk touches
            total[lo:hi] += np.bincount(flat - lo, weights=area[ok], minlength=hi - lo).astype(np.float32)
        self._shape = (n_az, n_sr)
        total /= g * self.azimuth_spacing * g * spacing  # the bin's area in (azimuth, slant range)
        return total.reshape(n_az, n_sr)

    def _normalised_area(
        self, line: npt.NDArray[np.float64], slant: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float32]:
        """The flattening denominator at each pixel: the normalised area of its bin."""
        assert self._area is not None
        a, r = self._bins(line, slant)
        n_az, n_sr = self._shape
        ia = np.clip(np.floor(a).astype(np.int64), 0, n_az - 1)
        ir = np.clip(np.floor(r).astype(np.int64), 0, n_sr - 1)
        return self._area[ia, ir]

    def sample(self, files: Sequence[Path], row0: int, nrows: int, col0: int, ncols: int) -> npt.NDArray[np.float32]:
        """(P, n, w) float32 terrain-corrected backscatter of a grid window; NaN off the image, in layover or shadow.

        Raises:
            DemError: The DEM cannot be read.
        """
        out = np.full((len(files), nrows, ncols), np.nan, dtype=np.float32)
        with warnings.catch_warnings():  # radar-geometry rasters: no geotransform, by design
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            sources = [rasterio.open(path) for path in files]
        try:
            for r, n, c, m in self._chunks(row0, nrows, col0, ncols):
                out[:, r - row0 : r - row0 + n, c - col0 : c - col0 + m] = self._sample_chunk(sources, r, n, c, m)
        finally:
            for src in sources:
                src.close()
        return out

    def _sample_chunk(self, sources: Sequence[rasterio.DatasetReader], row0: int, nrows: int, col0: int,
                      ncols: int) -> npt.NDArray[np.float32]:  # fmt: skip
        out = np.full((len(sources), nrows, ncols), np.nan, dtype=np.float32)
        geo = self._geometry(row0, nrows, col0, ncols)
        if geo is None:
            return out
        w, looks = self.window, self.looks
        rows = (geo["line"] - w.row_off - (looks - 1) / 2) / looks  # multilooked pixel-centre indices
        cols = (geo["pixel"] - w.col_off - (looks - 1) / 2) / looks
        r_lo, c_lo = max(int(np.floor(rows.min())), 0), max(int(np.floor(cols.min())), 0)
        r_hi, c_hi = int(np.ceil(rows.max())) + 2, int(np.ceil(cols.max())) + 2
        usable = geo["valid"].astype(bool) & (geo["incidence"] >= 0.0) & (geo["incidence"] <= 90.0)
        flatten = self._normalised_area(geo["line"], geo["slant"]) if self.rtc else None
        imaged = np.zeros(usable.shape, dtype=bool)  # pixels with radar data, before the layover/shadow mask
        for i, src in enumerate(sources):
            r_hi_i, c_hi_i = min(r_hi, src.height), min(c_hi, src.width)
            if r_hi_i <= r_lo or c_hi_i <= c_lo:
                continue
            block = src.read(1, window=Window(c_lo, r_lo, c_hi_i - c_lo, r_hi_i - r_lo))
            values = _bilinear(block, rows - r_lo, cols - c_lo)
            if i == 0:
                imaged = geo["valid"] & np.isfinite(values)
            if flatten is not None:
                values = np.where(flatten > 0, values / np.maximum(flatten, 1e-12), np.nan).astype(np.float32)
            out[i] = np.where(usable, values, np.nan)
        self.pixels += int(imaged.sum())
        self.masked += int((imaged & ~usable).sum())
        return out

    def tags(self) -> dict[str, str]:
        """Provenance tags of the geocoding."""
        share = 100.0 * self.masked / self.pixels if self.pixels else 0.0
        return {
            "S1_GEOCODING": self.method,
            "S1_DEM": self.dem.name,
            "S1_DEM_DATUM": f"{self.dem.datum} (converted to ellipsoidal heights)" if self.dem.datum != "ellipsoid"
            else "ellipsoid",
            "S1_ORBIT": self.model.orbit.source,
            "S1_LAYOVER_SHADOW_PCT": f"{share:.3f}",
        }  # fmt: skip
