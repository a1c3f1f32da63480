"""How much a map depends on where the tile grid falls: grid agreement, seam index, whole-scene agreement.

A model whose output at a pixel depends only on a bounded neighbourhood gives the same map
whatever the tile grid, once the overlap covers that neighbourhood. One with tile-global
statistics (InstanceNorm, global pooling, circular convolutions, global attention) does not, and
its maps show straight class boundaries along the tile grid. Three measures, each on the class
maps the pipeline writes (`measure_tile_dependence` maps the scene itself):

* **grid agreement**: the share of pixels with the same class in two maps whose tile grids are
  offset by half a stride (`MapOptions.grid_offset`), and in two maps with a narrow and a wide
  overlap;
* **seam index** (`seam_index`): class changes between neighbouring pixels measured per line
  (per column boundary and per row boundary). ``boundary_ratio`` is the mean change rate on the
  lines where a tile edge falls divided by the mean rate on all other lines (1: no seams).
  ``band_p95_over_median`` is the issue's form: the 95th-percentile change rate of the lines
  inside the overlap bands over the median rate of the lines outside them (a seam is a line with
  a spike of changes); it is above 1 even for a seamless map, since a 95th percentile exceeds a
  median, so ``band_p95_over_p95`` compares like with like;
* **whole-scene agreement**: the tiled map against a single pass over the whole scene (one tile
  covering it, where the scene fits in memory).
"""

from __future__ import annotations

import itertools
import math
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio

from cloudlulc_edge.backends.base import Backend
from cloudlulc_edge.pairing import Pair
from cloudlulc_edge.pipeline import MapOptions, map_pair
from cloudlulc_edge.tiling import TileGrid

__all__ = ["SeamIndex", "TileDependence", "agreement", "measure_tile_dependence", "seam_index"]


@dataclass(frozen=True)
class SeamIndex:
    """Class changes on tile-boundary lines against the rest of the map.

    Attributes:
        boundary_ratio: Mean change rate on tile-edge lines / mean rate on every other line.
        band_p95_over_median: 95th-percentile rate of lines inside overlap bands / median rate outside.
        band_p95_over_p95: 95th-percentile rate inside overlap bands / 95th percentile outside.
        lines: Lines (column and row boundaries) with at least one valid neighbour pair.
    """

    boundary_ratio: float
    band_p95_over_median: float
    band_p95_over_p95: float
    lines: int


def _line_rates(classes: npt.NDArray[np.integer], valid: npt.NDArray[np.bool_], axis: int) -> npt.NDArray[np.float64]:
    """Change rate across each boundary between neighbouring lines along ``axis`` (NaN without valid pairs)."""
    a, b = (classes[:, :-1], classes[:, 1:]) if axis == 1 else (classes[:-1], classes[1:])
    both = (valid[:, :-1] & valid[:, 1:]) if axis == 1 else (valid[:-1] & valid[1:])
    across = 0 if axis == 1 else 1  # sum over the other axis: one rate per boundary
    changes, pairs = ((a != b) & both).sum(axis=across), both.sum(axis=across)
    return np.where(pairs > 0, changes / np.maximum(pairs, 1), np.nan)


def _edges_and_bands(origins: list[int], tile: int, length: int) -> tuple[set[int], npt.NDArray[np.bool_]]:
    """Boundary indices (between line k−1 and k, as k − 1) where tile edges fall, and a mask of boundaries in overlaps."""
    edges = {e - 1 for o in origins for e in (o, o + tile) if 0 < e < length}
    inside = np.zeros(max(length - 1, 0), dtype=bool)
    for first, second in itertools.pairwise(origins):
        lo, hi = max(second, 0), min(first + tile, length)  # the overlap of two neighbouring tiles
        inside[max(lo - 1, 0) : max(hi - 1, 0)] = True
    return edges, inside


def seam_index(classes: npt.NDArray[np.integer], valid: npt.NDArray[np.bool_], grid: TileGrid) -> SeamIndex:
    """The seam index of a class map made with ``grid`` (see the module docstring).

    Args:
        classes: (H, W) class map.
        valid: (H, W) pixels with a class.
        grid: The tile grid the map was made with.
    """
    col_edges, col_bands = _edges_and_bands(grid.col_origins, grid.tile, grid.width)
    row_edges, row_bands = _edges_and_bands(grid.row_origins, grid.tile, grid.height)
    rates = np.concatenate([_line_rates(classes, valid, 1), _line_rates(classes, valid, 0)])
    edge = np.zeros(rates.shape, dtype=bool)
    edge[sorted(col_edges)] = True
    edge[[grid.width - 1 + r for r in sorted(row_edges)]] = True
    band = np.concatenate([col_bands, row_bands])
    ok = np.isfinite(rates)

    def stat(values: npt.NDArray[np.float64], how: str) -> float:
        if not values.size:
            return math.nan
        return float(np.mean(values) if how == "mean" else np.median(values) if how == "median"
                     else np.percentile(values, 95))  # fmt: skip

    def ratio(a: float, b: float) -> float:
        return a / b if b > 0 and math.isfinite(a) else math.nan  # NaN: no changes at all to compare with

    edges, others = rates[ok & edge], rates[ok & ~edge]
    inside, outside = rates[ok & band], rates[ok & ~band]
    return SeamIndex(
        boundary_ratio=ratio(stat(edges, "mean"), stat(others, "mean")),
        band_p95_over_median=ratio(stat(inside, "p95"), stat(outside, "median")),
        band_p95_over_p95=ratio(stat(inside, "p95"), stat(outside, "p95")),
        lines=int(ok.sum()),
    )


