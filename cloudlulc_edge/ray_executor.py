"""Ray executor: a plan's scenes as tasks on a pool of model-holding actors (extra ``ray``).

Each actor opens the backend once (`runner.open_backend`: a checkpoint on a GPU, an ONNX graph, an
engine) and maps the scenes it is handed with `pipeline.map_plan`, so scene failures, resume and
atomic outputs behave exactly as in a local run. `ray.util.ActorPool` hands the next scene to
whichever actor is free. Actors reserve ``num_gpus`` each, so Ray places one per GPU.

Outputs go to a directory every node can reach (shared storage), as with ``run --shard``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from cloudlulc_edge.errors import CloudLULCError
from cloudlulc_edge.pairing import Pair
from cloudlulc_edge.pipeline import MapOptions, SceneReport
from cloudlulc_edge.runner import BackendSpec

__all__ = ["map_with_ray"]


class _Mapper:
    """Actor body: one backend, many scenes."""

    def __init__(self, spec: BackendSpec, output_dir: str, options: MapOptions) -> None:
        from cloudlulc_edge.runner import open_backend

        self.backend = open_backend(spec)
        self.output_dir = output_dir
        tile = self.backend.identity.tile or options.tile  # graphs and engines fix their tile
        self.options = options if tile == options.tile else replace(options, tile=tile)

    def map(self, pair: dict[str, Any]) -> dict[str, Any]:
        """Maps one pair (as `Pair.to_dict`); returns its `SceneReport` as a dict."""
        from cloudlulc_edge.pipeline import map_plan

        (report,) = map_plan([Pair.from_dict(pair)], self.backend, self.output_dir, self.options)
        return report.to_dict()


def map_with_ray(
    pairs: Sequence[Pair],
    spec: BackendSpec,
    output_dir: Path,
    options: MapOptions,
    actors: int = 1,
    gpus_per_actor: float = 0.0,
    address: str | None = None,
    on_scene: Callable[[SceneReport], None] | None = None,
) -> list[SceneReport]:
    """Maps ``pairs`` on Ray actors; returns reports in the order of ``pairs``.

    Args:
        pairs: Pairs to map.
        spec: Backend every actor opens.
        output_dir: Shared output directory.
        options: Mapping options.
        actors: Number of actors (for GPUs: the number of GPUs to use).
        gpus_per_actor: GPUs each actor reserves (1 for one model per GPU; 0 on CPU).
        address: Ray cluster address (None: connect to ``RAY_ADDRESS`` or start a local instance).
        on_scene: Called with each finished report, in completion order.

    Raises:
        CloudLULCError: Ray is not installed, or ``actors`` < 1.
    """
    try:
        import ray
        from ray.util import ActorPool
    except ImportError as exc:
        raise CloudLULCError(f"the Ray executor needs the 'ray' extra ({exc})") from exc
    if actors < 1:
        raise CloudLULCError(f"--ray-actors must be ≥ 1, got {actors}")
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    remote = ray.remote(num_gpus=gpus_per_actor, num_cpus=1)(_Mapper)
    pool = ActorPool([remote.remote(spec, str(output_dir), options) for _ in range(actors)])
    by_name: dict[str, SceneReport] = {}
    for data in pool.map_unordered(lambda actor, pair: actor.map.remote(pair), [p.to_dict() for p in pairs]):
        report = SceneReport(**data)
        by_name[report.name] = report
        if on_scene is not None:
            on_scene(report)
    return [by_name[p.name] for p in pairs]
