"""Fused-kernel benchmark: bytes moved eager vs fused, roofline bounds, GPU timings when CUDA is present.

Run: ``python -m cloudlulc_edge.bench.kernel_latency --readme docs/performance.md``.

Shapes are the model's own: every call of a fused op in one forward of a variant at batch 8 and 16
of 512² tiles is recorded under fake tensors (the fusion grid is 128², 1/4 resolution), so the
table counts exactly what the network runs. For each call:

* eager bytes: a `TorchDispatchMode` sums the bytes of every tensor read and written by each aten
  op of the pure-torch reference (no cache reuse = the DRAM traffic of an unfused run);
* fused bytes: each input read once, each output written once (the kernels' design);
* roofline lower bounds ``bytes / peak bandwidth`` for H100 SXM and Jetson AGX Orin.

With CUDA, `triton.testing.do_bench` (cold L2, device events) gives p50 [p20, p80] for the eager
reference, ``torch.compile`` of the reference and the Triton kernel (forward, and forward +
backward), achieved GB/s against the fused minimum and % of the GPU's peak; and the whole model's
fp16 forward with kernels on vs off. Without CUDA those columns are absent: interpreter or CPU time
is never reported as kernel performance.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from cloudlulc_edge import kernels as K
from cloudlulc_edge.bench.utils import cuda_event_ms, environment, markdown_table, replace_between_markers
from cloudlulc_edge.contract import S1_CHANNELS, S2_CHANNELS
from cloudlulc_edge.models import create_model

#: Peak DRAM bandwidth (vendor datasheets), bytes/s.
PEAK_BANDWIDTH = {"H100 SXM": 3.35e12, "Jetson AGX Orin": 204.8e9}
_GPU_PEAKS = (("H200", 4.8e12), ("H100 PCIe", 2.0e12), ("H100", 3.35e12), ("A100", 2.0e12), ("Orin", 204.8e9))

_REFERENCE: dict[str, Callable[..., Any]] = {
    "cloudlulc.reliability_gate.default": lambda o, z, m, s, a, pooled: (
        K.reference.reliability_gate_pooled(o, z, m, s, a) if pooled else K.reference.reliability_gate(o, z, m, s, a)
    ),
    "cloudlulc.norm_gate.default": K.reference.norm_gate,
    "cloudlulc.channel_softmax_gate.default": K.reference.channel_softmax_gate,
}


class ByteCounter(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Counts aten ops and the bytes of every tensor each one reads and writes (`kernels.md` §12)."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.ops = 0
        self.bytes = 0
        self.by_namespace: Counter[str] = Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        flat, _ = tree_flatten((args, kwargs or {}, out))
        nbytes = sum(t.nbytes for t in flat if isinstance(t, torch.Tensor))
        self.ops += 1
        self.bytes += nbytes
        self.by_namespace[func.namespace] += nbytes
        return out


class _CallRecorder(TorchDispatchMode):  # type: ignore[no-untyped-call]
    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func.namespace == "cloudlulc":
            self.calls.append((str(func), tuple(args)))
        return func(*args, **(kwargs or {}))


@dataclass(frozen=True)
class FusedCall:
    """One call site's shape signature: op name and its arguments (tensors as (shape, dtype))."""

    op: str
    args: tuple[Any, ...]

    @property
    def label(self) -> str:
        """Short name with the (B, C, H, W) of the first tensor and flags."""
        shape = "×".join(map(str, self.args[0][0]))
        extra = ""
        if self.op.endswith("reliability_gate.default"):
            extra = f" valid={self.args[2] is not None} pooled={self.args[5]}"
        elif self.op.endswith("norm_gate.default"):
            extra = f" residual={self.args[4] is not None}"
        return f"{self.op.split('.')[1]} {shape}{extra}"


