"""GPU tier (T4): the Triton kernels on CUDA at the model's real shapes; skipped without CUDA."""

from __future__ import annotations

import pytest
import torch

from cloudlulc_edge import kernels as K
from cloudlulc_edge.export import example_inputs
from cloudlulc_edge.models import create_model

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
pytest.importorskip("triton")

# (B, C, H, W) at the 1/4-resolution fusion grid of 512² tiles: ORM/SHOI at D = 64, CHOI at 2D = 128,
# the edge profile's generalised SHOI at c_h = 16.
REAL_SHAPES = [(8, 64, 128, 128), (8, 128, 128, 128), (16, 16, 128, 128), (3, 48, 67, 131)]
TOLERANCES = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}


def _both(fn, *args):
    with K.use_kernels("triton"):
        fast = fn(*args)
    with K.use_kernels("reference"):
        slow = fn(*args)
    return fast, slow


@pytest.mark.parametrize("shape", REAL_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", list(TOLERANCES), ids=str)
def test_forward_parity_at_real_shapes(shape, dtype):
    b, c, h, w = shape
    t = lambda *s: torch.randn(*s, device="cuda").to(dtype)
    valid = (torch.rand(b, 1, h, w, device="cuda") > 0.2).to(dtype)
    tol = TOLERANCES[dtype]
    fast, slow = _both(K.reliability_gate_pooled, t(*shape), t(*shape), valid, t(*shape), 0.5)
    torch.testing.assert_close(fast, slow, rtol=tol, atol=tol)
    weight, bias = torch.randn(c, device="cuda"), torch.randn(c, device="cuda")
    fast, slow = _both(K.norm_gate, t(*shape), t(*shape), weight, bias, t(*shape))
    torch.testing.assert_close(fast, slow, rtol=2 * tol, atol=2 * tol)
    fast, slow = _both(K.channel_softmax_gate, t(*shape), t(b, c, 1, 1))
    torch.testing.assert_close(fast, slow, rtol=tol, atol=tol)


def test_backward_parity_on_gpu():
    shape = (4, 64, 64, 64)
    leaves = [torch.randn(shape, device="cuda", requires_grad=True) for _ in range(3)]
    weight = torch.randn(64, device="cuda", requires_grad=True)
    bias = torch.randn(64, device="cuda", requires_grad=True)
    grads = {}
    for mode in ("triton", "reference"):
        with K.use_kernels(mode):
            y = K.norm_gate(leaves[0], leaves[1], weight, bias, leaves[2])
            y2, rho = K.reliability_gate_pooled(y, leaves[1], None, leaves[2], 0.3)
            q, alpha = K.channel_softmax_gate(y2, y2.mean(dim=(2, 3), keepdim=True))
            loss = q.square().mean() + rho.mean() + alpha.square().sum()
        grads[mode] = torch.autograd.grad(loss, [*leaves, weight, bias])
    for fast, slow in zip(grads["triton"], grads["reference"], strict=True):
        torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-5)


def test_model_uses_the_kernels_by_default_on_cuda_and_matches_the_reference():
    model = create_model("cloudlulc_net").cuda().eval()
    s2, s1 = (t.cuda() for t in example_inputs(2, 256))
    assert "jit" in K.resolve("norm_gate", s2).__qualname__
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16):
        fused = model(s2, s1).float()
        with K.use_kernels("reference"):
            eager = model(s2, s1).float()
    assert (fused.argmax(1) == eager.argmax(1)).float().mean() > 0.999
    torch.testing.assert_close(fused, eager, rtol=2e-2, atol=2e-2)


@pytest.mark.slow
def test_64_bit_offsets_beyond_two_to_the_31_elements():
    """B·C·H·W = 2.15 G fp16 elements (4.3 GB per tensor): the last image's offsets exceed int32."""
    if torch.cuda.get_device_properties(0).total_memory < 40 * 2**30:
        pytest.skip("needs ≥ 40 GiB of GPU memory")
    shape = (2, 64, 4096, 4100)
    assert torch.Size(shape).numel() > 2**31
    x = torch.randn(shape, device="cuda", dtype=torch.float16)
    v = torch.randn(2, 64, 1, 1, device="cuda", dtype=torch.float16)
    with K.use_kernels("triton"):
        q, alpha = K.channel_softmax_gate(x, v)
    tail = (slice(1, 2), slice(60, 64), slice(-3, None), slice(-5, None))
    torch.testing.assert_close(q[tail], (x[tail].float() * alpha[1:2, 60:64].float()).half())
