"""CHOI: Channel High-Order Interaction (`model.md` §6.2).

On ``x = cat[a', g']`` (2C channels): ``α_1 = softmax_c(M_0(GAP(x)))``, ``Q_1 = x ⊙ α_1``; each
further order re-maps the previous attention vector, ``α_k = softmax_c(M_{k−1}(α_{k−1}))``, and
gates a transformed map, ``Q_k = χ_{k−1}(Q_{k−1}) ⊙ α_k``. Then
``Y = Conv1x1(InvBlock(Q_O))`` and ``a'' = a' + Y``; the guide passes through. Each gate is one
call of the fused op `cloudlulc_edge.kernels.channel_softmax_gate`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cloudlulc_edge import kernels as K
from cloudlulc_edge.models.invblock import InvBlock, SubnetKind
from cloudlulc_edge.models.layers import ConvPair, conv1x1

__all__ = ["ChannelHighOrderInteraction"]


class ChannelHighOrderInteraction(nn.Module):
    """Channel high-order interaction.

    Args:
        channels: Stream width C (CHOI works on 2C).
        order: Maximum interaction order O (≥ 1): O attention maps M_0..M_{O−1}, O−1 transforms χ.
        depthwise: Depthwise 3×3 convolutions in χ (edge profile).
        subnet: InvBlock sub-network kind.

    Shape:
        a (B, C, h, w), g (B, C, h, w) → (a + Y, g).
    """

    def __init__(self, channels: int, order: int = 4, depthwise: bool = False, subnet: SubnetKind = "conv") -> None:
        super().__init__()
        if order < 1:
            raise ValueError(f"interaction order must be >= 1, got {order}")
        both = 2 * channels
        self.order = order
        self.attn = nn.ModuleList(
            [nn.Sequential(conv1x1(both, channels), nn.ReLU(), conv1x1(channels, both)) for _ in range(order)]
        )
        self.chi = nn.ModuleList([ConvPair(both, depthwise) for _ in range(order - 1)])
        self.inv = InvBlock(both, channels, subnet)
        self.out = conv1x1(both, channels)

    def forward(self, a: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
        """Returns ``(a + Conv1x1(InvBlock(Q_O)), g)``."""
        x = torch.cat([a, g], dim=1)
        q, alpha = K.channel_softmax_gate(x, self.attn[0](x.mean(dim=(2, 3), keepdim=True)))  # order 1
        for k in range(1, self.order):  # order k+1: re-map the attention vector, gate χ(Q)
            q, alpha = K.channel_softmax_gate(self.chi[k - 1](q), self.attn[k](alpha))
        return a + self.out(self.inv(q)), g
