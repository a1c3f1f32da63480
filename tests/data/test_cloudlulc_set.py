"""The CloudLULC-Set reader on a generated fixture in the official layout, and its failure modes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from cloudlulc_edge.contract import IGNORE_INDEX
from cloudlulc_edge.data import CloudLULCSet, DatasetError, cloud_bin


def _generator():
    spec = importlib.util.spec_from_file_location("make_cloudlulc_set", Path(__file__).parent / "make_cloudlulc_set.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_cloudlulc_set


@pytest.fixture
def dataset(tmp_path) -> tuple[Path, dict[str, float]]:
    root = tmp_path / "CloudLULC-Set"
    return root, _generator()(root)


def test_splits_load_normalised_samples(dataset):
    root, _ = dataset
    sizes = {split: len(CloudLULCSet(root, split)) for split in ("train", "val", "test")}
    assert sizes == {"train": 6, "val": 2, "test": 2}
    sample = CloudLULCSet(root, "train")[1]
    assert sample.s2.shape == (12, 32, 32) and sample.s2.dtype == np.float32
    assert sample.s1.shape == (2, 32, 32) and 0.0 <= sample.s1.min() and sample.s1.max() <= 1.0
    assert 0.0 <= sample.s2.min() and sample.s2.max() <= 1.0 and sample.s2_valid.all() and sample.s1_valid.all()
    assert set(np.unique(sample.label)) <= {0, 1, 2, 3, 4, 5, IGNORE_INDEX}
    assert (sample.label[:, :2] == IGNORE_INDEX).all() and (sample.label[:, 2:] != IGNORE_INDEX).all()
    # Water (class 0) is dark in NIR B08 and low in VV; built-up (4) is bright in VV.
    water, built = sample.label == 0, sample.label == 4
    if water.any() and built.any():
        assert sample.s2[7][water].mean() < sample.s2[7][built].mean()
        assert sample.s1[0][water].mean() < sample.s1[0][built].mean()


def test_cloud_fraction_follows_the_generated_clouds(dataset):
    root, fractions = dataset
    for sample in CloudLULCSet(root, "train"):
        assert sample.cloud_fraction == pytest.approx(fractions[sample.name], abs=0.03), sample.name
    assert [cloud_bin(f) for f in (0.0, 0.2, 0.4, 0.6, 0.9)] == ["<10%", "10-30%", "30-50%", "50-70%", ">70%"]


def test_split_files_are_read_with_or_without_the_header_line(dataset):
    root, _ = dataset
    with_header = CloudLULCSet(root, "train").files
    split = root / "split" / "train.csv"
    lines = split.read_text().splitlines()
    assert lines[0].startswith("split_id")
    split.write_text("\n".join(lines[1:]) + "\n")
    assert CloudLULCSet(root, "train").files == with_header
    split.write_text("\n".join(line.replace(",", "\t") for line in lines[1:]) + "\n")  # tab-separated too
    assert CloudLULCSet(root, "train").files == with_header
    split.write_text("\n\n")
    with pytest.raises(DatasetError, match="split file is empty"):
        CloudLULCSet(root, "train")


def test_zero_based_scheme_on_one_based_labels_fails_naming_the_file(dataset):
    root, _ = dataset
    with pytest.raises(DatasetError, match=r"label ids \[6\]") as err:
        CloudLULCSet(root, "train", label_scheme="zero_based")[0]
    assert "Label" in str(err.value) and ".tif" in str(err.value)


def test_malformed_datasets_fail_with_the_file_named(dataset):
    root, _ = dataset
    with pytest.raises(DatasetError, match="split must be"):
        CloudLULCSet(root, "holdout")
    (root / "split" / "val.csv").unlink()
    with pytest.raises(DatasetError, match=r"split file is missing") as err:
        CloudLULCSet(root, "val")
    assert "val.csv" in str(err.value)
    test_csv = root / "split" / "test.csv"
    test_csv.write_text(test_csv.read_text().replace("\n3,", "\n1,", 1))
    with pytest.raises(DatasetError, match="split_id 1 in the test file"):
        CloudLULCSet(root, "test")
    (root / "split" / "test.csv").write_text("id,vh\n3,a.tif\n")
    with pytest.raises(DatasetError, match="split header"):
        CloudLULCSet(root, "test")

    train = CloudLULCSet(root, "train")
    files = train.files
    import rasterio

    with rasterio.open(files[0].label, "r+") as ds:  # an unknown label id
        data = ds.read(1)
        data[5, 5] = 9
        ds.write(data, 1)
    with pytest.raises(DatasetError, match=r"label ids \[9\]"):
        train[0]
    with rasterio.open(files[1].sar_vv) as ds:  # a modality of another size
        profile, data = ds.profile, ds.read()
    profile.update(width=16)
    with rasterio.open(files[1].sar_vv, "w", **profile) as ds:
        ds.write(data[:, :, :16])
    with pytest.raises(DatasetError, match="differs from the label") as err:
        train[1]
    assert files[1].sar_vv.name in str(err.value)
    files[2].opt_cloudy.write_bytes(files[2].opt_cloudy.read_bytes()[:200])  # truncated
    with pytest.raises(DatasetError, match="unreadable GeoTIFF"):
        train[2]
    files[3].opt_clear.unlink()
    with pytest.raises(DatasetError, match="missing"):
        train[3]


def test_augmentation_moves_every_array_together(dataset):
    from cloudlulc_edge.data import Augment

    root, _ = dataset
    sample = CloudLULCSet(root, "train")[2]
    rng = np.random.default_rng(3)
    seen = set()
    for _ in range(12):
        out = Augment(crop=24)(sample, rng)
        assert out.s2.shape == (12, 24, 24) and out.s1.shape == (2, 24, 24) and out.label.shape == (24, 24)
        # Pixels keep their class-to-spectrum pairing: the same (label → mean NIR) relation holds.
        for cls in np.unique(out.label):
            if cls != IGNORE_INDEX:
                orig = sample.s2_clear[7][sample.label == cls].mean()
                assert out.s2_clear[7][out.label == cls].mean() == pytest.approx(orig, abs=0.01)
        assert (out.s2_valid.shape, out.s1_valid.shape) == ((24, 24), (24, 24))
        seen.add(out.label.tobytes())
    assert len(seen) > 1  # it does augment
    assert sample.s2.shape == (12, 32, 32)  # the input is untouched
    full = Augment(flip=False, rot90=False)(sample, rng)
    np.testing.assert_array_equal(full.s2, sample.s2)
    with pytest.raises(ValueError, match="larger than"):
        Augment(crop=64)(sample, rng)
