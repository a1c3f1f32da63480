"""Tile geometry, the tiler (strips → tile batches), Hann blend weights and the row-streaming blender.

This module is the "Tiler" and "Blender" of the data flow (`sentinel.md` §13): `Tiler` reads a
scene through any strip reader in tile-row chunks and yields `TileBatch` objects; the backend
turns them into probabilities; `RowBlender` blends them back into finished map rows.

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

Tiling: `Tiler` reads each tile row in chunks of ``batch_size`` tiles across (reflected at the
scene edges), so its input memory depends on neither scene height nor width; all-nodata tiles are
dropped and counted (`Tiler.skipped`). ``TileGrid.offset`` shifts the whole grid up and left,
which `cloudlulc_edge.tile_dependence` uses to map one scene with two grids.

Streaming: tiles arrive in row-major order. `RowBlender` keeps an accumulator of one tile's
height; when the first tile of the next tile row arrives, every row above that tile's top is
final (no later tile touches it) and is emitted. Memory is O(tile × width), not O(height).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from cloudlulc_edge.io.grid import Strip

__all__ = [
    "EMIT_ROWS",
    "FinishedRows",
    "RowBlender",
    "StripReader",
    "TileBatch",
    "TileGrid",
    "Tiler",
    "blend_weights",
    "reflect_index",
]


def _origins(length: int, tile: int, overlap: int, offset: int = 0) -> list[int]:
    pad = overlap // 2 + offset
    start, end = -pad, length + overlap // 2
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
        offset: Extra shift of the grid up and left, pixels (0 ≤ offset < tile − overlap): the same
            scene tiled by another grid.
    """

    height: int
    width: int
    tile: int = 512
    overlap: int = 64
    offset: int = 0

    def __post_init__(self) -> None:
        if self.tile <= 0 or not 0 <= self.overlap < self.tile or self.overlap % 2:
            raise ValueError(
                f"need 0 <= overlap < tile and an even overlap, got tile={self.tile} overlap={self.overlap}"
            )
        if not 0 <= self.offset < self.tile - self.overlap:
            raise ValueError(f"grid offset must lie in [0, {self.tile - self.overlap}), got {self.offset}")
        if self.height <= 0 or self.width <= 0:
            raise ValueError(f"empty scene {self.height}x{self.width}")

    @property
    def stride(self) -> int:
        """Step between neighbouring tile origins, pixels."""
        return self.tile - self.overlap

    @property
    def row_origins(self) -> list[int]:
        """Top row of each tile row (may be negative: reflect padding)."""
        return _origins(self.height, self.tile, self.overlap, self.offset)

    @property
    def col_origins(self) -> list[int]:
        """Left column of each tile column (may be negative)."""
        return _origins(self.width, self.tile, self.overlap, self.offset)

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

    def select(self, part: slice) -> TileBatch:
        """The tiles ``part`` of this batch (views, no copies)."""
        return TileBatch(
            s2=self.s2[part],
            s2_valid=self.s2_valid[part],
            s1=self.s1[part] if self.s1 is not None else None,
            s1_valid=self.s1_valid[part] if self.s1_valid is not None else None,
            tops=self.tops[part],
            lefts=self.lefts[part],
        )

    def model_inputs(self) -> dict[str, npt.NDArray[np.float32]]:
        """The four inputs of the model's forward and of every exported graph (ONNX, TensorRT).

        S2-only tiles get zero SAR with zero SAR validity, which the model maps to its missing-SAR
        embeddings exactly as it does for ``s1=None``.

        Returns:
            ``{"s2": (B,12,t,t), "s1": (B,2,t,t), "s2_valid": (B,1,t,t), "s1_valid": (B,1,t,t)}`` float32.
        """
        b, _, h, w = self.s2.shape
        s1 = self.s1 if self.s1 is not None else np.zeros((b, 2, h, w), np.float32)
        s1_valid = self.s1_valid if self.s1_valid is not None else np.zeros((b, h, w), np.bool_)
        return {
            "s2": np.ascontiguousarray(self.s2, dtype=np.float32),
            "s1": np.ascontiguousarray(s1, dtype=np.float32),
            "s2_valid": self.s2_valid[:, None].astype(np.float32),
            "s1_valid": s1_valid[:, None].astype(np.float32),
        }


class StripReader(Protocol):
    """Anything that reads model-ready strips of a scene's grid (`cloudlulc_edge.io.scene.SceneReader`)."""

    def read(self, row0: int, nrows: int, col0: int = 0, ncols: int | None = None) -> Strip:
        """The window ``[row0, row0 + nrows) × [col0, col0 + ncols)`` of the grid."""
        ...


