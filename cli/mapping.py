"""``cloudlulc-edge plan``, ``map`` and ``run``: parse → `runner.run_batch` (or `pairing.plan_to_file`) → print."""

from __future__ import annotations

from collections import Counter
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cloudlulc_edge.cli.options import (
    AllowRadiometryMismatchOpt,
    AllowUntrainedOpt,
    BackendChoice,
    BackendOpt,
    BatchSizeOpt,
    CheckpointOpt,
    ClassSchemeChoice,
    ClassSchemeOpt,
    ConfidenceOpt,
    DemDatumChoice,
    DemDatumOpt,
    DemFallbackChoice,
    DemFallbackOpt,
    DemOpt,
    DeviceOpt,
    DryRunOpt,
    GridOffsetOpt,
    LogFormat,
    LogFormatOpt,
    MaxMemoryOpt,
    ModelOpt,
    OpticsOpt,
    OrbitDirOpt,
    OverlapOpt,
    PairWindowOpt,
    Precision,
    PrecisionOpt,
    PrefetchOpt,
    QuietOpt,
    RequireS1Opt,
    ResolutionOpt,
    ResumeOpt,
    RtcOpt,
    S1MissingChoice,
    S1MissingOpt,
    S2OffsetOpt,
    S2QuantificationOpt,
    SkipChecksumsOpt,
    StacOpt,
    TileOpt,
    VariantOpt,
    terrain_correction,
    usage_error,
)

if TYPE_CHECKING:
    from cloudlulc_edge.backends.factory import BackendSpec
    from cloudlulc_edge.cli.progress import RunDisplay
    from cloudlulc_edge.io.s1_terrain import TerrainCorrection
    from cloudlulc_edge.pairing import Pair
    from cloudlulc_edge.pipeline import MapOptions
    from cloudlulc_edge.runner import PlannedScene, RunRequest, RunResult

__all__ = ["map_command", "plan_command", "run_command"]


def _days(pair: Pair) -> str:
    return "–" if pair.dt_days is None else f"{pair.dt_days:g}"


def _dry_run_table(planned: list[PlannedScene], title: str) -> Table:
    table = Table(title=title)
    for column in ("S2 scene", "would", "why", "S1 products", "Δt days", "S1 cover %"):
        table.add_column(column, overflow="fold")
    colours = {"map": "green", "replace": "yellow", "skip": "blue", "fail": "red"}
    for p in planned:
        table.add_row(p.pair.name, f"[{colours[p.action]}]{p.action}[/{colours[p.action]}]", escape(p.reason),
                      str(len(p.pair.s1)), _days(p.pair), f"{p.pair.s1_coverage_pct:g}")  # fmt: skip
    return table


def plan_command(
    input_dir: Annotated[
        Path, typer.Argument(metavar="INPUT_DIR", help="Directory of S2/S1 SAFE products or GeoTIFF scenes.")
    ],
    plan_file: Annotated[Path, typer.Argument(metavar="PLAN_FILE", help="Plan JSON to write.")],
    pair_window: PairWindowOpt = 6.0,
    require_s1: RequireS1Opt = False,
    dem: DemOpt = None,
    rtc: RtcOpt = False,
    orbit_dir: OrbitDirOpt = None,
    dem_datum: DemDatumOpt = DemDatumChoice.auto,
    dem_fallback: DemFallbackOpt = DemFallbackChoice.fail,
) -> None:
    """Pair the scenes of INPUT_DIR and write the plan (the unit of work for `run --shard`).

    The --dem options are recorded in the plan; `run` applies them.
    """
    from cloudlulc_edge.errors import CloudLULCError
    from cloudlulc_edge.pairing import plan_to_file

    terrain = terrain_correction(dem, rtc, orbit_dir, dem_datum, dem_fallback)
    try:
        plan = plan_to_file(input_dir, plan_file, pair_window, require_s1, terrain)
    except CloudLULCError as exc:
        raise usage_error(str(exc)) from exc
    Console().print(f"{len(plan.pairs)} pair(s), {len(plan.skipped)} skipped → {plan_file} (digest {plan.digest})")


