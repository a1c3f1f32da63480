"""``cloudlulc-edge deploy k8s|slurm``: print a ready Kubernetes Indexed Job or Slurm array for a plan."""

from __future__ import annotations

from typing import Annotated

import typer

from cloudlulc_edge.deploy import ScaleOut, render_k8s_job, render_slurm_array

__all__ = ["deploy_app"]

deploy_app = typer.Typer(help="Scale-out files: Kubernetes Indexed Job or Slurm job array over `run --shard`.",
                         no_args_is_help=True)  # fmt: skip

PlanArg = Annotated[str, typer.Argument(help="Plan JSON path as the workers see it.")]
OutputArg = Annotated[str, typer.Argument(help="Output directory as the workers see it (shared storage).")]
ShardsOpt = Annotated[int, typer.Option(min=1, help="Number of shards (workers in total).")]
ParallelOpt = Annotated[int, typer.Option(min=1, help="Workers running at once.")]
BackendOpt = Annotated[str, typer.Option(help="torch, onnxruntime or tensorrt.")]
DeviceOpt = Annotated[str, typer.Option(help="cpu or cuda.")]
GpusOpt = Annotated[int, typer.Option(min=0, help="GPUs per worker (0: CPU only).")]
ExtraOpt = Annotated[
    list[str] | None, typer.Option(help="Extra `run` argument (repeatable), e.g. --extra=--checkpoint.")
]


@deploy_app.command("k8s")
def k8s(
    plan: PlanArg,
    output: OutputArg,
    image: Annotated[str, typer.Option(help="Container image with cloudlulc-edge installed.")],
    claim: Annotated[str, typer.Option(help="PersistentVolumeClaim with the plan, inputs and outputs.")],
    shards: ShardsOpt = 8,
    parallelism: ParallelOpt = 4,
    backend: BackendOpt = "torch",
    device: DeviceOpt = "cuda",
    gpus: GpusOpt = 1,
    extra: ExtraOpt = None,
    mount: Annotated[str, typer.Option(help="Mount path of the claim in the pod.")] = "/data",
) -> None:
    """Print an Indexed Job manifest (kubectl apply -f -)."""
    job = ScaleOut(plan, output, shards, parallelism, backend, device, gpus, tuple(extra or ()))
    print(render_k8s_job(job, image, claim, mount), end="")


@deploy_app.command("slurm")
def slurm(
    plan: PlanArg,
    output: OutputArg,
    shards: ShardsOpt = 8,
    parallelism: ParallelOpt = 4,
    backend: BackendOpt = "torch",
    device: DeviceOpt = "cuda",
    gpus: GpusOpt = 1,
    extra: ExtraOpt = None,
    cpus: Annotated[int, typer.Option(min=1, help="CPUs per task.")] = 8,
    memory: Annotated[str, typer.Option(help="Memory per task, Slurm syntax.")] = "16G",
) -> None:
    """Print an sbatch script for a job array (sbatch script.sh)."""
    job = ScaleOut(plan, output, shards, parallelism, backend, device, gpus, tuple(extra or ()))
    print(render_slurm_array(job, cpus, memory), end="")
