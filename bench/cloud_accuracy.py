"""Benchmark: the paper's central claim in miniature — accuracy per simulated cloud bin, fusion vs S2-only vs S1-only.

Three ``cloudlulc_edge`` models of the same size and training budget (the packaged config, with
``inputs`` = ``cloudy_s2+s1``, ``cloudy_s2`` and ``s1``) are evaluated on the held-out BigEarthNet
test patches (BigEarthNet's own test split, never trained or selected on) with clouds simulated
from a real cloudy L2A product at 0, 20, 40, 60 and 80 % cover (bins 0, 10–30, 30–50, 50–70 and
70–90 %), deterministic per patch and cover. Metrics are OA and mIoU **against Dynamic World
teacher labels**, i.e. agreement with the teacher, on 11 small patches: a sanity check of the
claim, not a reproduction of the paper's numbers.

    python -m cloudlulc_edge.bench.cloud_accuracy --fusion runs/default_fusion/best \\
        --s2-only runs/default_s2only/best --s1-only runs/default_s1only/best \\
        [--baseline unet_early=runs/baseline_unet_early/best …] [--readme README.md]

``--baseline NAME=CHECKPOINT`` adds the baseline networks (any registered architecture, evaluated
with the input configuration its card records) as further columns.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import Any

from cloudlulc_edge.bench.utils import environment, markdown_table, publish

from cloudlulc_edge.data.cloudlulc_set import cloud_bin
from cloudlulc_edge.models.checkpoint import load_checkpoint
from cloudlulc_edge.training.config import TrainConfig
from cloudlulc_edge.training.datasets import evaluation_set
from cloudlulc_edge.training.evaluate import evaluate

__all__ = ["COVERS", "claim_checks", "plot", "render", "run"]

_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
_DONOR = _SHARED / "s2-l2a-safe" / "S2A_MSIL2A_20221005T115411_N0400_R023_T29UNU_20221005T164454.SAFE"
#: Simulated covers and the issue's bins they stand for.
COVERS = (0.0, 0.2, 0.4, 0.6, 0.8)
BINS = ("0 %", "10–30 %", "30–50 %", "50–70 %", "70–90 %")
MODELS = ("fusion", "s2_only", "s1_only")


def run(checkpoints: dict[str, Path], data_root: Path, cloud_donor: Path, split: str = "test", seed: int = 0,
        device: str = "cpu") -> dict[str, Any]:  # fmt: skip
    """Evaluates each model (with the input configuration it was trained on) at every cover.

    Args:
        checkpoints: ``fusion``, ``s2_only``, ``s1_only`` and any baselines → checkpoint directory.
        data_root: BigEarthNet + dw-labels folder.
        cloud_donor: Cloudy L2A SAFE.
        split: Evaluation split.
        seed: Seed of the simulated clouds.
        device: Where to run.
    """
    cfg = TrainConfig(data_root=str(data_root), dataset="bigearthnet_dw", cloud_donor=str(cloud_donor),
                      val_covers=COVERS, seed=seed)  # fmt: skip
    data = evaluation_set(cfg, split)
    models: dict[str, Any] = {}
    for name, path in checkpoints.items():
        model, card = load_checkpoint(path)
        inputs = card.training.get("config", {}).get("inputs", "cloudy_s2+s1")
        report = evaluate(model, data, batch_size=8, device=device, inputs=inputs)
        per_bin = {}
        for cover, label in zip(COVERS, BINS, strict=True):
            stratum = report["strata"][cloud_bin(cover)]
            per_bin[label] = {"oa": stratum["oa"], "miou": stratum["miou"], "samples": stratum["samples"]}
        models[name] = {"checkpoint": str(path), "inputs": inputs, "weights_sha256": card.weights_sha256,
                        "variant": card.variant, "architecture": card.architecture,
                        "epoch": card.training.get("epoch"), "val_miou": card.training.get("val_miou"),
                        "bins": per_bin, "overall": {k: report["overall"][k] for k in ("oa", "miou", "macro_f1")}}  # fmt: skip
    result = {
        "date": datetime.now().isoformat(timespec="seconds"),
        "environment": environment(),
        "split": split,
        "patches": len(data) // len(COVERS),
        "covers": list(COVERS),
        "seed": seed,
        "labels": "Dynamic World teacher predictions (not ground truth)",
        "models": models,
    }
    result["claims"] = claim_checks(result)
    return result


def claim_checks(result: dict[str, Any]) -> dict[str, Any]:
    """The issue's two checks: fusion beats S2-only at every bin ≥ 30 %, and loses least from 0 to 70–90 %."""
    m = result["models"]
    if not {"fusion", "s2_only"} <= set(m):
        return {}
    heavy = [b for b, c in zip(BINS, COVERS, strict=True) if c >= 0.3]
    beats = {b: {k: m["fusion"]["bins"][b][k] > m["s2_only"]["bins"][b][k] for k in ("oa", "miou")} for b in heavy}
    drop = {n: {k: v["bins"][BINS[0]][k] - v["bins"][BINS[-1]][k] for k in ("oa", "miou")} for n, v in m.items()}
    least = {k: min(drop, key=lambda n: drop[n][k]) == "fusion" for k in ("oa", "miou")}
    return {"fusion_beats_s2_only_at_heavy_bins": beats, "drop_0_to_70_90": drop, "fusion_loses_least": least}


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def render(result: dict[str, Any]) -> str:
    """Markdown table (OA / mIoU per bin and model) plus the claim checks."""
    models = result["models"]
    rows = []
    for label in BINS:
        row: dict[str, Any] = {"bin": label}
        for name in models:
            b = models[name]["bins"][label]
            row[name] = f"{_pct(b['oa'])} / {_pct(b['miou'])}"
        rows.append(row)
    # CloudLULC-Net models differ by their input configuration; a baseline's variant says what it reads.
    columns = [("bin", "simulated cloud cover")] + [
        (n, f"{n} ({models[n]['inputs']}) OA / mIoU %" if models[n].get("architecture", "cloudlulc_net") ==
         "cloudlulc_net" else f"{n} OA / mIoU %") for n in models]  # fmt: skip
    env = result["environment"]
    text = (f"{result['patches']} held-out BigEarthNet {result['split']} patches × {len(BINS)} covers, clouds "
            f"simulated from a real L2A product (seed {result['seed']}); agreement with **Dynamic World teacher "
            f"labels**, not ground truth. CPU: {env['cpu']}, {result['date'][:10]}.\n\n")  # fmt: skip
    text += markdown_table(rows, columns)
    claims = result.get("claims") or {}
    if claims:
        beats = claims["fusion_beats_s2_only_at_heavy_bins"]
        drop = claims["drop_0_to_70_90"]
        text += "\nFusion beats S2-only (OA, mIoU): " + ", ".join(
            f"{b}: {'yes' if v['oa'] else 'no'}, {'yes' if v['miou'] else 'no'}" for b, v in beats.items()
        )
        text += ". Drop from 0 % to 70–90 % (OA / mIoU points): " + ", ".join(
            f"{n} {100 * d['oa']:.1f} / {100 * d['miou']:.1f}" for n, d in drop.items()) + ".\n"  # fmt: skip
    return text


