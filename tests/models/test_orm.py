from __future__ import annotations

import torch

from cloudlulc_edge.models.orm import OpticalReliabilityModulation


def _saturated(channels: int, bias: float) -> OpticalReliabilityModulation:
    orm = OpticalReliabilityModulation(channels)
    with torch.no_grad():
        orm.to_logits.weight.zero_()
        orm.to_logits.bias.fill_(bias)
    return orm


def test_returns_input_where_gate_saturates_to_one():
    x = torch.randn(2, 6, 9, 11)
    out, rho = _saturated(6, 50.0)(x)
    assert rho is None
    torch.testing.assert_close(out, x)


def test_suppresses_input_where_gate_saturates_to_zero():
    out, _ = _saturated(6, -50.0)(torch.randn(2, 6, 9, 11))
    assert out.abs().max() < 1e-12


def test_starts_near_identity():
    orm = OpticalReliabilityModulation(16)
    r = orm.reliability(torch.randn(1, 16, 8, 8))
    assert 0.7 < r.mean() < 0.97  # b = +2 → σ ≈ 0.88


def test_gate_is_per_pixel_and_per_channel():
    r = OpticalReliabilityModulation(8).reliability(torch.randn(1, 8, 10, 10))
    assert r.std(dim=1).mean() > 0 and r.std(dim=(2, 3)).mean() > 0


def test_nodata_pixels_are_fully_unreliable():
    x = torch.randn(1, 4, 6, 6)
    valid = torch.ones(1, 1, 6, 6)
    valid[..., :3, :] = 0
    orm = OpticalReliabilityModulation(4, pooled=True)
    out, rho = orm(x, valid)
    assert out[..., :3, :].abs().max() == 0
    assert torch.all(rho[..., :3, :] == 1)
    assert out[..., 3:, :].abs().sum() > 0


def test_pooled_map_is_one_minus_mean_reliability():
    x = torch.randn(2, 5, 7, 7)
    orm = OpticalReliabilityModulation(5, pooled=True)
    _, rho = orm(x)
    torch.testing.assert_close(rho, 1 - orm.reliability(x).mean(dim=1, keepdim=True))


def test_sar_mixing_fills_unreliable_responses():
    opt, sar = torch.randn(1, 3, 5, 5), torch.randn(1, 3, 5, 5)
    orm = _saturated(3, -50.0)
    orm.sar_alpha = 0.5
    out, _ = orm(opt, sar=sar)
    torch.testing.assert_close(out, 0.5 * sar)
