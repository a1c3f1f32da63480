"""Decoder with skips and the 6-class head (`model.md` §8).

| step | input | output |
|---|---|---|
| 1 | Z → 2× PixelShuffle upsample (1/16 → 1/4), concat G | Conv1x1 → D, n×HinRes |
| 2 | upsample → 1/2, concat S²_o, S²_s | Conv1x1 → D/2, HinRes |
| 3 | upsample → 1/1, concat S¹_o, S¹_s | Conv1x1 → D/2, HinRes |
| head | | Conv1x1(D/2 → K) logits |

Upsampling is PixelShuffle only (exports everywhere, DLA included).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cloudlulc_edge.models.encoders import EncoderFeatures
from cloudlulc_edge.models.layers import HinResBlock, NormKind, Upsample, conv1x1

__all__ = ["Decoder"]


class Decoder(nn.Module):
    """Decodes the semantic latent to full-resolution logits.

    Args:
        width: Fusion width D (divisible by 4).
        token_dim: Latent width D_t (divisible by 4).
        num_classes: K.
        blocks: HinRes blocks at step 1.
        norm: Normalisation of the HinRes blocks (`layers.half_norm`).

    Shape:
        Z (B, D_t, H/16, W/16), G (B, D, H/4, W/4), optical and SAR `EncoderFeatures` →
        logits (B, K, H, W).
    """

    def __init__(
        self, width: int, token_dim: int, num_classes: int, blocks: int = 2, norm: NormKind = "instance"
    ) -> None:
        super().__init__()
        half = width // 2
        self.up_latent = nn.Sequential(Upsample(token_dim), Upsample(token_dim // 2))  # D_t → D_t/4
        self.fuse1 = conv1x1(token_dim // 4 + width, width)
        self.refine1 = nn.Sequential(*[HinResBlock(width, norm=norm) for _ in range(blocks)])
        self.up2 = Upsample(width)  # D → D/2
        self.fuse2 = conv1x1(half + 2 * width, half)
        self.refine2 = HinResBlock(half, norm=norm)
        self.up3 = Upsample(half)  # D/2 → D/4
        self.fuse3 = conv1x1(width // 4 + 2 * half, half)
        self.refine3 = HinResBlock(half, norm=norm)
        self.head = conv1x1(half, num_classes)

    def forward(self, z: Tensor, fused: Tensor, opt: EncoderFeatures, sar: EncoderFeatures) -> Tensor:
        """Returns (B, K, H, W) logits."""
        x = self.refine1(self.fuse1(torch.cat([self.up_latent(z), fused], dim=1)))
        x = self.refine2(self.fuse2(torch.cat([self.up2(x), opt.skip2, sar.skip2], dim=1)))
        x = self.refine3(self.fuse3(torch.cat([self.up3(x), opt.skip1, sar.skip1], dim=1)))
        out: Tensor = self.head(x)
        return out
