"""Engines on a real TensorRT + GPU (marker ``tensorrt``; skipped where either is missing).

Run on the target: ``python -m pytest -m tensorrt tests/export/test_tensorrt_engine.py``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cloudlulc_edge.errors import EngineCompatibilityError
from cloudlulc_edge.export import export_onnx, input_shapes
from cloudlulc_edge.export.engine_builder import EngineBuildOptions, build_engine
from cloudlulc_edge.models import create_model
from cloudlulc_edge.models.loading import ModelIdentity

pytestmark = pytest.mark.tensorrt
trt = pytest.importorskip(
    "tensorrt", reason="TensorRT is not importable (install the 'tensorrt' extra on a GPU machine)"
)
if not torch.cuda.is_available():
    pytest.skip("TensorRT engines need a CUDA GPU", allow_module_level=True)

TILE = 64


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from cloudlulc_edge.export.precision import convert_fp16

    out = tmp_path_factory.mktemp("trt")
    model = create_model("cloudlulc_edge").eval()
    fp32 = export_onnx(model, out / "model_fp32.onnx", tile=TILE, max_batch=8)
    return {"dir": out, "fp32": fp32, "fp16": convert_fp16(fp32, out / "model_fp16.onnx"), "model": model}


def _ort(path, x):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, x)[0]


def _inputs(batch):
    rng = np.random.default_rng(batch)
    return {k: rng.random(s, dtype=np.float32) for k, s in input_shapes(batch, TILE).items()}


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_matches_onnxruntime(exported, precision):
    from cloudlulc_edge.backends.tensorrt_backend import TensorRTBackend

    options = EngineBuildOptions(modes=("throughput",), batch=4, max_batch=8, workspace_mib=512)
    artifact = build_engine(exported[precision], exported["dir"] / "engines", TILE, precision, options=options)
    backend = TensorRTBackend(artifact.engine, ModelIdentity("cloudlulc_edge", "u", "u", TILE))
    for batch in (1, 3):
        x = _inputs(batch)
        ref = _ort(exported["fp32"], x)
        out = backend.logits(x).cpu().numpy()
        if precision == "fp32":
            assert np.abs(out - ref).max() <= 1e-3
        else:
            assert (out.argmax(1) == ref.argmax(1)).mean() >= 0.99
    again = build_engine(exported[precision], exported["dir"] / "engines", TILE, precision, options=options)
    assert again.engine == artifact.engine and again.build_s == 0.0  # re-run reuses the keyed engine


def test_engine_with_foreign_key_is_refused(exported):
    from cloudlulc_edge.export.engine_builder import load_engine

    artifact = build_engine(exported["fp32"], exported["dir"] / "engines", TILE, "fp32")
    key_path = artifact.directory / "key.json"
    key = json.loads(key_path.read_text())
    key["system"]["gpu"] = "Orin"
    key_path.write_text(json.dumps(key))
    with pytest.raises(EngineCompatibilityError, match="gpu"):
        load_engine(artifact.engine)


def test_plugin_engine_matches_standard_graph(exported):
    from cloudlulc_edge.backends.tensorrt_backend import TensorRTBackend
    from cloudlulc_edge.export.plugin_ptx import write_plugin_ptx
    from cloudlulc_edge.export.trt_plugins import aot_plugins_supported
    from cloudlulc_edge.kernels.aot import known_targets

    if not aot_plugins_supported(trt.__version__):
        pytest.skip(f"TensorRT {trt.__version__} has no AOT plugins")
    out = exported["dir"]
    plugin = export_onnx(exported["model"], out / "model_plugin_fp32.onnx", "plugin", tile=TILE, max_batch=8)
    write_plugin_ptx(plugin, out / "plugins", known_targets())
    artifact = build_engine(plugin, out / "engines", TILE, "fp32", "plugin", plugin_ptx_dir=out / "plugins")
    backend = TensorRTBackend(artifact.engine, ModelIdentity("cloudlulc_edge", "u", "u", TILE))
    x = _inputs(2)
    assert np.abs(backend.logits(x).cpu().numpy() - _ort(exported["fp32"], x)).max() <= 1e-3
