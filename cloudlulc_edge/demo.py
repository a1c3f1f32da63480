"""The out-of-the-box demo: real sample scenes from a package registry, and cloudy copies of them.

The sample scenes are the six BigEarthNet v1 S1+S2 example pairs shipped inside the PyPI wheel
``bigearthnet-common`` (the ``demo`` extra): Austria, Ireland, Portugal and Finland, 2017–2018,
120 × 120 px at 10 m, GeoTIFF per band. They are extracted from the wheel's tar archives with
every member checked (no absolute paths, no ``..``, no links, bounded size), so nothing is
written outside the demo folder.

With a cloud donor (a real cloudy L2A product), `cloudy_pair` also writes a copy of each S2
scene with simulated clouds (`cloudlulc_edge.data.cloud_sim`) as a multiband GeoTIFF and pairs it
with the same S1, so the demo shows the map made *through* the clouds next to the clear one.

`run_demo` is what ``cloudlulc-edge demo`` calls: inputs → pairs (plus cloudy copies) → the default
model → maps, a run report and one quicklook per scene.

Copernicus Sentinel data 2017–2018, via BigEarthNet (CDLA-Permissive-1.0, TU Berlin).
"""

from __future__ import annotations

import functools
import tarfile
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np
import rasterio

from cloudlulc_edge.contract import S2_BANDS
from cloudlulc_edge.data.cloud_sim import CloudSimulator
from cloudlulc_edge.errors import CloudLULCError
from cloudlulc_edge.files import atomic_write, leaves_root
from cloudlulc_edge.io.products import identify
from cloudlulc_edge.io.scene import SceneReader
from cloudlulc_edge.pairing import Pair, plan_directory
from cloudlulc_edge.pipeline import MapOptions

if TYPE_CHECKING:
    from cloudlulc_edge.runner import RunProgress, RunReport

__all__ = [
    "DEMO_OPTIONS",
    "SAMPLE_ARCHIVES",
    "DemoRequest",
    "DemoResult",
    "SampleDataError",
    "cloudy_pair",
    "extract_archive",
    "prepare_demo_inputs",
    "run_demo",
]

#: The example archives inside the ``bigearthnet_common`` package.
SAMPLE_ARCHIVES = ("BigEarthNet-S1-Example.tar.bz2", "BigEarthNet-S2-Example.tar.bz2")
#: Upper bound on the unpacked size of one archive (the real ones unpack to about 1 MB).
MAX_UNPACKED_BYTES = 64 * 2**20
#: Largest scene side `cloudy_pair` composites in memory (demo scenes are 120 px).
MAX_CLOUDY_SIDE = 2048


class SampleDataError(CloudLULCError):
    """The demo's sample data is missing, or an archive is unsafe or corrupt."""


def extract_archive(archive: Path, dest: Path, max_bytes: int = MAX_UNPACKED_BYTES) -> list[Path]:
    """Extracts a tar archive of regular files and folders into ``dest``, refusing anything unsafe.

    The whole member list is checked before anything is written.

    Raises:
        SampleDataError: An absolute or ``..`` member path, a link or device member, a declared size
            over ``max_bytes``, or a corrupt archive (naming the archive).
    """
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            total = 0
            for m in members:
                if leaves_root(m.name):
                    raise SampleDataError(f"member {m.name!r} would be written outside the target folder", archive)
                if not (m.isfile() or m.isdir()):
                    raise SampleDataError(f"member {m.name!r} is a link or special file; refused", archive)
                total += m.size
                if total > max_bytes:
                    raise SampleDataError(f"declares more than {max_bytes} bytes unpacked; refused", archive)
            written = []
            for m in members:
                target = dest.joinpath(*PurePosixPath(m.name).parts)
                if m.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(m)
                if source is None:
                    raise SampleDataError(f"member {m.name!r} cannot be read", archive)
                atomic_write(target, functools.partial(Path.write_bytes, data=source.read()))
                written.append(target)
            return written
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise SampleDataError(f"corrupt or unreadable archive ({exc})", archive) from exc


