"""The fused CHOI order gate as the `torch.library` op ``cloudlulc::channel_softmax_gate``.

``α = softmax_c(v)``, ``Q = x ⊙ α`` (`reference.channel_softmax_gate`). One named op plus a
backward op; kernels resolved per call by `dispatch.resolve` (Triton launcher in `jit.channel_softmax_gate` on
CUDA, the reference on CPU).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from cloudlulc_edge.kernels import reference
from cloudlulc_edge.kernels.dispatch import register_implementation, register_triton, resolve
from cloudlulc_edge.kernels.specs import KernelSpec, OpKernels

__all__ = ["channel_softmax_gate_backward_op", "channel_softmax_gate_op"]

#: The op's kernels and its compile-tier builds (CHOI at the paper-scale 2D = 128 with the global
#: descriptor; at the edge profile's 2D = 64 with the per-pixel local one).
KERNELS = OpKernels(
    "channel_softmax_gate",
    (
        KernelSpec("channel_softmax_gate", "channel_softmax_gate_fwd_kernel", 128, {"C": "i32", "HW": "i32"},
                   {"PER_PIXEL": False}),
        KernelSpec("channel_softmax_gate", "channel_softmax_gate_fwd_kernel", 64, {"C": "i32", "HW": "i32"},
                   {"PER_PIXEL": True}),
        KernelSpec("channel_softmax_gate", "channel_softmax_gate_pixel_bwd_kernel", 64, {"C": "i32", "HW": "i32"},
                   {"HAS_DALPHA": True}, backward=True),
        KernelSpec("channel_softmax_gate", "channel_softmax_gate_bwd_kernel", 128, {"C": "i32", "HW": "i32"},
                   fp32_pointers=("dalpha_part_ptr",), backward=True),
    ),
)  # fmt: skip


def _check_shapes(x: Tensor, logits: Tensor) -> None:
    if x.dim() != 4 or logits.shape not in ((x.shape[0], x.shape[1], 1, 1), x.shape):
        raise ValueError(
            f"channel_softmax_gate: x must be (B, C, H, W) and logits (B, C, 1, 1) or (B, C, H, W) like x, got "
            f"{tuple(x.shape)} and {tuple(logits.shape)}"
        )


@torch.library.custom_op(
    "cloudlulc::channel_softmax_gate", mutates_args=(), schema="(Tensor x, Tensor logits) -> (Tensor, Tensor)"
)
def channel_softmax_gate_op(x: Tensor, logits: Tensor) -> tuple[Tensor, Tensor]:
    """``(x ⊙ softmax_c(v), softmax_c(v))``.

    Args:
        x: (B, C, H, W) features.
        logits: (B, C, 1, 1) attention logits (global descriptor) or (B, C, H, W) (local descriptor).

    Returns:
        ``(q, alpha)``: (B, C, H, W) and α of the logits' shape, in ``x.dtype``.
    """
    _check_shapes(x, logits)
    out: tuple[Tensor, Tensor] = resolve("channel_softmax_gate", x)(x, logits)
    return out


@channel_softmax_gate_op.register_fake
def _(x: Tensor, logits: Tensor) -> tuple[Tensor, Tensor]:
    _check_shapes(x, logits)
    return torch.empty_like(x), x.new_empty(logits.shape)


@torch.library.custom_op(
    "cloudlulc::channel_softmax_gate_backward",
    mutates_args=(),
    schema="(Tensor grad_q, Tensor? grad_alpha, Tensor x, Tensor logits) -> (Tensor, Tensor)",
)
def channel_softmax_gate_backward_op(
    grad_q: Tensor, grad_alpha: Tensor | None, x: Tensor, logits: Tensor
) -> tuple[Tensor, Tensor]:
    """Backward of ``cloudlulc::channel_softmax_gate``; see `reference.channel_softmax_gate_backward`."""
    out: tuple[Tensor, Tensor] = resolve("channel_softmax_gate_backward", x)(grad_q, grad_alpha, x, logits)
    return out


@channel_softmax_gate_backward_op.register_fake
def _(grad_q: Tensor, grad_alpha: Tensor | None, x: Tensor, logits: Tensor) -> tuple[Tensor, Tensor]:
    return torch.empty_like(x), torch.empty_like(logits)


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, Tensor]) -> None:
    ctx.save_for_backward(*inputs)


def _backward(ctx: Any, grad_q: Tensor, grad_alpha: Tensor) -> tuple[Tensor, Tensor]:
    x, logits = ctx.saved_tensors
    d_x, d_logits = channel_softmax_gate_backward_op(grad_q, grad_alpha, x, logits)
    return d_x, d_logits


channel_softmax_gate_op.register_autograd(_backward, setup_context=_setup_context)

register_implementation("channel_softmax_gate", "reference", reference.channel_softmax_gate)
register_implementation("channel_softmax_gate_backward", "reference", reference.channel_softmax_gate_backward)
register_triton("channel_softmax_gate", KERNELS.module, "forward")
register_triton("channel_softmax_gate_backward", KERNELS.module, "backward")
