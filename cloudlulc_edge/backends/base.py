"""The backend protocol (what a backend consumes: `cloudlulc_edge.tiling.TileBatch`) and its softmax."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from cloudlulc_edge.models.loading import ModelIdentity
from cloudlulc_edge.tiling import TileBatch

__all__ = ["Backend", "softmax"]


class Backend(Protocol):
    """Anything that turns a `TileBatch` into class probabilities.

    Attributes:
        identity: The model's provenance (variant, version, weights hash).
        num_classes: Classes of the output.
        runtime: What runs the weights, e.g. ``torch fp32`` or ``onnxruntime model_int8.onnx``: two maps
            of one model differ by it (FP16/INT8), so a map records it beside the weights hash.
    """

    identity: ModelIdentity
    num_classes: int
    runtime: str

    def predict(self, batch: TileBatch) -> npt.NDArray[np.float32]:
        """Returns (B, K, t, t) float32 softmax probabilities."""
        ...


def softmax(logits: npt.NDArray[np.floating], axis: int = 1) -> npt.NDArray[np.float32]:
    """Numerically stable softmax in float32 over ``axis`` (class probabilities from logits)."""
    x = logits.astype(np.float32, copy=True)
    x -= x.max(axis=axis, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=axis, keepdims=True)
    return x
