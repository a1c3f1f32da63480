"""``cloudlulc-edge deploy k8s|slurm|systemd|entrypoint``: print a job file, a service unit or an entrypoint."""

from __future__ import annotations

from typing import Annotated

import typer

from cloudlulc_edge.cli.options import BackendChoice, BackendOpt, usage_error
from cloudlulc_edge.deploy import (
    ScaleOut,
    WatchService,
    render_container_entrypoint,
    render_k8s_job,
    render_slurm_array,
    render_systemd_unit,
)
from cloudlulc_edge.errors import CloudLULCError

__all__ = ["deploy_app"]

deploy_app = typer.Typer(help="Scale-out files (Kubernetes Indexed Job, Slurm job array over `run --shard`) and "
                              "service files for `watch` (systemd unit, container entrypoint).",
                         no_args_is_help=True)  # fmt: skip

PlanArg = Annotated[str, typer.Argument(metavar="PLAN", help="Plan JSON path as the workers see it.")]
OutputArg = Annotated[
    str, typer.Argument(metavar="OUTPUT", help="Output directory as the workers see it (shared storage).")
]
ShardsOpt = Annotated[int, typer.Option(min=1, help="Number of shards (workers in total).")]
ParallelOpt = Annotated[int, typer.Option(min=1, help="Workers running at once.")]
DeviceOpt = Annotated[str, typer.Option(help="cpu or cuda.")]
GpusOpt = Annotated[int, typer.Option(min=0, help="GPUs per worker (0: CPU only).")]
ExtraOpt = Annotated[
    list[str] | None, typer.Option(help="Extra `run` argument (repeatable), e.g. --extra=--checkpoint.")
]
InputRootOpt = Annotated[
    list[str] | None,
    typer.Option(
        help="Input folder the workers may read, as they see it (repeatable; default: the one the plan "
        "records, when the plan file is readable here)."
    ),
]
PlanDigestOpt = Annotated[
    str | None,
    typer.Option(
        help="Digest every worker requires of the plan (default: read from the plan file when it is "
        "readable here; `plan` prints it)."
    ),
]


@deploy_app.command("k8s")
def k8s(
    plan: PlanArg,
    output: OutputArg,
    image: Annotated[str, typer.Option(help="Container image with cloudlulc-edge installed.")],
    claim: Annotated[str, typer.Option(help="PersistentVolumeClaim with the plan, inputs and outputs.")],
    shards: ShardsOpt = 8,
    parallelism: ParallelOpt = 4,
    backend: BackendOpt = BackendChoice.auto,
    device: DeviceOpt = "cuda",
    gpus: GpusOpt = 1,
    extra: ExtraOpt = None,
    mount: Annotated[str, typer.Option(help="Mount path of the claim in the pod.")] = "/data",
    plan_digest: PlanDigestOpt = None,
    input_root: InputRootOpt = None,
) -> None:
    """Print an Indexed Job manifest (kubectl apply -f -)."""
    try:
        text = render_k8s_job(ScaleOut(plan, output, shards, parallelism, backend.value, device, gpus,
                                       tuple(extra or ()), plan_digest=plan_digest,
                                       input_roots=tuple(input_root or ())), image, claim, mount)  # fmt: skip
    except CloudLULCError as exc:
        raise usage_error(str(exc)) from exc
    print(text, end="")


@deploy_app.command("slurm")
def slurm(
    plan: PlanArg,
    output: OutputArg,
    shards: ShardsOpt = 8,
    parallelism: ParallelOpt = 4,
    backend: BackendOpt = BackendChoice.auto,
    device: DeviceOpt = "cuda",
    gpus: GpusOpt = 1,
    extra: ExtraOpt = None,
    cpus: Annotated[int, typer.Option(min=1, help="CPUs per task.")] = 8,
    memory: Annotated[str, typer.Option(help="Memory per task, Slurm syntax.")] = "16G",
    plan_digest: PlanDigestOpt = None,
    input_root: InputRootOpt = None,
) -> None:
    """Print an sbatch script for a job array (sbatch script.sh)."""
    try:
        text = render_slurm_array(ScaleOut(plan, output, shards, parallelism, backend.value, device, gpus,
                                           tuple(extra or ()), plan_digest=plan_digest,
                                       input_roots=tuple(input_root or ())), cpus, memory)  # fmt: skip
    except CloudLULCError as exc:
        raise usage_error(str(exc)) from exc
    print(text, end="")


@deploy_app.command("systemd")
def systemd(
    input_dir: Annotated[str, typer.Argument(metavar="INPUT_DIR", help="Incoming folder to watch (absolute path).")],
    output_dir: Annotated[str, typer.Argument(metavar="OUTPUT_DIR", help="Map folder (absolute path).")],
    executable: Annotated[
        str, typer.Option(help="Absolute path of the cloudlulc-edge command on the station.")
    ] = "/usr/local/bin/cloudlulc-edge",
    user: Annotated[str, typer.Option(help="Account the service runs as.")] = "cloudlulc",
    extra: Annotated[
        list[str] | None, typer.Option(help="Extra `watch` argument (repeatable), e.g. --extra=--settle=60.")
    ] = None,
) -> None:
    """Print a systemd unit that runs `watch` (systemctl stop ends it cleanly)."""
    try:
        text = render_systemd_unit(WatchService(input_dir, output_dir, executable, user, tuple(extra or ())))
    except CloudLULCError as exc:
        raise usage_error(str(exc)) from exc
    print(text, end="")


@deploy_app.command("entrypoint")
def entrypoint() -> None:
    """Print a container entrypoint (sh) that runs `watch` on WATCH_INPUT / WATCH_OUTPUT."""
    print(render_container_entrypoint(), end="")
