"""Calibration tiles come from real scenes through the inference readers, stratified and reproducible."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cloudlulc_edge.errors import ExportError
from cloudlulc_edge.export.calibration import CLOUD_BINS, CalibrationSet, build_calibration_set, cloud_proxy
from cloudlulc_edge.io.products import scan
from cloudlulc_edge.io.scene import SceneReader
from cloudlulc_edge.pairing import pair_products
from cloudlulc_edge.tiling import TileGrid, Tiler

pytestmark = pytest.mark.filterwarnings("ignore:.*assuming offset 0:UserWarning")


@pytest.fixture
def pairs(bigearthnet_v1):
    return pair_products(scan(bigearthnet_v1).products).pairs


def test_set_holds_reader_tiles_with_sources(pairs):
    cal = build_calibration_set(pairs, tile=64, tiles=12)
    assert 6 <= len(cal) <= 12
    assert {k: v.shape[1:] for k, v in cal.arrays.items()} == {
        "s2": (12, 64, 64), "s1": (2, 64, 64), "s2_valid": (1, 64, 64), "s1_valid": (1, 64, 64)
    }  # fmt: skip
    assert all(v.dtype == np.float32 for v in cal.arrays.values())
    assert {s["scene"] for s in cal.sources} == {p.name for p in pairs}  # every scene contributes
    assert {s["cloud_bin"] for s in cal.sources} <= {name for name, _ in CLOUD_BINS}
    # Each tile is exactly what the mapping pipeline feeds the model at that origin.
    first = cal.sources[0]
    pair = next(p for p in pairs if p.name == first["scene"])
    reader = SceneReader(pair.s2, pair.s1)
    try:
        batch = next(iter(Tiler(reader, TileGrid(reader.grid.height, reader.grid.width, 64, 0), 4)))
    finally:
        reader.close()
    i = list(zip(batch.tops, batch.lefts, strict=True)).index((first["top"], first["left"]))
    np.testing.assert_array_equal(cal.arrays["s2"][0], batch.model_inputs()["s2"][i])


def test_set_is_deterministic_and_round_trips(pairs, tmp_path):
    a = build_calibration_set(pairs, tile=64, tiles=12)
    b = build_calibration_set(pairs, tile=64, tiles=12)
    assert a.sources == b.sources
    digest = a.save(tmp_path / "cal.npz")
    assert digest == b.save(tmp_path / "cal2.npz")
    loaded = CalibrationSet.load(tmp_path / "cal.npz")
    assert loaded.sources == json.loads((tmp_path / "cal.json").read_text())
    for k in a.arrays:
        np.testing.assert_array_equal(loaded.arrays[k], a.arrays[k])


def test_bad_sets_are_refused(tmp_path):
    np.savez(tmp_path / "partial.npz", s2=np.zeros((1, 12, 8, 8), np.float32))
    with pytest.raises(ExportError, match="lacks inputs"):
        CalibrationSet.load(tmp_path / "partial.npz")
    with pytest.raises(ExportError, match="not found"):
        CalibrationSet.load(tmp_path / "missing.npz")
    with pytest.raises(ExportError, match="no valid tiles"):
        build_calibration_set([], tile=64)


def test_cloud_proxy_counts_bright_blue_valid_pixels():
    s2 = np.zeros((12, 4, 4), np.float32)
    s2[1, :2] = 0.5  # B02 bright in the top half
    valid = np.ones((4, 4), bool)
    assert cloud_proxy(s2, valid) == 0.5
    valid[2:] = False
    assert cloud_proxy(s2, valid) == 1.0
    assert cloud_proxy(s2, np.zeros((4, 4), bool)) == 0.0


def test_a_broken_scene_is_skipped_not_fatal(bigearthnet_v1, tmp_path):
    import shutil

    root = tmp_path / "scenes"
    shutil.copytree(bigearthnet_v1, root)
    band = next(root.glob("BigEarthNet-S2-Example/*/*_B02.tif"))
    band.write_bytes(band.read_bytes()[:200])  # truncated GeoTIFF
    pairs = pair_products(scan(root).products).pairs
    cal = build_calibration_set(pairs, tile=64, tiles=12)
    broken = band.parent.name
    assert len(cal) > 0 and broken not in {s["scene"] for s in cal.sources}
