"""``cloudlulc-edge bench model|scene``: latency/throughput per backend, and end-to-end scenes per hour."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

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
    from cloudlulc_edge.bench.backends import plot, render, run
    from cloudlulc_edge.bench.utils import publish

    kinds = tuple(backend or ("torch", "onnxruntime"))
    unknown = set(kinds) - {"torch", "onnxruntime"}
    if unknown:
        raise typer.BadParameter(f"unknown backend(s) {sorted(unknown)}; bench torch and onnxruntime here")
    variants = variant or ["cloudlulc_edge"]
    results = [run(v, tile, batch or [1, 8], warmup, iters, kinds, tuple(precision or ("fp32", "fp16", "int8")))
               for v in variants]  # fmt: skip
    result = {**results[0], "variant": ", ".join(variants), "rows": [r for res in results for r in res["rows"]]}
    path = publish("bench_model", result, render(result), readme, "backends", out)
    plot(result, out / "bench_model.png")
    Console(stderr=True).print(f"results: {path}, {out / 'bench_model.md'}, {out / 'bench_model.png'}")


@bench_app.command("scene")
def bench_scene(
    size: Annotated[
        list[int] | None, typer.Option(help="Scene side in 10 m pixels (repeatable; default 5490).")
    ] = None,
    variant: Annotated[str, typer.Option(help="Model variant.")] = "test_tiny",
    overlap: Annotated[int, typer.Option(min=0, help="Tile overlap.")] = 64,
    batch_size: Annotated[int, typer.Option(min=1, help="Tiles per inference call.")] = 4,
    workdir: Annotated[Path, typer.Option(help="Where the synthetic scenes are generated (reused).")] = Path(
        "/tmp/cloudlulc-bench"
    ),
    out: OutOpt = Path("bench-results"),
    readme: ReadmeOpt = None,
) -> None:
    """Scenes/hour end to end on a synthetic full-size S2 + S1 scene, with the stage breakdown and peak RSS."""
    from cloudlulc_edge.bench.map_scene import plot, render, run_sizes
    from cloudlulc_edge.bench.utils import publish

    result = run_sizes(workdir, size or [5490], variant, overlap, batch_size)
    path = publish("bench_scene", result, render(result), readme, "map-scene", out)
    plot(result, out / "bench_scene.png")
    Console(stderr=True).print(f"results: {path}, {out / 'bench_scene.md'}, {out / 'bench_scene.png'}")
