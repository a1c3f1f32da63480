"""Benchmark: map a synthetic full-size Sentinel-2 + Sentinel-1 scene and report time and peak memory.

The scene is a GeoTIFF scene in the package's directory convention (per-band files at native
resolution: four 10 m, six 20 m and two 60 m S2 bands, VV/VH in dB at 10 m), with smooth
synthetic fields and a nodata wedge like a swath edge. Each size is mapped in a fresh
subprocess so its peak RSS (VmHWM) is its own. The claim under test is that peak memory does
not grow with scene size: the 10980² figure must be ≤ 1.5 GB and within 20 % of the 5490² one.

    python -m cloudlulc_edge.bench.scene_throughput --workdir /tmp/cloudlulc-bench [--readme docs/performance.md]

``--model`` picks the variant (``test_tiny`` measures the I/O, tiling and blending pipeline; the
packaged ``cloudlulc_edge`` the product as it ships) and ``--backend`` its backend (default
``auto``, as ``map``). CPU figures are not GPU performance.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window

from cloudlulc_edge.bench.utils import environment, markdown_table, proc_field, publish

RESULTS = Path(__file__).parent / "results"
_ORIGIN = (399960.0, 5400000.0)
_S2_RES = {"B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20, "B08": 10, "B8A": 20,
           "B09": 60, "B11": 20, "B12": 20}  # fmt: skip


def _field(rows: np.ndarray, cols: np.ndarray, seed: int) -> np.ndarray:
    """A smooth pseudo-landscape in [0, 1] evaluated on pixel coordinates (10 m units)."""
    rng = np.random.default_rng(seed)
    k = rng.uniform(0.002, 0.02, size=(3, 2))
    ph = rng.uniform(0, 2 * np.pi, size=3)
    r, c = rows[:, None], cols[None, :]
    f = sum(np.sin(k[i, 0] * r + k[i, 1] * c + ph[i]) for i in range(3))
    out: np.ndarray = ((f / 3.0) + 1.0) / 2.0
    return out


def make_scene(root: Path, size: int) -> Path:
    """Writes a synthetic S2 + S1 GeoTIFF scene of ``size × size`` 10 m pixels under ``root``."""
    scene = root / f"synthetic_{size}"
    if (scene / ".complete").exists():
        return scene
    s2 = scene / f"S2A_MSIL2A_20240601T100000_SYN{size}"
    s1 = scene / f"S1A_IW_GRDH_1SDV_20240602T053000_SYN{size}"
    s2.mkdir(parents=True, exist_ok=True)
    s1.mkdir(parents=True, exist_ok=True)
    base = {"driver": "GTiff", "count": 1, "crs": "EPSG:32633", "tiled": True, "blockxsize": 512, "blockysize": 512,
            "compress": "deflate"}  # fmt: skip
    bands = [(s2 / f"{s2.name}_{b}.tif", res, "uint16", i) for i, (b, res) in enumerate(_S2_RES.items())]
    bands += [(s1 / f"{s1.name}_{p}.tif", 10, "float32", 20 + i) for i, p in enumerate(("VV", "VH"))]
    for path, res, dtype, seed in bands:
        n = size * 10 // res
        profile = {**base, "width": n, "height": n, "dtype": dtype,
                   "transform": Affine(res, 0, _ORIGIN[0], 0, -res, _ORIGIN[1])}  # fmt: skip
        if dtype == "uint16":
            profile.update(tags={"S2_OFFSET": "-1000", "S2_QUANTIFICATION": "10000"})
        with rasterio.open(path, "w", **{k: v for k, v in profile.items() if k != "tags"}) as dst:
            if dtype == "uint16":
                dst.update_tags(S2_OFFSET="-1000", S2_QUANTIFICATION="10000")
            step = 1024
            cols = np.arange(n) * (res / 10)
            for r0 in range(0, n, step):
                rows = np.arange(r0, min(n, r0 + step)) * (res / 10)
                f = _field(rows, cols, seed)
                if dtype == "uint16":
                    data = (1000 + 3000 * f).astype(np.uint16)
                    data[(cols[None, :] > 0.8 * size - 0.2 * rows[:, None])] = 0  # nodata wedge (swath edge)
                else:
                    data = (-22 + 15 * f).astype(np.float32)
                dst.write(data, 1, window=Window(0, r0, n, len(rows)))
    (scene / ".complete").touch()
    return scene


def run_one(scene: Path, output: Path, model: str, overlap: int, batch_size: int, device: str = "cpu",
            backend: str = "auto") -> dict[str, Any]:  # fmt: skip
    """Maps the scene in this process with ``backend`` on ``device``; returns the report plus peak RSS."""
    import torch

    from cloudlulc_edge.backends import BackendSpec, open_backend
    from cloudlulc_edge.pairing import plan_directory
    from cloudlulc_edge.pipeline import MapOptions, map_pair

    torch.manual_seed(0)
    pairs = plan_directory(scene).pairs
    assert len(pairs) == 1 and pairs[0].s1, "synthetic scene must pair"
    # Untrained variants run with random weights (speed does not depend on them) in torch.
    opened = open_backend(BackendSpec(backend, model, allow_untrained=True, device=device))  # type: ignore[arg-type]
    start = time.perf_counter()
    report = map_pair(pairs[0], opened, output, MapOptions(overlap=overlap, batch_size=batch_size, resume=False))
    wall = time.perf_counter() - start
    return {**report.to_dict(), "wall_s": round(wall, 2), "peak_rss_mib": round(_vmhwm_kib() / 1024, 1),
            "runtime": opened.runtime}  # fmt: skip


def _vmhwm_kib() -> float:
    """Peak resident set of this process (VmHWM), KiB."""
    return float((proc_field("/proc/self/status", "VmHWM") or "0 kB").split()[0])


def parser() -> argparse.ArgumentParser:
    """The command line of this benchmark (`gpu_check` checks its steps against it)."""
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--workdir", type=Path, default=Path("/tmp/cloudlulc-bench"))
    cli.add_argument("--sizes", type=int, nargs="+", default=[5490, 10980])
    cli.add_argument("--model", default="test_tiny")
    cli.add_argument("--overlap", type=int, default=64)
    cli.add_argument("--batch-size", type=int, default=4)
    cli.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    cli.add_argument("--backend", default="auto", choices=("auto", "torch", "onnxruntime"))
    cli.add_argument("--readme", type=Path, default=None, help="page to update between markers (docs/performance.md)")
    cli.add_argument("--run-one", type=Path, default=None, help=argparse.SUPPRESS)
    return cli


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.run_one is not None:
        out = run_one(args.run_one, args.workdir / "out", args.model, args.overlap, args.batch_size, args.device,
                      args.backend)  # fmt: skip
        print(json.dumps(out))
        return
    result = run_sizes(args.workdir, args.sizes, args.model, args.overlap, args.batch_size, args.device, args.backend)
    text = render(result)
    plot(result, RESULTS / "map_scene.png")
    publish("map_scene", result, text, args.readme, "map-scene")


def run_sizes(
    workdir: Path,
    sizes: list[int],
    model: str,
    overlap: int,
    batch_size: int,
    device: str = "cpu",
    backend: str = "auto",
) -> dict[str, Any]:
    """Maps a synthetic scene of each size in a fresh process; returns rows with scenes/hour and I/O overlap."""
    rows = []
    for size in sizes:
        t0 = time.perf_counter()
        scene = make_scene(workdir, size)
        print(f"scene {size}: generated in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        cmd = [sys.executable, "-m", "cloudlulc_edge.bench.scene_throughput", "--run-one", str(scene), "--workdir",
               str(workdir / f"run_{size}"), "--model", model, "--overlap", str(overlap),
               "--batch-size", str(batch_size), "--device", device, "--backend", backend]  # fmt: skip
        res = json.loads(
            subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        )
        res["size"] = size
        res["scenes_per_hour"] = round(3600.0 / res["wall_s"], 2)
        # Stage seconds summed over threads ÷ wall: > 1 means reading overlapped inference.
        busy = sum(res["stages"].get(k, 0.0) for k in ("read", "predict", "blend_write", "finalize"))
        res["io_overlap"] = round(busy / res["wall_s"], 2)
        rows.append(res)
        print(json.dumps(res), file=sys.stderr)
    return {"environment": environment(), "date": datetime.now().isoformat(), "model": model, "overlap": overlap,
            "batch_size": batch_size, "device": device, "backend": backend, "results": rows}  # fmt: skip


def render(result: dict[str, Any]) -> str:
    """Markdown table and note."""
    rows, env = result["results"], result["environment"]
    table = markdown_table(
        [{"scene": f"{r['size']}²", "tiles": f"{r['tiles']} ({r['tiles_skipped']} skipped)", "wall": f"{r['wall_s']:.1f}",
          **{k: f"{r['stages'].get(k, 0):.1f}" for k in ("read", "predict", "blend_write", "finalize")},
          "sph": f"{r.get('scenes_per_hour', 3600 / r['wall_s']):.1f}", "overlap": f"{r.get('io_overlap', 0):.2f}",
          "rss": f"{r['peak_rss_mib']:.0f}"} for r in rows],
        [("scene", "scene (10 m px)"), ("tiles", "tiles"), ("wall", "wall s"), ("read", "read s (thread)"),
         ("predict", "predict s"), ("blend_write", "blend+write s"), ("finalize", "COG+STAC s"),
         ("sph", "scenes/hour"), ("overlap", "stage-s / wall (>1: I/O overlaps)"), ("rss", "peak RSS MiB")],
    )  # fmt: skip
    runtime = rows[0].get("runtime", "torch") if rows else "?"
    note = (f"\n\n{result['model']} ({runtime}) on CPU ({env.get('cpu', '?')}, {env.get('torch_threads', '?')} threads), tile "
            f"512, overlap {result['overlap']}, batch {result['batch_size']}; read runs in a producer thread "
            "concurrently with predict.\n")  # fmt: skip
    return table + note


def plot(result: dict[str, Any], path: Path) -> Path:
    """Stacked stage seconds per scene size (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["results"]
    fig, ax = plt.subplots(figsize=(6, 4))
    bottom = [0.0] * len(rows)
    labels = [f"{r['size']}²" for r in rows]
    for stage in ("open", "read", "predict", "blend_write", "finalize"):
        values = [r["stages"].get(stage, 0.0) for r in rows]
        ax.bar(labels, values, bottom=bottom, label=stage)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.plot(labels, [r["wall_s"] for r in rows], "k_", markersize=40, label="wall")
    ax.set_ylabel("seconds (stage sums; read is concurrent)")
    ax.set_title(f"{result['model']}: full-scene mapping")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()


def benchmark(workdir: Path, sizes: list[int], model: str, overlap: int, batch_size: int, out: Path,
              readme: Path | None = None, backend: str = "auto") -> list[Path]:  # fmt: skip
    """`run_sizes`, then the JSON, markdown and PNG results (and the block in docs/performance.md).

    Returns:
        The written files.
    """
    result = run_sizes(workdir, sizes, model, overlap, batch_size, backend=backend)
    path = publish("bench_scene", result, render(result), readme, "map-scene", out)
    return [path, out / "bench_scene.md", plot(result, out / "bench_scene.png")]
