"""``cloudlulc-edge export …``: ONNX/FP16/INT8 export directories and on-target TensorRT engines."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cloudlulc_edge.cli.options import AllowUntrainedOpt, CheckpointOpt, Precision, usage_error

__all__ = ["export_app"]


class CalibrationChoice(str, Enum):
    """``--method``."""

    entropy = "entropy"
    max = "max"


class SpectralChoice(str, Enum):
    """``--spectral``."""

    matmul = "matmul"
    fft = "fft"


export_app = typer.Typer(help="Export ONNX (standard/plugin, FP32/FP16/INT8), plugin PTX and a manifest.",
                         no_args_is_help=True)  # fmt: skip


@export_app.command("onnx")
def export_onnx_command(
    out_dir: Annotated[Path, typer.Argument(metavar="OUT_DIR", help="Export directory (created).")],
    variant: Annotated[str, typer.Option(help="Registered variant (ignored with --checkpoint).")] = "cloudlulc_edge",
    checkpoint: CheckpointOpt = None,
    tile: Annotated[int, typer.Option(help="Static tile side (multiple of 16).")] = 512,
    max_batch: Annotated[int, typer.Option(help="Largest batch of the symbolic batch dimension.")] = 32,
    precision: Annotated[
        list[Precision] | None,
        typer.Option(help="Repeatable; default fp32 and fp16, plus int8 when --calibrate is given."),
    ] = None,
    calibrate: Annotated[Path | None, typer.Option(help="Directory of scenes to calibrate INT8 on.")] = None,
    calibration_tiles: Annotated[int, typer.Option(min=1, help="Calibration tiles to sample.")] = 64,
    method: Annotated[CalibrationChoice, typer.Option(help="INT8 calibration method.")] = CalibrationChoice.entropy,
    plugin: Annotated[
        bool | None,
        typer.Option(
            "--plugin/--no-plugin",
            help="Also write the TensorRT plugin flavour and its Triton PTX (default: when triton, the kernels "
            "extra, is installed).",
        ),
    ] = None,
    spectral: Annotated[
        SpectralChoice, typer.Option(help="SHOI spectral term: matmul (all TensorRT) or fft (≥ 11.2).")
    ] = SpectralChoice.matmul,
    allow_untrained: AllowUntrainedOpt = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Show ModelOpt's per-node progress lines (≈ 150 per graph).")
    ] = False,
) -> None:
    """Write model_{fp32,fp16,int8}.onnx, the plugin graph with its PTX, and manifest.json."""
    import importlib.util
    import logging

    from cloudlulc_edge.errors import CloudLULCError
    from cloudlulc_edge.export.bundle import ExportOptions, ExportRequest, export_request

    if precision and Precision.auto in precision:
        raise usage_error("--precision auto chooses among an export's graphs when mapping; here name fp32, fp16 "
                          "or int8")  # fmt: skip
    # An explicit --plugin without triton is refused by `export_model` (ExportError → usage error).
    has_triton = importlib.util.find_spec("triton") is not None
    if plugin is None and not has_triton:
        Console(stderr=True).print("plugin flavour skipped: it needs triton (pip install 'cloudlulc-edge[kernels]')")
    plugin = has_triton if plugin is None else plugin
    if verbose:  # `export.precision.modelopt_logs` lets ModelOpt's INFO lines through at DEBUG
        logging.getLogger("cloudlulc_edge.export.precision").setLevel(logging.DEBUG)
    precisions = [p.value for p in precision] if precision else ["fp32", "fp16", *(["int8"] if calibrate else [])]
    options = ExportOptions(tile=tile, max_batch=max_batch, precisions=tuple(precisions), plugin=plugin,
                            spectral=spectral.value, calibration_method=method.value)  # fmt: skip
    try:
        manifest, identity = export_request(ExportRequest(out_dir, variant, checkpoint, options, calibrate,
                                                          calibration_tiles, allow_untrained))  # fmt: skip
    except CloudLULCError as exc:
        raise usage_error(str(exc)) from exc
    table = Table(title=f"{out_dir} ({identity.name}, tile {tile})")
    for column in ("file", "flavour", "precision", "MB", "Q/DQ", "vs reference"):
        table.add_column(column)
    for art in manifest["artifacts"]:
        parity = art.get("parity_vs_torch", {}).get("batch3") or art.get("parity_vs_fp32")
        note = f"max|Δ| {parity['max_abs']:.2g}, argmax {parity['argmax_agreement']:.2%}" if parity else "structural"
        table.add_row(art["file"], art["flavour"], art["precision"], f"{art['bytes'] / 1e6:.1f}",
                      str(art["qdq_pairs"]), note)  # fmt: skip
    Console().print(table)
