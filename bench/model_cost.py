"""Parameters, GFLOPs and peak inference memory of every registered variant per tile.

Usage::

    python -m cloudlulc_edge.bench.model_cost [--tile 512] [--out bench/results] [--readme docs/models.md]

* GFLOPs: ``torch.utils.flop_counter.FlopCounterMode`` on one tile (batch 1), counting a
  multiply-add as 2 FLOPs. Convolutions, matmuls and attention are counted by torch; the spectral
  term's FFTs are added with the usual ``2.5·N·log2 N`` real-FFT estimate. Element-wise ops
  (norms, gates, activations) are not counted: they are memory-bound, see the kernel benchmarks.
* Memory: each variant runs in a fresh subprocess; the resident-set high-water mark gained
  (``VmHWM``) during one fp32 CPU inference of a batch-1 tile is the measured peak working set (activations,
  workspace, allocator overhead). The fp16 figure for GPUs is an estimate: half the fp32 working
  set plus fp16 weights; CUDA context and cuDNN workspaces are not included.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import resource
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from cloudlulc_edge.bench.utils import environment, markdown_table, proc_field, replace_between_markers
from cloudlulc_edge.export.torch_export import example_inputs
from cloudlulc_edge.models import create_model, list_models

__all__ = ["count_flops", "measure_variant", "peak_inference_mib"]

_MiB = 1024.0 * 1024.0


def _fft_flops(shape: list[int], dims: list[int]) -> int:
    n = math.prod(shape[d] for d in dims)
    batch = math.prod(shape) // max(n, 1)
    return int(batch * 2.5 * n * math.log2(max(n, 2)))


def _r2c_flop(x_shape: list[int], dim: list[int], *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    return _fft_flops(x_shape, dim)


def _c2r_flop(x_shape: list[int], dim: list[int], *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    return _fft_flops(list(out_shape), dim)


def count_flops(model: torch.nn.Module, tile: int) -> int:
    """FLOPs of one batch-1 forward at ``tile``×``tile`` (multiply-add = 2)."""
    inputs = example_inputs(1, tile)
    custom = {torch.ops.aten._fft_r2c.default: _r2c_flop, torch.ops.aten._fft_c2r.default: _c2r_flop}
    counter = FlopCounterMode(display=False, custom_mapping=custom)
    with counter, torch.inference_mode():
        model(inputs.s2, inputs.s1)
    return int(counter.get_total_flops())


def _rss_high_water_mib() -> float:
    # VmHWM belongs to this process's address space; ru_maxrss would also carry the parent's peak
    # across fork/exec and hide the child's own.
    hwm = proc_field("/proc/self/status", "VmHWM")  # e.g. "720160 kB"
    if hwm is not None:
        return float(hwm.split()[0]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux, bytes on macOS


def _peak_worker(name: str, tile: int, queue: Any) -> None:
    torch.manual_seed(0)
    model = create_model(name).eval()
    inputs = example_inputs(1, tile)
    with torch.inference_mode():
        model(*example_inputs(1, 32))  # warm up allocator and lazy init on a tiny tile
    before = _rss_high_water_mib()
    with torch.inference_mode():
        model(inputs.s2, inputs.s1)
    queue.put(_rss_high_water_mib() - before)


def peak_inference_mib(name: str, tile: int) -> float:
    """Measured peak extra resident memory (MiB) of one fp32 CPU inference, in a fresh process."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_peak_worker, args=(name, tile, queue))
    proc.start()
    value = float(queue.get(timeout=600))
    proc.join()
    return value


def measure_variant(name: str, tile: int, memory: bool = True) -> dict[str, Any]:
    """Returns the cost row of one variant."""
    torch.manual_seed(0)
    model = create_model(name).eval()
    params = sum(p.numel() for p in model.parameters())
    row: dict[str, Any] = {
        "variant": name,
        "params_m": round(params / 1e6, 3),
        "gflops": round(count_flops(model, tile) / 1e9, 1),
        "weights_fp16_mib": round(params * 2 / _MiB, 1),
    }
    if memory:
        fp32 = peak_inference_mib(name, tile)
        row["peak_fp32_cpu_mib"] = round(fp32)
        row["est_fp16_gpu_mib"] = round(fp32 / 2 + row["weights_fp16_mib"])
    row["shape"] = model.config.summary()
    return row


COLUMNS = [
    ("variant", "variant"),
    ("shape", "configuration"),
    ("params_m", "params (M)"),
    ("gflops", "GFLOPs / tile"),
    ("weights_fp16_mib", "fp16 weights (MiB)"),
    ("peak_fp32_cpu_mib", "peak fp32 CPU inference (MiB, measured)"),
    ("est_fp16_gpu_mib", "fp16 GPU estimate (MiB)"),
]


def main(argv: list[str] | None = None) -> None:
    """Measures every variant, writes JSON + Markdown, optionally refreshes docs/models.md's table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument(
        "--readme", type=Path, default=None, help="page to update between model-cost markers (docs/models.md)"
    )
    parser.add_argument("--variants", nargs="*", default=None)
    args = parser.parse_args(argv)
    rows = [measure_variant(name, args.tile) for name in (args.variants or list_models())]
    env = environment()
    table = markdown_table(rows, COLUMNS)
    note = (
        f"\nPer {args.tile}×{args.tile} tile, batch 1. Measured by `python -m cloudlulc_edge.bench.model_cost` "
        f"on {env['cpu']} ({env['cpu_cores']} cores), torch {env['torch']}, {env['date'][:10]}.\n"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "model_cost.json").write_text(
        json.dumps({"environment": env, "tile": args.tile, "rows": rows}, indent=2)
    )
    (args.out / "model_cost.md").write_text(table + note)
    print(table + note)
    if args.readme is not None:
        args.readme.write_text(replace_between_markers(args.readme.read_text(), "model-cost", table + note))


if __name__ == "__main__":
    main()
