"""Triton kernels of the fused CHOI order gate: channel softmax of the attention vector × features.

Forward: ``α = softmax_c(v)`` (v is (B, C, 1, 1), recomputed per program: C values), ``Q = x ⊙ α``
broadcast over H·W; eager PyTorch materialises α, broadcasts and multiplies in separate kernels.

Backward: ``∂x = dQ ⊙ α`` and the per-(image, channel) reduction ``∂α = Σ_hw dQ·x``, written as one
partial row per program and summed by the launcher; the softmax backward
``∂v = α ⊙ (∂α − Σ_c α·∂α)`` then runs on (B, C) values only.
"""

import torch
import triton
import triton.language as tl
from cloudlulc_edge.kernels import reference
from cloudlulc_edge.kernels.jit._common import accumulator, check_launchable, plan_launch, tile_offsets

__all__ = ["backward", "forward"]


@triton.jit
def _channel_softmax(v_ptr, n, c, C, ACC: tl.constexpr):
    """Softmax over the C logits of image n, as a (BLOCK_C,) vector (padded lanes are 0)."""
    v = tl.load(v_ptr + n * C + c, mask=c < C, other=float("-inf")).to(ACC)
    e = tl.exp(v - tl.max(v, axis=0))
    return e / tl.sum(e, axis=0)


@triton.jit
def channel_gate_fwd_kernel(
    x_ptr,
    v_ptr,
    q_ptr,
    alpha_ptr,
    C,
    HW,
    ACC: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
):
    """One tile of ``x ⊙ softmax_c(v)``; the first pixel block of each image also writes α."""
    n, _, c, _, mask_c, mask, offs = tile_offsets(C, HW, BLOCK_C, BLOCK_P)
    alpha = _channel_softmax(v_ptr, n, c, C, ACC)
    if tl.program_id(0) == 0:
        tl.store(alpha_ptr + n * C + c, alpha.to(alpha_ptr.dtype.element_ty), mask=mask_c)
    q = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC) * alpha[:, None]
    tl.store(q_ptr + offs, q.to(q_ptr.dtype.element_ty), mask=mask)


@triton.jit
def channel_gate_bwd_kernel(
    dq_ptr,
    x_ptr,
    v_ptr,
    dx_ptr,
    dalpha_part_ptr,
    C,
    HW,
    ACC: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
):
    """One tile's ∂x and its partial ``Σ_hw dQ·x`` row."""
    n, _, c, _, mask_c, mask, offs = tile_offsets(C, HW, BLOCK_C, BLOCK_P)
    alpha = _channel_softmax(v_ptr, n, c, C, ACC)
    dq = tl.load(dq_ptr + offs, mask=mask, other=0.0).to(ACC)
    tl.store(dx_ptr + offs, (dq * alpha[:, None]).to(dx_ptr.dtype.element_ty), mask=mask)
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
    row = (n * tl.num_programs(0) + tl.program_id(0)) * C
    tl.store(dalpha_part_ptr + row + c, tl.sum(dq * x, axis=1), mask=mask_c)


def forward(x: torch.Tensor, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Launches the forward kernel.

    Args:
        x: (B, C, H, W) features.
        logits: (B, C, 1, 1) attention logits.

    Returns:
        ``(q, alpha)``: (B, C, H, W) and (B, C, 1, 1), both in ``x.dtype``.
    """
    check_launchable("channel_softmax_gate", x, logits)
    x, v = x.contiguous(), logits.contiguous()
    batch, channels, height, width = x.shape
    q = torch.empty_like(x)
    alpha = x.new_empty((batch, channels, 1, 1))
    plan_launch("channel_softmax_gate", x)(
        channel_gate_fwd_kernel,
        x,
        v,
        q,
        alpha,
        channels,
        height * width,
        ACC=accumulator(x, v),
    )
    return q, alpha


def backward(
    grad_q: torch.Tensor, grad_alpha: torch.Tensor | None, x: torch.Tensor, logits: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Launches the backward kernel, then the (B, C) softmax backward of `reference`.

    Args:
        grad_q: (B, C, H, W) gradient of q.
        grad_alpha: Optional (B, C, 1, 1) gradient of α.
        x: (B, C, H, W) forward input.
        logits: (B, C, 1, 1) forward input.

    Returns:
        ``(d_x, d_logits)`` in the dtypes of ``x`` and ``logits``.
    """
    check_launchable("channel_softmax_gate_backward", grad_q, x, logits)
    dq, x, v = grad_q.contiguous(), x.contiguous(), logits.contiguous()
    batch, channels, height, width = x.shape
    launch = plan_launch("channel_softmax_gate_backward", dq, backward=True)
    acc = accumulator(dq, x, v)
    part_dtype = torch.float64 if acc == tl.float64 else torch.float32
    dalpha_part = x.new_empty((batch, launch.programs_per_image, channels), dtype=part_dtype)
    d_x = torch.empty_like(x)
    launch(
        channel_gate_bwd_kernel,
        dq,
        x,
        v,
        d_x,
        dalpha_part,
        channels,
        height * width,
        ACC=acc,
    )
    d_alpha = dalpha_part.sum(1).view(batch, channels, 1, 1)
    return d_x, reference.channel_softmax_logits_grad(v, d_alpha, grad_alpha)
