"""Benchmark: FP16 and INT8 ONNX graphs against FP32 on real-scene tiles (onnxruntime CPU).

Exports a model (`export.bundle`), calibrates INT8 on one set of real scenes and evaluates on
another (disjoint), through the same readers and tiling as mapping. Per precision it reports, on
the valid pixels of every evaluation tile, the argmax agreement with the FP32 map, the mIoU of
the map against the FP32 map (classes present in either), max |Δ| of the logits, and the CPU time
per tile (onnxruntime CPU on this machine: a CPU figure, not engine performance). Gates (from
the issue): FP16 ≥ 99 % and INT8 ≥ 97 % agreement — meaningful only for a trained checkpoint, so
the checkpoint is named in the results.

    python -m cloudlulc_edge.bench.export_accuracy --checkpoint CKPT [--readme docs/performance.md]
    python -m cloudlulc_edge.bench.export_accuracy --variant cloudlulc_edge   # untrained weights
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from cloudlulc_edge.bench.utils import environment, markdown_table, publish
from cloudlulc_edge.contract import NUM_CLASSES
from cloudlulc_edge.export.bundle import TOLERANCES, ExportOptions, export_model
from cloudlulc_edge.export.calibration import build_calibration_set
from cloudlulc_edge.io.products import scan
from cloudlulc_edge.io.scene import SceneReader
from cloudlulc_edge.pairing import pair_products
from cloudlulc_edge.tiling import TileBatch, TileGrid, Tiler
from cloudlulc_edge.training.metrics import ConfusionMatrix, segmentation_metrics

_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PRECISIONS = ("fp32", "fp16", "int8")


def _evaluation_batches(scene_dir: Path, tile: int, resolution: int | None) -> list[tuple[str, TileBatch]]:
    out = []
    for pair in pair_products(scan(scene_dir).products).pairs:
        reader = SceneReader(pair.s2, pair.s1, resolution=resolution)
        try:
            grid = TileGrid(reader.grid.height, reader.grid.width, tile, 0)
            out += [(pair.name, batch) for batch in Tiler(reader, grid, 2)]
        finally:
            reader.close()
    return out


def run(model_spec: dict[str, Any], calibrate: Path, evaluate: Path, tile: int, resolution: int | None,
        calibration_tiles: int, workdir: Path) -> dict[str, Any]:  # fmt: skip
    """Exports, evaluates and returns the results record."""
    import onnxruntime as ort

    from cloudlulc_edge.models.loading import load_model

    loaded = load_model(model_spec["variant"], model_spec["checkpoint"], tile, allow_untrained=True)
    model, identity = loaded.model, loaded.identity
    calibration = build_calibration_set(pair_products(scan(calibrate).products).pairs, tile, calibration_tiles)
    start = time.perf_counter()
    manifest = export_model(model, identity, workdir, ExportOptions(tile=tile, max_batch=8, plugin=False), calibration)
    export_s = time.perf_counter() - start
    sessions = {p: ort.InferenceSession(str(workdir / f"model_{p}.onnx"), providers=["CPUExecutionProvider"])
                for p in PRECISIONS}  # fmt: skip
    batches = _evaluation_batches(evaluate, tile, resolution)
    k = NUM_CLASSES
    matrices = {p: ConfusionMatrix(k) for p in PRECISIONS}
    max_abs = dict.fromkeys(PRECISIONS, 0.0)
    seconds = dict.fromkeys(PRECISIONS, 0.0)
    tiles = 0
    for _, batch in batches:
        inputs = batch.model_inputs()
        logits = {}
        for p, session in sessions.items():
            t0 = time.perf_counter()
            logits[p] = session.run(None, inputs)[0]
            seconds[p] += time.perf_counter() - t0
        valid = batch.s2_valid
        reference = logits["fp32"].argmax(1)[valid]
        for p in PRECISIONS:
            matrices[p].update(logits[p].argmax(1)[valid], reference)
            max_abs[p] = max(max_abs[p], float(np.abs(logits[p] - logits["fp32"]).max()))
        tiles += len(batch)
    trained = manifest["model"]["version"] != "untrained"
    rows = []
    for p in PRECISIONS:
        scores = segmentation_metrics(matrices[p].matrix)
        gate = TOLERANCES.get(p, {}).get("argmax_agreement")
        agreement = scores["oa"] if scores["oa"] is not None else float("nan")
        rows.append({
            "precision": p,
            "agreement_pct": round(100 * agreement, 3),
            "miou_vs_fp32": round(scores["miou"] or 0.0, 4),
            "max_abs_logits": round(max_abs[p], 4),
            "gate_pct": "-" if gate is None else round(100 * gate, 1),
            "passes": "-" if gate is None else ("yes" if agreement >= gate else "no") if trained else "n/a (untrained)",
            "cpu_ms_per_tile": round(1000 * seconds[p] / max(tiles, 1), 1),
            "size_mb": round((workdir / f"model_{p}.onnx").stat().st_size / 1e6, 2),
        })  # fmt: skip
    return {
        "date": datetime.now().isoformat(timespec="seconds"),
        "environment": environment(),
        "model": manifest["model"],
        "trained": trained,
        "tile": tile,
        "resolution_m": resolution,
        "calibration": {k: manifest["calibration"][k] for k in ("tiles", "cloud_bins", "scenes", "method", "sha256")},
        "evaluation": {
            "scenes": sorted({name for name, _ in batches}),
            "tiles": tiles,
            "valid_pixels": int(matrices["fp32"].matrix.sum()),
        },
        "export_s": round(export_s, 1),
        "rows": rows,
    }


def render(result: dict[str, Any]) -> str:
    """Markdown for docs/performance.md."""
    model = result["model"]
    name = f"`{model['variant']}` {model['version']} (weights sha256 {model['weights_sha256'][:12]})"
    if not result["trained"]:
        name = f"`{model['variant']}` **untrained** (random init): the 99 %/97 % gates apply to a trained checkpoint"
    head = (
        f"Model {name}; tile {result['tile']}, evaluation scenes {', '.join(result['evaluation']['scenes'])} "
        f"({result['evaluation']['tiles']} tiles, {result['evaluation']['valid_pixels']:,} valid pixels); INT8 "
        f"calibrated ({result['calibration']['method']}) on {result['calibration']['tiles']} tiles of "
        f"{len(result['calibration']['scenes'])} other scenes. onnxruntime CPU on {result['environment']['cpu']}, "
        f"{result['date'][:10]}.\n\n"
    )
    columns = [("precision", "graph"), ("agreement_pct", "argmax agreement vs FP32 (%)"),
               ("miou_vs_fp32", "mIoU vs FP32 map"), ("max_abs_logits", "max abs Δ logits"), ("gate_pct", "gate (%)"),
               ("passes", "passes"), ("size_mb", "size (MB)"), ("cpu_ms_per_tile", "ORT CPU ms/tile")]  # fmt: skip
    return head + markdown_table(result["rows"], columns)


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="trained checkpoint directory")
    parser.add_argument("--variant", default="cloudlulc_edge", help="untrained variant when no checkpoint is given")
    parser.add_argument("--calibrate", type=Path, default=_SHARED / "bigearthnet-v1", help="scenes to calibrate on")
    parser.add_argument("--evaluate", type=Path, default=_SHARED / "s2-l2a-safe", help="scenes to evaluate on")
    parser.add_argument("--resolution", type=int, default=60, help="reading resolution of the evaluation scenes (m)")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--calibration-tiles", type=int, default=64)
    parser.add_argument(
        "--readme", type=Path, default=None, help="page to update between export-accuracy markers (docs/performance.md)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        result = run({"variant": args.variant, "checkpoint": args.checkpoint}, args.calibrate, args.evaluate,
                     args.tile, args.resolution, args.calibration_tiles, Path(work))  # fmt: skip
    publish("export_accuracy", result, render(result), args.readme, "export-accuracy")


if __name__ == "__main__":
    main()
