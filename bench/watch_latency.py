"""Benchmark: latency of ``watch`` from a product becoming complete to its map being written.

The six real BigEarthNet S1+S2 pairs of ``--data-root`` arrive in an incoming folder watched by
``cloudlulc-edge watch`` (the installed command, the packaged default model), once with inotify
wake-ups and once polling: the six S1 products first (not timed), then one S2 scene at a time,
each once the previous one is mapped. A scene is *complete* when its folder, copied under a
hidden name, is renamed into place (as a careful download does). The latency is the time from then to the watcher's ``scene_end`` event (the map renamed
into place), split into waiting (detection + ``--settle``) and mapping (the scene's own seconds).

    python -m cloudlulc_edge.bench.watch_latency --data-root ../shared/data [--settle 2] [--poll 5] [--out bench/results] [--readme docs/performance.md]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from cloudlulc_edge.bench.utils import environment, markdown_table, publish


def _events(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def _wait(log: Path, predicate: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in _events(log):
            if predicate(event):
                return event
        time.sleep(0.02)
    raise TimeoutError(f"watch did not report in {timeout} s; its log: {log}")


def _arrive(source: Path, incoming: Path) -> float:
    """Copies ``source`` into ``incoming`` under a hidden name and renames it into place; returns the time (epoch s)."""
    hidden = incoming / f".{source.name}.part"
    shutil.copytree(source, hidden)
    hidden.rename(incoming / source.name)
    return time.time()


def run_observer(observer: str, s1s: list[Path], s2s: list[Path], settle: float, poll: float,
                 work: Path) -> dict[str, Any]:  # fmt: skip
    """One watcher: every S1 arrives first (not timed), then each S2 once the previous one is mapped."""
    incoming, out = work / observer / "incoming", work / observer / "maps"
    shutil.rmtree(work / observer, ignore_errors=True)
    (incoming / "S1").mkdir(parents=True)
    (incoming / "S2").mkdir()
    for s1 in s1s:
        _arrive(s1, incoming / "S1")
    log = work / observer / "watch.log"
    exe = Path(sys.executable).parent / "cloudlulc-edge"
    rows = []
    with log.open("w") as stream:
        proc = subprocess.Popen([str(exe), "watch", str(incoming), str(out), "--observer", observer, "--settle",
                                 str(settle), "--poll", str(poll), "--log-format", "jsonl", "--s2-offset", "0",
                                 "--s2-quantification", "10000"], stdout=stream, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            _wait(log, lambda e: e["event"] == "watch_start", 300)
            time.sleep(settle + 1)  # the S1 products settle: they are not what is timed
            for s2 in s2s:
                complete = _arrive(s2, incoming / "S2")
                end = _wait(log, lambda e, n=s2.name: e["event"] == "scene_end" and e["name"] == n, 600)
                latency = end["time"] - complete
                rows.append({"scene": s2.name, "status": end["status"], "latency_s": round(latency, 2),
                             "map_s": end["seconds"], "wait_s": round(latency - end["seconds"], 2)})  # fmt: skip
                print(observer, rows[-1], flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=120)
    latencies = [r["latency_s"] for r in rows]
    return {"observer": observer, "settle_s": settle, "poll_s": poll, "scenes": rows,
            "latency_median_s": round(statistics.median(latencies), 2), "latency_max_s": round(max(latencies), 2),
            "map_median_s": round(statistics.median(r["map_s"] for r in rows), 2),
            "wait_median_s": round(statistics.median(r["wait_s"] for r in rows), 2)}  # fmt: skip


def render(result: dict[str, Any]) -> str:
    """Markdown: one row per observer."""
    table = markdown_table(
        result["runs"],
        [("observer", "wake-up"), ("settle_s", "settle s"), ("poll_s", "poll s"),
         ("latency_median_s", "latency median s"), ("latency_max_s", "latency max s"),
         ("wait_median_s", "of which waiting, median s"), ("map_median_s", "of which mapping, median s")],
    )  # fmt: skip
    return (f"`watch` latency, product complete → map written: {len(result['runs'][0]['scenes'])} real BigEarthNet "
            f"pairs (120 px), packaged default model, torch on the CPU; {result['machine']}, {result['date']}.\n\n"
            f"{table}\n")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--settle", type=float, default=2.0)
    parser.add_argument("--poll", type=float, default=5.0)
    parser.add_argument("--observer", nargs="+", default=["inotify", "polling"])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "cloudlulc-bench-watch")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument(
        "--readme", type=Path, help="page to update between watch-latency markers (docs/performance.md)"
    )
    args = parser.parse_args(argv)
    root = args.data_root / "bigearthnet-v1"
    s2s = sorted((root / "BigEarthNet-S2-Example").iterdir())
    s1s = sorted((root / "BigEarthNet-S1-Example").iterdir())
    runs = [run_observer(o, s1s, s2s, args.settle, args.poll, args.work) for o in args.observer]
    env = environment()
    result = {"runs": runs, "environment": env, "machine": env.get("cpu", "this machine"),
              "date": datetime.now().strftime("%Y-%m-%d")}  # fmt: skip
    publish("watch_latency", result, render(result), args.readme, "watch-latency", args.out)


if __name__ == "__main__":
    main()
