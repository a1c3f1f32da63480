"""Reference ops: the specification of the fused kernels."""

from __future__ import annotations

import pytest
import torch

from cloudlulc_edge.kernels import reference as ref

SHAPES = [(1, 3, 17, 33), (2, 12, 9, 7), (2, 64, 8, 8), (1, 48, 5, 3)]  # odd H/W, non-power-of-two C
DTYPES = [(torch.float32, 1e-6), (torch.float16, 2e-3), (torch.bfloat16, 2e-2)]


def _manual_ln(x, w, b, eps=1e-5):
    mean = x.mean(1, keepdim=True)
    var = x.var(1, unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * w.view(1, -1, 1, 1) + b.view(1, -1, 1, 1)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("dtype", "tol"), DTYPES)
def test_norm_gate_matches_fp64_math(shape, dtype, tol):
    c = shape[1]
    x, g, res = (torch.randn(shape) for _ in range(3))
    w, b = torch.randn(c), torch.randn(c)
    out = ref.norm_gate(x.to(dtype), g.to(dtype), w, b, residual=res.to(dtype))
    assert out.dtype == dtype and out.shape == shape
    xd, gd, rd = (t.to(dtype).double() for t in (x, g, res))
    expected = _manual_ln(xd, w.double(), b.double()) * gd + rd
    torch.testing.assert_close(out.double(), expected, rtol=tol * 10, atol=tol * 10)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("dtype", "tol"), DTYPES)
def test_reliability_gate_matches_formula(shape, dtype, tol):
    o, z, s = (torch.randn(shape).to(dtype) for _ in range(3))
    valid = (torch.rand(shape[0], 1, *shape[2:]) > 0.3).to(dtype)
    y = ref.reliability_gate(o, z, valid, s, alpha=0.7)
    r = torch.sigmoid(z.double()) * valid.double()
    expected = r * o.double() + (1 - r) * 0.7 * s.double()
    assert y.dtype == dtype
    torch.testing.assert_close(y.double(), expected, rtol=tol * 10, atol=tol * 10)
    y2, rho = ref.reliability_gate_pooled(o, z, valid, s, alpha=0.7)
    torch.testing.assert_close(y2, y)
    torch.testing.assert_close(rho.double(), 1 - r.mean(1, keepdim=True), rtol=tol * 10, atol=tol * 10)


def test_reliability_gate_without_sar_is_plain_modulation():
    o, z = torch.randn(2, 5, 7, 9), torch.randn(2, 5, 7, 9)
    torch.testing.assert_close(ref.reliability_gate(o, z), o * torch.sigmoid(z))
    torch.testing.assert_close(ref.reliability_gate(o, z, sar=torch.randn(2, 5, 7, 9), alpha=0.0), o * torch.sigmoid(z))


@pytest.mark.parametrize("shape", SHAPES)
def test_channel_softmax_gate(shape):
    b, c = shape[:2]
    x, v = torch.randn(shape), torch.randn(b, c, 1, 1)
    q, alpha = ref.channel_softmax_gate(x, v)
    torch.testing.assert_close(alpha.sum(1), torch.ones(b, 1, 1))
    torch.testing.assert_close(q, x * torch.softmax(v, 1))


def test_gradcheck_fp64():
    x, g, r = (torch.randn(1, 5, 3, 7, dtype=torch.float64, requires_grad=True) for _ in range(3))
    w = torch.randn(5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *a: ref.norm_gate(*a), (x, g, w, b, r))
    z = torch.randn(1, 5, 3, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda o, z, s: ref.reliability_gate(o, z, None, s, 0.5), (x, z, g))
    v = torch.randn(1, 5, 1, 1, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, v: ref.channel_softmax_gate(x, v), (x, v))


def _fp64(*shape):
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


@pytest.mark.parametrize("pooled", [False, True])
@pytest.mark.parametrize("with_valid", [False, True])
@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_reliability_gate_backward_is_the_autograd_gradient(pooled, with_valid, alpha):
    o, z, s = _fp64(2, 5, 3, 4), _fp64(2, 5, 3, 4), _fp64(2, 5, 3, 4)
    m = torch.rand(2, 1, 3, 4, dtype=torch.float64, requires_grad=True) if with_valid else None
    dy, drho = torch.randn(2, 5, 3, 4, dtype=torch.float64), torch.randn(2, 1, 3, 4, dtype=torch.float64)
    if pooled:
        y, rho = ref.reliability_gate_pooled(o, z, m, s, alpha)
        loss = (y * dy).sum() + (rho * drho).sum()
    else:
        loss = (ref.reliability_gate(o, z, m, s, alpha) * dy).sum()
    inputs = [o, z, s] + ([m] if m is not None else [])
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    d_o, d_z, d_m, d_s = ref.reliability_gate_backward(dy, drho if pooled else None, o, z, m, s, alpha, True)
    torch.testing.assert_close(d_o, grads[0])
    torch.testing.assert_close(d_z, grads[1])
    if alpha:
        torch.testing.assert_close(d_s, grads[2])
    else:
        assert grads[2] is None and d_s.numel() == 0
    if m is not None:
        torch.testing.assert_close(d_m, grads[3])


@pytest.mark.parametrize("shape", [(2, 5, 3, 4), (1, 48, 5, 3)])
def test_norm_gate_backward_is_the_autograd_gradient(shape):
    c = shape[1]
    x, g, w, b = _fp64(*shape), _fp64(*shape), _fp64(c), _fp64(c)
    dy = torch.randn(shape, dtype=torch.float64)
    grads = torch.autograd.grad((ref.norm_gate(x, g, w, b) * dy).sum(), (x, g, w, b))
    for got, want in zip(ref.norm_gate_backward(dy, x, g, w, b), grads, strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("logits", [(2, 6, 1, 1), (2, 6, 3, 5)], ids=["global", "per-pixel"])
def test_channel_softmax_gate_backward_is_the_autograd_gradient(logits):
    x, v = _fp64(2, 6, 3, 5), _fp64(*logits)
    dq, da = torch.randn(2, 6, 3, 5, dtype=torch.float64), torch.randn(*logits, dtype=torch.float64)
    q, alpha = ref.channel_softmax_gate(x, v)
    grads = torch.autograd.grad((q * dq).sum() + (alpha * da).sum(), (x, v))
    for got, want in zip(ref.channel_softmax_gate_backward(dq, da, x, v), grads, strict=True):
        torch.testing.assert_close(got, want)
