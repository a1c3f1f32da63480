"""Publishes a finished training run as a packaged checkpoint: weights, model card, training report.

    CLOUDLULC_DATA=DATA cloudlulc-edge train cloudlulc_edge/weights/train_default.toml   # → runs/default_fusion
    python -m cloudlulc_edge.training.publish runs/default_fusion         # → cloudlulc_edge_default/
    python -m cloudlulc_edge.training.publish --cross-validation bench/results/crossval.json

The run's checkpoint is verified (`load_checkpoint`): its last epoch (``final/``) for a run without
validation (the packaged default trains on every patch and selects nothing), else its best-on-val
checkpoint (``best/``). It is copied with its card (whose ``training`` record gains the data
statement of `data_description` if the run predates it) and described in ``TRAINING.md`` (data,
labels, recipe, validation curve if any, wall time) next to ``training_log.jsonl``, the run's
per-epoch log. ``--cross-validation`` records the held-out figures of
``python -m cloudlulc_edge.bench.crossval`` in the card (``training.cross_validation``) and in
``TRAINING.md``: per cloud bin, mean mIoU and OA with their 95 % intervals, for the model, the
model with S1 removed and the per-pixel GBM peers, with the targets' checks.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from cloudlulc_edge.files import atomic_write
from cloudlulc_edge.models.checkpoint import CARD_FILE, WEIGHTS_FILE, load_checkpoint
from cloudlulc_edge.training.config import TrainConfig
from cloudlulc_edge.training.datasets import data_description
from cloudlulc_edge.training.loop import loss_terms
from cloudlulc_edge.weights import DEFAULT_CHECKPOINTS

__all__ = ["attach_cross_validation", "cross_validation_record", "publish_run", "training_report"]

#: Rows of the cross-validation summary the card records: the model itself and its simplest strong peer.
CARD_ROWS = ("CloudLULC-Net edge (S2+S1)", "CloudLULC-Net edge, S1 removed", "GBM per pixel (S2+S1)",
             "GBM per pixel (S2 only)")  # fmt: skip


def _objective(cfg: dict[str, Any], record: dict[str, Any]) -> str:
    """The loss as the run's log names its terms (CloudLULC-Net: CE + λ_a × anchor; baselines: their own)."""
    if "anchor" in record:
        return f"CE + {cfg['anchor_weight']} × semantic-anchor loss"
    return "loss " + " + ".join(loss_terms(record))


def training_report(card_training: dict[str, Any], log: list[dict[str, Any]]) -> str:
    """Markdown report of a run from its card's training record and its per-epoch log."""
    cfg = card_training["config"]
    data = card_training.get("data", {})
    seconds = sum(r["seconds"] for r in log)
    curve = " · ".join(f"{r['epoch']}: {100 * r['val_miou']:.1f}" for r in log
                       if r["epoch"] % 20 == 0 and r["val_miou"] is not None)  # fmt: skip
    if card_training.get("val_miou") is not None:
        validation = (f"- **Validation** (BigEarthNet val patches at simulated covers {cfg['val_covers']}, mIoU vs the "
                      f"teacher, %): best {100 * card_training['val_miou']:.2f}; by epoch {curve}.")  # fmt: skip
        selection = f"best epoch {card_training['epoch']}"
    else:
        validation = ("- **Validation**: none in this run (every patch trains); the recipe's held-out accuracy is the "
                      "cross-validation (`python -m cloudlulc_edge.bench.crossval`, `bench/results/crossval.md`).")  # fmt: skip
        selection = "the last epoch is the checkpoint (nothing selected on held-out data)"
    lines = [
        "# Training report: the packaged default checkpoint",
        "",
        f"- **Variant** `{cfg['variant']}`, inputs `{cfg['inputs']}`, seed {cfg['seed']}.",
        *(f"- **{k.replace('_', ' ').capitalize()}**: {v}" for k, v in data.items()),
        (
            f"- **Recipe**: AdamW lr {cfg['lr']}, weight decay {cfg['weight_decay']}, warm-up {cfg['warmup_iters']} "
            f"steps then {cfg['schedule']}, batch {cfg['batch_size']}, random {cfg['crop']}-px crops, flips and rot90, "
            f"{_objective(cfg, log[-1])}, class weighting {cfg.get('class_weighting', 'none')}, gradient clipping "
            f"{cfg['grad_clip']}, AMP {cfg['amp']}."
        ),
        (
            f"- **Epochs** {len(log)} ({log[-1]['step']} steps), {seconds / 60:.1f} min of epoch wall time (summed "
            f"from the log) on device `{cfg['device']}`; {selection}."
        ),
        validation,
        "",
        (
            "Reproduce: `CLOUDLULC_DATA=DATA cloudlulc-edge train cloudlulc_edge/weights/train_default.toml` (DATA: the "
            "BigEarthNet folders, `dw-labels` and the cloudy L2A product), then "
            "`python -m cloudlulc_edge.training.publish runs/default_fusion`. The cross-validated accuracy per cloud bin "
            "against the simple peers is in `bench/results/crossval.md` (docs/default-model.md)."
        ),
        *(_cross_validation_lines(card_training["cross_validation"]) if "cross_validation" in card_training else []),
        "",
    ]
    return "\n".join(lines)


