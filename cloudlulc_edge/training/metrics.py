"""Segmentation metrics from one confusion matrix over all evaluated pixels (`model.md` §12).

OA = Σ TP / Σ all; per class IoU = TP / (TP + FP + FN), precision, recall and F1 = 2PR / (P + R);
mIoU and macro-F1 are means over the classes. A class absent from both the reference and the
prediction has no defined IoU/F1; it is left out of the means (NaN in the per-class lists) rather
than counted as 0 or 1. Pixels whose reference is the ignore index are never counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from cloudlulc_edge.contract import IGNORE_INDEX, NUM_CLASSES

__all__ = ["ConfusionMatrix", "StratifiedMetrics", "segmentation_metrics"]


def segmentation_metrics(matrix: npt.NDArray[np.int64]) -> dict[str, Any]:
    """OA, per-class IoU/F1/precision/recall, mIoU and macro-F1 of a (K, K) matrix (rows = reference).

    Returns:
        A JSON-friendly dict; per-class values are lists (NaN → None) in class order.
    """
    m = matrix.astype(np.float64)
    tp = np.diag(m)
    ref, pred = m.sum(1), m.sum(0)
    present = (ref + pred) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(present, tp / (ref + pred - tp), np.nan)
        precision = np.where(pred > 0, tp / pred, np.where(present, 0.0, np.nan))
        recall = np.where(ref > 0, tp / ref, np.where(present, 0.0, np.nan))
        f1 = np.where(present, 2 * tp / (ref + pred), np.nan)
    total = m.sum()

    def clean(values: npt.NDArray[np.float64]) -> list[float | None]:
        return [None if np.isnan(v) else float(v) for v in values]

    return {
        "pixels": int(total),
        "oa": float(tp.sum() / total) if total else None,
        "miou": float(np.nanmean(iou)) if present.any() else None,
        "macro_f1": float(np.nanmean(f1)) if present.any() else None,
        "iou": clean(iou),
        "f1": clean(f1),
        "precision": clean(precision),
        "recall": clean(recall),
    }


@dataclass
class ConfusionMatrix:
    """Accumulates a (K, K) confusion matrix, rows = reference class, columns = predicted class.

    Args:
        num_classes: K.
        ignore_index: Reference value never counted.
    """

    num_classes: int = NUM_CLASSES
    ignore_index: int = IGNORE_INDEX
    matrix: npt.NDArray[np.int64] = field(init=False)

    def __post_init__(self) -> None:
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, prediction: npt.ArrayLike, reference: npt.ArrayLike) -> None:
        """Adds the pixels of a batch.

        Args:
            prediction: Predicted class per pixel, any shape.
            reference: Reference class per pixel (same shape); ``ignore_index`` pixels are skipped.

        Raises:
            ValueError: Shapes differ, or a class index is outside ``[0, K)``.
        """
        pred = np.asarray(prediction).astype(np.int64).ravel()
        ref = np.asarray(reference).astype(np.int64).ravel()
        if pred.shape != ref.shape:
            raise ValueError(f"prediction and reference sizes differ: {pred.size} vs {ref.size}")
        keep = ref != self.ignore_index
        pred, ref = pred[keep], ref[keep]
        k = self.num_classes
        if pred.size and (pred.min() < 0 or pred.max() >= k or ref.min() < 0 or ref.max() >= k):
            raise ValueError(f"class indices must be in [0, {k}) (or the ignore index in the reference)")
        self.matrix += np.bincount(ref * k + pred, minlength=k * k).reshape(k, k)

    def metrics(self) -> dict[str, Any]:
        """`segmentation_metrics` of the accumulated matrix, plus the matrix itself."""
        return {**segmentation_metrics(self.matrix), "confusion": self.matrix.tolist()}


@dataclass
class StratifiedMetrics:
    """One confusion matrix overall and one per stratum (e.g. the paper's cloud bins).

    Args:
        strata: Stratum names in report order.
        num_classes: K.
    """

    strata: tuple[str, ...]
    num_classes: int = NUM_CLASSES
    overall: ConfusionMatrix = field(init=False)
    by_stratum: dict[str, ConfusionMatrix] = field(init=False)

    def __post_init__(self) -> None:
        self.overall = ConfusionMatrix(self.num_classes)
        self.by_stratum = {s: ConfusionMatrix(self.num_classes) for s in self.strata}

    def update(self, stratum: str, prediction: npt.ArrayLike, reference: npt.ArrayLike) -> None:
        """Adds one sample's pixels to the overall matrix and to its stratum's.

        Raises:
            KeyError: Unknown stratum.
        """
        self.by_stratum[stratum].update(prediction, reference)
        self.overall.update(prediction, reference)

    def report(self) -> Mapping[str, Any]:
        """``{"overall": metrics, "strata": {name: metrics}}`` (empty strata report zero pixels)."""
        return {"overall": self.overall.metrics(), "strata": {s: m.metrics() for s, m in self.by_stratum.items()}}
