"""Small building blocks shared by the CloudLULC-Net components.

HinResBlock and the channel LayerNorm follow the SHIP code family (Zheng et al., CVPR 2024,
zheng980629/SHIP ``basicsr/archs/highOrderInteractionFusion_arch.py``); Downsample/Upsample
follow Restormer (swz30/Restormer ``restormer_arch.py``). Re-implemented from `model.md`; no code
was copied.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from cloudlulc_edge import kernels as K

__all__ = [
    "ConvPair",
    "Downsample",
    "HinResBlock",
    "LayerNorm2d",
    "NormKind",
    "Upsample",
    "conv1x1",
    "conv3x3",
    "half_norm",
]

#: Normalisation of the HinRes blocks: ``instance`` (SHIP/HINet, statistics over the tile),
#: ``layer`` (per-pixel channel LayerNorm) or ``batch`` (running statistics at inference).
NormKind = Literal["instance", "layer", "batch"]


def conv3x3(c_in: int, c_out: int, stride: int = 1, groups: int = 1, bias: bool = True) -> nn.Conv2d:
    """3×3 convolution with 'same' padding."""
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, groups=groups, bias=bias)


def conv1x1(c_in: int, c_out: int, bias: bool = True) -> nn.Conv2d:
    """1×1 convolution."""
    return nn.Conv2d(c_in, c_out, 1, bias=bias)


class LayerNorm2d(nn.Module):
    """Per-pixel LayerNorm over channels with weight and bias (SHIP "WithBias").

    Args:
        channels: C.
        eps: Variance epsilon.

    Shape:
        (B, C, H, W) → (B, C, H, W).
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        """Normalises ``x`` over its channel axis."""
        return K.channel_layer_norm(x, self.weight, self.bias, self.eps)


def half_norm(kind: NormKind, channels: int) -> nn.Module:
    """The normalisation of a HinRes block's first half.

    ``instance`` is HINet's affine InstanceNorm: its statistics come from the whole tile, so the
    output at a pixel changes with the tile grid. ``layer`` (per-pixel LayerNorm over the
    channels) and ``batch`` (BatchNorm, running statistics at inference) do not.

    Raises:
        ValueError: Unknown kind.
    """
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "layer":
        return LayerNorm2d(channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    raise ValueError(f"unknown normalisation {kind!r}; use instance, layer or batch")


class HinResBlock(nn.Module):
    """Half-normalisation residual block (HINet's half-instance norm, or a tile-independent norm).

    ``h = LReLU(conv3(x))``; split h into halves h₁, h₂;
    ``y = x + LReLU(conv3(cat[N(h₁), h₂]))`` with the affine normalisation N (`half_norm`) on h₁ only.

    Args:
        channels: C (input = output width).
        slope: LeakyReLU negative slope.
        norm: ``instance`` (HINet), ``layer`` or ``batch`` (see `half_norm`).

    Shape:
        (B, C, H, W) → (B, C, H, W).
    """

    def __init__(self, channels: int, slope: float = 0.2, norm: NormKind = "instance") -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)
        self.split_at = channels // 2  # not `half`: that would shadow nn.Module.half()
        self.norm = half_norm(norm, self.split_at)
        self.act = nn.LeakyReLU(slope)

    def forward(self, x: Tensor) -> Tensor:
        """Applies the block."""
        h = self.act(self.conv1(x))
        h1, h2 = h[:, : self.split_at], h[:, self.split_at :]
        out: Tensor = x + self.act(self.conv2(torch.cat([self.norm(h1), h2], dim=1)))
        return out


class ConvPair(nn.Module):
    """``Conv3x3 → ReLU → Conv3x3``: the φ, ψ (SHOI) and χ (CHOI) transforms.

    Args:
        channels: C (input = output width).
        depthwise: Use depthwise 3×3 convolutions (the edge profile, `model.md` §6.5).

    Shape:
        (B, C, H, W) → (B, C, H, W).
    """

    def __init__(self, channels: int, depthwise: bool = False) -> None:
        super().__init__()
        groups = channels if depthwise else 1
        self.body = nn.Sequential(
            conv3x3(channels, channels, groups=groups),
            nn.ReLU(inplace=False),
            conv3x3(channels, channels, groups=groups),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Applies the two convolutions."""
        out: Tensor = self.body(x)
        return out


class Downsample(nn.Module):
    """Restormer downsample: ``Conv3x3(C → C/2)`` then ``PixelUnshuffle(2)``: (B, C, H, W) → (B, 2C, H/2, W/2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv3x3(channels, channels // 2, bias=False), nn.PixelUnshuffle(2))

    def forward(self, x: Tensor) -> Tensor:
        """Halves the resolution and doubles the width."""
        out: Tensor = self.body(x)
        return out


class Upsample(nn.Module):
    """Restormer upsample: ``Conv3x3(C → 2C)`` then ``PixelShuffle(2)``: (B, C, H, W) → (B, C/2, 2H, 2W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv3x3(channels, channels * 2, bias=False), nn.PixelShuffle(2))

    def forward(self, x: Tensor) -> Tensor:
        """Doubles the resolution and halves the width."""
        out: Tensor = self.body(x)
        return out
