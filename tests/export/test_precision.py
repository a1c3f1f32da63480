"""FP16 (AutoCast) and INT8 (ModelOpt Q/DQ) graphs: structure, exclusions, and that they run in onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from cloudlulc_edge.errors import ExportError
from cloudlulc_edge.export.calibration import build_calibration_set
from cloudlulc_edge.export.precision import (
    SensitiveRegions,
    convert_fp16,
    fp16_range_exclusions,
    matching_nodes,
    module_path,
    quantize_int8,
)
from cloudlulc_edge.io.products import scan
from cloudlulc_edge.pairing import pair_products
from tests.export.conftest import TILE

pytestmark = [
    pytest.mark.export,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*assuming offset 0:UserWarning"),
]


@pytest.fixture(scope="module")
def calibration(bigearthnet_v1_module: Path):
    return build_calibration_set(pair_products(scan(bigearthnet_v1_module).products).pairs, tile=TILE, tiles=24)


@pytest.fixture(scope="module")
def bigearthnet_v1_module() -> Path:
    from tests.conftest import SHARED_DATA

    path = SHARED_DATA / "bigearthnet-v1"
    if not path.exists():
        pytest.skip(f"real sample data not available at {path}")
    return path


@pytest.fixture(scope="module")
def converted(edge_onnx, calibration, tmp_path_factory):
    out = tmp_path_factory.mktemp("precision")
    fp16 = convert_fp16(edge_onnx["standard"], out / "fp16.onnx", calibration=calibration.arrays)
    int8, excluded = quantize_int8(edge_onnx["standard"], out / "int8.onnx", calibration.arrays, "entropy")
    return {"fp16": fp16, "int8": int8, "excluded": excluded}


def test_fp16_range_check_over_tiles_equals_holding_every_tensor(edge_onnx, calibration):
    """The streamed range check excludes exactly the nodes that AutoCast's way (every tensor an output, all
    tiles held) finds above the threshold, on thresholds that split the graph."""
    model = onnx.load(str(edge_onnx["standard"]))
    produced = [t for n in model.graph.node for t in n.output if t]
    del model.graph.output[:]
    model.graph.output.extend(onnx.ValueInfoProto(name=t) for t in produced)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    tiles = {k: v[:5] for k, v in calibration.arrays.items()}
    held = [dict(zip(names, session.run(None, {k: v[i : i + 1] for k, v in tiles.items()}), strict=True))
            for i in range(5)]  # fmt: skip
    absmax = {k: float(np.abs(v).max()) for k, v in tiles.items()}
    for values in held:
        for name, value in values.items():
            if value.dtype.kind == "f" and value.size and not np.isnan(top := float(np.abs(value).max())):
                absmax[name] = max(absmax.get(name, 0.0), top)  # AutoCast's np.max: NaN is never above data_max
    finite = [v for v in absmax.values() if np.isfinite(v)]  # random weights: some tensors overflow
    for data_max in np.percentile(finite, [25, 50, 75]):
        expected = [
            n.name for n in model.graph.node if any(absmax.get(t, 0.0) > data_max for t in (*n.input, *n.output))
        ]
        assert 0 < len(expected) < len(model.graph.node)
        assert fp16_range_exclusions(edge_onnx["standard"], tiles, float(data_max)) == expected


def _run(path, inputs):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, inputs)[0]


@pytest.fixture(scope="module")
def circular_onnx(tmp_path_factory):
    """The edge profile with the paper's circular spectral term, as DFT matmuls (the form INT8 must avoid)."""
    import torch

    from cloudlulc_edge.export import export_onnx
    from cloudlulc_edge.models import create_model

    torch.manual_seed(0)
    model = create_model("cloudlulc_edge", spectral="circular").eval()
    return export_onnx(model, tmp_path_factory.mktemp("circular") / "m.onnx", "standard", tile=TILE, max_batch=8)


def test_sensitive_regions_are_found_by_module_path(edge_onnx, circular_onnx):
    graph = onnx.load(str(edge_onnx["standard"]))
    regions = SensitiveRegions()
    names = set(matching_nodes(graph, regions.modules))
    by_name = {n.name: n for n in graph.graph.node}
    convs = sorted(module_path(by_name[n]) for n in names if by_name[n].op_type == "Conv")
    assert convs == ["decoder.head", "optical_encoder.stage1.0", "sar_encoder.stage1.0"]
    # The shipped edge profile's local spectral term is Slice/Mul/Add: no DFT matmul to protect.
    assert not [n for n in names if module_path(by_name[n]).endswith(".spectral") and by_name[n].op_type == "MatMul"]
    graph = onnx.load(str(circular_onnx))
    by_name = {n.name: n for n in graph.graph.node}
    spectral = [n for n in matching_nodes(graph, regions.modules) if module_path(by_name[n]).endswith(".spectral")]
    assert (
        sum(by_name[n].op_type == "MatMul" for n in spectral) == 2 * 18
    )  # two SHOI blocks × 18 DFT matmuls (2 forward rDFT2 of 6, inverse of 6)