def _packaged_archives() -> list[Path]:
    try:
        package = resources.files("bigearthnet_common")
    except ModuleNotFoundError as exc:
        raise SampleDataError(
            "the demo's sample scenes come from the PyPI package bigearthnet-common; install the 'demo' extra "
            "(pip install 'cloudlulc-edge[demo]') or pass --samples DIR"
        ) from exc
    paths = [Path(str(package / name)) for name in SAMPLE_ARCHIVES]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise SampleDataError("bigearthnet-common does not contain its example archive", missing[0])
    return paths


def prepare_demo_inputs(dest: Path, samples: Path | None = None) -> Path:
    """Lays out the demo's input directory (once; a re-run reuses it).

    Args:
        dest: Folder to create the inputs in.
        samples: A folder of BigEarthNet-style S1/S2 GeoTIFF scenes to use instead of the packaged
            examples (it is read, never modified).

    Returns:
        The input directory to scan.

    Raises:
        SampleDataError: No sample data, or an unsafe archive.
    """
    if samples is not None:
        if not samples.is_dir():
            raise SampleDataError("sample folder not found", samples)
        return samples
    done = dest / ".complete"
    if done.is_file():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    for archive in _packaged_archives():
        extract_archive(archive, dest)
    done.write_text("bigearthnet-common example pairs\n")
    return dest


def cloudy_pair(pair: Pair, simulator: CloudSimulator, cover: float, dest: Path, options: MapOptions,
                seed: int = 0) -> Pair:  # fmt: skip
    """Writes ``pair``'s S2 scene with simulated clouds and returns it paired with the same S1.

    The copy is a 12-band uint16 GeoTIFF (DN = reflectance × 10000, 0 = nodata, band descriptions
    B01…B12, tags ``ACQUISITION_TIME``, ``S2_OFFSET``, ``S2_QUANTIFICATION`` and the simulated
    ``SIMULATED_CLOUD_COVER``) named ``<scene>_clouds<NN>.tif``, written atomically; an existing
    copy is reused. The clouds depend on ``seed`` and the scene name only.

    Raises:
        CloudLULCError: The scene cannot be read, or is larger than `MAX_CLOUDY_SIDE`.
    """
    target = dest / f"{pair.name}_clouds{round(100 * cover):02d}.tif"
    if not target.is_file():
        reader = SceneReader(pair.s2, (), options.resolution, s2_offset=options.s2_offset,
                             s2_quantification=options.s2_quantification)  # fmt: skip
        try:
            grid = reader.grid
            if max(grid.height, grid.width) > MAX_CLOUDY_SIDE:
                raise CloudLULCError(f"scene is {grid.height}×{grid.width} px; cloudy copies are for scenes up to "
                                     f"{MAX_CLOUDY_SIDE} px", Path(pair.s2.path))  # fmt: skip
            strip = reader.read(0, grid.height)
        finally:
            reader.close()
        rng = np.random.default_rng([seed, *pair.name.encode()])
        patch = simulator.simulate(strip.s2, cover, rng, valid=strip.s2_valid)
        dn = np.where(strip.s2_valid, np.clip(np.round(patch.s2 * 10000), 1, 65535), 0).astype(np.uint16)
        profile = {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": len(S2_BANDS),
                   "dtype": "uint16", "crs": grid.crs, "transform": grid.transform, "nodata": 0,
                   "compress": "deflate", "tiled": True}  # fmt: skip

        def write(tmp: Path) -> None:
            with rasterio.open(tmp, "w", **profile) as ds:
                ds.write(dn)
                ds.descriptions = S2_BANDS
                ds.update_tags(ACQUISITION_TIME=pair.s2.sensing_time, S2_OFFSET="0", S2_QUANTIFICATION="10000",
                               SIMULATED_CLOUD_COVER=f"{patch.cover:.4f}", SIMULATED_FROM=pair.name,
                               CLOUD_DONOR=simulator.donor.name)  # fmt: skip

        dest.mkdir(parents=True, exist_ok=True)
        atomic_write(target, write)
    product = identify(target)
    if product is None:
        raise CloudLULCError("the cloudy copy is not recognised as an S2 scene", target)
    return replace(pair, s2=product)


