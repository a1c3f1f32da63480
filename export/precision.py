"""FP16 and INT8 ONNX graphs with NVIDIA ModelOpt: precision lives in the graph, not the builder.

TensorRT 11 removed the FP16/INT8 builder flags and implicit calibration; a strongly typed
network takes its precision from the ONNX (`edge-export.md` §2, §4). So:

* **FP16**: ModelOpt AutoCast (``convert_to_mixed_precision``) with I/O kept FP32; nodes whose
  values exceed the FP16 range on the calibration data stay FP32 (``data_max``).
* **INT8**: ModelOpt ONNX PTQ, explicit Q/DQ nodes, entropy or max calibration on real tiles
  (`calibration`), calibrated on the CPU execution provider. No ``IInt8Calibrator`` anywhere.

Sensitive regions stay out of INT8 (and out of FP16 where noted) — `SensitiveRegions`: the first
convolution of each modality stem (raw reflectance and backscatter ranges), the classifier head,
and the SHOI spectral term (DFT matrices / ``DFT``, module ``….spectral``). They are found in the
exported graph through the module path the dynamo exporter writes on every node
(``pkg.torch.onnx.name_scopes``).
"""

from __future__ import annotations

import ast
import contextlib
import logging
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from cloudlulc_edge.errors import ExportError
from cloudlulc_edge.files import atomic_write

__all__ = [
    "CalibrationMethod",
    "SensitiveRegions",
    "convert_fp16",
    "fp16_range_exclusions",
    "matching_nodes",
    "modelopt_logs",
    "module_path",
    "quantize_int8",
]

CalibrationMethod = Literal["entropy", "max"]
log = logging.getLogger(__name__)


@contextlib.contextmanager
def modelopt_logs() -> Iterator[None]:
    """Keeps ModelOpt to warnings and errors unless this module's logger is enabled for DEBUG.

    ModelOpt configures its loggers at import (INFO, its own stdout handler) and logs every node it
    converts: ≈ 150 lines per graph, in the middle of a user's ``map`` when the graph cache builds
    an FP16 graph. ``cloudlulc-edge export onnx --verbose`` enables DEBUG here and shows them.
    """
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    names = [n for n in list(logging.root.manager.loggerDict) if n == "modelopt" or n.startswith("modelopt.")]
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in names]
    for logger, _ in saved:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in saved:
            logger.setLevel(level)


_SCOPES_KEY = "pkg.torch.onnx.name_scopes"
_EXPORT_ROOT = "model."  # `onnx_export.DeployModel` wraps the network as ``model``


@dataclass(frozen=True)
class SensitiveRegions:
    """Which graph nodes keep high precision.

    Attributes:
        modules: Regexes matched (``re.fullmatch``) against a node's module path, e.g.
            ``decoder.head``.
            ``decoder.head``, or the SHOI spectral term ``….spectral`` (DFT matrices or ``DFT``).
        fp16_modules: Module regexes also kept FP32 in the FP16 graph.
        extra_nodes: Further node names (e.g. from a ``polygraphy debug precision`` run).
    """

    modules: tuple[str, ...] = (r"(optical|sar)_encoder\.stage1\.0", r"decoder\.head", r".*\.spectral")
    fp16_modules: tuple[str, ...] = (r".*\.spectral",)
    extra_nodes: tuple[str, ...] = ()


def module_path(node: Any) -> str:
    """The module path of an exported node (``decoder.head``), or ``""`` for top-level nodes."""
    for prop in node.metadata_props:
        if prop.key == _SCOPES_KEY:
            scopes = ast.literal_eval(prop.value)
            path = str(scopes[-2]) if len(scopes) >= 2 else ""
            return path.removeprefix(_EXPORT_ROOT)
    return ""


def matching_nodes(model: Any, modules: Sequence[str]) -> list[str]:
    """Names of the nodes of an ONNX model inside the given modules.

    Args:
        model: ``onnx.ModelProto`` exported by `onnx_export.export_onnx`.
        modules: Module-path regexes (``re.fullmatch``).

    Returns:
        Node names, in graph order.
    """
    patterns = [re.compile(p) for p in modules]
    return [n.name for n in model.graph.node if any(p.fullmatch(module_path(n)) for p in patterns)]


