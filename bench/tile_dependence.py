"""Benchmark: how much the maps depend on the tile grid, on a real cloudy scene and a cloudy 10 m mosaic.

Two scenes built from real data:

* the real cloudy Sentinel-2 L2A product T29UNU (Ireland, 2022-10-05, 60 m layers; 60 % cloud),
  mapped at 60 m, S2 only (no S1 was acquired with it);
* a 10 m mosaic of real BigEarthNet S1 + S2 patches (10 × 10 patches, 1200 × 1200 px, the patches
  rotated and flipped to fill it) with clouds from the same real L2A product simulated over 50 %
  of it (`cloudlulc_edge.data.cloud_sim`).

Each scene is mapped with the reference grid (tile 512, overlap 64), the grid offset by half a
stride, a 192 px overlap and one pass over the whole scene, and the agreements and seam indices
of `cloudlulc_edge.tile_dependence` are reported; ``--checkpoint NAME=DIR`` adds other models (for
example the previous packaged default, in the paper's tile-global forms) to the same table. The
reference map of the real scene is rendered as a quicklook PNG.

    python -m cloudlulc_edge.bench.tile_dependence --data-root ../shared/data \\
        [--checkpoint previous=/tmp/old_default] [--out bench/results]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from cloudlulc_edge.backends import BackendSpec, open_backend
from cloudlulc_edge.bench.utils import environment, markdown_table, publish
from cloudlulc_edge.contract import DEFAULT_CONTRACT, S2_BANDS
from cloudlulc_edge.data.bigearthnet import BigEarthNetDW
from cloudlulc_edge.data.cloud_sim import CloudDonor, CloudSimulator
from cloudlulc_edge.pairing import Pair, plan_directory
from cloudlulc_edge.pipeline import MapOptions, map_pair
from cloudlulc_edge.quicklook import render_quicklook
from cloudlulc_edge.tile_dependence import measure_tile_dependence

__all__ = ["build_mosaic", "main", "render"]

_SAFE = "s2-l2a-safe/S2A_MSIL2A_20221005T115411_N0400_R023_T29UNU_20221005T164454.SAFE"
_PATCH = 120


def build_mosaic(data_root: Path, out: Path, side: int = 10, cover: float = 0.5, seed: int = 0) -> Path:
    """Writes a ``side × side`` mosaic of real BigEarthNet patches, clouded over ``cover``, as a GeoTIFF pair.

    Returns:
        The folder holding the S2 (12-band uint16 DN) and S1 (VV, VH dB) GeoTIFFs.
    """
    folder = out / "mosaic"
    if (folder / "mosaic_S2.tif").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    patches = BigEarthNetDW(data_root, "all")
    rng = np.random.default_rng(seed)
    n = side * _PATCH
    s2, s1 = np.zeros((12, n, n), np.float32), np.zeros((2, n, n), np.float32)
    order = rng.permutation(side * side) % len(patches)
    for slot, index in enumerate(order):
        sample = patches[int(index)]
        k, flip = int(rng.integers(4)), bool(rng.integers(2))

        def orient(a: np.ndarray, k: int = k, flip: bool = flip) -> np.ndarray:
            a = np.rot90(a, k, axes=(-2, -1))
            return a[..., ::-1] if flip else a

        r, c = divmod(slot, side)
        window = (slice(None), slice(r * _PATCH, (r + 1) * _PATCH), slice(c * _PATCH, (c + 1) * _PATCH))
        s2[window], s1[window] = orient(sample.s2), orient(sample.s1)
    cloudy = CloudSimulator(CloudDonor.from_safe(data_root / _SAFE)).simulate(s2, cover, rng)
    transform = from_origin(500000.0, 5900000.0, 10.0, 10.0)
    crs = CRS.from_epsg(32633)
    dn = np.clip(np.round(cloudy.s2 * 10000), 1, 65535).astype(np.uint16)
    (lo_vv, hi_vv), (lo_vh, hi_vh) = DEFAULT_CONTRACT.s1.clip_db  # undo the model's S1 scaling
    db = np.stack([lo_vv + s1[0] * (hi_vv - lo_vv), lo_vh + s1[1] * (hi_vh - lo_vh)]).astype(np.float32)
    common = {"driver": "GTiff", "width": n, "height": n, "crs": crs, "transform": transform, "tiled": True,
              "compress": "deflate"}  # fmt: skip
    with rasterio.open(folder / "mosaic_S2.tif", "w", count=12, dtype="uint16", nodata=0, **common) as ds:
        ds.write(dn)
        ds.descriptions = S2_BANDS
        ds.update_tags(ACQUISITION_TIME="2017-06-13T10:10:31", S2_OFFSET="0", S2_QUANTIFICATION="10000",
                       SIMULATED_CLOUD_COVER=f"{cloudy.cover:.3f}")  # fmt: skip
    with rasterio.open(folder / "mosaic_S1.tif", "w", count=2, dtype="float32", **common) as ds:
        ds.write(db)
        ds.descriptions = ("VV", "VH")
        ds.update_tags(ACQUISITION_TIME="2017-06-13T16:50:43")
    return folder


def _scenes(data_root: Path, work: Path) -> list[tuple[str, Pair, MapOptions]]:
    real = plan_directory(data_root / _SAFE.split("/")[0]).pairs
    mosaic = plan_directory(build_mosaic(data_root, work)).pairs
    return [("T29UNU L2A, 60 m, real clouds (S2 only)", real[0], MapOptions(resolution=60)),
            ("BigEarthNet mosaic, 10 m, 50 % simulated clouds (S1 + S2)", mosaic[0],
             MapOptions(s2_offset=0.0, s2_quantification=10000.0))]  # fmt: skip


def run(data_root: Path, checkpoints: dict[str, Path | None], out: Path) -> dict[str, Any]:
    """Measures every model on every scene; renders the real scene's quicklook with the packaged default."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="cloudlulc-tile-bench-") as tmp:
        work = Path(tmp)
        for label, pair, options in _scenes(data_root, work):
            for name, checkpoint in checkpoints.items():
                backend = open_backend(BackendSpec("torch", "cloudlulc_edge", checkpoint, tile=options.tile))
                result = measure_tile_dependence(pair, backend, options, workdir=work)
                rows.append({"scene": label, "model": name, **result.to_dict()})
                print(rows[-1], flush=True)
        real_label, real_pair, real_options = _scenes(data_root, work)[0]
        backend = open_backend(BackendSpec("torch", "cloudlulc_edge", tile=512))
        report = map_pair(real_pair, backend, work / "quicklook", real_options)
        assert report.output is not None
        render_quicklook(real_pair, Path(report.output), out / "tile_dependence_T29UNU.png", real_options)
    env = environment()
    return {"rows": rows, "environment": env, "date": datetime.now().strftime("%Y-%m-%d"),
            "quicklook": "tile_dependence_T29UNU.png", "real_scene": real_label}  # fmt: skip


