"""Pure-torch reference operations: the specification the fused Triton kernels must match.

These are the memory-bound chains of CloudLULC-Net that sit between convolutions (`kernels.md`
§1). Each is written once, here, in plain differentiable PyTorch; it is the CPU path, the
``torch.export``/ONNX decomposition and the oracle of every kernel parity test. Model code never
calls this module directly: it calls `cloudlulc_edge.kernels.<op>`, which dispatches.

Numerics: every op computes in at least float32 (fp16/bf16 inputs are upcast; fp64 stays fp64, for
gradcheck) and returns the input dtype, which is also the contract for the Triton kernels.

Shapes: ``B`` batch, ``C`` channels (any count, not necessarily a power of two), ``H``, ``W``
spatial (any size, odd included).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "acc",
    "channel_layer_norm",
    "channel_softmax_gate",
    "norm_gate",
    "reliability_gate",
    "reliability_gate_pooled",
]


def acc(x: Tensor) -> Tensor:
    """Upcasts to the accumulation dtype: float32, or float64 for float64 inputs."""
    return x if x.dtype == torch.float64 else x.float()


def channel_layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
    """Per-pixel LayerNorm over the channel axis (SHIP "WithBias" LayerNorm).

    ``y = (x − μ_c) / sqrt(σ²_c + eps) · weight + bias`` with biased variance over C.

    Args:
        x: (B, C, H, W) features.
        weight: (C,) scale γ.
        bias: (C,) shift β.
        eps: Variance epsilon.

    Returns:
        (B, C, H, W) tensor in ``x.dtype``.
    """
    xf = acc(x)
    mean = xf.mean(dim=1, keepdim=True)
    var = (xf - mean).pow(2).mean(dim=1, keepdim=True)
    y = (xf - mean) * torch.rsqrt(var + eps)
    y = y * acc(weight).view(1, -1, 1, 1) + acc(bias).view(1, -1, 1, 1)
    return y.to(x.dtype)


def _gate(
    optical: Tensor, logits: Tensor, valid: Tensor | None, sar: Tensor | None, alpha: float
) -> tuple[Tensor, Tensor]:
    """Returns ``(R ⊙ o + (1 − R) ⊙ α·s, R)`` in the accumulation dtype, ``R = σ(z) ⊙ m``."""
    r = torch.sigmoid(acc(logits))
    if valid is not None:
        r = r * acc(valid)  # (B, 1, H, W) broadcasts over channels: nodata → fully unreliable
    y = r * acc(optical)
    if sar is not None and alpha != 0.0:
        y = y + (1.0 - r) * (alpha * acc(sar))
    return y, r


def reliability_gate(
    optical: Tensor,
    logits: Tensor,
    valid: Tensor | None = None,
    sar: Tensor | None = None,
    alpha: float = 0.0,
) -> Tensor:
    """ORM gate: ``y = R ⊙ o + (1 − R) ⊙ α·s`` with ``R = σ(z) ⊙ m``.

    With ``sar=None`` or ``alpha=0`` this is the plain ORM modulation ``F̃_o = F_o ⊙ R``
    (`model.md` §5); the mixing form fills unreliable optical responses with SAR features.

    Args:
        optical: (B, C, H, W) optical feature F_o.
        logits: (B, C, H, W) reliability logits z (per pixel and per channel).
        valid: Optional (B, 1, H, W) optical validity in [0, 1] (1 = data, 0 = nodata); the
            reliability is multiplied by it, so nodata optical pixels are fully unreliable.
        sar: Optional (B, C, H, W) SAR feature F_s for the mixing form.
        alpha: SAR mixing weight α (0 disables mixing).

    Returns:
        (B, C, H, W) modulated optical feature F̃_o in ``optical.dtype``.
    """
    y, _ = _gate(optical, logits, valid, sar, alpha)
    return y.to(optical.dtype)


def reliability_gate_pooled(
    optical: Tensor,
    logits: Tensor,
    valid: Tensor | None = None,
    sar: Tensor | None = None,
    alpha: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """`reliability_gate` plus the pooled unreliability map ``ρ = 1 − mean_c(R)``.

    Args:
        optical: (B, C, H, W) optical feature.
        logits: (B, C, H, W) reliability logits.
        valid: Optional (B, 1, H, W) optical validity.
        sar: Optional (B, C, H, W) SAR feature for the mixing form.
        alpha: SAR mixing weight.

    Returns:
        ``(modulated, rho)``: (B, C, H, W) in ``optical.dtype`` and (B, 1, H, W) ρ ∈ [0, 1] in
        ``optical.dtype``.
    """
    y, r = _gate(optical, logits, valid, sar, alpha)
    rho = 1.0 - r.mean(dim=1, keepdim=True)
    return y.to(optical.dtype), rho.to(optical.dtype)


def norm_gate(
    x: Tensor,
    guide: Tensor,
    weight: Tensor,
    bias: Tensor,
    residual: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """SHOI order step: ``y = LN_c(x) ⊙ g (+ residual)``.

    Order 1 applies it to the FFT cross-modal term (``P_1 = LN_c(A) ⊙ g``), order k ≥ 2 to the
    refreshed map (``P_k = LN_c(φ_{k−1}(P_{k−1})) ⊙ g_{k−1}``), and the last order adds the main
    stream as residual (``a' = a + P_O``), `model.md` §6.1.

    Args:
        x: (B, C, H, W) map to normalise.
        guide: (B, C, H, W) evolved guide g_{k−1} (SAR stream).
        weight: (C,) LayerNorm scale.
        bias: (C,) LayerNorm shift.
        residual: Optional (B, C, H, W) residual added after the gate.
        eps: LayerNorm epsilon.

    Returns:
        (B, C, H, W) tensor in ``x.dtype``.
    """
    y = channel_layer_norm(acc(x), weight, bias, eps) * acc(guide)
    if residual is not None:
        y = y + acc(residual)
    return y.to(x.dtype)


def channel_softmax_gate(x: Tensor, logits: Tensor) -> tuple[Tensor, Tensor]:
    """CHOI order gate: ``α = softmax_c(v)``, ``Q = x ⊙ α`` (α broadcast over H, W).

    Args:
        x: (B, C, H, W) features (C = 2·D inside CHOI).
        logits: (B, C, 1, 1) attention logits ``M_k(·)``.

    Returns:
        ``(q, alpha)``: (B, C, H, W) gated features in ``x.dtype`` and (B, C, 1, 1) channel weights
        in ``x.dtype`` that sum to 1 over C (the next order re-maps ``alpha``).
    """
    alpha = torch.softmax(acc(logits), dim=1)
    q = acc(x) * alpha
    return q.to(x.dtype), alpha.to(x.dtype)
