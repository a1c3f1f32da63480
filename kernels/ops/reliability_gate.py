"""The fused ORM reliability gate as the `torch.library` op ``cloudlulc::reliability_gate``.

One named op (plus its backward op) so that ``torch.export`` and ONNX export see a single node, with
a fake implementation for tracing and autograd registered on it. Its kernel is resolved per call by
`dispatch.resolve`: the Triton launcher in `jit.reliability_gate` on CUDA (or under the interpreter
with ``CLOUDLULC_KERNELS=triton``), the `reference` functions on CPU. Math: `reference.reliability_gate`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from cloudlulc_edge.kernels import reference
from cloudlulc_edge.kernels.dispatch import register_implementation, register_triton, resolve
from cloudlulc_edge.kernels.specs import KernelSpec, OpKernels

__all__ = ["reliability_gate_backward_op", "reliability_gate_op"]

_GATE_SCALARS = {"alpha": "fp32", "C": "i32", "HW": "i32"}
#: The op's kernels and its compile-tier builds (ORM at the paper-scale D = 64).
KERNELS = OpKernels(
    "reliability_gate",
    (
        KernelSpec("reliability_gate", "reliability_gate_fwd_kernel", 64, _GATE_SCALARS,
                   {"HAS_VALID": True, "HAS_SAR": False, "POOLED": True}),
        KernelSpec("reliability_gate", "reliability_gate_fwd_kernel", 64, _GATE_SCALARS,
                   {"HAS_VALID": True, "HAS_SAR": True, "POOLED": False}),
        KernelSpec("reliability_gate", "reliability_gate_bwd_kernel", 64, _GATE_SCALARS,
                   {"HAS_VALID": True, "HAS_SAR": True, "HAS_DRHO": True, "VALID_GRAD": True}, backward=True),
    ),
)  # fmt: skip


def _check_shapes(optical: Tensor, logits: Tensor, valid: Tensor | None, sar: Tensor | None) -> None:
    if optical.dim() != 4 or logits.shape != optical.shape:
        raise ValueError(
            f"reliability_gate: optical and logits must both be (B, C, H, W), got {tuple(optical.shape)} "
            f"and {tuple(logits.shape)}"
        )
    batch, _, height, width = optical.shape
    if valid is not None and valid.shape != (batch, 1, height, width):
        raise ValueError(f"reliability_gate: valid must be {(batch, 1, height, width)}, got {tuple(valid.shape)}")
    if sar is not None and sar.shape != optical.shape:
        raise ValueError(f"reliability_gate: sar must match optical {tuple(optical.shape)}, got {tuple(sar.shape)}")


def _reference_forward(
    optical: Tensor, logits: Tensor, valid: Tensor | None, sar: Tensor | None, alpha: float, pooled: bool
) -> tuple[Tensor, Tensor]:
    if pooled:
        return reference.reliability_gate_pooled(optical, logits, valid, sar, alpha)
    return reference.reliability_gate(optical, logits, valid, sar, alpha), optical.new_empty(0)


@torch.library.custom_op(
    "cloudlulc::reliability_gate",
    mutates_args=(),
    schema="(Tensor optical, Tensor logits, Tensor? valid, Tensor? sar, float alpha, bool pooled) -> (Tensor, Tensor)",
)
def reliability_gate_op(
    optical: Tensor, logits: Tensor, valid: Tensor | None, sar: Tensor | None, alpha: float, pooled: bool
) -> tuple[Tensor, Tensor]:
    """``(R ⊙ o + (1 − R) ⊙ α·s, 1 − mean_c(R))`` with ``R = σ(z) ⊙ m``.

    Args:
        optical: (B, C, H, W) optical feature.
        logits: (B, C, H, W) reliability logits.
        valid: Optional (B, 1, H, W) validity in [0, 1].
        sar: Optional (B, C, H, W) SAR feature (mixing form when ``alpha != 0``).
        alpha: SAR mixing weight.
        pooled: Also return ρ.

    Returns:
        ``(y, rho)``: y (B, C, H, W) in ``optical.dtype``; rho (B, 1, H, W) when pooled, otherwise
        an empty tensor.
    """
    _check_shapes(optical, logits, valid, sar)
    out: tuple[Tensor, Tensor] = resolve("reliability_gate", optical)(optical, logits, valid, sar, alpha, pooled)
    return out


@reliability_gate_op.register_fake
def _(
    optical: Tensor, logits: Tensor, valid: Tensor | None, sar: Tensor | None, alpha: float, pooled: bool
) -> tuple[Tensor, Tensor]:
    _check_shapes(optical, logits, valid, sar)
    batch, _, height, width = optical.shape
    return torch.empty_like(optical), optical.new_empty((batch, 1, height, width) if pooled else (0,))


@torch.library.custom_op(
    "cloudlulc::reliability_gate_backward",
    mutates_args=(),
    schema="(Tensor grad_y, Tensor? grad_rho, Tensor optical, Tensor logits, Tensor? valid, Tensor? sar, "
    "float alpha, bool valid_grad) -> (Tensor, Tensor, Tensor, Tensor)",
)
def reliability_gate_backward_op(
    grad_y: Tensor,
    grad_rho: Tensor | None,
    optical: Tensor,
    logits: Tensor,
    valid: Tensor | None,
    sar: Tensor | None,
    alpha: float,
    valid_grad: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Backward of ``cloudlulc::reliability_gate``; see `reference.reliability_gate_backward`."""
    out: tuple[Tensor, Tensor, Tensor, Tensor] = resolve("reliability_gate_backward", optical)(
        grad_y, grad_rho, optical, logits, valid, sar, alpha, valid_grad
    )
    return out


@reliability_gate_backward_op.register_fake
def _(
    grad_y: Tensor,
    grad_rho: Tensor | None,
    optical: Tensor,
    logits: Tensor,
    valid: Tensor | None,
    sar: Tensor | None,
    alpha: float,
    valid_grad: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    d_valid = torch.empty_like(valid) if valid is not None and valid_grad else optical.new_empty(0)
    d_sar = torch.empty_like(sar) if sar is not None and alpha != 0.0 else optical.new_empty(0)
    return torch.empty_like(optical), torch.empty_like(logits), d_valid, d_sar


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, Tensor]) -> None:
    optical, logits, valid, sar, alpha, pooled = inputs
    ctx.save_for_backward(optical, logits, valid, sar)
    ctx.alpha, ctx.pooled = alpha, pooled


def _backward(ctx: Any, grad_y: Tensor, grad_rho: Tensor) -> tuple[Tensor | None, ...]:
    optical, logits, valid, sar = ctx.saved_tensors
    valid_grad = valid is not None and bool(ctx.needs_input_grad[2])
    d_optical, d_logits, d_valid, d_sar = reliability_gate_backward_op(
        grad_y, grad_rho if ctx.pooled else None, optical, logits, valid, sar, ctx.alpha, valid_grad
    )
    mixing = sar is not None and ctx.alpha != 0.0
    return d_optical, d_logits, d_valid if valid_grad else None, d_sar if mixing else None, None, None


reliability_gate_op.register_autograd(_backward, setup_context=_setup_context)

register_implementation("reliability_gate", "reference", _reference_forward)
register_implementation("reliability_gate_backward", "reference", reference.reliability_gate_backward)
register_triton("reliability_gate", KERNELS.module, "forward")
register_triton("reliability_gate_backward", KERNELS.module, "backward")
