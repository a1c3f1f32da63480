"""Benchmark: cross-validated accuracy per cloud bin of the default model and its simple peers.

Every peer is trained by the same harness (`cloudlulc_edge.training.crossval`) on the patches
outside one of ``--folds`` spatial folds of the 52 BigEarthNet patches, for each of ``--seeds``,
with the packaged recipe (``cloudlulc_edge/weights/train_default.toml``: simulated clouds, modality
dropout, teacher distillation, class weights, water-corrected labels), and scored on the held-out
fold at the same simulated clouds (0, 20, 40, 60, 80 % cover). Nothing is selected on a held-out
fold: networks are scored at their last epoch.

    python -m cloudlulc_edge.bench.crossval --data-root ../shared/data --workers 2 \\
        [--seeds 0 1 2] [--folds 5] [--peer cloudlulc_edge …] [--out bench/results] [--readme docs/default-model.md]

Jobs run in ``--workers`` processes of one thread each (on 2 cores, two one-thread trainings
finish 1.6× sooner than one two-thread training); each finished job leaves
``<out>/crossval/jobs/<peer>_s<seed>_f<fold>.json`` with the settings it was made with
(`training.crossval.job_settings`), so an interrupted comparison resumes where it stopped, and a job
whose recipe, folds or scoring changed is run again. The tables and plots are rebuilt from the job files at the end (``--summary-only`` skips
the training). Metrics are agreement with Dynamic World **teacher** labels (raw, and with open
water corrected by `cloudlulc_edge.data.label_rules`), not accuracy against ground truth.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from cloudlulc_edge import weights
from cloudlulc_edge.bench.utils import environment, publish
from cloudlulc_edge.contract import CLASSES
from cloudlulc_edge.files import atomic_write
from cloudlulc_edge.training.crossval import (
    COVER_BINS,
    EVAL_COVERS,
    Job,
    PeerSpec,
    finished_result,
    job_settings,
    run_job,
    summarise,
)

__all__ = ["PEERS", "claim_checks", "main", "plot", "render"]

_CONFIG = Path(weights.__file__).resolve().parent / "train_default.toml"
_FUSION, _S1_REMOVED = "CloudLULC-Net edge (S2+S1)", "CloudLULC-Net edge, S1 removed"
_GBM, _GBM_S2 = "GBM per pixel (S2+S1)", "GBM per pixel (S2 only)"

#: The comparison, in table order. The UNets and the reconstruction-first baseline are sized near the
#: default model (1.05 M parameters): UNet W 16 ≈ 1.97 M, removal W 32 × 4 blocks + UNet W 16 ≈ 2.05 M.
PEERS = (
    PeerSpec("cloudlulc_edge", "network", "cloudlulc_edge", (),
             (("cloudy_s2+s1", _FUSION), ("cloudy_s2", _S1_REMOVED))),
    PeerSpec("unet_early", "network", "unet_early", ("model.width=16",),
             (("cloudy_s2+s1", "UNet early fusion (S2+S1)"),)),
    PeerSpec("unet_s2", "network", "unet_s2", ("model.width=16",), (("cloudy_s2+s1", "UNet S2 only"),)),
    PeerSpec("recon_first", "network", "recon_first",
             ("model.recon_width=32", "model.recon_blocks=4", "model.seg_width=16"),
             (("cloudy_s2+s1", "reconstruction-first (S2+S1)"),)),
    PeerSpec("gbm", "gbm", "", (), (("s2+s1", _GBM), ("s2", _GBM_S2))),
)  # fmt: skip


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def _run(args: tuple[Job, str, int, str, tuple[str, ...], str]) -> str:
    job, base, folds, runs, common, out = args
    result = run_job(job, base, folds, runs, common)
    path = Path(out) / f"{job.key}.json"
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(result) + "\n"))
    return f"{job.key}: {result['seconds']:.0f} s"


def claim_checks(summary: dict[str, Any], labels: str = "water") -> list[dict[str, Any]]:
    """The issue's targets, each with the measured figures and whether it holds (mean mIoU, percent)."""
    rows = summary["rows"]
    checks = []

    def miou(row: str, cover: str) -> float:
        return 100.0 * float(rows[row][labels][cover]["miou"])

    covers = [f"{c:g}" for c in summary["covers"]]
    if _FUSION in rows and _GBM in rows:
        for cover in covers:
            heavy = float(cover) >= 0.5
            ours, peer = miou(_FUSION, cover), miou(_GBM, cover)
            checks.append({"claim": f"fusion {'>' if heavy else '≥'} GBM (S2+S1) at {cover}",
                           "ours": ours, "peer": peer, "holds": ours > peer if heavy else ours >= peer})  # fmt: skip
    if _S1_REMOVED in rows and _GBM_S2 in rows:
        for cover in covers:
            ours, peer = miou(_S1_REMOVED, cover), miou(_GBM_S2, cover)
            checks.append({"claim": f"S1 removed ≥ GBM (S2 only) at {cover}", "ours": ours, "peer": peer,
                           "holds": ours >= peer})  # fmt: skip
    if _FUSION in rows and _S1_REMOVED in rows:
        for cover in (c for c in covers if float(c) >= 0.5):
            ours, peer = miou(_FUSION, cover), miou(_S1_REMOVED, cover)
            checks.append({"claim": f"S1 gains ≥ 3 mIoU points at {cover}", "ours": ours, "peer": peer,
                           "holds": ours - peer >= 3.0})  # fmt: skip
    return checks