def _quantizable_count(model: Any, names: Sequence[str]) -> int:
    kinds = {"Conv", "MatMul", "Gemm", "ConvTranspose"}
    chosen = set(names)
    return sum(1 for n in model.graph.node if n.name in chosen and n.op_type in kinds)


def convert_fp16(
    src: str | Path,
    dst: str | Path,
    regions: SensitiveRegions = SensitiveRegions(),
    calibration: dict[str, npt.NDArray[np.float32]] | None = None,
    data_max: float = 512.0,
) -> Path:
    """Writes an FP16 graph (AutoCast; FP32 I/O) of a ``standard`` ONNX model.

    Nodes whose values exceed ``data_max`` on the calibration tiles stay FP32. AutoCast's own
    check marks every tensor of the graph as an output and holds them all for every tile at once:
    ≈ 2.3 GB for one 512² tile of the packaged model, 9.5 GB for two, 18.9 GB for an export's
    calibration set (2-core AMD EPYC, 2026-12-02). With calibration tiles the check therefore
    runs here (`fp16_range_exclusions`: inside the graph, one tile at a time, ≈ 0.33 GB per 512²
    tile) and AutoCast gets its result as nodes to exclude; without them AutoCast checks on its
    random data.

    Args:
        src: FP32 ``standard`` ONNX.
        dst: Output path (written under a temporary name).
        regions: ``fp16_modules`` and ``extra_nodes`` stay FP32.
        calibration: ONNX input name → (N, C, t, t) calibration tiles for the range check
            (AutoCast's random data if None).
        data_max: Nodes with values above this magnitude stay FP32.

    Returns:
        ``dst``.

    Raises:
        ExportError: ModelOpt is missing or the conversion fails.
    """
    import onnx

    try:
        from modelopt.onnx.autocast import convert_to_mixed_precision
    except ImportError as exc:
        raise ExportError(f"FP16 conversion needs the export extra (nvidia-modelopt): {exc}") from exc
    src, dst = Path(src), Path(dst)
    keep = matching_nodes(onnx.load(str(src), load_external_data=False), regions.fp16_modules)
    keep += list(regions.extra_nodes)
    if calibration is not None:
        keep += [n for n in fp16_range_exclusions(src, calibration, data_max) if n not in keep]
    try:
        with modelopt_logs():
            converted = convert_to_mixed_precision(
                onnx_path=str(src),
                low_precision_type="fp16",
                nodes_to_exclude=keep or None,
                keep_io_types=True,
                data_max=np.inf if calibration is not None else data_max,  # inf: its reference pass is skipped
                providers=["cpu"],
            )
    except Exception as exc:
        raise ExportError(f"AutoCast FP16 conversion failed: {exc}", src) from exc
    atomic_write(dst, lambda tmp: onnx.save(converted, str(tmp)))
    return dst


#: ONNX element types whose range FP16 must hold.
_FLOAT_TYPES = (1, 10, 11, 16)  # FLOAT, FLOAT16, DOUBLE, BFLOAT16


