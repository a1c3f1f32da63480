"""Benchmark: latency and throughput of the inference backends on one model and tile size.

Backends: PyTorch eager with the reference ops, PyTorch with the Triton kernels (CUDA only),
onnxruntime with the FP32/FP16/INT8 graphs of an export (CPU provider, or the CUDA provider with
onnxruntime-gpu). Each backend runs the same random inputs in the contract's ranges; per batch
size it reports p50/p90/p99 latency of one call and tiles/s (batch ÷ p50).

On a CUDA machine, calls are timed with CUDA events around a synchronised call (host latency,
inputs already on the device for torch, host arrays for onnxruntime as the pipeline feeds them).
Without CUDA the figures are CPU wall times and labelled so: they are not GPU performance.

Each row also gives the achieved GFLOP/s and, on the CPU, its share of this machine's peak
(`cpu_peak`: the flags-derived FP32 FMA bound, and one measured SGEMM). FLOPs per tile are counted
once per row by one method, torch's ``FlopCounterMode`` on the network each backend executes
(multiply-add = 2; convolutions, matmuls and attention's matmuls as torch counts them; an FFT as
2.5·N·log2 N; element-wise ops not counted): for onnxruntime the network with the spectral term in
the exported ``matmul`` form (DFT matrices, counted as the matmuls the graph runs), for torch the
network as it runs. **A rate above the measured SGEMM peak is refused** (`PeakExceededError`): it
means the timing is wrong, and nothing is published.

    python -m cloudlulc_edge.bench.model_latency --variant cloudlulc_edge --tile 512 --batch 1 --batch 8 [--readme docs/performance.md]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cloudlulc_edge.bench.cpu_peak import cpu_peak
from cloudlulc_edge.bench.model_cost import count_flops
from cloudlulc_edge.bench.utils import cuda_event_ms, environment, markdown_table, publish
from cloudlulc_edge.export import INPUT_NAMES, export_onnx, input_shapes
from cloudlulc_edge.export.onnx_export import with_spectral
from cloudlulc_edge.export.precision import convert_fp16
from cloudlulc_edge.kernels import use_kernels
from cloudlulc_edge.kernels.dispatch import KernelMode
from cloudlulc_edge.models import create_model


class PeakExceededError(RuntimeError):
    """A measured rate above the machine's peak: the timing is wrong and must not be published."""


def check_rates(rows: list[dict[str, Any]], peak: dict[str, Any]) -> None:
    """Refuses rows whose GFLOP/s exceed the measured SGEMM peak (`cpu_peak`).

    Raises:
        PeakExceededError: Naming each such row.
    """
    limit = float(peak["sgemm_gflops"])
    over = [f"{r['backend']} {r['precision']} batch {r['batch']}: {r['gflops_per_s']} GFLOP/s" for r in rows
            if r["gflops_per_s"] > limit]  # fmt: skip
    if over:
        raise PeakExceededError(f"rates above this CPU's measured peak ({peak['sgemm_gflops']} GFLOP/s SGEMM): "
                                f"{'; '.join(over)}; the timing is wrong, nothing was published")  # fmt: skip


def _timer(cuda: bool) -> Callable[[Callable[[], object]], float]:
    """Returns a function timing one call in ms (CUDA events on GPU, perf_counter on CPU)."""

    def time_cpu(fn: Callable[[], object]) -> float:
        t0 = time.perf_counter()
        fn()
        return 1000 * (time.perf_counter() - t0)

    return cuda_event_ms if cuda else time_cpu


def measure(fn: Callable[[], object], cuda: bool, warmup: int, iters: int) -> dict[str, float]:
    """p50/p90/p99 and mean of ``iters`` timed calls after ``warmup`` untimed ones (ms)."""
    timer = _timer(cuda)
    for _ in range(warmup):
        fn()
    samples = np.array([timer(fn) for _ in range(iters)])
    return {q: round(float(np.percentile(samples, p)), 2) for q, p in (("p50", 50), ("p90", 90), ("p99", 99))} | {
        "mean": round(float(samples.mean()), 2)
    }


