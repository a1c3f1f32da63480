"""The fused ops as TensorRT Quickly Deployable Plugins with ahead-of-time PTX (TensorRT ≥ 10.8).

`register_plugins` registers one QDP per `plugin_ops.PLUGIN_OPS` entry under the ``cloudlulc``
namespace: a shape/type function (``@trtp.register``) and an AOT implementation
(``@trtp.aot_impl``) that returns the PTX built by `plugin_ptx` for the node's signature and the
build GPU. The ONNX parser binds each ``cloudlulc`` node to its plugin by ``op_type`` and
``plugin_namespace``. Nothing here runs Python at inference time: the engine embeds the PTX.

QDP register/impl functions must carry type-annotated signatures; ours are generated from the
op table, so `_signature` builds them explicitly.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cloudlulc_edge.errors import ExportError
from cloudlulc_edge.export.engine_key import version_tuple
from cloudlulc_edge.export.plugin_ops import PLUGIN_NAMESPACE, PLUGIN_OPS, PluginOp
from cloudlulc_edge.export.plugin_ptx import PluginBuild, PluginKernel, load_plugin_index

__all__ = ["MIN_AOT_PLUGIN_VERSION", "aot_plugins_supported", "capability_arch", "register_plugins"]

#: AOT QDPs appeared in TensorRT 10.8 (not on JetPack 6's 10.3: use the standard graph there).
MIN_AOT_PLUGIN_VERSION = (10, 8)


def aot_plugins_supported(trt_version: str) -> bool:
    """Whether a TensorRT version has ahead-of-time Quickly Deployable Plugins."""
    return version_tuple(trt_version) >= MIN_AOT_PLUGIN_VERSION


def _signature(params: list[tuple[str, Any]], returns: Any) -> inspect.Signature:
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    return inspect.Signature([inspect.Parameter(n, kind, annotation=a) for n, a in params], return_annotation=returns)


def _dtype_name(trt: Any, dtype: Any) -> str:
    names = {trt.float32: "fp32", trt.float16: "fp16", trt.bfloat16: "bf16"}
    if dtype not in names:
        raise ExportError(f"cloudlulc plugins run fp32/fp16/bf16 tensors, got {dtype}")
    return names[dtype]


def _constant(expr: Any, what: str) -> int:
    if expr.is_fake or not expr.is_constant:
        raise ExportError(f"plugin needs a static {what}; export the ONNX with a fixed tile")
    return int(expr.constant_value())


def _describe(trtp: Any, op: PluginOp) -> Callable[..., Any]:
    """Shape/type function: outputs like the first input, except ρ (B, 1, H, W) and CHOI α like the logits."""

    def describe(*args: Any) -> Any:
        inputs = args[: len(op.inputs)]
        outs = []
        for name in op.outputs:
            if name == "rho":
                b, _, h, w = (inputs[0].shape_expr[i] for i in range(4))
                outs.append(trtp.from_shape_expr((b, 1, h, w), dtype=inputs[0].dtype))
            elif name == "alpha":
                outs.append(inputs[1].like())
            else:
                outs.append(inputs[0].like())
        return tuple(outs)

    params = [(n, trtp.TensorDesc) for n in op.inputs] + [(a, float) for a in op.float_attrs]
    returns = tuple.__class_getitem__((trtp.TensorDesc,) * len(op.outputs))  # Tuple[TensorDesc, …] of the arity
    describe.__signature__ = _signature(params, returns)  # type: ignore[attr-defined]
    describe.__name__ = f"{op.name}_describe"
    return describe


def _aot(
    trt: Any, trtp: Any, op: PluginOp, arch: str, kernels: dict[tuple[str, str], tuple[PluginKernel, str]]
) -> Callable[..., Any]:
    """AOT implementation: the shipped PTX of this node's signature on ``arch``."""

    def aot_impl(*args: Any) -> Any:
        inputs = args[: len(op.inputs)]
        attrs = args[len(op.inputs) : len(op.inputs) + len(op.float_attrs)]
        first = inputs[0]
        build = PluginBuild(
            op.name,
            _dtype_name(trt, first.dtype),
            _constant(first.shape_expr[1], "channel count"),
            _constant(first.shape_expr[2], "height"),
            _constant(first.shape_expr[3], "width"),
            tuple((k, float(_as_f32(v))) for k, v in zip(op.float_attrs, attrs, strict=True)),
        )
        found = kernels.get((build.key(), arch))
        if found is None:
            raise ExportError(f"no PTX for plugin build {build.key()} on {arch}; rerun the export's plugin PTX step")
        record, ptx = found
        launch = trtp.KernelLaunchParams()
        launch.grid_x = record.programs_per_image
        launch.grid_y = first.shape_expr[0]  # one row of programs per image; B is the dynamic dimension
        launch.block_x = record.num_warps * 32
        launch.shared_mem = record.shared_bytes
        return record.kernel_name, ptx, launch, trtp.SymIntExprs(0)

    params = [(n, trtp.TensorDesc) for n in op.inputs] + [(a, float) for a in op.float_attrs]
    params += [("outputs", inspect.Parameter.empty), ("tactic", inspect.Parameter.empty)]  # annotations optional
    aot_impl.__signature__ = _signature(params, inspect.Signature.empty)  # type: ignore[attr-defined]
    aot_impl.__name__ = f"{op.name}_aot_impl"
    return aot_impl


