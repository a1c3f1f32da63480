"""kill -9 at seeded points of a `map` batch, and two `map` processes on one output folder."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rio_cogeo.cogeo import cog_validate

pytestmark = pytest.mark.filterwarnings("ignore:.*assuming offset 0:UserWarning")
ARGS = [
    "--variant",
    "test_tiny",
    "--allow-untrained",
    "--tile",
    "64",
    "--overlap",
    "16",
    "--batch-size",
    "1",
    "--quiet",
]
KILL_POINTS = 20


def _batch(bigearthnet_v1: Path, root: Path, copies: int) -> Path:
    """The six real pairs, plus renamed copies of their S2 scenes (each pairs with its S1)."""
    shutil.copytree(bigearthnet_v1, root)
    s2_root = root / "BigEarthNet-S2-Example"
    for scene in sorted(s2_root.iterdir()):
        for k in range(1, copies):
            twin = s2_root / f"{scene.name}_copy{k}"
            twin.mkdir()
            for f in scene.iterdir():
                shutil.copy2(f, twin / f.name.replace(scene.name, twin.name))
    return root


def _command(inputs: Path, out: Path) -> list[str]:
    code = "import sys; from cloudlulc_edge.cli import main; sys.argv[0] = 'cloudlulc-edge'; main()"
    return [sys.executable, "-c", code, "map", str(inputs), str(out), *ARGS]


def _maps(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in out.glob("*_lulc.tif")}


def _leftovers(out: Path) -> list[Path]:
    return [p for p in out.iterdir() if p.name.startswith(".")]


def _finish_and_check(inputs: Path, out: Path, scenes: int, env: dict[str, str]) -> None:
    """Re-runs the batch to completion; checks nothing finished is redone and nothing is left over."""
    before = _maps(out) if out.exists() else {}
    final = subprocess.run(_command(inputs, out), capture_output=True, text=True, env=env, check=False)
    assert final.returncode == 0, final.stdout + final.stderr
    after = _maps(out)
    assert len(after) == scenes
    assert all(after[name] == stamp for name, stamp in before.items()), "a finished scene was recomputed"
    assert not _leftovers(out), _leftovers(out)  # no temporary file, lock or work folder remains
    latest = max((out / "reports").glob("map-*.json"))
    statuses = [s["status"] for s in json.loads(latest.read_text())["scenes"]]
    assert statuses.count("done") == scenes - len(before) and statuses.count("skipped") == len(before)


def test_kill_9_at_20_seeded_points_loses_nothing_and_redoes_nothing(bigearthnet_v1, tmp_path):
    inputs = _batch(bigearthnet_v1, tmp_path / "in", copies=3)
    scenes = 18
    out = tmp_path / "out"
    rng = random.Random(20261124)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    landed = rounds = 0
    while landed < KILL_POINTS:
        before = _maps(out) if out.exists() else {}
        proc = subprocess.Popen(_command(inputs, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        time.sleep(rng.uniform(1.5, 5.0))  # interpreter start-up is ≈2 s, then ≈0.3 s per scene here
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            landed += 1
        proc.wait()
        after = _maps(out) if out.exists() else {}
        # Finished maps are never rewritten, and whatever exists is a complete, valid COG.
        assert all(after[name] == stamp for name, stamp in before.items()), "a finished scene was recomputed"
        for name in after:
            assert cog_validate(out / name)[0], name
        if len(after) == scenes:  # this batch is through: check it, then start another round
            _finish_and_check(inputs, out, scenes, env)
            shutil.rmtree(out)
            rounds += 1
    _finish_and_check(inputs, out, scenes, env)
    assert landed >= KILL_POINTS


def test_two_map_processes_on_one_output_folder_write_each_scene_once(bigearthnet_v1, tmp_path):
    inputs = _batch(bigearthnet_v1, tmp_path / "in", copies=2)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    procs = [subprocess.Popen(_command(inputs, out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
             for _ in range(2)]  # fmt: skip
    outputs = [p.communicate(timeout=600)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    reports = [json.loads(p.read_text()) for p in sorted((out / "reports").glob("map-*.json"))]
    assert len(reports) == 2
    done: dict[str, int] = {}
    for report in reports:
        for scene in report["scenes"]:
            if scene["status"] == "done":
                done[scene["name"]] = done.get(scene["name"], 0) + 1
            else:
                assert scene["status"] == "skipped", scene
                assert "being mapped by" in scene["error"] or "map exists" in scene["error"], scene
    assert len(done) == 12 and set(done.values()) == {1}, done  # every scene written exactly once
    assert all(cog_validate(p)[0] for p in out.glob("*_lulc.tif"))
    assert not _leftovers(out)


@pytest.mark.parametrize("errno_name", ["ENOSPC", "EROFS"])
def test_a_full_or_read_only_disk_fails_the_scene_cleanly(bigearthnet_v1, tmp_path, monkeypatch, errno_name):
    """Writing the COG fails as it would on a full (ENOSPC) or read-only (EROFS) output file system."""
    import errno

    import rasterio.shutil
    from typer.testing import CliRunner

    from cloudlulc_edge.cli import app

    def fail(*args, **kwargs):
        raise OSError(getattr(errno, errno_name), os.strerror(getattr(errno, errno_name)))

    monkeypatch.setattr(rasterio.shutil, "copy", fail)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["map", str(bigearthnet_v1), str(out), *ARGS])
    assert result.exit_code == 4, result.output  # every scene failed: the batch cannot proceed
    report = json.loads(max((out / "reports").glob("map-*.json")).read_text())
    assert {s["status"] for s in report["scenes"]} == {"failed"}
    assert all(os.strerror(getattr(errno, errno_name)) in s["error"] for s in report["scenes"])
    assert not list(out.glob("*.tif")) and not _leftovers(out)


def test_an_unwritable_output_folder_is_a_usage_error_before_any_scene_is_read(bigearthnet_v1, tmp_path):
    from typer.testing import CliRunner

    from cloudlulc_edge.cli import app

    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    result = CliRunner().invoke(app, ["map", str(bigearthnet_v1), str(blocked / "maps"), *ARGS])
    assert result.exit_code == 2
    assert "not writable" in result.output and "a-file" in result.output
