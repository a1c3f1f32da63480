"""Per-pixel gradient-boosting peers: the classifier a practitioner trains in minutes instead of a network.

`PixelGBM` is scikit-learn's `HistGradientBoostingClassifier` on per-pixel features: the 12
normalised S2 bands and (``inputs = "s2+s1"``) the 2 normalised S1 channels, each with its 3 × 3
mean (28 or 24 features). It trains on the same patches, clouds, class weights and soft-label-free
hard targets as the networks of a cross-validation fold (`cloudlulc_edge.training.crossval`):
every training patch is prepared ``draws`` times exactly as the network's training samples are
(augmentation, simulated clouds at a random cover), and ``pixels`` labelled pixels are sampled
from each draw. Its hyper-parameters are scikit-learn's defaults with 200 iterations, fixed before
any evaluation (no search). scikit-learn is the ``train`` extra.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from cloudlulc_edge.contract import IGNORE_INDEX
from cloudlulc_edge.data.cloudlulc_set import Sample
from cloudlulc_edge.data.label_rules import box_mean3
from cloudlulc_edge.errors import CloudLULCError

__all__ = ["PeerInputs", "PixelGBM", "pixel_features"]

PeerInputs = Literal["s2+s1", "s2"]


def pixel_features(sample: Sample, inputs: PeerInputs) -> npt.NDArray[np.float32]:
    """(H·W, F) features of every pixel: the normalised bands and their 3 × 3 means.

    Missing S1 (zero validity) stays zero, as the networks see it.
    """
    bands = sample.s2 if inputs == "s2" else np.concatenate([sample.s2, sample.s1 * sample.s1_valid], axis=0)
    stack = np.concatenate([bands, box_mean3(bands).astype(np.float32)], axis=0)
    features: npt.NDArray[np.float32] = stack.reshape(stack.shape[0], -1).T.astype(np.float32)
    return features


@dataclass
class PixelGBM:
    """A per-pixel gradient-boosting classifier over `pixel_features`.

    Attributes:
        inputs: ``s2+s1`` or ``s2``.
        max_iter: Boosting iterations.
        draws: Prepared copies of each training patch (fresh clouds each).
        pixels: Labelled pixels sampled per draw.
        seed: Seed of the sampling and of the booster.
    """

    inputs: PeerInputs = "s2+s1"
    max_iter: int = 200
    draws: int = 3
    pixels: int = 4000
    seed: int = 0
    _model: Any = field(default=None, repr=False)

    def fit(
        self,
        patches: list[Sample],
        prepare: Callable[[Sample, np.random.Generator], Sample],
        class_weights: npt.NDArray[np.float64] | None = None,
    ) -> PixelGBM:
        """Trains on ``draws`` prepared copies of every patch.

        Args:
            patches: Clear training patches.
            prepare: The networks' training preparation (augmentation, clouds, dropout).
            class_weights: Optional (K,) weights applied as sample weights.

        Raises:
            CloudLULCError: scikit-learn is not installed, or no labelled pixel was drawn.
        """
        try:
            from sklearn.ensemble import HistGradientBoostingClassifier
        except ImportError as exc:
            raise CloudLULCError(f"the gradient-boosting peer needs scikit-learn (the 'train' extra): {exc}") from exc
        rng = np.random.default_rng([self.seed, 7919])
        xs, ys = [], []
        for index, patch in enumerate(patches):
            for draw in range(self.draws):
                sample = prepare(patch, np.random.default_rng([self.seed, index, draw]))
                labels = sample.label.reshape(-1)
                keep = np.flatnonzero(labels != IGNORE_INDEX)
                if keep.size == 0:
                    continue
                pick = rng.choice(keep, size=min(self.pixels, keep.size), replace=False)
                xs.append(pixel_features(sample, self.inputs)[pick])
                ys.append(labels[pick])
        if not xs:
            raise CloudLULCError("no labelled training pixel for the gradient-boosting peer")
        x, y = np.concatenate(xs), np.concatenate(ys)
        weight = class_weights[y] if class_weights is not None else None
        self._model = HistGradientBoostingClassifier(max_iter=self.max_iter, early_stopping=False,
                                                     random_state=self.seed)  # fmt: skip
        self._model.fit(x, y, sample_weight=weight)
        return self

    def predict(self, sample: Sample) -> npt.NDArray[np.int64]:
        """(H, W) class indices of a sample.

        Raises:
            CloudLULCError: Not fitted.
        """
        if self._model is None:
            raise CloudLULCError("PixelGBM.predict before fit")
        h, w = sample.label.shape
        return np.asarray(self._model.predict(pixel_features(sample, self.inputs)), dtype=np.int64).reshape(h, w)
