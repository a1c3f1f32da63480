"""Mapping a pair end to end: read → tile → predict → blend → write, in bounded memory.

`map_pair` wires the stages (`architecture.md`): a producer thread runs the `tiling.Tiler` over
the scene reader (one tile row at a time, reflect-padded, all-nodata tiles dropped) and queues
tile batches; the calling thread runs the backend on each batch, feeds the probabilities to the
`RowBlender`, and writes finished rows straight into the map. Peak memory is a few tile rows of inputs plus one tile row
of accumulators, whatever the scene height.

`map_plan` maps many pairs; a `CloudLULCError` in one scene is recorded in its report and the
batch goes on. A re-run skips scenes whose map already exists *and* was made with the same
settings (`map_settings`, recorded in the map's ``MAP_SETTINGS`` tag; maps only appear, by rename,
when complete); a map made with other settings is never silently kept: that scene fails with a
message saying what differs (``--no-resume`` replaces it).
"""

from __future__ import annotations

import json
import logging
import math
import queue
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from cloudlulc_edge.backends.base import Backend
from cloudlulc_edge.claims import SceneClaim
from cloudlulc_edge.contract import CLASS_SCHEMES, DEFAULT_CONTRACT, InputContract
from cloudlulc_edge.errors import CloudLULCError, OptionsError, OutputError, ResourceLimitError
from cloudlulc_edge.io.gdal_env import GDAL_CACHE_MB, gdal_env
from cloudlulc_edge.io.s1_terrain import TerrainCorrection
from cloudlulc_edge.io.scene import SceneReader
from cloudlulc_edge.pairing import Pair
from cloudlulc_edge.tiling import EMIT_ROWS, RowBlender, TileGrid, Tiler
from cloudlulc_edge.writer import MAP_SETTINGS_TAG, MapWriter, read_map_settings

__all__ = [
    "ClassSchemeName",
    "MapOptions",
    "S1Missing",
    "SceneAction",
    "SceneReport",
    "check_resumable",
    "estimate_scene_memory_mb",
    "failed_report",
    "interrupted_report",
    "map_pair",
    "map_plan",
    "map_settings",
    "output_path",
    "s1_radiometry_check",
    "scene_action",
]

log = logging.getLogger(__name__)

ClassSchemeName = Literal["worldcover", "dynamicworld", "native"]
S1Missing = Literal["map", "skip"]


