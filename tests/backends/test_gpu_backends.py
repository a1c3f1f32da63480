"""onnxruntime CUDA provider against the CPU provider (marker ``gpu``; needs onnxruntime-gpu and a GPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.gpu
ort = pytest.importorskip("onnxruntime", reason="needs onnxruntime-gpu")
if not torch.cuda.is_available() or "CUDAExecutionProvider" not in ort.get_available_providers():
    pytest.skip("needs a CUDA GPU and onnxruntime-gpu", allow_module_level=True)


def test_cuda_provider_matches_cpu(tmp_path):
    from cloudlulc_edge.backends.onnxruntime_backend import OnnxRuntimeBackend
    from cloudlulc_edge.export import export_onnx, input_shapes
    from cloudlulc_edge.models import create_model
    from cloudlulc_edge.models.loading import ModelIdentity

    path = export_onnx(create_model("cloudlulc_edge"), tmp_path / "m.onnx", tile=64, max_batch=8)
    identity = ModelIdentity("cloudlulc_edge", "u", "u", 64)
    rng = np.random.default_rng(0)
    x = {k: rng.random(s, dtype=np.float32) for k, s in input_shapes(3, 64).items()}
    cpu = OnnxRuntimeBackend(path, identity, "cpu").logits(x)
    gpu = OnnxRuntimeBackend(path, identity, "cuda").logits(x)
    assert np.abs(cpu - gpu).max() <= 1e-3
