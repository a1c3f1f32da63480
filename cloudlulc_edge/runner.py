"""Batch runs: `run_batch(RunRequest)` maps a folder or a plan (or one shard of it) and reports.

What the ``map`` and ``run`` commands call, in one library call each: the request is validated
and the backend opened before any scene is read (an error there is a usage error, raised as a
`CloudLULCError`); then the pairs are mapped by the local executor (`pipeline.map_plan`) or by Ray
actors (`ray_executor`), one failed scene never stopping the others, and a JSON run report is
written: per scene status, Δt, cloud %, S1 coverage, per-stage seconds, output path and error.
Both executors write the same report schema.

Sharding maps onto the schedulers operators already have: ``--shard i/n`` is the i-th of n
round-robin slices of a plan, and the index can come from a Kubernetes Indexed Job
(``JOB_COMPLETION_INDEX``) or a Slurm job array (``SLURM_ARRAY_TASK_ID``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from cloudlulc_edge.backends.base import Backend
from cloudlulc_edge.backends.factory import BackendSpec, ResolvedBackend, choose_backend, open_resolved
from cloudlulc_edge.errors import (
    EXIT_ALL_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOTHING_TO_MAP,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    CloudLULCError,
    OptionsError,
    OutputError,
)
from cloudlulc_edge.files import atomic_write
from cloudlulc_edge.io.dem import Dem
from cloudlulc_edge.io.products import Skipped
from cloudlulc_edge.io.s1_terrain import TerrainCorrection
from cloudlulc_edge.pairing import Pair, Plan, plan_directory, read_plan, recorded_input_root
from cloudlulc_edge.pipeline import MapOptions, SceneReport, map_plan, s1_radiometry_check, scene_action
from cloudlulc_edge.ray_executor import RayOptions
from cloudlulc_edge.version import __version__

__all__ = [
    "EXIT_ALL_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_NOTHING_TO_MAP",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "Executor",
    "PlannedScene",
    "RunProgress",
    "RunReport",
    "RunRequest",
    "RunResult",
    "ShardError",
    "backend_record",
    "check_output_dir",
    "parse_shard",
    "resolve_and_open",
    "run_batch",
    "run_pairs",
    "signals_stop_the_run",
]


log = logging.getLogger(__name__)

Executor = Literal["local", "ray"]
_SHARD_ENV = ("JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID")


class ShardError(OptionsError):
    """A shard specification is malformed or out of range."""


def parse_shard(text: str | None, environ: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """Parses ``i/n`` (0-based), with ``i`` optionally taken from the scheduler.

    ``--shard 3/10`` is shard 3 of 10. ``--shard auto/10`` takes the index from
    ``JOB_COMPLETION_INDEX`` (Kubernetes Indexed Job) or ``SLURM_ARRAY_TASK_ID`` (Slurm array with
    ``--array=0-9``).

    Args:
        text: The option value, or None for no sharding.
        environ: Environment to read (default ``os.environ``).

    Returns:
        ``(index, count)`` or None.

    Raises:
        ShardError: Malformed text, index out of range, or ``auto`` without a scheduler index.
    """
    if text is None:
        return None
    env = os.environ if environ is None else environ
    index_text, sep, count_text = text.partition("/")
    if not sep or not count_text.isdigit() or int(count_text) < 1:
        raise ShardError(f"--shard must look like i/n (e.g. 0/4) or auto/n, got {text!r}")
    count = int(count_text)
    if index_text == "auto":
        found = next((env[k] for k in _SHARD_ENV if env.get(k, "").strip()), None)
        if found is None:
            raise ShardError(
                f"--shard auto/{count} needs JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID in the environment"
            )
        index_text = found.strip()
    if not index_text.isdigit() or not 0 <= int(index_text) < count:
        raise ShardError(f"shard index {index_text!r} is not in 0..{count - 1}")
    return int(index_text), count


def check_output_dir(path: Path) -> None:
    """Creates ``path`` if needed and proves it writable (a probe file), before any scene is read.

    Raises:
        OutputError: The folder cannot be created or written (read-only, full, not a folder…).
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"output folder is not writable ({exc.strerror or exc})", path) from exc


