"""Model cards: what a checkpoint is, what it expects as input, and what it was trained on.

A card is saved beside the weights as ``model_card.json``. At inference the normalisation,
band order and classes come from the card, never from command-line defaults (`model.md` §10).
`ModelCard.from_dict` validates the structure; `check_against` compares a card with the package
contract and a model configuration. ``architecture`` names the model family
(`cloudlulc_edge.models.architectures`); cards without it are CloudLULC-Net.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from cloudlulc_edge.contract import DEFAULT_CONTRACT, S1_RADIOMETRIES, InputContract
from cloudlulc_edge.errors import ModelCardError
from cloudlulc_edge.models.architectures import ARCHITECTURES, Architecture
from cloudlulc_edge.models.base import ModelConfig
from cloudlulc_edge.version import __version__

__all__ = ["CARD_FORMAT_VERSION", "MODEL_DESCRIPTION", "ModelCard"]

CARD_FORMAT_VERSION = 1
DEFAULT_ARCHITECTURE = "cloudlulc_net"
MODEL_DESCRIPTION = ARCHITECTURES[DEFAULT_ARCHITECTURE].description


@dataclass(frozen=True)
class ModelCard:
    """Metadata saved with every checkpoint.

    Attributes:
        variant: Registered variant name (``cloudlulc_net``, ``cloudlulc_edge``, ``unet_s2``, ...).
        config: The full model configuration (the architecture's configuration type).
        contract: Input/output contract (bands, normalisation, classes, S1 coefficient, tile size).
        weights_sha256: SHA-256 of the safetensors file the card describes.
        package_version: cloudlulc-edge version that wrote the card.
        description: What the model is (for CloudLULC-Net: that it is a reconstruction; baselines say they are not the paper's).
        training: Free-form record of the training data and labels (empty if untrained).
        format_version: Card schema version.
        architecture: Model family (key of `ARCHITECTURES`).
    """

    variant: str
    config: ModelConfig
    contract: InputContract
    weights_sha256: str
    package_version: str = __version__
    description: str = MODEL_DESCRIPTION
    training: dict[str, Any] = field(default_factory=dict)
    format_version: int = CARD_FORMAT_VERSION
    architecture: str = DEFAULT_ARCHITECTURE

    def to_dict(self) -> dict[str, Any]:
        """Returns the JSON-serialisable card."""
        return {
            "format_version": self.format_version,
            "architecture": self.architecture,
            "variant": self.variant,
            "description": self.description,
            "package_version": self.package_version,
            "weights_sha256": self.weights_sha256,
            "config": self.config.to_dict(),
            "contract": self.contract.to_dict(),
            "training": self.training,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str | Path | None = None) -> ModelCard:
        """Parses and validates a card.

        Args:
            data: Parsed JSON.
            path: Card file, for error messages.

        Raises:
            ModelCardError: A field is missing, has the wrong type, or holds an invalid value.
        """
        if not isinstance(data, Mapping):
            raise ModelCardError(f"a model card must be a JSON object, got {type(data).__name__}", path)
        required = {
            "format_version": int,
            "variant": str,
            "weights_sha256": str,
            "package_version": str,
            "config": dict,
            "contract": dict,
        }
        for key, kind in required.items():
            if key not in data:
                raise ModelCardError(f"model card lacks the required field {key!r}", path)
            if not isinstance(data[key], kind):
                raise ModelCardError(f"model card field {key!r} must be {kind.__name__}", path)
        if data["format_version"] != CARD_FORMAT_VERSION:
            raise ModelCardError(
                f"model card format {data['format_version']} is not supported (this version reads "
                f"format {CARD_FORMAT_VERSION})",
                path,
            )
        sha = data["weights_sha256"]
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise ModelCardError("weights_sha256 must be 64 lowercase hex digits", path)
        architecture = _architecture(data.get("architecture", DEFAULT_ARCHITECTURE), path)
        config_fields = _upgrade_config(architecture, data["config"])
        _check_config_types(config_fields, architecture, path)
        try:
            config = architecture.config_type(**config_fields)
        except (TypeError, ValueError, ZeroDivisionError) as exc:
            raise ModelCardError(f"invalid model configuration in card: {exc}", path) from exc
        try:
            contract = InputContract.from_dict(data["contract"])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelCardError(f"invalid input contract in card: {exc!r}", path) from exc
        training = data.get("training", {})
        if not isinstance(training, dict):
            raise ModelCardError("model card field 'training' must be an object", path)
        return cls(
            variant=data["variant"],
            config=config,
            contract=contract,
            weights_sha256=sha,
            package_version=data["package_version"],
            description=str(data.get("description", MODEL_DESCRIPTION)),
            training=training,
            format_version=data["format_version"],
            architecture=architecture.name,
        )

    def check_against(self, package: InputContract = DEFAULT_CONTRACT, path: str | Path | None = None) -> None:
        """Checks the card is usable with this package and self-consistent.

        Args:
            package: The contract the package's readers produce.
            path: Card file, for error messages.

        Raises:
            ModelCardError: Band order, SAR channels, classes or the S2/S1 normalisation differ
                from what the package produces, or disagree with the card's own model configuration.
        """
        c, cfg = self.contract, self.config
        mismatches = []
        if c.s2_bands != package.s2_bands:
            mismatches.append(f"S2 bands {list(c.s2_bands)} (package reads {list(package.s2_bands)})")
        if c.s1_polarisations != package.s1_polarisations:
            mismatches.append(
                f"S1 channels {list(c.s1_polarisations)} (package reads {list(package.s1_polarisations)})"
            )
        if c.s1_radiometry not in S1_RADIOMETRIES:
            mismatches.append(f"S1 radiometry {c.s1_radiometry!r} (package produces {' or '.join(S1_RADIOMETRIES)})")
        if c.classes != package.classes:
            mismatches.append(f"classes {list(c.classes)} (package maps {list(package.classes)})")
        if len(c.s2_bands) != cfg.s2_channels:
            mismatches.append(f"{len(c.s2_bands)} S2 bands but the model takes {cfg.s2_channels}")
        if len(c.s1_polarisations) != cfg.s1_channels:
            mismatches.append(f"{len(c.s1_polarisations)} S1 channels but the model takes {cfg.s1_channels}")
        if len(c.classes) != cfg.num_classes:
            mismatches.append(f"{len(c.classes)} classes but the model predicts {cfg.num_classes}")
        if c.tile_size % cfg.input_multiple:
            mismatches.append(f"tile size {c.tile_size} is not a multiple of {cfg.input_multiple}")
        for name, card_norm, package_norm in (("S2", c.s2, package.s2), ("S1", c.s1, package.s1)):
            if _plain(card_norm) != _plain(package_norm):  # the readers apply only the package's normalisation
                mismatches.append(f"{name} normalisation {_plain(card_norm)} (the readers produce "
                                  f"{_plain(package_norm)}; a model trained otherwise would see other inputs)")  # fmt: skip
        if mismatches:
            raise ModelCardError("model card does not match: " + "; ".join(mismatches), path)


def _plain(value: object) -> Any:
    """A dataclass as JSON values (tuples and lists compare equal)."""
    return json.loads(json.dumps(dataclasses.asdict(value)))  # type: ignore[call-overload]


def _architecture(name: object, path: str | Path | None) -> Architecture:
    if not isinstance(name, str) or name not in ARCHITECTURES:
        raise ModelCardError(f"model card names an unknown architecture {name!r}; this version builds "
                             f"{', '.join(ARCHITECTURES)}", path)  # fmt: skip
    return ARCHITECTURES[name]


def _upgrade_config(architecture: Architecture, config: Mapping[str, Any]) -> dict[str, Any]:
    """Configuration fields of an older card in today's names.

    CloudLULC-Net cards written before the spectral term had three forms carry a boolean
    ``spectral_linear``: ``true`` is today's ``spectral = "linear"``, ``false`` ``"circular"``.
    """
    fields_now = dict(config)
    if architecture.name == "cloudlulc_net" and "spectral_linear" in fields_now and "spectral" not in fields_now:
        linear = fields_now.pop("spectral_linear")
        fields_now["spectral"] = "linear" if linear is True else "circular" if linear is False else linear
    return fields_now


def _check_config_types(config: Mapping[str, Any], architecture: Architecture, path: str | Path | None) -> None:
    """Every known configuration field must have its default's JSON type and lie in its bounds (the schema)."""
    defaults = architecture.config_type()
    for f in fields(architecture.config_type):
        if f.name not in config:
            continue
        value, expected = config[f.name], type(getattr(defaults, f.name))
        if expected is bool:
            ok = isinstance(value, bool)
        elif expected is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif expected is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, expected)
        if not ok:
            raise ModelCardError(f"model config field {f.name!r} must be {expected.__name__}, got {value!r}", path)
        bounds = architecture.bounds.get(f.name)
        if bounds is not None and not (math.isfinite(value) and bounds[0] <= value <= bounds[1]):
            raise ModelCardError(f"model config field {f.name!r} = {value!r} is outside {list(bounds)}; a card "
                                 "may not ask for an arbitrarily large model", path)  # fmt: skip
