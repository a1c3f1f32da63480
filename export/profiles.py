"""TensorRT optimisation profiles: which batch sizes an engine is built for.

H×W stay fixed at the tile size; only the batch is dynamic (`edge-export.md` §3). A deployment
mode names a profile: ``latency`` (batch 1), ``throughput`` (1–max, tuned for ``opt``), ``dla``
(static: DLA has no dynamic shapes, min = opt = max).
"""

from __future__ import annotations

from dataclasses import dataclass

from cloudlulc_edge.errors import ExportError
from cloudlulc_edge.export.onnx_export import input_shapes

__all__ = ["DEPLOYMENT_MODES", "BatchProfile", "derive_profiles", "profile_shapes"]

Shape = tuple[int, int, int, int]
DEPLOYMENT_MODES = ("latency", "throughput", "dla")


@dataclass(frozen=True)
class BatchProfile:
    """Batch range of one optimisation profile.

    Attributes:
        name: Deployment mode it serves.
        min: Smallest batch.
        opt: Batch TensorRT tunes tactics for.
        max: Largest batch.
    """

    name: str
    min: int
    opt: int
    max: int

    def __post_init__(self) -> None:
        if not 1 <= self.min <= self.opt <= self.max:
            raise ExportError(f"profile {self.name!r} needs 1 ≤ min ≤ opt ≤ max, got {self.min}/{self.opt}/{self.max}")

    @property
    def static(self) -> bool:
        """True when min = opt = max (required on DLA)."""
        return self.min == self.max


def derive_profiles(modes: tuple[str, ...], batch: int = 8, max_batch: int = 16) -> list[BatchProfile]:
    """Profiles for the requested deployment modes.

    Args:
        modes: Subset of `DEPLOYMENT_MODES`, in the order the engine should hold them (profile 0
            is what a context uses by default).
        batch: Throughput ``opt`` batch, and the static DLA batch.
        max_batch: Throughput ``max`` batch.

    Returns:
        One `BatchProfile` per mode.

    Raises:
        ExportError: Unknown or repeated modes, or DLA mixed with dynamic profiles.
    """
    unknown = [m for m in modes if m not in DEPLOYMENT_MODES]
    if unknown or not modes or len(set(modes)) != len(modes):
        raise ExportError(f"deployment modes must be distinct values of {DEPLOYMENT_MODES}, got {modes}")
    if "dla" in modes and len(modes) > 1:
        raise ExportError("a DLA engine holds one static profile; build latency/throughput engines separately")
    table = {
        "latency": BatchProfile("latency", 1, 1, 1),
        "throughput": BatchProfile("throughput", 1, min(batch, max_batch), max_batch),
        "dla": BatchProfile("dla", batch, batch, batch),
    }
    return [table[m] for m in modes]


def profile_shapes(profile: BatchProfile, tile: int) -> dict[str, tuple[Shape, Shape, Shape]]:
    """``(min, opt, max)`` shapes per input, as `IOptimizationProfile.set_shape` and trtexec take them.

    Args:
        profile: The batch range.
        tile: Tile side T.

    Returns:
        ``{input name: (min shape, opt shape, max shape)}``.
    """
    lo, opt, hi = (input_shapes(b, tile) for b in (profile.min, profile.opt, profile.max))
    return {name: (lo[name], opt[name], hi[name]) for name in lo}
