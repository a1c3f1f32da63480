"""Tile-dependence measures: seam index and grid agreement, on constructed maps and on a real mapping run."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from cloudlulc_edge.backends import BackendSpec, open_backend
from cloudlulc_edge.pairing import plan_directory
from cloudlulc_edge.pipeline import MapOptions
from cloudlulc_edge.tile_dependence import agreement, measure_tile_dependence, seam_index
from cloudlulc_edge.tiling import TileGrid

FIXTURES = Path(__file__).resolve().parent / "data" / "sentinel"


def _smooth_map(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Blobs of classes with irregular boundaries (no straight lines)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    field = sum(np.sin(x / rng.uniform(9, 23) + rng.uniform(0, 6)) * np.cos(y / rng.uniform(9, 23)) for _ in range(4))
    return np.digitize(field, [-1.0, 0.0, 1.0]).astype(np.uint8)


def test_a_seamless_map_has_a_seam_index_near_one():
    grid = TileGrid(600, 700, tile=128, overlap=32)
    classes, valid = _smooth_map(600, 700), np.ones((600, 700), bool)
    s = seam_index(classes, valid, grid)
    assert 0.8 < s.boundary_ratio < 1.25 and 0.8 < s.band_p95_over_p95 < 1.25
    assert s.band_p95_over_median > 1.0  # the p95/median is above 1 even without seams


def test_tile_grid_seams_raise_the_seam_index():
    grid = TileGrid(600, 700, tile=128, overlap=32)
    classes = _smooth_map(600, 700)
    # A map made of independent tiles: each tile's core takes its own shuffled classes.
    seamy = classes.copy()
    rng = np.random.default_rng(1)
    for top in grid.row_origins:
        for left in grid.col_origins:
            r0, c0 = max(top + grid.overlap // 2, 0), max(left + grid.overlap // 2, 0)
            block = seamy[r0 : top + grid.tile, c0 : left + grid.tile]
            block[:] = rng.permutation(4)[block]
    valid = np.ones_like(classes, bool)
    s = seam_index(seamy, valid, grid)
    # The seams are a few lines inside each overlap band: the mean over the edge lines sees them
    # fully, the 95th percentile over all band lines only partly.
    assert s.boundary_ratio > 3.0 and s.band_p95_over_median > 2.0
    assert agreement(classes, seamy, valid) < 0.9


def test_agreement_counts_valid_pixels_only():
    a, b = np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8)
    b[0] = 1
    valid = np.ones((4, 4), bool)
    assert agreement(a, b, valid) == 0.75
    valid[0] = False
    assert agreement(a, b, valid) == 1.0


def test_the_packaged_default_maps_the_same_whatever_the_grid(tmp_path):
    inputs = tmp_path / "in"
    shutil.copytree(FIXTURES / "bigearthnet", inputs)
    (pair,) = plan_directory(inputs).pairs
    options = MapOptions(tile=64, overlap=16, s2_offset=0.0, s2_quantification=10000.0)
    backend = open_backend(BackendSpec("torch", "cloudlulc_edge", tile=64))
    result = measure_tile_dependence(pair, backend, options, wide_overlap=32, workdir=tmp_path)
    assert result.shape == (120, 120) and result.pixels == 120 * 120 and result.whole_scene_agreement is not None
    # Measured 98.6 % (half stride), 99.0 % (overlap 16 vs 32), 98.4 % (whole scene) with 64 px tiles,
    # whose 16 px overlap is far below the 512/64 of real maps: a regression bound, not the target.
    assert result.half_stride_agreement > 0.97 and result.overlap_agreement > 0.97
    assert result.whole_scene_agreement > 0.97


@pytest.mark.parametrize("offset", [-1, 48])
def test_grid_offsets_outside_the_stride_are_refused(offset):
    with pytest.raises(ValueError, match="offset"):
        TileGrid(100, 100, 64, 16, offset)
