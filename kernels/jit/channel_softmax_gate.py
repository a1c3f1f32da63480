"""Triton kernels of the fused CHOI order gate: channel softmax of the attention logits × features.

Two forms, by the shape of the logits v:

* **global** descriptor, v (B, C, 1, 1): ``α = softmax_c(v)`` recomputed per program (C values),
  ``Q = x ⊙ α`` broadcast over H·W. Backward: ``∂x = dQ ⊙ α`` and the per-(image, channel)
  reduction ``∂α = Σ_hw dQ·x``, written as one partial row per program and summed by the
  launcher; the softmax backward ``∂v = α ⊙ (∂α − Σ_c α·∂α)`` then runs on (B, C) values only.
* **per-pixel** (local descriptor), v (B, C, H, W) (``PER_PIXEL``): the softmax runs over the
  channels of every pixel inside the tile (a program holds all C channels of its pixels), and
  the backward is elementwise: ``∂α = dQ·x (+ ∂α_out)``, ``∂v = α ⊙ (∂α − Σ_c α·∂α)`` per pixel,
  in one kernel (`channel_softmax_gate_pixel_bwd_kernel`).

Eager PyTorch materialises α, broadcasts and multiplies in separate kernels.
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
def _pixel_softmax(v_ptr, offs, mask, mask_c, ACC: tl.constexpr):
    """Softmax over the channel axis of a (BLOCK_C, BLOCK_P) tile of logits (padded channels get 0)."""
    v = tl.load(v_ptr + offs, mask=mask, other=0.0).to(ACC)
    v = tl.where(mask_c[:, None], v, float("-inf"))  # padded lanes take no softmax mass
    e = tl.exp(v - tl.max(v, axis=0)[None, :])
    return e / tl.sum(e, axis=0)[None, :]


@triton.jit
def channel_softmax_gate_fwd_kernel(
    x_ptr,
    v_ptr,
    q_ptr,
    alpha_ptr,
    C,
    HW,
    PER_PIXEL: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
):
    """One tile of ``x ⊙ softmax_c(v)`` and its α (global: the first pixel block of each image writes it)."""
    n, _, c, _, mask_c, mask, offs = tile_offsets(C, HW, BLOCK_C, BLOCK_P)
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
    if PER_PIXEL:
        alpha2 = _pixel_softmax(v_ptr, offs, mask, mask_c, ACC)
        tl.store(alpha_ptr + offs, alpha2.to(alpha_ptr.dtype.element_ty), mask=mask)
        q = x * alpha2
    else:
        alpha = _channel_softmax(v_ptr, n, c, C, ACC)
        if tl.program_id(0) == 0:
            tl.store(alpha_ptr + n * C + c, alpha.to(alpha_ptr.dtype.element_ty), mask=mask_c)
        q = x * alpha[:, None]
    tl.store(q_ptr + offs, q.to(q_ptr.dtype.element_ty), mask=mask)


@triton.jit
def channel_softmax_gate_bwd_kernel(
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


@triton.jit
def channel_softmax_gate_pixel_bwd_kernel(
    dq_ptr,
    da_ptr,
    x_ptr,
    v_ptr,
    dx_ptr,
    dv_ptr,
    C,
    HW,
    HAS_DALPHA: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
):
    """Per-pixel backward: ``∂x = dQ·α``, ``∂v = α ⊙ (∂α − Σ_c α·∂α)`` with ``∂α = dQ·x (+ ∂α_out)``."""
    _, _, _, _, mask_c, mask, offs = tile_offsets(C, HW, BLOCK_C, BLOCK_P)
    alpha = _pixel_softmax(v_ptr, offs, mask, mask_c, ACC)
    dq = tl.load(dq_ptr + offs, mask=mask, other=0.0).to(ACC)
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
    tl.store(dx_ptr + offs, (dq * alpha).to(dx_ptr.dtype.element_ty), mask=mask)
    d_alpha = dq * x
    if HAS_DALPHA:
        d_alpha += tl.load(da_ptr + offs, mask=mask, other=0.0).to(ACC)
    # Softmax backward over the channels of each pixel (padded lanes have α = 0 and drop out).
    dv = alpha * (d_alpha - tl.sum(alpha * d_alpha, axis=0)[None, :])
    tl.store(dv_ptr + offs, dv.to(dv_ptr.dtype.element_ty), mask=mask)


def forward(x: torch.Tensor, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Launches the forward kernel.

    Args:
        x: (B, C, H, W) features.
        logits: (B, C, 1, 1) attention logits (global descriptor) or (B, C, H, W) (per pixel).

    Returns:
        ``(q, alpha)``: (B, C, H, W) and α of the logits' shape, both in ``x.dtype``.
    """
    check_launchable("channel_softmax_gate", x, logits)
    x, v = x.contiguous(), logits.contiguous()
    batch, channels, height, width = x.shape
    per_pixel = logits.shape[-2:] != (1, 1)
    q = torch.empty_like(x)
    alpha = torch.empty_like(x) if per_pixel else x.new_empty((batch, channels, 1, 1))
    plan_launch("channel_softmax_gate", x)(
        channel_softmax_gate_fwd_kernel,
        x,
        v,
        q,
        alpha,
        channels,
        height * width,
        PER_PIXEL=per_pixel,
        ACC=accumulator(x, v),
    )
    return q, alpha


def backward(
    grad_q: torch.Tensor, grad_alpha: torch.Tensor | None, x: torch.Tensor, logits: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Launches the backward kernel, then the (B, C) softmax backward of `reference`.

    Args:
        grad_q: (B, C, H, W) gradient of q.
        grad_alpha: Optional gradient of α (the logits' shape).
        x: (B, C, H, W) forward input.
        logits: (B, C, 1, 1) or (B, C, H, W) forward input.

    Returns:
        ``(d_x, d_logits)`` in the dtypes of ``x`` and ``logits``.
    """
    check_launchable("channel_softmax_gate_backward", grad_q, x, logits)
    dq, x, v = grad_q.contiguous(), x.contiguous(), logits.contiguous()
    batch, channels, height, width = x.shape
    launch = plan_launch("channel_softmax_gate_backward", dq, backward=True)
    acc = accumulator(dq, x, v)
    if logits.shape[-2:] != (1, 1):  # per-pixel logits: one elementwise kernel does it all
        d_x, d_v = torch.empty_like(x), torch.empty_like(v)
        da = grad_alpha.contiguous() if grad_alpha is not None else dq
        launch(channel_softmax_gate_pixel_bwd_kernel, dq, da, x, v, d_x, d_v, channels, height * width,
               HAS_DALPHA=grad_alpha is not None, ACC=acc)  # fmt: skip
        return d_x, d_v
    part_dtype = torch.float64 if acc == tl.float64 else torch.float32
    dalpha_part = x.new_empty((batch, launch.programs_per_image, channels), dtype=part_dtype)
    d_x = torch.empty_like(x)
    launch(
        channel_softmax_gate_bwd_kernel,
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
