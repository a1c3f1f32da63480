"""Ray executor: a plan's scenes as tasks on a pool of model-holding actors (extra ``ray``).

Each actor opens the backend once (`backends.open_backend`: a checkpoint on a GPU, an ONNX graph,
an engine), adopts its tile exactly as a local run does (`MapOptions.with_tile`, which validates
the overlap again), and maps the scenes it is handed with `pipeline.map_plan`, so scene failures,
resume and atomic outputs behave exactly as in a local run. `ray.util.ActorPool` hands the next
scene to whichever actor is free. Actors reserve ``num_gpus`` each, so Ray places one per GPU.

Outputs go to a directory every node can reach (shared storage), as with ``run --shard``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cloudlulc_edge.backends.factory import BackendSpec
from cloudlulc_edge.errors import CloudLULCError, OptionsError
from cloudlulc_edge.pairing import Pair
from cloudlulc_edge.pipeline import MapOptions, SceneReport

__all__ = ["RayMapping", "RayOptions", "map_with_ray"]


@dataclass(frozen=True)
class RayOptions:
    """``--executor ray`` settings.

    Attributes:
        actors: Actors, one model each (for GPUs: the number of GPUs to use).
        gpus_per_actor: GPUs each actor reserves (1 for one model per GPU; 0 on CPU).
        address: Cluster address (None: ``RAY_ADDRESS`` or a local instance).
    """

    actors: int = 1
    gpus_per_actor: float = 0.0
    address: str | None = None

    def __post_init__(self) -> None:
        if self.actors < 1:
            raise OptionsError(f"--ray-actors must be ≥ 1, got {self.actors}")
        if self.gpus_per_actor < 0:
            raise OptionsError(f"--ray-gpus-per-actor must be ≥ 0, got {self.gpus_per_actor}")


class _Mapper:
    """Actor body: one backend, many scenes."""

    def __init__(self, spec: BackendSpec, output_dir: str, options: MapOptions) -> None:
        from cloudlulc_edge.backends.factory import open_backend

        self.backend = open_backend(spec)
        self.output_dir = output_dir
        self.options = options.with_tile(self.backend.identity.tile or options.tile)  # graphs and engines fix it

    def identity(self) -> dict[str, Any]:
        """The backend's model identity (as in a local run's report)."""
        return asdict(self.backend.identity)

    def map(self, pair: dict[str, Any]) -> dict[str, Any]:
        """Maps one pair (as `Pair.to_dict`); returns its `SceneReport` as a dict."""
        from cloudlulc_edge.pipeline import map_plan

        (report,) = map_plan([Pair.from_dict(pair)], self.backend, self.output_dir, self.options)
        return report.to_dict()


@dataclass
class RayMapping:
    """What the actors did.

    Attributes:
        reports: One scene report per pair, in the order of the pairs.
        identity: The model identity the actors report (None when no actor started).
    """

    reports: list[SceneReport]
    identity: dict[str, Any] | None


def map_with_ray(
    pairs: Sequence[Pair],
    spec: BackendSpec,
    output_dir: Path,
    options: MapOptions,
    ray_options: RayOptions,
    on_scene: Callable[[SceneReport], None] | None = None,
) -> RayMapping:
    """Maps ``pairs`` on Ray actors.

    Args:
        pairs: Pairs to map.
        spec: Backend every actor opens.
        output_dir: Shared output directory.
        options: Mapping options.
        ray_options: Actors, GPUs per actor, cluster address.
        on_scene: Called with each finished report, in completion order.

    Raises:
        CloudLULCError: Ray is not installed, or an actor cannot open the backend.
    """
    try:
        import ray
        from ray.util import ActorPool
    except ImportError as exc:
        raise CloudLULCError(
            f"the Ray executor needs the 'ray' extra: pip install 'cloudlulc-edge[ray]' ({exc})"
        ) from exc
    if not ray.is_initialized():
        ray.init(address=ray_options.address, include_dashboard=False, log_to_driver=False)
    remote: Any = ray.remote(num_gpus=ray_options.gpus_per_actor, num_cpus=1)(_Mapper)
    actors = [remote.remote(spec, str(output_dir), options) for _ in range(ray_options.actors)]
    try:
        identity: dict[str, Any] = ray.get(actors[0].identity.remote())
    except ray.exceptions.RayActorError as exc:
        raise CloudLULCError(f"a Ray actor could not open the backend: {exc}") from exc
    pool = ActorPool(actors)
    by_name: dict[str, SceneReport] = {}
    for data in pool.map_unordered(lambda actor, pair: actor.map.remote(pair), [p.to_dict() for p in pairs]):
        report = SceneReport(**data)
        by_name[report.name] = report
        if on_scene is not None:
            on_scene(report)
    return RayMapping([by_name[p.name] for p in pairs], identity)
