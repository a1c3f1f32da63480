"""Inference backends: one interface, ``predict(batch) -> probabilities``.

The pipeline is backend-agnostic: it hands a `TileBatch` of normalised tiles to
`Backend.predict` and gets softmax probabilities back. `TorchBackend` runs a PyTorch model on
CPU or CUDA; `OnnxRuntimeBackend` and `TensorRTBackend` run exported graphs and engines.
"""

from __future__ import annotations

from cloudlulc_edge.backends.base import Backend, ModelIdentity, TileBatch, graph_inputs, softmax
from cloudlulc_edge.backends.torch_backend import TorchBackend

__all__ = ["Backend", "ModelIdentity", "TileBatch", "TorchBackend", "graph_inputs", "softmax"]

# OnnxRuntimeBackend (`backends.onnxruntime_backend`) and TensorRTBackend (`backends.tensorrt_backend`)
# import their optional runtimes lazily; import them from their modules.
