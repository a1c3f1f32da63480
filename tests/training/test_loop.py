"""Training on the generated CloudLULC-Set fixture: exact resume, checkpoints, logs, configuration."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from cloudlulc_edge.models.checkpoint import load_checkpoint
from cloudlulc_edge.training import ConfigError, TrainConfig, load_config, train
from cloudlulc_edge.training.loop import lr_factor


def _config(root: Path, out: Path, epochs: int = 3) -> TrainConfig:
    return TrainConfig(data_root=str(root), output_dir=str(out), variant="test_tiny", epochs=epochs, batch_size=4,
                       lr=1e-3, warmup_iters=2, crop=None, seed=7)  # fmt: skip


def test_resume_reproduces_an_uninterrupted_run(data_root, tmp_path):
    straight = train(_config(data_root, tmp_path / "a"))
    assert straight.epochs_run == 3 and straight.last_epoch == 3
    first = train(_config(data_root, tmp_path / "b"), stop_after=2)
    assert first.epochs_run == 2
    resumed = train(_config(data_root, tmp_path / "b"))  # picks up last/state.pt
    assert resumed.epochs_run == 1 and resumed.last_epoch == 3
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    logs = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in logs] == [1, 2, 3] and all(r["loss"] > 0 for r in logs)
    assert train(_config(data_root, tmp_path / "b")).epochs_run == 0  # complete: nothing to do


def test_best_checkpoint_is_a_loadable_model_card(data_root, tmp_path):
    result = train(_config(data_root, tmp_path / "run", epochs=2))
    assert result.best_checkpoint is not None and result.best_miou is not None
    model, card = load_checkpoint(result.best_checkpoint)
    assert model.variant == card.variant == "test_tiny" and card.training["val_miou"] == pytest.approx(result.best_miou)
    assert card.training["config"]["seed"] == 7


def test_resuming_with_another_configuration_is_refused(data_root, tmp_path):
    train(_config(data_root, tmp_path / "run", epochs=2), stop_after=1)
    with pytest.raises(ConfigError, match="different configuration"):
        train(replace(_config(data_root, tmp_path / "run", epochs=2), lr=5e-4))
    train(replace(_config(data_root, tmp_path / "run", epochs=2), epochs=2))  # epochs may change


def test_config_file_and_overrides(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text('[train]\ndata_root = "/data/set"\nvariant = "cloudlulc_edge"\nepochs = 5\n[model]\norder = 3\n')
    cfg = load_config(path, ["batch_size=2", "model.num_blocks=1", "schedule=cosine", "betas=[0.9, 0.99]"])
    assert (cfg.epochs, cfg.batch_size, cfg.schedule, cfg.betas) == (5, 2, "cosine", (0.9, 0.99))
    assert cfg.model == {"order": 3, "num_blocks": 1} and cfg.lr == 1e-4  # the recipe's default
    for bad, message in ((["epochs=0"], "epochs"), (["amp=fp8"], "amp"), (["nonsense=1"], "unknown"),
                         (["epochs"], "key=value")):  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            load_config(path, bad)
    path.write_text("[train\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(path)


def test_learning_rate_schedule():
    assert lr_factor(0, 100, 10, "poly", 0.9) == pytest.approx(0.1)
    assert lr_factor(9, 100, 10, "poly", 0.9) == pytest.approx(1.0)
    assert lr_factor(10, 100, 10, "cosine", 0.9) == pytest.approx(1.0)
    assert lr_factor(100, 100, 10, "cosine", 0.9) == pytest.approx(0.0, abs=1e-9)
    assert lr_factor(55, 100, 10, "poly", 1.0) == pytest.approx(0.5)


def test_input_configurations_of_figure_12(data_root, tmp_path):
    from cloudlulc_edge.data import CloudLULCSet
    from cloudlulc_edge.training.loop import INPUT_CONFIGS, collate

    samples = [CloudLULCSet(data_root, "train")[i] for i in (1, 2)]
    cpu = torch.device("cpu")
    task = collate(samples, cpu)
    no_sar = collate(samples, cpu, "cloudy_s2")
    assert torch.equal(no_sar["s2"], task["s2"]) and not no_sar["s1"].any() and not no_sar["s1_valid"].any()
    no_optics = collate(samples, cpu, "s1")
    assert not no_optics["s2"].any() and not no_optics["s2_valid"].any() and torch.equal(no_optics["s1"], task["s1"])
    clear = collate(samples, cpu, "clear_s2+s1")
    assert torch.equal(clear["s2"], torch.from_numpy(np.stack([s.s2_clear for s in samples])))
    assert not torch.equal(clear["s2"], task["s2"])  # the fixture's samples 1 and 2 are cloudy
    with pytest.raises(ConfigError, match="inputs"):
        collate(samples, cpu, "rgb")
    assert len(INPUT_CONFIGS) == 4
    result = train(replace(_config(data_root, tmp_path / "s2only", epochs=1), inputs="cloudy_s2"))
    assert result.epochs_run == 1
    with pytest.raises(ConfigError, match="inputs"):
        load_config(None, [f"data_root={data_root}", "inputs=sar"])