def render(result: dict[str, Any]) -> str:
    """Markdown: OA and mIoU with 95 % intervals per row and bin, for both label sets; per-class IoU; checks."""
    summary = result["summary"]
    covers = [f"{c:g}" for c in summary["covers"]]
    intro = (
        f"Cross-validation: {result['folds']} spatial folds × seeds {summary['seeds']} over {result['patches']} "
        f"BigEarthNet patches; {result['machine']} ({result['date']}). Agreement with the Dynamic World teacher, "
        "mean over seeds of the pooled held-out pixels, [95 % bootstrap interval over patches]."
    )
    lines = [intro, ""]
    if result.get("missing_jobs"):
        missing = result["missing_jobs"]
        lines += [
            f"**Partial**: {len(missing)} job(s) are not finished and not in these figures: {', '.join(missing)}.",
            "",
        ]
    for labels, title in (("water", "labels with open water corrected"), ("raw", "raw teacher labels")):
        for metric in ("miou", "oa"):
            lines += [f"**{metric.upper() if metric == 'oa' else 'mIoU'} %, {title}**", "",
                      "| model | " + " | ".join(summary["bins"]) + " |", "|---|" + "---|" * len(covers)]  # fmt: skip
            for row, by in summary["rows"].items():
                cells = []
                for cover in covers:
                    c = by.get(labels, {}).get(cover)
                    cells.append("–" if c is None else f"{100 * c[metric]:.1f} [{100 * c[metric + '_ci'][0]:.1f}, "
                                 f"{100 * c[metric + '_ci'][1]:.1f}]")  # fmt: skip
                lines.append(f"| {row} | " + " | ".join(cells) + " |")
            lines.append("")
    lines += ["**Per-class IoU % (corrected labels, 50–70 % cover)**", "",
              "| model | " + " | ".join(c.name for c in CLASSES) + " |", "|---|" + "---|" * len(CLASSES)]  # fmt: skip
    for row, by in summary["rows"].items():
        cell = by.get("water", {}).get("0.6")
        if cell is not None:
            lines.append(f"| {row} | " + " | ".join("–" if v is None else f"{100 * v:.1f}" for v in cell["iou"]) + " |")
    lines += [
        "",
        "**Targets** (mean mIoU, corrected labels)",
        "",
        "| target | ours | peer | holds |",
        "|---|---|---|---|",
    ]
    for check in result["checks"]:
        lines.append(
            f"| {check['claim']} | {check['ours']:.1f} | {check['peer']:.1f} | {'yes' if check['holds'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], folder: Path) -> list[Path]:
    """One PNG per metric (OA, mIoU) versus cloud cover, with the 95 % intervals as bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary, paths = result["summary"], []
    covers = [f"{c:g}" for c in summary["covers"]]
    x = [100 * c for c in summary["covers"]]
    for metric, label in (("miou", "mIoU"), ("oa", "OA")):
        fig, ax = plt.subplots(figsize=(7.5, 4.2))
        for row, by in summary["rows"].items():
            cells = [by.get("water", {}).get(c) for c in covers]
            if any(c is None for c in cells):
                continue
            y = [100 * c[metric] for c in cells]
            lo = [100 * c[metric + "_ci"][0] for c in cells]
            hi = [100 * c[metric + "_ci"][1] for c in cells]
            (line,) = ax.plot(x, y, marker="o", label=row)
            ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.12)
        ax.set_xlabel("simulated cloud cover (%)")
        ax.set_ylabel(f"{label} % (teacher agreement, water-corrected)")
        ax.set_title(f"{label} vs cloud cover, {result['folds']}-fold spatial CV, 95 % intervals")
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = folder / f"crossval_{metric}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    """Runs (or resumes) the comparison and publishes its tables and plots."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=Path(os.environ.get("CLOUDLULC_DATA", "../shared/data")))
    parser.add_argument("--config", type=Path, default=_CONFIG)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--peer", nargs="+", default=[p.name for p in PEERS])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="extra key=value (smoke runs)")
    parser.add_argument("--runs", type=Path, default=Path("runs/crossval"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--summary-only", action="store_true")
    parser.add_argument("--readme", type=Path, default=None,
                        help="page to update between crossval markers (docs/default-model.md)")  # fmt: skip
    args = parser.parse_args(argv)
    donor = args.data_root / "s2-l2a-safe" / "S2A_MSIL2A_20221005T115411_N0400_R023_T29UNU_20221005T164454.SAFE"
    common = (f"data_root={args.data_root}", f"cloud_donor={donor}", *args.overrides)
    jobs_dir = args.out / "crossval" / "jobs"
    jobs_dir.mkdir(parents=True, exist_ok=True)
    peers = [p for p in PEERS if p.name in args.peer]
    jobs = [Job(p, s, f) for s in args.seeds for f in range(args.folds) for p in peers]
    settings = {j.key: job_settings(j, args.config, args.folds, common) for j in jobs}
    todo = [j for j in jobs if finished_result(jobs_dir / f"{j.key}.json", settings[j.key]) is None]
    if todo and not args.summary_only:
        stale = [j.key for j in todo if (jobs_dir / f"{j.key}.json").exists()]
        if stale:
            print(f"re-running {len(stale)} job(s) whose result was made with other settings: {', '.join(stale)}")
        print(f"{len(todo)} of {len(jobs)} job(s) to run on {args.workers} worker(s)", flush=True)
        work = [(j, str(args.config), args.folds, str(args.runs), common, str(jobs_dir)) for j in todo]
        start = time.perf_counter()
        with mp.get_context("spawn").Pool(args.workers, _worker_init, maxtasksperchild=1) as pool:
            for done, line in enumerate(pool.imap_unordered(_run, work), start=1):
                print(f"[{done}/{len(work)}, {time.perf_counter() - start:.0f} s] {line}", flush=True)
    finished = {j.key: finished_result(jobs_dir / f"{j.key}.json", settings[j.key]) for j in jobs}
    results = [r for r in finished.values() if r is not None]
    missing = [key for key, r in finished.items() if r is None]
    if not results:
        raise SystemExit(f"no finished job with these settings in {jobs_dir}: nothing to summarise")
    if missing:  # a partial comparison is published as such, never as the whole
        print(f"summarising without {len(missing)} unfinished job(s): {', '.join(missing)}", flush=True)
    patches = len({r["patch"] for res in results for r in res["records"]})
    summary = summarise(results)
    env = environment()
    result = {"summary": summary, "folds": args.folds, "patches": patches, "jobs": len(results),
              "train_seconds": sum(r["seconds"] for r in results), "environment": env,
              "machine": env.get("cpu", "this machine"), "date": datetime.now().strftime("%Y-%m-%d"),
              "covers": list(EVAL_COVERS), "bins": list(COVER_BINS), "missing_jobs": missing}  # fmt: skip
    result["checks"] = claim_checks(summary)
    publish("crossval", result, render(result), args.readme, "crossval", args.out)
    plot(result, args.out)


if __name__ == "__main__":
    main()
