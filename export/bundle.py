"""One export directory per model: ONNX flavours and precisions, plugin PTX, and a manifest.

``export_model`` writes (`edge-export.md` §11)::

    OUT/model_fp32.onnx          standard flavour (ORT anywhere, every TensorRT incl. JetPack 6)
    OUT/model_fp16.onnx          AutoCast FP16, FP32 I/O
    OUT/model_int8.onnx          ModelOpt Q/DQ INT8 (calibrated on real tiles)
    OUT/model_plugin_fp32.onnx   plugin flavour (TensorRT ≥ 10.8 QDPs)
    OUT/plugins/                 AOT PTX per plugin build and GPU target + index.json
    OUT/calibration.npz|.json    calibration tiles and their sources
    OUT/manifest.json            hashes, opset, precisions, calibration hash, tolerances, measured parity

and checks each graph as it goes: FP32 against PyTorch in onnxruntime CPU (max |Δ| on logits,
gated), FP16/INT8 against FP32 (max |Δ|, argmax agreement; recorded — the task-metric gate on a
trained checkpoint is ``bench/export_accuracy.py``), the plugin graph structurally (one
``cloudlulc`` node per fused-op call).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from cloudlulc_edge.contract import NUM_CLASSES
from cloudlulc_edge.errors import ExportError
from cloudlulc_edge.export.calibration import CalibrationSet
from cloudlulc_edge.export.onnx_export import DEFAULT_OPSET, export_onnx, input_shapes
from cloudlulc_edge.export.precision import CalibrationMethod, SensitiveRegions, convert_fp16, quantize_int8
from cloudlulc_edge.files import atomic_write, sha256_file
from cloudlulc_edge.models.loading import ModelIdentity
from cloudlulc_edge.models.spectral import SpectralImpl
from cloudlulc_edge.version import __version__, package_versions

__all__ = [
    "MANIFEST_FILE",
    "TOLERANCES",
    "ExportOptions",
    "ExportRequest",
    "compare_logits",
    "export_model",
    "export_request",
    "listed_sha256",
    "read_manifest",
]

log = logging.getLogger(__name__)
MANIFEST_FILE = "manifest.json"
#: Gates: FP32 on logits (tight); FP16/INT8 by argmax agreement with FP32 (task-level).
TOLERANCES: dict[str, dict[str, float]] = {
    "fp32": {"max_abs_logits": 1e-4},
    "fp16": {"argmax_agreement": 0.99},
    "int8": {"argmax_agreement": 0.97},
}


@dataclass(frozen=True)
class ExportOptions:
    """What to export.

    Attributes:
        tile: Static tile side.
        max_batch: Upper bound of the symbolic batch.
        opset: Default-domain opset.
        precisions: Subset of ``fp32``, ``fp16``, ``int8`` (``fp32`` is always written: the others derive from it).
        plugin: Also write the ``plugin`` flavour and its PTX.
        archs: PTX targets for the plugins (those the installed Triton can build).
        spectral: SHOI spectral term in the graphs (``matmul`` parses on every TensorRT).
        calibration_method: ``entropy`` or ``max``.
        regions: Nodes kept out of INT8 / FP16.
        onnx_ops: Reserved for the plugin flavour's naming (fixed to ``cloudlulc``).
    """

    tile: int = 512
    max_batch: int = 32
    opset: int = DEFAULT_OPSET
    precisions: tuple[str, ...] = ("fp32", "fp16", "int8")
    plugin: bool = True
    archs: tuple[str, ...] = ("sm_87", "sm_90a", "sm_110a")
    spectral: SpectralImpl = "matmul"
    calibration_method: CalibrationMethod = "entropy"
    regions: SensitiveRegions = field(default_factory=SensitiveRegions)


def compare_logits(reference: npt.NDArray[np.float32], other: npt.NDArray[np.float32]) -> dict[str, float]:
    """Max/mean |Δ| and argmax agreement of two (B, K, t, t) logit arrays.

    Tile by tile, in float64 per tile: whole-array float64 copies of 64 calibration tiles' logits
    held 2.4 GB of temporaries at once.
    """
    top, total, agree = 0.0, 0.0, 0
    for ref, oth in zip(reference, other, strict=True):
        diff = np.abs(ref.astype(np.float64) - oth)
        top, total = max(top, float(diff.max())), total + float(diff.sum())
        agree += int((ref.argmax(0) == oth.argmax(0)).sum())
    pixels = reference.shape[0] * reference.shape[2] * reference.shape[3]
    return {"max_abs": top, "mean_abs": total / (pixels * reference.shape[1]), "argmax_agreement": agree / pixels}


def _ort_logits(path: Path, inputs: dict[str, npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
    """The graph's (N, K, t, t) logits, one tile per call into one array (onnxruntime's arena holds one tile)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out: npt.NDArray[np.float32] | None = None
    for i in range(len(inputs["s2"])):
        logits = session.run(None, {k: v[i : i + 1] for k, v in inputs.items()})[0]
        if out is None:
            out = np.empty((len(inputs["s2"]), *logits.shape[1:]), np.float32)
        out[i] = logits[0]
    assert out is not None
    return out


