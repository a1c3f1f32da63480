"""`plan`, `map` and `run --shard` end to end on the real BigEarthNet pairs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate
from typer.testing import CliRunner

from cloudlulc_edge.backends.torch_backend import TorchBackend
from cloudlulc_edge.cli import app
from cloudlulc_edge.runner import EXIT_PARTIAL, EXIT_USAGE, ShardError, parse_shard

pytestmark = pytest.mark.filterwarnings("ignore:.*assuming offset 0:UserWarning")
FAST = ["--variant", "test_tiny", "--allow-untrained", "--tile", "64", "--overlap", "16", "--quiet"]


@pytest.fixture
def scenes(bigearthnet_v1: Path, tmp_path: Path) -> Path:
    root = tmp_path / "in"
    shutil.copytree(bigearthnet_v1, root)
    return root


def _invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def _report(out: Path) -> dict:
    (path,) = sorted((out / "reports").glob("*.json"))[-1:]
    return json.loads(path.read_text())


def test_map_writes_valid_cogs_and_a_report(scenes, tmp_path):
    out = tmp_path / "out"
    result = _invoke("map", scenes, out, *FAST)
    assert result.exit_code == 0, result.output
    maps = sorted(out.glob("*_lulc.tif"))
    assert len(maps) == 6
    for path in maps:
        assert cog_validate(str(path))[0]
        with rasterio.open(path) as ds:
            assert ds.tags()["MODEL_NAME"] == "test_tiny"
    report = _report(out)
    assert report["counts"] == {"done": 6} and report["exit_code"] == 0
    scene = report["scenes"][0]
    assert {"status", "dt_days", "cloud_pct", "s1_coverage_pct", "stages", "output", "error"} <= set(scene)
    assert set(scene["stages"]) >= {"open", "read", "predict", "blend_write", "finalize"}
    assert "6 done, 0 skipped, 0 failed, 0 input(s) not usable" in result.output


def test_interrupted_run_resumes_without_redoing_finished_scenes(scenes, tmp_path, monkeypatch):
    out = tmp_path / "out"
    calls = {"n": 0}
    original = TorchBackend.predict

    def interrupt_in_second_scene(self, batch):
        calls["n"] += 1
        if calls["n"] == 4:  # the first scene takes 3 batches of ≤ 4 of its 9 tiles
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(TorchBackend, "predict", interrupt_in_second_scene)
    result = _invoke("map", scenes, out, *FAST)
    assert result.exit_code == 130  # Ctrl-C: the conventional 128 + SIGINT
    assert _report(out)["counts"] == {"done": 1, "interrupted": 1, "not_started": 4}
    first = sorted(out.glob("*_lulc.tif"))
    assert len(first) == 1, "exactly the scene finished before the interruption"
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no partial outputs"
    mtime = first[0].stat().st_mtime_ns
    monkeypatch.setattr(TorchBackend, "predict", original)
    result = _invoke("map", scenes, out, *FAST)
    assert result.exit_code == 0, result.output
    report = _report(out)
    assert report["counts"] == {"skipped": 1, "done": 5}
    assert first[0].stat().st_mtime_ns == mtime  # not redone
    assert len(list(out.glob("*_lulc.tif"))) == 6


def test_three_shards_cover_every_pair_exactly_once(scenes, tmp_path):
    plan = tmp_path / "plan.json"
    assert _invoke("plan", scenes, plan).exit_code == 0
    names = {p["name"] for p in json.loads(plan.read_text())["pairs"]}
    out = tmp_path / "out"
    done = []
    for i in range(3):
        result = _invoke("run", plan, out, "--shard", f"{i}/3", "--input-root", scenes, *FAST)
        assert result.exit_code == 0, result.output
        report = json.loads(next((out / "reports").glob(f"*-shard-{i}-of-3.json")).read_text())
        assert report["shard"] == [i, 3]
        done += [s["name"] for s in report["scenes"] if s["status"] == "done"]
    assert sorted(done) == sorted(names) and len(done) == 6


def test_shard_index_from_the_scheduler(scenes, tmp_path, monkeypatch):
    plan = tmp_path / "plan.json"
    _invoke("plan", scenes, plan)
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "1")
    result = _invoke("run", plan, tmp_path / "out", "--shard", "auto/3", "--input-root", scenes, "--dry-run")
    assert result.exit_code == 0 and "shard 1/3" in result.output
    assert parse_shard("auto/4", {"SLURM_ARRAY_TASK_ID": "3"}) == (3, 4)
    assert parse_shard(None) is None
    for bad in ("3/3", "x/2", "1-2", "0/0"):
        with pytest.raises(ShardError):
            parse_shard(bad, {})
    with pytest.raises(ShardError, match="JOB_COMPLETION_INDEX"):
        parse_shard("auto/2", {})


def test_a_broken_scene_fails_alone_with_a_partial_exit_code(scenes, tmp_path):
    band = next(scenes.glob("BigEarthNet-S2-Example/*/*_B04.tif"))
    band.write_bytes(band.read_bytes()[: len(band.read_bytes()) // 2])  # header intact, pixels cut off
    out = tmp_path / "out"
    result = _invoke("map", scenes, out, *FAST)
    assert result.exit_code == EXIT_PARTIAL, result.output
    report = _report(out)
    assert report["counts"].get("done") == 5 and report["exit_code"] == EXIT_PARTIAL
    (failed,) = [s for s in report["scenes"] if s["status"] == "failed"]
    assert failed["error"] and failed["output"] is None


def test_jsonl_log_is_one_event_per_line(scenes, tmp_path):
    result = _invoke("map", scenes, tmp_path / "out", *FAST[:-1], "--log-format", "jsonl")
    assert result.exit_code == 0
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end"
    assert kinds.count("scene_end") == 6 and kinds.count("scene_start") == 6
    assert events[-1]["counts"] == {"done": 6}


def test_unusable_inputs_are_listed_in_the_report(scenes, tmp_path):
    (scenes / "notes.txt").write_text("not a scene")
    out = tmp_path / "out"
    result = _invoke("map", scenes, out, *FAST)
    assert result.exit_code == 0, result.output
    skipped = _report(out)["inputs_skipped"]
    assert [Path(s["path"]).name for s in skipped] == ["notes.txt"] and skipped[0]["reason"]


def test_dry_run_maps_nothing(scenes, tmp_path):
    result = _invoke("map", scenes, tmp_path / "out", "--dry-run")
    assert result.exit_code == 0 and "6 pair(s) → 6 map" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "onnxruntime"], "needs --model"),
        (["--backend", "cuda-magic"], "--backend"),  # an enum: Typer names the option and the choices
        (["--variant", "nope"], "unknown variant"),
        (["--class-scheme", "corine"], "class-scheme"),
        (["--log-format", "xml"], "log-format"),
        (["--tile", "64", "--overlap", "64"], "overlap"),
    ],
)
def test_usage_errors_exit_2_with_the_reason(scenes, tmp_path, args, message):
    result = _invoke("map", scenes, tmp_path / "out", *args)
    assert result.exit_code == EXIT_USAGE, result.output
    assert message in result.output


def test_run_reads_only_inside_an_input_root_of_its_own_command_line(scenes, tmp_path):
    plan = tmp_path / "plan.json"
    assert _invoke("plan", scenes, plan).exit_code == 0
    result = _invoke("run", plan, tmp_path / "out", *FAST)
    assert result.exit_code == EXIT_USAGE and "add --input-root DIR" in result.output
    assert f"made from {scenes}" in result.output.replace("\n", "")  # the plan's own root: named, not trusted
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*_lulc.tif"))
    # A plan whose entries point elsewhere is refused whatever root it records.
    doc = json.loads(plan.read_text())
    doc["options"]["input_root"] = "/"
    plan.write_text(json.dumps(doc))
    result = _invoke("run", plan, tmp_path / "out", "--input-root", tmp_path / "other", *FAST)
    assert result.exit_code == EXIT_USAGE and "outside the allowed input root" in result.output


def test_missing_inputs_are_usage_errors(tmp_path):
    result = _invoke("map", tmp_path / "absent", tmp_path / "out")
    assert result.exit_code == EXIT_USAGE and "not a directory" in result.output
    (tmp_path / "plan.json").write_text("{}")
    result = _invoke("run", tmp_path / "plan.json", tmp_path / "out")
    assert result.exit_code == EXIT_USAGE and "plan" in result.output


def test_onnxruntime_backend_maps_from_an_onnx_file(scenes, tmp_path):
    pytest.importorskip("onnxruntime")
    from cloudlulc_edge.export import export_onnx
    from cloudlulc_edge.models import create_model

    onnx_path = export_onnx(create_model("test_tiny"), tmp_path / "m.onnx", tile=64, max_batch=8)
    out = tmp_path / "out"
    result = _invoke("map", scenes, out, "--backend", "onnxruntime", "--model", onnx_path, "--overlap", "16", "-q")
    assert result.exit_code == 0, result.output
    report = _report(out)
    assert report["counts"] == {"done": 6} and report["options"]["tile"] == 64  # the graph's tile
    assert report["backend"]["kind"] == "onnxruntime" and report["backend"]["executor"] == "local"
    assert report["backend"]["model"]["tile"] == 64


def test_a_baseline_checkpoint_maps_through_the_same_pipeline(scenes, tmp_path):
    from cloudlulc_edge.models import create_model
    from cloudlulc_edge.models.checkpoint import save_checkpoint

    ckpt = save_checkpoint(create_model("unet_early", width=4, depth=2).eval(), tmp_path / "ckpt")
    out = tmp_path / "out"
    result = _invoke("map", scenes, out, "--checkpoint", ckpt, "--tile", "64", "--overlap", "16", "-q")
    assert result.exit_code == 0, result.output
    maps = sorted(out.glob("*_lulc.tif"))
    assert len(maps) == 6 and _report(out)["counts"] == {"done": 6}
    with rasterio.open(maps[0]) as ds:
        assert ds.tags()["MODEL_NAME"] == "unet_early"


@pytest.mark.parametrize("variant", ["test_tiny", "cloudlulc_net"])
def test_a_variant_without_trained_weights_is_refused_unless_allowed(variant, tmp_path):
    fixtures = Path(__file__).resolve().parents[1] / "data" / "sentinel" / "bigearthnet"
    result = _invoke("map", fixtures, tmp_path / "out", "--variant", variant, "--quiet")
    assert result.exit_code == EXIT_USAGE
    assert "no trained weights" in " ".join(result.output.split()) and "--allow-untrained" in result.output
    assert not list((tmp_path / "out").glob("*_lulc.tif"))
    allowed = _invoke("map", fixtures, tmp_path / "ok", "--variant", variant, "--allow-untrained", "--tile", "64",
                      "--overlap", "16", "--quiet", "--s2-offset", "0", "--s2-quantification", "10000")  # fmt: skip
    assert allowed.exit_code == 0, allowed.output
    (path,) = (tmp_path / "ok").glob("*_lulc.tif")
    with rasterio.open(path) as ds:
        assert ds.tags()["MODEL_VERSION"] == "untrained" and ds.tags()["MODEL_SHA256"] == "untrained"
