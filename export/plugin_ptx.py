"""Ahead-of-time PTX of the fused-op plugins, one build per plugin node signature and GPU target.

TensorRT's AOT Quickly Deployable Plugins launch PTX with the kernel arguments in the order
*inputs, extra scalars, outputs* and take only integer scalars. Our forward kernels already
list their input pointers before their output pointers; every scalar (C, HW, α, ε) and every
absent optional pointer is specialised into the PTX as a constant, so a build takes exactly the
node's tensors and no extra arguments. The tile is static, so C, H, W are known per node; only the
batch is symbolic and sets the grid's y dimension: grid = (⌈HW / BLOCK_P⌉, B), block =
32·num_warps threads.

Builds run on any machine with Triton (no GPU): `write_plugin_ptx` reads the ``plugin`` ONNX,
compiles every distinct node signature for each target, and writes ``index.json`` plus one
``.ptx`` file per build. The engine builder on the target needs TensorRT, not Triton.
"""

from __future__ import annotations

import importlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cloudlulc_edge.errors import ExportError
from cloudlulc_edge.export.plugin_ops import PLUGIN_NAMESPACE, PLUGIN_OPS
from cloudlulc_edge.files import atomic_write, sha256_file

__all__ = [
    "INDEX_FILE",
    "PluginBuild",
    "PluginKernel",
    "compile_plugin",
    "load_plugin_index",
    "plugin_builds",
    "write_plugin_ptx",
]

INDEX_FILE = "index.json"
_ONNX_DTYPES = {1: "fp32", 10: "fp16", 16: "bf16"}


@dataclass(frozen=True)
class PluginBuild:
    """What a PTX build is specialised on: one plugin node signature.

    Attributes:
        plugin: Plugin name (`plugin_ops.PLUGIN_OPS`).
        dtype: Tensor type (``fp32``, ``fp16``, ``bf16``).
        channels: C of the first input.
        height: H of the first input.
        width: W of the first input.
        attrs: Float attributes as ``(name, value)``, values rounded to float32 precision.
    """

    plugin: str
    dtype: str
    channels: int
    height: int
    width: int
    attrs: tuple[tuple[str, float], ...] = ()

    def key(self) -> str:
        """Stable text key, e.g. ``norm_gate/fp16/C16/H128/W128/eps=1e-05``."""
        attrs = "/".join(f"{k}={v:.8g}" for k, v in self.attrs)
        return "/".join(
            filter(None, (self.plugin, self.dtype, f"C{self.channels}", f"H{self.height}", f"W{self.width}", attrs))
        )


@dataclass(frozen=True)
class PluginKernel:
    """One compiled build, as the TensorRT plugin launches it.

    Attributes:
        build: The signature.
        arch: Target (``sm_87``…).
        kernel_name: PTX entry name.
        ptx_file: File name of the PTX (beside the index).
        ptx_sha256: Its hash.
        num_warps: Warps per program (block = 32·num_warps threads).
        shared_bytes: Dynamic shared memory per program.
        programs_per_image: grid x.
    """

    build: PluginBuild
    arch: str
    kernel_name: str
    ptx_file: str
    ptx_sha256: str
    num_warps: int
    shared_bytes: int
    programs_per_image: int


def _shape(values: dict[str, Any], name: str, node: str) -> tuple[str, tuple[int, ...]]:
    value = values.get(name)
    if value is None:
        raise ExportError(f"plugin node {node}: no shape recorded for input {name!r}")
    ttype = value.type.tensor_type
    dims = tuple(d.dim_value if not d.dim_param else -1 for d in ttype.shape.dim)
    return _ONNX_DTYPES.get(ttype.elem_type, f"onnx{ttype.elem_type}"), dims


def plugin_builds(model: Any) -> list[PluginBuild]:
    """The distinct plugin node signatures of a ``plugin`` ONNX model.

    Args:
        model: ``onnx.ModelProto`` with shapes in ``value_info`` (as the dynamo exporter writes).

    Returns:
        Builds in first-seen order.

    Raises:
        ExportError: A node with an unknown plugin name, or a non-static C/H/W.
    """
    import numpy as np
    import onnx

    values = {v.name: v for v in (*model.graph.input, *model.graph.value_info, *model.graph.output)}
    builds: dict[str, PluginBuild] = {}
    for node in model.graph.node:
        if node.domain != PLUGIN_NAMESPACE:
            continue
        op = PLUGIN_OPS.get(node.op_type)
        if op is None:
            raise ExportError(f"node {node.name}: unknown plugin {node.op_type!r}")
        dtype, dims = _shape(values, node.input[0], node.name)
        if len(dims) != 4 or min(dims[1:]) <= 0:
            raise ExportError(f"plugin node {node.name} needs a static (B, C, H, W) input, got {dims}")
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        floats = tuple((k, float(np.float32(attrs[k]))) for k in op.float_attrs)
        build = PluginBuild(node.op_type, dtype, dims[1], dims[2], dims[3], floats)
        builds.setdefault(build.key(), build)
    return list(builds.values())


