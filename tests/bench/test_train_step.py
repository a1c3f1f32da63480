"""The training-step benchmark: a real optimiser step per variant, and labelled FLOP-based GPU estimates."""

from __future__ import annotations

import pytest

from cloudlulc_edge.bench.train_step import RECIPE_SAMPLES, estimate_gpu_seconds, measure_step, render, run


@pytest.mark.parametrize("variant", ["test_tiny", "unet_s2"])
def test_a_measured_step_and_its_run_cost(variant):
    row = measure_step(variant, batch=1, tile=32, device="cpu", amp="none", steps=2, warmup=1)
    assert row["variant"] == variant and row["step_s"] > 0 and row["train_gflop_per_sample"] > 0
    assert row["train_gb_per_sample"] > 0
    assert row["recipe_hours"] == pytest.approx(
        RECIPE_SAMPLES * row["step_s"] / 3600, abs=0.07
    )  # batch 1; both rounded
    assert "peak_gib" not in row  # CUDA only


def test_cpu_runs_carry_gpu_estimates_labelled_as_such():
    result = run(["test_tiny"], batch=1, tile=32, device="cpu", amp="bf16", steps=1)
    (row,) = result["rows"]
    gflop, gbytes = 8 * row["train_gflop_per_sample"], 8 * row["train_gb_per_sample"]  # a batch-8 step
    fast, slow = estimate_gpu_seconds(gflop, gbytes, "H100 SXM")
    assert row["estimate_H100 SXM"]["step_s"] == [round(fast, 3), round(slow, 3)]
    # The fast end is the roofline bound, the slow end both costs at the low utilisations.
    assert fast == pytest.approx(max(gflop * 1e9 / (0.3 * 989e12), gbytes * 1e9 / (0.8 * 3.35e12)))
    assert slow == pytest.approx(gflop * 1e9 / (0.1 * 989e12) + gbytes * 1e9 / (0.5 * 3.35e12))
    text = render(result)
    assert "Estimate, not a measurement" in text and "H100 SXM" in text and "| test_tiny | 1 | 32 | bf16 |" in text
