"""Compile-only tier (T2): every kernel builds for the GPU targets with no GPU present.

``triton.compile`` runs TTIR → PTX → cubin for sm_87 (Jetson Orin), sm_90a (H100) and sm_110a (Jetson
Thor, when the bundled ptxas knows it). This catches what the interpreter accepts but GPU compilers
reject, and guards the resources: no spills, shared memory well under the 100 KB budget.
"""

from __future__ import annotations

import os

import pytest

pytest.importorskip("triton")
if os.environ.get("TRITON_INTERPRET") == "1":
    pytest.skip("compile checks need the real JIT (run without TRITON_INTERPRET)", allow_module_level=True)

from cloudlulc_edge.kernels import aot

DTYPES = ["fp16", "bf16", "fp32"]


def test_h100_and_orin_targets_are_known():
    names = {arch.name for arch in aot.known_targets()}
    assert {"sm_87", "sm_90a"} <= names


@pytest.mark.parametrize("arch", aot.TARGETS, ids=lambda a: a.name)
@pytest.mark.parametrize("spec", aot.KERNEL_SPECS, ids=lambda s: f"{s.kernel}-C{s.channels}-{len(s.flags)}")
def test_kernel_compiles_without_spills(spec, arch):
    if arch not in aot.known_targets():
        pytest.skip(f"the installed Triton's ptxas does not know {arch.name}")
    for dtype in DTYPES:
        built = aot.compile_kernel(spec, dtype, arch)
        assert built.ptx_target == arch.name
        assert ".entry " + spec.kernel in built.ptx
        assert built.shared_bytes <= 100 * 1024
        assert not built.spills_in_ptx
        assert built.local_bytes in (0, None)
        if built.registers is not None:
            assert 0 < built.registers <= 255