def _torch_logits(model: nn.Module, inputs: dict[str, npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
    from cloudlulc_edge.kernels import use_kernels

    with torch.no_grad(), use_kernels("reference"):
        out = model(*(torch.from_numpy(inputs[k]) for k in ("s2", "s1", "s2_valid", "s1_valid")))
    return np.asarray(out.numpy(), dtype=np.float32)


def _random_inputs(batch: int, tile: int, seed: int) -> dict[str, npt.NDArray[np.float32]]:
    rng = np.random.default_rng(seed)
    out = {k: rng.random(s, dtype=np.float32) for k, s in input_shapes(batch, tile).items()}
    out["s2_valid"] = (out["s2_valid"] > 0.1).astype(np.float32)  # some nodata, as at scene edges
    out["s1_valid"] = np.ones_like(out["s1_valid"])
    return out


def _artifact(path: Path, flavour: str, precision: str, **extra: Any) -> dict[str, Any]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    ops = Counter(n.op_type for n in graph.node)
    return {
        "file": path.name,
        "flavour": flavour,
        "precision": precision,
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
        "nodes": sum(ops.values()),
        "qdq_pairs": ops.get("QuantizeLinear", 0),
        **extra,
    }


def _num_classes(model: nn.Module) -> int:
    config = getattr(model, "config", None)
    return int(getattr(config, "num_classes", NUM_CLASSES))


def export_model(
    model: nn.Module,
    identity: ModelIdentity,
    out_dir: str | Path,
    options: ExportOptions = ExportOptions(),
    calibration: CalibrationSet | None = None,
) -> dict[str, Any]:
    """Writes the export directory and its manifest; see the module docstring.

    Args:
        model: A CloudLULC-Net (not modified).
        identity: Provenance (variant, version, weights hash) recorded in the manifest.
        out_dir: Export directory (created).
        options: What to export.
        calibration: Real-scene tiles (`calibration.build_calibration_set`); required for INT8,
            used for FP16 range checks and for the FP16/INT8 parity records.

    Returns:
        The manifest.

    Raises:
        ExportError: A failed export or conversion, FP32 parity above its tolerance, INT8
            requested without calibration tiles, or the plugin flavour without triton.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    if "int8" in options.precisions and (calibration is None or len(calibration) == 0):
        raise ExportError("INT8 needs calibration tiles from real scenes (pass scenes to calibrate on)", out)
    if options.plugin and importlib.util.find_spec("triton") is None:
        raise ExportError("the plugin flavour compiles Triton PTX and needs triton: pip install "
                          "'cloudlulc-edge[kernels]', or export without it (plugin=False, --no-plugin)", out)  # fmt: skip
    fp32 = export_onnx(model, out / "model_fp32.onnx", "standard", options.tile, options.max_batch, options.opset,
                       options.spectral)  # fmt: skip
    parity = {}
    for batch in (1, 3):
        inputs = _random_inputs(batch, options.tile, seed=batch)
        parity[f"batch{batch}"] = compare_logits(_torch_logits(model, inputs), _ort_logits(fp32, inputs))
    worst = max(p["max_abs"] for p in parity.values())
    if worst > TOLERANCES["fp32"]["max_abs_logits"]:
        raise ExportError(f"FP32 ONNX differs from PyTorch by {worst:.3g} on logits (gate 1e-4)", fp32)
    artifacts = [_artifact(fp32, "standard", "fp32", parity_vs_torch=parity)]
    manifest: dict[str, Any] = {
        "format": 1,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "package_version": __version__,
        "model": {
            "variant": identity.name,
            "version": identity.version,
            "weights_sha256": identity.sha256,
            "s1_radiometry": identity.s1_radiometry,
            "s1_geocoding": identity.s1_geocoding,
        },
        "tile": options.tile,
        "max_batch": options.max_batch,
        "opset": options.opset,
        "spectral": options.spectral,
        "inputs": {k: list(v) for k, v in input_shapes(-1, options.tile).items()},
        "outputs": {"logits": [-1, _num_classes(model), options.tile, options.tile]},
        "tolerances": TOLERANCES,
        "versions": package_versions(("torch", "onnx", "onnxscript", "onnxruntime", "nvidia-modelopt", "triton")),
    }
    calib_inputs = None
    if calibration is not None and len(calibration):
        calib_path = out / "calibration.npz"
        manifest["calibration"] = {
            "file": calib_path.name,
            "sha256": calibration.save(calib_path),
            "tiles": len(calibration),
            "cloud_bins": dict(Counter(str(s.get("cloud_bin")) for s in calibration.sources)),
            "scenes": sorted({str(s.get("scene")) for s in calibration.sources}),
            "method": options.calibration_method,
        }
        calib_inputs = calibration.arrays
        fp32_calib = _ort_logits(fp32, calib_inputs)
    if "fp16" in options.precisions:
        fp16 = convert_fp16(fp32, out / "model_fp16.onnx", options.regions, calib_inputs)
        extra = {"parity_vs_fp32": compare_logits(fp32_calib, _ort_logits(fp16, calib_inputs))} if calib_inputs else {}
        artifacts.append(_artifact(fp16, "standard", "fp16", **extra))
    if "int8" in options.precisions and calib_inputs is not None:
        int8, excluded = quantize_int8(fp32, out / "model_int8.onnx", calib_inputs, options.calibration_method,
                                       options.regions)  # fmt: skip
        manifest["calibration"]["excluded_nodes"] = excluded
        artifacts.append(
            _artifact(
                int8, "standard", "int8", parity_vs_fp32=compare_logits(fp32_calib, _ort_logits(int8, calib_inputs))
            )
        )
    if options.plugin:
        manifest["plugins"] = _export_plugin(model, out, options)
        artifacts.append(_artifact(out / "model_plugin_fp32.onnx", "plugin", "fp32"))
    manifest["artifacts"] = artifacts
    atomic_write(out / MANIFEST_FILE, lambda tmp: tmp.write_text(json.dumps(manifest, indent=1) + "\n"))
    return manifest


def _export_plugin(model: nn.Module, out: Path, options: ExportOptions) -> dict[str, Any]:
    """Plugin-flavour ONNX plus PTX for the requested targets the installed Triton can build."""
    from cloudlulc_edge.export.plugin_ptx import write_plugin_ptx
    from cloudlulc_edge.kernels.aot import known_targets

    path = export_onnx(model, out / "model_plugin_fp32.onnx", "plugin", options.tile, options.max_batch, options.opset,
                       options.spectral)  # fmt: skip
    archs = tuple(a for a in known_targets() if a.name in options.archs)
    missing = sorted(set(options.archs) - {a.name for a in archs})
    if missing:
        log.warning("plugin PTX: this Triton cannot target %s; skipped", ", ".join(missing))
    index = write_plugin_ptx(path, out / "plugins", archs)
    entries = json.loads(index.read_text())["kernels"]
    return {
        "onnx": path.name,
        "index": f"plugins/{index.name}",
        "index_sha256": sha256_file(index),
        "archs": [a.name for a in archs],
        "builds": len({e["build"]["plugin"] + str(e["build"]) for e in entries}),
    }


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """Reads an export's manifest and verifies every artifact's SHA-256.

    Raises:
        ExportError: No manifest; a manifest that is not a UTF-8 JSON object with a list of
            ``{"file", "sha256"}`` artifacts; an artifact named outside the export folder; or an
            artifact missing or altered.
    """
    folder = Path(directory)
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise ExportError("no manifest.json: not an export directory", folder)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ExportError(f"manifest is not valid JSON: {exc}", path) from exc
    if not isinstance(manifest, dict):
        raise ExportError(f"manifest is a JSON {type(manifest).__name__}, not an object", path)
    artifacts = manifest.get("artifacts", [])
    if not isinstance(artifacts, list) or not all(
        isinstance(a, dict) and isinstance(a.get("file"), str) and isinstance(a.get("sha256"), str) for a in artifacts
    ):
        raise ExportError('manifest "artifacts" must be a list of {"file", "sha256"} objects', path)
    for art in artifacts:
        name = art["file"]
        if not name or Path(name).is_absolute() or ".." in Path(name).parts or "\x00" in name:
            raise ExportError(f"artifact {name!r} lies outside the export folder; refused", path)
        file = folder / name
        if not file.is_file():
            raise ExportError("artifact listed in the manifest is missing", file)
        if sha256_file(file) != art["sha256"]:
            raise ExportError("artifact does not match its manifest SHA-256 (altered or truncated)", file)
    return manifest


def listed_sha256(manifest: dict[str, Any], folder: Path, file: Path) -> str | None:
    """The SHA-256 a manifest read by `read_manifest` (so verified) lists for ``file``, or None if unlisted."""
    for art in manifest.get("artifacts", []):
        if (folder / art["file"]).resolve() == file.resolve():
            return str(art["sha256"])
    return None


@dataclass(frozen=True)
class ExportRequest:
    """What ``cloudlulc-edge export onnx`` asks for.

    Attributes:
        out_dir: Export directory (created).
        variant: Registered variant (ignored with a checkpoint).
        checkpoint: Checkpoint directory (default: the variant's packaged weights).
        options: What to export (tile, batch, precisions, plugin flavour, spectral form, calibration method).
        calibration_scenes: Folder of scenes to calibrate INT8 on (scanned and paired as ``map`` does).
        calibration_tiles: Calibration tiles to sample.
        allow_untrained: Export a variant that has no trained weights.
    """

    out_dir: Path
    variant: str = "cloudlulc_edge"
    checkpoint: Path | None = None
    options: ExportOptions = field(default_factory=ExportOptions)
    calibration_scenes: Path | None = None
    calibration_tiles: int = 64
    allow_untrained: bool = False


def export_request(request: ExportRequest) -> tuple[dict[str, Any], ModelIdentity]:
    """Loads the model, builds the calibration set from real scenes if any, and writes the export.

    INT8 without calibration scenes is refused, never silently dropped.

    Returns:
        ``(manifest, identity of the exported model)``.

    Raises:
        ExportError: INT8 asked for without calibration scenes, or a failed export.
        CloudLULCError: A bad checkpoint, an untrained variant without ``allow_untrained``, or a
            calibration folder that is not a directory.
    """
    from cloudlulc_edge.export.calibration import build_calibration_set
    from cloudlulc_edge.models.loading import load_model
    from cloudlulc_edge.pairing import plan_directory

    options = request.options
    if "int8" in options.precisions and request.calibration_scenes is None:
        raise ExportError("INT8 needs real scenes to calibrate on: pass --calibrate DIR, or leave int8 out of "
                          "--precision", request.out_dir)  # fmt: skip
    loaded = load_model(request.variant, request.checkpoint, options.tile, request.allow_untrained)
    calibration = None
    if request.calibration_scenes is not None:
        pairs = plan_directory(request.calibration_scenes).pairs
        calibration = build_calibration_set(pairs, options.tile, request.calibration_tiles)
    return export_model(loaded.model, loaded.identity, request.out_dir, options, calibration), loaded.identity
