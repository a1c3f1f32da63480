"""One bad entry of an input folder is a logged "unusable input"; the rest of the folder is scanned and mapped.

Malformed BigEarthNet sidecars and time tags, symlink loops, FIFOs with raster names and very deep
trees, each beside one good S1+S2 pair (the committed BigEarthNet fixture).
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest
import rasterio
from typer.testing import CliRunner

from cloudlulc_edge.cli import app
from cloudlulc_edge.io.products import MAX_SCAN_DEPTH, scan

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "sentinel" / "bigearthnet"
GOOD_S2 = "S2A_MSIL2A_20170613T101031_0_0"


def _s2_copy(root: Path, name: str) -> Path:
    """A second S2 scene: the fixture's bands under another scene name."""
    folder = root / "S2" / name
    shutil.copytree(FIXTURE / "S2" / GOOD_S2, folder)
    for band in folder.iterdir():
        band.rename(folder / band.name.replace(GOOD_S2, name))
    return folder


@pytest.fixture
def hostile_folder(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The good pair plus one hostile entry per case; returns the folder and entry → expected reason."""
    root = tmp_path / "in"
    shutil.copytree(FIXTURE, root)
    expected = {}
    for name, content in (("S2A_MSIL2A_20170613T101031_1_1", b'{"acquisition_ti'),  # truncated
                          ("S2A_MSIL2A_20170613T101031_2_2", b"[1, 2]"),  # a list
                          ("S2A_MSIL2A_20170613T101031_3_3", bytes(range(256))),  # binary
                          ("S2A_MSIL2A_20170613T101031_4_4", b'{"acquisition_time": "last tuesday"}')):  # fmt: skip
        (_s2_copy(root, name) / f"{name}_labels_metadata.json").write_bytes(content)
        expected[name] = {"_1_1": "unreadable BigEarthNet metadata sidecar", "_2_2": "is not a JSON object",
                          "_3_3": "unreadable BigEarthNet metadata sidecar",
                          "_4_4": "is not an ISO 8601 time"}[name[-4:]]  # fmt: skip
    tagged = _s2_copy(root, "S2A_MSIL2A_20170613T101031_5_5")
    for band in tagged.glob("*.tif"):
        with rasterio.open(band, "r+") as ds:
            ds.update_tags(ACQUISITION_TIME="2017-13-45T99:00:00")
    expected[tagged.name] = "ACQUISITION_TIME tag"
    (root / "loop").symlink_to(root, target_is_directory=True)
    expected["loop"] = "symlink loop"
    os.mkfifo(root / "incoming_B02.tif")
    expected["incoming_B02.tif"] = "not a regular file or folder"
    deep = root.joinpath(*[f"d{i}" for i in range(MAX_SCAN_DEPTH + 2)])
    deep.mkdir(parents=True)
    expected[f"d{MAX_SCAN_DEPTH}"] = f"deeper than {MAX_SCAN_DEPTH} folder levels"
    (root / "dangling").symlink_to(tmp_path / "gone")
    expected["dangling"] = "cannot be read"
    return root, expected


@pytest.fixture
def alarm():
    """Fails the test instead of hanging it if a scan blocks (a FIFO opened for reading would)."""

    def hang(signum, frame):
        raise TimeoutError("the scan blocked")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_every_hostile_entry_is_skipped_with_its_reason_and_the_good_pair_is_found(hostile_folder, alarm):
    root, expected = hostile_folder
    found = scan(root)
    assert sorted(p.product_id for p in found.products) == ["S1A_IW_GRDH_1SDV_20170613T165043_33TUG_0_0", GOOD_S2]
    reasons = {Path(s.path).name: s.reason for s in found.skipped}
    for name, reason in expected.items():
        assert name in reasons, f"{name} not reported: {sorted(reasons)}"
        assert reason in reasons[name], (name, reasons[name])
        if name.startswith("S2A"):
            assert name in reasons[name], "the reason names the file"


def test_map_maps_the_good_pair_and_reports_the_rest(hostile_folder, tmp_path, alarm):
    root, expected = hostile_folder
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["map", str(root), str(out), "--variant", "test_tiny", "--allow-untrained",
                                      "--tile", "64", "--overlap", "16", "--s2-offset", "0",
                                      "--s2-quantification", "10000", "-q"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.glob("*_lulc.tif")] == [f"{GOOD_S2}_lulc.tif"]
    assert f"{len(expected)} input(s) not usable" in result.output
