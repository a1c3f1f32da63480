"""The backend protocol and the tile batch it consumes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["Backend", "ModelIdentity", "TileBatch", "graph_inputs", "softmax"]


@dataclass
class TileBatch:
    """Normalised input tiles and where they go.

    Attributes:
        s2: (B, 12, t, t) float32 optical input.
        s2_valid: (B, t, t) bool optical validity.
        s1: (B, 2, t, t) float32 SAR input, or None for S2-only scenes.
        s1_valid: (B, t, t) bool SAR coverage, or None.
        tops: Tile origin rows, length B.
        lefts: Tile origin columns, length B.
    """

    s2: npt.NDArray[np.float32]
    s2_valid: npt.NDArray[np.bool_]
    s1: npt.NDArray[np.float32] | None
    s1_valid: npt.NDArray[np.bool_] | None
    tops: list[int]
    lefts: list[int]

    def __len__(self) -> int:
        return len(self.tops)


@dataclass(frozen=True)
class ModelIdentity:
    """What produced a map, for provenance tags.

    Attributes:
        name: Model variant name.
        version: Package version that wrote the weights (or ``untrained``).
        sha256: SHA-256 of the weights file (or ``untrained``).
        tile: Tile side the model expects.
    """

    name: str
    version: str
    sha256: str
    tile: int


class Backend(Protocol):
    """Anything that turns a `TileBatch` into class probabilities."""

    identity: ModelIdentity
    num_classes: int

    def predict(self, batch: TileBatch) -> npt.NDArray[np.float32]:
        """Returns (B, K, t, t) float32 softmax probabilities."""
        ...


def graph_inputs(batch: TileBatch) -> dict[str, npt.NDArray[np.float32]]:
    """The four inputs of an exported graph (ONNX / TensorRT) for a tile batch.

    S2-only tiles get zero SAR with zero SAR validity, which the model maps to its missing-SAR
    embeddings exactly as it does for ``s1=None``.

    Args:
        batch: Tiles from the readers.

    Returns:
        ``{"s2": (B,12,t,t), "s1": (B,2,t,t), "s2_valid": (B,1,t,t), "s1_valid": (B,1,t,t)}`` float32.
    """
    b, _, h, w = batch.s2.shape
    s1 = batch.s1 if batch.s1 is not None else np.zeros((b, 2, h, w), np.float32)
    s1_valid = batch.s1_valid if batch.s1_valid is not None else np.zeros((b, h, w), np.bool_)
    return {
        "s2": np.ascontiguousarray(batch.s2, dtype=np.float32),
        "s1": np.ascontiguousarray(s1, dtype=np.float32),
        "s2_valid": batch.s2_valid[:, None].astype(np.float32),
        "s1_valid": s1_valid[:, None].astype(np.float32),
    }


def softmax(logits: npt.NDArray[np.floating], axis: int = 1) -> npt.NDArray[np.float32]:
    """Numerically stable softmax in float32 over ``axis`` (class probabilities from logits)."""
    x = logits.astype(np.float32, copy=True)
    x -= x.max(axis=axis, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=axis, keepdims=True)
    return x
