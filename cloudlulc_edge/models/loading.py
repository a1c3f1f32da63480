"""One way to get a model to run: a checkpoint, the variant's packaged weights, or (on request) untrained weights.

`load_model` is what the mapping backends, the export command, the benchmarks and the README's
library example share. A variant without trained weights is refused unless the caller asks for
untrained weights (``allow_untrained``): a map made with random weights looks like a map, so it
must never happen by accident, and when it is asked for the identity says ``untrained``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cloudlulc_edge.errors import CloudLULCError
from cloudlulc_edge.models._registry import create_model, list_models
from cloudlulc_edge.models.base import LULCModel
from cloudlulc_edge.models.card import ModelCard
from cloudlulc_edge.models.checkpoint import load_checkpoint

__all__ = ["UNTRAINED", "LoadedModel", "ModelIdentity", "UntrainedModelError", "load_model"]

#: Version and weights hash recorded for a model without trained weights.
UNTRAINED = "untrained"


class UntrainedModelError(CloudLULCError):
    """A variant has no trained weights and untrained weights were not asked for."""


@dataclass(frozen=True)
class ModelIdentity:
    """What produced a map, for provenance tags and export manifests.

    Attributes:
        name: Model variant name.
        version: Package version that wrote the weights (or ``untrained``).
        sha256: SHA-256 of the weights file (or ``untrained``).
        tile: Tile side the model runs at (0: not fixed, torch).
        s1_radiometry: S1 radiometry the model was trained on (its card's contract).
        s1_geocoding: How its training S1 was geocoded (``RD_DEM`` or ``GCP_ELLIPSOID``).
        artifact_sha256: SHA-256 of the exported graph or engine file that runs, verified before
            use (None for torch, whose weights file is ``sha256``). An export's manifest only
            *claims* ``sha256``; this is what the bytes that made the map are.
    """

    name: str
    version: str
    sha256: str
    tile: int
    s1_radiometry: str = "sigma0"
    s1_geocoding: str = "RD_DEM"
    artifact_sha256: str | None = None

    @property
    def trained(self) -> bool:
        """False for random weights."""
        return self.sha256 != UNTRAINED


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to run and where its weights came from.

    Attributes:
        model: The network, in eval mode, on CPU.
        identity: Its provenance (``tile`` as asked).
        card: The checkpoint's model card (None for untrained weights).
        checkpoint: The checkpoint directory (None for untrained weights).
    """

    model: LULCModel
    identity: ModelIdentity
    card: ModelCard | None
    checkpoint: Path | None


def load_model(
    variant: str = "cloudlulc_edge",
    checkpoint: str | Path | None = None,
    tile: int = 512,
    allow_untrained: bool = False,
) -> LoadedModel:
    """A checkpoint, else the variant's packaged default checkpoint, else (if allowed) untrained weights.

    Args:
        variant: Registered variant (ignored when ``checkpoint`` is given: the card names it).
        checkpoint: Checkpoint directory (model card + safetensors).
        tile: Tile side recorded in the identity.
        allow_untrained: Build a variant that has no trained weights with random weights.

    Returns:
        The model and its identity.

    Raises:
        ModelCardError: A bad checkpoint (naming the file).
        UntrainedModelError: The variant has no trained weights and ``allow_untrained`` is False.
        CloudLULCError: An unknown variant.
    """
    from cloudlulc_edge.weights import default_checkpoint

    path = Path(checkpoint) if checkpoint is not None else default_checkpoint(variant)
    if path is not None:
        model, card = load_checkpoint(path)
        return LoadedModel(model, ModelIdentity(card.variant, card.package_version, card.weights_sha256, tile,
                                                 card.contract.s1_radiometry, card.contract.s1_geocoding), card,
                           path)  # fmt: skip
    if variant not in list_models():
        raise CloudLULCError(f"unknown variant {variant!r}; one of {', '.join(list_models())}")
    if not allow_untrained:
        raise UntrainedModelError(
            f"variant {variant!r} has no trained weights (only 'cloudlulc_edge' ships a checkpoint); pass a "
            "checkpoint, or --allow-untrained to map with random weights (the maps are then tagged untrained)"
        )
    return LoadedModel(create_model(variant).eval(), ModelIdentity(variant, UNTRAINED, UNTRAINED, tile), None, None)
