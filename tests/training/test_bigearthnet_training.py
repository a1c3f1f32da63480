"""Training on BigEarthNet + teacher labels with simulated clouds (how the default checkpoint is made)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cloudlulc_edge.data.bigearthnet import BigEarthNetDW
from cloudlulc_edge.data.cloud_sim import CloudDonor, CloudSimulator
from cloudlulc_edge.models.checkpoint import load_checkpoint
from cloudlulc_edge.training import load_config, train
from cloudlulc_edge.training.config import ConfigError
from cloudlulc_edge.training.datasets import SimulatedCloudSet, evaluation_set
from cloudlulc_edge.training.evaluate import evaluate
from cloudlulc_edge.training.publish import publish_run
from tests.conftest import shared_data

DEFAULT_CONFIG = Path(__file__).parents[2] / "cloudlulc_edge" / "weights" / "train_default.toml"


def _overrides(tmp_path: Path, *extra: str) -> list[str]:
    safe = shared_data("s2-l2a-safe", "S2A_MSIL2A_20221005T115411_N0400_R023_T29UNU_20221005T164454.SAFE")
    return [f"data_root={shared_data()}", f"cloud_donor={safe}", f"output_dir={tmp_path / 'run'}",
            "variant=test_tiny", "epochs=1", "crop=64", "batch_size=6", "val_covers=[0.0,0.6]", *extra]  # fmt: skip


def test_the_packaged_default_config_trains_and_evaluates_per_cloud_bin(tmp_path):
    cfg = load_config(DEFAULT_CONFIG, _overrides(tmp_path, "train_split=train"))  # validated on BigEarthNet's val
    assert cfg.dataset == "bigearthnet_dw" and cfg.inputs == "cloudy_s2+s1"
    result = train(cfg)
    assert result.epochs_run == 1 and result.best_checkpoint is not None and result.final_checkpoint is not None
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len(log) == 1 and log[0]["val_miou"] is not None and np.isfinite(log[0]["loss"])
    model, card = load_checkpoint(result.best_checkpoint)
    assert card.training["config"]["dataset"] == "bigearthnet_dw"
    test = evaluation_set(cfg, "test", covers=(0.0, 0.6))
    report = evaluate(model, test, batch_size=4)
    assert report["samples"] == 22  # 11 held-out patches × 2 covers
    # Simulated covers 0 and 0.6 land in the paper's bins "<10%" and "50-70%".
    assert report["strata"]["<10%"]["samples"] == 11 and report["strata"]["50-70%"]["samples"] == 11
    assert report["overall"]["pixels"] > 0
    # Publishing the run (as the packaged checkpoint is made) verifies and describes it.
    published = publish_run(tmp_path / "run", tmp_path / "published")
    _, published_card = load_checkpoint(published)
    assert published_card.weights_sha256 == card.weights_sha256
    assert "NOT ground truth" in (published / "TRAINING.md").read_text()


def test_the_packaged_recipe_trains_on_every_patch_and_publishes_its_last_epoch(tmp_path):
    cfg = load_config(DEFAULT_CONFIG, _overrides(tmp_path))
    assert cfg.train_split == "all" and cfg.label_rule == "water" and cfg.soft_weight > 0 and cfg.s1_drop > 0
    result = train(cfg)
    assert result.best_checkpoint is None and result.final_checkpoint is not None  # no validation, no selection
    published = publish_run(tmp_path / "run", tmp_path / "published")
    _, card = load_checkpoint(published)
    assert card.training["val_miou"] is None and "every patch" in card.training["data"]["dataset"]
    assert "nothing selected" in (published / "TRAINING.md").read_text()


def test_simulated_evaluation_sets_are_identical_across_instances(s2_safe):
    donor = CloudDonor.from_safe(s2_safe)
    base = BigEarthNetDW(shared_data(), "test")
    a = SimulatedCloudSet(base, CloudSimulator(donor), (0.2, 0.8), seed=5)
    b = SimulatedCloudSet(base, CloudSimulator(donor), (0.2, 0.8), seed=5)
    assert len(a) == 2 * len(base)
    for i in (0, 3, len(a) - 1):
        np.testing.assert_array_equal(a[i].s2, b[i].s2)
        assert abs(a[i].cloud_fraction - (0.2, 0.8)[i % 2]) < 0.01
        assert a[i].name == base[i // 2].name


def test_bigearthnet_training_needs_a_cloud_donor(tmp_path):
    with pytest.raises(ConfigError, match="cloud_donor"):
        load_config(DEFAULT_CONFIG, [*_overrides(tmp_path), "cloud_donor="])
    with pytest.raises(ConfigError, match="cloud covers"):
        load_config(DEFAULT_CONFIG, [*_overrides(tmp_path), "cloud_cover=[0.5,1.5]"])


def test_cross_validation_is_recorded_in_a_published_card(tmp_path):
    import shutil

    from cloudlulc_edge.training.publish import attach_cross_validation
    from cloudlulc_edge.weights import DEFAULT_CHECKPOINTS

    summary_path = Path(__file__).parents[2] / "bench" / "results" / "crossval.json"
    checkpoint = shutil.copytree(DEFAULT_CHECKPOINTS["cloudlulc_edge"], tmp_path / "ckpt")
    attach_cross_validation(checkpoint, summary_path)
    _, card = load_checkpoint(checkpoint)
    record = card.training["cross_validation"]
    summary = json.loads(summary_path.read_text())
    cell = summary["summary"]["rows"]["CloudLULC-Net edge (S2+S1)"]["water"]["0.8"]
    assert record["rows"]["CloudLULC-Net edge (S2+S1)"]["water"]["miou"][-1] == [
        round(100 * cell["miou"], 4),
        round(100 * cell["miou_ci"][0], 4),
        round(100 * cell["miou_ci"][1], 4),
    ]
    assert record["folds"] == 5 and record["patches"] == 52 and record["checks"] == summary["checks"]
    assert "GBM per pixel (S2+S1)" in (checkpoint / "TRAINING.md").read_text()


def test_the_shipped_card_records_the_committed_cross_validation():
    from cloudlulc_edge.training.publish import cross_validation_record
    from cloudlulc_edge.weights import DEFAULT_CHECKPOINTS

    summary_path = Path(__file__).parents[2] / "bench" / "results" / "crossval.json"
    _, card = load_checkpoint(DEFAULT_CHECKPOINTS["cloudlulc_edge"])
    expected = cross_validation_record(json.loads(summary_path.read_text()), summary_path.name)
    assert card.training["cross_validation"] == json.loads(json.dumps(expected)), (
        "re-run `python -m cloudlulc_edge.training.publish --cross-validation bench/results/crossval.json`"
    )
