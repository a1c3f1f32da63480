"""What every mapping network in the package shares: its configuration base, input checks and output.

CloudLULC-Net and the baselines (`unet`, `recon_first`) take the same inputs and return the same
logits, so training, evaluation, checkpoints, the mapping pipeline and export treat them alike:

    forward(s2 (B,12,H,W), s1 (B,2,H,W) | None, s2_valid (B,1,H,W) | None, s1_valid (B,1,H,W) | None)
        → logits (B,6,H,W)

A model ignores the inputs it has no use for (an S1-only UNet never reads ``s2``).
"""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from torch import Tensor, nn

from cloudlulc_edge.contract import NUM_CLASSES, S1_CHANNELS, S2_CHANNELS

if TYPE_CHECKING:  # annotations only: no run-time dependency on typing_extensions (Python 3.10)
    from typing_extensions import Self

__all__ = ["LULCModel", "ModelConfig", "ModelOutput", "raise_first_failure"]


def raise_first_failure(checks: list[tuple[bool, str]]) -> None:
    """Raises ValueError with the message of the first ``(ok, message)`` pair that failed."""
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


@dataclass(frozen=True)
class ModelConfig:
    """Fields every architecture's configuration has (the input/output contract of the network).

    Attributes:
        s2_channels: Optical input bands (12).
        s1_channels: SAR input channels (2).
        num_classes: Output classes K (6).
    """

    s2_channels: int = S2_CHANNELS
    s1_channels: int = S1_CHANNELS
    num_classes: int = NUM_CLASSES

    def __post_init__(self) -> None:
        """Validates the shared fields (subclasses extend this and call it).

        Raises:
            ValueError: A value is out of range; the message names the field.
        """
        raise_first_failure(
            [
                (self.s2_channels >= 1, f"s2_channels must be >= 1, got {self.s2_channels}"),
                (self.s1_channels >= 1, f"s1_channels must be >= 1, got {self.s1_channels}"),
                (self.num_classes >= 2, f"num_classes must be >= 2, got {self.num_classes}"),
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        """Returns the fields as a JSON-serialisable dictionary."""
        return asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        """Returns every configurable field name."""
        return [f.name for f in fields(cls)]

    def override(self, **overrides: Any) -> Self:
        """Returns a copy with ``overrides`` applied.

        Raises:
            TypeError: An override names no field (the message lists the valid names).
        """
        unknown = sorted(set(overrides) - set(self.field_names()))
        if unknown:
            raise TypeError(f"unknown model option(s) {unknown}; valid options: {self.field_names()}")
        return replace(self, **overrides)

    @property
    def input_multiple(self) -> int:
        """Tile height and width must be multiples of this (CloudLULC-Net: 16, its USMT grid)."""
        return 16

    def summary(self) -> str:
        """One line naming the fields that set the model's size (for `cloudlulc-edge info`)."""
        return f"K={self.num_classes}"


class ModelOutput(NamedTuple):
    """Everything a network computes in one pass.

    Attributes:
        logits: (B, K, H, W) class logits.
        latent: (B, D_t, H/16, W/16) semantic latent Z of CloudLULC-Net (regularised by the anchor
            loss), None for the baselines.
        class_tokens: (B, K, D_t) final class-query states, or None without the unified option.
        reconstruction: (B, 12, H, W) cloud-free optical estimate of a reconstruction-first model,
            else None.
    """

    logits: Tensor
    latent: Tensor | None = None
    class_tokens: Tensor | None = None
    reconstruction: Tensor | None = None


class LULCModel(nn.Module, metaclass=abc.ABCMeta):
    """Base of every registered network: the shared call signature and input checks.

    Subclasses set `architecture`, build from a `ModelConfig` held in ``self.config`` and implement
    `forward_with_latent`.
    """

    #: Architecture family (key of `cloudlulc_edge.models.architectures.ARCHITECTURES`).
    architecture: ClassVar[str] = ""
    #: Registered variant name (set by the registry; recorded in the model card).
    variant: str = "custom"
    config: ModelConfig

    @property
    def requires_divisible_input_shape(self) -> int:
        """Input H and W must be multiples of this (``config.input_multiple``)."""
        return self.config.input_multiple

    def check_inputs(self, s2: Tensor, s1: Tensor | None) -> None:
        """Checks input shapes against the configuration.

        Raises:
            ValueError: Wrong channel count, mismatched S1, or H/W not multiples of
                `requires_divisible_input_shape` (the message says how to pad).
        """
        cfg = self.config
        if s2.dim() != 4 or s2.shape[1] != cfg.s2_channels:
            raise ValueError(f"s2 must be (B, {cfg.s2_channels}, H, W), got {tuple(s2.shape)}")
        h, w = s2.shape[-2:]
        div = self.requires_divisible_input_shape
        if h % div or w % div:
            new_h, new_w = -(-h // div) * div, -(-w // div) * div
            raise ValueError(
                f"input height and width must be divisible by {div}, got ({h}, {w}); pad the tile to ({new_h}, {new_w})"
            )
        if s1 is not None and (s1.dim() != 4 or s1.shape[1] != cfg.s1_channels or s1.shape[-2:] != s2.shape[-2:]):
            raise ValueError(f"s1 must be (B, {cfg.s1_channels}, {h}, {w}) like s2, got {tuple(s1.shape)}")

    @abc.abstractmethod
    def forward_with_latent(
        self,
        s2: Tensor,
        s1: Tensor | None = None,
        s2_valid: Tensor | None = None,
        s1_valid: Tensor | None = None,
    ) -> ModelOutput:
        """Runs the network; see the module docstring for the arguments."""

    def forward(
        self,
        s2: Tensor,
        s1: Tensor | None = None,
        s2_valid: Tensor | None = None,
        s1_valid: Tensor | None = None,
    ) -> Tensor:
        """Returns (B, K, H, W) logits; see `forward_with_latent` for the arguments."""
        return self.forward_with_latent(s2, s1, s2_valid, s1_valid).logits
