"""Tile geometry, blend weights and the streaming row blender."""

from __future__ import annotations

import numpy as np
import pytest

from cloudlulc_edge.tiling import RowBlender, TileGrid, blend_weights, reflect_index


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


def test_blender_reconstructs_a_probability_field_and_streams_rows() -> None:
    h, w, t, o = 300, 260, 64, 16
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
    assert emitted == sorted(emitted) and len(emitted) == len(grid.row_origins)
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