def _execute(request: RunRequest, quiet: bool, log_format: LogFormat) -> None:
    """Runs the request with progress, prints the summary, exits with the run's code (one library call)."""
    from cloudlulc_edge.cli.progress import RunDisplay
    from cloudlulc_edge.errors import CloudLULCError
    from cloudlulc_edge.runner import run_batch

    display = RunDisplay("quiet" if quiet and log_format is LogFormat.rich else log_format.value)
    try:
        with display.running():
            result = run_batch(request, display)
    except CloudLULCError as exc:
        raise usage_error(str(exc)) from exc
    if not result.plan.pairs:
        _nothing_to_map(request, result)
    if request.dry_run:
        Console(width=_width()).print(_dry_run_table(result.planned, _dry_run_title(request, result)))
        raise typer.Exit(result.exit_code)
    _summary(request, result, quiet, log_format, display)


def _width() -> int | None:
    """Full width when not on a terminal (logs, cron): rich would cut every line to 80 columns."""
    return None if Console().is_terminal else 200


def _nothing_to_map(request: RunRequest, result: RunResult) -> None:
    """Says what the input held when no pair came of it, and exits `EXIT_NOTHING_TO_MAP` (dry run or not)."""
    source = request.input_dir if request.input_dir is not None else request.plan_file
    skipped = result.plan.skipped
    lines = [f"nothing to map in {source}: no S2 scene with a usable product"
             + (f"; {len(skipped)} input(s) not usable:" if skipped else " (the folder holds no product)")]  # fmt: skip
    lines += [f"  {s.path}: {s.reason}" for s in skipped[:10]]
    lines += [f"  … and {len(skipped) - 10} more (see the run report)"] if len(skipped) > 10 else []
    Console(stderr=True, highlight=False, width=_width()).print("\n".join(escape(line) for line in lines))
    raise typer.Exit(result.exit_code)


def _dry_run_title(request: RunRequest, result: RunResult) -> str:
    source = request.input_dir if request.input_dir is not None else request.plan_file
    shard = f" (shard {request.shard[0]}/{request.shard[1]})" if request.shard else ""
    counts = Counter(p.action for p in result.planned)
    said = ", ".join(f"{counts[a]} {a}" for a in ("map", "replace", "skip", "fail") if counts[a])
    return f"dry run{shard} of {source}: {len(result.pairs)} pair(s) → {said or 'nothing'}"


def _summary(request: RunRequest, result: RunResult, quiet: bool, log_format: LogFormat, display: RunDisplay) -> None:
    from cloudlulc_edge.cli.progress import summary_lines, summary_table

    assert result.report is not None
    report, counts = result.report, result.report.counts()
    display.emit("run_end", counts=counts, report=str(result.report_path), exit_code=result.exit_code)
    if log_format is LogFormat.rich:
        console = Console(width=_width())
        if not quiet and console.is_terminal:  # without a terminal each scene had its line as it finished
            console.print(summary_table(report.scenes, f"{request.command}: {request.output_dir}"))
        elif not quiet:  # ... except those the stop left unstarted
            for line in summary_lines([s for s in report.scenes if s.status == "not_started"]):
                console.print(line, markup=False, highlight=False, soft_wrap=True)
        stopped = counts.get("interrupted", 0) + counts.get("not_started", 0)
        console.print(f"{counts.get('done', 0)} done, {counts.get('skipped', 0)} skipped, "
                      f"{counts.get('failed', 0)} failed, {len(result.plan.skipped)} input(s) not usable"
                      + (f", {stopped} stopped (interrupted: {counts.get('interrupted', 0)}, not started: "
                         f"{counts.get('not_started', 0)}); map again to finish" if stopped else "")
                      + (f"; report {result.report_path}" if result.report_path else
                         "; the run report could NOT be written (see the log above for it)"),
                      markup=False, highlight=False, soft_wrap=True)  # fmt: skip
    raise typer.Exit(result.exit_code)


def spec_and_options(
    backend: BackendChoice, variant: str, checkpoint: Path | None, model: Path | None, precision: Precision,
    device: str, tile: int, allow_untrained: bool, overlap: int, batch_size: int, class_scheme: ClassSchemeChoice,
    resolution: int | None, confidence: bool, optics: bool, stac: bool, resume: bool, s1_missing: S1MissingChoice,
    s2_offset: float | None, s2_quantification: float | None, prefetch: int, max_memory: int | None, grid_offset: int,
    terrain: TerrainCorrection | None, allow_radiometry_mismatch: bool, skip_checksums: bool = False,
) -> tuple[BackendSpec, MapOptions]:  # fmt: skip
    """The parsed options as the library's backend spec and mapping options (validated there)."""
    from cloudlulc_edge.backends.factory import BackendSpec
    from cloudlulc_edge.errors import CloudLULCError
    from cloudlulc_edge.pipeline import MapOptions

    try:
        options = MapOptions(tile=tile, overlap=overlap, batch_size=batch_size, class_scheme=class_scheme.value,
                             resolution=resolution, confidence=confidence, optics=optics, stac=stac, resume=resume,
                             s1_missing=s1_missing.value, s2_offset=s2_offset, s2_quantification=s2_quantification,
                             prefetch=prefetch, max_memory_mb=max_memory, grid_offset=grid_offset, terrain=terrain,
                             allow_radiometry_mismatch=allow_radiometry_mismatch,
                             verify_checksums=not skip_checksums)  # fmt: skip
    except CloudLULCError as exc:
        raise usage_error(str(exc)) from exc
    spec = BackendSpec(backend.value, variant, checkpoint, model, precision.value, device, tile,
                       allow_untrained)  # fmt: skip
    return spec, options