def _signature(args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((tuple(a.shape), a.dtype) if isinstance(a, torch.Tensor) else a for a in args)


def _materialise(args: tuple[Any, ...], make: Callable[[tuple[int, ...], torch.dtype], torch.Tensor]) -> list[Any]:
    return [
        make(a[0], a[1]) if isinstance(a, tuple) and len(a) == 2 and isinstance(a[1], torch.dtype) else a for a in args
    ]


def _fake_forward(model: torch.nn.Module, batch: int, tile: int, kernel_mode: str, probe: TorchDispatchMode) -> None:
    """One forward of ``model`` on fake (batch, ·, tile, tile) inputs in its dtype, observed by ``probe``."""
    dtype = next(model.parameters()).dtype
    with FakeTensorMode(allow_non_fake_inputs=True):
        s2 = torch.empty(batch, S2_CHANNELS, tile, tile, dtype=dtype)
        s1 = torch.empty(batch, S1_CHANNELS, tile, tile, dtype=dtype)
        with torch.no_grad(), K.use_kernels(kernel_mode), probe:
            model(s2, s1)


def model_calls(variant: str, batch: int, tile: int, dtype: torch.dtype) -> Counter[FusedCall]:
    """Records every fused-op call of one forward of ``variant`` under fake tensors.

    Returns:
        Call signature → number of calls per forward.
    """
    recorder = _CallRecorder()
    _fake_forward(create_model(variant).eval().to(dtype), batch, tile, "auto", recorder)
    return Counter(FusedCall(op, _signature(args)) for op, args in recorder.calls)


def call_bytes(call: FusedCall) -> dict[str, int]:
    """Eager aten ops and bytes of the reference vs the fused minimum for one call (fake tensors)."""
    with FakeTensorMode():
        args = _materialise(call.args, lambda shape, dt: torch.empty(shape, dtype=dt))
        with ByteCounter() as eager:
            _REFERENCE[call.op](*args)
        outputs = _REFERENCE[call.op](*args)
    flat_out, _ = tree_flatten(outputs)
    fused = sum(a.nbytes for a in args if isinstance(a, torch.Tensor)) + sum(t.nbytes for t in flat_out)
    return {"eager_ops": eager.ops, "eager_bytes": eager.bytes, "fused_bytes": fused}


def model_bytes(variant: str, batch: int, tile: int, dtype: torch.dtype) -> dict[str, int]:
    """Bytes moved by one whole forward, every aten op unfused, with the fused ops on vs off."""
    model = create_model(variant).eval().to(dtype)
    eager, fused = ByteCounter(), ByteCounter()
    _fake_forward(model, batch, tile, "reference", eager)
    _fake_forward(model, batch, tile, "auto", fused)
    return {"model_bytes_eager": eager.bytes, "model_bytes_fused": fused.bytes}


def gpu_peak_bandwidth() -> float | None:
    """Datasheet peak bandwidth of CUDA device 0 by name, None if unknown."""
    name = torch.cuda.get_device_name(0)
    return next((bw for key, bw in _GPU_PEAKS if key in name), None)


def _gpu_timings(call: FusedCall, fused_bytes: int) -> dict[str, Any]:
    """do_bench p50 [p20, p80] ms: eager reference, torch.compile(reference), Triton (fwd and fwd+bwd)."""
    import triton.testing

    args = _materialise(call.args, lambda shape, dt: torch.randn(shape, device="cuda").to(dt))
    reference = _REFERENCE[call.op]
    compiled = torch.compile(reference, fullgraph=True)

    def triton_call(*a: Any) -> Any:
        with K.use_kernels("triton"):
            return getattr(torch.ops.cloudlulc, call.op.split(".")[1])(*a)

    providers: dict[str, Callable[..., Any]] = {"eager": reference, "torch.compile": compiled, "triton": triton_call}
    peak = gpu_peak_bandwidth()
    row: dict[str, Any] = {}
    for name, fn in providers.items():
        p50, p20, p80 = triton.testing.do_bench(lambda fn=fn: fn(*args), quantiles=[0.5, 0.2, 0.8])
        row[f"{name}_fwd_ms"] = f"{p50:.4f} [{p20:.4f}, {p80:.4f}]"
        row[f"{name}_fwd_p50"] = p50
        leaves = [a.detach().requires_grad_(a.is_floating_point()) if isinstance(a, torch.Tensor) else a for a in args]
        outs, _ = tree_flatten(fn(*leaves))
        grads = [torch.randn_like(o) for o in outs if o.numel()]

        def full(fn: Callable[..., Any] = fn, leaves: list[Any] = leaves, grads: list[torch.Tensor] = grads) -> None:
            flat, _ = tree_flatten(fn(*leaves))
            torch.autograd.backward([o for o in flat if o.numel()], grads)

        p50, p20, p80 = triton.testing.do_bench(full, quantiles=[0.5, 0.2, 0.8])
        row[f"{name}_full_ms"] = f"{p50:.4f} [{p20:.4f}, {p80:.4f}]"
    gbps = fused_bytes / (row["triton_fwd_p50"] * 1e-3) / 1e9
    row["triton_GBps"] = round(gbps, 1)
    row["triton_pct_peak"] = round(100 * gbps * 1e9 / peak, 1) if peak else None
    row["triton_vs_compile"] = round(row["torch.compile_fwd_p50"] / row["triton_fwd_p50"], 2)
    return row


def _model_speed(variant: str, batch: int, tile: int) -> dict[str, Any]:
    """Whole-model fp16 forward, kernels on vs off, median of 20 CUDA-event timings."""
    model = create_model(variant).cuda().eval().half()
    s2 = torch.randn(batch, S2_CHANNELS, tile, tile, device="cuda", dtype=torch.half)
    s1 = torch.randn(batch, S1_CHANNELS, tile, tile, device="cuda", dtype=torch.half)
    out: dict[str, Any] = {"variant": variant, "batch": batch}
    for mode in ("reference", "auto"):
        times = []
        with torch.no_grad(), K.use_kernels(mode):
            for i in range(25):
                ms = cuda_event_ms(lambda: model(s2, s1))
                if i >= 5:
                    times.append(ms)
        out[f"{mode}_ms"] = round(sorted(times)[len(times) // 2], 3)
    out["speedup"] = round(out["reference_ms"] / out["auto_ms"], 3)
    return out


def run(variants: list[str], batches: list[int], tile: int) -> dict[str, Any]:
    """Measures every fused call site of ``variants`` at ``batches``; GPU columns only with CUDA."""
    dtype = torch.float16
    rows: list[dict[str, Any]] = []
    totals: list[dict[str, Any]] = []
    cuda = torch.cuda.is_available()
    for variant in variants:
        for batch in batches:
            for call, count in model_calls(variant, batch, tile, dtype).items():
                moved = call_bytes(call)
                row: dict[str, Any] = {"variant": variant, "batch": batch, "call": call.label, "per_forward": count}
                row.update(moved)
                row["ratio"] = round(moved["eager_bytes"] / moved["fused_bytes"], 2)
                for device, bw in PEAK_BANDWIDTH.items():
                    row[f"{device} fused µs"] = round(moved["fused_bytes"] / bw * 1e6, 1)
                    row[f"{device} eager µs"] = round(moved["eager_bytes"] / bw * 1e6, 1)
                if cuda:
                    row.update(_gpu_timings(call, moved["fused_bytes"]))
                rows.append(row)
            total = {"variant": variant, "batch": batch, **model_bytes(variant, batch, tile, dtype)}
            if cuda:
                total.update(_model_speed(variant, batch, tile))
            totals.append(total)
    return {"environment": environment(), "tile": tile, "dtype": "float16", "calls": rows, "models": totals}


def compile_snapshot() -> list[dict[str, Any]]:
    """Resources of every kernel build for every known target and dtype (`aot`)."""
    from cloudlulc_edge.kernels import aot

    return [
        aot.compile_kernel(spec, dtype, arch).record()
        for arch in aot.known_targets()
        for spec in aot.KERNEL_SPECS
        for dtype in ("fp16", "bf16", "fp32")
    ]


def render_compile(snapshot: list[dict[str, Any]]) -> str:
    """Markdown of the fp16 builds (bf16/fp32 are in the JSON)."""
    rows = [{**r, "tile": f"{r['block_c']}×{r['block_p']}"} for r in snapshot if r["dtype"] == "fp16"]
    columns = [
        ("kernel", "kernel"),
        ("flags", "flags"),
        ("target", "target"),
        ("tile", "tile C×P"),
        ("num_warps", "warps"),
        ("registers", "regs/thread"),
        ("shared_bytes", "shared B"),
        ("local_bytes", "local (spill) B"),
    ]
    return markdown_table(rows, columns)


def _gb(n: int) -> str:
    return f"{n / 1e9:.3f}"


def render(result: dict[str, Any]) -> str:
    """Markdown: per-call bytes and bounds (and GPU timings when present), then whole-model totals."""
    rows = [{**r, "eager_gb": _gb(r["eager_bytes"]), "fused_gb": _gb(r["fused_bytes"])} for r in result["calls"]]
    columns = [
        ("variant", "variant"),
        ("batch", "batch"),
        ("call", "fused call (B×C×H×W)"),
        ("per_forward", "calls / fwd"),
        ("eager_ops", "eager aten ops"),
        ("eager_gb", "eager GB"),
        ("fused_gb", "fused GB"),
        ("ratio", "eager/fused"),
        ("H100 SXM fused µs", "H100 bound fused µs"),
        ("H100 SXM eager µs", "H100 bound eager µs"),
        ("Jetson AGX Orin fused µs", "Orin bound fused µs"),
        ("Jetson AGX Orin eager µs", "Orin bound eager µs"),
    ]
    if result["calls"] and "triton_fwd_ms" in result["calls"][0]:
        columns += [
            ("eager_fwd_ms", "eager ms p50 [p20, p80]"),
            ("torch.compile_fwd_ms", "torch.compile ms"),
            ("triton_fwd_ms", "Triton ms"),
            ("triton_GBps", "Triton GB/s"),
            ("triton_pct_peak", "% of peak"),
            ("triton_vs_compile", "× vs compile"),
            ("triton_full_ms", "Triton fwd+bwd ms"),
            ("torch.compile_full_ms", "compile fwd+bwd ms"),
        ]
    text = markdown_table(rows, columns)
    models = [
        {
            **m,
            "eager": _gb(m["model_bytes_eager"]),
            "fused": _gb(m["model_bytes_fused"]),
            "saved": f"{100 * (1 - m['model_bytes_fused'] / m['model_bytes_eager']):.1f} %",
        }
        for m in result["models"]
    ]
    model_columns = [
        ("variant", "variant"),
        ("batch", "batch"),
        ("eager", "fwd GB, ops unfused"),
        ("fused", "fwd GB, fused ops"),
        ("saved", "traffic saved"),
    ]
    if result["models"] and "speedup" in result["models"][0]:
        model_columns += [
            ("reference_ms", "fp16 fwd ms, kernels off"),
            ("auto_ms", "kernels on"),
            ("speedup", "speedup"),
        ]
    return text + "\n" + markdown_table(models, model_columns)


def parser() -> argparse.ArgumentParser:
    """The command line of this benchmark (`gpu_check` checks its steps against it)."""
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--variants", nargs="*", default=["cloudlulc_net", "cloudlulc_edge"])
    cli.add_argument("--batches", nargs="*", type=int, default=[8, 16])
    cli.add_argument("--tile", type=int, default=512)
    cli.add_argument("--out", type=Path, default=Path("bench/results"))
    cli.add_argument(
        "--readme", type=Path, default=None, help="page to update between kernels markers (docs/performance.md)"
    )
    return cli


def main(argv: list[str] | None = None) -> None:
    """Runs the benchmark, writes JSON + Markdown (+ the compile snapshot), optionally docs/performance.md."""
    args = parser().parse_args(argv)
    result = run(args.variants, args.batches, args.tile)
    env = result["environment"]
    machine = env.get("gpu") or f"{env['cpu']} ({env['cpu_cores']} cores), no GPU"
    note = (
        f"\nfp16, {args.tile}² tiles (fusion grid {args.tile // 4}²). Bytes from a dispatch-mode counter over "
        f"fake tensors; bounds = bytes / datasheet peak (H100 SXM 3.35 TB/s, AGX Orin 204.8 GB/s). "
        f"`python -m cloudlulc_edge.bench.kernel_latency` on {machine}, torch {env['torch']}, {env['date'][:10]}."
    )
    if not env["cuda"]:
        note += " **No CUDA device: GPU timings are missing**; nothing here is a measured kernel time.\n"
    else:
        note += "\n"
    table = render(result) + note
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        snapshot = compile_snapshot()
    except ImportError:  # no triton installed: analytic figures only
        snapshot = []
    result["compile"] = snapshot
    (args.out / "kernels.json").write_text(json.dumps(result, indent=2, default=str))
    (args.out / "kernels.md").write_text(table)
    print(table)
    if args.readme is not None:
        text = replace_between_markers(args.readme.read_text(), "kernels", table)
        if snapshot:
            text = replace_between_markers(text, "kernels-compile", render_compile(snapshot))
        args.readme.write_text(text)


if __name__ == "__main__":
    main()
