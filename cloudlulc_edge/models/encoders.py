"""Modality-specific encoders (HinRes / SHIP style, `model.md` §4).

Two encoders of the same topology with unshared weights: one for the 12 Sentinel-2 bands, one
for Sentinel-1 [VV, VH]. Each returns two skip maps for the decoder and the 1/4-resolution
feature on which fusion happens.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor, nn

from cloudlulc_edge.models.layers import HinResBlock, NormKind, conv3x3

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
        norm: Normalisation of the HinRes blocks (`layers.half_norm`).

    Shape:
        (B, C_in, H, W) → `EncoderFeatures`.
    """

    def __init__(self, in_channels: int, width: int, blocks: int = 2, norm: NormKind = "instance") -> None:
        super().__init__()
        half = width // 2

        def stage(c_in: int, c_out: int, stride: int) -> nn.Sequential:
            return nn.Sequential(
                conv3x3(c_in, c_out, stride=stride), *[HinResBlock(c_out, norm=norm) for _ in range(blocks)]
            )

        self.stage1 = stage(in_channels, half, 1)
        self.stage2 = stage(half, width, 2)
        self.stage3 = stage(width, width, 2)

    def forward(self, x: Tensor) -> EncoderFeatures:
        """Encodes one modality."""
        s1 = self.stage1(x)
        s2 = self.stage2(s1)
        return EncoderFeatures(s1, s2, self.stage3(s2))
