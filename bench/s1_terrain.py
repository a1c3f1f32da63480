"""Benchmark: terrain-corrected S1 of a full-size GRD onto a full Sentinel-2 tile grid, against GCP geocoding.

The real S1A IW GRDH annotation of ``../shared/data/s1-grd-safe`` (16676 × 26144 samples) with a
synthetic VV + VH measurement (`synthetic_s1.smooth_field`), written by ``cloudlulc-edge s1``'s
library call (`io.s1_on_grid.write_s1_on_grid`) onto a ``--size``² grid at 10 m in UTM 31N inside
the swath, three ways: GCP geocoding (``GCP_ELLIPSOID``), range-Doppler terrain correction on a
synthetic 30 m DEM of 450–2050 m relief (``RD_DEM``), and the same with γ⁰ flattening (``--rtc``).
Each runs in its own process, so its peak resident memory is its own; the synthetic inputs are
built once (in ``--work``) and not timed.

    python -m cloudlulc_edge.bench.s1_terrain --data-root ../shared/data [--size 10980] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform

from cloudlulc_edge.bench.synthetic_s1 import relief_dem, smooth_field, with_measurement
from cloudlulc_edge.bench.utils import environment, markdown_table, publish
from cloudlulc_edge.io.s1_on_grid import S1GridRequest, write_s1_on_grid
from cloudlulc_edge.io.s1_terrain import TerrainCorrection
from cloudlulc_edge.pipeline import MapOptions, estimate_scene_memory_mb

S1A = "S1A_IW_GRDH_1SDV_20210809T173953_20210809T174018_039156_049F13_6FF8.SAFE"
#: Centre of the grid (inside the S1A swath), degrees.
CENTRE = (3.35, 45.5)
MODES = {
    "GCP geocoding (GCP_ELLIPSOID)": None,
    "terrain correction (RD_DEM), σ⁰": {"rtc": False},
    "terrain correction + flattening (RD_DEM, --rtc), γ⁰": {"rtc": True},
}


def _inputs(data_root: Path, work: Path, size: int) -> tuple[Path, Path, Path]:
    """The product, the DEM and a reference raster of the grid (built once, reused)."""
    work.mkdir(parents=True, exist_ok=True)
    product = work / S1A
    if not product.exists():
        with_measurement(data_root / "s1-grd-safe" / S1A, work, smooth_field, ("VV", "VH"))
    dem = work / "relief_30m.tif"
    if not dem.exists():
        relief_dem(dem, 2.5, 46.2, 6120, 1 / 3600)  # lon 2.5–4.2, lat 44.5–46.2 at 1 arc-second
    like = work / f"grid_{size}.tif"
    if not like.exists():
        (x,), (y,) = transform("EPSG:4326", "EPSG:32631", [CENTRE[0]], [CENTRE[1]])
        half = size * 10 / 2
        profile = {"driver": "GTiff", "width": size, "height": size, "count": 1, "dtype": "uint8",
                   "crs": CRS.from_epsg(32631), "transform": Affine(10, 0, x - half, 0, -10, y + half),
                   "sparse_ok": True, "tiled": True}  # fmt: skip
        with rasterio.open(like, "w", **profile):
            pass  # an empty (sparse) raster: only its grid is used
    return product, dem, like


def run_one(mode: str, product: Path, dem: Path, like: Path, out: Path) -> dict[str, Any]:
    """One geocoding in this process: seconds, peak RSS and what was written."""
    settings = MODES[mode]
    terrain = None if settings is None else TerrainCorrection(dem, rtc=settings["rtc"], dem_datum="ellipsoid")
    start = time.perf_counter()
    result = write_s1_on_grid(S1GridRequest(product, out, like, terrain))
    seconds = time.perf_counter() - start
    return {"mode": mode, "seconds": round(seconds, 1), "peak_rss_mb": round(resource.getrusage(
            resource.RUSAGE_SELF).ru_maxrss / 1024, 0), "valid_pct": result.valid_pct,
            "layover_shadow_pct": result.tags.get("S1_LAYOVER_SHADOW_PCT")}  # fmt: skip


def render(result: dict[str, Any]) -> str:
    """The Markdown table."""
    gcp = result["runs"][0]["seconds"]
    rows = [{"mode": r["mode"], "s": f"{r['seconds']:.0f}", "x": f"{r['seconds'] / gcp:.2f}",
             "rss": f"{r['peak_rss_mb']:.0f}", "valid": f"{r['valid_pct']:.1f}",
             "masked": r["layover_shadow_pct"] or "–"} for r in result["runs"]]  # fmt: skip
    head = (f"S1A GRD (16676 × 26144, synthetic VV + VH measurement, real annotation) onto a {result['size']}² grid "
            f"at 10 m (UTM 31N), σ⁰/γ⁰ float32; {result['machine']}, {result['date']}. The pipeline's own budget "
            f"for mapping that tile (`estimate_scene_memory_mb`, tile 512, batch 4) is {result['pipeline_budget_mb']:.0f}"
            " MiB. `python -m cloudlulc_edge.bench.s1_terrain`.\n\n")  # fmt: skip
    columns = [("mode", "geocoding"), ("s", "wall s"), ("x", "× GCP"), ("rss", "peak RSS MiB"),
               ("valid", "grid with S1 %"), ("masked", "layover/shadow %")]  # fmt: skip
    return head + markdown_table(rows, columns)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--size", type=int, default=10980)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "cloudlulc-bench-s1-terrain")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--one", choices=list(MODES), help=argparse.SUPPRESS)  # child process: one mode
    args = parser.parse_args(argv)
    product, dem, like = _inputs(args.data_root, args.work, args.size)
    if args.one is not None:
        print(json.dumps(run_one(args.one, product, dem, like, args.work / f"out_{args.size}.tif")))
        return
    runs = []
    for mode in MODES:
        child = subprocess.run([sys.executable, "-m", "cloudlulc_edge.bench.s1_terrain", "--data-root",
                                str(args.data_root), "--size", str(args.size), "--work", str(args.work), "--one", mode],
                               capture_output=True, text=True, check=True)  # fmt: skip
        runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
        print(runs[-1], flush=True)
    env = environment()
    result = {"size": args.size, "runs": runs, "environment": env, "machine": env.get("cpu", "this machine"),
              "date": datetime.now().strftime("%Y-%m-%d"),
              "pipeline_budget_mb": estimate_scene_memory_mb(args.size, MapOptions())}  # fmt: skip
    publish("s1_terrain", result, render(result), None, "s1_terrain", args.out)


if __name__ == "__main__":
    main()
