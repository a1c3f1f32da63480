"""The backend factory: a `BackendSpec` (what runs, where) → an open `Backend`.

The torch backend takes its model from `cloudlulc_edge.models.loading.load_model` (a checkpoint,
the variant's packaged weights, or untrained weights when asked for); the onnxruntime and
TensorRT backends take an export (`cloudlulc_edge.export.bundle`): their identity comes from the
export's verified manifest, never from the command line.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cloudlulc_edge.backends.base import Backend
from cloudlulc_edge.errors import CloudLULCError, OptionsError
from cloudlulc_edge.models.loading import ModelIdentity, load_model

__all__ = ["BACKEND_KINDS", "BackendKind", "BackendSpec", "check_spec", "export_identity", "open_backend"]

BackendKind = Literal["torch", "onnxruntime", "tensorrt"]
BACKEND_KINDS: tuple[BackendKind, ...] = ("torch", "onnxruntime", "tensorrt")
#: How far above an engine file its export directory may lie (``EXPORT/engines/<key>/model.engine``).
_ENGINE_DEPTH = 3


@dataclass(frozen=True)
class BackendSpec:
    """Which model runs, where.

    Attributes:
        kind: ``torch``, ``onnxruntime`` or ``tensorrt``.
        variant: Registered variant (torch without a checkpoint: its packaged default checkpoint).
        checkpoint: Checkpoint directory (torch).
        model: ONNX file or export directory (onnxruntime), engine file (tensorrt).
        precision: Graph of an export directory to run (onnxruntime): fp32, fp16 or int8.
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        tile: Tile side (torch; the graph or engine fixes it for the others).
        allow_untrained: Run a variant without trained weights (torch), tagged ``untrained``.
    """

    kind: BackendKind = "torch"
    variant: str = "cloudlulc_edge"
    checkpoint: Path | None = None
    model: Path | None = None
    precision: str = "fp32"
    device: str = "cpu"
    tile: int = 512
    allow_untrained: bool = False


#: Module each backend needs and the install line that provides it.
_BACKEND_NEEDS = {
    "onnxruntime": ("onnxruntime", "pip install 'cloudlulc-edge[export]' (or onnxruntime-gpu on a CUDA machine)"),
    "tensorrt": ("tensorrt", "pip install 'cloudlulc-edge[tensorrt]' (on Jetson TensorRT comes with JetPack)"),
}
_DEVICE = re.compile(r"cpu|cuda(:\d+)?")


def check_spec(spec: BackendSpec) -> None:
    """Refuses a spec that cannot run on this machine, before any model is loaded or scene read.

    Checks the backend name, the device syntax, that the backend's package is installed, and that a
    CUDA device asked for exists (torch's view of the machine; onnxruntime's CUDA provider).

    Raises:
        OptionsError: What is wrong, in one line that says what to do instead.
    """
    if spec.kind not in BACKEND_KINDS:
        raise OptionsError(f"unknown backend {spec.kind!r}; use {', '.join(BACKEND_KINDS)}")
    if not _DEVICE.fullmatch(spec.device):
        raise OptionsError(f"--device must be cpu, cuda or cuda:N, got {spec.device!r}")
    module, install = _BACKEND_NEEDS.get(spec.kind, ("torch", ""))
    if spec.kind != "torch" and importlib.util.find_spec(module) is None:
        raise OptionsError(f"--backend {spec.kind} needs the {module} package, which is not installed: {install}")
    if spec.kind == "tensorrt" and spec.device == "cpu":
        raise OptionsError("--backend tensorrt runs on a CUDA GPU; pass --device cuda, or use onnxruntime on the CPU")
    if spec.device == "cpu":
        return
    if spec.kind == "onnxruntime":
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise OptionsError(f"--device {spec.device}: this onnxruntime has no CUDA provider; install "
                               "onnxruntime-gpu instead of onnxruntime, or use --device cpu")  # fmt: skip
        return
    import torch

    if not torch.cuda.is_available():
        build = f"a CUDA {torch.version.cuda} build" if torch.version.cuda else "a CPU-only build"
        raise OptionsError(f"--device {spec.device}: torch {torch.__version__} ({build}) sees no CUDA GPU; use "
                           "--device cpu")  # fmt: skip
    index = int(spec.device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise OptionsError(f"--device {spec.device}: only {torch.cuda.device_count()} CUDA device(s) visible "
                           f"(cuda:0…cuda:{torch.cuda.device_count() - 1})")  # fmt: skip


def export_identity(path: Path, tile: int) -> ModelIdentity:
    """The identity an export's manifest records for a graph or engine at ``path``.

    The export directory is ``path`` itself, or the nearest folder above it that holds a
    ``manifest.json`` (an engine sits in ``EXPORT/engines/<key>/``). Its manifest is read with
    `export.bundle.read_manifest`, which verifies every artifact's SHA-256. Without a manifest the
    identity is ``unknown``.

    Raises:
        ExportError: A manifest that is malformed or whose artifacts were altered.
    """
    from cloudlulc_edge.export.bundle import MANIFEST_FILE, read_manifest

    start = path if path.is_dir() else path.parent
    for folder in [start, *list(start.parents)[:_ENGINE_DEPTH]]:
        if (folder / MANIFEST_FILE).is_file():
            model = read_manifest(folder).get("model", {})
            if not isinstance(model, dict):
                model = {}
            return ModelIdentity(str(model.get("variant")), str(model.get("version")), str(model.get("weights_sha256")),
                                 tile, str(model.get("s1_radiometry", "sigma0")),
                                 str(model.get("s1_geocoding", "RD_DEM")))  # fmt: skip
    return ModelIdentity("unknown", "unknown", "unknown", tile)


def open_backend(spec: BackendSpec) -> Backend:
    """Builds the backend a spec names.

    Raises:
        OptionsError: The spec cannot run here (`check_spec`) or the tile does not fit the model.
        CloudLULCError: A missing or bad checkpoint, ONNX file, export or engine (the message
            names the file), an unknown variant, or an untrained variant without
            ``allow_untrained`` (`UntrainedModelError`).
    """
    check_spec(spec)
    if spec.kind == "torch":
        from cloudlulc_edge.backends.torch_backend import TorchBackend

        loaded = load_model(spec.variant, spec.checkpoint, spec.tile, spec.allow_untrained)
        multiple = loaded.model.requires_divisible_input_shape
        if spec.tile % multiple:
            below, above = spec.tile // multiple * multiple, -(-spec.tile // multiple) * multiple
            raise OptionsError(f"--tile {spec.tile} is not a multiple of {multiple} (the {loaded.identity.name} "
                               f"model's grid); use {below} or {above}")  # fmt: skip
        return TorchBackend(loaded.model, loaded.identity, spec.device)
    if spec.model is None:
        raise CloudLULCError(f"the {spec.kind} backend needs --model (an ONNX file / export directory, or an engine)")
    if spec.kind == "onnxruntime":
        from cloudlulc_edge.backends.onnxruntime_backend import OnnxRuntimeBackend

        path = spec.model / f"model_{spec.precision}.onnx" if spec.model.is_dir() else spec.model
        ort_backend = OnnxRuntimeBackend(path, export_identity(spec.model, 0), spec.device)
        ort_backend.identity = export_identity(spec.model, ort_backend.tile)
        return ort_backend
    from cloudlulc_edge.backends.tensorrt_backend import TensorRTBackend

    trt_backend = TensorRTBackend(spec.model, export_identity(spec.model, 0))
    trt_backend.identity = export_identity(spec.model, trt_backend.tile)
    return trt_backend
