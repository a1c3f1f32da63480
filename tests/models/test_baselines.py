"""Baselines (S2-only, S1-only, early-fusion UNets; reconstruction-first): inputs, cards, checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

from cloudlulc_edge.errors import ModelCardError
from cloudlulc_edge.models import ReconstructionFirst, UNet, UNetConfig, create_model, load_checkpoint, save_checkpoint
from cloudlulc_edge.models.checkpoint import CARD_FILE

SMALL = {"unet_s2": {"width": 4, "depth": 2}, "unet_s1": {"width": 4, "depth": 2}, "unet_early": {"width": 4, "depth": 2},
         "recon_first": {"recon_width": 4, "recon_blocks": 1, "seg_width": 4, "seg_depth": 2}}  # fmt: skip


def _inputs(seed: int = 0, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(2, 12, size, size, generator=gen), torch.rand(2, 2, size, size, generator=gen)


@torch.no_grad()
def test_each_unet_reads_only_its_inputs():
    s2, s1 = _inputs(0)
    other_s2, other_s1 = _inputs(1)
    for name, sees_s2, sees_s1 in (("unet_s2", True, False), ("unet_s1", False, True), ("unet_early", True, True)):
        torch.manual_seed(0)
        model = create_model(name, **SMALL[name]).eval()
        base = model(s2, s1)
        assert base.shape == (2, 6, 16, 16)
        assert (not torch.equal(model(other_s2, s1), base)) == sees_s2, name
        assert (not torch.equal(model(s2, other_s1), base)) == sees_s1, name
        # A missing S1 is fed as zeros.
        torch.testing.assert_close(model(s2, None), model(s2, torch.zeros_like(s1)))
    assert create_model("unet_early").body.down[0][0].in_channels == 14


def test_unet_input_size_and_config_errors():
    model = create_model("unet_s2", width=4, depth=3)
    assert model.requires_divisible_input_shape == 8
    with pytest.raises(ValueError, match=r"divisible by 8.*pad the tile to \(24, 24\)"):
        model(torch.rand(1, 12, 20, 20))
    with pytest.raises(ValueError, match="s2 must be"):
        model(torch.rand(1, 4, 16, 16))
    with pytest.raises(ValueError, match="inputs must be"):
        UNetConfig(inputs="rgb")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="depth"):
        UNetConfig(depth=0)
    with pytest.raises(TypeError, match="unknown model option"):
        create_model("unet_s1", order=3)


@torch.no_grad()
def test_reconstruction_first_segments_its_own_reconstruction():
    torch.manual_seed(0)
    model = create_model("recon_first", **SMALL["recon_first"]).eval()
    assert isinstance(model, ReconstructionFirst)
    s2, s1 = _inputs()
    out = model.forward_with_latent(s2, s1)
    assert out.reconstruction is not None and out.reconstruction.shape == s2.shape and out.latent is None
    torch.testing.assert_close(out.logits, model.segmenter(out.reconstruction))
    torch.testing.assert_close(out.reconstruction, s2 + model.reconstructor.tail(
        model.reconstructor.trunk(model.reconstructor.head(torch.cat([s2, s1], 1)))))  # fmt: skip
    torch.testing.assert_close(model(s2, None), model(s2, torch.zeros_like(s1)))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_checkpoint_round_trip(tmp_path, name):
    torch.manual_seed(0)
    model = create_model(name, **SMALL[name]).eval()
    save_checkpoint(model, tmp_path / "ckpt", training={"note": "test"})
    card = json.loads((tmp_path / "ckpt" / CARD_FILE).read_text())
    assert card["architecture"] == model.architecture and card["variant"] == name
    assert "not part of the paper" in card["description"]
    loaded, loaded_card = load_checkpoint(tmp_path / "ckpt", expected_variant=name)
    assert (
        type(loaded) is type(model)
        and loaded.config == model.config
        and loaded_card.architecture == card["architecture"]
    )
    s2, s1 = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(loaded(s2, s1), model(s2, s1), rtol=0, atol=0)


def test_cards_of_baselines_are_validated(tmp_path):
    ckpt = save_checkpoint(create_model("unet_s2", **SMALL["unet_s2"]), tmp_path / "ckpt")
    card_path = ckpt / CARD_FILE
    original = json.loads(card_path.read_text())

    def load_with(**changes):
        card_path.write_text(json.dumps({**original, **changes}))
        with pytest.raises(ModelCardError) as info:
            load_checkpoint(ckpt)
        return str(info.value)

    assert "unknown architecture 'segformer'" in load_with(architecture="segformer")
    assert "outside" in load_with(config={**original["config"], "width": 10**6})
    assert "must be str" in load_with(config={**original["config"], "inputs": 3})
    assert "inputs must be" in load_with(config={**original["config"], "inputs": "rgb"})
    # A UNet card read as CloudLULC-Net (its architecture removed) does not fit the weights.
    stripped = {k: v for k, v in original.items() if k != "architecture"}
    card_path.write_text(json.dumps(stripped))
    with pytest.raises(ModelCardError):
        load_checkpoint(ckpt)


def test_registry_builds_every_baseline_at_its_documented_size():
    sizes = {name: sum(p.numel() for p in create_model(name).parameters()) / 1e6 for name in SMALL}
    assert all(isinstance(create_model(n), UNet) for n in ("unet_s2", "unet_s1", "unet_early"))
    assert 7.5 < sizes["unet_s2"] < 8.2 and 7.5 < sizes["unet_early"] < 8.2  # W = 32, depth 4
    assert sizes["recon_first"] > sizes["unet_s2"]  # the cloud-removal trunk comes on top of the UNet
