"""``cloudlulc-edge plan``, ``map`` and ``run``: batch mapping of scene directories and plan shards."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

import typer
from cloudlulc_edge.cli.options import (
    BackendOpt,
    BatchSizeOpt,
    CheckpointOpt,
    ClassSchemeOpt,
    DeviceOpt,
    DryRunOpt,
    LogFormatOpt,
    MaxMemoryOpt,
    ModelOpt,
    OverlapOpt,
    PairWindowOpt,
    PrecisionOpt,
    QuietOpt,
    RequireS1Opt,
    ResumeOpt,
    TileOpt,
    VariantOpt,
    usage_error,
)
from cloudlulc_edge.cli.progress import RunDisplay, summary_table
from rich.console import Console
from rich.table import Table

from cloudlulc_edge.contract import CLASS_SCHEMES
from cloudlulc_edge.errors import CloudLULCError
from cloudlulc_edge.pairing import Pair, Plan, read_plan, write_plan
from cloudlulc_edge.pipeline import MapOptions
from cloudlulc_edge.runner import (
    BackendSpec,
    RunReport,
    check_output_dir,
    open_backend,
    parse_shard,
    plan_directory,
    record_run,
    run_pairs,
)

__all__ = ["map_command", "plan_command", "run_command"]


def _plan_table(plan: Plan, title: str) -> Table:
    table = Table(title=title)
    for column in ("S2 scene", "S1 products", "Δt days", "S1 cover %"):
        table.add_column(column)
    for pair in plan.pairs:
        dt = "–" if pair.dt_days is None else f"{pair.dt_days:g}"
        table.add_row(pair.name, str(len(pair.s1)), dt, f"{pair.s1_coverage_pct:g}")
    return table


def plan_command(
    input_dir: Annotated[Path, typer.Argument(help="Directory of S2/S1 SAFE products or GeoTIFF scenes.")],
    plan_file: Annotated[Path, typer.Argument(help="Plan JSON to write.")],
    pair_window: PairWindowOpt = 6.0,
    require_s1: RequireS1Opt = False,
) -> None:
    """Pair the scenes of INPUT_DIR and write the plan (the unit of work for `run --shard`)."""
    try:
        plan = plan_directory(input_dir, pair_window, require_s1)
    except CloudLULCError as exc:
        raise usage_error(str(exc)) from exc
    write_plan(plan, plan_file)
    Console().print(f"{len(plan.pairs)} pair(s), {len(plan.skipped)} skipped → {plan_file}")


def _check_overlap(options: MapOptions) -> None:
    if options.overlap % 2 or not 0 <= options.overlap < options.tile:
        raise usage_error(f"--overlap must be even and smaller than the tile ({options.tile}), got {options.overlap}")


def _map_pairs(
    command: str,
    pairs: list[Pair],
    output_dir: Path,
    spec: BackendSpec,
    options: MapOptions,
    shard: tuple[int, int] | None,
    quiet: bool,
    log_format: str,
    plan: Plan,
    ray: RaySettings | None = None,
) -> None:
    """Opens the backend, maps ``pairs`` with progress, prints the summary, exits with the run's code."""
    try:
        check_output_dir(output_dir)
    except CloudLULCError as exc:
        raise usage_error(str(exc)) from exc
    if log_format not in ("rich", "jsonl"):
        raise usage_error(f"--log-format must be rich or jsonl, got {log_format!r}")
    if options.class_scheme not in CLASS_SCHEMES:
        raise usage_error(f"--class-scheme must be one of {', '.join(CLASS_SCHEMES)}, got {options.class_scheme!r}")
    _check_overlap(options)
    if ray is not None:
        _map_on_ray(command, pairs, output_dir, spec, options, shard, quiet, log_format, plan, ray)
    try:
        backend = open_backend(spec)
    except CloudLULCError as exc:
        raise usage_error(str(exc)) from exc
    tile = backend.identity.tile or options.tile
    if tile != options.tile:
        options = replace(options, tile=tile)  # graphs and engines fix the tile
    _check_overlap(options)
    display = RunDisplay("quiet" if quiet and log_format == "rich" else log_format, len(pairs))
    with display.running():
        report, path = run_pairs(command, pairs, backend, output_dir, options, shard, display.scene, display.tiles,
                                 plan.skipped)  # fmt: skip
    _finish(command, report, path, output_dir, quiet, log_format, plan, display)


