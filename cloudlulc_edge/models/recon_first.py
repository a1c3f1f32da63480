"""The reconstruction-first baseline: remove the clouds with SAR's help, then segment (`model.md` §13).

    cloudy S2 (B,12,H,W) ┐
    S1 (B,2,H,W) ────────┴─ CloudRemovalNet ─► Ŝ2 (B,12,H,W) ─ UNet (12 ch) ─► logits (B,K,H,W)

`CloudRemovalNet` follows DSen2-CR (Meraner et al., ISPRS 2020; its published description, no code
copied): the concatenated optical and SAR bands go through a 3×3 convolution, residual blocks
``x + 0.1·conv(ReLU(conv(x)))`` at full resolution, and a 3×3 convolution back to 12 bands that is
added to the cloudy input (the net predicts a correction, so clear pixels pass through). Its
training target is ``Opt_S2_clear`` (an L1 loss over valid pixels); the segmenter is a UNet on its
output, trained on the reconstruction with the reconstructor's gradient cut (or on the clear image,
`cloudlulc_edge.training.objectives`), so the two stages stay separate as in the literature's
pipelines rather than becoming one end-to-end network.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from cloudlulc_edge.models.base import LULCModel, ModelConfig, ModelOutput, raise_first_failure
from cloudlulc_edge.models.layers import conv3x3
from cloudlulc_edge.models.unet import UNetBody

__all__ = ["CloudRemovalNet", "ReconstructionFirst", "ReconstructionFirstConfig"]


@dataclass(frozen=True)
class ReconstructionFirstConfig(ModelConfig):
    """Constructor arguments of `ReconstructionFirst`.

    Attributes:
        recon_width: Channels of the cloud-removal trunk.
        recon_blocks: Residual blocks of the cloud-removal trunk.
        seg_width: First-level width of the segmentation UNet.
        seg_depth: Down-sampling steps of the segmentation UNet.
    """

    recon_width: int = 64
    recon_blocks: int = 8
    seg_width: int = 32
    seg_depth: int = 4

    def __post_init__(self) -> None:
        """Validates the values.

        Raises:
            ValueError: A value is out of range; the message names the field.
        """
        super().__post_init__()
        raise_first_failure(
            [
                (self.recon_width >= 4, f"recon_width must be >= 4, got {self.recon_width}"),
                (self.recon_blocks >= 1, f"recon_blocks must be >= 1, got {self.recon_blocks}"),
                (self.seg_width >= 4, f"seg_width must be >= 4, got {self.seg_width}"),
                (1 <= self.seg_depth <= 6, f"seg_depth must lie in 1..6, got {self.seg_depth}"),
            ]
        )

    @property
    def input_multiple(self) -> int:
        """2^seg_depth: every down-sampling step halves the grid."""
        return int(2**self.seg_depth)

    def summary(self) -> str:
        """Widths and depths of both stages."""
        return (f"removal W={self.recon_width}×{self.recon_blocks} blocks; "
                f"UNet W={self.seg_width} depth={self.seg_depth}")  # fmt: skip


class _ScaledResBlock(nn.Module):
    """``x + scale·conv3(ReLU(conv3(x)))`` (DSen2-CR's residual block, scale 0.1).

    Shape:
        (B, C, H, W) → (B, C, H, W).
    """

    def __init__(self, channels: int, scale: float = 0.1) -> None:
        super().__init__()
        self.body = nn.Sequential(conv3x3(channels, channels), nn.ReLU(inplace=True), conv3x3(channels, channels))
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        """Adds the scaled residual."""
        out: Tensor = x + self.scale * self.body(x)
        return out


class CloudRemovalNet(nn.Module):
    """SAR-assisted cloud removal (DSen2-CR style): predicts the cloud-free optical image.

    Args:
        s2_channels: Optical bands (input and output).
        s1_channels: SAR channels.
        width: Trunk channels.
        blocks: Residual blocks.

    Shape:
        s2 (B, 12, H, W), s1 (B, 2, H, W) → (B, 12, H, W) reflectance estimate (normalised like s2).
    """

    def __init__(self, s2_channels: int, s1_channels: int, width: int, blocks: int) -> None:
        super().__init__()
        self.head = nn.Sequential(conv3x3(s2_channels + s1_channels, width), nn.ReLU(inplace=True))
        self.trunk = nn.Sequential(*[_ScaledResBlock(width) for _ in range(blocks)])
        self.tail = conv3x3(width, s2_channels)

    def forward(self, s2: Tensor, s1: Tensor) -> Tensor:
        """Returns the cloudy input plus the predicted correction."""
        correction: Tensor = self.tail(self.trunk(self.head(torch.cat([s2, s1], 1))))
        return s2 + correction


class ReconstructionFirst(LULCModel):
    """Cloud removal, then segmentation of the reconstructed optical image.

    Args:
        config: Hyper-parameters.
        **overrides: Field overrides applied to ``config``.

    Shape:
        s2 (B, 12, H, W), s1 (B, 2, H, W) or None (zeros) → logits (B, K, H, W); the
        `ModelOutput` also carries the reconstruction (B, 12, H, W).
    """

    _is_torch_exportable = True
    _is_onnx_exportable = True
    architecture = "recon_first"
    config: ReconstructionFirstConfig

    def __init__(self, config: ReconstructionFirstConfig | None = None, **overrides: object) -> None:
        super().__init__()
        cfg = (config or ReconstructionFirstConfig()).override(**overrides)
        self.config = cfg
        self.reconstructor = CloudRemovalNet(cfg.s2_channels, cfg.s1_channels, cfg.recon_width, cfg.recon_blocks)
        self.segmenter = UNetBody(cfg.s2_channels, cfg.num_classes, cfg.seg_width, cfg.seg_depth)

    def reconstruct(self, s2: Tensor, s1: Tensor | None) -> Tensor:
        """Stage 1: (B, 12, H, W) cloud-free estimate; a missing S1 is fed as zeros."""
        if s1 is None:
            s1 = s2.new_zeros(s2.shape[0], self.config.s1_channels, *s2.shape[-2:])
        out: Tensor = self.reconstructor(s2, s1)
        return out

    def forward_with_latent(
        self,
        s2: Tensor,
        s1: Tensor | None = None,
        s2_valid: Tensor | None = None,
        s1_valid: Tensor | None = None,
    ) -> ModelOutput:
        """Runs both stages.

        Returns:
            `ModelOutput` with logits and the reconstruction.

        Raises:
            ValueError: Input shapes do not match the model.
        """
        self.check_inputs(s2, s1)
        reconstruction = self.reconstruct(s2, s1)
        return ModelOutput(self.segmenter(reconstruction), reconstruction=reconstruction)