def render(result: dict[str, Any]) -> str:
    """Markdown table: agreements (%) and seam indices per scene and model."""
    rows = [
        {
            "scene": r["scene"], "model": r["model"],
            "half": f"{100 * r['half_stride_agreement']:.2f}", "overlap": f"{100 * r['overlap_agreement']:.2f}",
            "whole": "–" if r["whole_scene_agreement"] is None else f"{100 * r['whole_scene_agreement']:.2f}",
            "boundary": f"{r['seam']['boundary_ratio']:.2f}",
            "p95m": f"{r['seam']['band_p95_over_median']:.2f}", "p95": f"{r['seam']['band_p95_over_p95']:.2f}",
            "floor": "–" if r["seam_whole_scene"] is None else f"{r['seam_whole_scene']['boundary_ratio']:.2f}",
        }
        for r in result["rows"]
    ]  # fmt: skip
    columns = [("scene", "scene"), ("model", "model"), ("half", "agreement, grid offset ½ stride %"),
               ("overlap", "agreement, overlap 64 vs 192 %"), ("whole", "agreement with one pass %"),
               ("boundary", "seam: tile-edge / other lines"), ("p95m", "seam: p95 in overlaps / median outside"),
               ("p95", "seam: p95 in / p95 out"), ("floor", "one-pass map on the same lines")]  # fmt: skip
    note = (f"Tile 512, overlap 64 (reference); {result['environment'].get('cpu', '')}, {result['date']}. Seam "
            "indices near 1 mean no seams; the last column is the one-pass map's edge/other ratio on the same lines "
            "(the scene's own boundaries). `python -m cloudlulc_edge.bench.tile_dependence`.\n\n")  # fmt: skip
    return note + markdown_table(rows, columns)


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=Path(os.environ.get("CLOUDLULC_DATA", "../shared/data")))
    parser.add_argument("--checkpoint", action="append", default=[], help="NAME=DIR: another model to measure")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    checkpoints: dict[str, Path | None] = {"packaged default": None}
    for item in args.checkpoint:
        name, _, path = item.partition("=")
        checkpoints[name] = Path(path)
    args.out.mkdir(parents=True, exist_ok=True)
    result = run(args.data_root, checkpoints, args.out)
    publish("tile_dependence", result, render(result), None, "tile-dependence", args.out)


if __name__ == "__main__":
    main()
