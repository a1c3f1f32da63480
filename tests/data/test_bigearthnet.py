"""BigEarthNet + Dynamic World teacher labels: the default model's training data."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from cloudlulc_edge.contract import IGNORE_INDEX
from cloudlulc_edge.data.bigearthnet import BigEarthNetDW
from cloudlulc_edge.data.cloudlulc_set import DatasetError
from cloudlulc_edge.io.products import scan
from cloudlulc_edge.io.scene import SceneReader
from cloudlulc_edge.pairing import pair_products
from tests.conftest import shared_data


def test_splits_follow_bigearthnet_and_never_overlap():
    root = shared_data()
    splits = {s: BigEarthNetDW(root, s) for s in ("train", "val", "test")}
    names = {s: {p.name for p in d.patches} for s, d in splits.items()}
    assert {s: len(n) for s, n in names.items()} == {"train": 24, "val": 17, "test": 11}
    assert not (names["train"] & names["val"]) and not (names["train"] & names["test"])
    assert not (names["val"] & names["test"])
    # The six georeferenced v1 examples (the demo's scenes) have no BigEarthNet split: train.
    assert sum(p.dataset == "BigEarthNet-v1" for p in splits["train"].patches) == 6


def test_samples_follow_the_input_contract():
    data = BigEarthNetDW(shared_data(), "val")
    for sample in data:
        assert sample.s2.shape == (12, 120, 120) and sample.s1.shape == (2, 120, 120)
        assert sample.s2.dtype == np.float32 and 0 <= sample.s2.min() and sample.s2.max() <= 1
        assert 0 <= sample.s1.min() and sample.s1.max() <= 1
        assert set(np.unique(sample.label)) <= {0, 1, 2, 3, 4, 5, IGNORE_INDEX}
        np.testing.assert_array_equal(sample.s2, sample.s2_clear)
        assert sample.cloud_fraction == 0.0


def test_geotiff_patches_match_what_the_scene_reader_feeds_the_model():
    """Training inputs equal mapping inputs: same warp of the 20/60 m bands, same normalisation."""
    root = shared_data()
    sample = next(s for s in BigEarthNetDW(root, "train") if s.name.endswith("36_85"))
    plan = pair_products(scan(root / "bigearthnet-v1").products)
    pair = next(p for p in plan.pairs if p.name.endswith("36_85"))
    reader = SceneReader(pair.s2, pair.s1, s2_offset=0.0, s2_quantification=10000.0)
    try:
        strip = reader.read(0, 120)
    finally:
        reader.close()
    np.testing.assert_allclose(sample.s2, strip.s2, atol=1e-5)
    np.testing.assert_allclose(sample.s1, strip.s1, atol=1e-4)


def _copy_data(tmp_path):
    root = tmp_path / "data"
    for name in ("bigearthnet-v2", "dw-labels"):
        shutil.copytree(shared_data(name), root / name)
    return root


def test_missing_and_malformed_files_name_the_file(tmp_path):
    root = _copy_data(tmp_path)
    data = BigEarthNetDW(root, "test")
    assert len(data) == 7  # only the v2 part is installed here: the other datasets are left out
    victim = data.patches[0]
    np.savez(victim.label, lulc6_label=np.full((120, 120), 9, dtype=np.uint8))
    with pytest.raises(DatasetError, match="unexpected label id") as info:
        data[0]
    assert victim.label.name in str(info.value)
    victim.s2.write_bytes(b"not an npz")
    with pytest.raises(DatasetError, match="unreadable") as info:
        data[0]
    assert victim.s2.name in str(info.value)
    victim.s1.unlink()
    with pytest.raises(DatasetError, match="has no file") as info:
        BigEarthNetDW(root, "test")
    assert victim.s1.name in str(info.value)
    (root / "dw-labels" / "manifest.csv").unlink()
    with pytest.raises(DatasetError, match="manifest"):
        BigEarthNetDW(root, "train")
