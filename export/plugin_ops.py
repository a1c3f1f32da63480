"""The fused ops as ONNX custom-domain nodes shaped for TensorRT Quickly Deployable Plugins.

In the ``plugin`` ONNX flavour every call of a fused op (`cloudlulc_edge.kernels`) becomes one
node whose domain and ``plugin_namespace`` attribute are ``cloudlulc`` (the `torch.library`
namespace too) and whose ``op_type`` is the plugin name. A TensorRT plugin has a fixed number of
inputs and outputs, so each combination of the op's optional tensors is its own plugin:

| torch op | plugin names | inputs | outputs | attributes |
|---|---|---|---|---|
| ``reliability_gate`` | ``reliability_gate[_masked][_sar][_pooled]`` | optical, logits[, valid][, sar] | y[, rho] | alpha |
| ``norm_gate`` | ``norm_gate``, ``norm_gate_residual`` | x, guide, weight, bias[, residual] | y | eps |
| ``channel_softmax_gate`` | ``channel_softmax_gate`` (logits (B, C, 1, 1)), ``channel_softmax_gate_pixel`` (logits (B, C, H, W)) | x, logits | q, alpha | – |

Every node also carries ``aot = 1`` (use the plugin's ahead-of-time PTX implementation). The
table is the single source for the ONNX schemas, the exporter's translation functions, the PTX
builds (`plugin_ptx`) and the TensorRT registrations (`trt_plugins`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from cloudlulc_edge.kernels.ops.channel_softmax_gate import KERNELS as _CHANNEL_SOFTMAX_GATE
from cloudlulc_edge.kernels.ops.norm_gate import KERNELS as _NORM_GATE
from cloudlulc_edge.kernels.ops.reliability_gate import KERNELS as _RELIABILITY_GATE

__all__ = [
    "PLUGIN_NAMESPACE",
    "PLUGIN_OPS",
    "PluginOp",
    "register_onnx_schemas",
    "reliability_plugin_name",
    "translation_table",
]

#: One namespace for the torch.library ops, the ONNX domain and the TensorRT plugins.
PLUGIN_NAMESPACE = "cloudlulc"
_OPSET_VERSION = 1


@dataclass(frozen=True)
class PluginOp:
    """One plugin: an ONNX op in the ``cloudlulc`` domain and the Triton kernel behind it.

    Attributes:
        name: ONNX ``op_type`` and TensorRT plugin name.
        inputs: Input tensor names, in kernel pointer order.
        outputs: Output tensor names, in kernel pointer order (after the inputs).
        float_attrs: Float attributes (specialised into the PTX as constants).
        kernel: ``module.function`` of the forward kernel under ``cloudlulc_edge.kernels.jit``, from the
            op's ``KERNELS`` table (`cloudlulc_edge.kernels.specs`).
        flags: The kernel's constexpr feature flags for this variant.
        absent: Kernel pointer parameters this variant does not have (passed as ``None``).
    """

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    float_attrs: tuple[str, ...]
    kernel: str
    flags: tuple[tuple[str, bool], ...]
    absent: tuple[str, ...] = ()


def reliability_plugin_name(masked: bool, sar: bool, pooled: bool) -> str:
    """Plugin name of a reliability-gate variant, e.g. ``reliability_gate_masked_pooled``."""
    return "reliability_gate" + "_masked" * masked + "_sar" * sar + "_pooled" * pooled


def _reliability_ops() -> list[PluginOp]:
    ops = []
    for masked in (False, True):
        for sar in (False, True):
            for pooled in (False, True):
                absent = tuple(
                    p for p, present in (("m_ptr", masked), ("s_ptr", sar), ("rho_ptr", pooled)) if not present
                )
                ops.append(
                    PluginOp(
                        name=reliability_plugin_name(masked, sar, pooled),
                        inputs=("optical", "logits") + ("valid",) * masked + ("sar",) * sar,
                        outputs=("y",) + ("rho",) * pooled,
                        float_attrs=("alpha",),
                        kernel=f"{_RELIABILITY_GATE.op}.{_RELIABILITY_GATE.forward}",
                        flags=(("HAS_VALID", masked), ("HAS_SAR", sar), ("POOLED", pooled)),
                        absent=absent,
                    )
                )
    return ops


#: Every plugin, by name.
PLUGIN_OPS: dict[str, PluginOp] = {
    op.name: op
    for op in (
        *_reliability_ops(),
        PluginOp(
            "norm_gate",
            ("x", "guide", "weight", "bias"),
            ("y",),
            ("eps",),
            f"{_NORM_GATE.op}.{_NORM_GATE.forward}",
            (("HAS_RES", False),),
            ("res_ptr",),
        ),
        PluginOp(
            "norm_gate_residual",
            ("x", "guide", "weight", "bias", "residual"),
            ("y",),
            ("eps",),
            f"{_NORM_GATE.op}.{_NORM_GATE.forward}",
            (("HAS_RES", True),),
        ),
        *(
            PluginOp(name, ("x", "logits"), ("q", "alpha"), (),
                     f"{_CHANNEL_SOFTMAX_GATE.op}.{_CHANNEL_SOFTMAX_GATE.forward}", (("PER_PIXEL", per_pixel),))
            for name, per_pixel in (("channel_softmax_gate", False), ("channel_softmax_gate_pixel", True))
        ),
    )
}  # fmt: skip


@functools.lru_cache(maxsize=1)
def register_onnx_schemas() -> None:
    """Registers an ONNX `OpSchema` for every plugin (the exporter needs one per custom op)."""
    import onnx
    from onnx.defs import OpSchema

    types = ["tensor(float)", "tensor(float16)", "tensor(bfloat16)"]
    for op in PLUGIN_OPS.values():
        if onnx.defs.has(op.name, PLUGIN_NAMESPACE):
            continue
        attrs = [OpSchema.Attribute(a, OpSchema.AttrType.FLOAT, f"{a} (baked into the PTX)") for a in op.float_attrs]
        attrs += [
            OpSchema.Attribute("plugin_namespace", OpSchema.AttrType.STRING, "TensorRT plugin namespace"),
            OpSchema.Attribute("aot", OpSchema.AttrType.INT, "1: use the ahead-of-time implementation"),
        ]
        schema = OpSchema(
            op.name,
            PLUGIN_NAMESPACE,
            _OPSET_VERSION,
            doc=f"cloudlulc fused op {op.name} (TensorRT plugin {PLUGIN_NAMESPACE}::{op.name})",
            inputs=[OpSchema.FormalParameter(n, "T") for n in op.inputs],
            outputs=[OpSchema.FormalParameter(n, "T") for n in op.outputs],
            type_constraints=[("T", types, "float tensors")],
            attributes=attrs,
        )
        onnx.defs.register_schema(schema)


def _node(name: str, *inputs: Any, **attrs: Any) -> Any:
    """Emits one ``cloudlulc`` node (inside an exporter translation function)."""
    from onnxscript.values import Opset

    op = PLUGIN_OPS[name]
    fn = getattr(Opset(PLUGIN_NAMESPACE, _OPSET_VERSION), name)
    kwargs = {"plugin_namespace": PLUGIN_NAMESPACE, "aot": 1, **attrs}
    if len(op.outputs) > 1:
        kwargs["_num_outputs"] = len(op.outputs)
    return fn(*inputs, **kwargs)


def _empty_like_rho() -> Any:
    """The op's unused empty ρ output of a non-pooled gate (the model never reads it)."""
    import onnx
    from onnxscript import opset20

    return opset20.Constant(value=onnx.helper.make_tensor("rho", onnx.TensorProto.FLOAT, [0], []))


