"""Nothing is written outside OUTPUT and no map is lost or merged: planted links, path-like ids, duplicates, full disks.

Each case runs `map`/`run` on the committed one-pair BigEarthNet fixture and then checks that the
files outside OUTPUT are byte-for-byte what they were.
"""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cloudlulc_edge.cli import app
from cloudlulc_edge.errors import EXIT_ALL_FAILED, EXIT_USAGE
from cloudlulc_edge.runner import RunReport

FIXTURE = Path(__file__).resolve().parent / "data" / "sentinel" / "bigearthnet"
SCENE = "S2A_MSIL2A_20170613T101031_0_0"
FAST = ["--variant", "test_tiny", "--allow-untrained", "--tile", "64", "--overlap", "16", "--s2-offset", "0",
        "--s2-quantification", "10000", "-q"]  # fmt: skip


def _map(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(input folder, output folder, an operator's file outside OUTPUT)."""
    root = tmp_path / "in"
    shutil.copytree(FIXTURE, root)
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "operator" / "precious.txt"
    victim.parent.mkdir()
    victim.write_text("an operator's file\n")
    return root, out, victim


def _untouched(victim: Path) -> None:
    assert victim.read_text() == "an operator's file\n"
    assert sorted(p.name for p in victim.parent.iterdir()) == ["precious.txt"], "nothing written beside it"


def test_a_planted_lock_symlink_is_refused_not_followed(layout):
    root, out, victim = layout
    (out / f".{SCENE}_lulc.lock").symlink_to(victim)
    result = _map("map", root, out, *FAST)
    assert result.exit_code == EXIT_ALL_FAILED
    report = json.loads(next((out / "reports").glob("*.json")).read_text())
    assert "lock path is a symbolic link" in report["scenes"][0]["error"]
    _untouched(victim)


@pytest.mark.parametrize("planted", [".{scene}_lulc.work", ".{scene}_lulc.partial.tif", ".{scene}_lulc.json.tmp"])
def test_planted_temporary_links_are_removed_and_never_written_through(layout, planted):
    root, out, victim = layout
    link = out / planted.format(scene=SCENE)
    link.symlink_to(victim.parent if planted.endswith(".work") else victim)
    result = _map("map", root, out, *FAST)
    assert result.exit_code == 0, result.output
    assert (out / f"{SCENE}_lulc.tif").is_file() and not link.is_symlink()
    _untouched(victim)


def test_a_map_path_that_is_a_link_is_refused_with_and_without_resume(layout):
    root, out, victim = layout
    (out / f"{SCENE}_lulc.tif").symlink_to(victim)
    result = _map("map", root, out, *FAST)
    assert result.exit_code == EXIT_ALL_FAILED
    assert "map path is a symbolic link" in json.loads(next((out / "reports").glob("*.json")).read_text())[
        "scenes"][0]["error"]  # fmt: skip
    _untouched(victim)


@pytest.mark.parametrize("product_id", ["../escaped", "/tmp/absolute", "a\nb", ".hidden", "x" * 300, "a/../../b"])
def test_path_like_ids_in_a_plan_never_become_paths(layout, tmp_path, product_id):
    root, out, victim = layout
    plan = tmp_path / "plan.json"
    assert _map("plan", root, plan).exit_code == 0
    doc = json.loads(plan.read_text())
    doc["pairs"][0]["s2"]["product_id"] = product_id
    plan.write_text(json.dumps(doc))
    result = _map("run", plan, out, "--input-root", root, *FAST)
    assert result.exit_code == EXIT_ALL_FAILED, result.output
    (scene,) = json.loads(next((out / "reports").glob("*.json")).read_text())["scenes"]
    assert "cannot name a map file" in scene["error"]
    written = {p for p in tmp_path.rglob("*") if p.is_file()} - {p for p in root.rglob("*")} - {plan, victim}
    assert all(out in p.parents for p in written), sorted(written)
    _untouched(victim)


def test_two_products_with_one_id_are_never_merged(layout):
    root, out, _ = layout
    shutil.copytree(root / "S2", root / "copy" / "S2")  # a second scene of the same name elsewhere
    result = _map("map", root, out, *FAST)
    assert result.exit_code == 0, result.output
    report = json.loads(next((out / "reports").glob("*.json")).read_text())
    assert report["counts"] == {"done": 1}
    (dup,) = [s for s in report["inputs_skipped"] if "same id" in s["reason"]]
    assert "copy" in dup["path"] and str(root / "S2" / SCENE) in dup["reason"]


def test_a_plan_whose_entries_share_a_map_name_is_refused(layout, tmp_path):
    root, out, _ = layout
    plan = tmp_path / "plan.json"
    assert _map("plan", root, plan).exit_code == 0
    doc = json.loads(plan.read_text())
    doc["pairs"].append(doc["pairs"][0])
    plan.write_text(json.dumps(doc))
    result = _map("run", plan, out, "--input-root", root, *FAST)
    assert result.exit_code == EXIT_USAGE and "share a map name" in result.output


def test_a_full_disk_at_report_time_keeps_the_maps_and_logs_the_report(layout, monkeypatch):
    root, out, _ = layout

    def disk_full(self, directory):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(RunReport, "write", disk_full)
    result = _map("map", root, out, *FAST)
    assert result.exit_code == 0, result.output
    assert "run report could NOT be written" in result.output
    assert "No space left on device" in result.output and '"counts"' in result.output  # the report, logged
    assert (out / f"{SCENE}_lulc.tif").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no lock or temporary left"


def test_a_reports_folder_that_is_a_link_is_not_written_through(layout):
    root, out, victim = layout
    (out / "reports").symlink_to(victim.parent, target_is_directory=True)
    result = _map("map", root, out, *FAST)
    assert result.exit_code == 0 and "could NOT be written" in result.output
    _untouched(victim)
