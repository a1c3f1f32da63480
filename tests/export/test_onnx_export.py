"""ONNX export: FP32 parity with PyTorch in onnxruntime, spectral switch, plugin graph structure."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from cloudlulc_edge.errors import ExportError
from cloudlulc_edge.export import INPUT_NAMES, export_onnx, input_shapes
from cloudlulc_edge.export.plugin_ops import PLUGIN_NAMESPACE, PLUGIN_OPS
from cloudlulc_edge.kernels import use_kernels
from cloudlulc_edge.models import create_model
from tests.export.conftest import TILE

pytestmark = pytest.mark.export


def _inputs(batch: int, tile: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = {k: rng.random(s, dtype=np.float32) for k, s in input_shapes(batch, tile).items()}
    x["s2_valid"] = (x["s2_valid"] > 0.2).astype(np.float32)  # optical nodata
    x["s1_valid"] = (x["s1_valid"] > 0.1).astype(np.float32)  # partial SAR coverage
    return x


def _torch(model, x):
    with torch.no_grad(), use_kernels("reference"):
        return model(*(torch.from_numpy(x[k]) for k in INPUT_NAMES)).numpy()


@pytest.mark.parametrize("batch", [1, 3])
def test_standard_fp32_matches_pytorch(edge_model, edge_onnx, batch):
    session = ort.InferenceSession(str(edge_onnx["standard"]), providers=["CPUExecutionProvider"])
    x = _inputs(batch, TILE, seed=batch)
    logits = session.run(None, x)[0]
    assert logits.shape == (batch, 6, TILE, TILE)
    assert np.abs(logits - _torch(edge_model, x)).max() <= 1e-4


def test_graph_io_and_opset(edge_onnx):
    model = onnx.load(str(edge_onnx["standard"]))
    assert [i.name for i in model.graph.input] == list(INPUT_NAMES)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic batch
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]] == [12, TILE, TILE]
    assert {o.domain: o.version for o in model.opset_import}[""] <= 20
    assert not [n for n in model.graph.node if n.domain == PLUGIN_NAMESPACE]
    assert not [n for n in model.graph.node if n.op_type == "DFT"]  # matmul spectral: parses on TensorRT 10.x


@pytest.mark.parametrize("spectral", ["fft", "matmul"])
def test_spectral_switch_matches_torch_fft(tmp_path, spectral):
    """test_tiny uses torch.fft; both exported spectral forms must reproduce it."""
    model = create_model("test_tiny").eval()
    path = export_onnx(model, tmp_path / "m.onnx", tile=32, max_batch=4, spectral=spectral)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert ("DFT" in ops) == (spectral == "fft")
    x = _inputs(2, 32, seed=7)
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, x)[0]
    assert np.abs(out - _torch(model, x)).max() <= 1e-4


class _OpCalls(TorchDispatchMode):
    """Counts calls of the cloudlulc fused ops, with their float arguments."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func.overloadpacket).removeprefix("cloudlulc.")
        if str(func.namespace) == "cloudlulc":
            self.calls.append((name, args))
        return func(*args, **(kwargs or {}))


def test_plugin_graph_has_one_node_per_fused_op_call(edge_model, edge_onnx):
    recorder = _OpCalls()
    x = _inputs(2, TILE, seed=0)
    with torch.no_grad(), use_kernels("auto"), recorder:
        edge_model(*(torch.from_numpy(x[k]) for k in INPUT_NAMES))
    expected = Counter()
    for name, args in recorder.calls:
        if name == "reliability_gate":
            expected[f"reliability_gate{'_masked' * (args[2] is not None)}{'_sar' * (args[3] is not None)}"
                     f"{'_pooled' * bool(args[5])}"] += 1  # fmt: skip
        elif name == "norm_gate":
            expected["norm_gate_residual" if args[4] is not None else "norm_gate"] += 1
        elif name == "channel_softmax_gate":  # per-pixel logits (local descriptor) have their own plugin
            expected["channel_softmax_gate" + "_pixel" * (tuple(args[1].shape[-2:]) != (1, 1))] += 1
        else:
            expected[name] += 1
    graph = onnx.load(str(edge_onnx["plugin"])).graph
    custom = [n for n in graph.node if n.domain == PLUGIN_NAMESPACE]
    assert Counter(n.op_type for n in custom) == expected
    assert sum(expected.values()) == 17  # 1 ORM gate + 2 blocks × (4 SHOI steps + 4 CHOI gates)
    for node in custom:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        op = PLUGIN_OPS[node.op_type]
        assert attrs["plugin_namespace"] == PLUGIN_NAMESPACE.encode() and attrs["aot"] == 1
        assert set(attrs) == {"plugin_namespace", "aot", *op.float_attrs}
        assert len(node.input) == len(op.inputs) and len([o for o in node.output if o]) >= 1
    # Attribute values are the modules' own (float32 in ONNX): ε of every SHOI step, α of the gate.
    eps = sorted(onnx.helper.get_attribute_value(a) for n in custom for a in n.attribute if a.name == "eps")
    assert eps == pytest.approx(sorted(args[5] for name, args in recorder.calls if name == "norm_gate"), rel=1e-6)


def test_plugin_graph_is_refused_by_onnxruntime(edge_onnx):
    """The plugin flavour is TensorRT-only; onnxruntime must say so rather than run something else."""
    with pytest.raises(Exception, match=r"reliability_gate|cloudlulc"):
        ort.InferenceSession(str(edge_onnx["plugin"]), providers=["CPUExecutionProvider"])


def test_bad_requests_raise_export_error(tmp_path):
    model = create_model("test_tiny")
    with pytest.raises(ExportError, match="multiple of 16 for this model"):
        export_onnx(model, tmp_path / "a.onnx", tile=40)
    with pytest.raises(ExportError, match="flavour"):
        export_onnx(model, tmp_path / "b.onnx", flavour="tensorrt", tile=32)  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("name", "options"),
    [("unet_early", {"width": 8, "depth": 3}), ("recon_first", {"recon_width": 8, "recon_blocks": 2, "seg_width": 8})],
)
def test_baselines_export_and_match_pytorch(tmp_path, name, options):
    torch.manual_seed(0)
    model = create_model(name, **options).eval()
    path = export_onnx(model, tmp_path / f"{name}.onnx", tile=TILE, max_batch=4)
    onnx.checker.check_model(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = _inputs(2, TILE, seed=5)
    np.testing.assert_allclose(session.run(None, x)[0], _torch(model, x), rtol=1e-4, atol=1e-4)
    with pytest.raises(ExportError, match="multiple of 8 for this model"):
        export_onnx(create_model("unet_s2", width=4, depth=3), tmp_path / "bad.onnx", tile=60)