def _translate_reliability(
    optical: Any, logits: Any, valid: Any = None, sar: Any = None, alpha: float = 0.0, pooled: bool = False
) -> Any:
    name = reliability_plugin_name(valid is not None, sar is not None, pooled)
    inputs = [t for t in (optical, logits, valid, sar) if t is not None]
    if pooled:
        return _node(name, *inputs, alpha=float(alpha))
    return _node(name, *inputs, alpha=float(alpha)), _empty_like_rho()


def _translate_norm_gate(x: Any, guide: Any, weight: Any, bias: Any, residual: Any = None, eps: float = 1e-6) -> Any:
    if residual is None:
        return _node("norm_gate", x, guide, weight, bias, eps=float(eps))
    return _node("norm_gate_residual", x, guide, weight, bias, residual, eps=float(eps))


def _translate_channel_softmax_gate(x: Any, logits: Any) -> Any:
    # The logits' static spatial size tells the two plugins apart: (…, 1, 1) global, (…, H, W) per pixel.
    dims = [getattr(d, "value", d) for d in (getattr(logits, "shape", None) or ())]
    if len(dims) != 4 or not all(isinstance(d, int) for d in dims[2:]):
        raise ValueError(
            f"channel_softmax_gate needs logits with a static spatial size in the plugin flavour, got {dims}"
        )
    per_pixel = tuple(dims[2:]) != (1, 1)
    return _node("channel_softmax_gate_pixel" if per_pixel else "channel_softmax_gate", x, logits)


def translation_table() -> dict[Any, Callable[..., Any]]:
    """``custom_translation_table`` for `torch.onnx.export`: each fused op → one plugin node."""
    import cloudlulc_edge.kernels  # noqa: F401  (registers the torch.library ops)

    register_onnx_schemas()
    ops = torch.ops.cloudlulc
    return {
        ops.reliability_gate.default: _translate_reliability,
        ops.norm_gate.default: _translate_norm_gate,
        ops.channel_softmax_gate.default: _translate_channel_softmax_gate,
    }
