"""The torch.library ops (T0 tier, CPU): CPU kernel = reference, fake tensors, autograd, export."""

from __future__ import annotations

import pytest
import torch

from cloudlulc_edge import kernels as K
from cloudlulc_edge.export import example_inputs
from cloudlulc_edge.kernels import dispatch
from cloudlulc_edge.kernels import reference as ref
from cloudlulc_edge.kernels.ops.channel_softmax_gate import channel_softmax_gate_op
from cloudlulc_edge.kernels.ops.norm_gate import norm_gate_op
from cloudlulc_edge.kernels.ops.reliability_gate import reliability_gate_op
from cloudlulc_edge.models import create_model


def _args(dtype=torch.float32, shape=(2, 6, 5, 7), requires_grad=False):
    b, c, h, w = shape

    def t(*s):
        return torch.randn(*s, dtype=dtype, requires_grad=requires_grad)

    return {
        "reliability": (t(*shape), t(*shape), torch.rand(b, 1, h, w, dtype=dtype), t(*shape), 0.5, True),
        "norm_gate": (t(*shape), t(*shape), t(c), t(c), t(*shape), 1e-5),
        "channel_gate": (t(*shape), t(b, c, 1, 1)),
    }


OPS = {"reliability": reliability_gate_op, "norm_gate": norm_gate_op, "channel_gate": channel_softmax_gate_op}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_cpu_kernels_equal_the_reference(dtype):
    args = _args(dtype)
    y, rho = reliability_gate_op(*args["reliability"])
    y_ref, rho_ref = ref.reliability_gate_pooled(*args["reliability"][:5])
    assert torch.equal(y, y_ref) and torch.equal(rho, rho_ref)
    assert torch.equal(norm_gate_op(*args["norm_gate"]), ref.norm_gate(*args["norm_gate"]))
    q, a = channel_softmax_gate_op(*args["channel_gate"])
    q_ref, a_ref = ref.channel_softmax_gate(*args["channel_gate"])
    assert torch.equal(q, q_ref) and torch.equal(a, a_ref)


def test_unpooled_gate_returns_an_empty_second_output():
    o, z = torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4)
    y, rho = reliability_gate_op(o, z, None, None, 0.0, False)
    assert rho.numel() == 0
    torch.testing.assert_close(y, o * torch.sigmoid(z))


@pytest.mark.parametrize("name", sorted(OPS))
def test_opcheck_schema_fake_and_autograd_registration(name):
    args = _args(torch.float64, requires_grad=True)[name]
    torch.library.opcheck(OPS[name], args, test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))


def test_op_gradients_pass_fp64_gradcheck_on_cpu():
    a = _args(torch.float64, shape=(1, 4, 3, 5), requires_grad=True)
    o, z, m, s, alpha, _ = a["reliability"]
    m.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda o, z, m, s: reliability_gate_op(o, z, m, s, alpha, True), (o, z, m, s))
    assert torch.autograd.gradcheck(lambda *t: norm_gate_op(*t, 1e-5), a["norm_gate"][:5])
    assert torch.autograd.gradcheck(lambda x, v: channel_softmax_gate_op(x, v), a["channel_gate"])


def test_public_functions_route_through_the_ops_unless_reference_mode(monkeypatch):
    calls = []
    original = dispatch.resolve

    def spy(op, first):
        calls.append(op)
        return original(op, first)

    monkeypatch.setattr("cloudlulc_edge.kernels.ops.norm_gate.resolve", spy)
    x, g = torch.randn(1, 4, 3, 3), torch.randn(1, 4, 3, 3)
    K.norm_gate(x, g, torch.ones(4), torch.zeros(4))
    assert calls == ["norm_gate"]
    with K.use_kernels("reference"):
        K.norm_gate(x, g, torch.ones(4), torch.zeros(4))
    assert calls == ["norm_gate"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: K.norm_gate(torch.zeros(1, 4, 3, 3), torch.zeros(1, 4, 3, 2), torch.ones(4), torch.zeros(4)),
            "share one",
        ),
        (
            lambda: K.norm_gate(torch.zeros(1, 4, 3, 3), torch.zeros(1, 4, 3, 3), torch.ones(3), torch.zeros(3)),
            r"\(4,\)",
        ),
        (lambda: K.reliability_gate(torch.zeros(1, 4, 3, 3), torch.zeros(1, 4, 3, 3), torch.ones(1, 4, 3, 3)), "valid"),
        (
            lambda: K.channel_softmax_gate(torch.zeros(1, 4, 3, 3), torch.zeros(1, 4, 2, 2)),
            r"\(B, C, 1, 1\) or \(B, C, H, W\)",
        ),
    ],
)
def test_bad_shapes_fail_clearly(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def _targets(program):
    return {str(n.target) for n in program.graph.nodes if n.op == "call_function"}


@pytest.mark.export
def test_torch_export_sees_one_named_op_per_fusion():
    model = create_model("test_tiny").eval()
    s2, s1 = example_inputs(1, 32)
    targets = _targets(torch.export.export(model, (s2, s1)))
    fused = {t for t in targets if t.startswith("cloudlulc.")}
    assert fused == {
        "cloudlulc.reliability_gate.default",
        "cloudlulc.norm_gate.default",
        "cloudlulc.channel_softmax_gate.default",
    }
    with K.use_kernels("reference"):
        assert not any(t.startswith("cloudlulc.") for t in _targets(torch.export.export(model, (s2, s1))))


def test_torch_compile_with_the_ops_matches_eager_forward_and_backward():
    model = create_model("test_tiny").train()
    s2, s1 = example_inputs(2, 32)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    eager_out, compiled_out = model(s2, s1), compiled(s2, s1)
    torch.testing.assert_close(compiled_out, eager_out)
    params = list(model.parameters())
    eager_grads = torch.autograd.grad(eager_out.square().mean(), params, allow_unused=True)
    compiled_grads = torch.autograd.grad(compiled_out.square().mean(), params, allow_unused=True)
    assert sum(g is not None for g in eager_grads) > len(params) // 2
    for got, want in zip(compiled_grads, eager_grads, strict=True):
        assert (got is None) == (want is None)
        if want is not None:
            torch.testing.assert_close(got, want)


def test_model_output_is_the_same_through_ops_and_inline_reference():
    model = create_model("test_tiny").eval()
    s2, s1 = example_inputs(2, 32)
    with torch.no_grad():
        through_ops = model(s2, s1)
        with K.use_kernels("reference"):
            inline = model(s2, s1)
    torch.testing.assert_close(through_ops, inline, rtol=0, atol=0)
