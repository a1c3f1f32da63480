"""Peers of ``cloudlulc-edge map`` on one synthetic GeoTIFF scene: what a user would write instead.

Same packaged weights, same 512² tiles and 64-pixel overlap, same synthetic S2 + S1 GeoTIFF scene
(`scene_throughput.make_scene`) at each size; each route runs in a fresh process, which reports its
wall time and peak RSS (``VmHWM``):

* **ours**: `runner.run_batch` as ``cloudlulc-edge map`` runs it, default backend (``auto``).
* **naive**: the script a practitioner writes first — read every band whole with rasterio (20 m and
  60 m bands resampled bilinearly to 10 m on read), normalise with the package's contract, loop
  over the reflect-padded tiles in batches of 4 through the PyTorch model, average the overlaps,
  write one GeoTIFF.

TorchGeo's route (``RasterDataset`` + ``GridGeoSampler`` + stitching) is not among the peers yet:
``pip install torchgeo`` replaces the CPU torch with torch 2.14 and 3 GB of CUDA wheels, and with
the CPU torch 2.13 pinned, PyPI's torchvision 0.28 wheel does not load against it
(``operator torchvision::nms does not exist``); its CPU wheel lives on download.pytorch.org, which
this machine cannot reach.

Agreement is the share of valid pixels where a peer's class equals ours. Results:
``bench/results/scene_peers.{json,md,png}`` (the environment is in the JSON).

    python -m cloudlulc_edge.bench.scene_peers --sizes 2745 5490 [--readme docs/performance.md]
"""

from __future__ import annotations

import argparse
import glob
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cloudlulc_edge.bench.scene_throughput import make_scene
from cloudlulc_edge.bench.utils import environment, markdown_table, proc_field, publish

__all__ = ["naive_map", "ours_map", "run_peers"]

TILE, OVERLAP, BATCH = 512, 64, 4
ROUTES = ("ours", "naive")


def _band_files(scene: Path) -> tuple[list[str], list[str]]:
    from cloudlulc_edge.contract import S1_POLARISATIONS, S2_BANDS

    s2 = [glob.glob(str(scene / "S2*" / f"*_{b}.tif"))[0] for b in S2_BANDS]
    s1 = [glob.glob(str(scene / "S1*" / f"*_{p}.tif"))[0] for p in S1_POLARISATIONS]
    return s2, s1


def _model() -> Any:
    from cloudlulc_edge.models.loading import load_model

    return load_model("cloudlulc_edge", tile=TILE).model.eval()


def _predict(model: Any, s2: npt.NDArray[np.float32], s1: npt.NDArray[np.float32], s2_valid: npt.NDArray[np.bool_],
             s1_valid: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32]:  # fmt: skip
    """(B, 6, t, t) softmax probabilities of one batch (torch eager, reference ops)."""
    import torch

    from cloudlulc_edge.kernels import use_kernels

    with torch.inference_mode(), use_kernels("reference"):
        logits = model(torch.from_numpy(s2), torch.from_numpy(s1), torch.from_numpy(s2_valid[:, None].astype(np.float32)),
                       torch.from_numpy(s1_valid[:, None].astype(np.float32)))  # fmt: skip
        return np.asarray(torch.softmax(logits, 1).numpy())


def _write(path: Path, classes: npt.NDArray[np.uint8], profile: dict[str, Any]) -> None:
    import rasterio

    with rasterio.open(path, "w", **{**profile, "count": 1, "dtype": "uint8", "nodata": 0, "compress": "deflate"}) as d:
        d.write(classes, 1)


