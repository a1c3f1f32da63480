"""Compile the Triton kernels for GPU targets on a machine without a GPU.

`triton.compile` on an `ASTSource` with an explicit `GPUTarget` runs the whole pipeline (TTIR →
TTGIR → LLVM IR → PTX → cubin through the bundled ``ptxas``) without a driver (`kernels.md` §7).
This is the compile-only test tier, the source of the resource snapshot in
``bench/results/kernels_compile.json``, and the PTX source for TensorRT AOT plugins.

Each `KernelSpec` is one representative build at the model's real channel counts, with the tile
the launcher would choose on a GPU.
"""

from __future__ import annotations

import functools
import importlib
import re
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any

from cloudlulc_edge.kernels.ops.channel_softmax_gate import KERNELS as _CHANNEL_SOFTMAX_GATE
from cloudlulc_edge.kernels.ops.norm_gate import KERNELS as _NORM_GATE
from cloudlulc_edge.kernels.ops.reliability_gate import KERNELS as _RELIABILITY_GATE
from cloudlulc_edge.kernels.specs import JIT_PACKAGE, KernelSpec

_OPS = (_RELIABILITY_GATE, _NORM_GATE, _CHANNEL_SOFTMAX_GATE)

__all__ = [
    "KERNEL_SPECS",
    "TARGETS",
    "CompiledKernel",
    "GpuArch",
    "KernelSpec",
    "compile_for_target",
    "compile_kernel",
    "known_targets",
]


@dataclass(frozen=True)
class GpuArch:
    """A CUDA compile target.

    Attributes:
        name: Display name, e.g. ``sm_90a``.
        capability: Compute capability as Triton takes it (90 compiles for ``sm_90a``).
        device: What ships it.
    """

    name: str
    capability: int
    device: str


#: sm_87 Jetson Orin, sm_90a H100/H200, sm_110a Jetson Thor (needs a ptxas that knows it).
TARGETS = (
    GpuArch("sm_87", 87, "Jetson AGX Orin"),
    GpuArch("sm_90a", 90, "H100 / H200"),
    GpuArch("sm_110a", 110, "Jetson Thor"),
)


#: The builds the compile tier checks: every op's ``KERNELS`` table (`specs`).
KERNEL_SPECS: tuple[KernelSpec, ...] = tuple(spec for op in _OPS for spec in op.builds)


@dataclass(frozen=True)
class CompiledKernel:
    """Resources of one compiled build.

    Attributes:
        kernel: Kernel name.
        flags: Constexpr flags as ``NAME=value`` text.
        dtype: Input dtype (``fp16``, ``bf16``, ``fp32``).
        target: Target name (``sm_90a``…).
        ptx_target: The ``.target`` line of the PTX.
        block_c: Channel lanes.
        block_p: Pixels per program.
        num_warps: Warps per program.
        shared_bytes: Static shared memory (Triton metadata).
        registers: Registers per thread (``cuobjdump -res-usage``), None if unavailable.
        local_bytes: Local (spill) memory per thread, None if unavailable.
        spills_in_ptx: ``ld.local``/``st.local`` present in the PTX.
        compile_s: Wall time of the compile.
        ptx: PTX text (dropped from the JSON snapshot).
    """

    kernel: str
    flags: str
    dtype: str
    target: str
    ptx_target: str
    block_c: int
    block_p: int
    num_warps: int
    shared_bytes: int
    registers: int | None
    local_bytes: int | None
    spills_in_ptx: bool
    compile_s: float
    ptx: str

    def record(self) -> dict[str, Any]:
        """Returns the JSON-friendly record (no PTX)."""
        out = asdict(self)
        out.pop("ptx")
        return out


@functools.lru_cache(maxsize=1)
def known_targets() -> tuple[GpuArch, ...]:
    """Returns the `TARGETS` the installed Triton's ``ptxas`` accepts (sm_110a needs CUDA ≥ 13).

    Triton picks the ``ptxas`` per capability (3.9 bundles 12.9 for < sm_90 and 13.x above);
    a target is known when that binary lists it under ``--gpu-name``.
    """
    try:
        from triton.backends.nvidia.compiler import get_ptxas
    except ImportError:  # older Triton: no per-arch ptxas; sm_87 and sm_90a are always known
        return tuple(arch for arch in TARGETS if arch.capability <= 90)
    known = []
    for arch in TARGETS:
        text = subprocess.run([get_ptxas(arch.capability).path, "--help"], capture_output=True, text=True, check=False)
        if f"sm_{arch.capability}" in text.stdout:
            known.append(arch)
    return tuple(known)


