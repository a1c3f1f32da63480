"""`demo`: packaged real sample scenes → default model → COGs + quicklooks; safe archive extraction."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import rasterio
from PIL import Image
from rio_cogeo.cogeo import cog_validate
from typer.testing import CliRunner

from cloudlulc_edge import demo
from cloudlulc_edge.cli import app
from cloudlulc_edge.demo import SampleDataError, extract_archive, prepare_demo_inputs
from cloudlulc_edge.weights import default_checkpoint


def _invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_demo_maps_the_packaged_samples_with_the_default_model(tmp_path):
    pytest.importorskip("bigearthnet_common", reason="the demo extra is not installed")
    out = tmp_path / "demo out"  # a space in the path on purpose
    result = _invoke("demo", out, "--quiet")
    assert result.exit_code == 0, result.output
    maps = sorted((out / "maps").glob("*_lulc.tif"))
    looks = sorted((out / "quicklooks").glob("*.png"))
    assert len(maps) == 6 and len(looks) == 6
    for path in maps:
        assert cog_validate(path)[0], path
    for path in looks:
        with Image.open(path) as image:
            assert image.width > 3 * image.height  # four panels side by side
    (report,) = (out / "maps" / "reports").glob("demo-*.json")
    data = json.loads(report.read_text())
    assert {s["status"] for s in data["scenes"]} == {"done"}
    checkpoint = default_checkpoint("cloudlulc_edge")
    assert checkpoint is not None  # the packaged model, not untrained weights
    card = json.loads((checkpoint / "model_card.json").read_text())
    assert data["backend"]["model"]["sha256"] == card["weights_sha256"]
    assert "untrained" not in result.output
    # A re-run reuses the inputs and the finished maps.
    again = _invoke("demo", out, "--quiet")
    assert again.exit_code == 0, again.output
    latest = max((out / "maps" / "reports").glob("demo-*.json"))
    assert {s["status"] for s in json.loads(latest.read_text())["scenes"]} == {"skipped"}


def test_demo_maps_cloudy_copies_through_the_clouds(bigearthnet_v1, s2_safe, tmp_path):
    before = sorted((p.relative_to(bigearthnet_v1), p.stat().st_mtime_ns) for p in bigearthnet_v1.rglob("*"))
    out = tmp_path / "out"
    result = _invoke("demo", out, "--samples", bigearthnet_v1, "--cloud-donor", s2_safe, "--cover", "0.5", "--quiet")
    assert result.exit_code == 0, result.output
    copies = sorted((out / "clouded").glob("*_clouds50.tif"))
    assert len(copies) == 6
    for copy in copies:
        with rasterio.open(copy) as ds:
            assert ds.count == 12 and ds.descriptions[1] == "B02"
            assert abs(float(ds.tags()["SIMULATED_CLOUD_COVER"]) - 0.5) < 0.01
    maps = sorted((out / "maps").glob("*_clouds50_lulc.tif"))
    assert len(maps) == 6 and all(cog_validate(m)[0] for m in maps)
    assert len(list((out / "quicklooks").glob("*.png"))) == 12
    # The cloudy copy is paired with the same S1 as its clear original.
    (report,) = (out / "maps" / "reports").glob("demo-*.json")
    scenes = {s["name"]: s for s in json.loads(report.read_text())["scenes"]}
    for copy in copies:
        original = copy.stem.removesuffix("_clouds50")
        assert scenes[copy.stem]["dt_days"] == scenes[original]["dt_days"]
    after = sorted((p.relative_to(bigearthnet_v1), p.stat().st_mtime_ns) for p in bigearthnet_v1.rglob("*"))
    assert before == after  # the sample folder is read, never written


def test_demo_without_sample_data_is_a_usage_error(tmp_path, monkeypatch):
    def missing(name: str):
        raise ModuleNotFoundError(name)

    monkeypatch.setattr(demo.resources, "files", missing)
    result = _invoke("demo", tmp_path / "out")
    assert result.exit_code == 2
    assert "demo" in result.output and "bigearthnet-common" in result.output
    result = _invoke("demo", tmp_path / "out", "--samples", tmp_path / "nowhere")
    assert result.exit_code == 2 and "nowhere" in result.output


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w:bz2") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data else None)
    return path


def _file(name: str, data: bytes = b"x", size: int | None = None) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data) if size is None else size
    return info, data


def _symlink(name: str, target: str) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info, b""


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (_file("../../escaped.txt"), "outside"),
        (_file("/tmp/absolute.txt"), "outside"),
        (_symlink("ok/link", "/etc/passwd"), "link"),
    ],
    ids=["traversal", "absolute", "symlink"],
)
def test_unsafe_archives_are_refused_before_anything_is_written(tmp_path, member, message):
    archive = _tar(tmp_path / "bad.tar.bz2", [_file("ok/first.txt"), member])
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(SampleDataError, match=message) as info:
        extract_archive(archive, dest)
    assert "bad.tar.bz2" in str(info.value)
    assert not any(dest.iterdir())  # checked before writing: not even the good member
    assert not (tmp_path / "escaped.txt").exists()


def test_declared_size_bombs_and_corrupt_archives_are_refused(tmp_path):
    big = _tar(tmp_path / "big.tar.bz2", [_file("a.bin", b"\0" * 4096), _file("b.bin", b"\0" * 4096)])
    with pytest.raises(SampleDataError, match="more than"):
        extract_archive(big, tmp_path / "dest", max_bytes=6000)
    broken = tmp_path / "broken.tar.bz2"
    broken.write_bytes(big.read_bytes()[:100])
    with pytest.raises(SampleDataError, match="corrupt"):
        extract_archive(broken, tmp_path / "dest2")


def test_packaged_archives_extract_to_pairable_scenes(tmp_path):
    pytest.importorskip("bigearthnet_common", reason="the demo extra is not installed")
    root = prepare_demo_inputs(tmp_path / "inputs")
    s2 = sorted((root / "BigEarthNet-S2-Example").iterdir())
    assert len(s2) == 6 and all(len(list(p.glob("*_B*.tif"))) == 12 for p in s2)
    assert (root / ".complete").is_file()
    stamp = (s2[0] / f"{s2[0].name}_B02.tif").stat().st_mtime_ns
    prepare_demo_inputs(tmp_path / "inputs")  # a re-run does not extract again
    assert (s2[0] / f"{s2[0].name}_B02.tif").stat().st_mtime_ns == stamp
