"""``trtexec`` command lines for building and timing engines, and parsing of its summary.

The same ONNX builds on TensorRT 10.x and 11.x because precision lives in the graph: no
``--fp16/--int8/--best/--calib`` (removed in 11), ``--stronglyTyped`` on 10.x (a no-op in 11).
Timing follows the field's conventions (`edge-export.md` §12): Throughput = inferences / Total
Host Walltime; Host Latency = H2D + GPU Compute + D2H.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from cloudlulc_edge.export.profiles import BatchProfile, profile_shapes

__all__ = ["TimingStats", "TrtexecSummary", "build_command", "parse_summary", "timing_command"]


def _shape_arg(flag: str, shapes: dict[str, tuple[int, ...]]) -> str:
    return f"--{flag}=" + ",".join(f"{name}:{'x'.join(map(str, s))}" for name, s in shapes.items())


def _profile_args(profile: BatchProfile, tile: int) -> list[str]:
    shapes = profile_shapes(profile, tile)
    return [
        _shape_arg("minShapes", {k: v[0] for k, v in shapes.items()}),
        _shape_arg("optShapes", {k: v[1] for k, v in shapes.items()}),
        _shape_arg("maxShapes", {k: v[2] for k, v in shapes.items()}),
    ]


def build_command(
    onnx: Path,
    engine: Path,
    profile: BatchProfile,
    tile: int,
    trt_major: int,
    workspace_mib: int = 1024,
    timing_cache: Path | None = None,
    dla_core: int | None = None,
    version_compatible: bool = False,
    plugin_libraries: tuple[Path, ...] = (),
    trtexec: str = "trtexec",
) -> list[str]:
    """``trtexec`` arguments that build (and save) an engine from an ONNX file.

    Args:
        onnx: ONNX file (its tensor types set the precision).
        engine: Where to save the plan.
        profile: Batch profile (static on DLA).
        tile: Tile side.
        trt_major: TensorRT major version (10 or 11).
        workspace_mib: Workspace cap (Jetson memory is shared with the CPU).
        timing_cache: Timing-cache file to read and update.
        dla_core: Build for this DLA core with GPU fallback (AGX Orin).
        version_compatible: Build a version-compatible engine.
        plugin_libraries: Plugin libraries to load (``--staticPlugins``).
        trtexec: Executable.

    Returns:
        The argument vector.
    """
    cmd = [trtexec, f"--onnx={onnx}", f"--saveEngine={engine}", *_profile_args(profile, tile)]
    cmd.append(f"--memPoolSize=workspace:{workspace_mib}M")
    if trt_major < 11:
        cmd.append("--stronglyTyped")
    if timing_cache is not None:
        cmd.append(f"--timingCacheFile={timing_cache}")
    if dla_core is not None:
        cmd += [f"--useDLACore={dla_core}", "--allowGPUFallback"]
    if version_compatible:
        cmd.append("--versionCompatible")
    cmd += [f"--staticPlugins={lib}" for lib in plugin_libraries]
    cmd += ["--profilingVerbosity=detailed", "--skipInference"]
    return cmd


def timing_command(
    engine: Path,
    batch: int,
    tile: int,
    duration_s: int = 10,
    warmup_ms: int = 2000,
    cuda_graph: bool = True,
    no_data_transfers: bool = False,
    trtexec: str = "trtexec",
) -> list[str]:
    """``trtexec`` arguments that time a saved engine at one batch size.

    Args:
        engine: The plan.
        batch: Batch to run (within the engine's profile).
        tile: Tile side.
        duration_s: Minimum timed duration.
        warmup_ms: Warm-up time.
        cuda_graph: ``--useCudaGraph`` (cuts enqueue overhead).
        no_data_transfers: Leave out H2D/D2H (GPU-only figures).
        trtexec: Executable.
    """
    shapes = profile_shapes(BatchProfile("run", batch, batch, batch), tile)
    cmd = [trtexec, f"--loadEngine={engine}", _shape_arg("shapes", {k: v[1] for k, v in shapes.items()})]
    cmd += [f"--warmUp={warmup_ms}", f"--duration={duration_s}", "--avgRuns=100"]
    if cuda_graph:
        cmd.append("--useCudaGraph")
    if no_data_transfers:
        cmd.append("--noDataTransfers")
    return cmd


@dataclass(frozen=True)
class TimingStats:
    """One ``name: min = … ms, max = …`` line of the summary (ms; percentiles by their percent)."""

    min: float
    max: float
    mean: float
    median: float
    percentiles: dict[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TrtexecSummary:
    """The ``=== Performance summary ===`` block.

    Attributes:
        throughput_qps: Inferences per second (each inference is one batch).
        latency: Host latency (H2D + compute + D2H).
        gpu_compute: GPU compute time.
        enqueue: Enqueue time, if printed.
        h2d: Host-to-device time, if printed.
        d2h: Device-to-host time, if printed.
        host_walltime_s: Total host walltime.
    """

    throughput_qps: float
    latency: TimingStats
    gpu_compute: TimingStats
    enqueue: TimingStats | None
    h2d: TimingStats | None
    d2h: TimingStats | None
    host_walltime_s: float | None


_NUM = r"([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"


def _stats(text: str, label: str) -> TimingStats | None:
    # "Latency" must not match inside "H2D Latency" / "D2H Latency".
    match = re.search(rf"(?<!H2D )(?<!D2H )\b{label}: (min = [^\n]*)", text)
    if match is None:
        return None
    line = match.group(1)
    values = dict(re.findall(rf"\b(min|max|mean|median) = {_NUM} ms", line))
    if set(values) != {"min", "max", "mean", "median"}:
        return None
    pct = {int(p): float(v) for p, v in re.findall(rf"percentile\((\d+)%\) = {_NUM} ms", line)}
    return TimingStats(float(values["min"]), float(values["max"]), float(values["mean"]), float(values["median"]), pct)


def parse_summary(text: str) -> TrtexecSummary:
    """Parses the performance summary of a ``trtexec`` run (10.x and 11.x print the same lines).

    Args:
        text: trtexec's stdout (log prefixes like ``[09/02/2024-17:14:34] [I]`` are fine).

    Returns:
        The summary.

    Raises:
        ValueError: No performance summary in ``text`` (a failed or build-only run).
    """
    throughput = re.search(rf"Throughput: {_NUM} qps", text)
    latency, compute = _stats(text, "Latency"), _stats(text, "GPU Compute Time")
    if throughput is None or latency is None or compute is None:
        raise ValueError("no trtexec performance summary found (was --skipInference set, or did the run fail?)")
    walltime = re.search(rf"Total Host Walltime: {_NUM} s", text)
    return TrtexecSummary(
        float(throughput.group(1)),
        latency,
        compute,
        _stats(text, "Enqueue Time"),
        _stats(text, "H2D Latency"),
        _stats(text, "D2H Latency"),
        float(walltime.group(1)) if walltime else None,
    )
