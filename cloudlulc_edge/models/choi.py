"""CHOI: Channel High-Order Interaction (`model.md` §6.2).

On ``x = cat[a', g']`` (2C channels): ``α_1 = softmax_c(M_0(GAP(x)))``, ``Q_1 = x ⊙ α_1``; each
further order re-maps the previous attention vector, ``α_k = softmax_c(M_{k−1}(α_{k−1}))``, and
gates a transformed map, ``Q_k = χ_{k−1}(Q_{k−1}) ⊙ α_k``. Then
``Y = Conv1x1(InvBlock(Q_O))`` and ``a'' = a' + Y``; the guide passes through. Each gate is one
call of the fused op `cloudlulc_edge.kernels.channel_softmax_gate`.

The channel descriptor has two forms (``choi_descriptor``): ``global`` is the paper's global
average pool, one attention vector per tile, so every pixel's gate depends on the whole tile;
``local`` averages over a ``window × window`` neighbourhood of each pixel (stride 1, borders
averaged over the pixels that exist), giving one attention vector per pixel that depends only on
its surroundings: the tile-independent form of the edge profile.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cloudlulc_edge import kernels as K
from cloudlulc_edge.models.invblock import InvBlock, SubnetKind
from cloudlulc_edge.models.layers import ConvPair, conv1x1

__all__ = ["ChannelHighOrderInteraction", "ChoiDescriptor"]

ChoiDescriptor = Literal["global", "local"]


class ChannelHighOrderInteraction(nn.Module):
    """Channel high-order interaction.

    Args:
        channels: Stream width C (CHOI works on 2C).
        order: Maximum interaction order O (≥ 1): O attention maps M_0..M_{O−1}, O−1 transforms χ.
        depthwise: Depthwise 3×3 convolutions in χ (edge profile).
        subnet: InvBlock sub-network kind.
        descriptor: ``global`` (GAP, the paper) or ``local`` (windowed mean, tile-independent).
        window: Window side of the ``local`` descriptor (odd).

    Shape:
        a (B, C, h, w), g (B, C, h, w) → (a + Y, g); the attention vectors α are (B, 2C, 1, 1)
        (global) or (B, 2C, h, w) (local).
    """

    def __init__(
        self,
        channels: int,
        order: int = 4,
        depthwise: bool = False,
        subnet: SubnetKind = "conv",
        descriptor: ChoiDescriptor = "global",
        window: int = 7,
    ) -> None:
        super().__init__()
        if order < 1:
            raise ValueError(f"interaction order must be >= 1, got {order}")
        if descriptor not in ("global", "local"):
            raise ValueError(f"unknown CHOI descriptor {descriptor!r}; use global or local")
        if window < 1 or window % 2 == 0:
            raise ValueError(f"the CHOI window must be a positive odd number, got {window}")
        self.descriptor: ChoiDescriptor = descriptor
        self.window = window
        both = 2 * channels
        self.order = order
        self.attn = nn.ModuleList(
            [nn.Sequential(conv1x1(both, channels), nn.ReLU(), conv1x1(channels, both)) for _ in range(order)]
        )
        self.chi = nn.ModuleList([ConvPair(both, depthwise) for _ in range(order - 1)])
        self.inv = InvBlock(both, channels, subnet)
        self.out = conv1x1(both, channels)

    def channel_descriptor(self, x: Tensor) -> Tensor:
        """(B, 2C, 1, 1) global mean, or (B, 2C, h, w) windowed mean of ``x``."""
        if self.descriptor == "global":
            return x.mean(dim=(2, 3), keepdim=True)
        # count_include_pad=False: a border pixel averages the pixels that exist, not zeros.
        return F.avg_pool2d(x, self.window, stride=1, padding=self.window // 2, count_include_pad=False)

    def forward(self, a: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
        """Returns ``(a + Conv1x1(InvBlock(Q_O)), g)``."""
        x = torch.cat([a, g], dim=1)
        q, alpha = K.channel_softmax_gate(x, self.attn[0](self.channel_descriptor(x)))  # order 1
        for k in range(1, self.order):  # order k+1: re-map the attention vector, gate χ(Q)
            q, alpha = K.channel_softmax_gate(self.chi[k - 1](q), self.attn[k](alpha))
        return a + self.out(self.inv(q)), g
