"""Scale-out and service files for what operators already run: Kubernetes, Slurm, systemd, containers.

Batch: Kubernetes Indexed Jobs and Slurm arrays. Long-running: a systemd unit and a container
entrypoint for ``cloudlulc-edge watch``.

Both map 1:1 onto ``cloudlulc-edge run PLAN OUT --shard auto/N``: the scheduler starts N workers
and gives each its index (``JOB_COMPLETION_INDEX`` / ``SLURM_ARRAY_TASK_ID``); `runner.parse_shard`
reads it. The Slurm template ships with the package (``cloudlulc_edge/templates``); the
Kubernetes manifest is built as a mapping and written by PyYAML.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from cloudlulc_edge.errors import OptionsError

__all__ = [
    "ScaleOut",
    "WatchService",
    "pinned",
    "render_container_entrypoint",
    "render_k8s_job",
    "render_slurm_array",
    "render_systemd_unit",
]

#: Kubernetes object names (RFC 1123 label); also what a Slurm job name may be here.
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DEVICE = re.compile(r"cpu|cuda(:\d+)?")
_MEMORY = re.compile(r"\d+[KMGT]?")
_BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")


def _text(what: str, value: str) -> str:
    """A value that goes into a job file: text without control characters (a newline would start a new line)."""
    if not isinstance(value, str) or not value or _CONTROL.search(value):
        raise OptionsError(f"{what} must be non-empty text without control characters, got {value!r}")
    return value


@dataclass(frozen=True)
class ScaleOut:
    """What every worker runs.

    Every value is validated here, and the renderers write them as data (shell words quoted with
    `shlex.quote`, YAML written by a YAML library), never as code.

    Attributes:
        plan: Plan JSON path as the workers see it.
        output: Output directory as the workers see it (shared storage).
        shards: Number of shards N.
        parallelism: Workers running at once.
        backend: auto, torch, onnxruntime or tensorrt.
        device: cpu, cuda or cuda:N.
        gpus: GPUs per worker (0: none).
        extra: Further ``run`` arguments (e.g. ``--checkpoint /data/ckpt``), one word each.
        name: Job name (lower-case letters, digits and ``-``, at most 63: a Kubernetes name).
        plan_digest: `pairing.Plan.digest` every worker requires (``run --plan-digest``): a plan
            re-made while the job runs fails every shard (exit 2) instead of mapping a mixture.
        input_roots: The folders every worker may read (``run --input-root``, as the workers see
            them); `pinned` takes the one the plan records when none is given.

    Raises:
        OptionsError: A count below 1, an unknown backend or device, a name that is not a
            Kubernetes name, or a path or argument with a control character.
    """

    plan: str
    output: str
    shards: int
    parallelism: int = 4
    backend: str = "auto"
    device: str = "cuda"
    gpus: int = 1
    extra: tuple[str, ...] = ()
    name: str = "cloudlulc-edge"
    plan_digest: str | None = None
    input_roots: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.plan_digest is not None and not re.fullmatch(r"[0-9a-f]{16}", self.plan_digest):
            raise OptionsError(f"plan digest must be 16 hex digits (as `plan` prints), got {self.plan_digest!r}")
        if self.shards < 1 or self.parallelism < 1 or self.gpus < 0:
            raise OptionsError(f"shards and parallelism must be ≥ 1 and gpus ≥ 0, got {self.shards}, "
                               f"{self.parallelism} and {self.gpus}")  # fmt: skip
        if self.backend not in _BACKENDS:
            raise OptionsError(f"backend must be one of {', '.join(_BACKENDS)}, got {self.backend!r}")
        if not _DEVICE.fullmatch(self.device):
            raise OptionsError(f"device must be cpu, cuda or cuda:N, got {self.device!r}")
        if not _NAME.fullmatch(self.name):
            raise OptionsError(f"job name must be lower-case letters, digits and '-' (≤ 63, a Kubernetes name), "
                               f"got {self.name!r}")  # fmt: skip
        _text("plan path", self.plan)
        _text("output path", self.output)
        for arg in self.extra:
            _text("an --extra argument", arg)
        for root in self.input_roots:
            _text("input root", root)

    @property
    def command(self) -> list[str]:
        """The ``cloudlulc-edge run`` command line every worker runs, one word per item."""
        pin = ["--plan-digest", self.plan_digest] if self.plan_digest else []
        roots = [word for root in self.input_roots for word in ("--input-root", root)]
        return ["cloudlulc-edge", "run", self.plan, self.output, "--shard", f"auto/{self.shards}",
                "--backend", self.backend, "--device", self.device, "--log-format", "jsonl", *roots, *pin,
                *self.extra]  # fmt: skip


def pinned(job: ScaleOut) -> ScaleOut:
    """``job`` with its plan's digest and input folder pinned, where not given and the plan file is readable here.

    Raises:
        PairingError: The plan file exists here but is not a plan.
        OptionsError: No input root given, and none can be read from the plan (the workers' ``run``
            would refuse to start).
    """
    from cloudlulc_edge.pairing import plan_file_digest, recorded_input_root

    readable = Path(job.plan).is_file()
    if job.plan_digest is None and readable:
        job = replace(job, plan_digest=plan_file_digest(Path(job.plan)))
    if not job.input_roots:
        root = recorded_input_root(Path(job.plan)) if readable else None
        if root is None:
            raise OptionsError(f"the workers' `run` needs the input folder(s) the plan may read: pass --input-root "
                               f"(the plan {job.plan} {'records none' if readable else 'is not readable here'})")  # fmt: skip
        job = replace(job, input_roots=(root,))
    return job


def render_k8s_job(job: ScaleOut, image: str, claim: str, mount: str = "/data") -> str:
    """The Indexed Job manifest (YAML, written by PyYAML) for ``job`` (its plan pinned, `pinned`).

    Args:
        job: The work.
        image: Container image with cloudlulc-edge installed.
        claim: PersistentVolumeClaim holding plan, inputs and outputs (a Kubernetes name).
        mount: Where the claim is mounted in the pod (an absolute path).

    Raises:
        OptionsError: A claim that is not a Kubernetes name, an image or mount with control
            characters, or a relative mount path.
    """
    import yaml

    _text("image", image)
    if not _NAME.fullmatch(claim):
        raise OptionsError(f"claim must be a Kubernetes name (lower-case letters, digits, '-'), got {claim!r}")
    if not _text("mount", mount).startswith("/"):
        raise OptionsError(f"mount must be an absolute path, got {mount!r}")
    job = pinned(job)
    limits = {"nvidia.com/gpu": str(job.gpus)} if job.gpus else {"cpu": "2"}
    container = {"name": "cloudlulc-edge", "image": image, "command": job.command, "resources": {"limits": limits},
                 "volumeMounts": [{"name": "data", "mountPath": mount}]}  # fmt: skip
    manifest: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job.name},
        "spec": {
            "completionMode": "Indexed",
            "completions": job.shards,
            "parallelism": min(job.parallelism, job.shards),
            "backoffLimitPerIndex": 2,
            "maxFailedIndexes": job.shards,
            "template": {"spec": {"restartPolicy": "Never", "containers": [container],
                                  "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}},
        },
    }  # fmt: skip
    header = ("# cloudlulc-edge on Kubernetes: one Indexed Job, one pod per shard of a plan.\n"
              "# Generated by `cloudlulc-edge deploy k8s`; every pod runs `run PLAN OUT --shard auto/N` and takes\n"
              "# its index from JOB_COMPLETION_INDEX. Re-running the Job skips maps that already exist.\n")  # fmt: skip
    return header + yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True, width=120)


def render_slurm_array(job: ScaleOut, cpus: int = 8, memory: str = "16G") -> str:
    """The sbatch script of a job array for ``job`` (its plan pinned, `pinned`): every word quoted with `shlex.quote`.

    Args:
        job: The work.
        cpus: CPUs per task.
        memory: Memory per task (Slurm syntax: digits and an optional K/M/G/T).

    Raises:
        OptionsError: Fewer than 1 CPU, a memory size that is not Slurm's syntax, or an output
            path with whitespace (``#SBATCH --output`` cannot hold it).
    """
    if cpus < 1 or not _MEMORY.fullmatch(memory):
        raise OptionsError(f"cpus must be ≥ 1 and memory like 16G, got {cpus} and {memory!r}")
    if re.search(r"\s", job.output):
        raise OptionsError(f"the output path goes into '#SBATCH --output=' and cannot hold whitespace: {job.output!r}")
    job = pinned(job)
    gpu = f"#SBATCH --gres=gpu:{job.gpus}" if job.gpus else "# (no GPU requested)"
    template = Template((resources.files("cloudlulc_edge.templates") / "slurm-array.sbatch").read_text())
    return template.substitute(
        name=job.name, last_index=job.shards - 1, parallelism=min(job.parallelism, job.shards), cpus=cpus,
        memory=memory, output=job.output, gpu_directive=gpu, command=shlex.join(job.command),
    )  # fmt: skip


#: Characters refused in systemd ``ExecStart`` words (quoting and escapes are systemd's own syntax).
_SYSTEMD_UNSAFE = re.compile(r"[\s\"'\\;\x00-\x1f\x7f]")


def _systemd_word(what: str, value: str) -> str:
    """One ``ExecStart`` word: refused if it needs quoting; ``%`` and ``$`` escaped (specifiers, variables)."""
    if not value or _SYSTEMD_UNSAFE.search(value):
        raise OptionsError(f"{what} cannot hold whitespace, quotes, backslashes, ';' or control characters in a "
                           f"systemd unit, got {value!r}")  # fmt: skip
    return value.replace("%", "%%").replace("$", "$$")


@dataclass(frozen=True)
class WatchService:
    """A long-running ``cloudlulc-edge watch`` as a systemd service.

    Attributes:
        input_dir: The incoming folder (absolute).
        output_dir: The map folder (absolute).
        executable: Absolute path of the ``cloudlulc-edge`` console script.
        user: Account the service runs as.
        extra: Further ``watch`` arguments, one word each (e.g. ``--settle=60``).

    Raises:
        OptionsError: A relative path, or a value systemd would split, quote or expand.
    """

    input_dir: str
    output_dir: str
    executable: str = "/usr/local/bin/cloudlulc-edge"
    user: str = "cloudlulc"
    extra: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for what, path in (("input folder", self.input_dir), ("output folder", self.output_dir),
                           ("executable", self.executable)):  # fmt: skip
            if not _systemd_word(what, path).startswith("/"):
                raise OptionsError(f"the {what} must be an absolute path in a systemd unit, got {path!r}")
        if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", self.user):
            raise OptionsError(f"user must be a POSIX account name, got {self.user!r}")
        for arg in self.extra:
            _systemd_word("an --extra argument", arg)


def render_systemd_unit(service: WatchService) -> str:
    """A systemd unit running ``watch`` under ``service.user``, restarted on failure.

    ``systemctl stop`` sends SIGTERM: the watcher abandons the scene in progress cleanly (its
    partial output removed) and writes its report; exit 130 then counts as success.
    """
    words = [service.executable, "watch", service.input_dir, service.output_dir, "--log-format", "jsonl",
             *service.extra]  # fmt: skip
    exec_start = " ".join(_systemd_word("a word", w) for w in words)
    return f"""# cloudlulc-edge watch as a systemd service. Generated by `cloudlulc-edge deploy systemd`.
# Install: copy to /etc/systemd/system/cloudlulc-edge-watch.service, then
#   systemctl daemon-reload && systemctl enable --now cloudlulc-edge-watch
# Events go to the journal as JSON lines (journalctl -u cloudlulc-edge-watch -o cat); the heartbeat
# is {service.output_dir}/reports/watch-<host>-p<pid>.status.json.
[Unit]
Description=cloudlulc-edge: map Sentinel products arriving in {_systemd_word("input folder", service.input_dir)}
After=local-fs.target remote-fs.target network-online.target
Wants=network-online.target

[Service]
Type=simple
User={service.user}
ExecStart={exec_start}
KillSignal=SIGTERM
TimeoutStopSec=300
SuccessExitStatus=130
Restart=on-failure
RestartSec=30
Nice=5

[Install]
WantedBy=multi-user.target
"""


def render_container_entrypoint() -> str:
    """A POSIX ``sh`` entrypoint for a container that runs ``watch``.

    Folders come from ``WATCH_INPUT`` / ``WATCH_OUTPUT`` (default ``/data/incoming``, ``/data/maps``)
    and further options from the container's command (``"$@"``), so nothing is pasted into the
    script. ``exec`` replaces the shell, so the watcher is the container's PID 1 and receives the
    SIGTERM of ``docker stop`` or a pod's termination itself (it installs a handler for it).
    """
    return """#!/bin/sh
# cloudlulc-edge watch as a container entrypoint. Generated by `cloudlulc-edge deploy entrypoint`.
#   docker run -v /srv/incoming:/data/incoming -v /srv/maps:/data/maps IMAGE --settle 60
# Set WATCH_INPUT / WATCH_OUTPUT to watch other folders; arguments are passed to `watch`.
set -eu
exec cloudlulc-edge watch "${WATCH_INPUT:-/data/incoming}" "${WATCH_OUTPUT:-/data/maps}" --log-format jsonl "$@"
"""
