"""The tile-independent forms: local spectral term, local CHOI descriptor, neighbourhood attention, LayerNorm."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cloudlulc_edge import kernels as K
from cloudlulc_edge.models import create_model
from cloudlulc_edge.models.choi import ChannelHighOrderInteraction
from cloudlulc_edge.models.spectral import local_conv2d
from cloudlulc_edge.models.usmt import neighbourhood_attention


def _local_conv_direct(a, g, window):
    """y[m] = mean_{|d|≤r} a[m−d]·g[m+d] with zeros outside, by explicit loops (the oracle)."""
    r = window // 2
    _, _, h, w = a.shape
    out = torch.zeros_like(a, dtype=torch.float64)
    for i in range(h):
        for j in range(w):
            for dy in range(-r, r + 1):
                for dx in range(-r, r + 1):
                    ia, ja, ig, jg = i - dy, j - dx, i + dy, j + dx
                    if 0 <= ia < h and 0 <= ja < w and 0 <= ig < h and 0 <= jg < w:
                        out[..., i, j] += a[..., ia, ja].double() * g[..., ig, jg].double()
    return out / window**2


@pytest.mark.parametrize("window", [1, 3, 5])
def test_local_spectral_term_matches_its_definition(window):
    a, g = torch.randn(2, 3, 6, 7), torch.randn(2, 3, 6, 7)
    torch.testing.assert_close(
        local_conv2d(a, g, window).double(), _local_conv_direct(a, g, window), atol=1e-5, rtol=1e-5
    )


def test_local_spectral_term_of_window_one_is_the_product():
    a, g = torch.randn(1, 2, 5, 5), torch.randn(1, 2, 5, 5)
    torch.testing.assert_close(local_conv2d(a, g, 1), a * g)


def test_local_spectral_term_is_translation_equivariant():
    a, g = torch.randn(1, 2, 20, 20), torch.randn(1, 2, 20, 20)
    full = local_conv2d(a, g, 5)
    shifted = local_conv2d(a[..., 4:, 6:], g[..., 4:, 6:], 5)
    # Away from the crop border (r = 2) the windowed term sees the same pixels.
    torch.testing.assert_close(shifted[..., 2:-2, 2:-2], full[..., 6:-2, 8:-2])


@pytest.mark.parametrize("window", [0, 2, -3])
def test_bad_windows_are_refused(window):
    with pytest.raises(ValueError, match="odd"):
        local_conv2d(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), window)
    with pytest.raises(ValueError, match="odd"):
        neighbourhood_attention(*(torch.zeros(1, 1, 4, 4, 2),) * 3, window)


def test_neighbourhood_attention_with_a_covering_window_is_global_attention():
    b, heads, h, w, d = 2, 2, 4, 5, 8
    q, k, v = (torch.randn(b, heads, h, w, d) for _ in range(3))
    local = neighbourhood_attention(q, k, v, window=2 * max(h, w) + 1)
    flat = [t.reshape(b, heads, h * w, d) for t in (q, k, v)]
    glob = F.scaled_dot_product_attention(*flat).reshape(b, heads, h, w, d)
    torch.testing.assert_close(local, glob, atol=1e-5, rtol=1e-5)


def test_neighbourhood_attention_sees_only_its_window():
    q, k, v = (torch.randn(1, 1, 9, 9, 4) for _ in range(3))
    out = neighbourhood_attention(q, k, v, window=3)
    k2, v2 = k.clone(), v.clone()
    k2[..., 0, 0, :] += 100.0  # far from (5, 5): its window is rows/cols 4..6
    v2[..., 0, 0, :] += 100.0
    out2 = neighbourhood_attention(q, k2, v2, window=3)
    torch.testing.assert_close(out2[..., 5, 5, :], out[..., 5, 5, :])
    assert not torch.allclose(out2[..., 1, 1, :], out[..., 1, 1, :])


def test_local_choi_descriptor_is_a_windowed_mean_and_gates_per_pixel():
    choi = ChannelHighOrderInteraction(4, order=2, descriptor="local", window=3)
    x = torch.randn(2, 8, 6, 6)
    expected = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    torch.testing.assert_close(choi.channel_descriptor(x), expected)
    q, alpha = K.channel_softmax_gate(x, torch.randn(2, 8, 6, 6))
    assert alpha.shape == x.shape
    torch.testing.assert_close(alpha.sum(1), torch.ones(2, 6, 6))
    torch.testing.assert_close(q, x * alpha)


def test_the_edge_profile_is_tile_independent_and_the_paper_profile_is_not():
    assert create_model("cloudlulc_edge").config.tile_independent
    assert create_model("test_tiny_local").config.tile_independent
    assert not create_model("cloudlulc_net").config.tile_independent
    assert not create_model("test_tiny").config.tile_independent


def _crop_difference(variant: str, margin: int) -> float:
    """max |logits(crop) − logits(scene)| over the crop's interior ``margin`` px from its border."""
    torch.manual_seed(0)
    model = create_model(variant).eval()
    s2, s1 = torch.rand(1, 12, 448, 448), torch.rand(1, 2, 448, 448)
    window = (slice(None), slice(None), slice(48, 400), slice(32, 384))  # offsets that are multiples of 16
    with torch.no_grad():
        full = model(s2, s1)
        crop = model(s2[window], s1[window])
    diff = (full[window] - crop).abs()
    return float(diff[..., margin:-margin, margin:-margin].max())


def test_tile_independent_logits_do_not_depend_on_the_crop():
    # test_tiny_local's receptive field has a radius of 138 px (measured by back-propagation): beyond
    # it a crop is computed from exactly the same pixels as the whole scene.
    assert _crop_difference("test_tiny_local", 144) < 1e-4


def test_paper_forms_depend_on_the_whole_tile():
    # InstanceNorm, GAP, the circular spectral term and global attention: the interior changes too.
    assert _crop_difference("test_tiny", 144) > 1e-2