def plot(result: dict[str, Any], path: Path) -> Path:
    """OA and mIoU per cloud bin, one line per model (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key in zip(axes, ("oa", "miou"), strict=True):
        for name, m in result["models"].items():
            label = f"{name} ({m['inputs']})" if m.get("architecture", "cloudlulc_net") == "cloudlulc_net" else name
            ax.plot(BINS, [100 * (m["bins"][b][key] or 0) for b in BINS], marker="o", label=label)
        ax.set_title(f"{key.upper()} vs teacher labels (%)")
        ax.set_xlabel("simulated cloud cover")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fusion", type=Path, required=True, help="cloudy_s2+s1 checkpoint")
    parser.add_argument("--s2-only", type=Path, required=True, help="cloudy_s2 checkpoint")
    parser.add_argument("--s1-only", type=Path, required=True, help="s1 checkpoint")
    parser.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="NAME=CHECKPOINT",
        help="also evaluate a baseline checkpoint (repeatable), e.g. unet_early=runs/…/best",
    )
    parser.add_argument("--data-root", type=Path, default=_SHARED)
    parser.add_argument("--cloud-donor", type=Path, default=_DONOR)
    parser.add_argument("--split", default="test")
    parser.add_argument("--readme", type=Path, default=None, help="README to update between cloud-accuracy markers")
    args = parser.parse_args()
    checkpoints = {"fusion": args.fusion, "s2_only": args.s2_only, "s1_only": args.s1_only}
    for item in args.baseline:
        name, sep, path = item.partition("=")
        if not sep or not name or name in checkpoints:
            parser.error(f"--baseline must be NAME=CHECKPOINT with a new name, got {item!r}")
        checkpoints[name] = Path(path)
    result = run(checkpoints, args.data_root, args.cloud_donor, args.split)
    path = publish("cloud_accuracy", result, render(result), args.readme, "cloud-accuracy")
    plot(result, path.with_suffix(".png"))


if __name__ == "__main__":
    main()
