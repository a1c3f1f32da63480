"""``cloudlulc-edge bench model|scene``: latency/throughput per backend, and end-to-end scenes per hour."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cloudlulc_edge.cli.options import usage_error

__all__ = ["bench_app"]

bench_app = typer.Typer(help="Benchmarks: model latency/throughput per backend, full-scene mapping rate.",
                        no_args_is_help=True)  # fmt: skip
OutOpt = Annotated[Path, typer.Option(help="Folder for the JSON, markdown and PNG results.")]
ReadmeOpt = Annotated[Path | None, typer.Option(help="Also replace the matching block of this README.")]


@bench_app.command("model")
def bench_model(
    variant: Annotated[
        list[str] | None, typer.Option(help="Model variant (repeatable; default cloudlulc_edge).")
    ] = None,
    backend: Annotated[list[str] | None, typer.Option(help="torch, onnxruntime (repeatable; default both).")] = None,
    precision: Annotated[
        list[str] | None, typer.Option(help="onnxruntime graphs: fp32, fp16, int8 (repeatable; default all).")
    ] = None,
    batch: Annotated[list[int] | None, typer.Option(help="Batch size (repeatable; default 1 and 8).")] = None,
    tile: Annotated[int, typer.Option(min=16, help="Tile side.")] = 512,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed calls first.")] = 3,
    iters: Annotated[int, typer.Option(min=1, help="Timed calls.")] = 10,
    out: OutOpt = Path("bench-results"),
    readme: ReadmeOpt = None,
) -> None:
    """p50/p90/p99 latency and tiles/s per variant × backend × precision × batch (CUDA events on GPU)."""
    from cloudlulc_edge.bench.model_latency import benchmark

    try:
        paths = benchmark(variant or ["cloudlulc_edge"], tile, batch or [1, 8], warmup, iters,
                          tuple(backend or ("torch", "onnxruntime")), tuple(precision or ("fp32", "fp16", "int8")),
                          out, readme)  # fmt: skip
    except ValueError as exc:
        raise usage_error(str(exc)) from exc
    Console(stderr=True).print("results: " + ", ".join(map(str, paths)))


@bench_app.command("scene")
def bench_scene(
    size: Annotated[
        list[int] | None, typer.Option(help="Scene side in 10 m pixels (repeatable; default 5490).")
    ] = None,
    variant: Annotated[str, typer.Option(help="Model variant.")] = "test_tiny",
    overlap: Annotated[int, typer.Option(min=0, help="Tile overlap.")] = 64,
    batch_size: Annotated[int, typer.Option(min=1, help="Tiles per inference call.")] = 4,
    backend: Annotated[str, typer.Option(help="auto (as map), torch or onnxruntime.")] = "auto",
    workdir: Annotated[Path, typer.Option(help="Where the synthetic scenes are generated (reused).")] = Path(
        "/tmp/cloudlulc-bench"
    ),
    out: OutOpt = Path("bench-results"),
    readme: ReadmeOpt = None,
) -> None:
    """Scenes/hour end to end on a synthetic full-size S2 + S1 scene, with the stage breakdown and peak RSS."""
    from cloudlulc_edge.bench.scene_throughput import benchmark

    paths = benchmark(workdir, size or [5490], variant, overlap, batch_size, out, readme, backend)
    Console(stderr=True).print("results: " + ", ".join(map(str, paths)))


@bench_app.command("gpu")
def bench_gpu(
    out: Annotated[Path, typer.Option(help="Folder for every step's results and the summary.")] = Path(
        "bench-results/gpu"
    ),
    readme: ReadmeOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every step's wiring on any machine (no GPU); measure nothing.")
    ] = False,
) -> None:
    """Every GPU measurement in one call (≈ 7 min): gpu tests, kernels, backends, training step, a scene."""
    from cloudlulc_edge.bench.gpu_check import gpu_check

    try:
        _, text, passed = gpu_check(out, readme, dry_run)
    except RuntimeError as exc:
        raise usage_error(str(exc)) from exc
    print(text)
    if not passed:
        raise typer.Exit(1)
