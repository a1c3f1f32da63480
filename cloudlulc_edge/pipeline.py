"""Mapping a pair end to end: read → tile → predict → blend → write, in bounded memory.

`map_pair` wires the stages (`architecture.md`): a producer thread reads the scene one tile row
at a time (reflect-padded, all-nodata tiles dropped) and queues tile batches; the calling
thread runs the backend on each batch, feeds the probabilities to the `RowBlender`, and writes
finished rows straight into the map. Peak memory is a few tile rows of inputs plus one tile row
of accumulators, whatever the scene height.

`map_plan` maps many pairs; a `CloudLULCError` in one scene is recorded in its report and the
batch goes on. A re-run skips scenes whose map already exists (maps only appear, by rename, when
complete).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cloudlulc_edge.backends.base import Backend, TileBatch
from cloudlulc_edge.claims import SceneClaim
from cloudlulc_edge.contract import DEFAULT_CONTRACT, InputContract
from cloudlulc_edge.errors import CloudLULCError, ResourceLimitError
from cloudlulc_edge.io.scene import SceneReader
from cloudlulc_edge.pairing import Pair
from cloudlulc_edge.tiling import RowBlender, TileGrid, reflect_index
from cloudlulc_edge.writer import MapWriter

__all__ = [
    "MapOptions",
    "SceneReport",
    "estimate_scene_memory_mb",
    "iter_tile_batches",
    "map_pair",
    "map_plan",
    "output_path",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MapOptions:
    """How to map a scene.

    Attributes:
        tile: Tile side (the model's tile).
        overlap: Overlap between tiles, pixels (even).
        batch_size: Tiles per backend call.
        class_scheme: Output codes (``worldcover``, ``dynamicworld``, ``native``).
        resolution: Output resolution in metres (None: 10 m for SAFE, the finest band for GeoTIFF).
        confidence: Also write a confidence COG.
        stac: Also write a STAC item.
        resume: Skip pairs whose map already exists.
        s1_missing: ``map`` (use the model's S1-missing path, tagged) or ``skip`` pairs without S1.
        s2_offset: DN offset for GeoTIFF S2 scenes that carry none.
        s2_quantification: DN divisor for GeoTIFF S2 scenes that carry none.
        prefetch: Tile batches the reader may queue ahead of the model.
        max_memory_mb: Refuse scenes whose estimated peak (`estimate_scene_memory_mb`) exceeds this.
    """

    tile: int = 512
    overlap: int = 64
    batch_size: int = 4
    class_scheme: str = "worldcover"
    resolution: int | None = None
    confidence: bool = False
    stac: bool = True
    resume: bool = True
    s1_missing: str = "map"
    s2_offset: float | None = None
    s2_quantification: float | None = None
    prefetch: int = 1
    max_memory_mb: int | None = None


#: Bytes per tile pixel per batch item for the model's activations (cloudlulc_edge at 512² batch 4
#: peaks ≈ 270 MB on CPU, `bench/model_cost.py`), rounded up.
_MODEL_BYTES_PER_PIXEL = 300
#: Process baseline: torch, GDAL's block cache (GDAL_CACHEMAX, 512 MB by default in the CLI) and code.
_BASELINE_MB = 750


def estimate_scene_memory_mb(width: int, options: MapOptions, channels: int = 14, classes: int = 6) -> float:
    """Estimated peak memory of mapping a scene of ``width`` grid columns (height never matters).

    The terms follow the data flow: a reflect-padded input strip of one tile row (double-buffered
    by the reader thread), the blender's accumulators for two tile rows, the queued tile batches,
    the model's activations and a fixed baseline. It errs high: ``bench/map_scene.py`` measured
    1585 / 1811 MiB peak RSS at 5490² / 10980² (tile 512, batch 4), where this gives 1677 / 2170.
    A bound to budget with, not a guarantee.
    """
    tile, batch = options.tile, options.batch_size
    strip = 2 * (channels + 2) * tile * (width + options.overlap) * 4
    blender = 2 * (classes + 1) * tile * (width + options.overlap) * 4
    batches = (options.prefetch + 1) * batch * (channels + 2) * tile * tile * 4
    model = _MODEL_BYTES_PER_PIXEL * batch * tile * tile
    return _BASELINE_MB + (strip + blender + batches + model) / 2**20


@dataclass
class SceneReport:
    """Outcome of one pair.

    Attributes:
        name: Pair name (S2 product id).
        status: ``done``, ``skipped`` (resume or S1 missing) or ``failed``.
        output: Map path (when done or skipped as existing).
        error: Error message (when failed) or skip reason.
        dt_days: S1 − S2 time difference.
        s1_coverage_pct: S1 coverage of the S2 footprint (from pairing).
        cloud_pct: S2 cloud fraction, where known.
        mapped_pct: Share of the grid that received a class.
        tiles: Tiles predicted.
        tiles_skipped: All-nodata tiles not predicted.
        seconds: Wall time.
        stages: Seconds per stage (``open``, ``read``, ``predict``, ``blend_write``, ``finalize``).
    """

    name: str
    status: str
    output: str | None = None
    error: str | None = None
    dt_days: float | None = None
    s1_coverage_pct: float | None = None
    cloud_pct: float | None = None
    mapped_pct: float | None = None
    tiles: int = 0
    tiles_skipped: int = 0
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return asdict(self)


_DONE = object()


def iter_tile_batches(
    reader: SceneReader, grid: TileGrid, batch_size: int, stages: dict[str, float]
) -> Iterator[TileBatch | tuple[str, int]]:
    """Yields batches of tiles in row-major order; all-nodata tiles are dropped.

    Each tile row is read in chunks of ``batch_size`` tiles across (reflected at the scene
    edges), so input memory depends on neither scene height nor width. After the last batch,
    yields ``("skipped", n)`` with the number of dropped tiles.
    """
    t = grid.tile
    pending: list[tuple[int, int, Any, Any, Any, Any]] = []
    skipped = 0
    col_origins = grid.col_origins
    chunks = [col_origins[i : i + batch_size] for i in range(0, len(col_origins), batch_size)]
    for top, chunk in ((top, chunk) for top in grid.row_origins for chunk in chunks):
        start = time.perf_counter()
        rows = reflect_index(np.arange(top, top + t), grid.height)
        chunk_cols = reflect_index(np.arange(chunk[0], chunk[-1] + t), grid.width)
        lo, hi = int(rows.min()), int(rows.max()) + 1
        c_lo, c_hi = int(chunk_cols.min()), int(chunk_cols.max()) + 1
        strip = reader.read(lo, hi - lo, c_lo, c_hi - c_lo)
        r = rows - lo
        in_rows = (np.arange(top, top + t) >= 0) & (np.arange(top, top + t) < grid.height)
        stages["read"] += time.perf_counter() - start
        for left in chunk:
            cols = reflect_index(np.arange(left, left + t), grid.width) - c_lo
            in_cols = (np.arange(left, left + t) >= 0) & (np.arange(left, left + t) < grid.width)
            s2_valid = strip.s2_valid[np.ix_(r, cols)]
            if not s2_valid[np.ix_(in_rows, in_cols)].any():
                skipped += 1
                continue
            # Gather the tile directly: slicing rows first would copy the whole (C, t, W) row band per tile.
            s2 = strip.s2[np.ix_(np.arange(strip.s2.shape[0]), r, cols)]
            s1 = strip.s1[np.ix_(np.arange(strip.s1.shape[0]), r, cols)] if strip.s1 is not None else None
            s1_valid = strip.s1_valid[np.ix_(r, cols)] if strip.s1_valid is not None else None
            pending.append((top, left, s2, s2_valid, s1, s1_valid))
            if len(pending) == batch_size:
                yield _batch(pending)
                pending = []
        del strip  # release this chunk's inputs before the next read
    if pending:
        yield _batch(pending)
    yield ("skipped", skipped)


def _batch(items: list[tuple[int, int, Any, Any, Any, Any]]) -> TileBatch:
    has_s1 = items[0][4] is not None
    return TileBatch(
        s2=np.stack([i[2] for i in items]),
        s2_valid=np.stack([i[3] for i in items]),
        s1=np.stack([i[4] for i in items]) if has_s1 else None,
        s1_valid=np.stack([i[5] for i in items]) if has_s1 else None,
        tops=[i[0] for i in items],
        lefts=[i[1] for i in items],
    )


def _produce(source: Iterator[Any], out: queue.Queue[Any], stop: threading.Event) -> None:
    """Producer thread: moves items from ``source`` into ``out``; exceptions travel as items."""
    try:
        for item in source:
            while not stop.is_set():
                try:
                    out.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return
    except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
        out.put(exc)
        return
    out.put(_DONE)


def output_path(pair: Pair, output_dir: Path) -> Path:
    """Map path of a pair."""
    return output_dir / f"{pair.name}_lulc.tif"


def map_pair(
    pair: Pair,
    backend: Backend,
    output_dir: str | Path,
    options: MapOptions = MapOptions(),
    contract: InputContract = DEFAULT_CONTRACT,
    on_tiles: Callable[[int, int], None] | None = None,
) -> SceneReport:
    """Maps one pair to ``<output_dir>/<S2 name>_lulc.tif`` (+ STAC item, optional confidence).

    Args:
        pair: The pair to map.
        backend: Inference backend.
        output_dir: Output folder (created if missing).
        options: Mapping options.
        contract: Normalisation contract of the model.
        on_tiles: Progress callback ``(tiles_done, tiles_total)``.

    Returns:
        The scene report (``done`` or ``skipped``).

    Raises:
        CloudLULCError: The scene cannot be read, paired or written; nothing is left behind.
    """
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = output_path(pair, out_dir)
    report = SceneReport(pair.name, "done", str(target), dt_days=pair.dt_days, s1_coverage_pct=pair.s1_coverage_pct,
                         cloud_pct=pair.s2.attrs.get("cloud_pct"))  # fmt: skip
    with SceneClaim(target) as claim:
        if not claim.acquired:
            report.status, report.error, report.output = "skipped", f"being mapped by {claim.holder()}", None
            return report
        claim.clear_stale()  # what a killed run left of this scene
        if options.resume and target.exists():
            report.status, report.error = "skipped", "map exists (resume)"
            return report
        if not pair.s1 and options.s1_missing == "skip":
            report.status, report.error, report.output = "skipped", "no S1 pair (s1_missing=skip)", None
            return report
        return _map_claimed(pair, backend, target, options, contract, on_tiles, report, claim.workdir)


def _map_claimed(
    pair: Pair,
    backend: Backend,
    target: Path,
    options: MapOptions,
    contract: InputContract,
    on_tiles: Callable[[int, int], None] | None,
    report: SceneReport,
    workdir: Path,
) -> SceneReport:
    """`map_pair` once the scene is claimed: read → tile → predict → blend → write."""
    stages: dict[str, float] = defaultdict(float)
    t0 = time.perf_counter()
    reader = SceneReader(pair.s2, pair.s1, options.resolution, workdir=workdir, s2_offset=options.s2_offset,
                         s2_quantification=options.s2_quantification, contract=contract)  # fmt: skip
    stages["open"] = time.perf_counter() - t0
    if options.max_memory_mb is not None:
        need = estimate_scene_memory_mb(reader.grid.width, options)
        if need > options.max_memory_mb:
            reader.close()
            raise ResourceLimitError(f"mapping this {reader.grid.height}×{reader.grid.width} px scene needs ≈{need:.0f} "
                                     f"MiB, over --max-memory {options.max_memory_mb} MiB; lower --tile or "
                                     "--batch-size, or raise the limit", Path(pair.s2.path))  # fmt: skip
    writer: MapWriter | None = None
    stop = threading.Event()
    try:
        grid = TileGrid(reader.grid.height, reader.grid.width, options.tile, options.overlap)
        blender = RowBlender(grid, backend.num_classes)
        writer = MapWriter(target, reader.grid, options.class_scheme, options.confidence, options.stac)
        items: queue.Queue[Any] = queue.Queue(maxsize=max(1, options.prefetch))
        producer = threading.Thread(
            target=_produce, args=(iter_tile_batches(reader, grid, options.batch_size, stages), items, stop),
            name=f"read-{pair.name}", daemon=True,
        )  # fmt: skip
        producer.start()
        total = len(grid)
        while True:
            item = items.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, tuple):
                report.tiles_skipped = int(item[1])
                continue
            start = time.perf_counter()
            probs = backend.predict(item)
            stages["predict"] += time.perf_counter() - start
            start = time.perf_counter()
            for k in range(len(item)):
                for rows in blender.add(probs[k], item.s2_valid[k], item.tops[k], item.lefts[k]):
                    writer.write(rows)
            stages["blend_write"] += time.perf_counter() - start
            report.tiles += len(item)
            if on_tiles is not None:
                on_tiles(report.tiles + report.tiles_skipped, total)
        start = time.perf_counter()
        for rows in blender.finish():
            writer.write(rows)
        tags = _tags(pair, reader, backend, options)
        outputs = writer.finalize(tags, pair.s2.footprint, pair.s2.sensing_time)
        stages["finalize"] = time.perf_counter() - start
        report.mapped_pct = round(100.0 * outputs.mapped_pixels / (reader.grid.width * reader.grid.height), 3)
    except BaseException:
        stop.set()
        if writer is not None:
            writer.abort()
        raise
    finally:
        reader.close()
    report.seconds = round(time.perf_counter() - t0, 3)
    report.stages = {k: round(v, 3) for k, v in stages.items()}
    return report


def _tags(pair: Pair, reader: SceneReader, backend: Backend, options: MapOptions) -> dict[str, str]:
    ident = backend.identity
    tags = {
        **reader.tags(),
        "S2_CLOUD_PCT": f"{pair.s2.attrs.get('cloud_pct')}",
        "S1_PRODUCTS": ",".join(p.product_id for p in pair.s1) or "none",
        "S1_S2_DT_DAYS": f"{pair.dt_days}" if pair.dt_days is not None else "none",
        "S1_COVERAGE_PCT": f"{pair.s1_coverage_pct}",
        "S1_MISSING": "true" if not pair.s1 else "false",
        "MODEL_NAME": ident.name,
        "MODEL_VERSION": ident.version,
        "MODEL_SHA256": ident.sha256,
        "TILE": str(options.tile),
        "OVERLAP": str(options.overlap),
        "BLEND": "raised-cosine softmax probabilities",
    }
    return tags


def map_plan(
    pairs: Sequence[Pair],
    backend: Backend,
    output_dir: str | Path,
    options: MapOptions = MapOptions(),
    contract: InputContract = DEFAULT_CONTRACT,
    on_scene: Callable[[SceneReport], None] | None = None,
    on_tiles: Callable[[str, int, int], None] | None = None,
) -> list[SceneReport]:
    """Maps every pair; one scene's failure is reported and does not stop the others.

    Args:
        pairs: Pairs to map (a plan or one shard of it).
        backend: Inference backend.
        output_dir: Output folder.
        options: Mapping options.
        contract: Normalisation contract of the model.
        on_scene: Called with each finished report.
        on_tiles: Progress callback ``(scene name, tiles_done, tiles_total)``.

    Returns:
        One report per pair, in order.
    """
    reports = []
    for pair in pairs:
        start = time.perf_counter()
        try:
            callback = (lambda d, t, n=pair.name: on_tiles(n, d, t)) if on_tiles is not None else None
            report = map_pair(pair, backend, output_dir, options, contract, callback)
        except Exception as exc:
            if isinstance(exc, CloudLULCError):
                log.error("%s failed: %s", pair.name, exc)
            else:
                log.exception("%s failed with an unexpected error", pair.name)
            report = SceneReport(pair.name, "failed", error=f"{type(exc).__name__}: {exc}", dt_days=pair.dt_days,
                                 s1_coverage_pct=pair.s1_coverage_pct,
                                 seconds=round(time.perf_counter() - start, 3))  # fmt: skip
        reports.append(report)
        if on_scene is not None:
            on_scene(report)
    return reports
