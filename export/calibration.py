"""INT8 calibration sets built from real scenes through the inference readers.

Calibration must see what inference sees, so tiles come from the same `SceneReader`, tiler
(`tiling.Tiler`) and normalisation as `pipeline.map_pair`, never from a separate loader. Tiles
are stratified by a cloud proxy so that cloudy, partly cloudy and clear optics are
all represented (quantisation ranges set on clear tiles alone clip cloud reflectance):

* cloud proxy of a tile = share of its valid pixels with blue reflectance B02 ≥ 0.2 (the bright
  blue test that opens most cloud screens; a proxy, not a cloud mask);
* bins ``clear`` (< 10 %), ``partial`` (10–60 %) and ``cloudy`` (≥ 60 %); the set takes tiles
  round-robin over bins and scenes, so no bin or scene dominates.

The result is an ``.npz`` keyed by the ONNX input names (`onnx_export.INPUT_NAMES`), which is what
ModelOpt's ``calibration_data`` takes; its SHA-256 goes into the export manifest.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from cloudlulc_edge.contract import S2_BANDS
from cloudlulc_edge.errors import CloudLULCError, ExportError
from cloudlulc_edge.files import atomic_write, sha256_file
from cloudlulc_edge.io.gdal_env import gdal_env
from cloudlulc_edge.io.scene import SceneReader
from cloudlulc_edge.pairing import Pair
from cloudlulc_edge.tiling import TileGrid, Tiler

__all__ = ["CLOUD_BINS", "CalibrationSet", "build_calibration_set", "cloud_proxy"]

_BLUE = S2_BANDS.index("B02")
_BRIGHT_BLUE = 0.2
log = logging.getLogger(__name__)
#: (scene, top, left, inputs) of one candidate tile.
_Tile = tuple[str, int, int, dict[str, npt.NDArray[np.float32]]]
#: Upper edges of the cloud-proxy bins.
CLOUD_BINS: tuple[tuple[str, float], ...] = (("clear", 0.10), ("partial", 0.60), ("cloudy", 1.01))


def cloud_proxy(s2: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_]) -> float:
    """Share of valid pixels with B02 reflectance ≥ 0.2.

    Args:
        s2: (12, t, t) normalised reflectance.
        valid: (t, t) optical validity.
    """
    n = int(valid.sum())
    return float((s2[_BLUE][valid] >= _BRIGHT_BLUE).sum()) / n if n else 0.0


def _bin(proxy: float) -> str:
    return next(name for name, edge in CLOUD_BINS if proxy < edge)


@dataclass
class CalibrationSet:
    """Calibration tiles and where they came from.

    Attributes:
        arrays: ONNX input name → (N, C, t, t) float32.
        sources: Per tile: scene name, tile origin and cloud bin.
    """

    arrays: dict[str, npt.NDArray[np.float32]]
    sources: list[dict[str, object]]

    def __len__(self) -> int:
        return len(self.sources)

    def save(self, path: str | Path) -> str:
        """Writes the compressed ``.npz`` (atomically) and a ``.json`` sidecar of sources; returns the npz SHA-256."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)

        def write(tmp: Path) -> None:
            with tmp.open("wb") as fh:  # compressed: the validity masks and cloud-free tiles shrink most
                np.savez_compressed(fh, **self.arrays)  # type: ignore[arg-type]

        atomic_write(path, write)
        sidecar = path.with_suffix(".json")
        atomic_write(sidecar, lambda tmp: tmp.write_text(json.dumps(self.sources, indent=1) + "\n"))
        return sha256_file(path)

    @classmethod
    def load(cls, path: str | Path) -> CalibrationSet:
        """Reads a set written by `save`.

        Raises:
            ExportError: The file is missing or lacks an input.
        """
        path = Path(path)
        if not path.is_file():
            raise ExportError("calibration set not found", path)
        with np.load(path, allow_pickle=False) as data:
            missing = {"s2", "s1", "s2_valid", "s1_valid"} - set(data.files)
            if missing:
                raise ExportError(f"calibration set lacks inputs {sorted(missing)}", path)
            arrays = {k: data[k] for k in ("s2", "s1", "s2_valid", "s1_valid")}
        sidecar = path.with_suffix(".json")
        sources = json.loads(sidecar.read_text()) if sidecar.is_file() else [{}] * len(arrays["s2"])
        return cls(arrays, sources)