class Tiler:
    """Cuts a scene into tile batches in row-major order; all-nodata tiles are dropped and counted.

    Iterate it once. Each tile row is read in chunks of ``batch_size`` tiles across (reflected at
    the scene edges), so input memory depends on neither scene height nor width.

    Args:
        reader: The scene's strip reader.
        grid: Its tile grid.
        batch_size: Tiles per batch (the last batch may be smaller).

    Attributes:
        skipped: All-nodata tiles dropped so far (final once iteration ends).
        read_seconds: Time spent reading strips so far.
    """

    def __init__(self, reader: StripReader, grid: TileGrid, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.reader = reader
        self.grid = grid
        self.batch_size = batch_size
        self.skipped = 0
        self.read_seconds = 0.0

    def __iter__(self) -> Iterator[TileBatch]:
        grid, t, batch_size = self.grid, self.grid.tile, self.batch_size
        pending = _PendingBatch(batch_size)
        col_origins = grid.col_origins
        chunks = [col_origins[i : i + batch_size] for i in range(0, len(col_origins), batch_size)]
        for top, chunk in ((top, chunk) for top in grid.row_origins for chunk in chunks):
            start = time.perf_counter()
            rows = reflect_index(np.arange(top, top + t), grid.height)
            chunk_cols = reflect_index(np.arange(chunk[0], chunk[-1] + t), grid.width)
            lo, hi = int(rows.min()), int(rows.max()) + 1
            c_lo, c_hi = int(chunk_cols.min()), int(chunk_cols.max()) + 1
            strip = self.reader.read(lo, hi - lo, c_lo, c_hi - c_lo)
            r = rows - lo
            in_rows = (np.arange(top, top + t) >= 0) & (np.arange(top, top + t) < grid.height)
            self.read_seconds += time.perf_counter() - start
            for left in chunk:
                cols = reflect_index(np.arange(left, left + t), grid.width) - c_lo
                in_cols = (np.arange(left, left + t) >= 0) & (np.arange(left, left + t) < grid.width)
                s2_valid = strip.s2_valid[np.ix_(r, cols)]
                if not s2_valid[np.ix_(in_rows, in_cols)].any():
                    self.skipped += 1
                    continue
                pending.add(top, left, strip, r, cols, s2_valid)
                if pending.full:
                    yield pending.take()
            del strip  # release this chunk's inputs before the next read
        if pending.count:
            yield pending.take()


class _PendingBatch:
    """A tile batch being filled: tiles are gathered straight into the batch's arrays.

    Gathering into preallocated (B, C, t, t) arrays, instead of collecting tiles and stacking
    them, keeps one copy of a batch's inputs instead of two while it is built.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.count = 0
        self._arrays: dict[str, npt.NDArray[np.generic]] = {}
        self._tops: list[int] = []
        self._lefts: list[int] = []

    @property
    def full(self) -> bool:
        return self.count == self.size

    def add(self, top: int, left: int, strip: Strip, rows: npt.NDArray[np.int64], cols: npt.NDArray[np.int64],
            s2_valid: npt.NDArray[np.bool_]) -> None:  # fmt: skip
        """Gathers one tile (rows × cols of the strip, reflected indices) into the next batch slot."""
        # Gather the tile directly: slicing rows first would copy the whole (C, t, W) row band per tile.
        parts: dict[str, npt.NDArray[np.generic] | None] = {"s2": strip.s2, "s2_valid": s2_valid, "s1": strip.s1,
                                                             "s1_valid": strip.s1_valid}  # fmt: skip
        for name, source in parts.items():
            if source is None:
                continue
            tile = source if name == "s2_valid" else source[..., rows[:, None], cols[None, :]]
            if name not in self._arrays:
                self._arrays[name] = np.empty((self.size, *tile.shape), dtype=tile.dtype)
            self._arrays[name][self.count] = tile
        self._tops.append(top)
        self._lefts.append(left)
        self.count += 1

    def take(self) -> TileBatch:
        """The batch filled so far (trimmed to its tiles); the next `add` starts a new one."""
        n, arrays = self.count, {k: v[: self.count] for k, v in self._arrays.items()}
        batch = TileBatch(s2=arrays["s2"], s2_valid=arrays["s2_valid"], s1=arrays.get("s1"),  # type: ignore[arg-type]
                          s1_valid=arrays.get("s1_valid"), tops=self._tops[:n], lefts=self._lefts[:n])  # type: ignore[arg-type]  # fmt: skip
        self.count, self._arrays, self._tops, self._lefts = 0, {}, [], []
        return batch


#: Most rows `RowBlender` emits at once: each emit is a (C, n, W) float32 copy plus the writer's
#: per-row temporaries: 34 MB of probabilities for a 10980-column scene with 6 classes.
EMIT_ROWS = 128


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
            # At most EMIT_ROWS at once: bounds the normalised copy handed to the writer (and its temporaries).
            for r0 in range(0, n, EMIT_ROWS):
                rows = slice(r0, min(n, r0 + EMIT_ROWS))
                wsum = self._wsum[rows]
                predicted = wsum > 0
                probs = self._acc[:, rows] / np.where(predicted, wsum, np.float32(1.0))
                yield FinishedRows(self._base + r0, probs.astype(np.float32, copy=False), predicted)
            # Shift the accumulator up by n rows (numpy buffers overlapping copies) and clear the freed tail.
            self._acc[:, : t - n] = self._acc[:, n:]
            self._acc[:, t - n :] = 0.0
            self._wsum[: t - n] = self._wsum[n:]
            self._wsum[t - n :] = 0.0
            self._base += n
