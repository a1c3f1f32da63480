"""Triton kernels vs the reference under the CPU interpreter (T1 tier, ``kernels.md`` §9).

Run in its own invocation: ``TRITON_INTERPRET=1 python -m pytest -m interpret``. The interpreter
runs each program sequentially on the host, so shapes stay small; a second tile budget forces many
pixel blocks per image so masked tails, multi-program partial sums and the first-block-only α store
are exercised. Interpreter parity is not proof of GPU correctness (triton#11153): the compile tier and
the GPU tier cover the rest.
"""

from __future__ import annotations

import os

import pytest
import torch

from cloudlulc_edge import kernels as K

pytestmark = [
    pytest.mark.interpret,
    pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1", reason="needs TRITON_INTERPRET=1 before import"),
]
pytest.importorskip("triton")

SHAPES = [(1, 3, 17, 33), (2, 12, 9, 7), (2, 64, 8, 8), (1, 48, 5, 3), (3, 5, 1, 1)]
TOLERANCES = {torch.float32: 2e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}


@pytest.fixture(params=["default", "small"])
def tile_budget(request, monkeypatch):
    """``small`` shrinks the interpreter tile to 128 elements: many programs per image."""
    if request.param == "small":
        from cloudlulc_edge.kernels.jit import _common

        monkeypatch.setattr(_common, "_INTERPRETER_TILE_ELEMENTS", 128)
    return request.param


def _forward_backward(mode, fn, inputs, upstream):
    """Outputs and input gradients of ``fn`` under kernel ``mode`` (fresh leaves per call)."""
    leaves = [t.detach().clone().requires_grad_(t.requires_grad) if torch.is_tensor(t) else t for t in inputs]
    with K.use_kernels(mode):
        outs = fn(*leaves)
    outs = outs if isinstance(outs, tuple) else (outs,)
    loss = sum((o.float() * g.float()).sum() for o, g in zip(outs, upstream, strict=True))
    wanted = [t for t in leaves if torch.is_tensor(t) and t.requires_grad]
    return outs, torch.autograd.grad(loss, wanted, allow_unused=True)


def _assert_parity(fn, inputs, upstream, tol):
    outs, grads = _forward_backward("triton", fn, inputs, upstream)
    outs_ref, grads_ref = _forward_backward("reference", fn, inputs, upstream)
    for got, want in zip((*outs, *grads), (*outs_ref, *grads_ref), strict=True):
        assert (got is None) == (want is None)  # e.g. no SAR gradient when alpha = 0
        if want is None:
            continue
        assert got.dtype == want.dtype and got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=tol, atol=tol)


def _t(shape, dtype, grad=True):
    return torch.randn(shape).to(dtype).requires_grad_(grad)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", list(TOLERANCES), ids=str)
@pytest.mark.parametrize(
    ("with_valid", "alpha", "pooled"), [(True, 0.0, True), (False, 0.0, False), (True, 0.7, False), (False, 0.5, True)]
)
def test_reliability_gate(shape, dtype, with_valid, alpha, pooled, tile_budget):
    b, _, h, w = shape
    valid = (torch.rand(b, 1, h, w) > 0.3).to(dtype).requires_grad_(True) if with_valid else None
    inputs = (_t(shape, dtype), _t(shape, dtype), valid, _t(shape, dtype), alpha)
    fn = K.reliability_gate_pooled if pooled else K.reliability_gate
    upstream = [torch.randn(shape)] + ([torch.randn(b, 1, h, w)] if pooled else [])
    _assert_parity(fn, inputs, upstream, TOLERANCES[dtype])


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", list(TOLERANCES), ids=str)
@pytest.mark.parametrize("with_residual", [True, False])
def test_norm_gate(shape, dtype, with_residual, tile_budget):
    c = shape[1]
    residual = _t(shape, dtype) if with_residual else None
    inputs = (_t(shape, dtype), _t(shape, dtype), _t((c,), torch.float32), _t((c,), torch.float32), residual)
    # LayerNorm amplifies input rounding by rstd; bf16/fp16 outputs are compared at 2 ulp
    _assert_parity(K.norm_gate, inputs, [torch.randn(shape)], 2 * TOLERANCES[dtype])


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", list(TOLERANCES), ids=str)
def test_channel_softmax_gate(shape, dtype, tile_budget):
    b, c = shape[:2]
    inputs = (_t(shape, dtype), _t((b, c, 1, 1), dtype))
    _assert_parity(K.channel_softmax_gate, inputs, [torch.randn(shape), torch.randn(b, c, 1, 1)], TOLERANCES[dtype])


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", list(TOLERANCES), ids=str)
def test_channel_softmax_gate_per_pixel(shape, dtype, tile_budget):
    # The local CHOI descriptor of the tile-independent profile: one attention vector per pixel.
    inputs = (_t(shape, dtype), _t(shape, dtype))
    _assert_parity(K.channel_softmax_gate, inputs, [torch.randn(shape), torch.randn(shape)], TOLERANCES[dtype])