def fp16_range_exclusions(
    src: str | Path, calibration: dict[str, npt.NDArray[np.float32]], data_max: float = 512.0
) -> list[str]:
    """Nodes with an input or output above ``data_max`` in magnitude on any calibration tile.

    AutoCast's ``data_max`` rule, evaluated over every tile: each floating-point tensor of the
    graph gets an ``Abs → ReduceMax`` pair whose scalar is a graph output, and with
    onnxruntime's priority-based order each tensor is freed once reduced, so one 512² tile of the
    packaged model peaks at ≈ 0.33 GB; the largest value per tensor is kept over the tiles, which
    run one at a time.

    Args:
        src: FP32 ``standard`` ONNX.
        calibration: ONNX input name → (N, C, t, t) tiles.
        data_max: The FP16 range threshold (AutoCast's ``data_max``).

    Returns:
        Node names, in graph order.
    """
    import onnx
    import onnxruntime as ort
    from onnx import helper

    model = onnx.load(str(src))
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in (*inferred.graph.value_info, *inferred.graph.output)}
    tensors: list[str] = []
    nodes = list(model.graph.node)
    del model.graph.node[:], model.graph.output[:]
    for node in nodes:  # each reduction right after its producer
        model.graph.node.append(node)
        for t in (t for t in node.output if t and types.get(t) in _FLOAT_TYPES):
            tensors.append(t)
            model.graph.node.extend([helper.make_node("Abs", [t], [f"{t}__abs"]),
                                     helper.make_node("ReduceMax", [f"{t}__abs"], [f"{t}__absmax"], keepdims=0)])  # fmt: skip
            model.graph.output.append(helper.make_tensor_value_info(f"{t}__absmax", types[t], []))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    # Priority-based order frees each tensor once reduced (one 512² tile: ≈ 0.33 GB instead of 2.2 GB).
    options.execution_order = ort.ExecutionOrder.PRIORITY_BASED
    options.enable_cpu_mem_arena = False
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    del model
    absmax: dict[str, float] = {k: float(np.max(np.abs(v))) if v.size else 0.0 for k, v in calibration.items()}
    for i in range(len(next(iter(calibration.values())))):
        values = session.run(None, {k: v[i : i + 1] for k, v in calibration.items()})
        for t, value in zip(tensors, values, strict=True):
            if not np.isnan(value):  # as AutoCast's np.max: a NaN tensor is never above data_max; ±inf always is
                absmax[t] = max(absmax.get(t, 0.0), float(value))
    return [n.name for n in nodes if any(absmax.get(t, 0.0) > data_max for t in (*n.input, *n.output) if t)]


def quantize_int8(
    src: str | Path,
    dst: str | Path,
    calibration: dict[str, npt.NDArray[np.float32]],
    method: CalibrationMethod = "entropy",
    regions: SensitiveRegions = SensitiveRegions(),
    high_precision: Literal["fp16", "fp32"] = "fp16",
) -> tuple[Path, list[str]]:
    """Writes an explicit-Q/DQ INT8 graph of a ``standard`` ONNX model (ModelOpt ONNX PTQ).

    Args:
        src: FP32 ``standard`` ONNX.
        dst: Output path (written under a temporary name).
        calibration: ONNX input name → (N, C, t, t) calibration tiles from real scenes.
        method: ``entropy`` or ``max`` calibration.
        regions: Nodes kept out of INT8.
        high_precision: Precision of the non-quantized layers (``fp16`` for engine speed).

    Returns:
        ``(dst, excluded node names)``.

    Raises:
        ExportError: ModelOpt is missing, the calibration set is empty, or quantization fails.
    """
    import onnx

    try:
        from modelopt.onnx.quantization import quantize
    except ImportError as exc:
        raise ExportError(f"INT8 quantization needs the export extra (nvidia-modelopt): {exc}") from exc
    src, dst = Path(src), Path(dst)
    if not calibration or any(len(v) == 0 for v in calibration.values()):
        raise ExportError("INT8 needs a non-empty calibration set from real scenes", src)
    if method not in ("entropy", "max"):
        raise ExportError(f"unknown calibration method {method!r}; use 'entropy' or 'max'", src)
    graph = onnx.load(str(src), load_external_data=False)
    excluded = matching_nodes(graph, regions.modules) + list(regions.extra_nodes)
    log.info("INT8: %d nodes excluded (%d of them Conv/MatMul)", len(excluded), _quantizable_count(graph, excluded))
    with tempfile.TemporaryDirectory(dir=dst.parent) as work:
        out = Path(work) / dst.name
        # ModelOpt rewrites its input file in place (shape inference, opset bump): give it a copy.
        source = Path(work) / f"source_{src.name}"
        source.write_bytes(src.read_bytes())
        try:
            with modelopt_logs():
                quantize(
                    onnx_path=str(source),
                    quantize_mode="int8",
                    calibration_data=calibration,
                    calibration_method=method,
                    calibration_eps=["cpu"],
                    nodes_to_exclude=excluded or None,
                    high_precision_dtype=high_precision,
                    output_path=str(out),
                    log_level="WARNING",
                )
        except Exception as exc:
            raise ExportError(f"ModelOpt INT8 quantization failed: {exc}", src) from exc
        if not out.is_file():
            raise ExportError("ModelOpt wrote no quantized model", out)
        atomic_write(dst, lambda tmp: tmp.write_bytes(out.read_bytes()))
    return dst, excluded
