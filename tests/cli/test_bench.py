"""`bench model` and `bench scene` write JSON (with the environment), markdown and PNG."""

from __future__ import annotations

import json

import pytest
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
