"""Tile geometry, blend weights and the streaming row blender."""

from __future__ import annotations

import numpy as np
import pytest

from cloudlulc_edge.io.grid import Strip
from cloudlulc_edge.tiling import EMIT_ROWS, RowBlender, TileGrid, Tiler, blend_weights, reflect_index


@pytest.mark.parametrize(("length", "tile", "overlap"), [(1000, 256, 64), (256, 256, 32), (100, 128, 32), (1, 64, 0)])
def test_origins_cover_the_scene(length: int, tile: int, overlap: int) -> None:
    grid = TileGrid(length, length, tile, overlap)
    covered = np.zeros(length, bool)
    for o in grid.row_origins:
        covered[max(0, o) : max(0, o + tile)] = True
    assert covered.all()
    assert grid.row_origins[0] == -(overlap // 2)


def test_ramps_sum_to_one_across_an_overlap() -> None:
    w = blend_weights(128, 32)[64]  # a middle row: the 1-D ramp
    assert (w > 0).all()
    np.testing.assert_allclose(w[-32:] + w[:32], 1.0, atol=1e-6)
    assert (w[32:-32] == 1).all()


def test_reflect_index_mirrors_without_repeating_the_edge() -> None:
    np.testing.assert_array_equal(reflect_index(np.arange(-3, 8), 5), [3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1])


@pytest.mark.parametrize(("h", "w", "t", "o"), [(300, 260, 64, 16), (700, 300, 2 * EMIT_ROWS + 64, 64)])
def test_blender_reconstructs_a_probability_field_and_streams_rows(h: int, w: int, t: int, o: int) -> None:
    rng = np.random.default_rng(0)
    field = rng.random((3, h, w)).astype(np.float32)
    field /= field.sum(axis=0, keepdims=True)
    valid = np.ones((h, w), bool)
    valid[:, 200:] = False  # nodata columns get no class
    grid = TileGrid(h, w, t, o)
    blender = RowBlender(grid, 3)
    out = np.zeros_like(field)
    predicted = np.zeros((h, w), bool)
    emitted = []
    for top in grid.row_origins:
        for left in grid.col_origins:
            r, c = reflect_index(np.arange(top, top + t), h), reflect_index(np.arange(left, left + t), w)
            tile = field[np.ix_(np.arange(3), r, c)]
            for rows in blender.add(tile, valid[np.ix_(r, c)], top, left):
                emitted.append(rows.row0)
                out[:, rows.row0 : rows.row0 + rows.predicted.shape[0]] = rows.probabilities
                predicted[rows.row0 : rows.row0 + rows.predicted.shape[0]] = rows.predicted
    for rows in blender.finish():
        emitted.append(rows.row0)
        out[:, rows.row0 : rows.row0 + rows.predicted.shape[0]] = rows.probabilities
        predicted[rows.row0 : rows.row0 + rows.predicted.shape[0]] = rows.predicted
    assert emitted == sorted(emitted)
    # One block per tile row, split into blocks of at most EMIT_ROWS rows.
    assert len(emitted) == sum(-(-n // EMIT_ROWS) for n in np.diff([*[max(0, r) for r in grid.row_origins[1:]], h],
                                                                    prepend=0))  # fmt: skip
    np.testing.assert_array_equal(predicted, valid)
    np.testing.assert_allclose(out[:, valid], field[:, valid], atol=1e-5)  # identical tiles blend to themselves
    assert blender._acc.shape == (3, t, w)  # memory: one tile of rows, whatever the height


def test_skipped_tile_rows_are_emitted_as_not_predicted() -> None:
    grid = TileGrid(400, 64, 64, 16)
    blender = RowBlender(grid, 2)
    last = grid.row_origins[-1]
    rows = list(blender.add(np.full((2, 64, 64), 0.5, np.float32), np.ones((64, 64), bool), last, -8))
    rows += list(blender.finish())
    total = sum(r.predicted.shape[0] for r in rows)
    assert total == 400
    assert not np.concatenate([r.predicted for r in rows])[: max(0, last)].any()


class _FieldReader:
    """A strip reader over an in-memory scene (the `StripReader` protocol)."""

    def __init__(self, s2: np.ndarray, valid: np.ndarray, s1: np.ndarray | None) -> None:
        self.s2, self.valid, self.s1 = s2, valid, s1
        self.reads: list[tuple[int, int, int, int]] = []

    def read(self, row0: int, nrows: int, col0: int = 0, ncols: int | None = None) -> Strip:
        ncols = self.s2.shape[2] - col0 if ncols is None else ncols
        self.reads.append((row0, nrows, col0, ncols))
        rows, cols = slice(row0, row0 + nrows), slice(col0, col0 + ncols)
        s1 = None if self.s1 is None else self.s1[:, rows, cols].copy()
        return Strip(row0, self.s2[:, rows, cols].copy(), self.valid[rows, cols].copy(), s1,
                     None if s1 is None else self.valid[rows, cols].copy())  # fmt: skip


@pytest.mark.parametrize("with_s1", [True, False])
def test_tiler_gathers_reflected_tiles_in_row_order_and_drops_empty_ones(with_s1: bool) -> None:
    h, w, t, o, batch = 150, 230, 64, 16, 3
    rng = np.random.default_rng(1)
    s2 = rng.random((12, h, w)).astype(np.float32)
    s1 = rng.random((2, h, w)).astype(np.float32) if with_s1 else None
    valid = np.ones((h, w), bool)
    valid[:60, :] = False  # the first tile row is nodata: dropped
    grid = TileGrid(h, w, t, o)
    reader = _FieldReader(s2, valid, s1)
    tiler = Tiler(reader, grid, batch)
    batches = list(tiler)
    seen = [(top, left) for b in batches for top, left in zip(b.tops, b.lefts, strict=True)]
    expected = [(top, left) for top in grid.row_origins for left in grid.col_origins
                if valid[np.ix_(reflect_index(np.arange(top, top + t), h), reflect_index(np.arange(left, left + t), w))]
                [max(0, -top) : h - top, max(0, -left) : w - left].any()]  # fmt: skip
    assert seen == expected and tiler.skipped == len(grid) - len(expected) > 0
    assert [len(b) for b in batches[:-1]] == [batch] * (len(batches) - 1) and 1 <= len(batches[-1]) <= batch
    for b in batches:
        for k, (top, left) in enumerate(zip(b.tops, b.lefts, strict=True)):
            r, c = reflect_index(np.arange(top, top + t), h), reflect_index(np.arange(left, left + t), w)
            np.testing.assert_array_equal(b.s2[k], s2[np.ix_(np.arange(12), r, c)])
            np.testing.assert_array_equal(b.s2_valid[k], valid[np.ix_(r, c)])
            if with_s1:
                np.testing.assert_array_equal(b.s1[k], s1[np.ix_(np.arange(2), r, c)])  # type: ignore[index]
            else:
                assert b.s1 is None and b.s1_valid is None
        assert b.s2.dtype == np.float32 and b.s2.flags.c_contiguous
    # Input memory: every read is one tile row high and at most a batch of tiles wide.
    assert max(n for _, n, _, _ in reader.reads) <= t
    assert max(nc for *_, nc in reader.reads) <= batch * grid.stride + o
