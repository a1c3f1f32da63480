"""HIAA: Heterogeneous Information Adaptive Aggregation (`model.md` §6, §6.4).

One HIAA block is SHOI (spatial) then CHOI (channel). N blocks are stacked; the main-stream
output of every block is kept and aggregated progressively,
``G = Conv1x1(N·C → C)(InvBlock(cat[a_1, …, a_N]))``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from cloudlulc_edge.models.choi import ChannelHighOrderInteraction, ChoiDescriptor
from cloudlulc_edge.models.invblock import InvBlock, SubnetKind
from cloudlulc_edge.models.layers import NormKind, conv1x1
from cloudlulc_edge.models.shoi import GeneralisedSHOI, SpatialHighOrderInteraction
from cloudlulc_edge.models.spectral import SpectralForm, SpectralImpl

__all__ = ["HIAA", "HIAABlock", "ShoiKind"]

ShoiKind = Literal["ship", "generalised"]


class HIAABlock(nn.Module):
    """SHOI → CHOI on (main, guide) = (optical, SAR).

    Args:
        channels: Fusion width C.
        order: Maximum interaction order O of both sub-modules.
        shoi: ``ship`` (full width) or ``generalised`` (edge profile).
        use_shoi: False replaces SHOI by the identity (ablation).
        use_choi: False replaces CHOI by the identity (ablation).
        depthwise_chi: Depthwise χ in CHOI.
        subnet: InvBlock sub-network kind.
        spectral_impl: Spectral term implementation.
        spectral: Spectral term form (circular, linear, local).
        spectral_window: Window of the local spectral form.
        norm: Normalisation of the generalised SHOI fusion.
        choi_descriptor: CHOI channel descriptor (global, local).
        choi_window: Window of the local CHOI descriptor.

    Shape:
        a (B, C, h, w), g (B, C, h, w) → (a'', g''), both (B, C, h, w).
    """

    def __init__(
        self,
        channels: int,
        order: int,
        shoi: ShoiKind = "ship",
        use_shoi: bool = True,
        use_choi: bool = True,
        depthwise_chi: bool = False,
        subnet: SubnetKind = "conv",
        spectral_impl: SpectralImpl = "fft",
        spectral: SpectralForm = "circular",
        spectral_window: int = 7,
        norm: NormKind = "instance",
        choi_descriptor: ChoiDescriptor = "global",
        choi_window: int = 7,
    ) -> None:
        super().__init__()
        self.shoi: nn.Module | None = None
        if use_shoi:
            cls = SpatialHighOrderInteraction if shoi == "ship" else GeneralisedSHOI
            self.shoi = cls(channels, order, spectral_impl, spectral, spectral_window, norm)
        self.choi = (
            ChannelHighOrderInteraction(channels, order, depthwise_chi, subnet, choi_descriptor, choi_window)
            if use_choi
            else None
        )

    def forward(self, a: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
        """Fuses SAR into the optical stream."""
        if self.shoi is not None:
            a, g = self.shoi(a, g)
        if self.choi is not None:
            a, g = self.choi(a, g)
        return a, g


class HIAA(nn.Module):
    """N stacked HIAA blocks with progressive aggregation.

    Args:
        channels: Fusion width C.
        num_blocks: N (≥ 1).
        subnet: InvBlock sub-network kind of the aggregation.
        **block_kwargs: Passed to every `HIAABlock`.

    Shape:
        a (B, C, h, w), g (B, C, h, w) → G (B, C, h, w).
    """

    def __init__(self, channels: int, num_blocks: int, subnet: SubnetKind = "conv", **block_kwargs: object) -> None:
        super().__init__()
        if num_blocks < 1:
            raise ValueError(f"num_blocks must be >= 1, got {num_blocks}")
        self.blocks = nn.ModuleList(
            [HIAABlock(channels, subnet=subnet, **block_kwargs) for _ in range(num_blocks)]  # type: ignore[arg-type]
        )
        total = num_blocks * channels
        self.aggregate_inv = InvBlock(total, total // 2, subnet)
        self.aggregate_out = conv1x1(total, channels)

    def forward(self, a: Tensor, g: Tensor) -> Tensor:
        """Returns the aggregated fused feature G."""
        mains = []
        for block in self.blocks:
            a, g = block(a, g)
            mains.append(a)
        out: Tensor = self.aggregate_out(self.aggregate_inv(torch.cat(mains, dim=1)))
        return out
