"""Shared benchmark helpers: environment capture and Markdown tables."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from cloudlulc_edge.version import __version__, package_versions

__all__ = ["environment", "markdown_table", "proc_field", "replace_between_markers"]


def proc_field(path: str, key: str) -> str | None:
    """Returns the value of the first ``key: value`` line of a Linux ``/proc`` file, or None.

    Args:
        path: e.g. ``/proc/cpuinfo`` or ``/proc/self/status``.
        key: Text before the colon, e.g. ``model name`` or ``VmHWM``.

    Returns:
        The stripped text after the colon; None where the file or the key does not exist
        (non-Linux systems).
    """
    file = Path(path)
    lines = file.read_text().splitlines() if file.is_file() else []
    for line in lines:
        name, sep, value = line.partition(":")
        if sep and name.strip() == key:
            return value.strip()
    return None


def _cpu_model() -> str:
    return proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown"


def environment() -> dict[str, Any]:
    """Returns the machine and software facts every benchmark result must carry."""
    env: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "cloudlulc_edge": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["cuda_version"] = torch.version.cuda
        env["driver"] = _command_output(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
    env["packages"] = package_versions(("triton", "onnx", "onnxruntime", "onnxruntime-gpu", "nvidia-modelopt",
                                         "tensorrt", "rasterio"))  # fmt: skip
    power = _command_output(["nvpmodel", "-q"])  # Jetson only
    if power:
        env["jetson_power_mode"] = power.splitlines()[0]
    return env


def _command_output(cmd: list[str]) -> str:
    """stdout of a command, or ``""`` when it is missing or fails."""
    if shutil.which(cmd[0]) is None:
        return ""
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=10)
    return result.stdout.strip() if result.returncode == 0 else ""


def cuda_event_ms(fn: Callable[[], object]) -> float:
    """Times one call of ``fn`` with CUDA events on the current stream, synchronised on both sides (ms)."""
    start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
    end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
    torch.cuda.synchronize()
    start.record()
    fn()
    end.record()
    torch.cuda.synchronize()
    return float(start.elapsed_time(end))


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """Renders ``rows`` as a Markdown table.

    Args:
        rows: One dict per row.
        columns: ``(key, header)`` pairs in display order.

    Returns:
        The table, newline-terminated.
    """
    lines = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r[k]) for k, _ in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def replace_between_markers(text: str, name: str, body: str) -> str:
    """Replaces the block between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``text``.

    Raises:
        ValueError: The markers are missing.
    """
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    i, j = text.find(start), text.find(end)
    if i < 0 or j < i:
        raise ValueError(f"markers {start} … {end} not found")
    return text[: i + len(start)] + "\n" + body + text[j:]


def publish(
    name: str, result: dict[str, Any], text: str, readme: Path | None, marker: str, results: Path | None = None
) -> Path:
    """Writes ``<results>/<name>.{json,md}``, prints the Markdown, and updates the docs block.

    Args:
        name: Result file stem.
        result: JSON-serialisable record.
        text: Markdown rendering of ``result``.
        readme: Markdown page (README or docs/) to update between ``<!-- marker:start/end -->``, or None.
        marker: Marker name.
        results: Output folder (default: ``bench/results`` beside this module).

    Returns:
        The JSON path.
    """
    results = results or Path(__file__).parent / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    (results / f"{name}.md").write_text(text)
    print(text)
    if readme is not None:
        readme.write_text(replace_between_markers(readme.read_text(), marker, text))
    return results / f"{name}.json"
