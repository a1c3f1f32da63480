"""Missing S1, partial coverage, S2 nodata and input validation of the assembled network."""

from __future__ import annotations

import pytest
import torch

from cloudlulc_edge.models import create_model


@pytest.fixture
def tiny():
    return create_model("test_tiny").eval()


def _inputs(b=2, hw=32):
    return torch.rand(b, 12, hw, hw), torch.rand(b, 2, hw, hw)


def test_s2_only_scene_skips_the_sar_encoder(tiny):
    s2, _ = _inputs()
    calls = []
    tiny.sar_encoder.register_forward_hook(lambda *a: calls.append(1))
    with torch.no_grad():
        logits = tiny(s2)
    assert logits.shape == (2, 6, 32, 32) and not calls


def test_zero_s1_coverage_equals_missing_s1(tiny):
    s2, s1 = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(tiny(s2, s1, s1_valid=torch.zeros(2, 1, 32, 32)), tiny(s2), rtol=1e-5, atol=1e-5)


def test_full_s1_coverage_equals_no_mask(tiny):
    s2, s1 = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(tiny(s2, s1, s1_valid=torch.ones(2, 1, 32, 32)), tiny(s2, s1))


def test_missing_sar_embedding_is_learned():
    model = create_model("test_tiny")
    s2, _ = _inputs()
    model(s2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.sar_missing)


def test_s2_nodata_switches_off_optical_fusion_feature(tiny):
    s2, s1 = _inputs()
    seen = {}
    tiny.orm.register_forward_hook(lambda m, i, o: seen.update(out=o[0]))
    with torch.no_grad():
        tiny(s2, s1, s2_valid=torch.zeros(2, 1, 32, 32))
    assert seen["out"].abs().max() == 0


def test_rejects_wrong_band_count(tiny):
    with pytest.raises(ValueError, match=r"s2 must be \(B, 12, H, W\)"):
        tiny(torch.rand(1, 13, 32, 32))


def test_rejects_indivisible_tile_with_padding_hint(tiny):
    with pytest.raises(ValueError, match=r"pad the tile to \(48, 32\)"):
        tiny(torch.rand(1, 12, 40, 32))


def test_rejects_mismatched_s1(tiny):
    with pytest.raises(ValueError, match="s1 must be"):
        tiny(torch.rand(1, 12, 32, 32), torch.rand(1, 2, 16, 16))


def test_non_square_tiles(tiny):
    with torch.no_grad():
        assert tiny(torch.rand(1, 12, 32, 48), torch.rand(1, 2, 32, 48)).shape == (1, 6, 32, 48)


def test_forward_with_latent_shapes():
    model = create_model("test_tiny", class_queries=True).eval()
    out = model.forward_with_latent(*_inputs(hw=64))
    assert out.logits.shape == (2, 6, 64, 64)
    assert out.latent.shape == (2, 16, 4, 4)
    assert out.class_tokens.shape == (2, 6, 16)


@pytest.mark.parametrize(
    "overrides",
    [
        {"use_orm": False},
        {"use_shoi": False},
        {"use_choi": False},
        {"usmt_depth": 0},
        {"orm_boost_sar": True},
        {"orm_sar_alpha": 0.5},
        {"spectral_impl": "matmul", "spectral": "linear"},
        {"shoi": "generalised", "depthwise_chi": True},
    ],
)
def test_configuration_switches_run(overrides):
    model = create_model("test_tiny", **overrides)
    logits = model(*_inputs(b=1))
    logits.mean().backward()
    assert logits.shape == (1, 6, 32, 32)


def test_ablation_without_orm_has_no_orm_module():
    assert create_model("test_tiny", use_orm=False).orm is None