def compile_plugin(build: PluginBuild, arch: Any) -> tuple[PluginKernel, str]:
    """Compiles one build for one target (no GPU needed).

    Args:
        build: Node signature.
        arch: `cloudlulc_edge.kernels.aot.GpuArch`.

    Returns:
        ``(kernel record with an empty hash and file, PTX text)``.

    Raises:
        ExportError: The kernel would need Triton's global scratch memory, which TensorRT does not
            provide to AOT plugins.
    """
    import triton.language as tl

    from cloudlulc_edge.kernels.aot import compile_for_target
    from cloudlulc_edge.kernels.jit._common import tile_settings

    op = PLUGIN_OPS[build.plugin]
    module, kernel = op.kernel.split(".")
    fn = getattr(importlib.import_module(f"cloudlulc_edge.kernels.jit.{module}"), kernel)
    hw = build.height * build.width
    tile = tile_settings(build.channels, hw, kernel, False)
    constants: dict[str, Any] = {
        **dict(op.flags),
        **dict(build.attrs),
        **{name: None for name in op.absent},
        "C": build.channels,
        "HW": hw,
        "ACC": tl.float32,
        "BLOCK_C": tile.block_c,
        "BLOCK_P": tile.block_p,
    }
    # Everything not constant is a tensor pointer, in input-then-output order.
    signature = {name: "constexpr" if name in constants else f"*{build.dtype}" for name in fn.arg_names}
    pointers = [name for name in fn.arg_names if name not in constants]
    if len(pointers) != len(op.inputs) + len(op.outputs):
        raise ExportError(
            f"{build.plugin}: kernel pointers {pointers} do not match plugin I/O {op.inputs + op.outputs}"
        )
    compiled, _ = compile_for_target(fn, signature, constants, tile.num_warps, arch)
    if int(getattr(compiled.metadata, "global_scratch_size", 0) or 0) > 0:
        raise ExportError(
            f"{build.plugin} needs Triton global scratch memory, which TensorRT AOT plugins do not provide"
        )
    record = PluginKernel(
        build=build,
        arch=arch.name,
        kernel_name=str(compiled.metadata.name),
        ptx_file="",
        ptx_sha256="",
        num_warps=int(compiled.metadata.num_warps),
        shared_bytes=int(compiled.metadata.shared),
        programs_per_image=math.ceil(hw / tile.block_p),
    )
    return record, str(compiled.asm["ptx"])


def write_plugin_ptx(onnx_path: str | Path, out_dir: str | Path, archs: tuple[Any, ...]) -> Path:
    """Compiles every plugin build of a ``plugin`` ONNX for ``archs`` and writes PTX + index.

    Args:
        onnx_path: The ``plugin`` ONNX.
        out_dir: Folder for ``index.json`` and the ``.ptx`` files (created).
        archs: `GpuArch` targets (e.g. `cloudlulc_edge.kernels.aot.known_targets()`).

    Returns:
        Path of ``index.json``.
    """
    import onnx

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    builds = plugin_builds(onnx.load(str(onnx_path), load_external_data=False))
    if not builds:
        raise ExportError(f"no {PLUGIN_NAMESPACE} plugin nodes (export with --flavour plugin)", Path(onnx_path))
    entries = []
    for build in builds:
        for arch in archs:
            record, ptx = compile_plugin(build, arch)
            name = f"{build.key().replace('/', '_')}_{arch.name}.ptx"
            _write_text(out / name, ptx)
            entries.append({**asdict(record), "ptx_file": name, "ptx_sha256": sha256_file(out / name)})
    index = {"namespace": PLUGIN_NAMESPACE, "onnx_sha256": sha256_file(Path(onnx_path)), "kernels": entries}
    return atomic_write(out / INDEX_FILE, lambda tmp: tmp.write_text(json.dumps(index, indent=1) + "\n"))


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def load_plugin_index(directory: str | Path) -> dict[tuple[str, str], tuple[PluginKernel, str]]:
    """Reads an index written by `write_plugin_ptx`, verifying every PTX hash.

    Args:
        directory: Folder holding ``index.json``.

    Returns:
        ``{(build key, arch): (kernel record, PTX text)}``.

    Raises:
        ExportError: Missing index or PTX, or a hash mismatch (tampered or truncated file).
    """
    folder = Path(directory)
    path = folder / INDEX_FILE
    if not path.is_file():
        raise ExportError("no plugin PTX index (run the export with --flavour plugin)", path)
    table = {}
    for entry in json.loads(path.read_text())["kernels"]:
        build = PluginBuild(**{**entry["build"], "attrs": tuple(tuple(a) for a in entry["build"]["attrs"])})
        record = PluginKernel(**{**entry, "build": build})
        ptx_path = folder / record.ptx_file
        if not ptx_path.is_file() or sha256_file(ptx_path) != record.ptx_sha256:
            raise ExportError(f"PTX of {build.key()} for {record.arch} is missing or does not match its hash", ptx_path)
        table[(build.key(), record.arch)] = (record, ptx_path.read_text())
    return table
