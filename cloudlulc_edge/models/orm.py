"""ORM: Optical Reliability Modulation (`model.md` §5).

Learns a per-pixel, per-channel reliability ``R ∈ (0, 1)`` of the cloud-contaminated optical
feature and modulates it, ``F̃_o = F_o ⊙ R``, suppressing clouded, shadowed or hazy responses
while keeping clear-area cues. The gate bias starts at +2 (R ≈ 0.88), so the module begins close
to identity. Where the optical input has no data, R is forced to 0.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cloudlulc_edge import kernels as K
from cloudlulc_edge.models.layers import LayerNorm2d, conv1x1, conv3x3

__all__ = ["OpticalReliabilityModulation"]


class OpticalReliabilityModulation(nn.Module):
    """``U = GELU(DWConv3x3(Conv1x1(LN_c(F_o))))``; ``R = σ(Conv1x1(U) + b)``; ``F̃_o = F_o ⊙ R``.

    Args:
        channels: Feature width D.
        gate_bias: Initial bias b of the reliability logits.
        sar_alpha: If non-zero, unreliable optical responses are filled with SAR features:
            ``F̃_o = R ⊙ F_o + (1 − R) ⊙ α·F_s`` (ablation option).
        pooled: Also return the unreliability map ``ρ = 1 − mean_c(R)``.

    Shape:
        optical (B, D, h, w), valid (B, 1, h, w) or None, sar (B, D, h, w) or None →
        (modulated (B, D, h, w), ρ (B, 1, h, w) or None).
    """

    def __init__(self, channels: int, gate_bias: float = 2.0, sar_alpha: float = 0.0, pooled: bool = False) -> None:
        super().__init__()
        self.norm = LayerNorm2d(channels)
        self.proj = conv1x1(channels, channels)
        self.dwconv = conv3x3(channels, channels, groups=channels)
        self.act = nn.GELU()
        self.to_logits = conv1x1(channels, channels)
        assert self.to_logits.bias is not None
        nn.init.constant_(self.to_logits.bias, gate_bias)
        self.sar_alpha = sar_alpha
        self.pooled = pooled

    def reliability_logits(self, optical: Tensor) -> Tensor:
        """Returns the (B, D, h, w) reliability logits z (R = σ(z))."""
        logits: Tensor = self.to_logits(self.act(self.dwconv(self.proj(self.norm(optical)))))
        return logits

    def forward(
        self, optical: Tensor, valid: Tensor | None = None, sar: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Modulates the optical feature by its learned reliability."""
        logits = self.reliability_logits(optical)
        sar_in = sar if self.sar_alpha != 0.0 else None
        if self.pooled:
            return K.reliability_gate_pooled(optical, logits, valid, sar_in, self.sar_alpha)
        return K.reliability_gate(optical, logits, valid, sar_in, self.sar_alpha), None

    @torch.no_grad()
    def reliability(self, optical: Tensor, valid: Tensor | None = None) -> Tensor:
        """Returns R (B, D, h, w) for inspection and plots."""
        r = torch.sigmoid(self.reliability_logits(optical).float())
        return r if valid is None else r * valid.float()
