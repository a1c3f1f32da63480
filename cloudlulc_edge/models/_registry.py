"""Model registry: named variants → configurations, `create_model` and `list_models` (timm style).

A variant is a name and a configuration (`variants.VARIANT_CONFIGS`, the one table of variants);
the configuration's type names its architecture family (`architectures.ARCHITECTURES`), which
builds it. `register_variant` adds a variant (the package registers its own at import).
"""

from __future__ import annotations

import fnmatch
from typing import Any

from cloudlulc_edge.models.architectures import architecture_for_config
from cloudlulc_edge.models.base import LULCModel, ModelConfig

__all__ = ["create_model", "is_model", "list_models", "register_variant"]

_REGISTRY: dict[str, ModelConfig] = {}


def register_variant(name: str, config: ModelConfig) -> None:
    """Registers a variant under ``name``.

    Raises:
        ValueError: The name is already registered.
        KeyError: No architecture family is configured by ``config``'s type.
    """
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    architecture_for_config(config)  # fail now, not at the first create_model
    _REGISTRY[name] = config


def list_models(pattern: str = "*") -> list[str]:
    """Returns the sorted registered names matching a shell-style ``pattern``."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def is_model(name: str) -> bool:
    """True when ``name`` is registered."""
    return name in _REGISTRY


def create_model(name: str, **overrides: Any) -> LULCModel:
    """Builds a registered model variant.

    Args:
        name: Registered name (see `list_models`).
        **overrides: Configuration fields overriding the variant's defaults.

    Returns:
        The model, in training mode, on CPU, float32, with ``variant`` set to ``name``.

    Raises:
        KeyError: Unknown name (the message lists the registered ones).
        TypeError: Unknown option.
    """
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; registered models: {list_models()}")
    config = _REGISTRY[name].override(**overrides)
    model = architecture_for_config(config).model_type(config)
    model.variant = name  # recorded in the model card
    return model
