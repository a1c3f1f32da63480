"""Invertible coupling block used after CHOI and for progressive aggregation (SHIP, `model.md` §6.3).

Re-implemented from the description of SHIP's ``InvBlock`` (zheng980629/SHIP) and Glow's
LU-decomposed invertible 1×1 convolution (Kingma & Dhariwal, 2018).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cloudlulc_edge.models.layers import conv1x1, conv3x3

__all__ = ["InvBlock", "InvertibleConv1x1", "SubnetKind"]

SubnetKind = Literal["conv", "conv1x1"]


class InvertibleConv1x1(nn.Module):
    """Glow-style invertible 1×1 convolution, ``W = P·L·(U + diag(sign(s)·exp(log|s|)))``.

    Args:
        channels: C.

    Shape:
        (B, C, H, W) → (B, C, H, W).
    """

    perm: Tensor
    sign_s: Tensor
    lower_mask: Tensor
    eye: Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(channels, channels))  # random rotation
        p, lower, upper = torch.linalg.lu(q)
        s = torch.diagonal(upper)
        self.register_buffer("perm", p)
        self.register_buffer("sign_s", torch.sign(s))
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.register_buffer("eye", torch.eye(channels))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(torch.abs(s)))

    def weight(self) -> Tensor:
        """Returns the (C, C) mixing matrix."""
        lower = self.lower * self.lower_mask + self.eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        w: Tensor = self.perm @ lower @ upper
        return w

    def forward(self, x: Tensor) -> Tensor:
        """Mixes channels with the invertible matrix."""
        w = self.weight().to(x.dtype)
        return F.conv2d(x, w.view(w.shape[0], w.shape[1], 1, 1))


def _subnet(c_in: int, c_out: int, kind: SubnetKind) -> nn.Module:
    if kind == "conv1x1":
        return conv1x1(c_in, c_out)
    # A light stand-in for SHIP's DenseBlock: two 3×3 convolutions.
    return nn.Sequential(conv3x3(c_in, c_out), nn.LeakyReLU(0.2), conv3x3(c_out, c_out))


class InvBlock(nn.Module):
    """Affine coupling block of SHIP.

    Invertible 1×1 conv, split, ``y₁ = x₁ + F(x₂)``, ``s = clamp·(2σ(H(y₁)) − 1)``,
    ``y₂ = x₂·eˢ + G(y₁)``, output ``cat[y₁, y₂]``.

    Args:
        channels: Total width C.
        split: Width of x₁ (x₂ has C − split).
        subnet: ``conv`` (two 3×3 convs) or ``conv1x1`` (the cheap simplification of `model.md`).
        clamp: Scale bound of the log-scale s (SHIP uses 0.8).

    Shape:
        (B, C, H, W) → (B, C, H, W).
    """

    def __init__(self, channels: int, split: int, subnet: SubnetKind = "conv", clamp: float = 0.8) -> None:
        super().__init__()
        if not 0 < split < channels:
            raise ValueError(f"split must lie in 1..{channels - 1}, got {split}")
        self.split = split
        self.clamp = clamp
        self.mix = InvertibleConv1x1(channels)
        rest = channels - split
        self.f = _subnet(rest, split, subnet)
        self.g = _subnet(split, rest, subnet)
        self.h = _subnet(split, rest, subnet)

    def forward(self, x: Tensor) -> Tensor:
        """Applies the coupling."""
        x = self.mix(x)
        x1, x2 = x[:, : self.split], x[:, self.split :]
        y1 = x1 + self.f(x2)
        s = self.clamp * (2.0 * torch.sigmoid(self.h(y1)) - 1.0)
        y2 = x2 * torch.exp(s) + self.g(y1)
        return torch.cat([y1, y2], dim=1)