def test_non_contiguous_inputs():
    base = torch.randn(2, 6, 11, 13)
    x = base[:, :, 1:-1, 2:]  # strided view
    g = torch.randn(2, 6, 9, 11).contiguous(memory_format=torch.channels_last)
    w, b = torch.randn(6), torch.randn(6)
    with K.use_kernels("triton"):
        assert "kernels.jit.norm_gate" in K.resolve("norm_gate", x).__qualname__
        out = K.norm_gate(x, g, w, b)
        y = K.reliability_gate(x, g.transpose(2, 3).contiguous().transpose(2, 3))
    torch.testing.assert_close(out, K.reference.norm_gate(x, g, w, b), rtol=2e-5, atol=2e-5)
    torch.testing.assert_close(y, K.reference.reliability_gate(x, g), rtol=2e-5, atol=2e-5)


def test_fp64_gradcheck_through_the_kernels():
    def leaf(*shape):
        return torch.randn(*shape, dtype=torch.float64, requires_grad=True)

    o, z, s, m = leaf(1, 3, 3, 5), leaf(1, 3, 3, 5), leaf(1, 3, 3, 5), torch.rand(1, 1, 3, 5, dtype=torch.float64)
    m.requires_grad_(True)
    w, b = leaf(3), leaf(3)
    v = leaf(1, 3, 1, 1)
    with K.use_kernels("triton"):
        assert torch.autograd.gradcheck(lambda o, z, m, s: K.reliability_gate_pooled(o, z, m, s, 0.6), (o, z, m, s))
        assert torch.autograd.gradcheck(lambda *a: K.norm_gate(*a), (o, z, w, b, s))
        assert torch.autograd.gradcheck(lambda x, v: K.channel_softmax_gate(x, v), (o, v))
        assert torch.autograd.gradcheck(lambda x, v: K.channel_softmax_gate(x, v), (o, z))  # per-pixel logits


def _canary_view(shape, fill, dtype=torch.float32, pad=257):
    """A view into a larger buffer whose surrounding elements hold ``fill``."""
    numel = torch.Size(shape).numel()
    buffer = torch.full((numel + 2 * pad,), fill, dtype=dtype)
    return buffer, buffer[pad : pad + numel].view(shape)


def _assert_pads_untouched(buffer, view, fill):
    pad = view.storage_offset()
    assert torch.equal(buffer[:pad], torch.full_like(buffer[:pad], fill))
    assert torch.equal(buffer[pad + view.numel() :], torch.full_like(buffer[pad + view.numel() :], fill))