@dataclass(frozen=True)
class RaySettings:
    """``--executor ray`` settings: actors, GPUs per actor, cluster address."""

    actors: int
    gpus_per_actor: float
    address: str | None


def _map_on_ray(
    command: str, pairs: list[Pair], output_dir: Path, spec: BackendSpec, options: MapOptions,
    shard: tuple[int, int] | None, quiet: bool, log_format: str, plan: Plan, ray: RaySettings,
) -> None:  # fmt: skip
    """Maps ``pairs`` on Ray actors (each opens the backend), reports and exits like a local run."""
    from cloudlulc_edge.ray_executor import map_with_ray

    display = RunDisplay("quiet" if quiet and log_format == "rich" else log_format, len(pairs))
    info = {"kind": spec.kind, "executor": "ray", "actors": ray.actors, "gpus_per_actor": ray.gpus_per_actor,
            "model": {"variant": spec.variant, "checkpoint": str(spec.checkpoint), "model": str(spec.model)}}  # fmt: skip
    try:
        with display.running():
            report, path = record_run(command, info, output_dir, options, shard, plan.skipped,
                                      lambda: map_with_ray(pairs, spec, output_dir, options, ray.actors,
                                                           ray.gpus_per_actor, ray.address, display.scene))  # fmt: skip
    except CloudLULCError as exc:
        raise usage_error(str(exc)) from exc
    _finish(command, report, path, output_dir, quiet, log_format, plan, display)


def _finish(
    command: str, report: RunReport, path: Path, output_dir: Path, quiet: bool, log_format: str, plan: Plan,
    display: RunDisplay,
) -> None:  # fmt: skip
    """Prints the summary (or the final JSON line) and exits with the run's code."""
    counts = report.counts()
    display.emit("run_end", counts=counts, report=str(path), exit_code=report.exit_code())
    if log_format == "rich":
        console = Console()
        if not quiet:
            console.print(summary_table(report.scenes, f"{command}: {output_dir}"))
        console.print(f"{counts.get('done', 0)} done, {counts.get('skipped', 0)} skipped, "
                      f"{counts.get('failed', 0)} failed, {len(plan.skipped)} input(s) not usable; report {path}")  # fmt: skip
    raise typer.Exit(report.exit_code())


def map_command(
    input_dir: Annotated[Path, typer.Argument(help="Directory of S2/S1 SAFE products or GeoTIFF scenes.")],
    output_dir: Annotated[Path, typer.Argument(help="Where the COG maps, STAC items and run reports go.")],
    checkpoint: CheckpointOpt = None,
    variant: VariantOpt = "cloudlulc_edge",
    backend: BackendOpt = "torch",
    model: ModelOpt = None,
    precision: PrecisionOpt = "fp32",
    device: DeviceOpt = "cpu",
    batch_size: BatchSizeOpt = 4,
    tile: TileOpt = 512,
    overlap: OverlapOpt = 64,
    class_scheme: ClassSchemeOpt = "worldcover",
    pair_window: PairWindowOpt = 6.0,
    require_s1: RequireS1Opt = False,
    resume: ResumeOpt = True,
    dry_run: DryRunOpt = False,
    quiet: QuietOpt = False,
    log_format: LogFormatOpt = "rich",
    max_memory: MaxMemoryOpt = None,
) -> None:
    """Scan INPUT_DIR, pair S2 with S1, and map every pair to OUTPUT_DIR.

    Exit codes: 0 all done or skipped, 3 some scenes failed, 4 every attempted scene failed,
    2 usage or configuration errors.
    """
    try:
        plan = plan_directory(input_dir, pair_window, require_s1)
    except CloudLULCError as exc:
        raise usage_error(str(exc)) from exc
    if dry_run:
        Console().print(_plan_table(plan, f"would map {len(plan.pairs)} pair(s) from {input_dir}"))
        raise typer.Exit(0)
    spec = BackendSpec(backend, variant, checkpoint, model, precision, device, tile)  # type: ignore[arg-type]
    options = MapOptions(tile=tile, overlap=overlap, batch_size=batch_size, class_scheme=class_scheme, resume=resume,
                         max_memory_mb=max_memory)  # fmt: skip
    _map_pairs("map", plan.pairs, output_dir, spec, options, None, quiet, log_format, plan)