def _backends(
    variant: str, tile: int, max_batch: int, work: Path, cuda: bool, kinds: tuple[str, ...], precisions: tuple[str, ...]
) -> dict[tuple[str, str], Callable[[dict[str, Any]], object]]:
    """(backend, precision) → callable(inputs) for the requested backends available here."""

    torch.manual_seed(0)
    model = create_model(variant).eval()
    device = "cuda" if cuda else "cpu"
    model_dev = model.to(device)
    out: dict[tuple[str, str], Callable[[dict[str, Any]], object]] = {}

    def torch_call(mode: KernelMode) -> Callable[[dict[str, Any]], object]:
        def call(x: dict[str, Any]) -> object:
            with torch.inference_mode(), use_kernels(mode):
                return model_dev(*(x["torch"][k] for k in INPUT_NAMES))

        return call

    if "torch" in kinds:
        out[("torch eager (reference ops)", "fp32")] = torch_call("reference")
        if cuda:
            out[("torch eager + Triton kernels", "fp32")] = torch_call("triton")
    if "onnxruntime" not in kinds:
        return out
    import onnxruntime as ort

    fp32 = export_onnx(model.cpu(), work / "fp32.onnx", tile=tile, max_batch=max_batch)
    model.to(device)
    graphs = {"fp32": fp32}
    if "fp16" in precisions:
        graphs["fp16"] = convert_fp16(fp32, work / "fp16.onnx")
    if not cuda and "int8" in precisions:  # onnxruntime INT8 kernels are CPU kernels; on GPUs INT8 is TensorRT's job
        from cloudlulc_edge.export.precision import quantize_int8

        rng = np.random.default_rng(1)
        calib = {k: rng.random((8, *s[1:]), dtype=np.float32) for k, s in input_shapes(1, tile).items()}
        graphs["int8"] = quantize_int8(fp32, work / "int8.onnx", calib)[0]
    provider = "CUDAExecutionProvider" if cuda else "CPUExecutionProvider"
    if provider not in ort.get_available_providers():
        return out
    for precision, path in graphs.items():
        if precision in precisions:
            session = ort.InferenceSession(str(path), providers=[provider])
            out[(f"onnxruntime {provider.removesuffix('ExecutionProvider')}", precision)] = _ort_call(session)
    return out


def _ort_call(session: Any) -> Callable[[dict[str, Any]], object]:
    def call(x: dict[str, Any]) -> object:
        return session.run(None, x["numpy"])

    return call


def _bound(call: Callable[[dict[str, Any]], object], x: dict[str, Any]) -> Callable[[], object]:
    return lambda: call(x)


def run(
    variant: str,
    tile: int,
    batches: list[int],
    warmup: int,
    iters: int,
    kinds: tuple[str, ...] = ("torch", "onnxruntime"),
    precisions: tuple[str, ...] = ("fp32", "fp16", "int8"),
) -> dict[str, Any]:
    """Times the requested backends at every batch size; returns the results record.

    Args:
        variant: Model variant (random weights: speed does not depend on them).
        tile: Tile side.
        batches: Batch sizes.
        warmup: Untimed calls before timing.
        iters: Timed calls.
        kinds: Backends: ``torch``, ``onnxruntime``.
        precisions: onnxruntime graphs: ``fp32``, ``fp16``, ``int8`` (CPU only).
    """
    cuda = torch.cuda.is_available()
    rows = []
    torch.manual_seed(0)
    model = create_model(variant).eval()
    gflop = {"torch": count_flops(model, tile) / 1e9, "onnxruntime": count_flops(with_spectral(model, "matmul"),
                                                                                  tile) / 1e9}  # fmt: skip
    peak = None if cuda else cpu_peak()
    with tempfile.TemporaryDirectory() as work:
        backends = _backends(variant, tile, max(batches), Path(work), cuda, kinds, precisions)
        for batch in batches:
            rng = np.random.default_rng(batch)
            arrays = {k: rng.random(s, dtype=np.float32) for k, s in input_shapes(batch, tile).items()}
            tensors = {k: torch.from_numpy(v).to("cuda" if cuda else "cpu") for k, v in arrays.items()}
            x = {"numpy": arrays, "torch": tensors}
            for (name, precision), call in backends.items():
                if cuda:
                    torch.cuda.reset_peak_memory_stats()
                stats = measure(_bound(call, x), cuda, warmup, iters)
                peak_mib = (
                    round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda and name.startswith("torch") else None
                )
                tiles_per_s = 1000 * batch / stats["p50"]
                per_tile = gflop["torch" if name.startswith("torch") else "onnxruntime"]
                rate = tiles_per_s * per_tile
                row = {"variant": variant, "backend": name, "precision": precision, "batch": batch, **stats,
                       "tiles_per_s": round(tiles_per_s, 2), "gflop_per_tile": round(per_tile, 4),
                       "gflops_per_s": round(rate, 1), "peak_gpu_mib": peak_mib}  # fmt: skip
                if peak is not None:
                    row["pct_of_peak"] = round(100 * rate / float(peak["sgemm_gflops"]), 1)
                rows.append(row)
    if peak is not None:
        check_rates(rows, peak)
    return {"environment": environment(), "variant": variant, "tile": tile, "timer": "cuda events" if cuda else
            "CPU wall clock (not GPU performance)", "warmup": warmup, "iters": iters, "cpu_peak": peak,
            "rows": rows}  # fmt: skip