def cross_validation_record(summary: dict[str, Any], source: str) -> dict[str, Any]:
    """The card's ``cross_validation`` record from a ``bench/results/crossval.json``.

    Returns:
        ``{"source", "folds", "patches", "seeds", "bins", "labels", "rows": {name: {labels: {"miou",
        "oa": [[mean, low, high] per bin, in %]}}}, "checks"}``.
    """
    rows = summary["summary"]["rows"]
    bins = [str(b) for b in summary["bins"]]
    keys = sorted(rows[CARD_ROWS[0]]["water"], key=float)

    def triple(cell: dict[str, Any], metric: str) -> list[float]:
        low, high = cell[f"{metric}_ci"]
        return [round(100 * cell[metric], 4), round(100 * low, 4), round(100 * high, 4)]

    record_rows = {
        name: {labels: {metric: [triple(rows[name][labels][k], metric) for k in keys] for metric in ("miou", "oa")}
               for labels in ("water", "raw")}
        for name in CARD_ROWS if name in rows
    }  # fmt: skip
    return {
        "source": source,
        "folds": summary["folds"],
        "patches": summary["patches"],
        "seeds": rows[CARD_ROWS[0]]["water"][keys[0]].get("seeds"),
        "bins": bins,
        "labels": {"water": "teacher labels with the open-water rule (as trained)", "raw": "raw teacher labels"},
        "rows": record_rows,
        "checks": summary.get("checks", []),
        "date": summary.get("date"),
        "machine": summary.get("machine"),
    }


def attach_cross_validation(checkpoint: Path, crossval_json: Path) -> Path:
    """Records a cross-validation summary in a published checkpoint's card and ``TRAINING.md``.

    Raises:
        ModelCardError: The checkpoint (before or after) does not verify.
        FileNotFoundError: No summary, or no ``training_log.jsonl`` beside the checkpoint.
    """
    _, card = load_checkpoint(checkpoint)
    summary = json.loads(crossval_json.read_text())
    training = {**card.training, "cross_validation": cross_validation_record(summary, crossval_json.name)}
    log = [json.loads(line) for line in (checkpoint / "training_log.jsonl").read_text().splitlines() if line.strip()]
    atomic_write(checkpoint / "TRAINING.md", lambda tmp: tmp.write_text(training_report(training, log)))
    published = replace(card, training=training)
    atomic_write(checkpoint / CARD_FILE, lambda tmp: tmp.write_text(json.dumps(published.to_dict(), indent=2) + "\n"))
    load_checkpoint(checkpoint)
    return checkpoint


def _cross_validation_lines(record: dict[str, Any]) -> list[str]:
    """TRAINING.md lines: mIoU per cloud bin with its 95 % interval, model vs peers (water-corrected labels)."""
    bins = record["bins"]
    title = (f"## Cross-validated (held-out) accuracy, {record['folds']}-fold over {record['patches']} patches, "
             f"{record['seeds']} seed(s)")  # fmt: skip
    what = "mIoU % against the water-corrected teacher labels, mean [95 % interval], per simulated cloud cover:"
    lines = ["", title, "", what, "", "| model | " + " | ".join(bins) + " |", "|---|" + "---|" * len(bins)]
    for name, cell in record["rows"].items():
        lines.append(f"| {name} | " + " | ".join(f"{m:.1f} [{lo:.1f}, {hi:.1f}]" for m, lo, hi in cell["water"]["miou"])
                     + " |")  # fmt: skip
    held = [c for c in record["checks"] if c.get("holds")]
    met = f"Targets met: {len(held)} of {len(record['checks'])} (`{record['source']}`, docs/default-model.md)."
    lines += ["", met]
    return lines


def publish_run(run_dir: Path, dest: Path) -> Path:
    """Copies the run's checkpoint (``final/`` without validation, else ``best/``) to ``dest``.

    The copy gets an updated card, ``TRAINING.md`` and the log.

    Raises:
        ModelCardError: The run's checkpoint does not verify.
        FileNotFoundError: The run has no checkpoint or no log.
    """
    final = run_dir / "final"
    _, final_card = load_checkpoint(final) if (final / CARD_FILE).is_file() else (None, None)
    validated = final_card is None or final_card.training.get("val_miou") is not None
    best = run_dir / "best" if validated else final
    _, card = load_checkpoint(best)
    training = dict(card.training)
    training.setdefault("data", data_description(TrainConfig.from_dict(training["config"])))
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines() if line.strip()]
    dest.mkdir(parents=True, exist_ok=True)
    atomic_write(dest / WEIGHTS_FILE, lambda tmp: shutil.copyfile(best / WEIGHTS_FILE, tmp))
    atomic_write(dest / "training_log.jsonl", lambda tmp: shutil.copyfile(run_dir / "log.jsonl", tmp))
    atomic_write(dest / "TRAINING.md", lambda tmp: tmp.write_text(training_report(training, log)))
    published = replace(card, training=training)
    atomic_write(dest / CARD_FILE, lambda tmp: tmp.write_text(json.dumps(published.to_dict(), indent=2) + "\n"))
    load_checkpoint(dest)  # the published copy verifies too
    return dest


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, nargs="?",
                        help="finished training run (with final/ or best/, and log.jsonl)")  # fmt: skip
    parser.add_argument("--dest", type=Path, default=DEFAULT_CHECKPOINTS["cloudlulc_edge"])
    parser.add_argument("--cross-validation", type=Path, help="bench/results/crossval.json to record in the card")
    args = parser.parse_args()
    if args.run_dir is None and args.cross_validation is None:
        parser.error("give a run to publish, --cross-validation, or both")
    if args.run_dir is not None:
        print(publish_run(args.run_dir, args.dest))
    if args.cross_validation is not None:
        print(attach_cross_validation(args.dest, args.cross_validation))


if __name__ == "__main__":
    main()
