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
