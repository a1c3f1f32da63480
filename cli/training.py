"""``cloudlulc-edge train`` and ``evaluate``: CloudLULC-Set training runs and evaluation reports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from cloudlulc_edge.cli.options import DeviceOpt, usage_error
from rich.console import Console

from cloudlulc_edge.errors import CloudLULCError

__all__ = ["evaluate_command", "train_command"]


def train_command(
    config: Annotated[Path | None, typer.Argument(help="TOML file with [train] and [model] tables.")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override key=value (repeatable), e.g. epochs=3, model.order=3.")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Continue OUTPUT/last/state.pt.")] = True,
) -> None:
    """Train (or resume) a CloudLULC-Net on CloudLULC-Set; one line per epoch."""
    from cloudlulc_edge.training import load_config, train

    console = Console()
    try:
        cfg = load_config(config, set_ or [])
        result = train(cfg, resume=resume, on_epoch=lambda r: console.print(
            f"epoch {r['epoch']}: loss {r['loss']:.4f} (ce {r['ce']:.4f}, anchor {r['anchor']:.4f}), "
            f"val mIoU {r['val_miou'] if r['val_miou'] is None else round(r['val_miou'], 4)}, {r['seconds']} s"))  # fmt: skip
    except CloudLULCError as exc:
        raise usage_error(str(exc)) from exc
    console.print(f"{result.epochs_run} epoch(s) run, {result.last_epoch}/{cfg.epochs} done; best val mIoU "
                  f"{result.best_miou}; checkpoint {result.best_checkpoint}")  # fmt: skip


def evaluate_command(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint directory (model card + weights).")],
    data_root: Annotated[Path, typer.Argument(help="CloudLULC-Set root.")],
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    label_scheme: Annotated[str, typer.Option(help="one_based or zero_based label ids.")] = "one_based",
    s2_offset: Annotated[float, typer.Option(help="DN offset of the optical files.")] = 0.0,
    s1_units: Annotated[str, typer.Option(help="db or linear backscatter.")] = "db",
    batch_size: Annotated[int, typer.Option(min=1, help="Samples per forward pass.")] = 4,
    device: DeviceOpt = "cpu",
    inputs: Annotated[
        str, typer.Option(help="cloudy_s2+s1 (default), cloudy_s2, s1 or clear_s2+s1 (the paper's Fig. 12).")
    ] = "cloudy_s2+s1",
    out: Annotated[Path, typer.Option(help="Folder for metrics.json, metrics.md and the PNG figures.")] = Path("eval"),
) -> None:
    """Evaluate a checkpoint: OA, per-class IoU/F1, mIoU, macro-F1, overall and per cloud bin."""
    from cloudlulc_edge.data import CloudLULCSet
    from cloudlulc_edge.models.checkpoint import load_checkpoint
    from cloudlulc_edge.training.evaluate import evaluate, render_markdown, write_report

    try:
        model, card = load_checkpoint(checkpoint)
        data = CloudLULCSet(data_root, split, label_scheme, s2_offset, s1_units)  # type: ignore[arg-type]
        report = evaluate(model, data, batch_size, device, inputs)
    except CloudLULCError as exc:
        raise usage_error(str(exc)) from exc
    paths = write_report(report, out, f"{card.variant} on {data_root.name} ({split})")
    Console().print(render_markdown(report, f"{card.variant} ({split})"))
    Console(stderr=True).print("written: " + ", ".join(str(p) for p in paths.values()))
