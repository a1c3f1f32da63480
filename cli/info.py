"""``cloudlulc-edge info``: versions, devices, kernel dispatch and the registered model variants."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Annotated

import torch
import typer
from cloudlulc_edge.kernels import available_implementations, get_kernel_mode
from cloudlulc_edge.kernels.dispatch import triton_importable
from rich.console import Console
from rich.table import Table

from cloudlulc_edge.models import VARIANT_CONFIGS, create_model, list_models
from cloudlulc_edge.models.architectures import architecture_for_config
from cloudlulc_edge.version import __version__

__all__ = ["info"]


def info(
    models: Annotated[
        bool, typer.Option("--models/--no-models", help="Build each variant and count its parameters.")
    ] = True,
    checkpoint: Annotated[Path | None, typer.Option(help="Also print this checkpoint's model card.")] = None,
) -> None:
    """Print versions, devices, backends, kernel dispatch, the registered variants and a model card."""
    console = Console()
    console.print(f"cloudlulc-edge {__version__}  python {platform.python_version()}  torch {torch.__version__}")
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    console.print(f"CUDA device: {cuda}   triton importable: {triton_importable()}   kernel mode: {get_kernel_mode()}")
    console.print(f"backends: torch {torch.__version__}; {_onnxruntime()}; {_tensorrt()}")
    kernels = Table(title="fused ops")
    kernels.add_column("op")
    kernels.add_column("implementations")
    for op, backends in available_implementations().items():
        kernels.add_row(op, ", ".join(backends))
    console.print(kernels)
    table = Table(title="model variants")
    for column in ("variant", "architecture", "configuration", "params (M)"):
        table.add_column(column)
    for name in list_models():
        cfg = VARIANT_CONFIGS[name]
        model = create_model(name) if models else None
        params = f"{sum(p.numel() for p in model.parameters()) / 1e6:.3f}" if model is not None else "-"
        table.add_row(name, architecture_for_config(cfg).name, cfg.summary(), params)
    console.print(table)
    if checkpoint is not None:
        from cloudlulc_edge.cli.options import usage_error

        from cloudlulc_edge.errors import CloudLULCError
        from cloudlulc_edge.models.checkpoint import read_card

        try:
            card = read_card(checkpoint)
        except CloudLULCError as exc:
            raise usage_error(str(exc)) from exc
        console.print_json(json.dumps(card.to_dict(), default=str))


def _onnxruntime() -> str:
    try:
        import onnxruntime as ort
    except ImportError:
        return "onnxruntime not installed (export extra)"
    providers = ", ".join(p.removesuffix("ExecutionProvider") for p in ort.get_available_providers())
    return f"onnxruntime {ort.__version__} ({providers})"


def _tensorrt() -> str:
    try:
        import tensorrt as trt
    except ImportError:
        return "tensorrt not importable (tensorrt extra / JetPack)"
    return f"tensorrt {trt.__version__}"
