"""Pure-torch reference operations: the specification the fused Triton kernels must match.

These are the memory-bound chains of CloudLULC-Net that sit between convolutions (`kernels.md`
§1). Each is written once, here, in plain differentiable PyTorch; it is the CPU path, the
``torch.export``/ONNX decomposition and the oracle of every kernel parity test. Model code never
calls this module directly: it calls `cloudlulc_edge.kernels.<op>`, which dispatches.

Numerics: every op computes in at least float32 (fp16/bf16 inputs are upcast; fp64 stays fp64, for
gradcheck) and returns the input dtype, which is also the contract for the Triton kernels.

The ``*_backward`` functions are the closed-form gradients of the forward ops, in the same
signature as the Triton backward launchers: they are the CPU backward of the `torch.library` ops and
are themselves checked against autograd of the forward references (fp64 gradcheck).

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
    "channel_softmax_gate_backward",
    "channel_softmax_logits_grad",
    "norm_gate",
    "norm_gate_backward",
    "reliability_gate",
    "reliability_gate_backward",
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
    """CHOI order gate: ``α = softmax_c(v)``, ``Q = x ⊙ α`` (α broadcast over H, W when global).

    Args:
        x: (B, C, H, W) features (C = 2·D inside CHOI).
        logits: (B, C, 1, 1) attention logits ``M_k(·)`` (global descriptor), or (B, C, H, W)
            per-pixel logits (local descriptor).

    Returns:
        ``(q, alpha)``: (B, C, H, W) gated features in ``x.dtype`` and channel weights of the shape
        of ``logits`` in ``x.dtype`` that sum to 1 over C (the next order re-maps ``alpha``).
    """
    alpha = torch.softmax(acc(logits), dim=1)
    q = acc(x) * alpha
    return q.to(x.dtype), alpha.to(x.dtype)


def reliability_gate_backward(
    grad_y: Tensor,
    grad_rho: Tensor | None,
    optical: Tensor,
    logits: Tensor,
    valid: Tensor | None,
    sar: Tensor | None,
    alpha: float,
    valid_grad: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Gradients of `reliability_gate_pooled` (or of `reliability_gate` with ``grad_rho=None``).

    ``∂o = dy·R``, ``∂s = dy·(1 − R)·α``, ``∂R = dy·(o − α·s) − ∂ρ/C``,
    ``∂z = ∂R·m·σ(z)(1 − σ(z))``, ``∂m = Σ_c ∂R·σ(z)``.

    Args:
        grad_y: (B, C, H, W) gradient of the modulated feature.
        grad_rho: Optional (B, 1, H, W) gradient of ρ.
        optical: (B, C, H, W) forward input.
        logits: (B, C, H, W) forward input.
        valid: Optional (B, 1, H, W) forward input.
        sar: Optional (B, C, H, W) forward input.
        alpha: SAR mixing weight.
        valid_grad: Compute ``∂valid``.

    Returns:
        ``(d_optical, d_logits, d_valid, d_sar)`` in their inputs' dtypes; ``d_valid`` and
        ``d_sar`` are empty tensors when not computed (no ``valid``/``valid_grad``, no mixing).
    """
    dy = acc(grad_y)
    sig = torch.sigmoid(acc(logits))
    m = acc(valid) if valid is not None else None
    r = sig * m if m is not None else sig
    d_optical = (dy * r).to(optical.dtype)
    mixing = sar is not None and alpha != 0.0
    dr = dy * acc(optical)
    d_sar = optical.new_empty(0)
    if sar is not None and mixing:
        d_sar = (dy * (1.0 - r) * alpha).to(sar.dtype)
        dr = dy * (acc(optical) - alpha * acc(sar))
    if grad_rho is not None:
        dr = dr - acc(grad_rho) / optical.shape[1]
    dsig = dr * m if m is not None else dr
    d_logits = (dsig * sig * (1.0 - sig)).to(logits.dtype)
    d_valid = optical.new_empty(0)
    if valid is not None and valid_grad:
        d_valid = (dr * sig).sum(dim=1, keepdim=True).to(valid.dtype)
    return d_optical, d_logits, d_valid, d_sar


