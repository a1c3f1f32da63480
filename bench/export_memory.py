"""Benchmark: peak memory and wall time of ``export onnx --calibrate`` with the default 64 tiles at 512².

The export runs in a fresh process (so its peak RSS, VmHWM, is its own) through the library call
behind the command (`export.bundle.export_request`): FP32, FP16 and INT8 graphs (and the plugin
graph when triton is installed), calibrated on ``--tiles`` tiles sampled from ``--scenes``. The
default scenes are the synthetic 5490² GeoTIFF scene of `scene_throughput` (119 tiles of 512²),
because the sample data's BigEarthNet patches give only 6. The target: ≤ 4 GiB on this machine.

    python -m cloudlulc_edge.bench.export_memory [--scenes DIR] [--readme docs/export.md]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from cloudlulc_edge.bench.utils import environment, markdown_table, proc_field, publish

#: The issue's target for the default 64 tiles, MiB.
TARGET_MIB = 4096


def run_one(scenes: Path, out: Path, tiles: int) -> dict[str, Any]:
    """One export in this process: seconds, peak RSS and what the manifest records."""
    from cloudlulc_edge.export.bundle import ExportRequest, export_request

    start = time.perf_counter()
    manifest, _ = export_request(ExportRequest(out, calibration_scenes=scenes, calibration_tiles=tiles))
    seconds = time.perf_counter() - start
    peak = float((proc_field("/proc/self/status", "VmHWM") or "0 kB").split()[0]) / 1024
    parity = {
        a["file"]: a["parity_vs_fp32"]["argmax_agreement"] for a in manifest["artifacts"] if "parity_vs_fp32" in a
    }
    return {"seconds": round(seconds, 1), "peak_rss_mib": round(peak), "tiles": manifest["calibration"]["tiles"],
            "graphs": [a["file"] for a in manifest["artifacts"]], "argmax_agreement_vs_fp32": parity}  # fmt: skip


def render(result: dict[str, Any]) -> str:
    """The Markdown table."""
    r = result["run"]
    rows = [{"tiles": str(r["tiles"]), "s": f"{r['seconds']:.0f}", "rss": f"{r['peak_rss_mib']}",
             "met": "yes" if r["peak_rss_mib"] <= TARGET_MIB else "**no**",
             "graphs": ", ".join(r["graphs"]),
             "agree": ", ".join(f"{k.removeprefix('model_').removesuffix('.onnx')} {100 * v:.2f} %"
                                for k, v in r["argmax_agreement_vs_fp32"].items())}]  # fmt: skip
    head = (f"`export onnx --calibrate` (the packaged `cloudlulc_edge`, 512²) on {result['scenes']}; "
            f"{result['machine']}, {result['date']}, a fresh process. "
            "`python -m cloudlulc_edge.bench.export_memory`.\n\n")  # fmt: skip
    columns = [("tiles", "calibration tiles"), ("s", "wall s"), ("rss", "peak RSS MiB"), ("met", "≤ 4 GiB"),
               ("graphs", "graphs written"), ("agree", "argmax agreement with FP32 on the tiles")]  # fmt: skip
    return head + markdown_table(rows, columns)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=Path, default=None, help="calibration scenes (default: synthetic 5490²)")
    parser.add_argument("--tiles", type=int, default=64)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "cloudlulc-bench")
    parser.add_argument("--readme", type=Path, default=None, help="page to update between markers (docs/export.md)")
    parser.add_argument("--one", type=Path, default=None, help=argparse.SUPPRESS)  # child process: the export
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(run_one(args.scenes, args.one, args.tiles)))
        return
    if args.scenes is None:
        from cloudlulc_edge.bench.scene_throughput import make_scene

        args.scenes = make_scene(args.workdir, 5490)
    with tempfile.TemporaryDirectory(prefix="cloudlulc-export-") as tmp:
        child = subprocess.run([sys.executable, "-m", "cloudlulc_edge.bench.export_memory", "--scenes", str(args.scenes),
                                "--tiles", str(args.tiles), "--one", str(Path(tmp) / "export")],
                               capture_output=True, text=True, check=True)  # fmt: skip
    run = json.loads(child.stdout.strip().splitlines()[-1])
    env = environment()
    result = {"run": run, "scenes": args.scenes.name, "environment": env, "machine": env.get("cpu", "this machine"),
              "date": datetime.now().strftime("%Y-%m-%d")}  # fmt: skip
    publish("export_memory", result, render(result), args.readme, "export-memory")


if __name__ == "__main__":
    main()
