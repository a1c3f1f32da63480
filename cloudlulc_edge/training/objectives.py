"""Training objectives: what each architecture minimises, behind one call the loop makes.

An objective is an ``nn.Module`` (its parameters, e.g. learnable anchors, are optimised and its
state saved with the run) called as ``objective(model, batch) -> {"loss": total, part: value…}``;
every entry is logged per epoch.

| architecture | objective |
|---|---|
| ``cloudlulc_net`` | CE + λ_a·anchor (+ prototype term) on the USMT latent (`CloudLULCLoss`) |
| ``unet`` | CE |
| ``recon_first`` | λ_r·L1(Ŝ2, S2_clear) over valid pixels + CE of the UNet on sg(Ŝ2) (or on S2_clear) |

The reconstruction-first segmenter sees the reconstruction with its gradient stopped (``sg``), so
the cloud-removal net learns only to match the clear image and the segmenter only to classify
what it is given: the two stages of the literature's pipelines, trained in one loop.
``recon_segment_on = "clear"`` instead trains the segmenter on the cloud-free image (the variant
of `model.md` §13 where the segmentation net never sees a reconstruction until test time).
"""

from __future__ import annotations

import abc
from typing import Any

from torch import Tensor, nn

from cloudlulc_edge.models.base import LULCModel
from cloudlulc_edge.models.losses import CloudLULCLoss, segmentation_ce
from cloudlulc_edge.models.net import CloudLULCNet
from cloudlulc_edge.models.recon_first import ReconstructionFirst
from cloudlulc_edge.models.unet import UNet
from cloudlulc_edge.training.config import ConfigError, TrainConfig

__all__ = [
    "AnchorObjective",
    "Objective",
    "ReconstructionFirstObjective",
    "SegmentationObjective",
    "build_objective",
    "masked_l1",
]


def masked_l1(prediction: Tensor, target: Tensor, valid: Tensor) -> Tensor:
    """Mean absolute error over valid pixels and all bands.

    Args:
        prediction: (B, C, H, W).
        target: (B, C, H, W).
        valid: (B, 1, H, W) 0/1 validity.
    """
    weight = valid.to(prediction.dtype).expand_as(prediction)
    return ((prediction.float() - target.float()).abs() * weight).sum() / weight.sum().clamp_min(1.0)


class Objective(nn.Module, metaclass=abc.ABCMeta):
    """Base: ``forward(model, batch) -> {"loss": scalar, ...}`` (see the module docstring)."""

    @abc.abstractmethod
    def forward(self, model: Any, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Computes the loss terms of one batch."""


class AnchorObjective(Objective):
    """CloudLULC-Net: CE plus the semantic anchor loss on the latent (`CloudLULCLoss`).

    Args:
        model: The network (its D_t and K size the anchors).
        cfg: ``anchor_weight`` and ``learnable_anchors``.
    """

    def __init__(self, model: CloudLULCNet, cfg: TrainConfig) -> None:
        super().__init__()
        self.loss = CloudLULCLoss(model.config.token_dim, model.config.num_classes, cfg.anchor_weight,
                                  learnable_anchors=cfg.learnable_anchors)  # fmt: skip

    def forward(self, model: CloudLULCNet, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Returns ``loss``, ``ce`` and ``anchor``."""
        out = model.forward_with_latent(batch["s2"], batch["s1"], batch["s2_valid"], batch["s1_valid"])
        assert out.latent is not None  # CloudLULC-Net always returns its latent
        terms = self.loss(out.logits, out.latent, batch["label"])
        return {"loss": terms.total, "ce": terms.ce, "anchor": terms.anchor}


class SegmentationObjective(Objective):
    """Plain per-pixel cross-entropy (the UNet baselines)."""

    def forward(self, model: LULCModel, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Returns ``loss`` (= ``ce``)."""
        ce = segmentation_ce(model(batch["s2"], batch["s1"], batch["s2_valid"], batch["s1_valid"]), batch["label"])
        return {"loss": ce, "ce": ce}


class ReconstructionFirstObjective(Objective):
    """Reconstruction L1 against the clear image plus CE of the segmenter on a stopped-gradient input.

    Args:
        recon_weight: λ_r.
        segment_on: ``reconstruction`` or ``clear`` (what the segmenter is trained on).
    """

    def __init__(self, recon_weight: float, segment_on: str) -> None:
        super().__init__()
        self.recon_weight = recon_weight
        self.segment_on = segment_on

    def forward(self, model: ReconstructionFirst, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Returns ``loss``, ``ce`` and ``recon_l1``."""
        model.check_inputs(batch["s2"], batch["s1"])
        reconstruction = model.reconstruct(batch["s2"], batch["s1"])
        # No target where either optical image is nodata (the readers' rule: 0 in every band).
        target_valid = batch["s2_valid"] * (batch["s2_clear"] != 0).any(1, keepdim=True)
        l1 = masked_l1(reconstruction, batch["s2_clear"], target_valid)
        segment_input = batch["s2_clear"] if self.segment_on == "clear" else reconstruction.detach()
        ce = segmentation_ce(model.segmenter(segment_input), batch["label"])
        return {"loss": ce + self.recon_weight * l1, "ce": ce, "recon_l1": l1}


def build_objective(model: LULCModel, cfg: TrainConfig) -> Objective:
    """The objective of ``model``'s architecture, configured from ``cfg``.

    Raises:
        ConfigError: No objective for this model type, or an objective option the model cannot use.
    """
    if isinstance(model, CloudLULCNet):
        return AnchorObjective(model, cfg)
    if cfg.learnable_anchors:
        raise ConfigError(f"learnable_anchors needs a CloudLULC-Net; {cfg.variant!r} has no semantic latent")
    if isinstance(model, ReconstructionFirst):
        return ReconstructionFirstObjective(cfg.recon_weight, cfg.recon_segment_on)
    if isinstance(model, UNet):
        return SegmentationObjective()
    raise ConfigError(f"no training objective for {type(model).__name__} (variant {cfg.variant!r})")
