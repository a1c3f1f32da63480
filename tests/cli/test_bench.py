"""`bench model` and `bench scene` write JSON (with the environment), markdown and PNG."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from cloudlulc_edge.cli import app

pytest.importorskip("matplotlib", reason="PNG plots need the 'bench' extra")
PNG = b"\x89PNG\r\n\x1a\n"


def test_bench_model_writes_results(tmp_path):
    pytest.importorskip("onnxruntime")
    args = ["bench", "model", "--variant", "test_tiny", "--backend", "torch", "--backend", "onnxruntime",
            "--precision", "fp32", "--batch", "1", "--batch", "2", "--tile", "64", "--warmup", "0", "--iters", "2",
            "--out", str(tmp_path)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "bench_model.json").read_text())
    assert {(r["backend"], r["batch"]) for r in data["rows"]} == {
        ("torch eager (reference ops)", 1), ("torch eager (reference ops)", 2),
        ("onnxruntime CPU", 1), ("onnxruntime CPU", 2),
    }  # fmt: skip
    for row in data["rows"]:
        assert 0 < row["p50"] <= row["p90"] <= row["p99"] and row["tiles_per_s"] > 0
        assert row["gflop_per_tile"] > 0
        assert row["gflops_per_s"] == pytest.approx(row["tiles_per_s"] * row["gflop_per_tile"], rel=0.02, abs=0.2)
        assert 0 < row["pct_of_peak"] <= 100
    peak = data["cpu_peak"]
    assert peak["sgemm_gflops"] == max(v for v in peak["sgemm"].values() if v is not None) > 0
    assert peak["flags_nominal"]["gflops"] > 0
    assert {"cpu", "torch", "python", "cuda"} <= set(data["environment"])
    assert "not GPU performance" in data["timer"]
    assert "| backend | precision | batch |" in (tmp_path / "bench_model.md").read_text()
    assert (tmp_path / "bench_model.png").read_bytes().startswith(PNG)


def test_bench_scene_writes_results(tmp_path):
    args = ["bench", "scene", "--size", "600", "--variant", "test_tiny", "--workdir", str(tmp_path / "work"),
            "--out", str(tmp_path / "out")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (row,) = json.loads((tmp_path / "out" / "bench_scene.json").read_text())["results"]
    assert row["status"] == "done" and row["scenes_per_hour"] > 0 and row["io_overlap"] > 0
    assert {"read", "predict", "blend_write", "finalize"} <= set(row["stages"]) and row["peak_rss_mib"] > 0
    assert "scenes/hour" in (tmp_path / "out" / "bench_scene.md").read_text()
    assert (tmp_path / "out" / "bench_scene.png").read_bytes().startswith(PNG)


def test_bench_rejects_unknown_backends(tmp_path):
    result = CliRunner().invoke(app, ["bench", "model", "--backend", "tpu", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "unknown backend" in result.output


def test_a_rate_above_the_measured_peak_is_refused():
    from cloudlulc_edge.bench.cpu_peak import flags_peak_gflops
    from cloudlulc_edge.bench.model_latency import PeakExceededError, check_rates

    # The 2026-11-24 table's 8.78 tiles/s × 24.2 GFLOP: honest against this CPU's MLAS SGEMM (449 GFLOP/s),
    # impossible against a peak of 166 (what torch's MKL reached on the machine the issue measured).
    row = {"backend": "onnxruntime CPU", "precision": "fp32", "batch": 8, "gflops_per_s": round(8.78 * 24.2, 1)}
    check_rates([row], {"sgemm_gflops": 449.0})
    with pytest.raises(PeakExceededError, match=r"212\.5 GFLOP/s"):
        check_rates([row], {"sgemm_gflops": 166.0})
    # Zen 3 (AVX2, 2 FMA pipes) at 2.9 GHz: 8 lanes × 2 × 2 × 2 cores × 2.9 = 185.6; AVX-512 doubles the lanes.
    assert flags_peak_gflops({"avx2", "fma"}, 2, 2.9)["gflops"] == pytest.approx(185.6)
    assert flags_peak_gflops({"avx2", "fma", "avx512f"}, 2, 2.9)["lanes"] == 16


def test_bench_gpu_dry_run_checks_every_steps_wiring(tmp_path):
    result = CliRunner().invoke(app, ["bench", "gpu", "--dry-run", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "gpu_check.json").read_text())
    assert summary["dry_run"] is True
    assert [r["step"] for r in summary["steps"]] == ["gpu_tests", "kernels", "backends", "train_step", "scene"]
    assert "gpu test(s)" in summary["steps"][0]["check"] and int(summary["steps"][0]["check"].split()[1]) > 0
    assert sum(r["budget_s"] for r in summary["steps"]) <= 480


def test_bench_gpu_dry_run_refuses_a_step_whose_arguments_do_not_parse(tmp_path):
    from cloudlulc_edge.bench.gpu_check import Step, check_wiring

    with pytest.raises(SystemExit):
        check_wiring([Step("kernels", "kernel_latency", ("--batches", "eight"), 10)], tmp_path)
    with pytest.raises(RuntimeError, match="over the 480 s"):
        check_wiring([Step("kernels", "kernel_latency", (), 500)], tmp_path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA machine runs the real check instead")
def test_bench_gpu_without_a_gpu_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(app, ["bench", "gpu", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "no CUDA device" in result.output
