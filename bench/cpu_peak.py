"""This CPU's FP32 peak: measured with large SGEMMs, and derived from its own flags and clock.

A throughput figure above the machine's measured peak is a timing error, never a result; the
benchmarks that publish GFLOP/s (`model_latency`) check their rates against `cpu_peak` and refuse
to publish one that exceeds it.

* **Measured** (the peak the check uses): the best of two SGEMMs of 4096² FP32 matrices, each
  best of 5 after 2 warm-up calls on every core: ``torch.mm`` (MKL/oneDNN) and an onnxruntime
  ``MatMul`` (MLAS), when onnxruntime is installed. Both count: on this AMD EPYC torch's MKL
  reaches 213 GFLOP/s and onnxruntime's MLAS 449 (2026-12-01), so a peak measured with MKL alone
  made honest onnxruntime rates look impossible.
* **From the flags and clock** (nominal): vector lanes per FMA (16 FP32 with ``avx512f``, 8 with
  ``avx2``/``fma``, 4 otherwise) × 2 FLOPs per FMA × 2 FMA pipes per core × cores × clock. The
  clock is the highest the kernel reports (``cpuinfo_max_freq``, else ``cpu MHz``); inside a VM
  that is the nominal clock, and boost clocks run above it (the MLAS SGEMM above is 130 % of this
  figure at the reported 2.7 GHz), so it is context, not a bound. Cores that split 512-bit FMAs
  into two 256-bit halves (Zen 4) reach half its AVX-512 value.

    python -m cloudlulc_edge.bench.cpu_peak
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from cloudlulc_edge.bench.utils import proc_field

__all__ = ["FMA_PIPES", "cpu_peak", "flags_peak_gflops", "onnxruntime_sgemm_gflops", "sgemm_gflops"]

#: FMA pipes per core assumed by the flags-derived bound (module docstring).
FMA_PIPES = 2


def _clock_ghz() -> float | None:
    max_freq = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if max_freq.is_file():
        return int(max_freq.read_text()) / 1e6  # kHz
    mhz = proc_field("/proc/cpuinfo", "cpu MHz")
    return float(mhz) / 1000 if mhz else None


def flags_peak_gflops(flags: set[str], cores: int, clock_ghz: float) -> dict[str, Any]:
    """The FP32 FMA rate of ``cores`` cores with these ``/proc/cpuinfo`` flags at ``clock_ghz``.

    Returns:
        ``{"lanes", "fma_pipes", "cores", "clock_ghz", "gflops"}``.
    """
    lanes = 16 if "avx512f" in flags else 8 if {"avx2", "fma"} <= flags else 4
    gflops = lanes * 2 * FMA_PIPES * cores * clock_ghz
    return {"lanes": lanes, "fma_pipes": FMA_PIPES, "cores": cores, "clock_ghz": round(clock_ghz, 3),
            "gflops": round(gflops, 1)}  # fmt: skip


def _best_gflops(call: Callable[[], object], flops: float, repeats: int) -> float:
    """GFLOP/s of the fastest of ``repeats`` calls after 2 warm-up calls."""
    for _ in range(2):
        call()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return round(flops / best / 1e9, 1)


def sgemm_gflops(n: int = 4096, repeats: int = 5) -> float:
    """Best FP32 GFLOP/s of ``torch.mm`` on two n×n matrices (2n³ FLOPs per call)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return _best_gflops(lambda: torch.mm(a, b), 2 * n**3, repeats)


def onnxruntime_sgemm_gflops(n: int = 4096, repeats: int = 5) -> float | None:
    """Best FP32 GFLOP/s of a one-node onnxruntime ``MatMul`` (MLAS) on n×n matrices; None without onnxruntime."""
    try:
        import numpy as np
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return None
    info = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, n]) for name in ("a", "b", "c")]
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "sgemm", info[:2], info[2:])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {"a": rng.random((n, n), dtype=np.float32), "b": rng.random((n, n), dtype=np.float32)}
    return _best_gflops(lambda: session.run(None, feeds), 2 * n**3, repeats)


def cpu_peak() -> dict[str, Any]:
    """This machine's FP32 peak (module docstring).

    Returns:
        ``{"cpu", "family", "model", "threads", "sgemm": {"torch", "onnxruntime"}, "sgemm_gflops"`` (the
        best, the peak checks use), ``"flags_nominal": {...}}``.
    """
    flags = set((proc_field("/proc/cpuinfo", "flags") or "").split())
    cores = os.cpu_count() or 1
    clock = _clock_ghz()
    sgemm = {"torch": sgemm_gflops(), "onnxruntime": onnxruntime_sgemm_gflops()}
    return {
        "cpu": proc_field("/proc/cpuinfo", "model name") or "unknown",
        "family": proc_field("/proc/cpuinfo", "cpu family"),
        "model": proc_field("/proc/cpuinfo", "model"),
        "threads": torch.get_num_threads(),
        "sgemm": sgemm,
        "sgemm_gflops": max(v for v in sgemm.values() if v is not None),
        "flags_nominal": flags_peak_gflops(flags, cores, clock) if clock else None,
    }


if __name__ == "__main__":
    print(json.dumps(cpu_peak(), indent=1))
