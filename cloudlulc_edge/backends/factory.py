"""The backend factory: a `BackendSpec` (what runs, where) → an open `Backend`.

``auto`` (the default) is resolved by `choose_backend` into the fastest backend this machine can
run for the model, and says why: a TensorRT engine of the model built on this machine; else
onnxruntime (CUDA provider on a GPU, CPU provider otherwise) with the model's FP16 graph, or its
FP32 graph where there is no FP16 one (`export.graph_cache`: carried by the checkpoint, or built
once into the cache); else torch (Triton kernels on CUDA where triton is installed). Untrained
weights always run in torch. The order comes from measurements (docs/performance.md, "Which
backend auto picks").

The torch backend takes its model from `cloudlulc_edge.models.loading.load_model` (a checkpoint,
the variant's packaged weights, or untrained weights when asked for); the onnxruntime and
TensorRT backends take an export (`cloudlulc_edge.export.bundle`): their identity comes from the
export's verified manifest, never from the command line.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cloudlulc_edge.backends.base import Backend
from cloudlulc_edge.errors import CloudLULCError, ExportError, OptionsError
from cloudlulc_edge.models.loading import LoadedModel, ModelIdentity, load_model

__all__ = [
    "BACKEND_KINDS",
    "BackendKind",
    "BackendSpec",
    "ResolvedBackend",
    "check_spec",
    "choose_backend",
    "export_identity",
    "open_backend",
    "open_resolved",
]

BackendKind = Literal["auto", "torch", "onnxruntime", "tensorrt"]
BACKEND_KINDS: tuple[BackendKind, ...] = ("auto", "torch", "onnxruntime", "tensorrt")
_ENGINE_SUFFIXES = (".engine", ".plan")
#: How far above an engine file its export directory may lie (``EXPORT/engines/<key>/model.engine``).
_ENGINE_DEPTH = 3


@dataclass(frozen=True)
class BackendSpec:
    """Which model runs, where.

    Attributes:
        kind: ``auto`` (`choose_backend`), ``torch``, ``onnxruntime`` or ``tensorrt``.
        variant: Registered variant (without a checkpoint: its packaged default checkpoint).
        checkpoint: Checkpoint directory (torch, auto).
        model: ONNX file or export directory (onnxruntime), engine file (tensorrt); with ``auto``
            it decides the backend (an engine file → tensorrt, else onnxruntime).
        precision: Graph of an export directory to run (onnxruntime): ``auto`` (FP16 where the
            export has it, else FP32), fp32, fp16 or int8.
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        tile: Tile side (torch; the graph or engine fixes it for the others).
        allow_untrained: Run a variant without trained weights (torch), tagged ``untrained``.
    """

    kind: BackendKind = "auto"
    variant: str = "cloudlulc_edge"
    checkpoint: Path | None = None
    model: Path | None = None
    precision: str = "auto"
    device: str = "cpu"
    tile: int = 512
    allow_untrained: bool = False


#: Module each backend needs and the install line that provides it.
_BACKEND_NEEDS = {
    "onnxruntime": ("onnxruntime", "pip install onnxruntime (or onnxruntime-gpu on a CUDA machine)"),
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
    if spec.kind not in ("torch", "auto") and importlib.util.find_spec(module) is None:
        raise OptionsError(f"--backend {spec.kind} needs the {module} package, which is not installed: {install}")
    if spec.kind == "tensorrt" and spec.device == "cpu":
        raise OptionsError("--backend tensorrt runs on a CUDA GPU; pass --device cuda, or use onnxruntime on the CPU")
    if spec.device == "cpu":
        return
    if spec.kind == "auto":
        return  # auto runs what this machine has; `choose_backend` checks the device it picks for
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
    """The identity of the graph or engine at ``path``: what its export's manifest records, and its own hash.

    The export directory is ``path`` itself, or the nearest folder above it that holds a
    ``manifest.json`` (an engine sits in ``EXPORT/engines/<key>/``). Its manifest is read with
    `export.bundle.read_manifest`, which verifies every artifact's SHA-256. A graph file in the
    export folder must be one of those artifacts: a file dropped beside a manifest that does not
    list it would run unverified under the manifest's identity. ``artifact_sha256`` is the hash of
    the file that runs: the manifest's verified one for a graph, the one ``engine.json`` records
    (checked when the engine loads) for an engine, the file's own for a graph without a manifest.
    What the manifest says of the weights (``sha256``) is a claim that only a signature could
    prove; the map records both.

    Raises:
        ExportError: A manifest that is malformed, whose artifacts were altered, or that does not
            list the graph at ``path``.
    """
    from cloudlulc_edge.export.bundle import MANIFEST_FILE, listed_sha256, read_manifest
    from cloudlulc_edge.export.engine_builder import ENGINE_MANIFEST
    from cloudlulc_edge.files import sha256_file

    start = path if path.is_dir() else path.parent
    artifact = None if path.is_dir() else _artifact_sha256(path, ENGINE_MANIFEST)
    for folder in [start, *list(start.parents)[:_ENGINE_DEPTH]]:
        if (folder / MANIFEST_FILE).is_file():
            manifest = read_manifest(folder)
            if not path.is_dir() and path.parent == folder:
                artifact = listed_sha256(manifest, folder, path)
                if artifact is None:
                    raise ExportError(f"{path.name} is not listed in this export's {MANIFEST_FILE}: its bytes cannot "
                                      "be verified; export again or remove it", path)  # fmt: skip
            model = manifest.get("model", {})
            if not isinstance(model, dict):
                model = {}
            return ModelIdentity(str(model.get("variant")), str(model.get("version")), str(model.get("weights_sha256")),
                                 tile, str(model.get("s1_radiometry", "sigma0")),
                                 str(model.get("s1_geocoding", "RD_DEM")), artifact)  # fmt: skip
    return ModelIdentity("unknown", "unknown", "unknown", tile,
                         artifact_sha256=artifact or (sha256_file(path) if path.is_file() else None))  # fmt: skip


def _artifact_sha256(path: Path, engine_manifest: str) -> str | None:
    """The SHA-256 ``engine.json`` beside an engine records (the engine's loader verifies it), or None."""
    record = path.parent / engine_manifest
    if not record.is_file():
        return None
    try:
        sha = json.loads(record.read_text(encoding="utf-8")).get("sha256")
    except (UnicodeDecodeError, ValueError, AttributeError):
        return None  # the loader refuses it with the reason
    return sha if isinstance(sha, str) else None


@dataclass(frozen=True)
class ResolvedBackend:
    """What ``auto`` picked.

    Attributes:
        spec: The concrete spec (kind torch, onnxruntime or tensorrt).
        reason: Why, in one line (for ``info``, the run report and the log).
        loaded: The model, when choosing had to load it (reused by `open_backend`).
    """

    spec: BackendSpec
    reason: str
    loaded: LoadedModel | None = dataclasses.field(default=None, compare=False, repr=False)


def _check_tile(loaded: LoadedModel, tile: int) -> None:
    multiple = loaded.model.requires_divisible_input_shape
    if tile % multiple:
        below, above = tile // multiple * multiple, -(-tile // multiple) * multiple
        raise OptionsError(f"--tile {tile} is not a multiple of {multiple} (the {loaded.identity.name} "
                           f"model's grid); use {below} or {above}")  # fmt: skip


def _auto_precision(export_dir: Path, asked: str) -> str:
    """The graph to run from an export directory: the one asked for, or with ``auto`` the fastest present."""
    from cloudlulc_edge.export.graph_cache import AUTO_PRECISIONS, graph_precisions

    if asked != "auto":
        return asked
    present = graph_precisions(export_dir)
    return next((p for p in AUTO_PRECISIONS if p in present), "fp32")


def _engine_here(export_dir: Path) -> Path | None:
    """An engine under ``export_dir/engines/`` that was built for this machine, if TensorRT is installed."""
    if importlib.util.find_spec("tensorrt") is None or not (export_dir / "engines").is_dir():
        return None
    from cloudlulc_edge.export.engine_builder import check_engine_here

    for engine in sorted((export_dir / "engines").glob("*/model.engine")):
        try:
            check_engine_here(engine)
        except CloudLULCError:
            continue
        return engine
    return None


def choose_backend(spec: BackendSpec, build: bool = True) -> ResolvedBackend:
    """Resolves ``--backend auto`` into the backend that runs the model fastest here (module docstring).

    Args:
        spec: Any spec; a concrete kind is returned as it is.
        build: Build the model's ONNX graphs into the cache when it has none (``info`` only looks:
            the spec then names the cache entry still to be built).

    Returns:
        The concrete spec and why it was picked.

    Raises:
        OptionsError: A bad device or a tile the model cannot take.
        CloudLULCError: A bad checkpoint or unknown variant, an untrained variant without
            ``allow_untrained``, or a graph export that fails.
    """
    if spec.kind != "auto":
        return ResolvedBackend(spec, f"--backend {spec.kind}")
    check_spec(spec)

    def pick(kind: BackendKind, reason: str, loaded: LoadedModel | None = None, **changes: object) -> ResolvedBackend:
        return ResolvedBackend(dataclasses.replace(spec, kind=kind, **changes), f"auto: {reason}", loaded)  # type: ignore[arg-type]

    if spec.model is not None:
        if spec.model.suffix in _ENGINE_SUFFIXES:
            return pick("tensorrt", f"--model {spec.model.name} is a TensorRT engine")
        return pick("onnxruntime", f"--model {spec.model.name} is an ONNX graph or export")
    loaded = load_model(spec.variant, spec.checkpoint, spec.tile, spec.allow_untrained)
    _check_tile(loaded, spec.tile)
    on_gpu = spec.device != "cpu"
    torch_reason = "Triton kernels where triton is installed" if on_gpu else "CPU"
    if not loaded.identity.trained:
        return pick("torch", f"untrained weights run in PyTorch ({torch_reason}); they are never exported", loaded)
    if importlib.util.find_spec("onnxruntime") is None:
        return pick("torch", f"onnxruntime is not installed; PyTorch ({torch_reason})", loaded)
    import onnxruntime as ort

    if on_gpu and "CUDAExecutionProvider" not in ort.get_available_providers():
        return pick("torch", f"this onnxruntime has no CUDA provider; PyTorch on {spec.device} ({torch_reason})",
                    loaded)  # fmt: skip
    from cloudlulc_edge.export.graph_cache import cache_root, cached_graph_key, can_build_graphs, graph_dir

    folder = graph_dir(loaded, spec.tile, build)
    if folder is None and not can_build_graphs():
        return pick("torch", f"no ONNX graph of this model at {spec.tile}² tiles and this install cannot export one "
                    f"(needs onnx and onnxscript); PyTorch ({torch_reason})", loaded)  # fmt: skip
    if folder is None:  # only looking: the entry `open_backend` will build
        entry = cache_root() / "onnx" / cached_graph_key(loaded.identity.sha256, spec.tile)
        return pick("onnxruntime", f"its ONNX graphs at {spec.tile}² tiles are built on first use into {entry}",
                    loaded, model=entry)  # fmt: skip
    engine = _engine_here(folder) if on_gpu else None
    if engine is not None:
        return pick("tensorrt", f"TensorRT engine {engine} was built on this machine for this model", loaded,
                    model=engine)  # fmt: skip
    precision = _auto_precision(folder, spec.precision)
    provider = f"CUDA provider on {spec.device}" if on_gpu else "CPU provider"
    where = "carried by the checkpoint" if loaded.checkpoint is not None and folder.parent == loaded.checkpoint else \
        "cached"  # fmt: skip
    return pick("onnxruntime", f"onnxruntime ({provider}) with the {precision.upper()} graph {where} in {folder}",
                loaded, model=folder, precision=precision)  # fmt: skip


def open_backend(spec: BackendSpec) -> Backend:
    """Builds the backend a spec names (``auto``: the one `choose_backend` picks).

    Raises:
        OptionsError: The spec cannot run here (`check_spec`) or the tile does not fit the model.
        CloudLULCError: A missing or bad checkpoint, ONNX file, export or engine (the message
            names the file), an unknown variant, or an untrained variant without
            ``allow_untrained`` (`UntrainedModelError`).
    """
    return open_resolved(choose_backend(spec))


def open_resolved(resolved: ResolvedBackend) -> Backend:
    """Builds the backend of a concrete spec (`choose_backend`'s result), reusing the model it loaded.

    Raises:
        See `open_backend`.
    """
    spec = resolved.spec
    check_spec(spec)
    if spec.kind == "torch":
        from cloudlulc_edge.backends.torch_backend import TorchBackend

        loaded = resolved.loaded or load_model(spec.variant, spec.checkpoint, spec.tile, spec.allow_untrained)
        _check_tile(loaded, spec.tile)
        return TorchBackend(loaded.model, loaded.identity, spec.device)
    if spec.model is None:
        raise CloudLULCError(f"the {spec.kind} backend needs --model (an ONNX file / export directory, or an engine)")
    if spec.kind == "onnxruntime":
        from cloudlulc_edge.backends.onnxruntime_backend import OnnxRuntimeBackend

        precision = _auto_precision(spec.model, spec.precision) if spec.model.is_dir() else spec.precision
        path = spec.model / f"model_{precision}.onnx" if spec.model.is_dir() else spec.model
        if not path.is_file():
            raise ExportError("ONNX model not found", path)
        identity = export_identity(path, 0)  # verifies the bytes before onnxruntime parses them
        ort_backend = OnnxRuntimeBackend(path, identity, spec.device)
        ort_backend.identity = dataclasses.replace(identity, tile=ort_backend.tile)  # the graph fixes the tile
        return ort_backend
    from cloudlulc_edge.backends.tensorrt_backend import TensorRTBackend

    identity = export_identity(spec.model, 0)
    trt_backend = TensorRTBackend(spec.model, identity)
    trt_backend.identity = dataclasses.replace(identity, tile=trt_backend.tile)
    return trt_backend
