"""Model registry: ``@register_model`` entrypoints, `create_model` and `list_models` (timm style)."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any, TypeVar

from cloudlulc_edge.models.base import LULCModel

__all__ = ["create_model", "is_model", "list_models", "register_model"]

_ModelFn = TypeVar("_ModelFn", bound=Callable[..., LULCModel])
_REGISTRY: dict[str, Callable[..., LULCModel]] = {}


def register_model(fn: _ModelFn) -> _ModelFn:
    """Registers a model entrypoint under its function name.

    Raises:
        ValueError: The name is already registered.
    """
    name = fn.__name__
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = fn
    return fn


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
        **overrides: Constructor options overriding the variant's defaults.

    Returns:
        The model, in training mode, on CPU, float32.

    Raises:
        KeyError: Unknown name (the message lists the registered ones).
        TypeError: Unknown option.
    """
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; registered models: {list_models()}")
    return _REGISTRY[name](**overrides)