def test_fp16_graph_keeps_fp32_io_and_runs(converted, edge_onnx, calibration):
    model = onnx.load(str(converted["fp16"]))
    io_types = {v.type.tensor_type.elem_type for v in (*model.graph.input, *model.graph.output)}
    assert io_types == {onnx.TensorProto.FLOAT}
    floats = [t for t in model.graph.initializer if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)]
    half = sum(int(np.prod(t.dims)) for t in floats if t.data_type == onnx.TensorProto.FLOAT16)
    assert half > 0.5 * sum(int(np.prod(t.dims)) for t in floats)  # the bulk of the weights is FP16 now
    x = {k: v[:4] for k, v in calibration.arrays.items()}
    ref, out = _run(edge_onnx["standard"], x), _run(converted["fp16"], x)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert (ref.argmax(1) == out.argmax(1)).mean() >= 0.99  # FP16 is near-lossless even untrained


def test_int8_graph_has_qdq_except_sensitive_nodes(converted, edge_onnx, calibration):
    model = onnx.load(str(converted["int8"]))
    nodes = model.graph.node
    assert sum(n.op_type == "QuantizeLinear" for n in nodes) > 20
    dq_outputs = {o for n in nodes if n.op_type == "DequantizeLinear" for o in n.output}
    quantized = {n.name for n in nodes if n.op_type in ("Conv", "MatMul") and set(n.input) & dq_outputs}
    assert quantized, "no Conv/MatMul reads a dequantized tensor"
    excluded_compute = [n for n in nodes if n.name in set(converted["excluded"]) and n.op_type in ("Conv", "MatMul")]
    assert len(excluded_compute) == 3  # the first convolutions and the head (the local spectral term has no matmul)
    assert not [n.name for n in excluded_compute if n.name in quantized]
    x = {k: v[:4] for k, v in calibration.arrays.items()}
    ref, out = _run(edge_onnx["standard"], x), _run(converted["int8"], x)
    assert np.isfinite(out).all() and out.shape == ref.shape
    # Untrained weights give flat logits, the worst case for argmax stability; the 97 % gate on a
    # trained checkpoint is bench/export_accuracy.py. Here: INT8 must still follow FP32 closely.
    assert (ref.argmax(1) == out.argmax(1)).mean() >= 0.9


def test_int8_needs_calibration_and_leaves_source_untouched(edge_onnx, tmp_path):
    before = edge_onnx["standard"].read_bytes()
    with pytest.raises(ExportError, match="calibration"):
        quantize_int8(edge_onnx["standard"], tmp_path / "x.onnx", {})
    with pytest.raises(ExportError, match="calibration method"):
        quantize_int8(edge_onnx["standard"], tmp_path / "x.onnx", {"s2": np.zeros((1, 12, 4, 4), np.float32)}, "mse")  # type: ignore[arg-type]
    assert edge_onnx["standard"].read_bytes() == before
    assert not (tmp_path / "x.onnx").exists()


def test_modelopt_progress_lines_stay_hidden_unless_verbose(edge_onnx, tmp_path, caplog):
    import logging

    def modelopt_info_records() -> int:
        return sum(r.name.startswith("modelopt") and r.levelno == logging.INFO for r in caplog.records)

    # ModelOpt's loggers propagate to the root logger, where caplog sees what they emit (their own
    # stdout handler is bound to whatever stdout was when ModelOpt was first imported).
    with caplog.at_level(logging.INFO):
        convert_fp16(edge_onnx["standard"], tmp_path / "quiet.onnx")
    assert modelopt_info_records() == 0  # its warnings may remain
    caplog.clear()
    ours = logging.getLogger("cloudlulc_edge.export.precision")
    before = ours.level
    ours.setLevel(logging.DEBUG)  # what `export onnx --verbose` does
    try:
        with caplog.at_level(logging.INFO):
            convert_fp16(edge_onnx["standard"], tmp_path / "verbose.onnx")
    finally:
        ours.setLevel(before)
    assert modelopt_info_records() > 10  # one per converted or skipped node
