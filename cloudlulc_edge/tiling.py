"""Tile geometry, Hann blend weights and the row-streaming blender (`sentinel.md` §13).

Geometry: tiles of ``tile × tile`` pixels step by ``stride = tile − overlap``. The scene is
virtually reflect-padded by ``overlap // 2`` on every side, so scene edges sit inside a tile
rather than on its border; the last tile of a row/column is shifted inward to end at the padded
edge, and a scene smaller than a tile is reflect-padded up to one tile. Pixels outside the
scene are read by reflection (`reflect_rows` / `reflect_cols`), never zero-filled (zeros look
like nodata or water).

Blending: each tile's softmax probabilities are weighted by the outer product of 1-D raised
cosine ramps over the overlap (flat 1 inside) and accumulated as Σw·p and Σw; the map is
argmax(Σw·p / Σw). The rising ramp ``0.5 − 0.5·cos(π(i + ½)/overlap)`` and its mirror sum to
exactly 1 across an overlap of ``overlap`` pixels, and every weight is > 0.

Streaming: tiles arrive in row-major order. `RowBlender` keeps an accumulator of one tile's
height; when the first tile of the next tile row arrives, every row above that tile's top is
final (no later tile touches it) and is emitted. Memory is O(tile × width), not O(height).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["FinishedRows", "RowBlender", "TileGrid", "blend_weights", "reflect_index"]


def _origins(length: int, tile: int, overlap: int) -> list[int]:
    pad = overlap // 2
    start, end = -pad, length + pad
    if end - start <= tile:
        return [start]
    stride = tile - overlap
    n = math.ceil((end - start - tile) / stride) + 1
    origins = [start + i * stride for i in range(n)]
    origins[-1] = end - tile  # shift the last tile inward
    return sorted(set(origins))


@dataclass(frozen=True)
class TileGrid:
    """Tile origins covering a ``height × width`` scene.

    Attributes:
        height: Scene rows.
        width: Scene columns.
        tile: Tile side, pixels (the model's tile).
        overlap: Overlap between neighbouring tiles, pixels (even, < tile).
    """

    height: int
    width: int
    tile: int = 512
    overlap: int = 64

    def __post_init__(self) -> None:
        if self.tile <= 0 or not 0 <= self.overlap < self.tile or self.overlap % 2:
            raise ValueError(
                f"need 0 <= overlap < tile and an even overlap, got tile={self.tile} overlap={self.overlap}"
            )
        if self.height <= 0 or self.width <= 0:
            raise ValueError(f"empty scene {self.height}x{self.width}")

    @property
    def row_origins(self) -> list[int]:
        """Top row of each tile row (may be negative: reflect padding)."""
        return _origins(self.height, self.tile, self.overlap)

    @property
    def col_origins(self) -> list[int]:
        """Left column of each tile column (may be negative)."""
        return _origins(self.width, self.tile, self.overlap)

    def __len__(self) -> int:
        return len(self.row_origins) * len(self.col_origins)


def reflect_index(index: npt.NDArray[np.int64], length: int) -> npt.NDArray[np.int64]:
    """Maps indices outside ``[0, length)`` into it by mirror reflection (edge not repeated)."""
    if length == 1:
        return np.zeros_like(index)
    period = 2 * (length - 1)
    m = np.mod(index, period)
    return np.where(m < length, m, period - m)


def blend_weights(tile: int, overlap: int) -> npt.NDArray[np.float32]:
    """(tile, tile) float32 raised-cosine weights: ramps over the overlap, 1 inside."""
    ramp = np.ones(tile, dtype=np.float64)
    if overlap:
        i = np.arange(overlap, dtype=np.float64)
        rise = 0.5 - 0.5 * np.cos(np.pi * (i + 0.5) / overlap)
        ramp[:overlap] = rise
        ramp[-overlap:] = rise[::-1]
    return np.outer(ramp, ramp).astype(np.float32)


@dataclass
class FinishedRows:
    """Rows of the map that no later tile can change.

    Attributes:
        row0: First scene row.
        probabilities: (C, n, W) float32 blended probabilities (0 where nothing was predicted).
        predicted: (n, W) bool, True where at least one tile contributed a valid pixel (the map mask).
    """

    row0: int
    probabilities: npt.NDArray[np.float32]
    predicted: npt.NDArray[np.bool_]


class RowBlender:
    """Accumulates weighted tile probabilities and emits finished rows in order.

    Args:
        grid: The tile grid of the scene.
        num_classes: Probability channels per tile.
    """

    def __init__(self, grid: TileGrid, num_classes: int) -> None:
        self.grid = grid
        self.weights = blend_weights(grid.tile, grid.overlap)
        self._acc = np.zeros((num_classes, grid.tile, grid.width), dtype=np.float32)
        self._wsum = np.zeros((grid.tile, grid.width), dtype=np.float32)
        self._base = 0  # scene row of accumulator row 0
        self._row_top: int | None = None

    def add(
        self,
        probabilities: npt.NDArray[np.float32],
        valid: npt.NDArray[np.bool_],
        top: int,
        left: int,
    ) -> Iterator[FinishedRows]:
        """Adds one tile; yields the rows finished by moving on to a new tile row.

        Tiles skipped by the caller (all nodata) need no call: rows above the next tile's top are
        emitted as not predicted.

        Args:
            probabilities: (C, tile, tile) softmax probabilities of the tile.
            valid: (tile, tile) bool, pixels that may receive a class (the S2 footprint).
            top: Tile origin row (may be negative).
            left: Tile origin column (may be negative).

        Raises:
            ValueError: Tiles arrive out of row order.
        """
        if self._row_top is not None and top < self._row_top:
            raise ValueError(f"tiles must arrive in row order: row {top} after {self._row_top}")
        if self._base < max(0, top):
            yield from self._emit(max(0, top))
        self._row_top = top
        t = self.grid.tile
        r0, r1 = max(0, top), min(self.grid.height, top + t)
        c0, c1 = max(0, left), min(self.grid.width, left + t)
        if r1 <= r0 or c1 <= c0:
            return
        tr, tc = slice(r0 - top, r1 - top), slice(c0 - left, c1 - left)
        w = self.weights[tr, tc] * valid[tr, tc]  # nodata pixels get zero blend weight
        ar = slice(r0 - self._base, r1 - self._base)
        self._acc[:, ar, c0:c1] += probabilities[:, tr, tc] * w
        self._wsum[ar, c0:c1] += w

    def finish(self) -> Iterator[FinishedRows]:
        """Emits every remaining row."""
        yield from self._emit(self.grid.height)

    def _emit(self, until: int) -> Iterator[FinishedRows]:
        t = self.grid.tile
        while self._base < min(until, self.grid.height):
            n = min(until, self.grid.height) - self._base
            n = min(n, t)  # rows past the accumulator (skipped tiles) were never touched
            wsum = self._wsum[:n]
            predicted = wsum > 0
            probs = (self._acc[:, :n] / np.where(predicted, wsum, np.float32(1.0))).astype(np.float32, copy=False)
            yield FinishedRows(self._base, probs, predicted.copy())
            # Shift the accumulator up by n rows and clear the freed tail.
            self._acc[:, : t - n] = self._acc[:, n:].copy()
            self._acc[:, t - n :] = 0.0
            self._wsum[: t - n] = self._wsum[n:].copy()
            self._wsum[t - n :] = 0.0
            self._base += n