def agreement(a: npt.NDArray[np.integer], b: npt.NDArray[np.integer], valid: npt.NDArray[np.bool_]) -> float:
    """Share of ``valid`` pixels with the same class in ``a`` and ``b``."""
    n = int(valid.sum())
    return float((a[valid] == b[valid]).sum()) / n if n else float("nan")


@dataclass(frozen=True)
class TileDependence:
    """Tile-dependence of one scene's map.

    Attributes:
        scene: Pair name.
        shape: (H, W) of the map.
        tile: Tile side.
        overlap: Overlap of the reference map.
        half_stride_agreement: Reference map vs the grid offset by half a stride.
        wide_overlap: The wide overlap compared against.
        overlap_agreement: Reference map vs the wide-overlap map.
        whole_scene_agreement: Reference map vs one pass over the whole scene (None when skipped).
        seam: Seam index of the reference map.
        seam_whole_scene: Seam index of the whole-scene map on the reference grid's lines (the
            floor: what the scene's own class boundaries give on those lines).
        pixels: Pixels compared (valid in every map).
    """

    scene: str
    shape: tuple[int, int]
    tile: int
    overlap: int
    half_stride_agreement: float
    wide_overlap: int
    overlap_agreement: float
    whole_scene_agreement: float | None
    seam: SeamIndex
    seam_whole_scene: SeamIndex | None
    pixels: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def _read_map(path: Path) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_]]:
    with rasterio.open(path) as ds:
        classes = ds.read(1)
        return classes, classes != ds.nodata


def measure_tile_dependence(
    pair: Pair,
    backend: Backend,
    options: MapOptions,
    wide_overlap: int = 192,
    whole_scene_max_pixels: int = 4_000_000,
    workdir: str | Path | None = None,
) -> TileDependence:
    """Maps ``pair`` with the reference grid, a grid offset by half a stride, a wide overlap and (if it fits) one pass.

    Args:
        pair: The scene.
        backend: The model (torch, for the whole-scene pass: graphs fix their tile).
        options: The reference mapping options (tile, overlap, resolution…).
        wide_overlap: The wider overlap to compare with.
        whole_scene_max_pixels: Largest padded scene mapped in one pass.
        workdir: Where the maps go (default: a temporary folder, removed afterwards).

    Raises:
        CloudLULCError: The scene cannot be mapped.
    """
    base = replace(options, class_scheme="native", stac=False, confidence=False, resume=False, grid_offset=0)
    with tempfile.TemporaryDirectory(prefix="cloudlulc-tiles-", dir=workdir) as tmp:
        root = Path(tmp)

        def mapped(name: str, opts: MapOptions) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_]]:
            report = map_pair(pair, backend, root / name, opts)
            assert report.output is not None
            return _read_map(Path(report.output))

        reference, valid = mapped("reference", base)
        h, w = reference.shape
        grid = TileGrid(h, w, base.tile, base.overlap)
        shifted, valid_s = mapped("shifted", replace(base, grid_offset=grid.stride // 2))
        wide, valid_w = mapped("wide", replace(base, overlap=wide_overlap))
        every = valid & valid_s & valid_w
        whole_agreement, whole_seam = None, None
        side = 16 * math.ceil((max(h, w) + base.overlap) / 16)
        if side * side <= whole_scene_max_pixels:
            whole, valid_1 = mapped("whole", replace(base, tile=side, batch_size=1))
            every &= valid_1
            whole_agreement = agreement(reference, whole, every)
            whole_seam = seam_index(whole, valid_1, grid)
        return TileDependence(
            scene=pair.name,
            shape=(h, w),
            tile=base.tile,
            overlap=base.overlap,
            half_stride_agreement=agreement(reference, shifted, every),
            wide_overlap=wide_overlap,
            overlap_agreement=agreement(reference, wide, every),
            whole_scene_agreement=whole_agreement,
            seam=seam_index(reference, valid, grid),
            seam_whole_scene=whole_seam,
            pixels=int(every.sum()),
        )
