"""Triton kernels of the fused ORM reliability gate (forward and backward).

Forward, per element: ``R = σ(z)·m``, ``y = R·o + (1 − R)·α·s`` and, when pooled, per pixel
``ρ = 1 − mean_c(R)``. Eager PyTorch runs this as 5–8 kernels writing every intermediate; here it is
one pass reading o, z (and m, s) once and writing y (and ρ) once.

Backward, per element: ``∂o = dy·R``, ``∂s = dy·(1 − R)·α``, ``∂R = dy·(o − α·s) − ∂ρ/C``,
``∂z = ∂R·m·σ(z)(1 − σ(z))`` and, per pixel, ``∂m = Σ_c ∂R·σ(z)``; σ(z) is recomputed, not stored.
"""

import torch
import triton
import triton.language as tl

from cloudlulc_edge.kernels.jit._common import accumulator, check_launchable, plan_launch, tile_offsets

__all__ = ["backward", "forward"]


@triton.jit
def reliability_gate_fwd_kernel(
    o_ptr,
    z_ptr,
    m_ptr,
    s_ptr,
    y_ptr,
    rho_ptr,
    alpha,
    C,
    HW,
    HAS_VALID: tl.constexpr,
    HAS_SAR: tl.constexpr,
    POOLED: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
):
    """One ``[BLOCK_C, BLOCK_P]`` tile of image ``program_id(1)``: gate, and optionally pool ρ."""
    b, p, _, mask_p, _, mask, offs = tile_offsets(C, HW, BLOCK_C, BLOCK_P)
    z = tl.load(z_ptr + offs, mask=mask, other=0.0).to(ACC)
    r = 1.0 / (1.0 + tl.exp(-z))
    if HAS_VALID:
        m = tl.load(m_ptr + b * HW + p, mask=mask_p, other=0.0).to(ACC)
        r = r * m[None, :]
    y = r * tl.load(o_ptr + offs, mask=mask, other=0.0).to(ACC)
    if HAS_SAR:
        s = tl.load(s_ptr + offs, mask=mask, other=0.0).to(ACC)
        y += (1.0 - r) * (alpha * s)
    tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)
    if POOLED:
        rho = 1.0 - tl.sum(tl.where(mask, r, 0.0), axis=0) / C
        tl.store(rho_ptr + b * HW + p, rho.to(rho_ptr.dtype.element_ty), mask=mask_p)


@triton.jit
def reliability_gate_bwd_kernel(
    dy_ptr,
    drho_ptr,
    o_ptr,
    z_ptr,
    m_ptr,
    s_ptr,
    do_ptr,
    dz_ptr,
    dm_ptr,
    ds_ptr,
    alpha,
    C,
    HW,
    HAS_VALID: tl.constexpr,
    HAS_SAR: tl.constexpr,
    HAS_DRHO: tl.constexpr,
    VALID_GRAD: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
):
    """Gradients of one tile; ``∂m`` is a channel reduction kept in registers."""
    b, p, _, mask_p, _, mask, offs = tile_offsets(C, HW, BLOCK_C, BLOCK_P)
    dy = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(ACC)
    sig = 1.0 / (1.0 + tl.exp(-tl.load(z_ptr + offs, mask=mask, other=0.0).to(ACC)))
    r = sig
    if HAS_VALID:
        m = tl.load(m_ptr + b * HW + p, mask=mask_p, other=0.0).to(ACC)
        r = sig * m[None, :]
    o = tl.load(o_ptr + offs, mask=mask, other=0.0).to(ACC)
    tl.store(do_ptr + offs, (dy * r).to(do_ptr.dtype.element_ty), mask=mask)
    dr = dy * o
    if HAS_SAR:
        s = tl.load(s_ptr + offs, mask=mask, other=0.0).to(ACC)
        tl.store(ds_ptr + offs, (dy * (1.0 - r) * alpha).to(ds_ptr.dtype.element_ty), mask=mask)
        dr = dy * (o - alpha * s)
    if HAS_DRHO:
        drho = tl.load(drho_ptr + b * HW + p, mask=mask_p, other=0.0).to(ACC)
        dr = dr - drho[None, :] / C
    dr = tl.where(mask, dr, 0.0)
    dsig = dr
    if HAS_VALID:
        dsig = dr * m[None, :]
    tl.store(dz_ptr + offs, (dsig * sig * (1.0 - sig)).to(dz_ptr.dtype.element_ty), mask=mask)
    if VALID_GRAD:
        dm = tl.sum(dr * sig, axis=0)
        tl.store(dm_ptr + b * HW + p, dm.to(dm_ptr.dtype.element_ty), mask=mask_p)


