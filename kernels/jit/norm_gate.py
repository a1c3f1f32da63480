"""Triton kernels of the fused SHOI order step: channel LayerNorm → gate → residual.

Forward, per pixel: ``x̂ = (x − μ_c)·rstd``, ``y = (x̂·γ + β)·g (+ res)``. Eager PyTorch reads x
three times and writes four intermediates; here x, g (and res) are read once and y written once.

Backward, per pixel: ``∂g = dy·(x̂γ + β)``, ``∂x̂ = dy·g·γ``,
``∂x = rstd·(∂x̂ − mean_c(∂x̂) − x̂·mean_c(∂x̂·x̂))``; ``∂γ = Σ dy·g·x̂`` and ``∂β = Σ dy·g`` are
reduced over the tile's pixels into one row per program of a partial-sum buffer, summed by the
launcher (deterministic, no atomics). Statistics are recomputed from x, which backward reads anyway.
"""

import torch
import triton
import triton.language as tl

from cloudlulc_edge.kernels.jit._common import accumulator, check_launchable, plan_launch, tile_offsets

__all__ = ["backward", "forward"]


@triton.jit
def _normalise(x_ptr, offs, mask, C, eps, ACC: tl.constexpr):
    """Loads a tile and returns ``(x − μ_c, rstd)``, padded lanes zeroed so they skip the variance."""
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
    xc = tl.where(mask, x - (tl.sum(x, axis=0) / C)[None, :], 0.0)
    return xc, 1.0 / tl.sqrt(tl.sum(xc * xc, axis=0) / C + eps)


@triton.jit
def norm_gate_fwd_kernel(
    x_ptr,
    g_ptr,
    w_ptr,
    b_ptr,
    res_ptr,
    y_ptr,
    C,
    HW,
    eps,
    HAS_RES: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
):
    """One tile: per-pixel LayerNorm statistics over all channels, gate, residual."""
    _, _, c, _, mask_c, mask, offs = tile_offsets(C, HW, BLOCK_C, BLOCK_P)
    xc, rstd = _normalise(x_ptr, offs, mask, C, eps, ACC)
    w = tl.load(w_ptr + c, mask=mask_c, other=0.0).to(ACC)
    b = tl.load(b_ptr + c, mask=mask_c, other=0.0).to(ACC)
    y = (xc * rstd[None, :] * w[:, None] + b[:, None]) * tl.load(g_ptr + offs, mask=mask, other=0.0).to(ACC)
    if HAS_RES:
        y += tl.load(res_ptr + offs, mask=mask, other=0.0).to(ACC)
    tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def norm_gate_bwd_kernel(
    dy_ptr,
    x_ptr,
    g_ptr,
    w_ptr,
    b_ptr,
    dx_ptr,
    dg_ptr,
    dw_part_ptr,
    db_part_ptr,
    C,
    HW,
    eps,
    ACC: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
):
    """One tile's ∂x and ∂g, plus its partial ∂γ/∂β row."""
    n, _, c, _, mask_c, mask, offs = tile_offsets(C, HW, BLOCK_C, BLOCK_P)
    xc, rstd = _normalise(x_ptr, offs, mask, C, eps, ACC)
    xhat = xc * rstd[None, :]
    w = tl.load(w_ptr + c, mask=mask_c, other=0.0).to(ACC)
    b = tl.load(b_ptr + c, mask=mask_c, other=0.0).to(ACC)
    dy = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(ACC)
    g = tl.load(g_ptr + offs, mask=mask, other=0.0).to(ACC)
    tl.store(dg_ptr + offs, (dy * (xhat * w[:, None] + b[:, None])).to(dg_ptr.dtype.element_ty), mask=mask)
    dn = dy * g  # zero on padded lanes and pixels (dy loaded as 0 there)
    dxhat = dn * w[:, None]
    m1 = tl.sum(dxhat, axis=0) / C
    m2 = tl.sum(dxhat * xhat, axis=0) / C
    dx = rstd[None, :] * (dxhat - m1[None, :] - xhat * m2[None, :])
    tl.store(dx_ptr + offs, dx.to(dx_ptr.dtype.element_ty), mask=mask)
    row = (n * tl.num_programs(0) + tl.program_id(0)) * C
    tl.store(dw_part_ptr + row + c, tl.sum(dn * xhat, axis=1), mask=mask_c)
    tl.store(db_part_ptr + row + c, tl.sum(dn, axis=1), mask=mask_c)


def forward(
    x: torch.Tensor,
    guide: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    residual: torch.Tensor | None,
    eps: float,
) -> torch.Tensor:
    """Launches the forward kernel.

    Args:
        x: (B, C, H, W) map to normalise.
        guide: (B, C, H, W) gate.
        weight: (C,) LayerNorm scale.
        bias: (C,) LayerNorm shift.
        residual: Optional (B, C, H, W) residual.
        eps: LayerNorm epsilon.

    Returns:
        (B, C, H, W) output in ``x.dtype``.
    """
    inputs = [t for t in (x, guide, weight, bias, residual) if t is not None]
    check_launchable("norm_gate", *inputs)
    x, guide = x.contiguous(), guide.contiguous()
    res = residual.contiguous() if residual is not None else x
    _, channels, height, width = x.shape
    y = torch.empty_like(x)
    plan_launch("norm_gate", x)(
        norm_gate_fwd_kernel,
        x,
        guide,
        weight.contiguous(),
        bias.contiguous(),
        res,
        y,
        channels,
        height * width,
        float(eps),
        HAS_RES=residual is not None,
        ACC=accumulator(*inputs),
    )
    return y


def backward(
    grad: torch.Tensor,
    x: torch.Tensor,
    guide: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Launches the backward kernel and sums the per-program ∂γ/∂β rows.

    Args:
        grad: (B, C, H, W) gradient of the output.
        x: (B, C, H, W) forward input.
        guide: (B, C, H, W) forward gate.
        weight: (C,) LayerNorm scale.
        bias: (C,) LayerNorm shift.
        eps: LayerNorm epsilon.

    Returns:
        ``(d_x, d_guide, d_weight, d_bias)`` in the dtypes of their inputs (∂residual is ``grad``).
    """
    check_launchable("norm_gate_backward", grad, x, guide, weight, bias)
    dy, x, guide = grad.contiguous(), x.contiguous(), guide.contiguous()
    batch, channels, height, width = x.shape
    launch = plan_launch("norm_gate_backward", dy, backward=True)
    acc = accumulator(x, guide, weight, dy)
    part_dtype = torch.float64 if acc == tl.float64 else torch.float32
    dw_part = x.new_empty((batch * launch.programs_per_image, channels), dtype=part_dtype)
    db_part = torch.empty_like(dw_part)
    d_x, d_g = torch.empty_like(x), torch.empty_like(guide)
    launch(
        norm_gate_bwd_kernel,
        dy,
        x,
        guide,
        weight.contiguous(),
        bias.contiguous(),
        d_x,
        d_g,
        dw_part,
        db_part,
        channels,
        height * width,
        float(eps),
        ACC=acc,
    )
    return d_x, d_g, dw_part.sum(0).to(weight.dtype), db_part.sum(0).to(bias.dtype)
