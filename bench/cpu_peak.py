"""This CPU's FP32 peak: from its own flags and clock, and measured with one large SGEMM.

A throughput figure above the machine's peak is a timing error, never a result; the benchmarks
that publish GFLOP/s (`model_latency`) check their rates against `cpu_peak` and refuse to
publish one that exceeds it.

* **From the flags** (an upper bound): vector lanes per FMA (16 FP32 with ``avx512f``, 8 with
  ``avx2``/``fma``, 4 otherwise) × 2 FLOPs per FMA × 2 FMA pipes per core × cores × clock. Two FMA
  pipes is what every x86 server core since Haswell/Zen 1 has; cores that split 512-bit FMAs
  into two 256-bit halves (Zen 4) reach half the AVX-512 figure, so it is a bound, not a promise.
  The clock is the highest the kernel reports (``cpuinfo_max_freq``, else ``cpu MHz``, which on
  a VM is the nominal clock).
* **Measured**: ``torch.mm`` of two 4096² FP32 matrices (MKL/oneDNN SGEMM) on the threads torch
  uses, best of 5 after 2 warm-up calls. That is the rate a compute-bound network can approach.

    python -m cloudlulc_edge.bench.cpu_peak
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch

from cloudlulc_edge.bench.utils import proc_field

__all__ = ["FMA_PIPES", "cpu_peak", "flags_peak_gflops", "sgemm_gflops"]

#: FMA pipes per core assumed by the flags-derived bound (module docstring).
FMA_PIPES = 2


def _clock_ghz() -> float | None:
    max_freq = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if max_freq.is_file():
        return int(max_freq.read_text()) / 1e6  # kHz
    mhz = proc_field("/proc/cpuinfo", "cpu MHz")
    return float(mhz) / 1000 if mhz else None


def flags_peak_gflops(flags: set[str], cores: int, clock_ghz: float) -> dict[str, Any]:
    """The FP32 FMA bound of ``cores`` cores with these ``/proc/cpuinfo`` flags at ``clock_ghz``.

    Returns:
        ``{"lanes", "fma_pipes", "cores", "clock_ghz", "gflops"}``.
    """
    lanes = 16 if "avx512f" in flags else 8 if {"avx2", "fma"} <= flags else 4
    gflops = lanes * 2 * FMA_PIPES * cores * clock_ghz
    return {"lanes": lanes, "fma_pipes": FMA_PIPES, "cores": cores, "clock_ghz": round(clock_ghz, 3),
            "gflops": round(gflops, 1)}  # fmt: skip


def sgemm_gflops(n: int = 4096, repeats: int = 5) -> float:
    """Best FP32 GFLOP/s of ``torch.mm`` on two n×n matrices (2n³ FLOPs per call)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return round(2 * n**3 / best / 1e9, 1)


def cpu_peak() -> dict[str, Any]:
    """This machine's FP32 peak: ``{"cpu", "family", "model", "flags_bound": {...}, "sgemm_gflops", "threads"}``."""
    flags = set((proc_field("/proc/cpuinfo", "flags") or "").split())
    cores = os.cpu_count() or 1
    clock = _clock_ghz()
    return {
        "cpu": proc_field("/proc/cpuinfo", "model name") or "unknown",
        "family": proc_field("/proc/cpuinfo", "cpu family"),
        "model": proc_field("/proc/cpuinfo", "model"),
        "flags_bound": flags_peak_gflops(flags, cores, clock) if clock else None,
        "sgemm_gflops": sgemm_gflops(),
        "threads": torch.get_num_threads(),
    }


if __name__ == "__main__":
    print(json.dumps(cpu_peak(), indent=1))
