"""Fused operations of CloudLULC-Net, behind one dispatch point.

Model code calls only the functions below. Under ``CLOUDLULC_KERNELS=reference`` (or
`use_kernels("reference")`) they run the pure-torch `reference` inline, so traced graphs contain
plain aten ops (the ONNX "standard" export). Otherwise (``auto``, the default, or ``triton``) they
call one named `torch.library` op per fusion (``cloudlulc::reliability_gate``,
``cloudlulc::norm_gate``, ``cloudlulc::channel_softmax_gate``, each with a backward op); the op picks
its kernel per call through `dispatch.resolve`: Triton for CUDA tensors when Triton is importable
(forced with ``triton``, which also runs on CPU under ``TRITON_INTERPRET=1``), the reference
otherwise.

Files: `reference` (the specification); one module per op named after it under `ops/` —
`reliability_gate`, `norm_gate`, `channel_softmax_gate` (schema, fake, autograd, registration, and
the op's ``KERNELS`` table) — with its Triton kernels and launchers in the module of the same name
under `jit/` (kernels ``<op>_fwd_kernel`` / ``<op>_bwd_kernel``); `specs` (the table types),
`dispatch`, `aot` (compile the kernels for GPU targets without a GPU). Importing this package never
imports Triton.
"""

from __future__ import annotations

from torch import Tensor

from cloudlulc_edge.kernels import reference
from cloudlulc_edge.kernels.dispatch import (
    KERNELS_ENV,
    available_implementations,
    get_kernel_mode,
    register_implementation,
    resolve,
    set_kernels,
    use_kernels,
)
from cloudlulc_edge.kernels.ops.channel_softmax_gate import channel_softmax_gate_op
from cloudlulc_edge.kernels.ops.norm_gate import norm_gate_op
from cloudlulc_edge.kernels.ops.reliability_gate import reliability_gate_op

__all__ = [
    "KERNELS_ENV",
    "available_implementations",
    "channel_layer_norm",
    "channel_softmax_gate",
    "get_kernel_mode",
    "norm_gate",
    "reference",
    "register_implementation",
    "reliability_gate",
    "reliability_gate_pooled",
    "resolve",
    "set_kernels",
    "use_kernels",
]

#: Channel LayerNorm is not fused on its own (it is fused inside `norm_gate`); plain reference.
channel_layer_norm = reference.channel_layer_norm


def _inline_reference() -> bool:
    return get_kernel_mode() == "reference"


def reliability_gate(
    optical: Tensor, logits: Tensor, valid: Tensor | None = None, sar: Tensor | None = None, alpha: float = 0.0
) -> Tensor:
    """ORM gate ``R ⊙ o + (1 − R) ⊙ α·s``, ``R = σ(z) ⊙ m``; see `reference.reliability_gate`."""
    if _inline_reference():
        return reference.reliability_gate(optical, logits, valid, sar, alpha)
    y: Tensor = reliability_gate_op(optical, logits, valid, sar, float(alpha), False)[0]
    return y


def reliability_gate_pooled(
    optical: Tensor, logits: Tensor, valid: Tensor | None = None, sar: Tensor | None = None, alpha: float = 0.0
) -> tuple[Tensor, Tensor]:
    """ORM gate plus ``ρ = 1 − mean_c(R)``; see `reference.reliability_gate_pooled`."""
    if _inline_reference():
        return reference.reliability_gate_pooled(optical, logits, valid, sar, alpha)
    y, rho = reliability_gate_op(optical, logits, valid, sar, float(alpha), True)
    return y, rho


def norm_gate(
    x: Tensor, guide: Tensor, weight: Tensor, bias: Tensor, residual: Tensor | None = None, eps: float = 1e-5
) -> Tensor:
    """SHOI order step ``LN_c(x) ⊙ g (+ residual)``; see `reference.norm_gate`."""
    if _inline_reference():
        return reference.norm_gate(x, guide, weight, bias, residual, eps)
    out: Tensor = norm_gate_op(x, guide, weight, bias, residual, float(eps))
    return out


def channel_softmax_gate(x: Tensor, logits: Tensor) -> tuple[Tensor, Tensor]:
    """CHOI order gate ``(x ⊙ softmax_c(v), softmax_c(v))``; see `reference.channel_softmax_gate`.

    ``logits`` are (B, C, 1, 1) (CHOI's global descriptor: one attention vector per image) or
    (B, C, H, W) (the local descriptor of the tile-independent profile: one per pixel).
    """
    if _inline_reference():
        return reference.channel_softmax_gate(x, logits)
    q, alpha = channel_softmax_gate_op(x, logits)
    return q, alpha