#: The sample patches are 120 × 120 px: one 128-px tile each, about the size the default model
#: trained on. BigEarthNet S2 is processing baseline 02.xx: no radiometric offset.
DEMO_OPTIONS = MapOptions(tile=128, overlap=8, s2_offset=0.0, s2_quantification=10000.0)


@dataclass(frozen=True)
class DemoRequest:
    """What ``cloudlulc-edge demo`` does.

    Attributes:
        output_dir: Demo folder: ``inputs/``, ``maps/``, ``clouded/`` and ``quicklooks/`` go here.
        samples: A folder of S1/S2 scenes to use instead of the packaged BigEarthNet examples.
        checkpoint: Checkpoint directory (default: the packaged ``cloudlulc_edge`` checkpoint).
        cloud_donor: A real cloudy S2 L2A SAFE: also map a cloudy copy of every scene.
        cover: Cloud cover of the cloudy copies.
        device: ``cpu``, ``cuda``…
        batch_size: Tiles per inference call.
    """

    output_dir: Path = Path("cloudlulc-demo")
    samples: Path | None = None
    checkpoint: Path | None = None
    cloud_donor: Path | None = None
    cover: float = 0.6
    device: str = "cpu"
    batch_size: int = 4


@dataclass
class DemoResult:
    """What the demo wrote.

    Attributes:
        report: The run report of the maps.
        report_path: Where it was written (None: it could not be, and went to the log instead).
        maps: The maps folder.
        quicklooks: One PNG per mapped scene.
        quicklook_errors: Scene → why its quicklook was not written.
    """

    report: RunReport
    report_path: Path | None
    maps: Path
    quicklooks: list[Path] = field(default_factory=list)
    quicklook_errors: dict[str, str] = field(default_factory=dict)


def run_demo(request: DemoRequest, progress: RunProgress | None = None) -> DemoResult:
    """Maps the sample scenes (and their cloudy copies) with the default model, then renders quicklooks.

    Raises:
        CloudLULCError: Before mapping: no sample data, an unsafe archive, an unwritable folder, a bad
            checkpoint or cloud donor, or no S2 scene among the inputs.
    """
    from cloudlulc_edge.backends.factory import BackendSpec
    from cloudlulc_edge.data.cloud_sim import CloudDonor, CloudSimulator
    from cloudlulc_edge.quicklook import render_quicklook
    from cloudlulc_edge.runner import backend_record, check_output_dir, resolve_and_open, run_pairs

    options = replace(DEMO_OPTIONS, batch_size=request.batch_size)
    check_output_dir(request.output_dir)
    inputs = prepare_demo_inputs(request.output_dir / "inputs", request.samples)
    plan = plan_directory(inputs)
    pairs = list(plan.pairs)
    if not pairs:
        raise CloudLULCError("no S2 scene found among the demo inputs", inputs)
    if request.cloud_donor is not None:
        simulator = CloudSimulator(CloudDonor.from_safe(request.cloud_donor))
        pairs += [cloudy_pair(p, simulator, request.cover, request.output_dir / "clouded", options) for p in plan.pairs]
    spec = BackendSpec("auto", "cloudlulc_edge", request.checkpoint, device=request.device, tile=options.tile)
    resolved, backend = resolve_and_open(spec)
    maps = request.output_dir / "maps"
    if progress is not None:
        progress.start(len(pairs))
    report, report_path = run_pairs("demo", pairs, backend, maps, options, None,
                                    progress.scene if progress else None, progress.tiles if progress else None,
                                    plan.skipped, backend_record(resolved, backend, "local"))  # fmt: skip
    result = DemoResult(report, report_path, maps)
    by_name = {p.name: p for p in pairs}
    for scene in report.scenes:
        if scene.output is None or scene.status == "failed":
            continue
        try:
            result.quicklooks.append(render_quicklook(by_name[scene.name], Path(scene.output),
                                                      request.output_dir / "quicklooks" / f"{scene.name}.png",
                                                      options))  # fmt: skip
        except CloudLULCError as exc:
            result.quicklook_errors[scene.name] = str(exc)
    return result
