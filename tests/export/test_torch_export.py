from __future__ import annotations

import pytest
import torch

from cloudlulc_edge.export import example_inputs, export_program
from cloudlulc_edge.models import create_model

pytestmark = pytest.mark.export


def _targets(program):
    return {str(n.target) for n in program.graph.nodes if n.op == "call_function"}


def test_dynamic_batch_matches_eager():
    model = create_model("test_tiny").eval()
    program = export_program(model, tile=64, max_batch=8)
    for batch in (1, 3, 8):
        s2, s1 = example_inputs(batch, 64, seed=batch)
        with torch.no_grad():
            torch.testing.assert_close(program.module()(s2, s1), model(s2, s1), rtol=1e-5, atol=1e-5)


def test_static_batch_rejects_other_batch():
    program = export_program(create_model("test_tiny"), tile=32, batch=2, dynamic_batch=False)
    with pytest.raises(AssertionError, match="Guard failed"):
        program.module()(*example_inputs(3, 32))


def test_edge_variant_exports_without_fft():
    """The edge variant's spectral term is DFT-as-matmul: no FFT op reaches the graph (TensorRT 10.x)."""
    edge = _targets(export_program(create_model("cloudlulc_edge"), tile=64))
    paper = _targets(export_program(create_model("cloudlulc_net"), tile=64))
    assert not any("fft" in t for t in edge)
    assert any("fft" in t for t in paper)
