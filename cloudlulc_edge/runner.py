"""Batch runs: choose a backend, map a plan (or one shard of it), report, and decide the exit code.

What the ``map`` and ``run`` commands call. A run maps its pairs with `pipeline.map_plan` (one
failed scene never stops the others; finished maps are skipped on re-runs) and writes a JSON
report: per scene status, Δt, cloud %, S1 coverage, per-stage seconds, output path and error.

Sharding maps onto the schedulers operators already have: ``--shard i/n`` is the i-th of n
round-robin slices of a plan, and the index can come from a Kubernetes Indexed Job
(``JOB_COMPLETION_INDEX``) or a Slurm job array (``SLURM_ARRAY_TASK_ID``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from torch import nn

from cloudlulc_edge.backends.base import Backend, ModelIdentity
from cloudlulc_edge.errors import CloudLULCError, OutputError
from cloudlulc_edge.files import atomic_write
from cloudlulc_edge.io.products import Skipped, scan
from cloudlulc_edge.pairing import Pair, Plan, pair_products
from cloudlulc_edge.pipeline import MapOptions, SceneReport, map_plan
from cloudlulc_edge.version import __version__

__all__ = [
    "EXIT_ALL_FAILED",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "BackendKind",
    "BackendSpec",
    "RunReport",
    "ShardError",
    "load_model",
    "open_backend",
    "parse_shard",
    "plan_directory",
    "record_run",
    "run_pairs",
]

#: Every pair done or skipped.
EXIT_OK = 0
#: Bad command line, options or plan (Typer's own usage errors use 2 as well).
EXIT_USAGE = 2
#: Some scenes failed, others were mapped.
EXIT_PARTIAL = 3
#: Every scene that was attempted failed.
EXIT_ALL_FAILED = 4

BackendKind = Literal["torch", "onnxruntime", "tensorrt"]
_SHARD_ENV = ("JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID")


class ShardError(CloudLULCError):
    """A shard specification is malformed or out of range."""


def parse_shard(text: str | None, environ: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """Parses ``i/n`` (0-based), with ``i`` optionally taken from the scheduler.

    ``--shard 3/10`` is shard 3 of 10. ``--shard auto/10`` takes the index from
    ``JOB_COMPLETION_INDEX`` (Kubernetes Indexed Job) or ``SLURM_ARRAY_TASK_ID`` (Slurm array with
    ``--array=0-9``).

    Args:
        text: The option value, or None for no sharding.
        environ: Environment to read (default ``os.environ``).

    Returns:
        ``(index, count)`` or None.

    Raises:
        ShardError: Malformed text, index out of range, or ``auto`` without a scheduler index.
    """
    if text is None:
        return None
    env = os.environ if environ is None else environ
    index_text, sep, count_text = text.partition("/")
    if not sep or not count_text.isdigit() or int(count_text) < 1:
        raise ShardError(f"--shard must look like i/n (e.g. 0/4) or auto/n, got {text!r}")
    count = int(count_text)
    if index_text == "auto":
        found = next((env[k] for k in _SHARD_ENV if env.get(k, "").strip()), None)
        if found is None:
            raise ShardError(
                f"--shard auto/{count} needs JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID in the environment"
            )
        index_text = found.strip()
    if not index_text.isdigit() or not 0 <= int(index_text) < count:
        raise ShardError(f"shard index {index_text!r} is not in 0..{count - 1}")
    return int(index_text), count


def check_output_dir(path: Path) -> None:
    """Creates ``path`` if needed and proves it writable (a probe file), before any scene is read.

    Raises:
        OutputError: The folder cannot be created or written (read-only, full, not a folder…).
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"output folder is not writable ({exc.strerror or exc})", path) from exc


def plan_directory(input_dir: Path, window_days: float = 6.0, require_s1: bool = False) -> Plan:
    """Scans a directory and pairs its products; paths that are not products join the plan's skips.

    Raises:
        CloudLULCError: ``input_dir`` is not a directory.
    """
    found = scan(input_dir)
    plan = pair_products(found.products, window_days=window_days, require_s1=require_s1)
    plan.skipped = [*found.skipped, *plan.skipped]
    plan.options["input_root"] = os.path.abspath(input_dir)  # `run` only maps products under it
    return plan