def plot(result: dict[str, Any], path: Path) -> Path:
    """Bar chart of tiles/s per backend and precision, one group per batch size (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    labels = sorted({(r["backend"], r["precision"]) for r in rows}, key=str)
    batches = sorted({r["batch"] for r in rows})
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(len(labels), 1)
    for i, label in enumerate(labels):
        values = [next((r["tiles_per_s"] for r in rows if (r["backend"], r["precision"]) == label and r["batch"] == b), 0)
                  for b in batches]  # fmt: skip
        ax.bar([j + i * width for j in range(len(batches))], values, width, label=f"{label[0]} {label[1]}")
    ax.set_xticks([j + width * (len(labels) - 1) / 2 for j in range(len(batches))], [f"batch {b}" for b in batches])
    ax.set_ylabel("tiles/s")
    ax.set_title(f"{result['variant']}, {result['tile']}² tiles ({result['timer']})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def render(result: dict[str, Any]) -> str:
    """Markdown for docs/performance.md."""
    env = result["environment"]
    where = env.get("gpu") or f"CPU only: {env['cpu']}, {env['cpu_cores']} cores"
    head = (f"`{result['variant']}`, {result['tile']}² tiles, {where}, {result['timer']}, "
            f"{result['warmup']} warm-up + {result['iters']} timed calls, {env['date'][:10]}.\n\n")  # fmt: skip
    peak = result.get("cpu_peak")
    if peak:
        nominal, sgemm = peak["flags_nominal"] or {}, peak["sgemm"]
        head += (f"CPU peak (`bench.cpu_peak`, CPU family {peak['family']} model {peak['model']}): measured SGEMM "
                 f"{peak['sgemm_gflops']} GFLOP/s on {peak['threads']} threads (onnxruntime MLAS {sgemm['onnxruntime']}"
                 f", torch MKL {sgemm['torch']}); from the flags at the reported clock {nominal.get('gflops')} GFLOP/s "
                 f"({nominal.get('lanes')} FP32 lanes × 2 × {nominal.get('fma_pipes')} FMA pipes × "
                 f"{nominal.get('cores')} cores × {nominal.get('clock_ghz')} GHz, nominal: boost runs above it).\n\n")  # fmt: skip
    columns = [("backend", "backend"), ("precision", "precision"), ("batch", "batch"), ("p50", "p50 ms"),
               ("p90", "p90 ms"), ("p99", "p99 ms"), ("tiles_per_s", "tiles/s"), ("gflop_per_tile", "GFLOP/tile"),
               ("gflops_per_s", "GFLOP/s")]  # fmt: skip
    if peak:
        columns.append(("pct_of_peak", "% of measured peak"))
    if any(r.get("peak_gpu_mib") is not None for r in result["rows"]):
        columns.append(("peak_gpu_mib", "peak GPU MiB"))
    return head + markdown_table(result["rows"], columns)


def parser() -> argparse.ArgumentParser:
    """The command line of this benchmark (`gpu_check` checks its steps against it)."""
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("--variant", default="cloudlulc_edge")
    cli.add_argument("--tile", type=int, default=512)
    cli.add_argument("--batch", type=int, action="append", default=None)
    cli.add_argument("--warmup", type=int, default=3)
    cli.add_argument("--iters", type=int, default=10)
    cli.add_argument("--readme", type=Path, default=None)
    cli.add_argument("--out", type=Path, default=None, help="results folder (default: bench/results)")
    return cli


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    args = parser().parse_args(argv)
    result = run(args.variant, args.tile, args.batch or [1, 8], args.warmup, args.iters)
    out = args.out or Path(__file__).parent / "results"
    publish("bench_model", result, render(result), args.readme, "backends", out)
    plot(result, out / "bench_model.png")


if __name__ == "__main__":
    main()


def benchmark(
    variants: list[str],
    tile: int,
    batches: list[int],
    warmup: int,
    iters: int,
    kinds: tuple[str, ...],
    precisions: tuple[str, ...],
    out: Path,
    readme: Path | None = None,
) -> list[Path]:
    """`run` for every variant, then the JSON, markdown and PNG results (and the block in docs/performance.md).

    Returns:
        The written files.

    Raises:
        ValueError: A backend this benchmark does not time here (only torch and onnxruntime).
    """
    unknown = set(kinds) - {"torch", "onnxruntime"}
    if unknown:
        raise ValueError(f"unknown backend(s) {sorted(unknown)}; bench torch and onnxruntime here")
    results = [run(v, tile, batches, warmup, iters, kinds, precisions) for v in variants]
    result = {**results[0], "variant": ", ".join(variants), "rows": [r for res in results for r in res["rows"]]}
    path = publish("bench_model", result, render(result), readme, "backends", out)
    return [path, out / "bench_model.md", plot(result, out / "bench_model.png")]
