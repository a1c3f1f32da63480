"""The fused-kernel benchmark's analytic part (what runs without a GPU)."""

from __future__ import annotations

import torch

from cloudlulc_edge.bench import kernel_latency as bench


def test_norm_gate_fused_bytes_are_inputs_once_plus_output_once():
    shape, dtype = (2, 16, 32, 32), torch.float16
    call = bench.FusedCall(
        "cloudlulc.norm_gate.default",
        ((shape, dtype), (shape, dtype), ((16,), torch.float32), ((16,), torch.float32), None, 1e-5),
    )
    moved = bench.call_bytes(call)
    plane = 2 * 16 * 32 * 32 * 2  # one fp16 (B, C, H, W) tensor
    assert moved["fused_bytes"] == 3 * plane + 2 * 16 * 4  # x, guide, output + γ, β
    assert moved["eager_ops"] > 5 and moved["eager_bytes"] > 4 * moved["fused_bytes"]


def test_model_calls_record_every_fused_site_of_a_forward():
    calls = bench.model_calls("test_tiny", batch=2, tile=64, dtype=torch.float16)
    ops = {c.op for c in calls}
    assert ops == {
        "cloudlulc.reliability_gate.default",
        "cloudlulc.norm_gate.default",
        "cloudlulc.channel_softmax_gate.default",
    }
    # test_tiny: O = 2 orders in one block → 2 SHOI steps and 2 CHOI gates at the 16² fusion grid
    assert sum(n for c, n in calls.items() if c.op.endswith("norm_gate.default")) == 2
    assert all(c.args[0][0][-2:] == (16, 16) for c in calls)


def test_run_and_render_without_cuda_have_no_timing_columns():
    result = bench.run(["test_tiny"], [1], 64)
    text = bench.render(result)
    assert "fused call" in text and "traffic saved" in text
    assert all(m["model_bytes_fused"] < m["model_bytes_eager"] for m in result["models"])
    if not torch.cuda.is_available():
        assert "Triton ms" not in text and "triton_fwd_ms" not in result["calls"][0]
