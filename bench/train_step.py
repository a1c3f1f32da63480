"""Benchmark: the time of one training step, and what a CloudLULC-Set training run costs from it.

One step is the loop's own `optimisation_step`: forward and loss through the variant's objective
(CE + anchor loss for CloudLULC-Net), backward, gradient clipping and an AdamW update (with the
gradient scaler under fp16), at the recipe's batch and tile (`model.md` §11: batch 8 at 512²).
Inputs are random tensors of the right shapes and labels are random classes: a step's cost does
not depend on the values. On CUDA the step is timed with CUDA events after a warm-up, and the peak allocated memory
is recorded; on CPU with ``perf_counter``.

The run cost is the recipe's budget, 160,000 steps of batch 8 = 1.28 M samples (≈ 42 epochs of
the ~30 k-patch train split `model.md` guesses; the split sizes are unpublished), at the measured
seconds per sample. Where memory forbids batch 8 (CPU), a smaller measured batch stands in.

    python -m cloudlulc_edge.bench.train_step --device cuda --amp bf16 [--variant cloudlulc_net …]
        [--batch 8] [--tile 512] [--steps 20] [--warmup 2] [--readme docs/performance.md]

Where no GPU is present the rows are CPU measurements; the table then also gives an *estimate*
of a batch-8 GPU step from two counts per sample: FLOPs (``count_flops``) and the bytes every
unfused aten op reads and writes in bf16 (`bench.kernel_latency.model_bytes`, fake tensors), both × 3
for forward + backward. The fast end is the roofline bound ``max(FLOPs ÷ (30 % of the dense bf16
peak), bytes ÷ (80 % of the DRAM bandwidth))``; the slow end adds the two at 10 % and 50 %. These
are arithmetic under stated assumptions, not measurements, and the table says so.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from cloudlulc_edge.bench.kernel_latency import model_bytes
from cloudlulc_edge.bench.model_cost import count_flops
from cloudlulc_edge.bench.utils import cuda_event_ms, environment, markdown_table, publish
from cloudlulc_edge.contract import NUM_CLASSES
from cloudlulc_edge.models import create_model
from cloudlulc_edge.training.config import TrainConfig
from cloudlulc_edge.training.loop import optimisation_step
from cloudlulc_edge.training.objectives import build_objective

__all__ = ["RECIPE_SAMPLES", "RECIPE_STEPS", "estimate_gpu_seconds", "measure_step", "run"]

#: Training budget of the recipe (`model.md` §11): steps of batch 8.
RECIPE_STEPS = 160_000
RECIPE_SAMPLES = RECIPE_STEPS * 8
#: Dense bf16 peak (FLOP/s, no sparsity) and DRAM bandwidth (bytes/s) from NVIDIA data sheets.
GPU_SPECS = {"H100 SXM": (989e12, 3.35e12), "A100 SXM 80GB": (312e12, 2.04e12)}
#: Assumed sustained fractions of those peaks: (slow, fast) for compute and for bandwidth.
ASSUMED_COMPUTE = (0.1, 0.3)
ASSUMED_BANDWIDTH = (0.5, 0.8)


def _batch(batch: int, tile: int, device: torch.device) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    data = {
        "s2": torch.rand(batch, 12, tile, tile, generator=gen),
        "s1": torch.rand(batch, 2, tile, tile, generator=gen),
        "s2_valid": torch.ones(batch, 1, tile, tile),
        "s1_valid": torch.ones(batch, 1, tile, tile),
        "label": torch.randint(0, NUM_CLASSES, (batch, tile, tile), generator=gen),
    }
    data["s2_clear"] = data["s2"].clone()
    return {k: v.to(device) for k, v in data.items()}


def measure_step(variant: str, batch: int, tile: int, device: str, amp: str, steps: int,
                 warmup: int = 2) -> dict[str, Any]:  # fmt: skip
    """Times ``steps`` training steps (after ``warmup``) of one variant.

    Returns:
        A row: variant, batch, tile, device, amp, step seconds (median), training GFLOP and GB (bf16,
        unfused) per sample, peak CUDA memory (GiB, CUDA only), and the recipe's run hours at the
        measured time per sample.
    """
    dev = torch.device(device)
    torch.manual_seed(0)
    model = create_model(variant)
    forward_flops = count_flops(model.eval(), tile)
    forward_bytes = model_bytes(variant, 1, tile, torch.bfloat16)["model_bytes_eager"]
    model = model.to(dev).train()
    cfg = TrainConfig(data_root="-", variant=variant, batch_size=batch, amp=amp, device=device)
    objective = build_objective(model, cfg).to(dev)
    params = [p for p in (*model.parameters(), *objective.parameters()) if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler(dev.type, enabled=amp == "fp16")
    data = _batch(batch, tile, dev)

    def step() -> None:
        optimisation_step(model, objective, data, optimizer, scaler, cfg)

    times = []
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for i in range(warmup + steps):
        if dev.type == "cuda":
            elapsed = cuda_event_ms(step) / 1000.0
        else:
            t0 = time.perf_counter()
            step()
            elapsed = time.perf_counter() - t0
        if i >= warmup:
            times.append(elapsed)
    seconds = sorted(times)[len(times) // 2]
    row: dict[str, Any] = {
        "variant": variant, "batch": batch, "tile": tile, "device": device, "amp": amp, "steps_timed": steps,
        "step_s": round(seconds, 4), "train_gflop_per_sample": round(3 * forward_flops / 1e9, 3),
        "train_gb_per_sample": round(3 * forward_bytes / 1e9, 3),
        "recipe_hours": round(RECIPE_SAMPLES * seconds / batch / 3600, 1),
    }  # fmt: skip
    if dev.type == "cuda":
        row["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return row


def estimate_gpu_seconds(gflop: float, gbytes: float, gpu: str) -> tuple[float, float]:
    """(fast, slow) seconds of work of ``gflop`` GFLOP moving ``gbytes`` GB on ``gpu`` (see the module docstring)."""
    flops, bandwidth = GPU_SPECS[gpu]
    compute = [gflop * 1e9 / (u * flops) for u in ASSUMED_COMPUTE]  # slow, fast
    memory = [gbytes * 1e9 / (u * bandwidth) for u in ASSUMED_BANDWIDTH]
    return max(compute[1], memory[1]), compute[0] + memory[0]


def run(variants: list[str], batch: int, tile: int, device: str, amp: str, steps: int,
        warmup: int = 2) -> dict[str, Any]:  # fmt: skip
    """Measures every variant; adds FLOP- and byte-based GPU estimates when the device is not a GPU."""
    rows = [measure_step(v, batch, tile, device, amp, steps, warmup) for v in variants]
    if not device.startswith("cuda"):
        for row in rows:
            for gpu in GPU_SPECS:
                # One recipe step: 8 samples.
                fast, slow = estimate_gpu_seconds(
                    8 * row["train_gflop_per_sample"], 8 * row["train_gb_per_sample"], gpu
                )
                row[f"estimate_{gpu}"] = {"step_s": [round(fast, 3), round(slow, 3)],
                                          "recipe_hours": [round(RECIPE_STEPS * fast / 3600, 1),
                                                           round(RECIPE_STEPS * slow / 3600, 1)]}  # fmt: skip
    return {"date": datetime.now().isoformat(timespec="seconds"), "environment": environment(),
            "recipe_steps": RECIPE_STEPS, "assumed_compute": list(ASSUMED_COMPUTE),
            "assumed_bandwidth": list(ASSUMED_BANDWIDTH), "gpu_specs": GPU_SPECS, "rows": rows}  # fmt: skip


def render(result: dict[str, Any]) -> str:
    """Markdown: measured step times, run cost, and (CPU runs) the labelled GPU estimates."""
    env = result["environment"]
    where = env.get("gpu") or f"CPU {env['cpu']} ({env['torch_threads']} threads)"
    columns = [("variant", "variant"), ("batch", "batch"), ("tile", "tile"), ("amp", "AMP"),
               ("step_s", "step s (measured, median)"), ("train_gflop_per_sample", "GFLOP / sample (3× fwd)"),
               ("train_gb_per_sample", "GB moved / sample (bf16 unfused, 3× fwd)"),
               ("recipe_hours", f"recipe run, {result['recipe_steps']:,} steps × 8 (h)")]  # fmt: skip
    if any("peak_gib" in r for r in result["rows"]):
        columns.append(("peak_gib", "peak GiB"))
    text = f"Measured on {where}, torch {env['torch']}, {result['date'][:10]}.\n\n"
    text += markdown_table(result["rows"], columns)
    estimates = [r for r in result["rows"] if any(k.startswith("estimate_") for k in r)]
    if estimates:
        (c_lo, c_hi), (b_lo, b_hi) = ((int(100 * u) for u in result[k]) for k in ("assumed_compute",
                                                                                 "assumed_bandwidth"))  # fmt: skip
        text += (f"\n**Estimate, not a measurement** (no GPU was available): a batch-8 step takes between "
                 f"max(FLOPs ÷ {c_hi} % of the bf16 peak, bytes ÷ {b_hi} % of the bandwidth) and FLOPs ÷ {c_lo} % + "
                 f"bytes ÷ {b_lo} %; {result['recipe_steps']:,} steps:\n\n")  # fmt: skip
        rows = []
        for r in estimates:
            for gpu, (flops, bandwidth) in result["gpu_specs"].items():
                e = r[f"estimate_{gpu}"]
                rows.append({"variant": r["variant"], "gpu": f"{gpu} ({flops / 1e12:g} TFLOP/s, {bandwidth / 1e12:g} TB/s)",
                             "step": f"{e['step_s'][0]}–{e['step_s'][1]}",
                             "run": f"{e['recipe_hours'][0]}–{e['recipe_hours'][1]}"})  # fmt: skip
        text += markdown_table(rows, [("variant", "variant"), ("gpu", "GPU (bf16 dense peak, bandwidth)"),
                                      ("step", "batch-8 step s (estimate)"), ("run", "run hours (estimate)")])  # fmt: skip
    return text


def parser() -> argparse.ArgumentParser:
    """The command line of this benchmark (`gpu_check` checks its steps against it)."""
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("--variant", action="append", default=None, help="registered variant (repeatable)")
    cli.add_argument("--batch", type=int, default=8)
    cli.add_argument("--tile", type=int, default=512)
    cli.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    cli.add_argument("--amp", default="bf16", choices=("none", "bf16", "fp16"))
    cli.add_argument("--steps", type=int, default=20)
    cli.add_argument("--warmup", type=int, default=2)
    cli.add_argument(
        "--readme", type=Path, default=None, help="page to update between train-step markers (docs/performance.md)"
    )
    return cli


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    args = parser().parse_args(argv)
    result = run(args.variant or ["cloudlulc_net", "cloudlulc_edge"], args.batch, args.tile, args.device, args.amp,
                 args.steps, args.warmup)  # fmt: skip
    publish("train_step", result, render(result), args.readme, "train-step")


if __name__ == "__main__":
    main()
