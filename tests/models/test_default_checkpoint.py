"""The packaged default checkpoint: present, verified, small, and honest about its training data."""

from __future__ import annotations

import pytest
import torch

from cloudlulc_edge.models.checkpoint import load_checkpoint
from cloudlulc_edge.models.loading import UntrainedModelError, load_model
from cloudlulc_edge.weights import DEFAULT_CHECKPOINTS, default_checkpoint


def test_the_default_checkpoint_ships_and_verifies():
    path = default_checkpoint("cloudlulc_edge")
    assert path == DEFAULT_CHECKPOINTS["cloudlulc_edge"]
    size = sum(f.stat().st_size for f in path.iterdir())
    assert size <= 20 * 2**20
    model, card = load_checkpoint(path)  # checks weights sha256, card schema and input contract
    assert card.variant == "cloudlulc_edge"
    data = card.training["data"]
    assert "teacher" in data["labels"] and "NOT ground truth" in data["labels"]
    assert "BigEarthNet" in data["dataset"] and "simulated" in data["clouds"]
    assert card.training["config"]["inputs"] == "cloudy_s2+s1"
    assert (path / "TRAINING.md").read_text().count("teacher") >= 1
    with torch.no_grad():
        logits = model(torch.rand(1, 12, 64, 64), torch.rand(1, 2, 64, 64))
    assert logits.shape == (1, 6, 64, 64) and torch.isfinite(logits).all()


def test_mapping_uses_the_default_checkpoint_unless_told_otherwise(tmp_path):
    _, card = load_checkpoint(default_checkpoint("cloudlulc_edge"))
    identity = load_model("cloudlulc_edge", None, 128).identity
    assert identity.sha256 == card.weights_sha256 and identity.version != "untrained"
    with pytest.raises(UntrainedModelError, match="no trained weights"):  # no packaged checkpoint for this variant
        load_model("test_tiny", None, 128)
    tiny = load_model("test_tiny", None, 128, allow_untrained=True).identity
    assert tiny.version == "untrained" and not tiny.trained
    assert default_checkpoint("cloudlulc_net") is None


def test_the_shipped_checkpoint_is_tile_independent_and_its_missing_sar_path_is_trained():
    model, card = load_checkpoint(default_checkpoint("cloudlulc_edge"))
    assert model.config.tile_independent and card.config.norm == "layer"
    assert card.training["config"]["s1_drop"] > 0 and card.training["config"]["s1_partial_drop"] > 0
    # The recipe drops S1, so the learned "missing SAR" features are trained (they were all zero before).
    assert all(float(p.detach().abs().sum()) > 0 for p in model.sar_missing)


def test_an_s2_only_scene_maps_with_the_missing_sar_path(tmp_path):
    """The packaged model on the six real BigEarthNet v1 scenes with their S1 left out, through `map`.

    These patches are in the default model's training set: the figure is an in-sample regression
    floor (measured 81.5 % on them; 83.1 % over all 52 patches). The held-out S2-only accuracy is
    the cross-validation's "S1 removed" row (docs/default-model.md).
    """
    import shutil

    import numpy as np
    import rasterio
    from typer.testing import CliRunner

    from cloudlulc_edge.cli import app
    from cloudlulc_edge.contract import CLASS_SCHEMES
    from cloudlulc_edge.data.bigearthnet import BigEarthNetDW
    from tests.conftest import shared_data

    source = shared_data("bigearthnet-v1", "BigEarthNet-S2-Example")
    shutil.copytree(source, tmp_path / "in")
    result = CliRunner().invoke(app, ["map", str(tmp_path / "in"), str(tmp_path / "out"), "--tile", "128",
                                      "--overlap", "16", "-q"])  # fmt: skip
    assert result.exit_code == 0, result.output
    labels = {s.name: s.label for s in BigEarthNetDW(shared_data(), "all", label_rule="water")}
    to_index = np.full(256, 255)
    to_index[list(CLASS_SCHEMES["worldcover"].codes)] = np.arange(6)  # written code → class index
    hits = total = 0
    for path in sorted((tmp_path / "out").glob("*_lulc.tif")):
        with rasterio.open(path) as ds:
            assert ds.tags()["S1_MISSING"] == "true"
            predicted = to_index[ds.read(1)]
        label = labels[path.name.removesuffix("_lulc.tif")]
        ok = label < 6
        hits, total = hits + int((predicted[ok] == label[ok]).sum()), total + int(ok.sum())
    assert total > 0 and hits / total >= 0.75, f"S2-only agreement with the teacher {100 * hits / total:.1f} %"