def norm_gate_backward(
    grad: Tensor, x: Tensor, guide: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Gradients of `norm_gate` (the residual's gradient is ``grad`` itself).

    With ``x̂ = (x − μ_c)·rstd`` and ``n = x̂γ + β``: ``∂g = dy·n``, ``∂x̂ = dy·g·γ``,
    ``∂x = rstd·(∂x̂ − mean_c(∂x̂) − x̂·mean_c(∂x̂·x̂))``, ``∂γ = Σ dy·g·x̂``, ``∂β = Σ dy·g``.

    Args:
        grad: (B, C, H, W) gradient of the output.
        x: (B, C, H, W) forward input.
        guide: (B, C, H, W) forward gate.
        weight: (C,) LayerNorm scale.
        bias: (C,) LayerNorm shift.
        eps: LayerNorm epsilon.

    Returns:
        ``(d_x, d_guide, d_weight, d_bias)`` in their inputs' dtypes.
    """
    xf, dy = acc(x), acc(grad)
    mean = xf.mean(dim=1, keepdim=True)
    rstd = torch.rsqrt((xf - mean).pow(2).mean(dim=1, keepdim=True) + eps)
    xhat = (xf - mean) * rstd
    w, b = acc(weight).view(1, -1, 1, 1), acc(bias).view(1, -1, 1, 1)
    dn = dy * acc(guide)
    dxhat = dn * w
    dx = rstd * (dxhat - dxhat.mean(dim=1, keepdim=True) - xhat * (dxhat * xhat).mean(dim=1, keepdim=True))
    return (
        dx.to(x.dtype),
        (dy * (xhat * w + b)).to(guide.dtype),
        (dn * xhat).sum(dim=(0, 2, 3)).to(weight.dtype),
        dn.sum(dim=(0, 2, 3)).to(bias.dtype),
    )


def channel_softmax_gate_backward(
    grad_q: Tensor, grad_alpha: Tensor | None, x: Tensor, logits: Tensor
) -> tuple[Tensor, Tensor]:
    """Gradients of `channel_softmax_gate`.

    ``∂x = dQ ⊙ α``; ``∂α = Σ_hw dQ·x (+ grad_alpha)`` for a global α (per pixel: ``dQ·x``, no sum);
    ``∂v = α ⊙ (∂α − Σ_c α·∂α)``.

    Args:
        grad_q: (B, C, H, W) gradient of q.
        grad_alpha: Optional gradient of α (the logits' shape).
        x: (B, C, H, W) forward input.
        logits: (B, C, 1, 1) or (B, C, H, W) forward input.

    Returns:
        ``(d_x, d_logits)`` in the dtypes of ``x`` and ``logits``.
    """
    dq = acc(grad_q)
    d_alpha = dq * acc(x)
    if logits.shape[-2:] == (1, 1):
        d_alpha = d_alpha.sum(dim=(2, 3), keepdim=True)
    d_x = dq * torch.softmax(acc(logits), dim=1)
    return d_x.to(x.dtype), channel_softmax_logits_grad(logits, d_alpha, grad_alpha)


def channel_softmax_logits_grad(logits: Tensor, d_alpha: Tensor, grad_alpha: Tensor | None) -> Tensor:
    """Softmax backward of the CHOI gate: ``∂v = α ⊙ (∂α − Σ_c α·∂α)``, ``α = softmax_c(v)``.

    Shared by the reference and the Triton launcher (which reduces ``Σ_hw dQ·x`` in its kernel).

    Args:
        logits: (B, C, 1, 1) attention logits v (or per pixel, (B, C, H, W)).
        d_alpha: ``Σ_hw dQ·x`` (per pixel: ``dQ·x``) of the logits' shape, in the accumulation dtype.
        grad_alpha: Optional gradient of the α output (the logits' shape), added to ``d_alpha``.

    Returns:
        ``∂v`` of the logits' shape in ``logits.dtype``.
    """
    alpha = torch.softmax(acc(logits), dim=1)
    if grad_alpha is not None:
        d_alpha = d_alpha + acc(grad_alpha)
    return (alpha * (d_alpha - (alpha * d_alpha).sum(dim=1, keepdim=True))).to(logits.dtype)
