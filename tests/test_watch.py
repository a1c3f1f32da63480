"""`watch` end to end: products copied in slowly, S1 after its S2, a growing zip, SIGTERM mid-scene, two watchers.

The watcher runs as the installed command in its own process (as an operator starts it), except
the SIGTERM case, which runs the library call in this process so that the signal can arrive at
a known point inside a scene.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from cloudlulc_edge.backends.factory import BackendSpec
from cloudlulc_edge.backends.torch_backend import TorchBackend
from cloudlulc_edge.errors import EXIT_INTERRUPTED
from cloudlulc_edge.pipeline import MapOptions
from cloudlulc_edge.watch import WatchRequest, watch_directory

FIXTURE = Path(__file__).resolve().parent / "data" / "sentinel"
BIGEARTHNET = FIXTURE / "bigearthnet"
S2_NAME = "S2A_MSIL2A_20170613T101031_0_0"
FAST = ["--variant", "test_tiny", "--allow-untrained", "--tile", "64", "--overlap", "16", "--s2-offset", "0",
        "--s2-quantification", "10000"]  # fmt: skip
OBSERVERS = ["polling", pytest.param("inotify", marks=pytest.mark.skipif(
    __import__("importlib").util.find_spec("watchdog") is None, reason="test dependency missing: watchdog"))]  # fmt: skip


class Watcher:
    """``cloudlulc-edge watch IN OUT …`` in a child process, its JSON-lines events and its report."""

    def __init__(self, input_dir: Path, output_dir: Path, *args: str) -> None:
        exe = Path(sys.executable).parent / "cloudlulc-edge"
        self.log = output_dir.parent / f"watch-{len(list(output_dir.parent.glob('watch-*.log')))}.log"
        self.proc = subprocess.Popen([str(exe), "watch", str(input_dir), str(output_dir), *FAST, "--log-format",
                                      "jsonl", *args], stdout=self.log.open("w"), stderr=subprocess.STDOUT)  # fmt: skip
        self.output_dir = output_dir
        self.wait_for("watch_start", timeout=120)

    def events(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]

    def wait_for(self, event: str, timeout: float, count: int = 1) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [e for e in self.events() if e["event"] == event]
            if len(found) >= count:
                return found
            assert self.proc.poll() is None or event == "watch_end", self.log.read_text()
            time.sleep(0.1)
        raise AssertionError(f"no {event} within {timeout} s:\n{self.log.read_text()}")

    def finish(self, timeout: float = 120) -> dict:
        """Waits for the exit (``--exit-when-idle``) and returns the run report."""
        assert self.proc.wait(timeout=timeout) == 0, self.log.read_text()
        (end,) = [e for e in self.events() if e["event"] == "watch_end"]
        return json.loads(Path(end["report"]).read_text())


def _copy_slowly(source: Path, target: Path, pause: float) -> None:
    """Copies a folder file by file, pausing after each (a download in progress)."""
    target.mkdir(parents=True)
    for path in sorted(source.iterdir()):
        shutil.copy2(path, target / path.name)
        time.sleep(pause)


def _grow(zip_bytes: bytes, target: Path, chunks: int, pause: float) -> None:
    """Writes a zip in chunks (a transfer still running); its central directory comes last."""
    step = -(-len(zip_bytes) // chunks)
    with target.open("wb") as f:
        for start in range(0, len(zip_bytes), step):
            f.write(zip_bytes[start : start + step])
            f.flush()
            time.sleep(pause)


def _zipped(safe: Path, tmp_path: Path) -> bytes:
    archive = tmp_path / f"{safe.name}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(safe.rglob("*")):
            zf.write(path, Path(safe.name) / path.relative_to(safe))
    return archive.read_bytes()


@pytest.mark.parametrize("observer", OBSERVERS)
def test_a_slow_copy_is_mapped_once_complete_then_again_when_its_s1_arrives(observer, tmp_path):
    incoming, out = tmp_path / "in", tmp_path / "out"
    incoming.mkdir()
    watcher = Watcher(incoming, out, "--observer", observer, "--settle", "1.5", "--poll", "0.3",
                      "--remap-on-better-s1", "--exit-when-idle", "4")  # fmt: skip
    assert watcher.events()[0]["observer"] == observer
    _copy_slowly(BIGEARTHNET / "S2" / S2_NAME, incoming / "S2" / S2_NAME, pause=0.3)  # 0.3 s < settle 1.5 s
    first = watcher.wait_for("scene_end", timeout=60)[0]
    assert first["status"] == "done", first  # S2 only: no S1 present yet, --s1-wait 0
    shutil.copytree(BIGEARTHNET / "S1", incoming / "S1")
    (remap,) = watcher.wait_for("remap", timeout=60)
    assert remap["previous_s1"] == [] and len(remap["s1"]) == 1
    report = watcher.finish()
    assert [s["status"] for s in report["scenes"]] == ["done", "done"], "no read of a half-copied scene"
    assert report["scenes"][1]["replaces"] == {"s1": []}
    import rasterio

    with rasterio.open(out / f"{S2_NAME}_lulc.tif") as ds:
        assert ds.tags()["S1_PRODUCTS"] == remap["s1"][0]
    status = json.loads(next((out / "reports").glob("watch-*.status.json")).read_text())
    assert status["state"] == "stopped" and status["mapped"] == [S2_NAME]


def test_growing_zips_wait_for_their_central_directory_and_s2_waits_for_s1(tmp_path):
    (s2_safe,) = FIXTURE.glob("S2A_MSIL1C_*.SAFE")
    (s1_safe,) = FIXTURE.glob("S1A_IW_GRDH_*.SAFE")
    incoming, out = tmp_path / "in", tmp_path / "out"
    incoming.mkdir()
    watcher = Watcher(incoming, out, "--observer", "polling", "--settle", "1", "--poll", "0.2", "--s1-wait", "30",
                      "--exit-when-idle", "4")  # fmt: skip
    _grow(_zipped(s2_safe, tmp_path), incoming / f"{s2_safe.stem}.zip", chunks=8, pause=0.25)
    time.sleep(2)  # complete and settled, but waiting for an S1 (--s1-wait 30)
    assert not [e for e in watcher.events() if e["event"] == "scene_end"]
    _grow(_zipped(s1_safe, tmp_path), incoming / f"{s1_safe.stem}.zip", chunks=8, pause=0.25)
    report = watcher.finish()
    (scene,) = report["scenes"]
    assert scene["status"] == "done" and scene["name"] == s2_safe.stem and scene["dt_days"] is not None


def test_sigterm_mid_scene_abandons_it_cleanly_and_writes_the_report(tmp_path, monkeypatch):
    incoming, out = tmp_path / "in", tmp_path / "out"
    shutil.copytree(BIGEARTHNET, incoming)
    original = TorchBackend.predict
    before = signal.getsignal(signal.SIGTERM)  # another test (Ray) may have installed its own

    def terminated(self, batch):
        os.kill(os.getpid(), signal.SIGTERM)  # as `systemctl stop` would, while the scene is half mapped
        return original(self, batch)

    monkeypatch.setattr(TorchBackend, "predict", terminated)
    spec = BackendSpec(variant="test_tiny", tile=64, allow_untrained=True)
    options = MapOptions(tile=64, overlap=16, s2_offset=0, s2_quantification=10000)
    result = watch_directory(WatchRequest(incoming, out, spec, options, settle_s=0, poll_s=0.1))
    assert result.exit_code == EXIT_INTERRUPTED
    (scene,) = result.report.scenes
    assert scene.status == "interrupted" and "SIGTERM" in (scene.error or "")
    assert result.report_path is not None and json.loads(result.report_path.read_text())["exit_code"] == 130
    assert not list(out.glob("*_lulc*")) and not [p for p in out.iterdir() if p.name.startswith(".")]
    status = json.loads(next((out / "reports").glob("watch-*.status.json")).read_text())
    assert status["state"] == "stopped"
    assert signal.getsignal(signal.SIGTERM) is before, "the previous handler is back"


def test_two_watchers_on_one_output_folder_map_each_scene_once(bigearthnet_v1, tmp_path):
    incoming, out = tmp_path / "in", tmp_path / "out"
    incoming.mkdir()
    watchers = [Watcher(incoming, out, "--observer", "polling", "--settle", "1", "--poll", "0.2",
                        "--exit-when-idle", "5") for _ in range(2)]  # fmt: skip
    shutil.copytree(bigearthnet_v1, incoming / "batch")
    reports = [w.finish(timeout=300) for w in watchers]
    done = [s["name"] for r in reports for s in r["scenes"] if s["status"] == "done"]
    assert len(done) == 6 and len(set(done)) == 6, done
    assert len(list(out.glob("*_lulc.tif"))) == 6
    assert not [s for r in reports for s in r["scenes"] if s["status"] == "failed"]
