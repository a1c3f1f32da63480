"""``cloudlulc-edge train`` and ``evaluate``: training runs and evaluation reports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from cloudlulc_edge.cli.options import DeviceOpt, usage_error
from cloudlulc_edge.errors import CloudLULCError

__all__ = ["evaluate_command", "train_command"]


def _epoch_line(record: dict[str, Any]) -> str:
    """``epoch 3: loss 0.91 (ce 0.80, anchor 0.22), val mIoU 0.41, 2.1 s`` with the objective's own terms."""
    from cloudlulc_edge.training.loop import loss_terms

    terms = ", ".join(f"{k} {v:.4f}" for k, v in loss_terms(record).items())
    miou = record["val_miou"]
    return (f"epoch {record['epoch']}: loss {record['loss']:.4f} ({terms}), "
            f"val mIoU {miou if miou is None else round(miou, 4)}, {record['seconds']} s")  # fmt: skip


def train_command(
    config: Annotated[
        Path | None, typer.Argument(metavar="CONFIG", help="TOML file with \\[train] and \\[model] tables.")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override key=value (repeatable), e.g. epochs=3, model.order=3.")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Continue OUTPUT/last/state.pt.")] = True,
) -> None:
    """Train (or resume) any variant (CloudLULC-Net or a baseline) on CloudLULC-Set or BigEarthNet; a line per epoch."""
    from cloudlulc_edge.training.loop import train_from_config

    console = Console()
    try:
        result = train_from_config(config, set_ or [], resume, on_epoch=lambda r: console.print(_epoch_line(r)))
    except CloudLULCError as exc:
        raise usage_error(str(exc)) from exc
    console.print(f"{result.epochs_run} epoch(s) run, {result.last_epoch}/{result.epochs} done; best val mIoU "
                  f"{result.best_miou}; checkpoints: best {result.best_checkpoint}, final {result.final_checkpoint}")  # fmt: skip


def evaluate_command(
    checkpoint: Annotated[
        Path, typer.Argument(metavar="CHECKPOINT", help="Checkpoint directory (model card + weights).")
    ],
    data_root: Annotated[
        Path,
        typer.Argument(metavar="DATA_ROOT", help="CloudLULC-Set root, or the BigEarthNet + dw-labels data folder."),
    ],
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    dataset: Annotated[
        str, typer.Option(help="cloudlulc_set, or bigearthnet_dw (teacher labels, simulated clouds).")
    ] = "cloudlulc_set",
    cloud_donor: Annotated[
        Path | None, typer.Option(help="bigearthnet_dw: cloudy L2A SAFE whose clouds are simulated.")
    ] = None,
    covers: Annotated[
        str, typer.Option(help="bigearthnet_dw: simulated cloud covers, comma-separated fractions.")
    ] = "0,0.2,0.4,0.6,0.8",
    label_scheme: Annotated[str, typer.Option(help="one_based or zero_based label ids.")] = "one_based",
    s2_offset: Annotated[float, typer.Option(help="DN offset of the optical files.")] = 0.0,
    s1_units: Annotated[str, typer.Option(help="db or linear backscatter.")] = "db",
    batch_size: Annotated[int, typer.Option(min=1, help="Samples per forward pass.")] = 4,
    device: DeviceOpt = "cpu",
    inputs: Annotated[
        str, typer.Option(help="cloudy_s2+s1 (default), cloudy_s2, s1 or clear_s2+s1 (the paper's Fig. 12).")
    ] = "cloudy_s2+s1",
    label_rule: Annotated[
        str, typer.Option(help="bigearthnet_dw: raw teacher labels, or water (open water corrected by physics).")
    ] = "raw",
    out: Annotated[Path, typer.Option(help="Folder for metrics.json, metrics.md and the PNG figures.")] = Path("eval"),
) -> None:
    """Evaluate a checkpoint: OA, per-class IoU/F1, mIoU, macro-F1, overall and per cloud bin."""
    from cloudlulc_edge.training.evaluate import EvaluationRequest, evaluate_checkpoint, render_markdown

    try:
        fractions = tuple(float(c) for c in covers.split(","))
    except ValueError as exc:
        raise usage_error(f"--covers must be comma-separated fractions, got {covers!r}") from exc
    request = EvaluationRequest(checkpoint, data_root, out, split, dataset, cloud_donor, fractions, label_scheme,
                                s2_offset, s1_units, label_rule, batch_size, device, inputs)  # fmt: skip
    try:
        report, paths, title = evaluate_checkpoint(request)
    except CloudLULCError as exc:
        raise usage_error(str(exc)) from exc
    Console().print(render_markdown(report, title))
    Console(stderr=True).print("written: " + ", ".join(str(p) for p in paths.values()))
