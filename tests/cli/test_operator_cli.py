"""The CLI as an operator meets it: usage errors before any scene, exit codes and reports that tell the truth.

Each case runs the real command (Typer's CliRunner, not a terminal) on the committed one-pair
BigEarthNet fixture or a copy of it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
from pathlib import Path

import pytest
import rasterio
from typer.testing import CliRunner

from cloudlulc_edge.backends.torch_backend import TorchBackend
from cloudlulc_edge.cli import EXIT_INTERNAL, app, main
from cloudlulc_edge.cli.progress import RunDisplay
from cloudlulc_edge.errors import EXIT_INTERRUPTED, EXIT_NOTHING_TO_MAP, EXIT_USAGE

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "sentinel"
FAST = ["--variant", "test_tiny", "--allow-untrained", "--tile", "64", "--overlap", "16", "--s2-offset", "0",
        "--s2-quantification", "10000"]  # fmt: skip


def _invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def pair_dir(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    shutil.copytree(FIXTURE / "bigearthnet", root)
    return root


def _one_line_error(result) -> str:
    """The output of a usage error: exactly one ``error:`` line and no traceback."""
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert "Traceback" not in result.output, result.output
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, result.output
    return errors[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tile", "500"], "--tile 500 is not a multiple of 16 (the test_tiny model's grid); use 496 or 512"),
        (["--device", "gpu0"], "--device must be cpu, cuda or cuda:N, got 'gpu0'"),
        (
            ["--backend", "tensorrt", "--model", "x.engine"],
            "runs on a CUDA GPU" if importlib.util.find_spec("tensorrt") else "pip install 'cloudlulc-edge[tensorrt]'",
        ),
    ],
)
def test_bad_option_values_are_one_line_usage_errors(pair_dir, tmp_path, args, message):
    result = _invoke("map", pair_dir, tmp_path / "out", *FAST, *args)
    assert result.exit_code == EXIT_USAGE
    assert message in _one_line_error(result)
    assert not (tmp_path / "out").exists(), "refused before anything was written"


def test_a_cuda_device_on_a_machine_without_one_is_a_usage_error(pair_dir, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    result = _invoke("map", pair_dir, tmp_path / "out", *FAST, "--device", "cuda")
    assert result.exit_code == EXIT_USAGE
    assert "sees no CUDA GPU; use --device cpu" in _one_line_error(result)


def test_a_backend_whose_extra_is_not_installed_says_what_to_install(pair_dir, tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real_find_spec(name, *a))  # fmt: skip
    result = _invoke("map", pair_dir, tmp_path / "out", "--backend", "onnxruntime", "--model", tmp_path / "m.onnx")
    assert result.exit_code == EXIT_USAGE
    assert "pip install onnxruntime" in _one_line_error(result)


def test_an_unexpected_error_is_one_line_unless_debug(pair_dir, tmp_path, monkeypatch, capsys):
    import cloudlulc_edge.runner

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cloudlulc_edge.runner, "run_batch", broken)
    with pytest.raises(SystemExit) as stop:
        main(["map", str(pair_dir), str(tmp_path / "out")])
    assert stop.value.code == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback" not in err and "unexpected RuntimeError: a bug" in err and "--debug" in err
    with pytest.raises(RuntimeError, match="a bug"):
        main(["--debug", "map", str(pair_dir), str(tmp_path / "out")])


def test_an_input_folder_without_products_exits_5_and_says_what_it_found(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _invoke("map", empty, tmp_path / "out", *FAST)
    assert result.exit_code == EXIT_NOTHING_TO_MAP
    assert "nothing to map" in result.output and "holds no product" in result.output
    (empty / "notes.txt").write_text("not a scene")
    result = _invoke("map", empty, tmp_path / "out", *FAST, "--dry-run")
    assert result.exit_code == EXIT_NOTHING_TO_MAP
    assert "1 input(s) not usable" in result.output and "notes.txt: not a recognised product file" in result.output


def test_a_safe_product_given_as_the_input_folder_is_mapped(tmp_path):
    (safe,) = FIXTURE.glob("S2A_MSIL1C_*.SAFE")
    out = tmp_path / "out"
    result = _invoke("map", safe, out, *FAST)
    assert result.exit_code == 0, result.output
    assert "itself a SAFE product" in result.output
    assert [p.name for p in out.glob("*_lulc.tif")] == [safe.name.removesuffix(".SAFE") + "_lulc.tif"]


def test_dry_run_says_what_would_be_mapped_skipped_or_refused_and_why(pair_dir, tmp_path):
    out = tmp_path / "out"
    fresh = _invoke("map", pair_dir, out, *FAST, "--dry-run")
    assert fresh.exit_code == 0 and "1 pair(s) → 1 map" in fresh.output and "no map yet" in fresh.output
    assert not out.exists()
    assert _invoke("map", pair_dir, out, *FAST, "-q").exit_code == 0
    same = _invoke("map", pair_dir, out, *FAST, "--dry-run")
    assert "1 skip" in same.output and "same settings" in same.output
    other = _invoke("map", pair_dir, out, *FAST, "--class-scheme", "dynamicworld", "--dry-run")
    assert "1 fail" in other.output
    assert "class_scheme 'worldcover' → 'dynamicworld'" in " ".join(other.output.split())
    replace = _invoke("map", pair_dir, out, *FAST, "--class-scheme", "dynamicworld", "--no-resume", "--dry-run")
    assert "1 replace" in replace.output


def test_ctrl_c_and_sigterm_write_the_report_and_say_what_finished(bigearthnet_v1, tmp_path, monkeypatch):
    scenes = tmp_path / "in"
    shutil.copytree(bigearthnet_v1, scenes)
    original = TorchBackend.predict
    before = signal.getsignal(signal.SIGTERM)  # another test (Ray) may have installed its own
    for stop, exit_name in ((lambda: os.kill(os.getpid(), signal.SIGTERM), "SIGTERM"), (None, "SIGINT")):
        calls = {"n": 0}

        def stop_in_second_scene(self, batch, stop=stop, calls=calls):
            calls["n"] += 1
            if calls["n"] == 2:  # each 120 px scene is one batch of its 4 tiles at 64 px: the second scene
                if stop is None:
                    raise KeyboardInterrupt
                stop()
            return original(self, batch)

        monkeypatch.setattr(TorchBackend, "predict", stop_in_second_scene)
        out = tmp_path / f"out-{exit_name}"
        result = _invoke("map", scenes, out, *FAST[:7], "--batch-size", "16")
        assert result.exit_code == EXIT_INTERRUPTED, result.output
        (report_path,) = (out / "reports").glob("*.json")
        report = json.loads(report_path.read_text())
        assert report["counts"] == {"done": 1, "interrupted": 1, "not_started": 4}
        assert report["exit_code"] == EXIT_INTERRUPTED
        interrupted = next(s for s in report["scenes"] if s["status"] == "interrupted")
        assert f"stopped by {exit_name}" in interrupted["error"]
        assert "1 done" in result.output and "interrupted: 1, not started: 4" in result.output
        assert len(list(out.glob("*_lulc.tif"))) == 1
        assert not [p for p in out.iterdir() if p.name.startswith(".")], "no partial outputs or locks"
    assert signal.getsignal(signal.SIGTERM) is before, "the previous handler is back"


def test_without_a_terminal_lines_are_full_width_and_warnings_are_log_records(pair_dir, tmp_path):
    long_root = tmp_path / ("deep-" * 12) / "in"
    shutil.copytree(pair_dir, long_root)
    # No --s2-offset: the reader warns that it assumes the pre-04.00 radiometry.
    result = _invoke("map", long_root, tmp_path / "out", *FAST[:7])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    (scene_line,) = [line for line in lines if line.startswith("done")]
    assert "S2A_MSIL2A_20170613T101031_0_0" in scene_line and str(tmp_path / "out") in scene_line
    assert "…" not in result.output
    (warning,) = [line for line in lines if "assuming offset 0" in line]
    assert " WARNING py.warnings: UserWarning: " in warning
    assert not any(line.lstrip().startswith("reader = ") for line in lines), "no source lines of the warning"


def test_the_tile_rate_counts_from_the_scene_start_over_a_window(monkeypatch):
    from cloudlulc_edge.cli import progress

    clock = {"t": 100.0}
    monkeypatch.setattr(progress.time, "perf_counter", lambda: clock["t"])
    display = RunDisplay("quiet")
    display.tiles("a", 0, 1)
    clock["t"] += 0.25  # (binary-exact steps keep the window edges exact)
    display.tiles("a", 1, 1)
    assert display.rate_text() == "", "a one-tile scene has no meaningful rate"
    display.tiles("b", 0, 100)
    for _ in range(30):  # 2 tiles/s for 30 s
        clock["t"] += 1.0
        display.tiles("b", display._samples[-1][1] + 2, 100)
    assert display.rate_text() == "2.00 tiles/s"
    for seconds in range(1, 11):
        clock["t"] += 1.0
        display.tiles("b", display._samples[-1][1] + 10, 100)
        if seconds == 5:
            assert display.rate_text() == "6.00 tiles/s"  # the last 10 s: 5 at 2/s, 5 at 10/s
    assert display.rate_text() == "10.00 tiles/s"  # the first 30 s have left the window


def test_maps_carry_category_names_a_rat_and_a_qgis_style(pair_dir, tmp_path):
    import xml.etree.ElementTree as ET

    out = tmp_path / "out"
    assert _invoke("map", pair_dir, out, *FAST, "--optics", "-q").exit_code == 0
    (cog,) = out.glob("*_lulc.tif")
    pam = ET.parse(cog.with_name(cog.name + ".aux.xml")).getroot()
    categories = [c.text or "" for c in pam.iter("Category")]
    assert categories[10] == "Forest" and categories[80] == "Water" and categories[0] == "No data"
    rows = {int(r[0].text): [f.text for f in r] for r in pam.iter("Row")}
    with rasterio.open(cog) as ds:
        colours = ds.colormap(1)
    for value, row in rows.items():
        assert tuple(int(v) for v in row[2:]) == colours[value]  # the RAT's colours are the COG's colour table
    assert rows[40][1] == "Cropland"
    style = ET.parse(cog.with_suffix(".qml")).getroot()
    entries = {int(e.get("value")): e.get("label") for e in style.iter("paletteEntry")}
    assert entries == {v: row[1] for v, row in rows.items() if v != 0}
    item = json.loads(cog.with_suffix(".json").read_text())
    assert item["assets"]["qgis-style"]["href"] == f"./{cog.stem}.qml"
    assert item["assets"]["map"]["classification:classes"]  # the classification extension is kept
    (optics,) = out.glob("*_optics.tif")
    assert optics.with_name(optics.name + ".aux.xml").is_file() and optics.with_suffix(".qml").is_file()


def test_gdal_itself_reads_the_category_names_and_the_rat(pair_dir, tmp_path):
    import subprocess

    from tests.conftest import MISSING_TEST_DEPENDENCY

    gdalinfo = shutil.which("gdalinfo")
    if gdalinfo is None:
        pytest.skip(f"{MISSING_TEST_DEPENDENCY} gdalinfo (apt-get install gdal-bin)")
    out = tmp_path / "out"
    assert _invoke("map", pair_dir, out, *FAST, "--class-scheme", "dynamicworld", "-q").exit_code == 0
    (cog,) = out.glob("*_lulc.tif")
    info = json.loads(subprocess.run([gdalinfo, "-json", str(cog)], capture_output=True, check=True, text=True).stdout)
    band = info["bands"][0]
    assert band["categories"][:3] == ["Water", "Forest", "Grassland"] and band["categories"][6] == "Built-up land"
    rat = info["rat"]
    assert rat["tableType"] == "thematic" and [f["name"] for f in rat["fieldDefn"]][:2] == ["Value", "Class"]
    assert {row["f"][0]: row["f"][1] for row in rat["row"]}[4] == "Cropland"