def build_calibration_set(
    pairs: Sequence[Pair],
    tile: int,
    tiles: int = 64,
    overlap: int = 0,
    resolution: int | None = None,
) -> CalibrationSet:
    """Samples up to ``tiles`` tiles from ``pairs``, stratified by cloud bin and scene.

    At most ``ceil(tiles / len(pairs))`` tiles per bin and scene are held (so at most about
    3·``tiles`` tiles in memory); a set drawn from few, small scenes can come out smaller than ``tiles``.

    Args:
        pairs: Scene pairs (a plan's pairs).
        tile: Tile side of the model.
        tiles: Wanted number of tiles.
        overlap: Tile overlap of the scan (0: disjoint tiles, the most diverse set).
        resolution: Reading resolution (as for mapping).

    Returns:
        The set, in a deterministic order.

    Raises:
        ExportError: No pair yields a valid tile.
    """
    # Memory bound: at most `capacity` tiles per (bin, scene) are held, chosen by reservoir
    # sampling so they spread over the scene instead of being its first rows.
    capacity = max(1, -(-tiles // max(len(pairs), 1)))
    pool: dict[str, list[_Tile]] = defaultdict(list)
    for index, pair in enumerate(pairs):
        try:
            reservoirs = _sample_scene(pair, tile, overlap, resolution, capacity, np.random.default_rng(index))
        except CloudLULCError as exc:  # one bad scene must not stop the export
            log.warning("calibration: skipping %s: %s", pair.name, exc)
            continue
        for name, items in reservoirs.items():
            pool[name].extend(sorted(items, key=lambda t: (t[1], t[2])))
    if not any(pool.values()):
        raise ExportError(f"no valid tiles in {len(pairs)} scene pair(s) to calibrate on")
    chosen: list[tuple[str, str, int, int, dict[str, npt.NDArray[np.float32]]]] = []
    queues = {name: _interleave_scenes(pool[name]) for name, _ in CLOUD_BINS}
    while len(chosen) < tiles and any(queues.values()):
        for name, _ in CLOUD_BINS:
            if queues[name] and len(chosen) < tiles:
                scene, top, left, one = queues[name].pop(0)
                chosen.append((name, scene, top, left, one))
    arrays = {k: np.stack([c[4][k] for c in chosen]) for k in ("s2", "s1", "s2_valid", "s1_valid")}
    sources: list[dict[str, object]] = [
        {"scene": scene, "top": top, "left": left, "cloud_bin": name} for name, scene, top, left, _ in chosen
    ]
    return CalibrationSet(arrays, sources)


def _sample_scene(
    pair: Pair, tile: int, overlap: int, resolution: int | None, capacity: int, rng: np.random.Generator
) -> dict[str, list[_Tile]]:
    """Reservoir-samples up to ``capacity`` tiles per cloud bin from one scene.

    Raises:
        CloudLULCError: The scene cannot be read.
    """
    reservoirs: dict[str, list[_Tile]] = defaultdict(list)
    seen: dict[str, int] = defaultdict(int)
    with gdal_env():
        reader = SceneReader(pair.s2, pair.s1, resolution=resolution)
        try:
            grid = TileGrid(reader.grid.height, reader.grid.width, tile, overlap)
            for batch in Tiler(reader, grid, 4):
                arrays = batch.model_inputs()
                for i in range(len(batch)):
                    name = _bin(cloud_proxy(batch.s2[i], batch.s2_valid[i]))
                    item = (pair.name, batch.tops[i], batch.lefts[i], {k: v[i].copy() for k, v in arrays.items()})
                    seen[name] += 1
                    if len(reservoirs[name]) < capacity:
                        reservoirs[name].append(item)
                    elif (j := int(rng.integers(seen[name]))) < capacity:
                        reservoirs[name][j] = item
        finally:
            reader.close()
    return reservoirs


def _interleave_scenes(items: list[_Tile]) -> list[_Tile]:
    """Reorders tiles round-robin over scenes (first tile of each scene, then the second…)."""
    by_scene: dict[str, list[_Tile]] = defaultdict(list)
    for item in items:
        by_scene[item[0]].append(item)
    out: list[_Tile] = []
    for k in range(max((len(v) for v in by_scene.values()), default=0)):
        out.extend(v[k] for v in by_scene.values() if k < len(v))
    return out
