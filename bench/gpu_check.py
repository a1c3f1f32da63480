"""Every GPU measurement in one call: the ``gpu`` test tier and the benchmarks, within a time budget.

A lent GPU machine (torch 2.11 / CUDA 13, triton 3.6, no package registry) is lent for minutes,
so everything the issues ask to measure on a GPU runs from one prepared command::

    pip install --no-deps -e . && python -m cloudlulc_edge.bench.gpu_check --out "$OUT" --readme docs/performance.md

Steps, each in its own process with its own timeout (a failed or slow step is recorded and the
next one still runs), ≈ 7 min in total:

1. ``pytest -m gpu``: the Triton kernels against the reference, the torch/onnxruntime GPU backends.
2. ``kernel_latency``: each fused op, eager vs ``torch.compile`` vs Triton, p50 [p20, p80], GB/s and
   % of HBM peak at the model's shapes, and the whole-model fp16 forward with kernels on and off.
3. ``model_latency``: torch eager / torch + Triton kernels / onnxruntime CUDA EP (when
   onnxruntime-gpu is installed) per tile, CUDA events.
4. ``train_step``: one training step of the default model (bf16 autocast).
5. ``scene_throughput``: a synthetic 5490² scene mapped with the torch backend on the GPU.

Each step writes its JSON and markdown into ``--out`` (``bench/results/gpu`` by default); the
summary (``gpu_check.json``, ``gpu_check.md``) lists every step's status, wall time and files,
and with ``--readme`` replaces the page's ``gpu-check`` block.

``--dry-run`` (run in CI, on the CPU) checks the wiring without a GPU: each step's module imports
and its arguments parse with that benchmark's own parser, the ``gpu`` tier collects, the output
folder is writable and the budgets add up to less than `TOTAL_BUDGET_S`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudlulc_edge.bench.utils import environment, markdown_table, replace_between_markers

__all__ = ["TOTAL_BUDGET_S", "Step", "check_wiring", "gpu_check", "main", "run_steps", "steps"]

#: The whole check must finish within this (a lent machine's command limit is 10 min).
TOTAL_BUDGET_S = 480
#: The repository root: the gpu tier runs from there (``tests/`` is not installed).
_REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Step:
    """One measurement.

    Attributes:
        name: Short name (file stem of its results).
        module: ``cloudlulc_edge.bench.<module>`` run as ``python -m``, or ``pytest``.
        args: Its command-line arguments.
        timeout_s: Wall-clock budget.
    """

    name: str
    module: str
    args: tuple[str, ...]
    timeout_s: int


def steps(out: Path) -> list[Step]:
    """The check's steps, writing into ``out``."""
    tests = ("tests/kernels/test_kernels_gpu.py", "tests/backends/test_gpu_backends.py")
    junit = f"--junitxml={out / 'gpu_tests.xml'}"
    kernels = ("--variants", "cloudlulc_edge", "cloudlulc_net", "--batches", "8", "--out", str(out))
    backends = ("--variant", "cloudlulc_edge", "--batch", "1", "--batch", "8", "--iters", "20", "--out", str(out))
    training = ("--variant", "cloudlulc_edge", "--batch", "8", "--steps", "10", "--warmup", "2", "--device", "cuda")
    scene = ("--sizes", "5490", "--model", "cloudlulc_edge", "--device", "cuda", "--workdir", str(out / "scene_work"))
    return [
        Step("gpu_tests", "pytest", ("-m", "gpu", "-q", "-p", "no:cacheprovider", junit, *tests), 120),
        Step("kernels", "kernel_latency", kernels, 120),
        Step("backends", "model_latency", backends, 90),
        Step("train_step", "train_step", training, 60),
        Step("scene", "scene_throughput", scene, 90),
    ]


def _command(step: Step) -> list[str]:
    if step.module == "pytest":
        return [sys.executable, "-m", "pytest", *step.args]
    return [sys.executable, "-m", f"cloudlulc_edge.bench.{step.module}", *step.args]