@dataclass(frozen=True)
class MapOptions:
    """How to map a scene; every field is validated on construction.

    Attributes:
        tile: Tile side, pixels (the model's tile; ≥ 16).
        overlap: Overlap between tiles, pixels (even, < tile).
        batch_size: Tiles per backend call.
        class_scheme: Output codes (``worldcover``, ``dynamicworld``, ``native``).
        resolution: Output resolution in metres (None: 10 m for SAFE, the finest band for GeoTIFF).
        confidence: Also write a confidence COG.
        optics: Also write ``<map>_optics.tif``: per pixel, whether the optics were usable or the
            class was made through cloud (`cloudlulc_edge.optics`; from the SCL where the product has
            one, else a spectral cloud proxy that reads the bands a second time).
        stac: Also write a STAC item.
        resume: Skip pairs whose map already exists with the same `map_settings`; a map made
            with other settings fails its scene (never kept silently, never replaced unasked).
        s1_missing: ``map`` (use the model's S1-missing path, tagged) or ``skip`` pairs without S1.
        s2_offset: DN offset for GeoTIFF S2 scenes that carry none.
        s2_quantification: DN divisor for GeoTIFF S2 scenes that carry none.
        prefetch: Tile batches the reader may queue ahead of the model.
        max_memory_mb: Refuse scenes whose estimated peak (`estimate_scene_memory_mb`) exceeds this.
        grid_offset: Shift the tile grid up and left by this many pixels (0 ≤ offset < tile − overlap;
            tile-dependence measurements map one scene with two grids).
        terrain: Range-Doppler terrain correction of S1 SAFE products on a DEM (``--dem``; None:
            GCP geocoding on the ellipsoid).
        allow_radiometry_mismatch: Map although the S1 radiometry (σ⁰, or γ⁰ with ``--rtc``)
            differs from the model card's (tagged); refused otherwise.
        verify_checksums: Check every SAFE file read against the SHA3-256 / MD5 of its
            ``manifest.safe`` (``--skip-checksums`` turns it off; sizes are always checked).

    Raises:
        OptionsError: A value is out of range or the values contradict each other (the message
            names the option).
    """

    tile: int = 512
    overlap: int = 64
    batch_size: int = 4
    class_scheme: ClassSchemeName = "worldcover"
    resolution: int | None = None
    confidence: bool = False
    optics: bool = False
    stac: bool = True
    resume: bool = True
    s1_missing: S1Missing = "map"
    s2_offset: float | None = None
    s2_quantification: float | None = None
    prefetch: int = 1
    max_memory_mb: int | None = None
    grid_offset: int = 0
    terrain: TerrainCorrection | None = None
    allow_radiometry_mismatch: bool = False
    verify_checksums: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as recorded in run reports."""
        out = asdict(self)
        out["terrain"] = self.terrain.to_dict() if self.terrain is not None else None
        return out

    @property
    def s1_radiometry(self) -> str:
        """What S1 SAFE products are calibrated to: ``gamma0_terrain`` with ``--rtc``, else ``sigma0``."""
        return self.terrain.radiometry if self.terrain is not None else "sigma0"

    def __post_init__(self) -> None:
        checks = [
            (self.tile >= 16, f"--tile must be at least 16, got {self.tile}"),
            (
                self.overlap % 2 == 0 and 0 <= self.overlap < self.tile,
                f"--overlap must be even and smaller than the tile ({self.tile}), got {self.overlap}",
            ),
            (self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}"),
            (
                self.class_scheme in CLASS_SCHEMES,
                f"--class-scheme must be one of {', '.join(CLASS_SCHEMES)}, got {self.class_scheme!r}",
            ),
            (
                self.resolution is None or 1 <= self.resolution <= 1000,
                f"--resolution must be a pixel size in metres (1–1000), got {self.resolution}",
            ),
            (self.s1_missing in ("map", "skip"), f"--s1-missing must be map or skip, got {self.s1_missing!r}"),
            (
                self.s2_offset is None or math.isfinite(self.s2_offset),
                f"--s2-offset must be a finite number, got {self.s2_offset}",
            ),
            (
                self.s2_quantification is None
                or (math.isfinite(self.s2_quantification) and self.s2_quantification > 0),
                f"--s2-quantification must be a positive number, got {self.s2_quantification}",
            ),
            (self.prefetch >= 1, f"prefetch must be at least 1, got {self.prefetch}"),
            (
                self.max_memory_mb is None or self.max_memory_mb >= 256,
                f"--max-memory must be at least 256 MiB, got {self.max_memory_mb}",
            ),
            (
                0 <= self.grid_offset < self.tile - self.overlap,
                f"grid_offset must lie in [0, {self.tile - self.overlap}), got {self.grid_offset}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise OptionsError(message)

    def with_tile(self, tile: int) -> MapOptions:
        """These options at another tile side (a graph or engine fixes its own), validated again.

        Raises:
            OptionsError: The overlap or grid offset does not fit the new tile.
        """
        return self if tile == self.tile else replace(self, tile=tile)


def s1_radiometry_check(options: MapOptions, model_radiometry: str) -> str | None:
    """Compares the S1 radiometry the options produce with the one the model was trained on.

    Returns:
        None when they agree, else the mismatch as a tag text (``--allow-radiometry-mismatch``).

    Raises:
        OptionsError: They differ and the mismatch is not allowed.
    """
    if options.s1_radiometry == model_radiometry:
        return None
    text = f"model trained on {model_radiometry}, S1 mapped as {options.s1_radiometry}"
    if not options.allow_radiometry_mismatch:
        hint = "drop --rtc" if options.s1_radiometry == "gamma0_terrain" else "add --rtc (with --dem)"
        raise OptionsError(f"S1 radiometry mismatch: {text}; {hint}, or pass --allow-radiometry-mismatch "
                           "(the map is tagged)")  # fmt: skip
    return text


#: Host bytes per tile pixel of the one tile in the model at a time (both CPU backends run one tile
#: per call): ≈ 490 MB of onnxruntime arena and ≈ 430 MB of torch peak per 512² tile of the packaged
#: model (2-core AMD EPYC, 2026-12-01), rounded up. On a GPU the activations live in device memory.
_MODEL_BYTES_PER_PIXEL = 1900
#: Process baseline: Python, torch, rasterio, onnxruntime, the loaded model and its session (343 MiB
#: measured), plus GDAL's block cache (`GDAL_CACHE_MB`).
_BASELINE_MB = 343 + GDAL_CACHE_MB


def estimate_scene_memory_mb(width: int, options: MapOptions, channels: int = 14, classes: int = 6) -> float:
    """Estimated peak memory (MiB) of mapping a scene of ``width`` grid columns (height never matters).

    The terms follow the data flow: the reader's chunk of ``batch_size`` tiles across (with its
    per-band temporaries), the tile batches queued, being filled and being predicted, the one tile
    in the model, the blender's accumulator of one tile row plus one emitted block of rows and the
    writer's temporaries (`tiling.EMIT_ROWS`), and a fixed baseline. ``bench/scene_throughput.py``
    measured 1317 / 1390 MiB peak RSS at 5490² / 10980² (tile 512, batch 4, onnxruntime; 1218 MiB
    at 10980² with batch 1), where this gives 1461 / 1569 (+11 / +13 %; 1362, +12 %): a bound to
    budget with, not a guarantee (`tests/bench/test_scene_memory.py` holds it to the recorded runs).
    """
    tile, batch, overlap = options.tile, options.batch_size, options.overlap
    chunk_cols = min(width + overlap, batch * (tile - overlap) + overlap)
    reader = 1.5 * (channels + 2) * tile * chunk_cols * 4  # the float32 chunk and half again in temporaries
    batches = (options.prefetch + 2) * batch * (channels + 2) * tile * tile * 4
    blender = ((classes + 1) * tile + 2 * classes * EMIT_ROWS) * (width + overlap) * 4
    model = _MODEL_BYTES_PER_PIXEL * tile * tile
    return _BASELINE_MB + (reader + batches + blender + model) / 2**20


@dataclass
class SceneReport:
    """Outcome of one pair.

    Attributes:
        name: Pair name (S2 product id).
        status: ``done``, ``skipped`` (resume or S1 missing), ``failed``, or, when the run was stopped
            by a signal, ``interrupted`` (the scene in progress) and ``not_started``.
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
        s1_geocoding: How S1 was geocoded (``RD_DEM``, ``GCP_ELLIPSOID``, ``GEOTIFF_INPUT``), if any.
        s1_layover_shadow_pct: Share of the S1-imaged pixels masked as layover or shadow (``RD_DEM``).
        through_cloud_pct: Share of the pixels with S2 data whose optics were cloud or shadow
            (``optics``): how much of the map was made through cloud.
        replaces: ``watch --remap-on-better-s1``: what the replaced map was made with (``{"s1": [ids]}``).
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
    s1_geocoding: str | None = None
    s1_layover_shadow_pct: float | None = None
    through_cloud_pct: float | None = None
    replaces: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return asdict(self)