def naive_map(scene: Path, out: Path) -> Path:
    """The naive peer (module docstring); returns the map's path."""
    import rasterio
    from rasterio.enums import Resampling

    from cloudlulc_edge.contract import encode_classes, normalise_s1_db, normalise_s2_reflectance, s2_dn_to_reflectance

    s2_files, s1_files = _band_files(scene)
    with rasterio.open(s2_files[1]) as ref:  # B02: the 10 m grid
        height, width, profile = ref.height, ref.width, ref.profile
    stack = []
    for f in s2_files:
        with rasterio.open(f) as ds:
            stack.append(ds.read(1, out_shape=(height, width), resampling=Resampling.bilinear))
    dn = np.stack(stack)
    del stack
    refl, valid = s2_dn_to_reflectance(dn, [-1000.0] * len(s2_files))
    del dn
    s2, s2_valid = normalise_s2_reflectance(refl, valid, inplace=True)
    with rasterio.open(s1_files[0]) as vv, rasterio.open(s1_files[1]) as vh:
        s1, s1_valid = normalise_s1_db(np.stack([vv.read(1), vh.read(1)]))
    stride, pad = TILE - OVERLAP, OVERLAP // 2
    rows = max(1, -(-(height + 2 * pad - TILE) // stride) + 1)
    cols = max(1, -(-(width + 2 * pad - TILE) // stride) + 1)
    full_h, full_w = (rows - 1) * stride + TILE, (cols - 1) * stride + TILE
    spec = ((pad, full_h - height - pad), (pad, full_w - width - pad))
    s2p = np.pad(s2, ((0, 0), *spec), mode="reflect")
    s1p = np.pad(s1, ((0, 0), *spec), mode="reflect")
    v2p, v1p = np.pad(s2_valid, spec, mode="reflect"), np.pad(s1_valid, spec, mode="reflect")
    probs = np.zeros((6, full_h, full_w), np.float32)  # summed: the argmax of a sum is that of the mean
    origins = [(r * stride, c * stride) for r in range(rows) for c in range(cols)]
    model = _model()
    for i in range(0, len(origins), BATCH):
        batch = origins[i : i + BATCH]
        out_probs = _predict(model, np.stack([s2p[:, r : r + TILE, c : c + TILE] for r, c in batch]),
                             np.stack([s1p[:, r : r + TILE, c : c + TILE] for r, c in batch]),
                             np.stack([v2p[r : r + TILE, c : c + TILE] for r, c in batch]),
                             np.stack([v1p[r : r + TILE, c : c + TILE] for r, c in batch]))  # fmt: skip
        for (r, c), p in zip(batch, out_probs, strict=True):
            probs[:, r : r + TILE, c : c + TILE] += p
    index = probs[:, pad : pad + height, pad : pad + width].argmax(0)
    path = out / "naive_lulc.tif"
    _write(path, encode_classes(index, s2_valid, "worldcover"), profile)
    return path


def ours_map(scene: Path, out: Path) -> Path:
    """``cloudlulc-edge map`` with its defaults (backend auto), no STAC; returns the map's path."""
    from cloudlulc_edge.pipeline import MapOptions
    from cloudlulc_edge.runner import RunRequest, run_batch

    result = run_batch(RunRequest("map", out, options=MapOptions(overlap=OVERLAP, stac=False, resume=False),
                                  input_dir=scene))  # fmt: skip
    assert result.report is not None
    (scene_report,) = result.report.scenes
    if scene_report.status != "done" or scene_report.output is None:
        raise RuntimeError(f"our map failed: {scene_report.error}")
    return Path(scene_report.output)


def _run_one(route: str, scene: Path, out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    path = {"ours": ours_map, "naive": naive_map}[route](scene, out)
    wall = time.perf_counter() - start
    hwm = float((proc_field("/proc/self/status", "VmHWM") or "0 kB").split()[0]) / 1024
    return {"route": route, "wall_s": round(wall, 1), "peak_rss_mib": round(hwm), "map": str(path)}


def _agreement(ours: str, other: str) -> float:
    import rasterio

    with rasterio.open(ours) as a, rasterio.open(other) as b:
        x, y = a.read(1), b.read(1)
    valid = (x != 0) & (y != 0)
    return round(100.0 * float((x == y)[valid].mean()), 2)


def run_peers(workdir: Path, sizes: list[int], routes: tuple[str, ...] = ROUTES) -> dict[str, Any]:
    """Every route at every size, each in a fresh process; rows with wall, peak RSS, ratios and agreement."""
    rows = []
    for size in sizes:
        scene = make_scene(workdir, size)
        by_route = {}
        for route in routes:
            cmd = [sys.executable, "-m", "cloudlulc_edge.bench.scene_peers", "--run-one", route, "--scene", str(scene),
                   "--workdir", str(workdir / f"peers_{size}_{route}")]  # fmt: skip
            done = subprocess.run(cmd, check=True, capture_output=True, text=True)
            by_route[route] = json.loads(done.stdout.strip().splitlines()[-1])
            print(json.dumps(by_route[route]), file=sys.stderr)
        ours = by_route["ours"]
        for route, row in by_route.items():
            rows.append({**row, "size": size, "time_vs_ours": round(row["wall_s"] / ours["wall_s"], 2),
                         "rss_vs_ours": round(row["peak_rss_mib"] / ours["peak_rss_mib"], 2),
                         "agreement_pct": 100.0 if route == "ours" else _agreement(ours["map"], row["map"])})  # fmt: skip
    return {"environment": environment(), "tile": TILE, "overlap": OVERLAP, "batch": BATCH, "rows": rows}


def render(result: dict[str, Any]) -> str:
    """Markdown for docs/performance.md."""
    env = result["environment"]
    table = markdown_table(
        [{**r, "scene": f"{r['size']}²"} for r in result["rows"]],
        [("scene", "scene (10 m px)"), ("route", "route"), ("wall_s", "wall s"), ("peak_rss_mib", "peak RSS MiB"),
         ("time_vs_ours", "time / ours"), ("rss_vs_ours", "RSS / ours"), ("agreement_pct", "same class as ours (%)")],
    )  # fmt: skip
    return (f"{table}\n`python -m cloudlulc_edge.bench.scene_peers` on {env['cpu']} ({env['cpu_cores']} cores), "
            f"torch {env['torch']}, {env['date'][:10]}; packaged `cloudlulc_edge` weights, tile {result['tile']}, "
            f"overlap {result['overlap']}, batch {result['batch']}. CPU figures, not GPU performance.\n")  # fmt: skip


def plot(result: dict[str, Any], path: Path) -> Path:
    """Wall time and peak RSS per route and scene size, side by side (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    sizes = sorted({r["size"] for r in rows})
    routes = list(dict.fromkeys(r["route"] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    width = 0.8 / len(routes)
    for ax, key, label in ((axes[0], "wall_s", "wall s"), (axes[1], "peak_rss_mib", "peak RSS MiB")):
        for i, route in enumerate(routes):
            values = [next((r[key] for r in rows if r["route"] == route and r["size"] == n), 0) for n in sizes]
            ax.bar([j + i * width for j in range(len(sizes))], values, width, label=route)
        ax.set_xticks([j + width * (len(routes) - 1) / 2 for j in range(len(sizes))], [f"{n}²" for n in sizes])
        ax.set_ylabel(label)
    axes[0].legend(fontsize=8)
    fig.suptitle("cloudlulc-edge map vs peers (same weights, tiles, overlap; CPU)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def parser() -> argparse.ArgumentParser:
    """The command line of this benchmark."""
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--workdir", type=Path, default=Path("/tmp/cloudlulc-bench"))
    cli.add_argument("--sizes", type=int, nargs="+", default=[2745, 5490])
    cli.add_argument("--routes", nargs="+", default=list(ROUTES), choices=ROUTES)
    cli.add_argument("--readme", type=Path, default=None, help="page to update between scene-peers markers")
    cli.add_argument("--run-one", choices=ROUTES, default=None, help=argparse.SUPPRESS)
    cli.add_argument("--scene", type=Path, default=None, help=argparse.SUPPRESS)
    return cli


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    args = parser().parse_args(argv)
    if args.run_one is not None:
        print(json.dumps(_run_one(args.run_one, args.scene, args.workdir)))
        return
    result = run_peers(args.workdir, args.sizes, tuple(args.routes))
    path = publish("scene_peers", result, render(result), args.readme, "scene-peers")
    plot(result, path.with_suffix(".png"))


if __name__ == "__main__":
    main()
