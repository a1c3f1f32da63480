"""TensorRT backend: a keyed engine from `cloudlulc_edge.export.engine_builder`, run with torch CUDA memory.

The engine is loaded through `engine_builder.load_engine`, which refuses a plan built for another
system. Buffers are torch CUDA tensors (no pycuda); inference is ``execute_async_v3`` on the
current torch stream with the batch shape set per call, inside the engine's profile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cloudlulc_edge.backends.base import softmax
from cloudlulc_edge.errors import ExportError
from cloudlulc_edge.models.loading import ModelIdentity
from cloudlulc_edge.tiling import TileBatch

__all__ = ["TensorRTBackend"]


class TensorRTBackend:
    """Runs a TensorRT engine on tile batches.

    Args:
        engine_path: ``…/model.engine`` with its ``key.json``.
        identity: Provenance of the model.
        onnx_sha256: Expected ONNX hash from the export manifest (None: not checked).
        profile: Optimisation profile index to use.

    Raises:
        ExportError: No CUDA, TensorRT missing, or an unloadable engine.
        EngineCompatibilityError: The engine was built for another system.
    """

    def __init__(
        self, engine_path: str | Path, identity: ModelIdentity, onnx_sha256: str | None = None, profile: int = 0
    ) -> None:
        import torch

        from cloudlulc_edge.export.engine_builder import load_engine

        if not torch.cuda.is_available():
            raise ExportError("the TensorRT backend needs a CUDA GPU", Path(engine_path))
        self.engine, self.key = load_engine(engine_path, onnx_sha256)
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.current_stream()
        if profile:
            self.context.set_optimization_profile_async(profile, self.stream.cuda_stream)
        self.identity = identity
        self.runtime = f"tensorrt {Path(engine_path).name}"
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.output_name = "logits"
        if self.output_name not in names:
            raise ExportError(f"engine tensors are {names}; no 'logits' output", Path(engine_path))
        self.num_classes = int(self.engine.get_tensor_shape(self.output_name)[1])
        self.tile = int(self.engine.get_tensor_shape("s2")[-1])
        self._torch = torch

    def logits(self, inputs: dict[str, npt.NDArray[np.float32]]) -> Any:
        """Runs the engine; returns a (B, K, t, t) float32 CUDA tensor of logits."""
        torch = self._torch
        device_inputs = {
            k: torch.from_numpy(np.ascontiguousarray(v)).cuda(non_blocking=True) for k, v in inputs.items()
        }
        batch = next(iter(device_inputs.values())).shape[0]
        for name, tensor in device_inputs.items():
            self.context.set_input_shape(name, tuple(tensor.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
        out = torch.empty((batch, self.num_classes, self.tile, self.tile), device="cuda", dtype=torch.float32)
        self.context.set_tensor_address(self.output_name, out.data_ptr())
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        return out

    def predict(self, batch: TileBatch) -> npt.NDArray[np.float32]:
        """Returns (B, K, t, t) float32 softmax probabilities."""
        logits = self.logits(batch.model_inputs())
        return softmax(logits.cpu().numpy())