@dataclass(frozen=True)
class BackendSpec:
    """Which model runs, where.

    Attributes:
        kind: ``torch``, ``onnxruntime`` or ``tensorrt``.
        variant: Registered variant (torch without a checkpoint: its packaged default checkpoint,
            else untrained weights).
        checkpoint: Checkpoint directory (torch).
        model: ONNX file or export directory (onnxruntime), engine file (tensorrt).
        precision: Graph of an export directory to run (onnxruntime): fp32, fp16 or int8.
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        tile: Tile side (torch; the graph or engine fixes it for the others).
    """

    kind: BackendKind = "torch"
    variant: str = "cloudlulc_edge"
    checkpoint: Path | None = None
    model: Path | None = None
    precision: str = "fp32"
    device: str = "cpu"
    tile: int = 512


def _export_identity(export_dir: Path, tile: int) -> ModelIdentity:
    """Identity recorded in an export's manifest (``unknown`` fields when there is none)."""
    manifest = export_dir / "manifest.json"
    if not manifest.is_file():
        return ModelIdentity("unknown", "unknown", "unknown", tile)
    model = json.loads(manifest.read_text()).get("model", {})
    return ModelIdentity(str(model.get("variant")), str(model.get("version")), str(model.get("weights_sha256")), tile)


def load_model(variant: str, checkpoint: Path | None, tile: int) -> tuple[nn.Module, ModelIdentity]:
    """A checkpoint, else the variant's packaged default checkpoint, else untrained weights (eval mode).

    Variant and provenance come from the checkpoint's card; packaged checkpoints are listed in
    `cloudlulc_edge.weights`.

    Raises:
        CloudLULCError: A bad checkpoint (`ModelCardError`) or an unknown variant.
    """
    from cloudlulc_edge.models import create_model, list_models
    from cloudlulc_edge.models.checkpoint import load_checkpoint
    from cloudlulc_edge.weights import default_checkpoint

    checkpoint = checkpoint if checkpoint is not None else default_checkpoint(variant)
    if checkpoint is not None:
        model, card = load_checkpoint(checkpoint)
        return model, ModelIdentity(card.variant, card.package_version, card.weights_sha256, tile)
    if variant not in list_models():
        raise CloudLULCError(f"unknown variant {variant!r}; one of {', '.join(list_models())}")
    return create_model(variant).eval(), ModelIdentity(variant, "untrained", "untrained", tile)


def open_backend(spec: BackendSpec) -> Backend:
    """Builds the backend a spec names.

    Raises:
        CloudLULCError: A missing or bad checkpoint, ONNX file, export or engine (the message
            names the file), or an unknown variant.
    """
    if spec.kind not in ("torch", "onnxruntime", "tensorrt"):
        raise CloudLULCError(f"unknown backend {spec.kind!r}; use torch, onnxruntime or tensorrt")
    if spec.kind == "torch":
        from cloudlulc_edge.backends.torch_backend import TorchBackend

        return TorchBackend(*load_model(spec.variant, spec.checkpoint, spec.tile), spec.device)
    if spec.model is None:
        raise CloudLULCError(f"the {spec.kind} backend needs --model (an ONNX file / export directory, or an engine)")
    if spec.kind == "onnxruntime":
        from cloudlulc_edge.backends.onnxruntime_backend import OnnxRuntimeBackend

        path = spec.model / f"model_{spec.precision}.onnx" if spec.model.is_dir() else spec.model
        export_dir = spec.model if spec.model.is_dir() else spec.model.parent
        ort_backend = OnnxRuntimeBackend(path, _export_identity(export_dir, 0), spec.device)
        ort_backend.identity = _export_identity(export_dir, ort_backend.tile)
        return ort_backend
    from cloudlulc_edge.backends.tensorrt_backend import TensorRTBackend

    export_dir = spec.model.parent.parent.parent  # EXPORT/engines/<key digest>/model.engine
    trt_backend = TensorRTBackend(spec.model, _export_identity(export_dir, 0))
    trt_backend.identity = _export_identity(export_dir, trt_backend.tile)
    return trt_backend


