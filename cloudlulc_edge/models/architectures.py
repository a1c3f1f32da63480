"""The architecture families a model card can name, and how to rebuild each from its card.

A card records ``architecture`` (absent in cards written before the baselines existed: those are
CloudLULC-Net) and the family's configuration; `load_checkpoint` rebuilds the model from them.
Cards are untrusted files, so every numeric field has bounds: a card asking for a width of 10⁶
would make loading it allocate until the machine dies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cloudlulc_edge.models.base import LULCModel, ModelConfig
from cloudlulc_edge.models.config import CloudLULCNetConfig
from cloudlulc_edge.models.net import CloudLULCNet
from cloudlulc_edge.models.recon_first import ReconstructionFirst, ReconstructionFirstConfig
from cloudlulc_edge.models.unet import UNet, UNetConfig

__all__ = ["ARCHITECTURES", "Architecture", "architecture_for_config", "architecture_of"]

_CONTRACT_BOUNDS: dict[str, tuple[float, float]] = {"s2_channels": (1, 64), "s1_channels": (1, 16),
                                                    "num_classes": (2, 256)}  # fmt: skip


@dataclass(frozen=True)
class Architecture:
    """One model family.

    Attributes:
        name: Key written to the card.
        config_type: Its configuration dataclass.
        model_type: Its network class (built as ``model_type(config)``).
        description: What the model is (written to the card).
        bounds: Inclusive ranges of the numeric configuration fields.
    """

    name: str
    config_type: type[ModelConfig]
    model_type: Callable[[Any], LULCModel]
    description: str
    bounds: dict[str, tuple[float, float]]


ARCHITECTURES: dict[str, Architecture] = {
    "cloudlulc_net": Architecture(
        "cloudlulc_net", CloudLULCNetConfig, CloudLULCNet,
        "Reconstruction of CloudLULC-Net (arXiv 2606.17713) from its published description; "
        "the official code and weights are unreleased.",
        {**_CONTRACT_BOUNDS, "width": (8, 256), "token_dim": (4, 1024), "order": (1, 8), "num_blocks": (1, 16),
         "usmt_depth": (0, 16), "usmt_heads": (1, 32), "mlp_ratio": (0.25, 8.0), "encoder_blocks": (0, 16),
         "decoder_blocks": (0, 16), "orm_gate_bias": (-50.0, 50.0), "orm_sar_alpha": (-50.0, 50.0)},
    ),
    "unet": Architecture(
        "unet", UNetConfig, UNet,
        "UNet baseline of cloudlulc-edge (S2-only, S1-only or 14-channel early fusion), not part of the paper.",
        {**_CONTRACT_BOUNDS, "width": (4, 256), "depth": (1, 6)},
    ),
    "recon_first": Architecture(
        "recon_first", ReconstructionFirstConfig, ReconstructionFirst,
        "Reconstruction-first baseline of cloudlulc-edge: DSen2-CR-style SAR-assisted cloud removal, then a "
        "UNet; not part of the paper.",
        {**_CONTRACT_BOUNDS, "recon_width": (4, 256), "recon_blocks": (1, 32), "seg_width": (4, 256),
         "seg_depth": (1, 6)},
    ),
}  # fmt: skip


def architecture_of(model: LULCModel) -> Architecture:
    """The family of a built model.

    Raises:
        KeyError: The model's class declares no registered architecture.
    """
    if model.architecture not in ARCHITECTURES:
        raise KeyError(f"{type(model).__name__} declares no registered architecture ({model.architecture!r})")
    return ARCHITECTURES[model.architecture]


def architecture_for_config(config: ModelConfig) -> Architecture:
    """The family whose configuration type ``config`` is.

    Raises:
        KeyError: No registered family uses this configuration type.
    """
    for architecture in ARCHITECTURES.values():
        if type(config) is architecture.config_type:
            return architecture
    raise KeyError(f"no registered architecture is configured by {type(config).__name__}")
