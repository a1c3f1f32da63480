"""Training objectives: what each architecture minimises, behind one call the loop makes.

An objective is an ``nn.Module`` (its parameters, e.g. learnable anchors, are optimised and its
state saved with the run) called as ``objective(model, batch) -> {"loss": total, part: value…}``;
every entry is logged per epoch.

| architecture | objective |
|---|---|
| ``cloudlulc_net`` | CE + λ_a·anchor (+ prototype term) on the USMT latent (`CloudLULCLoss`) |
| ``unet`` | CE |
| ``recon_first`` | λ_r·L1(Ŝ2, S2_clear) over valid pixels + CE of the UNet on sg(Ŝ2) (or on S2_clear) |

Every CE is `segmentation_ce` with the run's class weights (``class_weighting``) and, where the
batch carries teacher probabilities, the distillation target of weight ``soft_weight``: all
architectures train on the same targets.

The reconstruction-first segmenter sees the reconstruction with its gradient stopped (``sg``), so
the cloud-removal net learns only to match the clear image and the segmenter only to classify
what it is given: the two stages of the literature's pipelines, trained in one loop.
``recon_segment_on = "clear"`` instead trains the segmenter on the cloud-free image (the variant
of `model.md` §13 where the segmentation net never sees a reconstruction until test time).
"""

from __future__ import annotations

import abc
from typing import Any

import torch
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
    "class_weights",
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


def class_weights(counts: Tensor, scheme: str) -> Tensor | None:
    """Per-class CE weights from the training set's labelled-pixel counts.

    ``inverse_sqrt``: ``w_c ∝ 1/√f_c`` over the classes present, scaled so that the pixel-weighted
    mean ``Σ_c f_c·w_c`` is 1 (the loss keeps its scale), capped at 10; absent classes get 1.

    Args:
        counts: (K,) labelled pixels per class.
        scheme: ``none`` or ``inverse_sqrt``.

    Returns:
        (K,) float32 weights, or None for ``none``.

    Raises:
        ConfigError: Unknown scheme.
    """
    if scheme == "none":
        return None
    if scheme != "inverse_sqrt":
        raise ConfigError(f"class_weighting must be none or inverse_sqrt, got {scheme!r}")
    freq = counts.double() / counts.sum().clamp_min(1)
    present = freq > 0
    w = torch.ones_like(freq)
    w[present] = freq[present].rsqrt()
    w[present] = w[present] / (freq[present] * w[present]).sum()
    return w.clamp(max=10.0).float()


class Objective(nn.Module, metaclass=abc.ABCMeta):
    """Base: ``forward(model, batch) -> {"loss": scalar, ...}`` (see the module docstring).

    Args:
        class_weights: Optional (K,) CE class weights (a buffer: saved with the run).
        soft_weight: λ_s of the distillation target.
    """

    class_weights: Tensor | None

    def __init__(self, class_weights: Tensor | None = None, soft_weight: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("class_weights", class_weights)
        self.soft_weight = soft_weight

    def ce(self, logits: Tensor, batch: dict[str, Tensor]) -> Tensor:
        """`segmentation_ce` of ``logits`` with this objective's weights and the batch's soft targets."""
        return segmentation_ce(logits, batch["label"], self.class_weights, soft=batch.get("soft"),
                               soft_weight=self.soft_weight)  # fmt: skip

    @abc.abstractmethod
    def forward(self, model: Any, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Computes the loss terms of one batch."""


class AnchorObjective(Objective):
    """CloudLULC-Net: CE plus the semantic anchor loss on the latent (`CloudLULCLoss`).

    Args:
        model: The network (its D_t and K size the anchors).
        cfg: ``anchor_weight``, ``learnable_anchors`` and ``soft_weight``.
        weights: Optional (K,) CE class weights.
    """

    def __init__(self, model: CloudLULCNet, cfg: TrainConfig, weights: Tensor | None = None) -> None:
        super().__init__()
        self.loss = CloudLULCLoss(model.config.token_dim, model.config.num_classes, cfg.anchor_weight,
                                  learnable_anchors=cfg.learnable_anchors, class_weights=weights,
                                  soft_weight=cfg.soft_weight)  # fmt: skip

    def forward(self, model: CloudLULCNet, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Returns ``loss``, ``ce`` and ``anchor``."""
        out = model.forward_with_latent(batch["s2"], batch["s1"], batch["s2_valid"], batch["s1_valid"])
        assert out.latent is not None  # CloudLULC-Net always returns its latent
        terms = self.loss(out.logits, out.latent, batch["label"], batch.get("soft"))
        return {"loss": terms.total, "ce": terms.ce, "anchor": terms.anchor}


class SegmentationObjective(Objective):
    """Plain per-pixel cross-entropy (the UNet baselines)."""

    def forward(self, model: LULCModel, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Returns ``loss`` (= ``ce``)."""
        ce = self.ce(model(batch["s2"], batch["s1"], batch["s2_valid"], batch["s1_valid"]), batch)
        return {"loss": ce, "ce": ce}


class ReconstructionFirstObjective(Objective):
    """Reconstruction L1 against the clear image plus CE of the segmenter on a stopped-gradient input.

    Args:
        recon_weight: λ_r.
        segment_on: ``reconstruction`` or ``clear`` (what the segmenter is trained on).
        weights: Optional (K,) CE class weights.
        soft_weight: λ_s of the distillation target.
    """

    def __init__(self, recon_weight: float, segment_on: str, weights: Tensor | None = None,
                 soft_weight: float = 0.0) -> None:  # fmt: skip
        super().__init__(weights, soft_weight)
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
        ce = self.ce(model.segmenter(segment_input), batch)
        return {"loss": ce + self.recon_weight * l1, "ce": ce, "recon_l1": l1}


def build_objective(model: LULCModel, cfg: TrainConfig, weights: Tensor | None = None) -> Objective:
    """The objective of ``model``'s architecture, configured from ``cfg``.

    Args:
        model: The network.
        cfg: The run's configuration.
        weights: Optional (K,) CE class weights (`class_weights`).

    Raises:
        ConfigError: No objective for this model type, or an objective option the model cannot use.
    """
    if isinstance(model, CloudLULCNet):
        return AnchorObjective(model, cfg, weights)
    if cfg.learnable_anchors:
        raise ConfigError(f"learnable_anchors needs a CloudLULC-Net; {cfg.variant!r} has no semantic latent")
    if isinstance(model, ReconstructionFirst):
        return ReconstructionFirstObjective(cfg.recon_weight, cfg.recon_segment_on, weights, cfg.soft_weight)
    if isinstance(model, UNet):
        return SegmentationObjective(weights, cfg.soft_weight)
    raise ConfigError(f"no training objective for {type(model).__name__} (variant {cfg.variant!r})")
