"""SHOI, CHOI, HIAA and InvBlock behaviour."""

from __future__ import annotations

import pytest
import torch

from cloudlulc_edge import kernels as K
from cloudlulc_edge.models.choi import ChannelHighOrderInteraction
from cloudlulc_edge.models.hiaa import HIAA, HIAABlock
from cloudlulc_edge.models.invblock import InvBlock, InvertibleConv1x1
from cloudlulc_edge.models.shoi import GeneralisedSHOI, SpatialHighOrderInteraction
from cloudlulc_edge.models.spectral import circular_conv2d


class _Spy:
    def __init__(self, monkeypatch, name):
        self.calls = []
        original = getattr(K, name)

        def spy(*args, **kwargs):
            out = original(*args, **kwargs)
            self.calls.append((args, out))
            return out

        monkeypatch.setattr(K, name, spy)


@pytest.mark.parametrize("cls", [SpatialHighOrderInteraction, GeneralisedSHOI])
@pytest.mark.parametrize("order", [1, 2, 4, 5])
def test_shoi_executes_one_gated_step_per_order(monkeypatch, cls, order):
    spy = _Spy(monkeypatch, "norm_gate")
    shoi = cls(16, order)
    a, g = torch.randn(2, 16, 8, 8), torch.randn(2, 16, 8, 8)
    out_a, out_g = shoi(a, g)
    assert len(spy.calls) == order
    assert out_a.shape == a.shape and out_g.shape == g.shape
    rec = shoi.recursion
    assert (len(rec.norms), len(rec.phi), len(rec.psi)) == (order, order - 1, order - 1)


def test_shoi_order_one_is_residual_of_gated_spectral_term():
    shoi = SpatialHighOrderInteraction(6, order=1)
    a, g = torch.randn(1, 6, 5, 7), torch.randn(1, 6, 5, 7)
    ln = shoi.recursion.norms[0]
    expected = a + K.channel_layer_norm(circular_conv2d(a, g), ln.weight, ln.bias) * g
    out_a, out_g = shoi(a, g)
    torch.testing.assert_close(out_a, expected)
    assert out_g is g


def test_shoi_guide_evolves_through_psi():
    shoi = SpatialHighOrderInteraction(4, order=3)
    a, g = torch.randn(1, 4, 6, 6), torch.randn(1, 4, 6, 6)
    _, out_g = shoi(a, g)
    psi = shoi.recursion.psi
    torch.testing.assert_close(out_g, psi[1](psi[0](g)))


def test_generalised_shoi_starts_near_identity_and_is_symmetric():
    shoi = GeneralisedSHOI(32, order=4)
    a, g = torch.randn(1, 32, 8, 8), torch.randn(1, 32, 8, 8)
    out_a, out_g = shoi(a, g)
    torch.testing.assert_close(out_a - a, out_g - g)  # the same Y is added to both streams
    assert (out_a - a).abs().mean() < 0.1 * a.abs().mean()


@pytest.mark.parametrize("order", [1, 3, 4])
def test_choi_channel_weights_sum_to_one(monkeypatch, order):
    spy = _Spy(monkeypatch, "channel_softmax_gate")
    choi = ChannelHighOrderInteraction(6, order)
    a, g = torch.randn(3, 6, 5, 5), torch.randn(3, 6, 5, 5)
    out_a, out_g = choi(a, g)
    assert len(spy.calls) == order
    for _, (_, alpha) in spy.calls:
        assert alpha.shape == (3, 12, 1, 1)
        torch.testing.assert_close(alpha.sum(dim=1), torch.ones(3, 1, 1))
    assert out_a.shape == a.shape and out_g is g


def test_choi_attention_of_later_orders_remaps_previous_vector(monkeypatch):
    spy = _Spy(monkeypatch, "channel_softmax_gate")
    choi = ChannelHighOrderInteraction(4, order=2)
    choi(torch.randn(1, 4, 5, 5), torch.randn(1, 4, 5, 5))
    (_, (_, alpha1)), ((_, logits2), _) = spy.calls[0], spy.calls[1]
    torch.testing.assert_close(logits2, choi.attn[1](alpha1))


@pytest.mark.parametrize("num_blocks", [1, 3])
def test_hiaa_stacks_blocks_and_aggregates(monkeypatch, num_blocks):
    spy = _Spy(monkeypatch, "norm_gate")
    hiaa = HIAA(8, num_blocks, order=2)
    out = hiaa(torch.randn(2, 8, 8, 8), torch.randn(2, 8, 8, 8))
    assert out.shape == (2, 8, 8, 8)
    assert len(hiaa.blocks) == num_blocks
    assert len(spy.calls) == 2 * num_blocks
    assert hiaa.aggregate_out.in_channels == 8 * num_blocks


def test_hiaa_block_ablations_are_identities():
    block = HIAABlock(8, order=2, use_shoi=False, use_choi=False)
    a, g = torch.randn(1, 8, 4, 4), torch.randn(1, 8, 4, 4)
    out_a, out_g = block(a, g)
    assert out_a is a and out_g is g


def test_invertible_conv_is_invertible():
    conv = InvertibleConv1x1(7)
    w = conv.weight()
    torch.testing.assert_close(torch.linalg.slogdet(w).logabsdet, conv.log_s.sum())
    x = torch.randn(2, 7, 3, 3)
    y = conv(x)
    x_back = torch.einsum("oc,bchw->bohw", torch.linalg.inv(w), y)
    torch.testing.assert_close(x_back, x, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("subnet", ["conv", "conv1x1"])
def test_invblock_shapes_with_uneven_split(subnet):
    block = InvBlock(10, 3, subnet)
    assert block(torch.randn(2, 10, 6, 6)).shape == (2, 10, 6, 6)
    with pytest.raises(ValueError):
        InvBlock(4, 4)
