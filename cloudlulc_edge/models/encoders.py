"""Modality-specific encoders (HinRes / SHIP style, `model.md` §4).

Two encoders of the same topology with unshared weights: one for the 12 Sentinel-2 bands, one
for Sentinel-1 [VV, VH]. Each returns two skip maps for the decoder and the 1/4-resolution
feature on which fusion happens.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor, nn

from cloudlulc_edge.models.layers import HinResBlock, conv3x3

__all__ = ["EncoderFeatures", "ModalityEncoder"]


class EncoderFeatures(NamedTuple):
    """Multi-scale encoder output.

    Attributes:
        skip1: (B, D/2, H, W) full-resolution skip S¹.
        skip2: (B, D, H/2, W/2) half-resolution skip S².
        feature: (B, D, H/4, W/4) fusion feature F.
    """

    skip1: Tensor
    skip2: Tensor
    feature: Tensor


class ModalityEncoder(nn.Module):
    """Three-stage HinRes encoder.

    ``Conv3x3(C_in→D/2)`` + n×HinRes → S¹; ``Conv3x3/2(D/2→D)`` + n×HinRes → S²;
    ``Conv3x3/2(D→D)`` + n×HinRes → F.

    Args:
        in_channels: C_in (12 for S2, 2 for S1).
        width: Fusion width D (even).
        blocks: HinRes blocks per stage, n.

    Shape:
        (B, C_in, H, W) → `EncoderFeatures`.
    """

    def __init__(self, in_channels: int, width: int, blocks: int = 2) -> None:
        super().__init__()
        half = width // 2
        self.stage1 = nn.Sequential(conv3x3(in_channels, half), *[HinResBlock(half) for _ in range(blocks)])
        self.stage2 = nn.Sequential(conv3x3(half, width, stride=2), *[HinResBlock(width) for _ in range(blocks)])
        self.stage3 = nn.Sequential(conv3x3(width, width, stride=2), *[HinResBlock(width) for _ in range(blocks)])

    def forward(self, x: Tensor) -> EncoderFeatures:
        """Encodes one modality."""
        s1 = self.stage1(x)
        s2 = self.stage2(s1)
        return EncoderFeatures(s1, s2, self.stage3(s2))
