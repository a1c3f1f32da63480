"""Geometric augmentation applied identically to every modality, mask and label of a sample.

Random horizontal/vertical flips, a random multiple of 90° rotation and an optional random crop
(`model.md` §10). No photometric jitter: multispectral reflectance and backscatter carry physical
meaning that a colour jitter would break.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from cloudlulc_edge.data.cloudlulc_set import Sample

__all__ = ["Augment"]


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
        )