_DONE = object()


def _produce(source: Iterator[Any], out: queue.Queue[Any], stop: threading.Event) -> None:
    """Producer thread: moves items from ``source`` into ``out``; exceptions travel as items.

    The run's GDAL options (`gdal_env`: the bounded block cache, no directory listing) are set
    again here: rasterio's ``Env`` is per thread, and this thread does the reads.
    """
    try:
        with gdal_env():
            finished = _move_items(source, out, stop)
    except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
        out.put(exc)
        return
    if finished:
        out.put(_DONE)


def _move_items(source: Iterator[Any], out: queue.Queue[Any], stop: threading.Event) -> bool:
    """Puts every item of ``source`` into ``out``; False when ``stop`` was set first."""
    for item in source:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                break
            except queue.Full:
                continue
        if stop.is_set():
            return False
    return True


#: What a pair name must look like to become a file name inside OUTPUT: no separators, no control
#: characters, not hidden (our temporaries are), at most 200 characters.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,199}")


def output_path(pair: Pair, output_dir: Path) -> Path:
    """Map path of a pair: ``<output_dir>/<pair name>_lulc.tif``, always directly inside ``output_dir``.

    Raises:
        OutputError: The pair name (an S2 product id, or a GeoTIFF scene's name, possibly from a
            plan file) is not a plain file name: a path separator, ``..``, a control character, a
            leading dot or more than 200 characters.
    """
    if not _SAFE_NAME.fullmatch(pair.name) or ".." in pair.name:
        raise OutputError(f"the scene name {pair.name[:80]!r} cannot name a map file (letters, digits, '._+-' "
                          "only, no path, at most 200); rename the scene", Path(pair.s2.path))  # fmt: skip
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
    with gdal_env():
        return _map_pair(pair, backend, Path(output_dir), options, contract, on_tiles)


