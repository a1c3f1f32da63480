"""What each fused op's Triton kernels are called and how they are built ahead of time.

Every op module (`ops.reliability_gate`, `ops.norm_gate`, `ops.channel_softmax_gate`) holds one `OpKernels`
table, ``KERNELS``: its launcher module under `cloudlulc_edge.kernels.jit` (named after the op),
its forward and backward kernel names (``<op>_fwd_kernel`` / ``<op>_bwd_kernel``) and the
representative builds the compile-only tier checks. `dispatch.register_triton`, `aot` and
`cloudlulc_edge.export.plugin_ops` all read these tables; no kernel name is written anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["JIT_PACKAGE", "KernelSpec", "OpKernels"]

#: The package holding one Triton module per op.
JIT_PACKAGE = "cloudlulc_edge.kernels.jit"


@dataclass(frozen=True)
class KernelSpec:
    """One representative build of a kernel.

    Attributes:
        module: Module under ``cloudlulc_edge.kernels.jit`` (the op's name).
        kernel: ``@triton.jit`` function name.
        channels: C of the build (sets ``BLOCK_C`` and, with `pixels`, ``BLOCK_P``).
        scalars: Triton types of the non-pointer runtime arguments.
        flags: Constexpr feature flags.
        fp32_pointers: Pointer arguments that are fp32 whatever the input dtype (partial sums).
        backward: A backward kernel (half the tile budget, as its launcher plans).
        pixels: H·W of the build (the model's 128×128 fusion grid for 512² tiles).
    """

    module: str
    kernel: str
    channels: int
    scalars: dict[str, str]
    flags: dict[str, bool] = field(default_factory=dict)
    fp32_pointers: tuple[str, ...] = ()
    backward: bool = False
    pixels: int = 128 * 128


@dataclass(frozen=True)
class OpKernels:
    """The Triton side of one fused op.

    Attributes:
        op: Op name (= file name of the op module and of its ``jit`` module = kernel prefix).
        builds: Representative builds for the compile-only tier and the plugin PTX.
    """

    op: str
    builds: tuple[KernelSpec, ...] = ()

    @property
    def module(self) -> str:
        """Full import name of the launcher module (``cloudlulc_edge.kernels.jit.<op>``)."""
        return f"{JIT_PACKAGE}.{self.op}"

    @property
    def forward(self) -> str:
        """Forward kernel name."""
        return f"{self.op}_fwd_kernel"

    @property
    def backward(self) -> str:
        """Backward kernel name."""
        return f"{self.op}_bwd_kernel"
