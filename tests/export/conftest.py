"""Shared exports for the export tests: each graph is exported once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cloudlulc_edge.models import create_model

pytest.importorskip("onnx", reason="the export tests need the 'export' extra (onnx, onnxruntime, nvidia-modelopt)")
pytest.importorskip("onnxruntime", reason="the export tests need the 'export' extra")

#: Tile of the test exports (the model's H/16 grid must be ≥ 4 for the transformer).
TILE = 64


@pytest.fixture(scope="session")
def edge_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("cloudlulc_edge").eval()


@pytest.fixture(scope="session")
def edge_onnx(edge_model, tmp_path_factory) -> dict[str, Path]:
    """The edge variant's standard and plugin graphs at TILE."""
    from cloudlulc_edge.export import export_onnx

    out = tmp_path_factory.mktemp("edge_onnx")
    return {
        flavour: export_onnx(edge_model, out / f"{flavour}.onnx", flavour, tile=TILE, max_batch=8)
        for flavour in ("standard", "plugin")
    }
