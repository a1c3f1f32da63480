"""``cloudlulc-edge export …``: ONNX/FP16/INT8 export directories and on-target TensorRT engines."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from cloudlulc_edge.cli.options import usage_error
from rich.console import Console
from rich.table import Table

from cloudlulc_edge.errors import CloudLULCError
from cloudlulc_edge.runner import load_model

__all__ = ["export_app"]

export_app = typer.Typer(help="Export ONNX (standard/plugin, FP32/FP16/INT8), plugin PTX and a manifest.",
                         no_args_is_help=True)  # fmt: skip
_console = Console(stderr=True)


@export_app.command("onnx")
def export_onnx_command(
    out_dir: Annotated[Path, typer.Argument(help="Export directory (created).")],
    variant: Annotated[str, typer.Option(help="Registered variant (ignored with --checkpoint).")] = "cloudlulc_edge",
    checkpoint: Annotated[Path | None, typer.Option(help="Checkpoint directory (model card + weights).")] = None,
    tile: Annotated[int, typer.Option(help="Static tile side (multiple of 16).")] = 512,
    max_batch: Annotated[int, typer.Option(help="Largest batch of the symbolic batch dimension.")] = 32,
    precision: Annotated[list[str] | None, typer.Option(help="fp32, fp16, int8 (repeatable; default all).")] = None,
    calibrate: Annotated[Path | None, typer.Option(help="Directory of scenes to calibrate INT8 on.")] = None,
    calibration_tiles: Annotated[int, typer.Option(help="Calibration tiles to sample.")] = 64,
    method: Annotated[str, typer.Option(help="INT8 calibration: entropy or max.")] = "entropy",
    plugin: Annotated[
        bool, typer.Option("--plugin/--no-plugin", help="Also write the TensorRT plugin flavour.")
    ] = True,
    spectral: Annotated[
        str, typer.Option(help="SHOI spectral term: matmul (all TensorRT) or fft (≥ 11.2).")
    ] = "matmul",
) -> None:
    """Write model_{fp32,fp16,int8}.onnx, the plugin graph with its PTX, and manifest.json."""
    from cloudlulc_edge.export.bundle import ExportOptions, export_model
    from cloudlulc_edge.export.calibration import build_calibration_set

    from cloudlulc_edge.io.products import scan
    from cloudlulc_edge.pairing import pair_products

    precision = precision or ["fp32", "fp16", "int8"]
    try:
        model, identity = load_model(variant, checkpoint, tile)
        calibration = None
        if calibrate is not None:
            pairs = pair_products(scan(calibrate).products).pairs
            calibration = build_calibration_set(pairs, tile, calibration_tiles)
        elif "int8" in precision:
            _console.print("[yellow]no --calibrate scenes: INT8 skipped[/yellow]")
            precision = [p for p in precision if p != "int8"]
        options = ExportOptions(tile=tile, max_batch=max_batch, precisions=tuple(precision), plugin=plugin,
                                spectral=spectral, calibration_method=method)  # type: ignore[arg-type]  # fmt: skip
        manifest = export_model(model, identity, out_dir, options, calibration)
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
