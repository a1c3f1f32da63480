"""Scale-out files for the schedulers operators already run: Kubernetes Indexed Jobs, Slurm arrays.

Both map 1:1 onto ``cloudlulc-edge run PLAN OUT --shard auto/N``: the scheduler starts N workers
and gives each its index (``JOB_COMPLETION_INDEX`` / ``SLURM_ARRAY_TASK_ID``); `runner.parse_shard`
reads it. The templates ship with the package (``cloudlulc_edge/templates``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from importlib import resources
from string import Template

from cloudlulc_edge.errors import CloudLULCError

__all__ = ["ScaleOut", "render_k8s_job", "render_slurm_array"]


@dataclass(frozen=True)
class ScaleOut:
    """What every worker runs.

    Attributes:
        plan: Plan JSON path as the workers see it.
        output: Output directory as the workers see it (shared storage).
        shards: Number of shards N.
        parallelism: Workers running at once.
        backend: torch, onnxruntime or tensorrt.
        device: cpu or cuda.
        gpus: GPUs per worker (0: none).
        extra: Further ``run`` arguments (e.g. ``--checkpoint /data/ckpt``).
        name: Job name.
    """

    plan: str
    output: str
    shards: int
    parallelism: int = 4
    backend: str = "torch"
    device: str = "cuda"
    gpus: int = 1
    extra: tuple[str, ...] = ()
    name: str = "cloudlulc-edge"

    def __post_init__(self) -> None:
        if self.shards < 1 or self.parallelism < 1:
            raise CloudLULCError(f"shards and parallelism must be ≥ 1, got {self.shards} and {self.parallelism}")


def _template(name: str) -> Template:
    return Template((resources.files("cloudlulc_edge.templates") / name).read_text())


def render_k8s_job(job: ScaleOut, image: str, claim: str, mount: str = "/data") -> str:
    """The Indexed Job manifest (YAML) for ``job``.

    Args:
        job: The work.
        image: Container image with cloudlulc-edge installed.
        claim: PersistentVolumeClaim holding plan, inputs and outputs.
        mount: Where the claim is mounted in the pod.
    """
    extra = "".join(f', "{arg}"' for arg in job.extra)
    gpu = f'nvidia.com/gpu: "{job.gpus}"' if job.gpus else 'cpu: "2"'
    return _template("k8s-indexed-job.yaml").substitute(
        name=job.name, shards=job.shards, parallelism=min(job.parallelism, job.shards), image=image, plan=job.plan,
        output=job.output, backend=job.backend, device=job.device, extra=extra, gpu_limit=gpu, mount=mount, claim=claim,
    )  # fmt: skip


def render_slurm_array(job: ScaleOut, cpus: int = 8, memory: str = "16G") -> str:
    """The sbatch script of a job array for ``job``.

    Args:
        job: The work.
        cpus: CPUs per task.
        memory: Memory per task (Slurm syntax).
    """
    gpu = f"#SBATCH --gres=gpu:{job.gpus}" if job.gpus else "# (no GPU requested)"
    extra = "".join(f" {shlex.quote(arg)}" for arg in job.extra)
    return _template("slurm-array.sbatch").substitute(
        name=job.name, last_index=job.shards - 1, parallelism=min(job.parallelism, job.shards), cpus=cpus, memory=memory,
        output=job.output, gpu_directive=gpu, plan=job.plan, shards=job.shards, backend=job.backend,
        device=job.device, extra_shell=extra,
    )  # fmt: skip
