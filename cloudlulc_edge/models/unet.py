"""UNet baselines: S2-only, S1-only and early fusion (`model.md` §13, baselines 1 and 2, and S1-only).

A plain UNet (Ronneberger et al., MICCAI 2015) with BatchNorm (folded into the convolutions at
export, so it quantises like the rest of the package). ``inputs`` selects what it sees:

| ``inputs`` | channels | what it is |
|---|---|---|
| ``s2`` | 12 | optical only: clouds are whatever the bands say |
| ``s1`` | 2 | SAR only: cloud-blind, but without the optical spectral information |
| ``early`` | 14 | early fusion: S2 and S1 concatenated at the input |

The validity masks are not inputs: nodata is already zero in the normalised bands (`contract`),
and a missing S1 (``s1=None``) is fed as zeros.

    x (B,C,H,W) ─DoubleConv─► e0 (W) ─pool─► e1 (2W) … ─► e_depth (2^depth·W, H/2^depth)
    up: bilinear ×2, concatenate the skip, DoubleConv, … ─► (B,W,H,W) ─1×1─► logits (B,K,H,W)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cloudlulc_edge.models.base import LULCModel, ModelConfig, ModelOutput, raise_first_failure

__all__ = ["DoubleConv", "UNet", "UNetBody", "UNetConfig", "UNetInputs"]

UNetInputs = Literal["s2", "s1", "early"]


@dataclass(frozen=True)
class UNetConfig(ModelConfig):
    """Constructor arguments of `UNet`.

    Attributes:
        inputs: ``s2``, ``s1`` or ``early`` (see the module table).
        width: Channels of the first level W (level i has W·2^i).
        depth: Down-sampling steps (H and W must be multiples of 2^depth).
    """

    inputs: UNetInputs = "early"
    width: int = 32
    depth: int = 4

    def __post_init__(self) -> None:
        """Validates the values.

        Raises:
            ValueError: A value is out of range; the message names the field.
        """
        super().__post_init__()
        raise_first_failure(
            [
                (self.inputs in ("s2", "s1", "early"), f"inputs must be 's2', 's1' or 'early', got {self.inputs!r}"),
                (self.width >= 4, f"width must be >= 4, got {self.width}"),
                (1 <= self.depth <= 6, f"depth must lie in 1..6, got {self.depth}"),
            ]
        )

    @property
    def in_channels(self) -> int:
        """Input channels of the first convolution."""
        return {"s2": self.s2_channels, "s1": self.s1_channels, "early": self.s2_channels + self.s1_channels}[
            self.inputs
        ]

    @property
    def input_multiple(self) -> int:
        """2^depth: every down-sampling step halves the grid."""
        return int(2**self.depth)

    def summary(self) -> str:
        """Inputs, width and depth."""
        return f"inputs={self.inputs} ({self.in_channels} ch) W={self.width} depth={self.depth}"


class DoubleConv(nn.Sequential):
    """(Conv3×3 → BatchNorm → ReLU) × 2.

    Shape:
        (B, C_in, H, W) → (B, C_out, H, W).
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )


class UNetBody(nn.Module):
    """The UNet encoder-decoder on an assembled input (in `UNet` and the reconstruction-first segmenter).

    Args:
        in_channels: C.
        out_channels: Output channels (classes).
        width: W.
        depth: Down-sampling steps.

    Shape:
        (B, C, H, W) → (B, out_channels, H, W); H, W multiples of 2^depth.
    """

    def __init__(self, in_channels: int, out_channels: int, width: int, depth: int) -> None:
        super().__init__()
        widths = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([DoubleConv(in_channels, widths[0])])
        self.down.extend(DoubleConv(a, b) for a, b in itertools.pairwise(widths))
        # Up level i takes the upsampled level i+1 (widths[i+1]) plus the skip (widths[i]).
        self.up = nn.ModuleList(DoubleConv(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Encodes, decodes with skips and classifies every pixel."""
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = block(
                torch.cat([F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False), skip], 1)
            )
        out: Tensor = self.head(x)
        return out


class UNet(LULCModel):
    """UNet baseline with a selectable input (S2-only, S1-only or 14-channel early fusion).

    Args:
        config: Hyper-parameters.
        **overrides: Field overrides applied to ``config``.

    Shape:
        s2 (B, 12, H, W), s1 (B, 2, H, W) or None → logits (B, K, H, W); H, W multiples of 2^depth.
        The validity masks are accepted for a common signature and not used.
    """

    _is_torch_exportable = True
    _is_onnx_exportable = True
    architecture = "unet"
    config: UNetConfig

    def __init__(self, config: UNetConfig | None = None, **overrides: object) -> None:
        super().__init__()
        cfg = (config or UNetConfig()).override(**overrides)
        self.config = cfg
        self.body = UNetBody(cfg.in_channels, cfg.num_classes, cfg.width, cfg.depth)

    def assemble_input(self, s2: Tensor, s1: Tensor | None) -> Tensor:
        """The network input for the configured ``inputs``: (B, C, H, W), zeros for a missing S1."""
        if s1 is None:
            s1 = s2.new_zeros(s2.shape[0], self.config.s1_channels, *s2.shape[-2:])
        if self.config.inputs == "s2":
            return s2
        if self.config.inputs == "s1":
            return s1
        return torch.cat([s2, s1], 1)

    def forward_with_latent(
        self,
        s2: Tensor,
        s1: Tensor | None = None,
        s2_valid: Tensor | None = None,
        s1_valid: Tensor | None = None,
    ) -> ModelOutput:
        """Returns `ModelOutput` with the logits only (a UNet has no semantic latent).

        Raises:
            ValueError: Input shapes do not match the model.
        """
        self.check_inputs(s2, s1)
        return ModelOutput(self.body(self.assemble_input(s2, s1)))
