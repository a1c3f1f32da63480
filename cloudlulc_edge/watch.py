"""``watch``: map the products of a folder that keeps filling, each once it is complete.

A ground station or a download job writes products into INPUT; a long-running watcher maps each
S2 scene once its files are complete and paired with the best S1 already present:

* **Wake-ups.** The folder is rescanned every ``poll_s`` seconds and as soon as a settle time or
  an S1 wait ends (polling, always available); with the ``watch`` extra (watchdog) an inotify
  observer also wakes the loop as soon as something changes, so a finished copy is seen at once.
  Each rescan reads every product's metadata again (`io.products.scan`): for folders of hundreds
  of products, raise ``poll_s``.
* **Completeness.** A product is used once (a) the format says it is whole — a SAFE folder or
  zip whose ``manifest.safe`` sizes all match, a zip whose central directory reads — and (b) its
  files have not changed (count, bytes, newest mtime) for ``settle_s`` seconds. Products that
  cannot be read yet are retried on every rescan and reported only when their reason changes.
* **Pairing.** The same rule as ``map`` (`pairing.pair_products`) over the complete products. An
  S2 without S1 waits up to ``s1_wait_s`` for one, then is mapped S2-only (or skipped with
  ``s1_missing="skip"``). With ``remap_on_better_s1`` a scene is mapped again when the pairing
  later picks another S1 (a closer one arrived, or the first one); the report keeps the earlier
  map's S1 (``replaces``).
* **Sharing.** Scenes are claimed as by ``map`` (`claims.SceneClaim`), so several watchers on one
  OUTPUT map each scene once; a map made with other settings is reported once, never replaced.
* **Stopping.** SIGTERM, SIGINT and SIGHUP stop the loop: a scene in progress is abandoned
  cleanly (its partial output removed, ``interrupted`` in the report) and the run report is
  written. ``exit_when_idle_s`` stops it once nothing has changed or been pending for that long
  (drain a folder and exit).
* **Status.** ``OUTPUT/reports/watch-<host>-p<pid>.status.json`` is rewritten after every rescan:
  a heartbeat with what is mapped, pending and failed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from cloudlulc_edge.backends.base import Backend
from cloudlulc_edge.backends.factory import BackendSpec
from cloudlulc_edge.errors import CloudLULCError, OptionsError, OutputError
from cloudlulc_edge.files import atomic_write
from cloudlulc_edge.io.archive import SafeArchive
from cloudlulc_edge.io.products import Product, Skipped, scan
from cloudlulc_edge.pairing import Pair, pair_products
from cloudlulc_edge.pipeline import (
    MapOptions,
    SceneReport,
    check_resumable,
    failed_report,
    interrupted_report,
    map_pair,
    map_settings,
    output_path,
)
from cloudlulc_edge.runner import (
    RunReport,
    backend_record,
    check_output_dir,
    resolve_and_open,
    signals_stop_the_run,
)
from cloudlulc_edge.writer import read_map_settings

__all__ = ["WatchProgress", "WatchRequest", "WatchResult", "fingerprint", "format_incomplete", "watch_directory"]

log = logging.getLogger(__name__)

Observer = Literal["auto", "inotify", "polling"]


@dataclass(frozen=True)
class WatchRequest:
    """A long-running watch of one input folder.

    Attributes:
        input_dir: The folder products arrive in (scanned recursively, as by ``map``).
        output_dir: Where maps, STAC items, run reports and the status file go.
        backend: What runs, where (opened once).
        options: Mapping options (``resume`` is the watcher's own business: it is ignored).
        pair_window: Largest |S1 − S2| to pair, days.
        settle_s: Seconds a product's files must stay unchanged before it is used.
        poll_s: Seconds between rescans (the longest reaction time without inotify).
        s1_wait_s: Seconds a complete S2 waits for an S1 before it is mapped S2-only.
        remap_on_better_s1: Map a scene again when the pairing picks another S1 later.
        observer: ``inotify`` (needs watchdog), ``polling``, or ``auto`` (inotify when available).
        exit_when_idle_s: Stop once nothing has changed, been mapped or been pending this long
            (None: run until a signal).

    Raises:
        OptionsError: A negative time, or a poll interval under 0.05 s.
    """

    input_dir: Path
    output_dir: Path
    backend: BackendSpec = field(default_factory=BackendSpec)
    options: MapOptions = field(default_factory=MapOptions)
    pair_window: float = 6.0
    settle_s: float = 30.0
    poll_s: float = 5.0
    s1_wait_s: float = 0.0
    remap_on_better_s1: bool = False
    observer: Observer = "auto"
    exit_when_idle_s: float | None = None

    def __post_init__(self) -> None:
        times = {"--settle": self.settle_s, "--s1-wait": self.s1_wait_s, "--pair-window": self.pair_window}
        for name, value in times.items():
            if value < 0:
                raise OptionsError(f"{name} must be ≥ 0, got {value}")
        if self.poll_s < 0.05:
            raise OptionsError(f"--poll must be at least 0.05 s, got {self.poll_s}")
        if self.exit_when_idle_s is not None and self.exit_when_idle_s < 0:
            raise OptionsError(f"--exit-when-idle must be ≥ 0, got {self.exit_when_idle_s}")
        if self.observer not in ("auto", "inotify", "polling"):
            raise OptionsError(f"--observer must be auto, inotify or polling, got {self.observer!r}")


class WatchProgress(Protocol):
    """What a watch tells its display (the CLI's rich/JSON-lines output)."""

    def emit(self, event: str, **fields: Any) -> None:
        """One event (``watch_start``, ``product_complete``, ``remap``, ``watch_end``…)."""

    def scene(self, report: SceneReport) -> None:
        """A scene finished (done, skipped, failed or interrupted)."""

    def tiles(self, scene: str, done: int, total: int) -> None:
        """Tiles of ``scene`` processed so far."""


@dataclass
class WatchResult:
    """What a watch did before it stopped.

    Attributes:
        report: The run report (command ``watch``): every scene attempt, in order.
        report_path: Where it was written (None: it could not be, and was logged).
        observer: The wake-up mechanism used (``inotify`` or ``polling``).
    """

    report: RunReport
    report_path: Path | None
    observer: str

    @property
    def exit_code(self) -> int:
        """As for ``map``: 0, 3 some failed, 4 all failed, 130 a scene was interrupted."""
        return self.report.exit_code()


def fingerprint(path: Path) -> tuple[int, int, int]:
    """``(files, bytes, newest mtime in ns)`` of a file or of every file under a folder (links not followed)."""
    if path.is_file():
        info = path.stat()
        return (1, info.st_size, info.st_mtime_ns)
    files = size = newest = 0
    for folder, _, names in os.walk(path):
        for name in names:
            try:
                info = os.lstat(os.path.join(folder, name))
            except OSError:
                continue  # removed meanwhile: the next fingerprint differs anyway
            files, size, newest = files + 1, size + info.st_size, max(newest, info.st_mtime_ns)
    return (files, size, newest)


def format_incomplete(product: Product) -> str | None:
    """Why the product's own format says it is not whole yet, or None (then only the settle time decides).

    SAFE folders and zips: every file ``manifest.safe`` lists with a size is present at that
    size; zips: the central directory reads. GeoTIFF scenes carry no manifest.
    """
    path = Path(product.path)
    if path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as zf:
                zf.infolist()
        except (zipfile.BadZipFile, OSError) as exc:
            return f"zip central directory not readable yet ({exc})"
    if product.kind.endswith("_safe"):
        try:
            missing = SafeArchive(path).incomplete_members()
        except CloudLULCError as exc:
            return str(exc)
        if missing:
            return f"{len(missing)} file(s) not yet at their manifest.safe size (e.g. {missing[0]})"
    return None


@dataclass
class _Seen:
    """What the watcher knows of one product path."""

    fingerprint: tuple[int, int, int]
    since: float  # monotonic time the fingerprint was first seen
    complete_since: float | None = None  # when it was first found complete and settled


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")  # the run reports' format


class _Watcher:
    """The state of one watch: products seen, scenes mapped or failed, the session's scene reports."""

    def __init__(self, request: WatchRequest, backend: Backend, progress: WatchProgress | None) -> None:
        self.request, self.backend, self.progress = request, backend, progress
        self.seen: dict[str, _Seen] = {}
        self.mapped: dict[str, tuple[str, ...]] = {}  # scene → S1 ids its map was made with
        self.failed: dict[str, tuple[Any, ...]] = {}  # scene → inputs key of the failed attempt
        self.reasons: dict[str, str] = {}  # path → last logged skip reason
        self.reports: list[SceneReport] = []
        self.skipped: list[Skipped] = []
        self.pending: list[str] = []
        self.deadlines: list[float] = []  # monotonic times a settle or S1 wait ends
        self.folder_fingerprint = (0, 0, 0)
        self.last_change = time.monotonic()
        self.started = _now()

    def _emit(self, event: str, **fields: Any) -> None:
        if self.progress is not None:
            self.progress.emit(event, **fields)

    def ready_products(self, now: float) -> tuple[list[Product], list[str]]:
        """Products complete and settled now, and the paths still waiting (with why, for the status)."""
        folder = fingerprint(self.request.input_dir)
        if folder != self.folder_fingerprint:  # anything arriving, growing or going counts as activity
            self.folder_fingerprint, self.last_change = folder, now
        found = scan(self.request.input_dir, log_skips=False)
        self.skipped = found.skipped
        for s in found.skipped:
            if self.reasons.get(s.path) != s.reason:
                self.reasons[s.path] = s.reason
                log.info("not usable (yet): %s: %s", s.path, s.reason)
        ready, waiting = [], []
        for product in found.products:
            current = fingerprint(Path(product.path))
            seen = self.seen.get(product.path)
            if seen is None or seen.fingerprint != current:
                self.seen[product.path] = seen = _Seen(current, now)
            why = None if seen.complete_since is not None else format_incomplete(product)  # unchanged since
            if why is None and now < seen.since + self.request.settle_s:
                self.deadlines.append(seen.since + self.request.settle_s)
            if why is None and now - seen.since >= self.request.settle_s:
                if seen.complete_since is None:
                    seen.complete_since = now
                    self._emit("product_complete", path=product.path, product=product.product_id)
                ready.append(product)
            else:
                waiting.append(f"{product.path}: {why or 'settling'}")
        return ready, waiting

    def cycle(self) -> None:
        """One rescan: map what is ready, write the status file."""
        now = time.monotonic()
        self.deadlines = []
        ready, waiting = self.ready_products(now)
        plan = pair_products(ready, self.request.pair_window)
        self.pending = waiting
        for pair in plan.pairs:
            self._consider(pair, now)
        self.write_status()

    def _consider(self, pair: Pair, now: float) -> None:
        s1_ids = tuple(p.product_id for p in pair.s1)
        inputs = (s1_ids, *(self.seen[p.path].fingerprint for p in (pair.s2, *pair.s1)))
        if self.failed.get(pair.name) == inputs:
            return  # failed with these very inputs: tried again when they change
        previous = self.mapped.get(pair.name)
        if previous is None:
            try:
                previous = self._existing_s1(pair)
            except CloudLULCError as exc:  # a map made otherwise: reported once, never replaced
                self._fail(pair, exc, inputs, time.perf_counter())
                return
            if previous is not None:
                self.mapped[pair.name] = previous  # what the map on disk was made with (read once)
        if previous == s1_ids:
            return  # mapped with these inputs already
        if previous is not None and not (self.request.remap_on_better_s1 and s1_ids):
            return  # keep the existing map (no remap policy, or the new pairing has no S1)
        if previous is None and not s1_ids:
            complete = self.seen[pair.s2.path].complete_since or now
            if now - complete < self.request.s1_wait_s:
                self.pending.append(f"{pair.s2.path}: waiting for an S1 ({self.request.s1_wait_s:g} s)")
                self.deadlines.append(complete + self.request.s1_wait_s)
                return
            if self.request.options.s1_missing == "skip":
                return
        self._map(pair, s1_ids, previous, inputs)

    def _existing_s1(self, pair: Pair) -> tuple[str, ...] | None:
        """The S1 ids the scene's existing map was made with (None: no map yet).

        Raises:
            OutputError: The map is unreadable, records no settings, or was made with settings
                that differ in more than its S1 (model, options, S2 product).
        """
        target = output_path(pair, self.request.output_dir)
        if not (target.exists() or target.is_symlink()):
            return None
        recorded = read_map_settings(target)
        if recorded is None:
            raise OutputError("the map exists but records no settings (an earlier version made it); move it "
                              "away to map the scene here", target)  # fmt: skip
        s1 = tuple(recorded.get("s1") or ())
        check_resumable(target, map_settings(pair, self.backend, self.request.options) | {"s1": list(s1)})
        return s1

    def _fail(self, pair: Pair, exc: Exception, inputs: Any, start: float) -> None:
        self.failed[pair.name] = inputs
        self._finish(failed_report(pair, exc, start), False, None)

    def _map(self, pair: Pair, s1_ids: tuple[str, ...], previous: tuple[str, ...] | None, inputs: Any) -> None:
        remap = previous is not None
        options = replace(self.request.options, resume=not remap)
        if remap:
            self._emit("remap", scene=pair.name, previous_s1=list(previous or ()), s1=list(s1_ids))
            log.info("%s: mapping again with S1 %s (was %s)", pair.name, list(s1_ids), list(previous or ()) or "none")
        start = time.perf_counter()
        callback = self._tiles_callback(pair.name)
        try:
            report = map_pair(pair, self.backend, self.request.output_dir, options, on_tiles=callback)
        except KeyboardInterrupt as exc:
            self._finish(interrupted_report(pair, exc, start), remap, previous)
            raise
        except Exception as exc:  # noqa: BLE001 - a scene never stops the watch; `failed_report` logs it
            self._fail(pair, exc, inputs, start)
            return
        self.failed.pop(pair.name, None)
        if report.status == "done" or report.error == "map exists with the same settings (resume)":
            self.mapped[pair.name] = s1_ids
        self._finish(report, remap, previous)

    def _finish(self, report: SceneReport, remap: bool, previous: tuple[str, ...] | None) -> None:
        if remap:
            report.replaces = {"s1": list(previous or ())}
        self.reports.append(report)
        self.last_change = time.monotonic()
        if self.progress is not None:
            self.progress.scene(report)

    def _tiles_callback(self, name: str) -> Callable[[int, int], None] | None:
        if self.progress is None:
            return None
        progress = self.progress
        return lambda done, total: progress.tiles(name, done, total)

    def status_path(self) -> Path:
        return self.request.output_dir / "reports" / f"watch-{socket.gethostname()}-p{os.getpid()}.status.json"

    def write_status(self, state: str = "watching") -> None:
        """The heartbeat: rewritten (atomically) after every rescan."""
        doc = {"state": state, "pid": os.getpid(), "host": socket.gethostname(), "started": self.started,
               "heartbeat": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "input_dir": str(self.request.input_dir), "mapped": sorted(self.mapped),
               "failed": sorted(self.failed), "pending": self.pending,
               "not_usable": {s.path: s.reason for s in self.skipped}}  # fmt: skip
        path = self.status_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            atomic_write(path, lambda tmp: tmp.write_text(json.dumps(doc, indent=1) + "\n"))
        except OSError as exc:
            log.error("cannot write the watch status file %s (%s)", path, exc)

    def idle_for(self, now: float) -> float:
        return 0.0 if self.pending else now - self.last_change

    def next_wait(self, now: float) -> float:
        """Seconds to the next rescan: the poll interval, or sooner when a settle time or S1 wait ends."""
        due = min(self.deadlines, default=now + self.request.poll_s) - now
        return max(0.05, min(self.request.poll_s, due))


def _start_observer(request: WatchRequest, wake: threading.Event) -> tuple[str, Any]:
    """The inotify observer (watchdog) that sets ``wake`` on any change, or polling only.

    Raises:
        OptionsError: ``inotify`` asked for but watchdog is not installed.
    """
    if request.observer == "polling":
        return "polling", None
    try:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer as WatchdogObserver
    except ImportError as exc:
        if request.observer == "inotify":
            raise OptionsError("--observer inotify needs watchdog: pip install 'cloudlulc-edge[watch]'") from exc
        return "polling", None

    class _Wake(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            wake.set()

    observer = WatchdogObserver()
    observer.schedule(_Wake(), str(request.input_dir), recursive=True)
    observer.daemon = True
    observer.start()
    return type(observer).__name__.removesuffix("Observer").lower() or "inotify", observer


def watch_directory(request: WatchRequest, progress: WatchProgress | None = None) -> WatchResult:
    """Watches ``request.input_dir`` and maps each complete product, until a signal (or idle, if asked).

    Args:
        request: What to watch and how to map.
        progress: Told of events, finished scenes and tile progress.

    Returns:
        The session's report (also written to ``OUTPUT/reports/watch-….json``).

    Raises:
        CloudLULCError: Before anything is watched: a bad input or output folder, backend or
            options (usage errors).
    """
    if not request.input_dir.is_dir():
        raise CloudLULCError("input is not a directory", request.input_dir)
    resolved, backend = resolve_and_open(request.backend)
    options = request.options.with_tile(backend.identity.tile or request.options.tile)
    check_output_dir(request.output_dir)
    request = replace(request, options=options)
    watcher = _Watcher(request, backend, progress)
    wake = threading.Event()
    kind, observer = _start_observer(request, wake)
    watcher._emit("watch_start", input_dir=str(request.input_dir), observer=kind, settle_s=request.settle_s)
    if request.backend.kind == "auto":
        log.info("backend %s", resolved.reason)
    log.info("watching %s (%s, rescan every %g s, settle %g s)", request.input_dir, kind, request.poll_s,
             request.settle_s)  # fmt: skip
    try:
        with signals_stop_the_run():
            while True:
                wake.clear()
                watcher.cycle()
                if (
                    request.exit_when_idle_s is not None
                    and watcher.idle_for(time.monotonic()) >= request.exit_when_idle_s
                ):
                    log.info("nothing changed or pending for %g s: stopping", request.exit_when_idle_s)
                    break
                if wake.wait(timeout=watcher.next_wait(time.monotonic())):
                    time.sleep(min(0.2, request.poll_s))  # let a burst of events (a copy) coalesce
    except KeyboardInterrupt as exc:
        log.warning("watch stopped by %s", str(exc) or "SIGINT")
    finally:
        if observer is not None:  # stopped and joined: no thread may outlive the interpreter's finalisation
            observer.stop()
            observer.join(timeout=10)
    watcher.write_status("stopped")
    report = RunReport("watch", watcher.started, backend=backend_record(resolved, backend, "local"),
                       options=options.to_dict(), scenes=watcher.reports,
                       inputs_skipped=[{"path": s.path, "reason": s.reason} for s in watcher.skipped])  # fmt: skip
    report.finished = _now()
    try:
        path: Path | None = report.write(request.output_dir)
    except (OSError, CloudLULCError) as exc:
        log.error("the watch report cannot be written (%s); here it is instead:\n%s", exc,
                  json.dumps(report.to_dict(), indent=1))  # fmt: skip
        path = None
    watcher._emit("watch_end", counts=report.counts(), report=str(path), exit_code=report.exit_code())
    return WatchResult(report, path, kind)