@dataclass(frozen=True)
class RunRequest:
    """One batch run, as the ``map`` and ``run`` commands describe it.

    Attributes:
        command: Name recorded in the report (``map``, ``run``…).
        output_dir: Where the maps, STAC items and run reports go.
        backend: What runs, where.
        options: Mapping options.
        input_dir: Scan and pair this folder (``map``); exactly one of ``input_dir`` and ``plan_file``.
        plan_file: Map the pairs of this plan (``run``).
        input_roots: Allowed input folders for plan entries (required with ``plan_file``: a plan is
            input, and the folder it records is never trusted).
        pair_window: Largest |S1 − S2| to pair, days (``input_dir``).
        require_s1: Leave S2 scenes without S1 out (``input_dir``).
        shard: ``(i, n)``: map the i-th of n round-robin shards.
        executor: ``local`` or ``ray``.
        ray: Ray settings (``executor="ray"``).
        dry_run: Plan and report what would be mapped; map nothing.
        plan_digest: The `Plan.digest` the plan file must have (``--plan-digest``, pinned by the job
            files of ``deploy``): a plan re-made or edited since is refused.

    Raises:
        OptionsError: Both or neither of ``input_dir`` and ``plan_file``, or an unknown executor.
    """

    command: str
    output_dir: Path
    backend: BackendSpec = field(default_factory=BackendSpec)
    options: MapOptions = field(default_factory=MapOptions)
    input_dir: Path | None = None
    plan_file: Path | None = None
    input_roots: tuple[Path, ...] = ()
    pair_window: float = 6.0
    require_s1: bool = False
    shard: tuple[int, int] | None = None
    executor: Executor = "local"
    ray: RayOptions = field(default_factory=RayOptions)
    dry_run: bool = False
    plan_digest: str | None = None

    def __post_init__(self) -> None:
        if (self.input_dir is None) == (self.plan_file is None):
            raise OptionsError("a run maps either an input folder or a plan file, not both or neither")
        if self.executor not in ("local", "ray"):
            raise OptionsError(f"--executor must be local or ray, got {self.executor!r}")
        if self.pair_window < 0:
            raise OptionsError(f"--pair-window must be ≥ 0 days, got {self.pair_window}")
        if self.plan_digest is not None and self.plan_file is None:
            raise OptionsError("--plan-digest pins a plan file; it has no meaning for an input folder")


class RunProgress(Protocol):
    """What a run tells its display (the CLI's rich/JSON-lines output, or nothing)."""

    def start(self, pairs: int) -> None:
        """The run is about to map ``pairs`` pairs."""

    def scene(self, report: SceneReport) -> None:
        """A scene finished (done, skipped or failed)."""

    def tiles(self, scene: str, done: int, total: int) -> None:
        """Tiles of ``scene`` processed so far."""


@dataclass
class RunReport:
    """One run of a command over a set of pairs.

    Attributes:
        command: What ran (``map``, ``run``).
        started: UTC start time.
        finished: UTC end time.
        shard: ``[i, n]`` or None.
        backend: ``{"kind", "executor", "model": {name, version, sha256, tile}, "spec": {...}, "actors",
            "gpus_per_actor"}`` (the last two None for the local executor): one schema for every executor.
        options: Mapping options.
        scenes: One report per pair.
        inputs_skipped: Paths of the input directory that are not usable products, and why.
        plan: ``{"file", "digest", "pairs"}`` of the plan a ``run`` mapped (None for ``map``): which
            version of the plan this shard saw.
    """

    command: str
    started: str
    finished: str = ""
    shard: list[int] | None = None
    backend: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    scenes: list[SceneReport] = field(default_factory=list)
    inputs_skipped: list[dict[str, str]] = field(default_factory=list)
    plan: dict[str, Any] | None = None

    def counts(self) -> dict[str, int]:
        """Scenes per status (``done``, ``skipped``, ``failed``, ``interrupted``, ``not_started``)."""
        return dict(Counter(s.status for s in self.scenes))

    def exit_code(self) -> int:
        """`EXIT_INTERRUPTED`, `EXIT_OK`, `EXIT_PARTIAL` or `EXIT_ALL_FAILED`."""
        counts = self.counts()
        if counts.get("interrupted", 0):
            return EXIT_INTERRUPTED
        if counts.get("failed", 0) == 0:
            return EXIT_OK
        return EXIT_PARTIAL if counts.get("done", 0) else EXIT_ALL_FAILED

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        out = asdict(self)
        out["software"] = f"cloudlulc-edge {__version__}"
        out["counts"] = self.counts()
        out["exit_code"] = self.exit_code()
        return out

    def write(self, directory: Path) -> Path:
        """Writes ``<directory>/reports/<command>-<start>-p<pid>[-shard-i-of-n].json`` atomically.

        The process id keeps the reports of runs started in the same second (two `map` processes
        sharing an output folder, a job array) apart.
        """
        folder = directory / "reports"
        if folder.is_symlink():
            raise OutputError("the reports folder is a symbolic link; reports are never written through links",
                              folder)  # fmt: skip
        folder.mkdir(parents=True, exist_ok=True)
        stamp = self.started.replace(":", "").replace("-", "").replace("+0000", "Z")
        suffix = f"-shard-{self.shard[0]}-of-{self.shard[1]}" if self.shard else ""
        path = folder / f"{self.command}-{stamp}-p{os.getpid()}{suffix}.json"
        return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n"))