def map_command(
    input_dir: Annotated[
        Path, typer.Argument(metavar="INPUT_DIR", help="Directory of S2/S1 SAFE products or GeoTIFF scenes.")
    ],
    output_dir: Annotated[
        Path, typer.Argument(metavar="OUTPUT_DIR", help="Where the COG maps, STAC items and run reports go.")
    ],
    checkpoint: CheckpointOpt = None,
    variant: VariantOpt = "cloudlulc_edge",
    allow_untrained: AllowUntrainedOpt = False,
    backend: BackendOpt = BackendChoice.auto,
    model: ModelOpt = None,
    precision: PrecisionOpt = Precision.auto,
    device: DeviceOpt = "cpu",
    batch_size: BatchSizeOpt = 4,
    tile: TileOpt = 512,
    overlap: OverlapOpt = 64,
    grid_offset: GridOffsetOpt = 0,
    class_scheme: ClassSchemeOpt = ClassSchemeChoice.worldcover,
    resolution: ResolutionOpt = None,
    confidence: ConfidenceOpt = False,
    optics: OpticsOpt = False,
    stac: StacOpt = True,
    s2_offset: S2OffsetOpt = None,
    s2_quantification: S2QuantificationOpt = None,
    s1_missing: S1MissingOpt = S1MissingChoice.map,
    prefetch: PrefetchOpt = 1,
    pair_window: PairWindowOpt = 6.0,
    require_s1: RequireS1Opt = False,
    resume: ResumeOpt = True,
    dry_run: DryRunOpt = False,
    quiet: QuietOpt = False,
    log_format: LogFormatOpt = LogFormat.rich,
    max_memory: MaxMemoryOpt = None,
    dem: DemOpt = None,
    rtc: RtcOpt = False,
    orbit_dir: OrbitDirOpt = None,
    dem_datum: DemDatumOpt = DemDatumChoice.auto,
    dem_fallback: DemFallbackOpt = DemFallbackChoice.fail,
    allow_radiometry_mismatch: AllowRadiometryMismatchOpt = False,
    skip_checksums: SkipChecksumsOpt = False,
) -> None:
    """Scan INPUT_DIR, pair S2 with S1, and map every pair to OUTPUT_DIR.

    Exit codes: 0 all done or skipped, 3 some scenes failed, 4 every attempted scene failed,
    5 nothing to map (no usable product), 2 usage or configuration errors, 130 stopped by
    Ctrl-C/SIGTERM/SIGHUP (the run report says what finished).
    """
    from cloudlulc_edge.errors import CloudLULCError
    from cloudlulc_edge.runner import RunRequest

    terrain = terrain_correction(dem, rtc, orbit_dir, dem_datum, dem_fallback)
    spec, options = spec_and_options(backend, variant, checkpoint, model, precision, device, tile, allow_untrained,
                                      overlap, batch_size, class_scheme, resolution, confidence, optics, stac, resume,
                                      s1_missing, s2_offset, s2_quantification, prefetch, max_memory,
                                      grid_offset, terrain, allow_radiometry_mismatch, skip_checksums)  # fmt: skip
    try:
        request = RunRequest("map", output_dir, spec, options, input_dir=input_dir, pair_window=pair_window,
                             require_s1=require_s1, dry_run=dry_run)  # fmt: skip
    except CloudLULCError as exc:
        raise usage_error(str(exc)) from exc
    _execute(request, quiet, log_format)


class ExecutorChoice(str, Enum):
    """``--executor``."""

    local = "local"
    ray = "ray"


