"""Models: CloudLULC-Net (components and network), the baselines, registry, losses and checkpoints."""

from __future__ import annotations

from cloudlulc_edge.models import variants as _variants  # noqa: F401  (registers the variants)
from cloudlulc_edge.models._registry import create_model, is_model, list_models, register_variant
from cloudlulc_edge.models.base import LULCModel, ModelConfig
from cloudlulc_edge.models.card import ModelCard
from cloudlulc_edge.models.checkpoint import load_checkpoint, read_card, save_checkpoint
from cloudlulc_edge.models.config import CloudLULCNetConfig
from cloudlulc_edge.models.losses import CloudLULCLoss, LossTerms, SemanticAnchorLoss
from cloudlulc_edge.models.net import CloudLULCNet, ModelOutput
from cloudlulc_edge.models.recon_first import ReconstructionFirst, ReconstructionFirstConfig
from cloudlulc_edge.models.unet import UNet, UNetConfig
from cloudlulc_edge.models.variants import VARIANT_CONFIGS

__all__ = [
    "VARIANT_CONFIGS",
    "CloudLULCLoss",
    "CloudLULCNet",
    "CloudLULCNetConfig",
    "LULCModel",
    "LossTerms",
    "ModelCard",
    "ModelConfig",
    "ModelOutput",
    "ReconstructionFirst",
    "ReconstructionFirstConfig",
    "SemanticAnchorLoss",
    "UNet",
    "UNetConfig",
    "create_model",
    "is_model",
    "list_models",
    "load_checkpoint",
    "read_card",
    "register_variant",
    "save_checkpoint",
]