@dataclass(frozen=True)
class PlannedScene:
    """What a run would do with one pair (``--dry-run``).

    Attributes:
        pair: The pair.
        action: ``map``, ``replace`` (``--no-resume`` over an existing map), ``skip`` or ``fail``
            (its existing map was made with other settings, or cannot be read).
        reason: Why, in words (for ``fail`` the error the run would report).
    """

    pair: Pair
    action: str
    reason: str


@dataclass
class RunResult:
    """What `run_batch` did.

    Attributes:
        plan: The plan of the run (all pairs, before sharding) and what it left out.
        pairs: The pairs this run maps (its shard).
        report: The run report (None for a dry run).
        report_path: Where the report was written (None for a dry run, or when it could not be written).
        planned: A dry run: what would happen to each pair (empty otherwise).
    """

    plan: Plan
    pairs: list[Pair]
    report: RunReport | None = None
    report_path: Path | None = None
    planned: list[PlannedScene] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """The run's exit status: `EXIT_NOTHING_TO_MAP` when the plan holds no pair, else the report's.

        A dry run is `EXIT_OK` unless there is nothing to map. A shard left empty by a plan with pairs
        is `EXIT_OK`.
        """
        if not self.plan.pairs:
            return EXIT_NOTHING_TO_MAP
        return self.report.exit_code() if self.report is not None else EXIT_OK


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")


def backend_record(spec: BackendSpec | ResolvedBackend, backend: Backend | None, executor: Executor,
                   ray: RayOptions | None = None) -> dict[str, Any]:  # fmt: skip
    """The report's ``backend`` field: the same keys for every executor.

    Args:
        spec: The spec, or what ``auto`` resolved it to (then ``chosen`` says why).
        backend: The open backend (None where Ray actors open their own).
        executor: ``local`` or ``ray``.
        ray: The Ray options of a Ray run.
    """
    chosen = spec.reason if isinstance(spec, ResolvedBackend) else None
    concrete = spec.spec if isinstance(spec, ResolvedBackend) else spec
    identity = asdict(backend.identity) if backend is not None else None
    spec_fields = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(concrete).items()}
    return {"kind": concrete.kind, "chosen": chosen, "executor": executor, "model": identity, "spec": spec_fields,
            "actors": ray.actors if ray is not None else None,
            "gpus_per_actor": ray.gpus_per_actor if ray is not None else None}  # fmt: skip


def resolve_and_open(spec: BackendSpec) -> tuple[ResolvedBackend, Backend]:
    """`choose_backend` then `open_resolved` (the caller logs ``resolved.reason`` once its run has started)."""
    resolved = choose_backend(spec)
    return resolved, open_resolved(resolved)


