"""The one dispatch point between model code and kernel implementations.

Each fused op has a ``reference`` implementation (`reference.py`) and may have a ``triton`` one,
registered by its kernel module with `register_implementation`. The mode decides which runs:

* ``auto`` (default): Triton when one is registered, Triton is importable and the first tensor
  argument is on CUDA; the reference otherwise.
* ``triton``: always Triton; an error if there is none for the op.
* ``reference`` (or ``ref``): always the reference, e.g. for export and debugging.

The mode comes from `set_kernels` / `use_kernels` if called, else from the environment variable
``CLOUDLULC_KERNELS``. This mirrors timm's flag + env var + fallback (``timm/layers/config.py``).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

import torch

__all__ = [
    "KERNELS_ENV",
    "KernelMode",
    "available_implementations",
    "get_kernel_mode",
    "register_implementation",
    "register_triton",
    "resolve",
    "set_kernels",
    "triton_importable",
    "use_kernels",
]

KernelMode = Literal["auto", "triton", "reference"]
KERNELS_ENV = "CLOUDLULC_KERNELS"
_ALIASES: dict[str, KernelMode] = {"auto": "auto", "triton": "triton", "reference": "reference", "ref": "reference"}

_override: KernelMode | None = None
_IMPLS: dict[str, dict[str, Callable[..., Any]]] = {}


def _parse_mode(value: str, source: str) -> KernelMode:
    try:
        return _ALIASES[value.strip().lower()]
    except KeyError:
        raise ValueError(f"{source}={value!r} is not a kernel mode; use one of auto, triton, reference") from None


def get_kernel_mode() -> KernelMode:
    """Returns the active mode: the `set_kernels` override, else ``$CLOUDLULC_KERNELS``, else ``auto``.

    Raises:
        ValueError: The environment variable holds an unknown mode.
    """
    if _override is not None:
        return _override
    return _parse_mode(os.environ.get(KERNELS_ENV, "auto"), KERNELS_ENV)


def set_kernels(mode: str | None) -> None:
    """Sets the process-wide mode; ``None`` returns control to the environment variable.

    Args:
        mode: ``auto``, ``triton``, ``reference``/``ref`` or None.
    """
    global _override
    _override = None if mode is None else _parse_mode(mode, "set_kernels")


@contextmanager
def use_kernels(mode: str) -> Iterator[None]:
    """Context manager form of `set_kernels`, restoring the previous override on exit."""
    global _override
    previous = _override
    set_kernels(mode)
    try:
        yield
    finally:
        _override = previous


def triton_importable() -> bool:
    """True when the ``triton`` package can be imported (without importing it)."""
    return importlib.util.find_spec("triton") is not None


def register_implementation(op: str, backend: str, fn: Callable[..., Any]) -> None:
    """Registers an implementation of a fused op.

    Args:
        op: Op name, e.g. ``"norm_gate"``.
        backend: ``"reference"`` or ``"triton"``.
        fn: Callable with the reference signature.
    """
    if backend not in ("reference", "triton"):
        raise ValueError(f"unknown backend {backend!r} for op {op!r}")
    _IMPLS.setdefault(op, {})[backend] = fn


def register_triton(op: str, module: str, attr: str) -> None:
    """Registers a Triton implementation that is imported on its first call.

    Nothing is registered when Triton is not importable, so `available_implementations` tells
    the truth and the ``triton`` mode fails with a clear message.

    Args:
        op: Op name, e.g. ``"norm_gate"``.
        module: Module holding the launcher, e.g. ``"cloudlulc_edge.kernels.jit.norm_gate"``.
        attr: Launcher name in ``module``.
    """
    if not triton_importable():
        return

    def launch(*args: Any) -> Any:
        return getattr(importlib.import_module(module), attr)(*args)

    launch.__qualname__ = f"{module}.{attr}"
    register_implementation(op, "triton", launch)


def available_implementations() -> dict[str, list[str]]:
    """Returns ``{op: [backends]}`` for every registered op."""
    return {op: sorted(impls) for op, impls in sorted(_IMPLS.items())}


def resolve(op: str, first: torch.Tensor) -> Callable[..., Any]:
    """Picks the implementation of ``op`` for a call whose first tensor argument is ``first``.

    Args:
        op: Registered op name.
        first: The op's first tensor argument (its device decides under ``auto``).

    Returns:
        The callable to run.

    Raises:
        KeyError: ``op`` is not registered.
        RuntimeError: Mode ``triton`` was forced but no usable Triton implementation exists.
    """
    impls = _IMPLS[op]
    mode = get_kernel_mode()
    if mode == "reference":
        return impls["reference"]
    triton_fn = impls.get("triton")
    if mode == "triton":
        if triton_fn is None or not triton_importable():
            raise RuntimeError(
                f"{KERNELS_ENV}=triton but no Triton implementation of {op!r} is available "
                f"(registered: {sorted(impls)}; triton importable: {triton_importable()}); "
                "install the 'kernels' extra or use CLOUDLULC_KERNELS=reference"
            )
        return triton_fn
    if triton_fn is not None and first.is_cuda and triton_importable():
        return triton_fn
    return impls["reference"]
