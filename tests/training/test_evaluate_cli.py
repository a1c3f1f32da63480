"""`train` and `evaluate` from the command line on the generated fixture; reports read back."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from cloudlulc_edge.cli import app


def test_train_then_evaluate_writes_json_markdown_and_figures(data_root, tmp_path):
    config = tmp_path / "train.toml"
    config.write_text(f'[train]\ndata_root = "{data_root}"\noutput_dir = "{tmp_path / "run"}"\nvariant = "test_tiny"\n'
                      "epochs = 1\nbatch_size = 4\nwarmup_iters = 1\n")  # fmt: skip
    result = CliRunner().invoke(app, ["train", str(config), "--set", "lr=0.001"])
    assert result.exit_code == 0, result.output
    assert "epoch 1: loss" in result.output and (tmp_path / "run" / "best" / "model_card.json").is_file()
    out = tmp_path / "eval"
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "run" / "best"), str(data_root), "--split", "test",
                                      "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((out / "metrics.json").read_text())
    assert report["split"] == "test" and report["samples"] == 2
    overall = report["overall"]
    assert overall["pixels"] == 2 * 32 * 30  # the 2-column nodata strip is ignored
    assert len(overall["iou"]) == 6 and 0.0 <= overall["oa"] <= 1.0
    assert sum(m["samples"] for m in report["strata"].values()) == 2
    assert sum(m["pixels"] for m in report["strata"].values()) == overall["pixels"]
    markdown = (out / "metrics.md").read_text()
    assert "| Water |" in markdown and "86.60" in markdown and "| >70% |" in markdown
    for figure in ("per_class.png", "confusion.png", "cloud_bins.png"):
        assert (out / figure).read_bytes().startswith(b"\x89PNG")
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "run" / "best"), str(data_root), "--inputs", "s1",
                                      "--out", str(tmp_path / "eval_s1")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "eval_s1" / "metrics.json").read_text())["inputs"] == "s1"


def test_train_and_evaluate_usage_errors(data_root, tmp_path):
    result = CliRunner().invoke(app, ["train", "--set", "epochs=0", "--set", f"data_root={data_root}"])
    assert result.exit_code == 2 and "epochs" in result.output
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "nope"), str(data_root)])
    assert result.exit_code == 2