def _plan(request: RunRequest) -> Plan:
    if request.input_dir is not None:
        return plan_directory(request.input_dir, request.pair_window, request.require_s1, request.options.terrain)
    assert request.plan_file is not None
    if not request.input_roots:
        recorded = recorded_input_root(request.plan_file)
        hint = f" (the plan says it was made from {recorded})" if recorded else ""
        raise OptionsError(f"run reads only inside the input folders its own command line names: add --input-root "
                           f"DIR{hint}", request.plan_file)  # fmt: skip
    plan = read_plan(request.plan_file, request.input_roots)
    if request.plan_digest is not None and plan.digest != request.plan_digest:
        raise OptionsError(f"the plan's digest is {plan.digest}, the job expects {request.plan_digest}: it was re-made "
                           "or edited since the job was generated; regenerate the job files (deploy) or restore "
                           "the plan", request.plan_file)  # fmt: skip
    return plan


def _options(request: RunRequest, plan: Plan) -> MapOptions:
    """The request's options with the plan's terrain correction (a plan records ``plan --dem``).

    Raises:
        OptionsError: The plan and the request name different terrain corrections.
        DemError: The DEM cannot be opened or its vertical datum resolved (before any scene is read).
    """
    options = request.options
    recorded = plan.options.get("terrain")
    if isinstance(recorded, dict):
        planned = TerrainCorrection.from_dict(recorded)
        if options.terrain is None:
            options = replace(options, terrain=planned)
        elif options.terrain != planned:
            raise OptionsError(f"the plan records terrain correction {planned.to_dict()}, the command line asks "
                               f"for {options.terrain.to_dict()}; make a new plan or drop the --dem options")  # fmt: skip
    if options.terrain is not None:
        with tempfile.TemporaryDirectory(prefix="cloudlulc-dem-") as tmp:
            Dem.open(options.terrain.dem, options.terrain.dem_datum, workdir=tmp)  # fail now, not per scene
    return options


def run_batch(request: RunRequest, progress: RunProgress | None = None) -> RunResult:
    """Plans, opens the backend, maps the request's pairs and writes the run report.

    SIGTERM and SIGHUP stop a local run like Ctrl-C does (when called from the main thread): the
    scene in progress is abandoned cleanly and the report written, with exit code
    `EXIT_INTERRUPTED`.

    Args:
        request: What to map and how.
        progress: Told when the run starts, each scene ends and tiles advance.

    Returns:
        The plan, the pairs and the report and its path, or for a dry run what would happen to
        each pair (`PlannedScene`; the backend is opened to compare existing maps' settings).

    Raises:
        CloudLULCError: Before any scene is read: a bad input folder or plan, shard, output folder,
            backend, device, model or option combination (usage errors). Scene failures do not
            raise: they are in the report.
    """
    # A missing extra, absent device, bad tile or model fails before the folder is scanned. Ray
    # actors open their own backend (the driver may have no GPU), except for a dry run.
    resolved, backend = resolve_and_open(request.backend) if request.executor == "local" or request.dry_run else \
        (None, None)  # fmt: skip
    plan = _plan(request)
    pairs = plan.shard(*request.shard) if request.shard else list(plan.pairs)
    options = _options(request, plan)
    if backend is not None:
        options = options.with_tile(backend.identity.tile or options.tile)  # graphs fix the tile
        if any(p.kind == "s1_safe" for pair in pairs for p in pair.s1):  # GeoTIFF S1 comes calibrated as it is
            s1_radiometry_check(options, backend.identity.s1_radiometry)  # a usage error, before any scene
    if request.dry_run:
        assert backend is not None
        return RunResult(plan, pairs, planned=[_planned(pair, backend, request.output_dir, options) for pair in pairs])
    check_output_dir(request.output_dir)
    if backend is None:
        from cloudlulc_edge.ray_executor import map_with_ray

        if progress is not None:
            progress.start(len(pairs))
        mapped = map_with_ray(pairs, request.backend, request.output_dir, options, request.ray,
                              on_scene=progress.scene if progress is not None else None)  # fmt: skip
        record = backend_record(request.backend, None, "ray", request.ray) | {"model": mapped.identity}
        report, path = record_run(request.command, record, request.output_dir, options, request.shard,
                                  plan.skipped, lambda: mapped.reports, _plan_info(request, plan))  # fmt: skip
        return RunResult(plan, pairs, report, path)
    if progress is not None:
        progress.start(len(pairs))
    if resolved is not None and request.backend.kind == "auto":
        log.info("backend %s", resolved.reason)
    with signals_stop_the_run():
        report, path = run_pairs(request.command, pairs, backend, request.output_dir, options, request.shard,
                                 progress.scene if progress else None, progress.tiles if progress else None,
                                 plan.skipped, backend_record(resolved or request.backend, backend, "local"),
                                 _plan_info(request, plan))  # fmt: skip
    return RunResult(plan, pairs, report, path)


