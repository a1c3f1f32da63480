from __future__ import annotations

import pytest
import torch

from cloudlulc_edge import kernels as K
from cloudlulc_edge.kernels import dispatch


def test_default_mode_is_auto_and_cpu_uses_reference(monkeypatch):
    monkeypatch.delenv(dispatch.KERNELS_ENV, raising=False)
    assert K.get_kernel_mode() == "auto"
    assert dispatch.resolve("norm_gate", torch.zeros(1)) is K.reference.norm_gate


@pytest.mark.parametrize(("value", "mode"), [("ref", "reference"), ("REFERENCE", "reference"), ("triton", "triton")])
def test_environment_variable(monkeypatch, value, mode):
    monkeypatch.setenv(dispatch.KERNELS_ENV, value)
    assert K.get_kernel_mode() == mode


def test_bad_environment_value_is_reported(monkeypatch):
    monkeypatch.setenv(dispatch.KERNELS_ENV, "cuda")
    with pytest.raises(ValueError, match="CLOUDLULC_KERNELS='cuda'"):
        K.get_kernel_mode()


def test_override_beats_environment_and_context_restores(monkeypatch):
    monkeypatch.setenv(dispatch.KERNELS_ENV, "triton")
    with K.use_kernels("reference"):
        assert K.get_kernel_mode() == "reference"
    assert K.get_kernel_mode() == "triton"


def test_forced_triton_without_triton_fails_clearly(monkeypatch):
    monkeypatch.setitem(dispatch._IMPLS, "norm_gate", {"reference": dispatch._IMPLS["norm_gate"]["reference"]})
    with K.use_kernels("triton"), pytest.raises(RuntimeError, match="no Triton implementation of 'norm_gate'"):
        K.norm_gate(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 3), torch.ones(2), torch.zeros(2))


def test_triton_is_registered_lazily_only_when_importable(monkeypatch):
    monkeypatch.setitem(dispatch._IMPLS, "probe", {})
    monkeypatch.setattr(dispatch, "triton_importable", lambda: False)
    dispatch.register_triton("probe", "cloudlulc_edge.kernels.jit.norm_gate", "forward")
    assert dispatch._IMPLS["probe"] == {}
    monkeypatch.setattr(dispatch, "triton_importable", lambda: True)
    dispatch.register_triton("probe", "cloudlulc_edge.kernels.jit.norm_gate", "forward")
    assert "triton" in dispatch._IMPLS["probe"]


@pytest.mark.skipif(not dispatch.triton_importable(), reason="triton not installed")
def test_forced_triton_on_cpu_without_interpreter_names_the_fix(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    from cloudlulc_edge.kernels.jit import _common

    if _common.interpreting():
        pytest.skip("running under the Triton interpreter")
    with K.use_kernels("triton"), pytest.raises(RuntimeError, match=r"needs CUDA tensors.*TRITON_INTERPRET=1"):
        K.norm_gate(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 3), torch.ones(2), torch.zeros(2))


def test_registered_triton_implementation_is_used_only_for_cuda(monkeypatch):
    monkeypatch.setitem(dispatch._IMPLS, "norm_gate", dict(dispatch._IMPLS["norm_gate"]))
    marker = object()
    dispatch.register_implementation("norm_gate", "triton", lambda *a: marker)
    monkeypatch.setattr(dispatch, "triton_importable", lambda: True)
    assert dispatch.resolve("norm_gate", torch.zeros(1)) is K.reference.norm_gate  # CPU tensor
    with K.use_kernels("triton"):
        assert dispatch.resolve("norm_gate", torch.zeros(1))() is marker


def test_all_fused_ops_have_a_reference():
    assert all("reference" in b for b in K.available_implementations().values())
    ops = {"reliability_gate", "norm_gate", "channel_softmax_gate"}
    assert set(K.available_implementations()) == ops | {f"{op}_backward" for op in ops}