def run_command(
    plan_file: Annotated[Path, typer.Argument(metavar="PLAN_FILE", help="Plan JSON written by `plan`.")],
    output_dir: Annotated[
        Path, typer.Argument(metavar="OUTPUT_DIR", help="Where the maps and run reports go (shared by all shards).")
    ],
    shard: Annotated[
        str | None,
        typer.Option(
            help="i/n: map the i-th of n round-robin shards (0-based); auto/n takes i from "
            "JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID."
        ),
    ] = None,
    checkpoint: CheckpointOpt = None,
    variant: VariantOpt = "cloudlulc_edge",
    allow_untrained: AllowUntrainedOpt = False,
    backend: BackendOpt = BackendChoice.auto,
    model: ModelOpt = None,
    precision: PrecisionOpt = Precision.auto,
    device: DeviceOpt = "cpu",
    batch_size: BatchSizeOpt = 4,
    tile: TileOpt = 512,
    overlap: OverlapOpt = 64,
    grid_offset: GridOffsetOpt = 0,
    class_scheme: ClassSchemeOpt = ClassSchemeChoice.worldcover,
    resolution: ResolutionOpt = None,
    confidence: ConfidenceOpt = False,
    optics: OpticsOpt = False,
    stac: StacOpt = True,
    s2_offset: S2OffsetOpt = None,
    s2_quantification: S2QuantificationOpt = None,
    s1_missing: S1MissingOpt = S1MissingChoice.map,
    prefetch: PrefetchOpt = 1,
    resume: ResumeOpt = True,
    dry_run: DryRunOpt = False,
    quiet: QuietOpt = False,
    log_format: LogFormatOpt = LogFormat.rich,
    max_memory: MaxMemoryOpt = None,
    dem: DemOpt = None,
    rtc: RtcOpt = False,
    orbit_dir: OrbitDirOpt = None,
    dem_datum: DemDatumOpt = DemDatumChoice.auto,
    dem_fallback: DemFallbackOpt = DemFallbackChoice.fail,
    allow_radiometry_mismatch: AllowRadiometryMismatchOpt = False,
    skip_checksums: SkipChecksumsOpt = False,
    executor: Annotated[
        ExecutorChoice, typer.Option(help="local, or ray (scenes as tasks on model-holding actors).")
    ] = ExecutorChoice.local,
    ray_actors: Annotated[int, typer.Option(min=1, help="Ray: actors (one model each).")] = 1,
    ray_gpus_per_actor: Annotated[float, typer.Option(min=0.0, help="Ray: GPUs per actor (1 = one per GPU).")] = 0.0,
    ray_address: Annotated[
        str | None, typer.Option(help="Ray: cluster address (default: local or RAY_ADDRESS).")
    ] = None,
    input_root: Annotated[
        list[Path] | None,
        typer.Option(
            help="Allowed input folder for plan entries (repeatable; required: the folder a plan records is "
            "never trusted). Entries outside are refused."
        ),
    ] = None,
    plan_digest: Annotated[
        str | None,
        typer.Option(
            help="Refuse the plan unless its digest is this (`plan` prints it; `deploy` pins it), so a "
            "plan re-made while a job array runs is detected."
        ),
    ] = None,
) -> None:
    """Map the pairs of a plan file, or one shard of them (same exit codes as `map`).

    The plan's terrain correction (`plan --dem`) applies; --dem here must agree with it.
    """
    from cloudlulc_edge.errors import CloudLULCError
    from cloudlulc_edge.ray_executor import RayOptions
    from cloudlulc_edge.runner import RunRequest, parse_shard

    terrain = terrain_correction(dem, rtc, orbit_dir, dem_datum, dem_fallback)
    spec, options = spec_and_options(backend, variant, checkpoint, model, precision, device, tile, allow_untrained,
                                      overlap, batch_size, class_scheme, resolution, confidence, optics, stac, resume,
                                      s1_missing, s2_offset, s2_quantification, prefetch, max_memory,
                                      grid_offset, terrain, allow_radiometry_mismatch, skip_checksums)  # fmt: skip
    try:
        request = RunRequest("run", output_dir, spec, options, plan_file=plan_file,
                             input_roots=tuple(input_root or ()), shard=parse_shard(shard),
                             executor=executor.value, ray=RayOptions(ray_actors, ray_gpus_per_actor, ray_address),
                             dry_run=dry_run, plan_digest=plan_digest)  # fmt: skip
    except CloudLULCError as exc:
        raise usage_error(str(exc)) from exc
    _execute(request, quiet, log_format)
