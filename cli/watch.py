"""``cloudlulc-edge watch``: parse → `watch.watch_directory` → print."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cloudlulc_edge.cli.mapping import spec_and_options
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
    ResolutionOpt,
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

__all__ = ["ObserverChoice", "watch_command"]


class ObserverChoice(str, Enum):
    """``--observer``."""

    auto = "auto"
    inotify = "inotify"
    polling = "polling"


def watch_command(
    input_dir: Annotated[
        Path,
        typer.Argument(metavar="INPUT_DIR", help="Folder products arrive in (a ground station's incoming folder)."),
    ],
    output_dir: Annotated[
        Path, typer.Argument(metavar="OUTPUT_DIR", help="Where maps, STAC items, run reports and the status file go.")
    ],
    settle: Annotated[
        float, typer.Option(min=0.0, help="Seconds a product's files must stay unchanged before it is mapped.")
    ] = 30.0,
    poll: Annotated[
        float, typer.Option(min=0.05, help="Seconds between rescans (inotify wakes the watcher sooner).")
    ] = 5.0,
    s1_wait: Annotated[
        float, typer.Option(min=0.0, help="Seconds a complete S2 waits for an S1 before it is mapped S2-only.")
    ] = 0.0,
    remap_on_better_s1: Annotated[
        bool,
        typer.Option(
            "--remap-on-better-s1",
            help="Map a scene again when a better S1 arrives later (the report keeps the earlier one).",
        ),
    ] = False,
    observer: Annotated[
        ObserverChoice, typer.Option(help="auto (inotify when watchdog is installed), inotify, or polling.")
    ] = ObserverChoice.auto,
    exit_when_idle: Annotated[
        float | None,
        typer.Option(min=0.0, help="Stop once nothing has changed or been pending for this many seconds."),
    ] = None,
    pair_window: PairWindowOpt = 6.0,
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
    class_scheme: ClassSchemeOpt = ClassSchemeChoice.worldcover,
    resolution: ResolutionOpt = None,
    confidence: ConfidenceOpt = False,
    optics: OpticsOpt = False,
    stac: StacOpt = True,
    s2_offset: S2OffsetOpt = None,
    s2_quantification: S2QuantificationOpt = None,
    s1_missing: S1MissingOpt = S1MissingChoice.map,
    prefetch: PrefetchOpt = 1,
    max_memory: MaxMemoryOpt = None,
    dem: DemOpt = None,
    rtc: RtcOpt = False,
    orbit_dir: OrbitDirOpt = None,
    dem_datum: DemDatumOpt = DemDatumChoice.auto,
    dem_fallback: DemFallbackOpt = DemFallbackChoice.fail,
    allow_radiometry_mismatch: AllowRadiometryMismatchOpt = False,
    skip_checksums: SkipChecksumsOpt = False,
    quiet: QuietOpt = False,
    log_format: LogFormatOpt = LogFormat.rich,
) -> None:
    """Watch INPUT_DIR and map each product once it is complete, until SIGTERM/SIGINT.

    Products count as complete when their manifest sizes match (SAFE), their zip directory reads,
    and their files have not changed for --settle seconds. Several watchers may share OUTPUT_DIR:
    each scene is mapped once. Exit codes as for `map` (130: a scene in progress was abandoned).
    """
    from cloudlulc_edge.cli.progress import RunDisplay
    from cloudlulc_edge.errors import CloudLULCError
    from cloudlulc_edge.watch import WatchRequest, watch_directory

    terrain = terrain_correction(dem, rtc, orbit_dir, dem_datum, dem_fallback)
    spec, options = spec_and_options(backend, variant, checkpoint, model, precision, device, tile, allow_untrained,
                                     overlap, batch_size, class_scheme, resolution, confidence, optics, stac, True,
                                     s1_missing, s2_offset, s2_quantification, prefetch, max_memory, 0, terrain,
                                     allow_radiometry_mismatch, skip_checksums)  # fmt: skip
    display = RunDisplay("quiet" if quiet and log_format is LogFormat.rich else log_format.value)
    try:
        request = WatchRequest(input_dir, output_dir, spec, options, pair_window, settle, poll, s1_wait,
                               remap_on_better_s1, observer.value, exit_when_idle)  # fmt: skip
        with display.running():
            result = watch_directory(request, display)
    except CloudLULCError as exc:
        raise usage_error(str(exc)) from exc
    counts = result.report.counts()
    if log_format is LogFormat.rich:
        Console().print(f"watch stopped ({result.observer}): {counts.get('done', 0)} mapped, "
                        f"{counts.get('failed', 0)} failed, {counts.get('interrupted', 0)} interrupted; report "
                        f"{result.report_path}", markup=False, highlight=False, soft_wrap=True)  # fmt: skip
    raise typer.Exit(result.exit_code)
