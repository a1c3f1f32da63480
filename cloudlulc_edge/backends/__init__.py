"""Inference backends: one interface, ``predict(batch) -> probabilities``.

The pipeline is backend-agnostic: it hands a `TileBatch` of normalised tiles to
`Backend.predict` and gets softmax probabilities back. `TorchBackend` runs a PyTorch model on
CPU or CUDA; ONNX Runtime and TensorRT backends implement the same protocol.
"""

from __future__ import annotations

from cloudlulc_edge.backends.base import Backend, ModelIdentity, TileBatch
from cloudlulc_edge.backends.torch_backend import TorchBackend

__all__ = ["Backend", "ModelIdentity", "TileBatch", "TorchBackend"]
