"""``cloudlulc-edge export …``: ONNX/FP16/INT8 export directories and on-target TensorRT engines."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import torch
import typer
from rich.console import Console
from rich.table import Table

from cloudlulc_edge.backends.base import ModelIdentity
from cloudlulc_edge.errors import CloudLULCError
from cloudlulc_edge.models import create_model, list_models
from cloudlulc_edge.models.checkpoint import load_checkpoint

__all__ = ["export_app", "load_model"]

export_app = typer.Typer(help="Export ONNX (standard/plugin, FP32/FP16/INT8) and build TensorRT engines.",
                         no_args_is_help=True)  # fmt: skip
_console = Console(stderr=True)


def load_model(variant: str, checkpoint: Path | None, tile: int) -> tuple[torch.nn.Module, ModelIdentity]:
    """The model to export: a checkpoint (variant from its card) or an untrained registered variant.

    Raises:
        ModelCardError: A bad checkpoint.
        typer.BadParameter: An unknown variant.
    """
    if checkpoint is not None:
        model, card = load_checkpoint(checkpoint)
        return model, ModelIdentity(card.variant, card.package_version, card.weights_sha256, tile)
    if variant not in list_models():
        raise typer.BadParameter(f"unknown variant {variant!r}; one of {', '.join(list_models())}")
    return create_model(variant).eval(), ModelIdentity(variant, "untrained", "untrained", tile)


def _fail(exc: CloudLULCError) -> None:
    _console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(2)


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
        _fail(exc)
    table = Table(title=f"{out_dir} ({identity.name}, tile {tile})")
    for column in ("file", "flavour", "precision", "MB", "Q/DQ", "vs reference"):
        table.add_column(column)
    for art in manifest["artifacts"]:
        parity = art.get("parity_vs_torch", {}).get("batch3") or art.get("parity_vs_fp32")
        note = f"max|Δ| {parity['max_abs']:.2g}, argmax {parity['argmax_agreement']:.2%}" if parity else "structural"
        table.add_row(art["file"], art["flavour"], art["precision"], f"{art['bytes'] / 1e6:.1f}",
                      str(art["qdq_pairs"]), note)  # fmt: skip
    Console().print(table)


@export_app.command("build-engine")
def build_engine_command(
    export_dir: Annotated[Path, typer.Argument(help="Directory written by `export onnx`.")],
    precision: Annotated[str, typer.Option(help="fp32, fp16 or int8.")] = "fp16",
    flavour: Annotated[str, typer.Option(help="standard, or plugin (TensorRT ≥ 10.8).")] = "standard",
    mode: Annotated[list[str] | None, typer.Option(help="latency, throughput or dla (repeatable).")] = None,
    batch: Annotated[int, typer.Option(help="Throughput opt batch / static DLA batch.")] = 8,
    max_batch: Annotated[int, typer.Option(help="Throughput max batch.")] = 16,
    workspace_mib: Annotated[int, typer.Option(help="Workspace cap in MiB (small on Jetson).")] = 1024,
    dla_core: Annotated[int | None, typer.Option(help="Build for this DLA core (AGX Orin).")] = None,
    version_compatible: Annotated[bool, typer.Option(help="Version-compatible engine.")] = False,
    engines: Annotated[Path | None, typer.Option(help="Engine store (default EXPORT_DIR/engines).")] = None,
) -> None:
    """Build a TensorRT engine for this machine from an export (needs the tensorrt extra and a GPU)."""
    from cloudlulc_edge.export.bundle import read_manifest
    from cloudlulc_edge.export.engine_builder import EngineBuildOptions, build_engine

    try:
        manifest = read_manifest(export_dir)
        name = "model_plugin_fp32.onnx" if flavour == "plugin" else f"model_{precision}.onnx"
        options = EngineBuildOptions(tuple(mode or ["throughput"]), batch, max_batch, workspace_mib, dla_core=dla_core,
                                     version_compatible=version_compatible)  # fmt: skip
        artifact = build_engine(export_dir / name, engines or export_dir / "engines", int(manifest["tile"]), precision,
                                flavour, options, export_dir / "plugins")  # fmt: skip
    except CloudLULCError as exc:
        _fail(exc)
    Console().print(f"engine {artifact.engine} (key {artifact.key.digest()}, built in {artifact.build_s:.1f} s)")