def _as_f32(value: float) -> float:
    import numpy as np

    return float(np.float32(value))


#: The (PTX folder, arch) this process registered the plugins for (QDPs register once per process).
_registered: tuple[str, str] | None = None


def register_plugins(ptx_dir: str, arch: str) -> tuple[str, ...]:
    """Registers every cloudlulc QDP with the PTX in ``ptx_dir`` for GPU target ``arch``.

    Args:
        ptx_dir: Folder written by `plugin_ptx.write_plugin_ptx`.
        arch: Target of the build GPU (``sm_87``, ``sm_90a``, ``sm_110a``).

    Returns:
        Registered plugin ids (``cloudlulc::…``).

    Raises:
        ExportError: TensorRT < 10.8 (no AOT plugins), or a bad PTX folder.
    """
    global _registered
    if _registered == (ptx_dir, arch):
        return tuple(f"{PLUGIN_NAMESPACE}::{name}" for name in PLUGIN_OPS)
    if _registered is not None:
        raise ExportError(f"plugins are already registered for {_registered}; build other targets in a new process")
    import tensorrt as trt
    import tensorrt.plugin as trtp

    if not aot_plugins_supported(trt.__version__):
        raise ExportError(
            f"TensorRT {trt.__version__} has no AOT plugins (needs ≥ 10.8); build the 'standard' ONNX instead"
        )
    kernels = load_plugin_index(Path(ptx_dir))
    if not any(key_arch == arch for _, key_arch in kernels):
        raise ExportError(f"plugin PTX folder has no builds for {arch}", Path(ptx_dir))
    ids = []
    for op in PLUGIN_OPS.values():
        plugin_id = f"{PLUGIN_NAMESPACE}::{op.name}"
        trtp.register(plugin_id)(_describe(trtp, op))
        trtp.aot_impl(plugin_id)(_aot(trt, trtp, op, arch, kernels))
        ids.append(plugin_id)
    _registered = (ptx_dir, arch)
    return tuple(ids)


def capability_arch(compute_capability: str) -> str:
    """PTX target of a compute capability: ``9.0`` → ``sm_90a``, ``8.7`` → ``sm_87``, ``11.0`` → ``sm_110a``."""
    major, minor = (int(p) for p in compute_capability.split("."))
    cc = major * 10 + minor
    return f"sm_{cc}a" if cc >= 90 else f"sm_{cc}"
