"""Benchmark: S1 GRD radiometric calibration at full size, against xarray-sentinel on the same file.

The real S1A IW GRDH annotation of ``../shared/data/s1-grd-safe`` (16676 × 26144 samples) with a
synthetic VV measurement (`synthetic_s1.smooth_field`, the product `s1_terrain` builds), calibrated
to σ⁰ in radar geometry over the whole image, three ways, each in its own process so its peak
resident memory is its own:

- ``cloudlulc-edge`` σ⁰: `io.s1_calibration.backscatter` over blocks of lines, without thermal
  noise removal (the same operation as xarray-sentinel's), under the GDAL settings of ``map``
  (`io.gdal_env`: a 256 MB block cache);
- ``cloudlulc-edge`` σ⁰ − noise: the same with thermal-noise removal, what ``map`` runs;
- ``xarray-sentinel`` σ⁰: ``calibrate_intensity(measurement, calibration.sigmaNought)``, loaded
  into memory (``.values``), as its documentation shows. It has no GRD noise removal.

The xarray-sentinel process then compares its σ⁰ with ours on three blocks of lines (start,
middle, end of the image): the largest relative difference where σ⁰ is above the −40 dB floor.

    python -m cloudlulc_edge.bench.s1_calibration --data-root ../shared/data [--out bench/results]
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

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.windows import Window

from cloudlulc_edge.bench.s1_terrain import S1A
from cloudlulc_edge.bench.synthetic_s1 import smooth_field, with_measurement
from cloudlulc_edge.bench.utils import environment, markdown_table, publish
from cloudlulc_edge.io.archive import SafeArchive
from cloudlulc_edge.io.gdal_env import gdal_env
from cloudlulc_edge.io.s1_calibration import SIGMA0_FLOOR, backscatter, read_calibration, read_noise
from cloudlulc_edge.io.s1_metadata import read_s1_metadata

ROUTES = ("cloudlulc-edge σ⁰", "cloudlulc-edge σ⁰ − noise", "xarray-sentinel σ⁰")
#: Lines per block of the blockwise route (as the S1 reader: `io.s1_safe._CHUNK_LINES`).
BLOCK_LINES = 512


def _product(data_root: Path, work: Path) -> Path:
    """The S1A SAFE with a synthetic VV measurement (built once, shared with `s1_terrain`)."""
    work.mkdir(parents=True, exist_ok=True)
    product = work / S1A
    if not product.exists():
        with_measurement(data_root / "s1-grd-safe" / S1A, work, smooth_field, ("VV", "VH"))
    return product


def ours(product: Path, noise_removal: bool, rows: range | None = None) -> npt.NDArray[np.float32] | float:
    """σ⁰ of the VV image by blocks of lines.

    Args:
        product: The SAFE.
        noise_removal: Subtract the thermal-noise LUT first.
        rows: Return the σ⁰ of these lines instead of calibrating the whole image.

    Returns:
        The (len(rows), samples) σ⁰ when ``rows`` is given, else the sum of the finite σ⁰ (a sink
        that keeps every block computed).
    """
    archive = SafeArchive(product, verify_checksums=False)
    members = read_s1_metadata(archive).polarisations["VV"]
    cal = read_calibration(archive, members.calibration)
    noise = read_noise(archive, members.noise) if noise_removal else None
    with gdal_env(), rasterio.open(archive.gdal_path(members.measurement)) as src:  # map's GDAL settings
        if rows is not None:
            dn = src.read(1, window=Window(0, rows.start, src.width, len(rows)))
            return backscatter(dn, rows.start, 0, cal, noise)
        total = 0.0
        for r0 in range(0, src.height, BLOCK_LINES):
            n = min(BLOCK_LINES, src.height - r0)
            block = backscatter(src.read(1, window=Window(0, r0, src.width, n)), r0, 0, cal, noise)
            total += float(np.nansum(block))
    return total


def xarray_sentinel_sigma0(product: Path) -> npt.NDArray[np.float64]:
    """xarray-sentinel's σ⁰ of the VV image, in memory."""
    import xarray_sentinel

    measurement = xarray_sentinel.open_sentinel1_dataset(str(product), group="IW/VV").measurement
    calibration = xarray_sentinel.open_sentinel1_dataset(str(product), group="IW/VV/calibration")
    sigma0: npt.NDArray[np.float64] = xarray_sentinel.calibrate_intensity(measurement, calibration.sigmaNought).values
    return sigma0