def run_command(
    plan_file: Annotated[Path, typer.Argument(help="Plan JSON written by `plan`.")],
    output_dir: Annotated[Path, typer.Argument(help="Where the maps and run reports go (shared by all shards).")],
    shard: Annotated[
        str | None,
        typer.Option(
            help="i/n: map the i-th of n round-robin shards (0-based); auto/n takes i from "
            "JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID."
        ),
    ] = None,
    checkpoint: CheckpointOpt = None,
    variant: VariantOpt = "cloudlulc_edge",
    backend: BackendOpt = "torch",
    model: ModelOpt = None,
    precision: PrecisionOpt = "fp32",
    device: DeviceOpt = "cpu",
    batch_size: BatchSizeOpt = 4,
    tile: TileOpt = 512,
    overlap: OverlapOpt = 64,
    class_scheme: ClassSchemeOpt = "worldcover",
    resume: ResumeOpt = True,
    dry_run: DryRunOpt = False,
    quiet: QuietOpt = False,
    log_format: LogFormatOpt = "rich",
    max_memory: MaxMemoryOpt = None,
    executor: Annotated[str, typer.Option(help="local, or ray (scenes as tasks on model-holding actors).")] = "local",
    ray_actors: Annotated[int, typer.Option(min=1, help="Ray: actors (one model each).")] = 1,
    ray_gpus_per_actor: Annotated[float, typer.Option(min=0.0, help="Ray: GPUs per actor (1 = one per GPU).")] = 0.0,
    ray_address: Annotated[
        str | None, typer.Option(help="Ray: cluster address (default: local or RAY_ADDRESS).")
    ] = None,
    input_root: Annotated[
        list[Path] | None,
        typer.Option(
            help="Allowed input folder for plan entries (repeatable; default: the folder the plan was made from). "
            "Entries outside are refused."
        ),
    ] = None,
) -> None:
    """Map the pairs of a plan file, or one shard of them (same exit codes as `map`)."""
    if executor not in ("local", "ray"):
        raise usage_error(f"--executor must be local or ray, got {executor!r}")
    try:
        plan = read_plan(plan_file, input_root or None)
        index_count = parse_shard(shard)
        pairs = plan.shard(*index_count) if index_count else plan.pairs
    except CloudLULCError as exc:
        raise usage_error(str(exc)) from exc
    if dry_run:
        label = f"shard {index_count[0]}/{index_count[1]}" if index_count else "all"
        Console().print(_plan_table(Plan(pairs), f"would map {len(pairs)} pair(s) ({label}) of {plan_file}"))
        raise typer.Exit(0)
    spec = BackendSpec(backend, variant, checkpoint, model, precision, device, tile)  # type: ignore[arg-type]
    options = MapOptions(tile=tile, overlap=overlap, batch_size=batch_size, class_scheme=class_scheme, resume=resume,
                         max_memory_mb=max_memory)  # fmt: skip
    ray = RaySettings(ray_actors, ray_gpus_per_actor, ray_address) if executor == "ray" else None
    _map_pairs("run", pairs, output_dir, spec, options, index_count, quiet, log_format, plan, ray)
