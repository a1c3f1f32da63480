"""``cloudlulc-edge engine build|check``: TensorRT engines on the target, and their compatibility keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cloudlulc_edge.cli.options import usage_error

__all__ = ["engine_app"]

engine_app = typer.Typer(help="Build TensorRT engines for this machine and check engine compatibility keys.",
                         no_args_is_help=True)  # fmt: skip


@engine_app.command("build")
def build_engine_command(
    export_dir: Annotated[Path, typer.Argument(metavar="EXPORT_DIR", help="Directory written by `export onnx`.")],
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
    from cloudlulc_edge.errors import CloudLULCError
    from cloudlulc_edge.export.engine_builder import EngineBuildOptions, build_engine_from_export

    try:
        options = EngineBuildOptions(tuple(mode or ["throughput"]), batch, max_batch, workspace_mib, dla_core=dla_core,
                                     version_compatible=version_compatible)  # fmt: skip
        artifact = build_engine_from_export(export_dir, precision, flavour, options, engines)
    except CloudLULCError as exc:
        raise usage_error(str(exc)) from exc
    Console().print(f"engine {artifact.engine} (key {artifact.key.digest()}, built in {artifact.build_s:.1f} s)")


@engine_app.command("check")
def check_engine_command(
    engine: Annotated[Path, typer.Argument(metavar="ENGINE", help="A model.engine with its key.json.")],
) -> None:
    """Print an engine's compatibility key and whether this machine may load it (exit 2 if not)."""
    from cloudlulc_edge.errors import CloudLULCError
    from cloudlulc_edge.export.engine_builder import check_engine_here

    try:
        key = check_engine_here(engine)
    except CloudLULCError as exc:
        raise usage_error(str(exc)) from exc
    Console().print_json(json.dumps(key.to_dict()))
    Console().print(f"[green]compatible[/green] with this system (key {key.digest()})")