def _peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0)


def run_one(route: str, product: Path) -> dict[str, Any]:
    """One route in this process: seconds and peak RSS (and, for xarray-sentinel, the agreement with ours)."""
    start = time.perf_counter()
    if route == ROUTES[2]:
        theirs = xarray_sentinel_sigma0(product)
    else:
        ours(product, noise_removal=route == ROUTES[1])
    seconds, peak = time.perf_counter() - start, _peak_rss_mib()
    result: dict[str, Any] = {"route": route, "seconds": round(seconds, 1), "peak_rss_mib": peak}
    if route == ROUTES[2]:
        worst = 0.0
        for r0 in (0, theirs.shape[0] // 2, theirs.shape[0] - BLOCK_LINES):
            rows = range(r0, r0 + BLOCK_LINES)
            mine = np.asarray(ours(product, noise_removal=False, rows=rows), dtype=np.float64)
            ref = theirs[r0 : r0 + BLOCK_LINES]
            above = np.isfinite(mine) & (ref > SIGMA0_FLOOR)
            worst = max(worst, float(np.max(np.abs(mine[above] - ref[above]) / ref[above])))
        result["max_rel_diff_vs_ours"] = worst
        result["shape"] = list(theirs.shape)
    return result


def render(result: dict[str, Any]) -> str:
    """The Markdown table."""
    base = result["runs"][0]
    rows = [{"route": r["route"], "s": f"{r['seconds']:.1f}", "x": f"{r['seconds'] / base['seconds']:.2f}",
             "rss": f"{r['peak_rss_mib']:.0f}", "diff": f"{r['max_rel_diff_vs_ours']:.1e}"
             if "max_rel_diff_vs_ours" in r else "–"} for r in result["runs"]]  # fmt: skip
    lines, samples = result["shape"]
    head = (f"S1A IW GRDH VV, {lines} × {samples} samples (real annotation and LUTs, synthetic measurement), "
            f"calibrated to σ⁰ in radar geometry over the whole image; {result['machine']}, {result['date']}, "
            "each route in its own process. `python -m cloudlulc_edge.bench.s1_calibration`.\n\n")  # fmt: skip
    columns = [("route", "route"), ("s", "wall s"), ("x", "× ours"), ("rss", "peak RSS MiB"),
               ("diff", "max relative difference from ours (σ⁰ > −40 dB)")]  # fmt: skip
    return head + markdown_table(rows, columns)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "cloudlulc-bench-s1-terrain")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--readme", type=Path, default=None, help="page to update between markers")
    parser.add_argument("--one", choices=ROUTES, help=argparse.SUPPRESS)  # child process: one route
    args = parser.parse_args(argv)
    product = _product(args.data_root, args.work)
    if args.one is not None:
        print(json.dumps(run_one(args.one, product)))
        return
    runs = []
    for route in ROUTES:
        child = subprocess.run([sys.executable, "-m", "cloudlulc_edge.bench.s1_calibration", "--data-root",
                                str(args.data_root), "--work", str(args.work), "--one", route],
                               capture_output=True, text=True, check=True)  # fmt: skip
        runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
        print(runs[-1], file=sys.stderr, flush=True)
    env = environment()
    result = {"runs": runs, "shape": runs[-1]["shape"], "environment": env, "machine": env.get("cpu", "this machine"),
              "date": datetime.now().strftime("%Y-%m-%d")}  # fmt: skip
    publish("s1_calibration", result, render(result), args.readme, "s1-calibration", args.out)


if __name__ == "__main__":
    main()
