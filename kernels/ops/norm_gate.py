"""The fused SHOI order step as the `torch.library` op ``cloudlulc::norm_gate``.

``y = LN_c(x) ⊙ g (+ residual)``: channel LayerNorm, gate by the evolved guide, residual at the
last order (`reference.norm_gate`). The FFT cross-modal term before it stays in ``torch.fft``. One
named op plus a backward op; kernels resolved per call by `dispatch.resolve` (Triton launcher in
`jit.norm_gate` on CUDA, the reference on CPU).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from cloudlulc_edge.kernels import reference
from cloudlulc_edge.kernels.dispatch import register_implementation, register_triton, resolve
from cloudlulc_edge.kernels.specs import KernelSpec, OpKernels

__all__ = ["norm_gate_backward_op", "norm_gate_op"]

_NORM_SCALARS = {"C": "i32", "HW": "i32", "eps": "fp32"}
#: The op's kernels and its compile-tier builds (SHOI at D = 64, the edge profile's c_h = 16).
KERNELS = OpKernels(
    "norm_gate",
    (
        KernelSpec("norm_gate", "norm_gate_fwd_kernel", 64, _NORM_SCALARS, {"HAS_RES": True}),
        KernelSpec("norm_gate", "norm_gate_fwd_kernel", 16, _NORM_SCALARS, {"HAS_RES": False}),
        KernelSpec("norm_gate", "norm_gate_bwd_kernel", 64, _NORM_SCALARS,
                   fp32_pointers=("dw_part_ptr", "db_part_ptr"), backward=True),
    ),
)  # fmt: skip


def _check_shapes(x: Tensor, guide: Tensor, weight: Tensor, bias: Tensor, residual: Tensor | None) -> None:
    if x.dim() != 4 or guide.shape != x.shape or (residual is not None and residual.shape != x.shape):
        shapes = [tuple(t.shape) for t in (x, guide, residual) if t is not None]
        raise ValueError(f"norm_gate: x, guide and residual must share one (B, C, H, W) shape, got {shapes}")
    if weight.shape != (x.shape[1],) or bias.shape != (x.shape[1],):
        raise ValueError(
            f"norm_gate: weight and bias must be ({x.shape[1]},), got {tuple(weight.shape)} and {tuple(bias.shape)}"
        )


@torch.library.custom_op(
    "cloudlulc::norm_gate",
    mutates_args=(),
    schema="(Tensor x, Tensor guide, Tensor weight, Tensor bias, Tensor? residual, float eps) -> Tensor",
)
def norm_gate_op(x: Tensor, guide: Tensor, weight: Tensor, bias: Tensor, residual: Tensor | None, eps: float) -> Tensor:
    """``LN_c(x) ⊙ guide (+ residual)``.

    Args:
        x: (B, C, H, W) map to normalise.
        guide: (B, C, H, W) gate.
        weight: (C,) LayerNorm scale.
        bias: (C,) LayerNorm shift.
        residual: Optional (B, C, H, W) residual.
        eps: LayerNorm epsilon.

    Returns:
        (B, C, H, W) tensor in ``x.dtype``.
    """
    _check_shapes(x, guide, weight, bias, residual)
    out: Tensor = resolve("norm_gate", x)(x, guide, weight, bias, residual, eps)
    return out


@norm_gate_op.register_fake
def _(x: Tensor, guide: Tensor, weight: Tensor, bias: Tensor, residual: Tensor | None, eps: float) -> Tensor:
    _check_shapes(x, guide, weight, bias, residual)
    return torch.empty_like(x)


@torch.library.custom_op(
    "cloudlulc::norm_gate_backward",
    mutates_args=(),
    schema="(Tensor grad, Tensor x, Tensor guide, Tensor weight, Tensor bias, float eps) -> "
    "(Tensor, Tensor, Tensor, Tensor)",
)
def norm_gate_backward_op(
    grad: Tensor, x: Tensor, guide: Tensor, weight: Tensor, bias: Tensor, eps: float
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Backward of ``cloudlulc::norm_gate``; see `reference.norm_gate_backward`."""
    out: tuple[Tensor, Tensor, Tensor, Tensor] = resolve("norm_gate_backward", x)(grad, x, guide, weight, bias, eps)
    return out


@norm_gate_backward_op.register_fake
def _(
    grad: Tensor, x: Tensor, guide: Tensor, weight: Tensor, bias: Tensor, eps: float
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return torch.empty_like(x), torch.empty_like(guide), torch.empty_like(weight), torch.empty_like(bias)


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    x, guide, weight, bias, residual, eps = inputs
    ctx.save_for_backward(x, guide, weight, bias)
    ctx.eps = eps
    ctx.residual_dtype = residual.dtype if residual is not None else None


def _backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
    x, guide, weight, bias = ctx.saved_tensors
    d_x, d_guide, d_weight, d_bias = norm_gate_backward_op(grad, x, guide, weight, bias, ctx.eps)
    d_residual = grad.to(ctx.residual_dtype) if ctx.residual_dtype is not None else None
    return d_x, d_guide, d_weight, d_bias, d_residual, None


norm_gate_op.register_autograd(_backward, setup_context=_setup_context)

register_implementation("norm_gate", "reference", reference.norm_gate)
register_implementation("norm_gate_backward", "reference", reference.norm_gate_backward)
register_triton("norm_gate", KERNELS.module, "forward")
register_triton("norm_gate_backward", KERNELS.module, "backward")
