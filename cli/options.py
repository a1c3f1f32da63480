"""Options shared by several commands, defined once (help text included)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

__all__ = [
    "BackendOpt",
    "BatchSizeOpt",
    "CheckpointOpt",
    "ClassSchemeOpt",
    "DeviceOpt",
    "DryRunOpt",
    "LogFormatOpt",
    "MaxMemoryOpt",
    "ModelOpt",
    "OverlapOpt",
    "PairWindowOpt",
    "PrecisionOpt",
    "QuietOpt",
    "RequireS1Opt",
    "ResumeOpt",
    "TileOpt",
    "VariantOpt",
    "usage_error",
]

CheckpointOpt = Annotated[
    Path | None, typer.Option(help="Checkpoint directory (model card + safetensors) for the torch backend.")
]
VariantOpt = Annotated[
    str,
    typer.Option(
        help="Registered model variant when no checkpoint is given: its packaged default checkpoint, else untrained."
    ),
]
BackendOpt = Annotated[str, typer.Option(help="Inference backend: torch, onnxruntime or tensorrt.")]
ModelOpt = Annotated[
    Path | None,
    typer.Option(help="onnxruntime: an ONNX file or an `export onnx` directory; tensorrt: a built model.engine."),
]
PrecisionOpt = Annotated[str, typer.Option(help="Graph of an export directory for onnxruntime: fp32, fp16 or int8.")]
DeviceOpt = Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")]
BatchSizeOpt = Annotated[int, typer.Option(min=1, help="Tiles per inference call.")]
TileOpt = Annotated[int, typer.Option(min=16, help="Tile side in pixels (torch; graphs and engines fix their own).")]
OverlapOpt = Annotated[int, typer.Option(min=0, help="Overlap between neighbouring tiles, pixels (even).")]
ClassSchemeOpt = Annotated[str, typer.Option(help="Output codes: worldcover, dynamicworld or native.")]
PairWindowOpt = Annotated[float, typer.Option(min=0.0, help="Largest |S1 − S2| time difference to pair, days.")]
RequireS1Opt = Annotated[bool, typer.Option("--require-s1/--allow-s2-only", help="Leave out S2 scenes without S1.")]
ResumeOpt = Annotated[bool, typer.Option("--resume/--no-resume", help="Skip scenes whose map already exists.")]
MaxMemoryOpt = Annotated[
    int | None,
    typer.Option(
        min=256,
        help="MiB: fail (with the reason) any scene whose estimated peak memory exceeds this, instead of exhausting "
        "the machine; the rest of the batch goes on.",
    ),
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Show what would be mapped, and map nothing.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display; only the summary line.")]
LogFormatOpt = Annotated[
    str,
    typer.Option(help="rich (progress bars) or jsonl (one JSON object per event on stdout, for unattended stations)."),
]


def usage_error(message: str) -> typer.Exit:
    """Prints ``error: message`` to stderr and returns the usage-error exit (code 2) to raise."""
    Console(stderr=True).print(f"[red]error:[/red] {message}")
    return typer.Exit(2)