@pytest.mark.parametrize("shape", [(2, 5, 7, 9), (1, 48, 5, 3)], ids=lambda s: "x".join(map(str, s)))
def test_masked_tails_read_and_write_nothing_out_of_bounds(shape):
    """Inputs sit between NaNs (a stray load poisons the channel sums), outputs between 1e30 canaries."""
    import triton

    from cloudlulc_edge.kernels.jit import channel_softmax_gate, norm_gate, reliability_gate
    from cloudlulc_edge.kernels.jit._common import tile_settings

    b, c, h, w = shape
    nan, canary = float("nan"), 1e30

    def inp(*s):
        _, view = _canary_view(s, nan)
        view.copy_(torch.randn(s))
        return view

    def out(*s):
        return _canary_view(s, canary)

    tile = tile_settings(c, h * w, "canary")
    grid = (triton.cdiv(h * w, tile.block_p), b)
    kw = {"BLOCK_C": tile.block_c, "BLOCK_P": tile.block_p, "ACC": triton.language.float32}
    o, z, s, x, g = inp(*shape), inp(*shape), inp(*shape), inp(*shape), inp(*shape)
    m, v, wt, bs = inp(b, 1, h, w), inp(b, c, 1, 1), inp(c), inp(c)

    (y_buf, y), (rho_buf, rho) = out(*shape), out(b, 1, h, w)
    reliability_gate.reliability_gate_fwd_kernel[grid](
        o, z, m, s, y, rho, 0.5, c, h * w, HAS_VALID=True, HAS_SAR=True, POOLED=True, **kw
    )
    y_ref, rho_ref = K.reference.reliability_gate_pooled(o, z, m, s, 0.5)
    torch.testing.assert_close((y, rho), (y_ref, rho_ref))
    _assert_pads_untouched(y_buf, y, canary)
    _assert_pads_untouched(rho_buf, rho, canary)

    (ng_buf, ng) = out(*shape)
    norm_gate.norm_gate_fwd_kernel[grid](x, g, wt, bs, s, ng, c, h * w, 1e-5, HAS_RES=True, **kw)
    torch.testing.assert_close(ng, K.reference.norm_gate(x, g, wt, bs, s), rtol=2e-5, atol=2e-5)
    _assert_pads_untouched(ng_buf, ng, canary)

    (q_buf, q), (a_buf, a) = out(*shape), out(b, c, 1, 1)
    channel_softmax_gate.channel_softmax_gate_fwd_kernel[grid](x, v, q, a, c, h * w, PER_PIXEL=False, **kw)
    torch.testing.assert_close((q, a), K.reference.channel_softmax_gate(x, v))
    _assert_pads_untouched(q_buf, q, canary)
    _assert_pads_untouched(a_buf, a, canary)

    (dx_buf, dx), (dg_buf, dg) = out(*shape), out(*shape)
    (dw_buf, dw_part), (db_buf, db_part) = out(b * grid[0], c), out(b * grid[0], c)
    norm_gate.norm_gate_bwd_kernel[grid](o, x, g, wt, bs, dx, dg, dw_part, db_part, c, h * w, 1e-5, **kw)
    want = K.reference.norm_gate_backward(o, x, g, wt, bs)
    torch.testing.assert_close((dx, dg, dw_part.sum(0), db_part.sum(0)), want, rtol=2e-5, atol=2e-5)
    for buf, view in ((dx_buf, dx), (dg_buf, dg), (dw_buf, dw_part), (db_buf, db_part)):
        _assert_pads_untouched(buf, view, canary)

    (do_buf, d_o), (dz_buf, dz), (dm_buf, dm), (ds_buf, ds) = out(*shape), out(*shape), out(b, 1, h, w), out(*shape)
    reliability_gate.reliability_gate_bwd_kernel[grid](
        x, rho_ref, o, z, m, s, d_o, dz, dm, ds, 0.5, c, h * w,
        HAS_VALID=True, HAS_SAR=True, HAS_DRHO=True, VALID_GRAD=True, **kw,
    )  # fmt: skip
    want = K.reference.reliability_gate_backward(x, rho_ref, o, z, m, s, 0.5, True)
    torch.testing.assert_close((d_o, dz, dm, ds), want, rtol=2e-5, atol=2e-5)
    for buf, view in ((do_buf, d_o), (dz_buf, dz), (dm_buf, dm), (ds_buf, ds)):
        _assert_pads_untouched(buf, view, canary)


def test_empty_batch_or_image():
    with K.use_kernels("triton"):
        x = torch.randn(2, 4, 0, 3, requires_grad=True)
        v = torch.randn(2, 4, 1, 1, requires_grad=True)
        q, alpha = K.channel_softmax_gate(x, v)
        torch.testing.assert_close(alpha, torch.softmax(v, 1))
        (q.sum() + alpha[:, 0].sum()).backward()
        empty = torch.randn(0, 4, 3, 3)
        assert K.norm_gate(empty, empty, torch.ones(4), torch.zeros(4)).shape == (0, 4, 3, 3)
        assert K.reliability_gate_pooled(empty, empty)[1].shape == (0, 1, 3, 3)
    torch.testing.assert_close(v.grad, torch.autograd.grad(torch.softmax(v, 1)[:, 0].sum(), v)[0])