def forward(
    optical: torch.Tensor,
    logits: torch.Tensor,
    valid: torch.Tensor | None,
    sar: torch.Tensor | None,
    alpha: float,
    pooled: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Launches the forward kernel.

    Args:
        optical: (B, C, H, W) optical feature.
        logits: (B, C, H, W) reliability logits.
        valid: Optional (B, 1, H, W) validity.
        sar: Optional (B, C, H, W) SAR feature (used only when ``alpha != 0``).
        alpha: SAR mixing weight.
        pooled: Also compute ρ.

    Returns:
        ``(y, rho)``: y (B, C, H, W) in ``optical.dtype``; rho (B, 1, H, W) when pooled, else an
        empty tensor.
    """
    inputs = [t for t in (optical, logits, valid, sar) if t is not None]
    check_launchable("reliability_gate", *inputs)
    o, z = optical.contiguous(), logits.contiguous()
    m = valid.to(o.dtype).contiguous() if valid is not None else o
    has_sar = sar is not None and alpha != 0.0
    s = sar.contiguous() if sar is not None and has_sar else o
    batch, channels, height, width = o.shape
    y = torch.empty_like(o)
    rho = o.new_empty((batch, 1, height, width) if pooled else (0,))
    plan_launch("reliability_gate", o)(
        reliability_gate_fwd_kernel,
        o,
        z,
        m,
        s,
        y,
        rho if pooled else y,
        float(alpha),
        channels,
        height * width,
        HAS_VALID=valid is not None,
        HAS_SAR=has_sar,
        POOLED=pooled,
        ACC=accumulator(*inputs),
    )
    return y, rho


def backward(
    grad_y: torch.Tensor,
    grad_rho: torch.Tensor | None,
    optical: torch.Tensor,
    logits: torch.Tensor,
    valid: torch.Tensor | None,
    sar: torch.Tensor | None,
    alpha: float,
    valid_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Launches the backward kernel; absent gradients come back as empty tensors.

    Args:
        grad_y: (B, C, H, W) gradient of y.
        grad_rho: Optional (B, 1, H, W) gradient of ρ.
        optical: (B, C, H, W) forward input.
        logits: (B, C, H, W) forward input.
        valid: Optional (B, 1, H, W) forward input.
        sar: Optional (B, C, H, W) forward input.
        alpha: SAR mixing weight.
        valid_grad: Compute ``∂valid`` (needs ``valid``).

    Returns:
        ``(d_optical, d_logits, d_valid, d_sar)`` in the dtypes of their inputs.
    """
    inputs = [t for t in (grad_y, grad_rho, optical, logits, valid, sar) if t is not None]
    check_launchable("reliability_gate_backward", *inputs)
    o, z, dy = optical.contiguous(), logits.contiguous(), grad_y.contiguous()
    m = valid.to(o.dtype).contiguous() if valid is not None else o
    has_sar = sar is not None and alpha != 0.0
    s = sar.contiguous() if sar is not None and has_sar else o
    drho = grad_rho.contiguous() if grad_rho is not None else dy
    _, channels, height, width = o.shape
    d_o, d_z = torch.empty_like(o), torch.empty_like(z)
    d_s = torch.empty_like(s) if has_sar else o.new_empty(0)
    want_dm = valid_grad and valid is not None
    d_m = torch.empty_like(m) if want_dm else o.new_empty(0)
    launch = plan_launch("reliability_gate_backward", dy, backward=True)
    launch(
        reliability_gate_bwd_kernel,
        dy,
        drho,
        o,
        z,
        m,
        s,
        d_o,
        d_z,
        d_m if want_dm else d_o,
        d_s if has_sar else d_o,
        float(alpha),
        channels,
        height * width,
        HAS_VALID=valid is not None,
        HAS_SAR=has_sar,
        HAS_DRHO=grad_rho is not None,
        VALID_GRAD=want_dm,
        ACC=accumulator(*inputs),
    )
    if want_dm and valid is not None:
        d_m = d_m.to(valid.dtype)
    return d_o, d_z, d_m, d_s