@dataclass
class RunReport:
    """One run of a command over a set of pairs.

    Attributes:
        command: What ran (``map``, ``run``).
        started: UTC start time.
        finished: UTC end time.
        shard: ``[i, n]`` or None.
        backend: Backend kind and model identity.
        options: Mapping options.
        scenes: One report per pair.
        inputs_skipped: Paths of the input directory that are not usable products, and why.
    """

    command: str
    started: str
    finished: str = ""
    shard: list[int] | None = None
    backend: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    scenes: list[SceneReport] = field(default_factory=list)
    inputs_skipped: list[dict[str, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Scenes per status (``done``, ``skipped``, ``failed``)."""
        return dict(Counter(s.status for s in self.scenes))

    def exit_code(self) -> int:
        """`EXIT_OK`, `EXIT_PARTIAL` or `EXIT_ALL_FAILED`."""
        counts = self.counts()
        if counts.get("failed", 0) == 0:
            return EXIT_OK
        return EXIT_PARTIAL if counts.get("done", 0) else EXIT_ALL_FAILED

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        out = asdict(self)
        out["software"] = f"cloudlulc-edge {__version__}"
        out["counts"] = self.counts()
        out["exit_code"] = self.exit_code()
        return out

    def write(self, directory: Path) -> Path:
        """Writes ``<directory>/reports/<command>-<start>-p<pid>[-shard-i-of-n].json`` atomically.

        The process id keeps the reports of runs started in the same second (two `map` processes
        sharing an output folder, a job array) apart.
        """
        folder = directory / "reports"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = self.started.replace(":", "").replace("-", "").replace("+0000", "Z")
        suffix = f"-shard-{self.shard[0]}-of-{self.shard[1]}" if self.shard else ""
        path = folder / f"{self.command}-{stamp}-p{os.getpid()}{suffix}.json"
        return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n"))


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")


def run_pairs(
    command: str,
    pairs: Sequence[Pair],
    backend: Backend,
    output_dir: Path,
    options: MapOptions,
    shard: tuple[int, int] | None = None,
    on_scene: Callable[[SceneReport], None] | None = None,
    on_tiles: Callable[[str, int, int], None] | None = None,
    inputs_skipped: Sequence[Skipped] = (),
) -> tuple[RunReport, Path]:
    """Maps ``pairs`` (already sharded) here and writes the run report under ``output_dir/reports``.

    Args:
        command: Name recorded in the report.
        pairs: Pairs to map.
        backend: Inference backend.
        output_dir: Map folder.
        options: Mapping options.
        shard: ``(i, n)`` recorded in the report.
        on_scene: Called with each finished scene report.
        on_tiles: Progress callback ``(scene, tiles done, tiles total)``.
        inputs_skipped: Inputs the plan left out (recorded in the report).

    Returns:
        ``(report, report path)``.
    """
    info = {"kind": type(backend).__name__, "executor": "local", "model": asdict(backend.identity)}
    return record_run(
        command, info, output_dir, options, shard, inputs_skipped,
        lambda: map_plan(pairs, backend, output_dir, options, on_scene=on_scene, on_tiles=on_tiles),
    )  # fmt: skip


def record_run(
    command: str,
    backend_info: dict[str, Any],
    output_dir: Path,
    options: MapOptions,
    shard: tuple[int, int] | None,
    inputs_skipped: Sequence[Skipped],
    execute: Callable[[], list[SceneReport]],
) -> tuple[RunReport, Path]:
    """Runs ``execute`` (any executor returning scene reports) and writes its run report.

    Returns:
        ``(report, report path)``.
    """
    report = RunReport(command, _now(), shard=list(shard) if shard else None, backend=backend_info,
                       options=asdict(options), inputs_skipped=[asdict(s) for s in inputs_skipped])  # fmt: skip
    report.scenes = execute()
    report.finished = _now()
    return report, report.write(output_dir)
