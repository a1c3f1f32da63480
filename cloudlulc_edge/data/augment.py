"""Training-time augmentation: paired geometry, and modality dropout.

`Augment`: random horizontal/vertical flips, a random multiple of 90° rotation and an optional
random crop (`model.md` §10), applied identically to every modality, mask, label and soft target.
No photometric jitter: multispectral reflectance and backscatter carry physical meaning that a
colour jitter would break.

`ModalityDropout`: whole-S1, partial-S1 and whole-S2 losses, so that the network's missing-SAR
embeddings and its SAR-only path are trained rather than left at their initial values.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from cloudlulc_edge.data.cloudlulc_set import Sample

__all__ = ["Augment", "ModalityDropout"]


@dataclass(frozen=True)
class Augment:
    """Paired geometric augmentation.

    Attributes:
        flip: Random horizontal and vertical flips.
        rot90: Random rotation by k·90°.
        crop: Random square crop side in pixels (None: no crop).
    """

    flip: bool = True
    rot90: bool = True
    crop: int | None = None

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        """Returns an augmented copy of ``sample`` (inputs are not modified).

        Raises:
            ValueError: The crop is larger than the sample.
        """
        h, w = sample.label.shape
        top = left = 0
        size_h, size_w = h, w
        if self.crop is not None:
            if self.crop > min(h, w):
                raise ValueError(f"crop {self.crop} is larger than the {h}×{w} sample {sample.name}")
            top, left = int(rng.integers(0, h - self.crop + 1)), int(rng.integers(0, w - self.crop + 1))
            size_h = size_w = self.crop
        flip_h = self.flip and bool(rng.integers(2))
        flip_v = self.flip and bool(rng.integers(2))
        k = int(rng.integers(4)) if self.rot90 else 0

        def transform(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
            a = a[..., top : top + size_h, left : left + size_w]
            if flip_h:
                a = a[..., :, ::-1]
            if flip_v:
                a = a[..., ::-1, :]
            return np.ascontiguousarray(np.rot90(a, k, axes=(-2, -1)))

        return replace(
            sample,
            s2=transform(sample.s2),
            s2_clear=transform(sample.s2_clear),
            s1=transform(sample.s1),
            s2_valid=transform(sample.s2_valid),
            s1_valid=transform(sample.s1_valid),
            label=transform(sample.label),
            soft=transform(sample.soft) if sample.soft is not None else None,
        )


@dataclass(frozen=True)
class ModalityDropout:
    """Random loss of a modality, so the missing- and partial-input paths are trained.

    Attributes:
        s1_drop: Probability of losing all of S1 (an S2-only scene: SAR zeroed, SAR validity 0).
        s1_partial_drop: Probability of losing S1 in one random axis-aligned rectangle of 20–80 % of
            each side (swath edges, layover/shadow masks, a second S1 slice missing).
        s2_drop: Probability of losing all of S2 (optics zeroed, optical validity 0: SAR alone).

    The S1 and S2 losses are drawn independently, except that a sample never loses both.
    """

    s1_drop: float = 0.0
    s1_partial_drop: float = 0.0
    s2_drop: float = 0.0

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        """Returns ``sample`` with the drawn modality losses applied (inputs are not modified)."""
        u_s2, u_s1, u_part = rng.random(3)
        if u_s2 < self.s2_drop:
            return replace(sample, s2=np.zeros_like(sample.s2), s2_valid=np.zeros_like(sample.s2_valid))
        if u_s1 < self.s1_drop:
            return replace(sample, s1=np.zeros_like(sample.s1), s1_valid=np.zeros_like(sample.s1_valid))
        if u_part < self.s1_partial_drop:
            h, w = sample.s1_valid.shape
            rh, rw = (max(1, round(n * rng.uniform(0.2, 0.8))) for n in (h, w))
            top, left = int(rng.integers(0, h - rh + 1)), int(rng.integers(0, w - rw + 1))
            keep = np.ones((h, w), dtype=bool)
            keep[top : top + rh, left : left + rw] = False
            return replace(sample, s1=sample.s1 * keep, s1_valid=sample.s1_valid & keep)
        return sample