def check_wiring(plan: list[Step], out: Path) -> list[dict[str, Any]]:
    """What ``--dry-run`` checks (module docstring); one row per step.

    Raises:
        SystemExit: From a step's own parser when its arguments do not parse (argparse's message).
        RuntimeError: A step module that does not import, a ``gpu`` tier that collects nothing, an
            unwritable output folder, or budgets above `TOTAL_BUDGET_S`.
    """
    out.mkdir(parents=True, exist_ok=True)
    probe = out / ".gpu_check_write_test"
    probe.write_text("ok")
    probe.unlink()
    total = sum(s.timeout_s for s in plan)
    if total > TOTAL_BUDGET_S:
        raise RuntimeError(f"step budgets add up to {total} s, over the {TOTAL_BUDGET_S} s of the check")
    rows = []
    for step in plan:
        if step.module == "pytest":
            collect = subprocess.run([*_command(step), "--collect-only"], capture_output=True, text=True, check=False,
                                     cwd=_REPO)  # fmt: skip
            collected = [line for line in collect.stdout.splitlines() if "::" in line]
            if collect.returncode not in (0, 5) or not collected:
                raise RuntimeError(f"the gpu tier does not collect: {collect.stdout[-400:]}{collect.stderr[-400:]}")
            rows.append(
                {"step": step.name, "check": f"collects {len(collected)} gpu test(s)", "budget_s": step.timeout_s}
            )
            continue
        module = importlib.import_module(f"cloudlulc_edge.bench.{step.module}")
        module.parser().parse_args(list(step.args))  # exits 2 with argparse's message on a bad argument
        rows.append({"step": step.name, "check": f"{step.module} arguments parse", "budget_s": step.timeout_s})
    return rows


def run_steps(plan: list[Step]) -> list[dict[str, Any]]:
    """Runs each step in its own process; one result row per step (status ok / failed / timeout)."""
    rows = []
    for step in plan:
        start = time.perf_counter()
        try:
            done = subprocess.run(_command(step), capture_output=True, text=True, timeout=step.timeout_s, check=False,
                                  cwd=_REPO)  # fmt: skip
            status = "ok" if done.returncode == 0 else f"failed (exit {done.returncode})"
            tail = (done.stdout + done.stderr)[-2000:]
        except subprocess.TimeoutExpired as exc:
            status = f"timeout after {step.timeout_s} s"
            tail = str(exc.stdout or "")[-2000:]
        rows.append({"step": step.name, "status": status, "wall_s": round(time.perf_counter() - start, 1),
                     "budget_s": step.timeout_s, "log_tail": tail})  # fmt: skip
        print(f"{step.name}: {status} in {rows[-1]['wall_s']} s", file=sys.stderr)
    return rows


def render(result: dict[str, Any]) -> str:
    """The summary table for docs/performance.md."""
    env = result["environment"]
    where = env.get("gpu") or f"no GPU ({env['cpu']}, {env['cpu_cores']} cores)"
    mode = "dry run: wiring checked, nothing measured" if result["dry_run"] else "measured"
    head = (
        f"`python -m cloudlulc_edge.bench.gpu_check` on {where}, torch {env['torch']}, {env['date'][:10]} ({mode}).\n\n"
    )
    if result["dry_run"]:
        return head + markdown_table(result["steps"], [("step", "step"), ("check", "check"), ("budget_s", "budget s")])
    return head + markdown_table(result["steps"], [("step", "step"), ("status", "status"), ("wall_s", "wall s"),
                                                   ("budget_s", "budget s")])  # fmt: skip


def gpu_check(out: Path, readme: Path | None = None, dry_run: bool = False) -> tuple[dict[str, Any], str, bool]:
    """Runs (or with ``dry_run`` checks) every step; writes the summary into ``out``.

    Returns:
        ``(result, markdown, passed)``.

    Raises:
        RuntimeError: No CUDA device for a real run, or a wiring problem in a dry run (`check_wiring`).
    """
    plan = steps(out)
    if not dry_run:
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("no CUDA device: use --dry-run to check the wiring on this machine")
    rows = check_wiring(plan, out) if dry_run else run_steps(plan)
    result = {"environment": environment(), "dry_run": dry_run, "steps": rows}
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(result, indent=1) + "\n")
    text = render(result)
    (out / "gpu_check.md").write_text(text)
    if readme is not None and not dry_run:
        readme.write_text(replace_between_markers(readme.read_text(), "gpu-check", text))
    return result, text, dry_run or all(r["status"] == "ok" for r in rows)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns 0 when every step passed (or, dry, every check), 2 without a GPU."""
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "gpu")
    cli.add_argument("--readme", type=Path, default=None, help="page whose gpu-check block to replace")
    cli.add_argument("--dry-run", action="store_true", help="check the wiring on any machine; measure nothing")
    args = cli.parse_args(argv)
    try:
        _, text, passed = gpu_check(args.out, args.readme, args.dry_run)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(text)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
