"""``cloudlulc-edge info``: parse → `system_info.system_info` → print versions, devices, kernels and variants."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cloudlulc_edge.cli.options import usage_error
from cloudlulc_edge.errors import CloudLULCError

__all__ = ["info"]


def info(
    models: Annotated[
        bool, typer.Option("--models/--no-models", help="Build each variant and count its parameters.")
    ] = True,
    checkpoint: Annotated[Path | None, typer.Option(help="Also print this checkpoint's model card.")] = None,
) -> None:
    """Print versions, devices, backends, kernel dispatch, the registered variants and a model card."""
    from cloudlulc_edge.system_info import system_info

    try:
        about = system_info(models, checkpoint)
    except CloudLULCError as exc:
        raise usage_error(str(exc)) from exc
    console = Console()
    console.print(f"cloudlulc-edge {about.package}  python {about.python}  torch {about.torch}")
    console.print(f"CUDA device: {about.cuda_device}   triton importable: {about.triton_importable}   "
                  f"kernel mode: {about.kernel_mode}")  # fmt: skip
    console.print(f"backends: torch {about.torch}; {about.onnxruntime}; {about.tensorrt}")
    console.print(f"--backend auto: {about.auto_backend}", markup=False, highlight=False, soft_wrap=True)
    kernels = Table(title="fused ops")
    kernels.add_column("op")
    kernels.add_column("implementations")
    for op, backends in about.kernels.items():
        kernels.add_row(op, ", ".join(backends))
    console.print(kernels)
    table = Table(title="model variants")
    for column in ("variant", "architecture", "configuration", "params (M)", "trained weights"):
        table.add_column(column)
    for v in about.variants:
        params = f"{v.params_m:.3f}" if v.params_m is not None else "-"
        table.add_row(v.name, v.architecture, v.summary, params, "packaged" if v.trained else "none (untrained)")
    console.print(table)
    if about.card is not None:
        console.print_json(json.dumps(about.card, default=str))
