"""The backend protocol and the tile batch it consumes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["Backend", "ModelIdentity", "TileBatch"]


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