def _map_pair(
    pair: Pair,
    backend: Backend,
    out_dir: Path,
    options: MapOptions,
    contract: InputContract,
    on_tiles: Callable[[int, int], None] | None,
) -> SceneReport:
    """`map_pair` inside the run's GDAL configuration: claim, resume check, then map."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = output_path(pair, out_dir)
    report = SceneReport(pair.name, "done", str(target), dt_days=pair.dt_days, s1_coverage_pct=pair.s1_coverage_pct,
                         cloud_pct=pair.s2.attrs.get("cloud_pct"))  # fmt: skip
    with SceneClaim(target) as claim:
        if not claim.acquired:
            report.status, report.error, report.output = "skipped", f"being mapped by {claim.holder()}", None
            return report
        claim.clear_stale()  # what a killed run left of this scene
        action, reason = scene_action(pair, backend, out_dir, options)
        if action == "skip":
            report.status, report.error = "skipped", reason
            report.output = str(target) if target.exists() else None
            return report
        return _map_claimed(pair, backend, target, options, contract, on_tiles, report, claim.workdir)


SceneAction = Literal["map", "replace", "skip"]


def scene_action(pair: Pair, backend: Backend, output_dir: Path, options: MapOptions) -> tuple[SceneAction, str]:
    """What mapping ``pair`` into ``output_dir`` would do now, and why (the rule `map_pair` follows).

    Reads only the existing map's tags; claims nothing and writes nothing (``--dry-run`` asks this).

    Returns:
        ``("map", why)``, ``("replace", why)`` (``--no-resume`` over an existing map) or ``("skip", why)``.

    Raises:
        OutputError: A map exists (resume) but is unreadable or was made with other settings (naming
            them), the map path is a symbolic link, or the pair's name cannot name a file.
    """
    target = output_path(pair, output_dir)
    if target.is_symlink():
        raise OutputError("the map path is a symbolic link; maps are never written or trusted through links — "
                          "move it away", target)  # fmt: skip
    exists = target.exists()
    if exists and options.resume:
        check_resumable(target, map_settings(pair, backend, options))
        return "skip", "map exists with the same settings (resume)"
    if not pair.s1 and options.s1_missing == "skip":
        return "skip", "no S1 pair (s1_missing=skip)"
    inputs = "S2 + S1" if pair.s1 else "S2 only (missing-SAR path)"
    if exists:
        return "replace", f"{inputs}; replaces the existing map (--no-resume)"
    return "map", f"{inputs}; no map yet"


#: `MapOptions` fields that change what a map holds (the others change how a run goes).
MAP_CONTENT_OPTIONS = ("tile", "overlap", "grid_offset", "class_scheme", "resolution", "s2_offset", "s2_quantification",
                       "terrain")  # fmt: skip
#: `MapOptions` fields that ask for outputs beside the map.
MAP_EXTRA_OUTPUTS = ("confidence", "optics", "stac")


def map_settings(pair: Pair, backend: Backend, options: MapOptions) -> dict[str, Any]:
    """What a pair's map depends on: the model and its runtime, the input products, the content options and outputs.

    Recorded as JSON in the map's ``MAP_SETTINGS`` tag; a resumed run skips a map only when its
    recorded settings equal the request's (its extra outputs may be more than asked for).
    """
    ident, opts = backend.identity, options.to_dict()
    settings = {"model": ident.name, "model_version": ident.version, "model_sha256": ident.sha256,
                **({"artifact_sha256": ident.artifact_sha256} if ident.artifact_sha256 else {}),
                "runtime": backend.runtime, "s2": pair.s2.product_id, "s1": [p.product_id for p in pair.s1],
                **{k: opts[k] for k in MAP_CONTENT_OPTIONS},
                "outputs": [k for k in MAP_EXTRA_OUTPUTS if opts[k]]}  # fmt: skip
    normal: dict[str, Any] = json.loads(json.dumps(settings))  # as read back from the tag
    return normal


def check_resumable(target: Path, settings: dict[str, Any]) -> None:
    """Returns when the map at ``target`` was made with ``settings`` and has every output they ask for.

    Raises:
        OutputError: It is not a readable map, records no settings, or records other ones (naming them).
    """
    recorded = read_map_settings(target)
    if recorded is None:
        why = "records no settings (an earlier version made it)"
    else:
        keys = sorted((set(recorded) | set(settings)) - {"outputs"})
        changed = [f"{k} {recorded.get(k)!r} → {settings.get(k)!r}" for k in keys if recorded.get(k) != settings.get(k)]
        lacking = sorted(set(settings["outputs"]) - set(recorded.get("outputs", [])))
        if not changed and not lacking:
            return
        why = "; ".join([*(["was made with other settings: " + "; ".join(changed)] if changed else []),
                         *([f"lacks the requested output(s) {', '.join(lacking)}"] if lacking else [])])  # fmt: skip
    raise OutputError(f"the map exists but {why}; pass --no-resume to replace it, or map into another folder", target)


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
    calibrates_s1 = any(p.kind == "s1_safe" for p in pair.s1)  # GeoTIFF S1 comes calibrated as it is
    radiometry_mismatch = s1_radiometry_check(options, backend.identity.s1_radiometry) if calibrates_s1 else None
    reader = SceneReader(pair.s2, pair.s1, options.resolution, workdir=workdir, s2_offset=options.s2_offset,
                         s2_quantification=options.s2_quantification, contract=contract,
                         terrain=options.terrain, verify_checksums=options.verify_checksums)  # fmt: skip
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
        grid = TileGrid(reader.grid.height, reader.grid.width, options.tile, options.overlap, options.grid_offset)
        blender = RowBlender(grid, backend.num_classes)
        writer = MapWriter(target, reader.grid, options.class_scheme, options.confidence, options.stac,
                           options.optics)  # fmt: skip
        items: queue.Queue[Any] = queue.Queue(maxsize=max(1, options.prefetch))
        tiler = Tiler(reader, grid, options.batch_size)
        producer = threading.Thread(target=_produce, args=(iter(tiler), items, stop), name=f"read-{pair.name}",
                                    daemon=True)  # fmt: skip
        producer.start()
        total = len(grid)
        if on_tiles is not None:
            on_tiles(0, total)  # the scene starts: its rate counts from here
        while True:
            item = items.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
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
        report.tiles_skipped = tiler.skipped
        stages["read"] = tiler.read_seconds
        start = time.perf_counter()
        for rows in blender.finish():
            writer.write(rows)
        tags = _tags(pair, reader, backend, options, radiometry_mismatch)
        if options.optics:
            tags["OPTICS_SOURCE"] = _write_optics(reader, writer)
            report.through_cloud_pct = writer.through_cloud_pct
        outputs = writer.finalize(tags, pair.s2.footprint, pair.s2.sensing_time)
        stages["finalize"] = time.perf_counter() - start
        report.mapped_pct = round(100.0 * outputs.mapped_pixels / (reader.grid.width * reader.grid.height), 3)
        report.s1_geocoding = tags.get("S1_GEOCODING")
        if "S1_LAYOVER_SHADOW_PCT" in tags:
            report.s1_layover_shadow_pct = float(tags["S1_LAYOVER_SHADOW_PCT"])
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


def _write_optics(reader: SceneReader, writer: MapWriter, rows: int = 512) -> str:
    """Writes the optics layer strip by strip; returns its evidence source."""
    source = ""
    for row0 in range(0, reader.grid.height, rows):
        categories, source = reader.optics(row0, min(rows, reader.grid.height - row0))
        writer.write_optics(row0, categories)
    return source


def _tags(pair: Pair, reader: SceneReader, backend: Backend, options: MapOptions,
          radiometry_mismatch: str | None) -> dict[str, str]:  # fmt: skip
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
        **({"MODEL_ARTIFACT_SHA256": ident.artifact_sha256} if ident.artifact_sha256 else {}),
        "TILE": str(options.tile),
        "OVERLAP": str(options.overlap),
        "BLEND": "raised-cosine softmax probabilities",
        MAP_SETTINGS_TAG: json.dumps(map_settings(pair, backend, options), sort_keys=True),
    }
    if radiometry_mismatch is not None:
        tags["S1_RADIOMETRY_MISMATCH"] = radiometry_mismatch
    geocoding = tags.get("S1_GEOCODING")
    if geocoding in ("RD_DEM", "GCP_ELLIPSOID") and geocoding != ident.s1_geocoding:
        tags["S1_GEOCODING_MISMATCH"] = f"model trained on {ident.s1_geocoding} S1, mapped with {geocoding}"
        hint = " (pass --dem for terrain-corrected S1)" if geocoding == "GCP_ELLIPSOID" else ""
        log.warning("%s: %s%s", pair.name, tags["S1_GEOCODING_MISMATCH"], hint)
    return tags


def failed_report(pair: Pair, exc: Exception, start: float) -> SceneReport:
    """Logs a scene's failure (with its traceback when it is not a typed error) and reports it.

    Args:
        pair: The scene.
        exc: What it failed with.
        start: `time.perf_counter` when the scene started.
    """
    if isinstance(exc, CloudLULCError):
        log.error("%s failed: %s", pair.name, exc)
    else:
        log.exception("%s failed with an unexpected error", pair.name)
    return SceneReport(pair.name, "failed", error=f"{type(exc).__name__}: {exc}", dt_days=pair.dt_days,
                       s1_coverage_pct=pair.s1_coverage_pct, seconds=round(time.perf_counter() - start, 3))  # fmt: skip


def interrupted_report(pair: Pair, exc: KeyboardInterrupt, start: float) -> SceneReport:
    """The report of a scene abandoned by a signal (``exc`` names it; empty for Ctrl-C's own SIGINT)."""
    return SceneReport(pair.name, "interrupted", dt_days=pair.dt_days, s1_coverage_pct=pair.s1_coverage_pct,
                       error=f"stopped by {str(exc) or 'SIGINT'}; its partial output was removed",
                       seconds=round(time.perf_counter() - start, 3))  # fmt: skip


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
        One report per pair, in order. A `KeyboardInterrupt` (Ctrl-C, or SIGTERM/SIGHUP as
        `runner.run_batch` turns them) stops the loop: the scene in progress is ``interrupted``
        (nothing of it is left), the rest ``not_started``.
    """
    reports: list[SceneReport] = []
    for index, pair in enumerate(pairs):
        start = time.perf_counter()
        try:
            callback = (lambda d, t, n=pair.name: on_tiles(n, d, t)) if on_tiles is not None else None
            report = map_pair(pair, backend, output_dir, options, contract, callback)
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP as the runner turns them
            signal_name = str(exc) or "SIGINT"
            log.warning("stopped by %s during %s; %d scene(s) not started", signal_name, pair.name,
                        len(pairs) - index - 1)  # fmt: skip
            reports.append(interrupted_report(pair, exc, start))
            reports += [SceneReport(p.name, "not_started", dt_days=p.dt_days, s1_coverage_pct=p.s1_coverage_pct,
                                    error=f"run stopped by {signal_name}") for p in pairs[index + 1 :]]  # fmt: skip
            if on_scene is not None:
                on_scene(reports[index])
            break
        except Exception as exc:  # noqa: BLE001 - one scene never stops the batch; `failed_report` logs it
            report = failed_report(pair, exc, start)
        reports.append(report)
        if on_scene is not None:
            on_scene(report)
    return reports
