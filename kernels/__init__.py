"""Fused operations of CloudLULC-Net, behind one dispatch point.

Model code calls only the functions below. Each looks up its implementation through
`dispatch.resolve` (Triton on CUDA when available, the pure-torch reference otherwise;
``CLOUDLULC_KERNELS=auto|triton|reference`` overrides), so a Triton kernel slots in by registering
itself, without touching model code. `reference` holds the specification.

Importing this package never imports Triton.
"""

from __future__ import annotations

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
from torch import Tensor

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
    "set_kernels",
    "use_kernels",
]

for _name in ("reliability_gate", "reliability_gate_pooled", "norm_gate", "channel_softmax_gate"):
    register_implementation(_name, "reference", getattr(reference, _name))

#: Channel LayerNorm is not fused on its own (it is fused inside `norm_gate`); plain reference.
channel_layer_norm = reference.channel_layer_norm


def reliability_gate(
    optical: Tensor, logits: Tensor, valid: Tensor | None = None, sar: Tensor | None = None, alpha: float = 0.0
) -> Tensor:
    """ORM gate ``R ⊙ o + (1 − R) ⊙ α·s``, ``R = σ(z) ⊙ m``; see `reference.reliability_gate`."""
    out: Tensor = resolve("reliability_gate", optical)(optical, logits, valid, sar, alpha)
    return out


def reliability_gate_pooled(
    optical: Tensor, logits: Tensor, valid: Tensor | None = None, sar: Tensor | None = None, alpha: float = 0.0
) -> tuple[Tensor, Tensor]:
    """ORM gate plus ``ρ = 1 − mean_c(R)``; see `reference.reliability_gate_pooled`."""
    out: tuple[Tensor, Tensor] = resolve("reliability_gate_pooled", optical)(optical, logits, valid, sar, alpha)
    return out


def norm_gate(
    x: Tensor, guide: Tensor, weight: Tensor, bias: Tensor, residual: Tensor | None = None, eps: float = 1e-5
) -> Tensor:
    """SHOI order step ``LN_c(x) ⊙ g (+ residual)``; see `reference.norm_gate`."""
    out: Tensor = resolve("norm_gate", x)(x, guide, weight, bias, residual, eps)
    return out


def channel_softmax_gate(x: Tensor, logits: Tensor) -> tuple[Tensor, Tensor]:
    """CHOI order gate ``(x ⊙ softmax_c(v), softmax_c(v))``; see `reference.channel_softmax_gate`."""
    out: tuple[Tensor, Tensor] = resolve("channel_softmax_gate", x)(x, logits)
    return out
