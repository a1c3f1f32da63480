"""ONNX Runtime backend: an exported ``standard`` graph (FP32, FP16 or INT8) on CPU or CUDA.

The session takes the four graph inputs (`TileBatch.model_inputs`) and returns logits; probabilities
are a float32 softmax on the host. The tile size comes from the graph, so a batch of another tile
size is refused with a message instead of failing inside the runtime.

On the CPU provider a batch runs one tile per session call (`CPU_TILES_PER_RUN`): onnxruntime's
memory arena grows with the largest call, and measured on the packaged FP16 graph at 512² (2-core
AMD EPYC, 2026-12-01) one tile per call peaks at 0.58 GiB against 1.07 GiB for two and 2.25 for
four, for 20 % more time per tile in isolation (0.180 vs 0.148 s) and 10 % more over a 10980²
scene. That is what keeps the default under its 1.5 GB scene target (docs/performance.md).
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

__all__ = ["CPU_TILES_PER_RUN", "OnnxRuntimeBackend", "execution_providers"]

#: Tiles per session call on the CPU provider (module docstring).
CPU_TILES_PER_RUN = 1


def execution_providers(device: str) -> list[Any]:
    """ONNX Runtime providers for ``cpu``, ``cuda`` or ``cuda:N`` (CPU stays as the fallback).

    Raises:
        ExportError: CUDA asked for but this onnxruntime build has no CUDA provider.
    """
    import onnxruntime as ort

    if device == "cpu":
        return ["CPUExecutionProvider"]
    kind, _, number = device.partition(":")
    if kind != "cuda" or not (number == "" or number.isdigit()):
        raise ExportError(f"unknown onnxruntime device {device!r}; use cpu, cuda or cuda:N")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise ExportError(
            "this onnxruntime has no CUDAExecutionProvider; install onnxruntime-gpu instead of onnxruntime"
        )
    return [("CUDAExecutionProvider", {"device_id": int(number or 0)}), "CPUExecutionProvider"]


class OnnxRuntimeBackend:
    """Runs an exported ONNX graph with ONNX Runtime.

    Args:
        onnx_path: A ``standard`` graph from `cloudlulc_edge.export` (any precision).
        identity: Provenance of the model.
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        threads: Intra-op threads (0: onnxruntime's default).

    Raises:
        ExportError: Missing file, no CUDA provider, or a graph without the expected inputs.
    """

    def __init__(self, onnx_path: str | Path, identity: ModelIdentity, device: str = "cpu", threads: int = 0) -> None:
        import onnxruntime as ort

        path = Path(onnx_path)
        if not path.is_file():
            raise ExportError("ONNX model not found", path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: its buffer-reuse warnings flood a run's log otherwise
        try:
            self.session = ort.InferenceSession(str(path), options, providers=execution_providers(device))
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ExportError(f"onnxruntime cannot load the model: {exc}", path) from exc
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        if set(inputs) != {"s2", "s1", "s2_valid", "s1_valid"}:
            raise ExportError(f"graph inputs are {sorted(inputs)}, expected s2, s1, s2_valid, s1_valid", path)
        self.tile = int(inputs["s2"][-1])
        self.num_classes = int(self.session.get_outputs()[0].shape[1])
        self.identity = identity
        self.path = path
        self.runtime = f"onnxruntime {path.name}"
        self.tiles_per_run = CPU_TILES_PER_RUN if device == "cpu" else None

    def logits(self, inputs: dict[str, npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
        """Runs the graph on prepared inputs, `tiles_per_run` tiles per call; returns (B, K, t, t) float32 logits."""
        total = len(inputs["s2"])
        step = self.tiles_per_run or total
        chunks = [
            self.session.run(None, {k: v[i : i + step] for k, v in inputs.items()})[0] for i in range(0, total, step)
        ]
        return np.asarray(chunks[0] if len(chunks) == 1 else np.concatenate(chunks), dtype=np.float32)

    def predict(self, batch: TileBatch) -> npt.NDArray[np.float32]:
        """Returns (B, K, t, t) float32 softmax probabilities.

        Raises:
            ValueError: The batch's tile size differs from the graph's.
        """
        if batch.s2.shape[-1] != self.tile or batch.s2.shape[-2] != self.tile:
            raise ValueError(f"{self.path.name} was exported for {self.tile}² tiles, got {batch.s2.shape[-2:]}")
        return softmax(self.logits(batch.model_inputs()))