def _resource_usage(cubin: bytes) -> tuple[int | None, int | None]:
    """Registers and local bytes per thread from ``cuobjdump -res-usage`` (None if no tool)."""
    try:
        from triton import knobs

        tool = knobs.nvidia.cuobjdump.path
    except (ImportError, AttributeError):
        return None, None
    with tempfile.NamedTemporaryFile(suffix=".cubin") as handle:
        handle.write(cubin)
        handle.flush()
        text = subprocess.run([tool, "-res-usage", handle.name], capture_output=True, text=True, check=False).stdout
    regs, local = re.search(r"REG:(\d+)", text), re.search(r"LOCAL:(\d+)", text)
    return (int(regs.group(1)) if regs else None, int(local.group(1)) if local else None)


def compile_for_target(
    fn: Any, signature: dict[str, str], constexprs: dict[str, Any], num_warps: int, arch: GpuArch
) -> tuple[Any, float]:
    """Runs `triton.compile` for one target without a GPU.

    Args:
        fn: The ``@triton.jit`` function.
        signature: Triton type of every parameter (``*fp16``, ``i32``, ``constexpr``…).
        constexprs: Values of the ``constexpr`` parameters (any parameter may be specialised).
        num_warps: Warps per program.
        arch: Target.

    Returns:
        ``(compiled kernel, seconds)``; ``asm`` holds ``ptx`` and ``cubin``.
    """
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    start = time.perf_counter()
    compiled = triton.compile(
        ASTSource(fn=fn, signature=signature, constexprs=constexprs),
        target=GPUTarget("cuda", arch.capability, 32),
        options={"num_warps": num_warps},
    )
    return compiled, time.perf_counter() - start


def compile_kernel(spec: KernelSpec, dtype: str, arch: GpuArch) -> CompiledKernel:
    """Compiles one build for one target without a GPU.

    Args:
        spec: The build.
        dtype: Input dtype as a Triton type name: ``fp16``, ``bf16`` or ``fp32``.
        arch: Target.

    Returns:
        Its resources and PTX.

    Raises:
        triton.compiler.errors.CompilationError: The kernel does not compile for the target.
    """
    import triton.language as tl

    from cloudlulc_edge.kernels.jit._common import tile_settings

    fn = getattr(importlib.import_module(f"{JIT_PACKAGE}.{spec.module}"), spec.kernel)
    tile = tile_settings(spec.channels, spec.pixels, spec.kernel, spec.backward)
    signature: dict[str, str] = {}
    for name, param in zip(fn.arg_names, fn.params, strict=True):
        if param.is_constexpr:
            signature[name] = "constexpr"
        elif name in spec.scalars:
            signature[name] = spec.scalars[name]
        else:
            signature[name] = "*fp32" if name in spec.fp32_pointers else f"*{dtype}"
    constexprs: dict[str, Any] = {**spec.flags, "ACC": tl.float32, "BLOCK_C": tile.block_c, "BLOCK_P": tile.block_p}
    compiled, seconds = compile_for_target(fn, signature, constexprs, tile.num_warps, arch)
    ptx = compiled.asm["ptx"]
    target_line = re.search(r"^\.target\s+(\S+)", ptx, re.MULTILINE)
    registers, local = _resource_usage(compiled.asm["cubin"])
    return CompiledKernel(
        kernel=spec.kernel,
        flags=",".join(f"{k}={int(v)}" for k, v in spec.flags.items()),
        dtype=dtype,
        target=arch.name,
        ptx_target=target_line.group(1) if target_line else "",
        block_c=tile.block_c,
        block_p=tile.block_p,
        num_warps=int(compiled.metadata.num_warps),
        shared_bytes=int(compiled.metadata.shared),
        registers=registers,
        local_bytes=local,
        spills_in_ptx=bool(re.search(r"\b(ld|st)\.local\b", ptx)),
        compile_s=round(seconds, 3),
        ptx=ptx,
    )
