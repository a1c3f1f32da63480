from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cloudlulc_edge.models.spectral import circular_conv2d, circular_conv2d_direct


@pytest.mark.parametrize("impl", ["fft", "matmul"])
@pytest.mark.parametrize("hw", [(5, 7), (8, 8), (6, 9), (16, 10)])
def test_spectral_term_equals_direct_circular_convolution(impl, hw):
    a = torch.randn(2, 3, *hw)
    g = torch.randn(2, 3, *hw)
    expected = circular_conv2d_direct(a, g)
    actual = circular_conv2d(a, g, impl)
    assert actual.dtype == torch.float32
    torch.testing.assert_close(actual.double(), expected, rtol=1e-5, atol=5e-5)


def test_direct_oracle_is_a_circular_convolution():
    # A delta at (1, 2) shifts g circularly by (1, 2).
    a = torch.zeros(1, 1, 4, 5)
    a[..., 1, 2] = 1.0
    g = torch.arange(20.0).view(1, 1, 4, 5)
    torch.testing.assert_close(circular_conv2d_direct(a, g).float(), torch.roll(g, (1, 2), (-2, -1)))


@pytest.mark.parametrize("impl", ["fft", "matmul"])
def test_linear_option_has_no_wraparound(impl):
    a = torch.randn(1, 2, 6, 7)
    g = torch.randn(1, 2, 6, 7)
    # Full linear convolution via conv2d with the flipped kernel, centred crop.
    full = torch.stack(
        [F.conv2d(a[:, c : c + 1], g[:, c : c + 1].flip(-1, -2), padding=(5, 6)) for c in range(2)], dim=1
    ).squeeze(2)
    expected = full[..., 3 : 3 + 6, 3 : 3 + 7]
    torch.testing.assert_close(circular_conv2d(a, g, impl, linear=True), expected, rtol=1e-4, atol=1e-4)


def test_spectral_term_stays_fp32_under_autocast():
    a = torch.randn(1, 2, 8, 8)
    g = torch.randn(1, 2, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = circular_conv2d(a, g, "matmul")
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, circular_conv2d(a, g, "fft"), rtol=1e-4, atol=1e-4)


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="equal shapes"):
        circular_conv2d(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 5))
