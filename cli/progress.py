"""Progress for batch runs: rich bars on a terminal, plain full-width lines in logs, JSON lines for machines."""

from __future__ import annotations

import json
import logging
import sys
import time
import warnings
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

if TYPE_CHECKING:
    from cloudlulc_edge.pipeline import SceneReport

__all__ = ["RunDisplay", "summary_lines", "summary_table"]

#: Seconds of tile progress the displayed rate averages over.
RATE_WINDOW_S = 10.0


class RunDisplay:
    """Receives the run's callbacks (`cloudlulc_edge.runner.RunProgress`) as ``rich``, ``jsonl`` or ``quiet`` output.

    ``rich`` draws bars on a terminal; without one (cron, a log file) it prints one plain line per
    finished scene instead, never cut to the terminal width.

    Args:
        mode: ``rich``, ``jsonl`` or ``quiet``.
        console: Where rich output goes.
    """

    def __init__(self, mode: str, console: Console | None = None) -> None:
        if mode not in ("rich", "jsonl", "quiet"):
            raise ValueError(f"log format must be rich or jsonl, got {mode!r}")
        self.mode = mode
        self.console = console or Console()
        self.scenes = 0
        self._progress: Progress | None = None
        self._overall: Any = None
        self._scene_task: Any = None
        self._scene: str | None = None
        self._samples: deque[tuple[float, int]] = deque()

    def emit(self, event: str, **fields: Any) -> None:
        """Writes one JSON line (jsonl mode only)."""
        if self.mode == "jsonl":
            print(json.dumps({"time": round(time.time(), 3), "event": event, **fields}), flush=True)

    @contextmanager
    def running(self) -> Iterator[RunDisplay]:
        """For the duration of the run: the bars, and the library's log records and warnings in this format.

        Warnings (``warnings.warn``: the library's, rasterio's, torch's) become WARNING records of
        the ``py.warnings`` logger, ``Category: message`` without source lines. Records of level
        INFO and up are shown as ``rich`` log lines above the bars, as plain ``time level logger:
        message`` lines on stderr without a terminal, or as ``{"event": "log", …}`` JSON lines.
        The previous logging set-up comes back after.
        """
        with self._logging():
            if self.mode != "rich" or not self.console.is_terminal:
                yield self
                return
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[rate]}"), TimeRemainingColumn())  # fmt: skip
            with Progress(*columns, console=self.console, transient=False) as progress:
                self._progress = progress
                self._overall = progress.add_task("scenes", total=None, rate="")
                yield self
            self._progress = None

    @contextmanager
    def _logging(self) -> Iterator[None]:
        handler: logging.Handler
        if self.mode == "jsonl":
            handler = _JsonLinesHandler()
        elif self.mode == "rich" and self.console.is_terminal:
            handler = RichHandler(console=self.console, show_path=False, markup=False)
        else:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.setLevel(logging.WARNING if self.mode == "quiet" else logging.INFO)
        root = logging.getLogger()
        level = root.level
        root.addHandler(handler)
        root.setLevel(min(level, handler.level) if level else handler.level)
        try:
            with warnings.catch_warnings():  # restores showwarning after
                warnings.showwarning = _log_warning
                yield
        finally:
            root.removeHandler(handler)
            root.setLevel(level)

    def start(self, pairs: int) -> None:
        """The run is about to map ``pairs`` pairs."""
        self.scenes = pairs
        self.emit("run_start", scenes=pairs)
        if self._progress is not None:
            self._progress.update(self._overall, total=pairs)

    def tiles(self, scene: str, done: int, total: int) -> None:
        """Per-scene tile progress (``pipeline.map_plan``'s ``on_tiles``; ``done`` is 0 when the scene starts)."""
        now = time.perf_counter()
        if scene != self._scene:
            self._scene = scene
            self._samples.clear()
            self.emit("scene_start", scene=scene, tiles=total)
            if self._progress is not None:
                if self._scene_task is not None:
                    self._progress.remove_task(self._scene_task)
                self._scene_task = self._progress.add_task(scene[:40], total=total, rate="")
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[1][0] >= RATE_WINDOW_S:
            self._samples.popleft()  # keep one sample older than the window
        if self._progress is not None:
            self._progress.update(self._scene_task, completed=done, rate=self.rate_text())

    def rate_text(self) -> str:
        """Tiles per second over the last `RATE_WINDOW_S` (at least two progress reports, ≥ 0.5 s apart)."""
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        if t1 - t0 < 0.5:
            return ""
        return f"{(d1 - d0) / (t1 - t0):.2f} tiles/s"

    def scene(self, report: SceneReport) -> None:
        """A finished scene (``on_scene``)."""
        self.emit("scene_end", **report.to_dict())
        if self._progress is not None:
            self._progress.advance(self._overall)
            if report.status == "failed":
                self._progress.console.print(f"[red]failed[/red] {escape(report.name)}: {escape(report.error or '')}")
        elif self.mode == "rich":  # no terminal: one plain line per scene
            self.console.print(next(iter(summary_lines([report]))), markup=False, highlight=False, soft_wrap=True)
        self._scene = None


def _log_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: object = None, line: str | None = None) -> None:  # fmt: skip
    logging.getLogger("py.warnings").warning("%s: %s", category.__name__, message)


class _JsonLinesHandler(logging.Handler):
    """Log records as ``{"time", "event": "log", "level", "logger", "message"}`` lines on stdout."""

    def emit(self, record: logging.LogRecord) -> None:
        line = {"time": round(record.created, 3), "event": "log", "level": record.levelname.lower(),
                "logger": record.name, "message": record.getMessage()}  # fmt: skip
        print(json.dumps(line), flush=True)


def summary_lines(scenes: list[SceneReport]) -> Iterator[str]:
    """One plain line per scene, full names and paths (for logs and other non-terminals)."""
    for s in scenes:
        yield (f"{s.status:<11} {s.name}  Δt={_fmt(s.dt_days)} d  cloud={_fmt(s.cloud_pct)} %  "
               f"s1={_fmt(s.s1_coverage_pct)} %  tiles={s.tiles}  {s.seconds:.1f} s  {s.error or s.output or ''}")  # fmt: skip


def summary_table(scenes: list[SceneReport], title: str) -> Table:
    """One row per scene: status, Δt, cloud %, S1 coverage, tiles, seconds, output or error."""
    table = Table(title=title)
    for column in ("scene", "status", "Δt days", "cloud %", "S1 cover %", "tiles", "s", "output / error"):
        table.add_column(column)
    for s in scenes:
        colour = {"done": "green", "skipped": "yellow", "failed": "red", "interrupted": "red"}.get(s.status, "white")
        table.add_row(
            s.name[:48], f"[{colour}]{s.status}[/{colour}]", _fmt(s.dt_days), _fmt(s.cloud_pct),
            _fmt(s.s1_coverage_pct), str(s.tiles), f"{s.seconds:.1f}", escape(s.error or s.output or ""),
        )  # fmt: skip
    return table


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"
