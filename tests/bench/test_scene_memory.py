"""The `--max-memory` estimate against the peak RSS the scene benchmark recorded (issue: within 15 %)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloudlulc_edge.pipeline import MapOptions, estimate_scene_memory_mb

RESULTS = Path(__file__).parents[2] / "bench" / "results" / "bench_scene.json"


@pytest.mark.parametrize("row", json.loads(RESULTS.read_text())["results"], ids=lambda row: f"{row['size']}px")
def test_estimate_is_within_15_percent_of_the_recorded_peak_and_errs_high(row: dict[str, float]) -> None:
    recorded = json.loads(RESULTS.read_text())
    assert recorded["model"] == "cloudlulc_edge" and recorded["backend"] == "auto" and recorded["device"] == "cpu"
    options = MapOptions(overlap=int(recorded["overlap"]), batch_size=int(recorded["batch_size"]))
    estimate = estimate_scene_memory_mb(int(row["size"]), options)
    assert row["peak_rss_mib"] <= estimate <= 1.15 * row["peak_rss_mib"]


def test_the_recorded_default_run_meets_the_memory_target() -> None:
    rows = {int(r["size"]): r["peak_rss_mib"] for r in json.loads(RESULTS.read_text())["results"]}
    assert rows[10980] <= 1.5e9 / 2**20  # ≤ 1.5 GB at 10980²
    assert rows[10980] <= 1.2 * rows[5490]  # flat from 5490²