def _plan_info(request: RunRequest, plan: Plan) -> dict[str, Any] | None:
    if request.plan_file is None:
        return None
    return {"file": str(request.plan_file), "digest": plan.digest, "pairs": len(plan.pairs)}


def _planned(pair: Pair, backend: Backend, output_dir: Path, options: MapOptions) -> PlannedScene:
    try:
        action, reason = scene_action(pair, backend, output_dir, options)
    except CloudLULCError as exc:
        return PlannedScene(pair, "fail", str(exc))
    return PlannedScene(pair, action, reason)


@contextmanager
def signals_stop_the_run() -> Iterator[None]:
    """SIGTERM and SIGHUP raise `KeyboardInterrupt` (named by the signal) while mapping, as SIGINT does.

    Only from the main thread (where Python runs signal handlers); the previous handlers come back after.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_pairs(
    command: str,
    pairs: Sequence[Pair],
    backend: Backend,
    output_dir: Path,
    options: MapOptions,
    shard: tuple[int, int] | None = None,
    on_scene: Callable[[SceneReport], None] | None = None,
    on_tiles: Callable[[str, int, int], None] | None = None,
    inputs_skipped: Sequence[Skipped] = (),
    backend_info: dict[str, Any] | None = None,
    plan_info: dict[str, Any] | None = None,
) -> tuple[RunReport, Path | None]:
    """Maps ``pairs`` (already sharded) with an open backend and writes the run report.

    Args:
        command: Name recorded in the report.
        pairs: Pairs to map.
        backend: Inference backend.
        output_dir: Map folder.
        options: Mapping options.
        shard: ``(i, n)`` recorded in the report.
        on_scene: Called with each finished scene report.
        on_tiles: Progress callback ``(scene, tiles done, tiles total)``.
        inputs_skipped: Inputs the plan left out (recorded in the report).
        backend_info: The report's ``backend`` field (default: `backend_record` of the backend alone).
        plan_info: The report's ``plan`` field.

    Returns:
        ``(report, report path)``.
    """
    info = backend_info or {"kind": type(backend).__name__, "executor": "local", "model": asdict(backend.identity),
                            "spec": None, "actors": None, "gpus_per_actor": None}  # fmt: skip
    return record_run(
        command, info, output_dir, options, shard, inputs_skipped,
        lambda: map_plan(pairs, backend, output_dir, options, on_scene=on_scene, on_tiles=on_tiles), plan_info,
    )  # fmt: skip


def record_run(
    command: str,
    backend_info: dict[str, Any],
    output_dir: Path,
    options: MapOptions,
    shard: tuple[int, int] | None,
    inputs_skipped: Sequence[Skipped],
    execute: Callable[[], list[SceneReport]],
    plan_info: dict[str, Any] | None = None,
) -> tuple[RunReport, Path | None]:
    """Runs ``execute`` (any executor returning scene reports) and writes its run report.

    Returns:
        ``(report, report path)``; the path is None when the report could not be written (a full
        disk): it is then logged whole, on stderr.

    Raises:
        CloudLULCError: Whatever ``execute`` raises before mapping (Ray not installed…).
    """
    report = RunReport(command, _now(), shard=list(shard) if shard else None, backend=backend_info,
                       options=options.to_dict(), inputs_skipped=[asdict(s) for s in inputs_skipped],
                       plan=plan_info)  # fmt: skip
    report.scenes = execute()
    report.finished = _now()
    try:
        return report, report.write(output_dir)
    except (OSError, OutputError) as exc:  # a full disk, a folder gone read-only: the maps are safe, say so
        log.error("the run report cannot be written to %s (%s); here it is instead:\n%s", output_dir / "reports",
                  exc, json.dumps(report.to_dict(), indent=1))  # fmt: skip
        return report, None
