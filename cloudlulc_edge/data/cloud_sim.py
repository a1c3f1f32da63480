"""Realistic cloud simulation: real cloud structure and reflectance composited onto clear patches.

Everything cloud-like comes from a real cloudy Sentinel-2 L2A product (the *donor*), never from a
parametric shape:

* **Density** (optical thickness proxy, 0..1) is the donor's blue reflectance rescaled between its
  clear-land level (median B02 of SCL vegetation / not-vegetated / water) and its thick-cloud level
  (95th percentile of B02 over SCL medium/high-probability cloud), zero on SCL land, water, snow
  and shadow classes. Thick cumulus, thin cirrus (SCL 10) and haze therefore keep the donor's own
  texture and graded edges.
* **Cloud reflectance** is the donor's 12-band reflectance under the cloud: the spectrum of real
  cloud tops (bright visible, darker SWIR), per pixel.
* **Shadows** are the cloud opacity displaced along the anti-solar direction by
  ``h · tan(sun zenith)`` for a random cloud height ``h``, with the donor's sun angles, and they
  darken the clear surface by the donor's per-band shadow/clear-land ratio (SCL 3 vs SCL 4-6).

A simulation picks a random all-valid donor window (scaled by a random factor so clouds may also
appear smaller than at true scale), upsamples it bilinearly onto a canvas that is larger than the
patch by the longest shadow displacement (so clouds outside the patch cast shadows into it),
rotates/flips cloud and shadow together (a different sun azimuth), and cuts the density at the
quantile that gives the requested **cover**: the fraction of the patch's pixels with any cloud
(opacity > 0), which is exact up to one pixel. Pixels are ranked by density plus its blur, so
clouds grow from their cores outward. Composite, per band::

    shadowed = clear · (1 − s · (1 − ratio_band))
    cloudy   = (1 − α) · shadowed + α · donor_reflectance

with ``α = density · clip((rank − t)/w + 0.5, 0, 1)`` above the cut ``t`` of the rank (edge width
``w``) and ``s`` the displaced opacity of thick cloud. Windows are redrawn until they hold real
cloud: the window's own cover (density ≥ ``min_density``) should just exceed the target, so the
cut follows a real cloud edge and high covers are real overcast, not brightened land.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from cloudlulc_edge.contract import S2_BANDS, s2_dn_to_reflectance
from cloudlulc_edge.data.cloudlulc_set import Sample
from cloudlulc_edge.errors import ProductError
from cloudlulc_edge.io.archive import find_text, parse_xml
from cloudlulc_edge.io.s2_safe import S2SafeReader
from cloudlulc_edge.optics import SCL_CLOUD, SCL_SHADOW

__all__ = ["CloudDonor", "CloudSimulator", "CloudyPatch", "simulate_sample"]

#: SCL classes of clear surface (vegetation, not vegetated, water, unclassified, snow).
SCL_SURFACE = (4, 5, 6, 7, 11)
_B02 = S2_BANDS.index("B02")
ScalarT = TypeVar("ScalarT", bound=np.generic)


@dataclass(frozen=True)
class CloudDonor:
    """The cloud material of one real cloudy L2A product, at its own resolution.

    Attributes:
        name: Product id.
        reflectance: (12, H, W) float16 reflectance in [0, 1], `S2_BANDS` order.
        density: (H, W) float32 cloud density in [0, 1] (see the module docstring).
        valid: (H, W) bool, pixels with data.
        shadow_ratio: (12,) float32 median shadow / median clear-surface reflectance per band.
        sun_zenith_deg: Mean sun zenith angle of the product.
        sun_azimuth_deg: Mean sun azimuth angle (clockwise from north).
        pixel_size_m: Donor pixel size.
    """

    name: str
    reflectance: npt.NDArray[np.float16]
    density: npt.NDArray[np.float32]
    valid: npt.NDArray[np.bool_]
    shadow_ratio: npt.NDArray[np.float32]
    sun_zenith_deg: float
    sun_azimuth_deg: float
    pixel_size_m: float

    @classmethod
    def from_safe(cls, path: str | Path, resolution: int = 60) -> CloudDonor:
        """Loads a cloudy L2A SAFE (folder or zip) at ``resolution`` m.

        Raises:
            ProductError: Not L2A, no SCL at that resolution, unreadable rasters, no cloud or no
                shadow pixels to learn from (naming the product).
        """
        reader = S2SafeReader(path, resolution=resolution)
        try:
            meta, archive = reader.meta, reader.archive
            if meta.level != "L2A":
                raise ProductError("a cloud donor must be an L2A product (it needs the SCL layer)", archive.path)
            reflectance, dn_valid = s2_dn_to_reflectance(reader.read_dn(0, reader.grid.height), reader.offsets,
                                                         inplace=True)  # fmt: skip
            np.clip(reflectance, 0.0, 1.0, out=reflectance)
            scl = reader.read_scl(resolution)
            tile = parse_xml(archive, f"{meta.granule}/MTD_TL.xml")
            src = archive.display(f"{meta.granule}/MTD_TL.xml")
            zenith = float(find_text(tile, ".//Mean_Sun_Angle/ZENITH_ANGLE", src))
            azimuth = float(find_text(tile, ".//Mean_Sun_Angle/AZIMUTH_ANGLE", src))
        finally:
            reader.close()
        if scl.shape != dn_valid.shape:
            raise ProductError(f"SCL is {scl.shape}, bands are {dn_valid.shape}", archive.path)
        valid = (scl > 0) & dn_valid
        surface = valid & np.isin(scl, SCL_SURFACE)
        cloud = valid & np.isin(scl, SCL_CLOUD[:2])
        shadow = valid & np.isin(scl, SCL_SHADOW)
        for name, mask in (("clear-surface", surface), ("cloud", cloud), ("cloud-shadow", shadow)):
            if mask.sum() < 100:
                raise ProductError(f"too few {name} pixels in the SCL to use this product as a cloud donor",
                                   archive.path)  # fmt: skip
        blue = reflectance[_B02]
        clear_level = float(np.median(blue[surface]))
        thick_level = min(1.0, float(np.percentile(blue[cloud], 95)))
        density = np.clip((blue - clear_level) / max(thick_level - clear_level, 1e-3), 0.0, 1.0)
        density[~valid | surface | shadow] = 0.0
        ratio = np.median(reflectance[:, shadow], axis=1) / np.maximum(np.median(reflectance[:, surface], axis=1), 1e-4)
        return cls(
            name=meta.product_id,
            reflectance=reflectance.astype(np.float16),
            density=density.astype(np.float32),
            valid=valid,
            shadow_ratio=np.clip(ratio, 0.05, 1.0).astype(np.float32),
            sun_zenith_deg=zenith,
            sun_azimuth_deg=azimuth,
            pixel_size_m=float(resolution),
        )


@dataclass(frozen=True)
class CloudyPatch:
    """A simulated cloudy patch.

    Attributes:
        s2: (12, H, W) float32 cloudy reflectance in [0, 1] (invalid pixels untouched).
        alpha: (H, W) float32 cloud opacity in [0, 1] (0: no cloud).
        shadow: (H, W) float32 shadow strength in [0, 1].
        cover: Fraction of valid pixels with cloud (alpha > 0).
        shadow_fraction: Fraction of valid cloud-free pixels in shadow (strength > 0.2).
        donor_cover: The donor window's own cloud cover over the patch (density ≥ ``min_density``);
            below ``cover`` when no window drawn had that much real cloud (the cut then reaches
            into haze).
    """

    s2: npt.NDArray[np.float32]
    alpha: npt.NDArray[np.float32]
    shadow: npt.NDArray[np.float32]
    cover: float
    shadow_fraction: float
    donor_cover: float


@dataclass(frozen=True)
class CloudSimulator:
    """Composites real clouds and their shadows onto clear patches at a controlled cover.

    Attributes:
        donor: The cloud material.
        pixel_size_m: Pixel size of the patches (10 m for the model's grid).
        scale_range: Range of the cloud size factor (1: true scale; 0.5: clouds half as large).
        cloud_height_m: Range of cloud heights, which set the shadow displacement.
        shadow_strength: Range of the shadow darkening weight (1: full donor shadow ratio).
        edge_width: Density span over which opacity ramps up above the cut.
        min_density: Density from which a donor pixel counts as cloud when matching windows.
        cover_tolerance: A window is taken at once when its own cover exceeds the target by at most this.
        max_tries: Donor windows drawn before the best one is taken.
    """

    donor: CloudDonor
    pixel_size_m: float = 10.0
    scale_range: tuple[float, float] = (0.4, 1.0)
    cloud_height_m: tuple[float, float] = (300.0, 1500.0)
    shadow_strength: tuple[float, float] = (0.7, 1.0)
    edge_width: float = 0.1
    min_density: float = 0.15
    cover_tolerance: float = 0.1
    max_tries: int = 256

    def simulate(
        self,
        clear: npt.NDArray[np.float32],
        cover: float,
        rng: np.random.Generator,
        valid: npt.NDArray[np.bool_] | None = None,
        rotate: bool = True,
    ) -> CloudyPatch:
        """Returns ``clear`` with clouds covering ``cover`` of its valid pixels, plus their shadows.

        Args:
            clear: (12, H, W) float32 clear reflectance in [0, 1] (not modified).
            cover: Target cloud cover in [0, 1].
            rng: Source of every random choice (window, scale, height, rotation).
            valid: (H, W) pixels with data (default: all); only these are changed and counted.
            rotate: Random rot90/flip of the cloud field (off: the donor's own sun azimuth).

        Raises:
            ValueError: ``cover`` outside [0, 1] or ``clear`` not (12, H, W).
        """
        if not 0.0 <= cover <= 1.0:
            raise ValueError(f"cover must be in [0, 1], got {cover}")
        if clear.ndim != 3 or clear.shape[0] != self.donor.reflectance.shape[0]:
            raise ValueError(f"clear must be (12, H, W), got {clear.shape}")
        _, h, w = clear.shape
        valid = np.ones((h, w), dtype=bool) if valid is None else valid
        if cover == 0.0 or not valid.any():
            zeros = np.zeros((h, w), dtype=np.float32)
            return CloudyPatch(clear.copy(), zeros, zeros, 0.0, 0.0, 0.0)

        zoom = self.donor.pixel_size_m / self.pixel_size_m * rng.uniform(*self.scale_range)
        height = rng.uniform(*self.cloud_height_m)
        shift = height * math.tan(math.radians(self.donor.sun_zenith_deg)) / self.pixel_size_m
        azimuth = math.radians(self.donor.sun_azimuth_deg)
        # Shadows fall away from the sun: east component −sin(az), rows grow southward: +cos(az).
        d_row, d_col = round(shift * math.cos(azimuth)), round(-shift * math.sin(azimuth))
        margin = max(abs(d_row), abs(d_col)) + 1
        # The canvas is the patch plus the longest shadow on every side, so the patch sits at its
        # centre and keeps its place under the 180° rotations and flips applied below.
        canvas = (h + 2 * margin, w + 2 * margin)
        density, depth, reflectance, donor_cover = self._window(canvas, zoom, cover, margin, (h, w), rng)

        core = (slice(margin, margin + h), slice(margin, margin + w))
        # Clouds fill in from their cores outward: pixels are ranked by density plus its blur (depth
        # inside the cloud), so a cut on a saturated plateau still follows the cloud's structure; a
        # tiny jitter breaks the remaining ties so the cut hits the cover exactly.
        ranked = density + depth + rng.uniform(0.0, 1e-4, density.shape).astype(np.float32)
        core_values = ranked[core][valid]
        cut = float(np.quantile(core_values, 1.0 - cover)) if cover < 1.0 else -1.0
        above = ranked > cut
        alpha = np.where(above, density * np.clip((ranked - cut) / self.edge_width + 0.5, 0.0, 1.0), 0.0)
        alpha = alpha.astype(np.float32)
        # Thick cloud casts a full shadow, haze (opacity ≤ 0.2) none.
        shadow = _shifted(np.clip((alpha - 0.2) / 0.5, 0.0, 1.0), d_row, d_col) * rng.uniform(*self.shadow_strength)

        if rotate:  # quarter turns only for square patches (they would move a non-square patch)
            k, flip = int(rng.integers(4)) if h == w else 2 * int(rng.integers(2)), bool(rng.integers(2))
            alpha, shadow = _orient(alpha, k, flip), _orient(shadow, k, flip)
            above, reflectance = _orient(above, k, flip), _orient(reflectance, k, flip)
        alpha, shadow, above = alpha[core], shadow[core].astype(np.float32), above[core]
        reflectance = reflectance[:, core[0], core[1]]

        alpha = np.where(valid & above, np.maximum(alpha, 1e-6), 0.0).astype(np.float32)
        shadow = np.where(valid, shadow * (alpha == 0), 0.0).astype(np.float32)
        ratio = self.donor.shadow_ratio[:, None, None]
        shadowed = clear * (1.0 - shadow[None] * (1.0 - ratio))
        mixed = (1.0 - alpha[None]) * shadowed + alpha[None] * reflectance
        cloudy: npt.NDArray[np.float32] = np.where(valid[None], np.clip(mixed, 0.0, 1.0), clear).astype(np.float32)
        n = int(valid.sum())
        return CloudyPatch(
            s2=cloudy,
            alpha=alpha,
            shadow=shadow,
            cover=float((alpha > 0).sum()) / n,
            shadow_fraction=float(((shadow > 0.2) & (alpha == 0)).sum()) / n,
            donor_cover=donor_cover,
        )

    def _window(
        self,
        canvas: tuple[int, int],
        zoom: float,
        cover: float,
        margin: int,
        patch: tuple[int, int],
        rng: np.random.Generator,
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32], float]:
        """Draws an all-valid donor window whose own cloud cover is closest above ``cover``.

        Returns:
            ``(density, depth, reflectance, donor_cover)``: the canvas-sized density, its Gaussian
            blur (σ = 3 donor pixels) and (12, …) reflectance, all upsampled, and the window's own
            cloud cover (density ≥ ``min_density``) over the patch.
        """
        donor = self.donor
        size = math.ceil(max(canvas) / zoom) + 2
        rows, cols = donor.density.shape
        if size > min(rows, cols):
            raise ValueError(f"the donor ({rows}×{cols} px) is too small for a {canvas} px canvas at zoom {zoom:.2f}")
        invalid = np.pad(np.cumsum(np.cumsum(~donor.valid, axis=0), axis=1), ((1, 0), (1, 0)))
        r0, r1 = math.floor(margin / zoom), math.ceil((margin + patch[0]) / zoom)
        c0, c1 = math.floor(margin / zoom), math.ceil((margin + patch[1]) / zoom)
        best: tuple[float, float, int, int] | None = None
        for _ in range(self.max_tries):
            r, c = int(rng.integers(0, rows - size + 1)), int(rng.integers(0, cols - size + 1))
            if invalid[r + size, c + size] - invalid[r, c + size] - invalid[r + size, c] + invalid[r, c]:
                continue
            natural = float((donor.density[r + r0 : r + r1, c + c0 : c + c1] >= self.min_density).mean())
            # Prefer windows whose own cloud cover just exceeds the target: the cut then follows
            # a real cloud edge instead of thinning a saturated overcast or brightening clear land.
            score = natural - cover if natural >= cover else 1.0 + cover - natural
            if best is None or score < best[0]:
                best = (score, natural, r, c)
            if 0.0 <= score <= self.cover_tolerance:
                break
        if best is None:
            raise ValueError(f"no all-valid {size}×{size} window found in the donor {donor.name}")
        _, natural, r, c = best
        density = torch.from_numpy(donor.density[r : r + size, c : c + size])[None, None]
        stack = torch.cat([density, _blur(density),
                           torch.from_numpy(donor.reflectance[:, r : r + size, c : c + size].astype(np.float32))[None]],
                          dim=1)  # fmt: skip
        up = F.interpolate(stack, scale_factor=zoom, mode="bilinear", align_corners=False)
        fields = up[0, :, : canvas[0], : canvas[1]].numpy()
        return (
            np.ascontiguousarray(fields[0]),
            np.ascontiguousarray(fields[1]),
            np.ascontiguousarray(fields[2:]),
            natural,
        )


def _blur(x: torch.Tensor, sigma: float = 3.0) -> torch.Tensor:
    """Separable Gaussian blur of a (1, 1, H, W) tensor, edges replicated."""
    radius = math.ceil(3 * sigma)
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float32) / sigma) ** 2)
    taps = taps / taps.sum()
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, taps.view(1, 1, 1, -1))
    return F.conv2d(x, taps.view(1, 1, -1, 1))


def _shifted(a: npt.NDArray[np.float32], d_row: int, d_col: int) -> npt.NDArray[np.float32]:
    """``a`` moved by (d_row, d_col) pixels, zero-filled."""
    out = np.zeros_like(a)
    h, w = a.shape
    rs, rd = (slice(0, h - d_row), slice(d_row, h)) if d_row >= 0 else (slice(-d_row, h), slice(0, h + d_row))
    cs, cd = (slice(0, w - d_col), slice(d_col, w)) if d_col >= 0 else (slice(-d_col, w), slice(0, w + d_col))
    out[rd, cd] = a[rs, cs]
    return out


def _orient(a: npt.NDArray[ScalarT], k: int, flip: bool) -> npt.NDArray[ScalarT]:
    """``a`` rotated by k·90° and optionally mirrored, over its last two axes."""
    a = np.rot90(a, k, axes=(-2, -1))
    return np.ascontiguousarray(a[..., ::-1] if flip else a)


def simulate_sample(sample: Sample, simulator: CloudSimulator, cover: float, rng: np.random.Generator) -> Sample:
    """A copy of ``sample`` whose cloudy input is ``sample.s2_clear`` with simulated clouds.

    ``cloud_fraction`` becomes the simulated cover, so the paper's cloud bins stratify by it.
    """
    patch = simulator.simulate(sample.s2_clear, cover, rng, valid=sample.s2_valid)
    return replace(sample, s2=patch.s2, cloud_fraction=patch.cover)
