"""The baselines train, resume, select and evaluate with the same loop as CloudLULC-Net (fixture)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from cloudlulc_edge.data import CloudLULCSet
from cloudlulc_edge.models import ReconstructionFirst, UNet, create_model
from cloudlulc_edge.models.checkpoint import load_checkpoint
from cloudlulc_edge.training import ConfigError, TrainConfig, load_config, train
from cloudlulc_edge.training.evaluate import evaluate
from cloudlulc_edge.training.loop import collate
from cloudlulc_edge.training.objectives import (
    ReconstructionFirstObjective,
    SegmentationObjective,
    build_objective,
    masked_l1,
)

TINY_RECON = {"recon_width": 8, "recon_blocks": 1, "seg_width": 4, "seg_depth": 2}


def _config(root: Path, out: Path, variant: str, model: dict, epochs: int = 3) -> TrainConfig:
    return TrainConfig(data_root=str(root), output_dir=str(out), variant=variant, model=model, epochs=epochs,
                       batch_size=4, lr=1e-3, warmup_iters=2, seed=3)  # fmt: skip


def test_reconstruction_first_resumes_exactly(data_root, tmp_path):
    straight = train(_config(data_root, tmp_path / "a", "recon_first", TINY_RECON))
    train(_config(data_root, tmp_path / "b", "recon_first", TINY_RECON), stop_after=2)
    resumed = train(_config(data_root, tmp_path / "b", "recon_first", TINY_RECON))
    assert resumed.epochs_run == 1 and isinstance(resumed.model, ReconstructionFirst)
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    logs = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in logs] == [1, 2, 3]
    assert all({"loss", "ce", "recon_l1"} <= set(r) and "anchor" not in r for r in logs)
    assert logs[-1]["recon_l1"] < logs[0]["recon_l1"]  # the removal stage learns towards the clear image


@pytest.mark.parametrize("variant", ["unet_s2", "unet_s1", "unet_early"])
def test_unet_baselines_train_select_and_evaluate(data_root, tmp_path, variant):
    result = train(_config(data_root, tmp_path / variant, variant, {"width": 4, "depth": 2}, epochs=2))
    assert result.best_checkpoint is not None and isinstance(result.model, UNet)
    model, card = load_checkpoint(result.best_checkpoint)
    assert card.architecture == "unet" and card.variant == variant and card.training["config"]["variant"] == variant
    assert card.training["val_miou"] == pytest.approx(result.best_miou)
    report = evaluate(model, CloudLULCSet(data_root, "test"), batch_size=2)
    assert report["overall"]["pixels"] == 2 * 32 * 30 and 0.0 <= report["overall"]["miou"] <= 1.0
    logs = [json.loads(line) for line in (tmp_path / variant / "log.jsonl").read_text().splitlines()]
    assert all(set(r) >= {"loss", "ce"} and r["loss"] == r["ce"] for r in logs)


def test_reconstruction_first_objective_keeps_the_two_stages_apart(data_root):
    samples = [CloudLULCSet(data_root, "train")[i] for i in (1, 2)]
    batch = collate(samples, torch.device("cpu"))
    torch.manual_seed(0)
    model = create_model("recon_first", **TINY_RECON)

    def grads(objective, term):
        model.zero_grad(set_to_none=True)
        objective(model, batch)[term].backward()
        return {name: p.grad for name, p in model.named_parameters()}

    # CE reaches the segmenter only: the reconstruction it segments has its gradient stopped.
    ce = grads(ReconstructionFirstObjective(1.0, "reconstruction"), "ce")
    assert all(g is None for n, g in ce.items() if n.startswith("reconstructor"))
    assert all(g is not None and g.abs().sum() > 0 for n, g in ce.items() if n.startswith("segmenter.head"))
    # The L1 to the clear image reaches the reconstructor only.
    l1 = grads(ReconstructionFirstObjective(1.0, "reconstruction"), "recon_l1")
    assert all(g is None for n, g in l1.items() if n.startswith("segmenter"))
    assert all(g is not None for n, g in l1.items() if n.startswith("reconstructor"))
    # Trained on the clear image, the segmenter's CE is the CE of its logits on S2_clear.
    with torch.no_grad():
        terms = ReconstructionFirstObjective(0.5, "clear")(model.eval(), batch)
        expected = torch.nn.functional.cross_entropy(
            model.segmenter(batch["s2_clear"]), batch["label"], ignore_index=255
        )
    torch.testing.assert_close(terms["ce"], expected)
    torch.testing.assert_close(terms["loss"], terms["ce"] + 0.5 * terms["recon_l1"])


def test_masked_l1_by_hand():
    prediction = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    target = torch.tensor([[[[0.0, 0.0], [0.0, 0.0]]]])
    valid = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    assert float(masked_l1(prediction, target, valid)) == pytest.approx((1 + 3) / 2)
    assert float(masked_l1(prediction, target, torch.zeros_like(valid))) == 0.0  # nothing valid: 0, not NaN


def test_objective_options_a_model_cannot_use_are_refused(data_root, tmp_path):
    unet = create_model("unet_s2", width=4, depth=2)
    cfg = _config(data_root, tmp_path / "x", "unet_s2", {})
    assert isinstance(build_objective(unet, cfg), SegmentationObjective)
    with pytest.raises(ConfigError, match="learnable_anchors needs a CloudLULC-Net"):
        build_objective(unet, replace(cfg, learnable_anchors=True))
    with pytest.raises(ConfigError, match=r"cannot build variant 'unet_s2'.*unknown model option"):
        train(replace(cfg, model={"order": 3}))
    with pytest.raises(ConfigError, match="recon_segment_on"):
        load_config(None, [f"data_root={data_root}", "variant=recon_first", "recon_segment_on=cloudy"])


def test_training_reports_name_each_objective():
    from cloudlulc_edge.training.publish import training_report

    cfg = TrainConfig(data_root="-", variant="recon_first", crop=112).to_dict()
    record = {"epoch": 1, "step": 3, "lr": 1e-3, "val_miou": 0.2, "best_miou": 0.2, "seconds": 1.0}
    card = {"config": cfg, "epoch": 1, "val_miou": 0.2}
    recon = training_report(card, [{**record, "loss": 1.0, "ce": 0.9, "recon_l1": 0.1}])
    assert "loss ce + recon_l1" in recon and "semantic-anchor" not in recon
    anchor = training_report(card, [{**record, "loss": 1.0, "ce": 0.9, "anchor": 0.2}])
    assert "CE + 0.5 × semantic-anchor loss" in anchor
