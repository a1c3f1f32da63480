"""Inference backends: one interface, ``predict(batch) -> probabilities``, and the factory that opens one.

The pipeline is backend-agnostic: it hands a `cloudlulc_edge.tiling.TileBatch` of normalised tiles
to `Backend.predict` and gets softmax probabilities back. `TorchBackend` runs a PyTorch model on
CPU or CUDA; `OnnxRuntimeBackend` and `TensorRTBackend` run exported graphs and engines;
`open_backend` builds the one a `BackendSpec` names. Each backend module imports its runtime
(torch, onnxruntime, tensorrt) itself, so importing this package imports none of them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloudlulc_edge.backends.base import Backend, softmax
    from cloudlulc_edge.backends.factory import BACKEND_KINDS, BackendKind, BackendSpec, open_backend
    from cloudlulc_edge.backends.torch_backend import TorchBackend

__all__ = ["BACKEND_KINDS", "Backend", "BackendKind", "BackendSpec", "TorchBackend", "open_backend", "softmax"]

_WHERE = {
    "Backend": "base",
    "softmax": "base",
    "BACKEND_KINDS": "factory",
    "BackendKind": "factory",
    "BackendSpec": "factory",
    "open_backend": "factory",
    "TorchBackend": "torch_backend",
}


def __getattr__(name: str) -> Any:
    """Imports a public name's module on first use."""
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
