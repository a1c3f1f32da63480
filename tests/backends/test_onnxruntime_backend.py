"""The ONNX Runtime backend maps real scenes like the PyTorch backend does."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

pytest.importorskip("onnxruntime", reason="needs the 'export' extra")

from cloudlulc_edge.backends import TorchBackend
from cloudlulc_edge.backends.onnxruntime_backend import OnnxRuntimeBackend, execution_providers
from cloudlulc_edge.errors import ExportError
from cloudlulc_edge.export import export_onnx
from cloudlulc_edge.io.products import scan
from cloudlulc_edge.models import create_model
from cloudlulc_edge.models.loading import ModelIdentity
from cloudlulc_edge.pairing import pair_products
from cloudlulc_edge.pipeline import MapOptions, map_plan

pytestmark = [pytest.mark.export, pytest.mark.filterwarnings("ignore:.*assuming offset 0:UserWarning")]


def test_onnxruntime_maps_match_pytorch_maps(bigearthnet_v1, tmp_path):
    model = create_model("test_tiny").eval()
    identity = ModelIdentity("test_tiny", "untrained", "untrained", 64)
    onnx_path = export_onnx(model, tmp_path / "m.onnx", tile=64, max_batch=8)
    plan = pair_products(scan(bigearthnet_v1).products)
    options = MapOptions(tile=64, overlap=16, batch_size=4, stac=False)
    ort_reports = map_plan(plan.pairs, OnnxRuntimeBackend(onnx_path, identity), tmp_path / "ort", options)
    torch_reports = map_plan(plan.pairs, TorchBackend(model, identity), tmp_path / "torch", options)
    assert [r.status for r in ort_reports] == ["done"] * 6
    for a, b in zip(ort_reports, torch_reports, strict=True):
        with rasterio.open(a.output) as ra, rasterio.open(b.output) as rb:
            map_a, map_b = ra.read(1), rb.read(1)
        # Same classes except at ties of near-equal probabilities (fp32 reassociation).
        assert (map_a == map_b).mean() >= 0.999, a.name


def test_backend_refuses_other_tile_sizes_and_missing_files(tmp_path):
    identity = ModelIdentity("test_tiny", "untrained", "untrained", 32)
    backend = OnnxRuntimeBackend(export_onnx(create_model("test_tiny"), tmp_path / "m.onnx", tile=32), identity)
    assert backend.tile == 32 and backend.num_classes == 6
    from cloudlulc_edge.tiling import TileBatch

    batch = TileBatch(np.zeros((1, 12, 64, 64), np.float32), np.ones((1, 64, 64), bool), None, None, [0], [0])
    with pytest.raises(ValueError, match="32² tiles"):
        backend.predict(batch)
    small = TileBatch(np.zeros((2, 12, 32, 32), np.float32), np.ones((2, 32, 32), bool), None, None, [0, 0], [0, 32])
    probs = backend.predict(small)  # S2-only tiles: zero SAR + zero SAR validity
    assert probs.shape == (2, 6, 32, 32) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    with pytest.raises(ExportError, match="not found"):
        OnnxRuntimeBackend(tmp_path / "absent.onnx", identity)
    for bad in ("tpu", "cuda:x", "cudax"):
        with pytest.raises(ExportError, match="unknown onnxruntime device"):
            execution_providers(bad)
    assert execution_providers("cpu") == ["CPUExecutionProvider"]


def test_s2_only_tiles_match_the_models_missing_sar_path(tmp_path):
    """Zero SAR with zero SAR validity in the graph equals the model's s1=None embeddings."""
    import torch

    model = create_model("test_tiny").eval()
    backend = OnnxRuntimeBackend(export_onnx(model, tmp_path / "m.onnx", tile=32),
                                 ModelIdentity("test_tiny", "u", "u", 32))  # fmt: skip
    rng = np.random.default_rng(0)
    s2 = rng.random((2, 12, 32, 32), dtype=np.float32)
    from cloudlulc_edge.tiling import TileBatch

    probs = backend.predict(TileBatch(s2, np.ones((2, 32, 32), bool), None, None, [0, 0], [0, 0]))
    with torch.no_grad():
        ref = torch.softmax(model(torch.from_numpy(s2), None, torch.ones(2, 1, 32, 32)), 1).numpy()
    assert np.abs(probs - ref).max() < 1e-5
