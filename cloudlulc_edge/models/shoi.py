"""SHOI: Spatial High-Order Interaction (`model.md` §6.1 and §6.5).

Two forms, both with orders 1..O:

* `SpatialHighOrderInteraction` (paper scale, SHIP math): the cross-modal spectral term
  ``A = LN_c(a ⊛ g)`` seeds order 1, ``P_1 = A ⊙ g``; each further order refreshes the fused map
  and gates it with a recursively evolved guide, ``P_k = LN_c(φ_{k−1}(P_{k−1})) ⊙ g_{k−1}``,
  ``g_k = ψ_k(g_{k−1})``; output ``a' = a + P_O``, ``g' = g_{O−1}``.
* `GeneralisedSHOI` (edge profile): the same recursion on a reduced width c_h with depthwise φ/ψ,
  all order outputs fused by a 1×1 conv + a normalisation (GroupNorm(1) in the paper-faithful
  form; per-pixel channel LayerNorm in the tile-independent one), expanded, and added to both
  streams.

The spectral term seeding order 1 has three forms (`spectral.SpectralForm`): circular (SHIP),
linear (zero-padded) and local (windowed, tile-independent).

Each order step is one call of the fused op `cloudlulc_edge.kernels.norm_gate` (channel
LayerNorm → gate by the guide → residual at the last order).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cloudlulc_edge import kernels as K
from cloudlulc_edge.models.layers import ConvPair, LayerNorm2d, NormKind, conv1x1
from cloudlulc_edge.models.spectral import SpectralForm, SpectralImpl, SpectralTerm

__all__ = ["GeneralisedSHOI", "SpatialHighOrderInteraction"]


class _OrderRecursion(nn.Module):
    """The shared high-order recursion: O LayerNorms, O−1 φ and O−1 ψ transforms."""

    def __init__(
        self, channels: int, order: int, depthwise: bool, spectral_impl: SpectralImpl, form: SpectralForm, window: int
    ) -> None:
        super().__init__()
        if order < 1:
            raise ValueError(f"interaction order must be >= 1, got {order}")
        self.order = order
        self.spectral = SpectralTerm(spectral_impl, form, window)
        self.norms = nn.ModuleList([LayerNorm2d(channels) for _ in range(order)])
        self.phi = nn.ModuleList([ConvPair(channels, depthwise) for _ in range(order - 1)])
        self.psi = nn.ModuleList([ConvPair(channels, depthwise) for _ in range(order - 1)])

    def _step(self, k: int, x: Tensor, guide: Tensor, residual: Tensor | None) -> Tensor:
        norm = self.norms[k]
        assert isinstance(norm, LayerNorm2d)
        return K.norm_gate(x, guide, norm.weight, norm.bias, residual, norm.eps)

    def run(self, a: Tensor, g: Tensor, residual: Tensor | None) -> tuple[list[Tensor], Tensor]:
        """Runs orders 1..O.

        Args:
            a: (B, C, h, w) main stream.
            g: (B, C, h, w) guide stream.
            residual: Added to the last order's output (None: no residual).

        Returns:
            ``([P_1, …, P_O], g_{O−1})``.
        """
        spectral = self.spectral(a, g).to(a.dtype)
        last = self.order == 1
        outputs = [self._step(0, spectral, g, residual if last else None)]  # P_1 = LN(A) ⊙ g
        guide = g
        for k in range(1, self.order):  # order k+1
            guide = self.psi[k - 1](guide)  # g_k = ψ_k(g_{k−1})
            last = k == self.order - 1
            outputs.append(self._step(k, self.phi[k - 1](outputs[-1]), guide, residual if last else None))
        return outputs, guide


class SpatialHighOrderInteraction(nn.Module):
    """Full-width SHOI (SHIP ``spatialInteraction`` math).

    Args:
        channels: Fusion width C.
        order: Maximum interaction order O (≥ 1).
        spectral_impl: ``fft`` or ``matmul`` (see `spectral`).
        spectral: Form of the spectral term: ``circular``, ``linear`` or ``local``.
        spectral_window: Window side of the ``local`` form.
        norm: Unused here (the recursion's LayerNorms are per pixel); accepted so both SHOI kinds
            take the same arguments.

    Shape:
        a (B, C, h, w), g (B, C, h, w) → (a', g'), both (B, C, h, w).
    """

    def __init__(
        self,
        channels: int,
        order: int = 4,
        spectral_impl: SpectralImpl = "fft",
        spectral: SpectralForm = "circular",
        spectral_window: int = 7,
        norm: NormKind = "instance",
    ) -> None:
        super().__init__()
        self.recursion = _OrderRecursion(channels, order, False, spectral_impl, spectral, spectral_window)

    @property
    def order(self) -> int:
        """Maximum interaction order O."""
        return self.recursion.order

    def forward(self, a: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
        """Returns ``(a + P_O, g_{O−1})``."""
        outputs, guide = self.recursion.run(a, g, residual=a)
        return outputs[-1], guide


class GeneralisedSHOI(nn.Module):
    """Cheaper SHOI for the edge profile (`model.md` §6.5).

    Reduces both streams to ``c_h = max(C/4, 16)`` channels, runs the order recursion with
    depthwise φ/ψ, fuses ``cat[P_1..P_O]`` with ``Conv1x1(O·c_h → c_h)`` + a normalisation (weight
    initialised to 0.01, so the block starts near identity), expands with ``Conv1x1 + ReLU`` to Y
    and adds Y to both streams. The normalisation is GroupNorm(1) (statistics over the whole
    tile) for ``norm="instance"``, the paper-faithful form, and a per-pixel channel LayerNorm
    otherwise (no tile statistics).

    Args:
        channels: Fusion width C.
        order: Maximum interaction order O.
        spectral_impl: ``fft`` or ``matmul``.
        spectral: Form of the spectral term: ``circular``, ``linear`` or ``local``.
        spectral_window: Window side of the ``local`` form.
        norm: ``instance`` (GroupNorm(1) after the fusion) or ``layer``/``batch`` (per-pixel LayerNorm).

    Shape:
        a (B, C, h, w), g (B, C, h, w) → (a + Y, g + Y).
    """

    def __init__(
        self,
        channels: int,
        order: int = 4,
        spectral_impl: SpectralImpl = "fft",
        spectral: SpectralForm = "circular",
        spectral_window: int = 7,
        norm: NormKind = "instance",
    ) -> None:
        super().__init__()
        hidden = max(channels // 4, 16)
        self.reduce_a = conv1x1(channels, hidden)
        self.reduce_g = conv1x1(channels, hidden)
        self.recursion = _OrderRecursion(hidden, order, True, spectral_impl, spectral, spectral_window)
        self.fuse = conv1x1(order * hidden, hidden)
        self.norm: nn.GroupNorm | LayerNorm2d = nn.GroupNorm(1, hidden) if norm == "instance" else LayerNorm2d(hidden)
        nn.init.constant_(self.norm.weight, 0.01)
        self.expand = nn.Sequential(conv1x1(hidden, channels), nn.ReLU())

    @property
    def order(self) -> int:
        """Maximum interaction order O."""
        return self.recursion.order

    def forward(self, a: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
        """Returns ``(a + Y, g + Y)``."""
        outputs, _ = self.recursion.run(self.reduce_a(a), self.reduce_g(g), residual=None)
        y = self.expand(self.norm(self.fuse(torch.cat(outputs, dim=1))))
        return a + y, g + y
