"""Progress for batch runs: rich bars for people, JSON lines for machines, or nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

if TYPE_CHECKING:
    from cloudlulc_edge.pipeline import SceneReport

__all__ = ["RunDisplay", "summary_table"]


class RunDisplay:
    """Receives the run's callbacks (`cloudlulc_edge.runner.RunProgress`) as ``rich``, ``jsonl`` or ``quiet`` output.

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
        self._scene_start = 0.0

    def emit(self, event: str, **fields: Any) -> None:
        """Writes one JSON line (jsonl mode only)."""
        if self.mode == "jsonl":
            print(json.dumps({"time": round(time.time(), 3), "event": event, **fields}), flush=True)

    @contextmanager
    def running(self) -> Iterator[RunDisplay]:
        """Shows the bars for the duration of the run."""
        if self.mode != "rich":
            yield self
            return
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]}"), TimeRemainingColumn())  # fmt: skip
        with Progress(*columns, console=self.console, transient=False) as progress:
            self._progress = progress
            self._overall = progress.add_task("scenes", total=None, rate="")
            yield self
        self._progress = None

    def start(self, pairs: int) -> None:
        """The run is about to map ``pairs`` pairs."""
        self.scenes = pairs
        self.emit("run_start", scenes=pairs)
        if self._progress is not None:
            self._progress.update(self._overall, total=pairs)

    def tiles(self, scene: str, done: int, total: int) -> None:
        """Per-scene tile progress (``pipeline.map_plan``'s ``on_tiles``)."""
        if scene != self._scene:
            self._scene, self._scene_start = scene, time.perf_counter()
            self.emit("scene_start", scene=scene, tiles=total)
            if self._progress is not None:
                if self._scene_task is not None:
                    self._progress.remove_task(self._scene_task)
                self._scene_task = self._progress.add_task(scene[:40], total=total, rate="")
        if self._progress is not None:
            rate = done / max(time.perf_counter() - self._scene_start, 1e-9)
            self._progress.update(self._scene_task, completed=done, rate=f"{rate:.1f} tiles/s")

    def scene(self, report: SceneReport) -> None:
        """A finished scene (``on_scene``)."""
        self.emit("scene_end", **report.to_dict())
        if self._progress is not None:
            self._progress.advance(self._overall)
            if report.status == "failed":
                self._progress.console.print(f"[red]failed[/red] {report.name}: {report.error}")
        self._scene = None


def summary_table(scenes: list[SceneReport], title: str) -> Table:
    """One row per scene: status, Δt, cloud %, S1 coverage, tiles, seconds, output or error."""
    table = Table(title=title)
    for column in ("scene", "status", "Δt days", "cloud %", "S1 cover %", "tiles", "s", "output / error"):
        table.add_column(column)
    for s in scenes:
        colour = {"done": "green", "skipped": "yellow", "failed": "red"}.get(s.status, "white")
        table.add_row(
            s.name[:48], f"[{colour}]{s.status}[/{colour}]", _fmt(s.dt_days), _fmt(s.cloud_pct),
            _fmt(s.s1_coverage_pct), str(s.tiles), f"{s.seconds:.1f}", s.error or s.output or "",
        )  # fmt: skip
    return table


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"
