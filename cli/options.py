"""Options shared by several commands, each defined once with its help text (rasterio's ``rio/options.py`` habit).

Registry — option: meaning (commands that take it):

* ``--checkpoint``: checkpoint directory, model card + safetensors (map, run, demo, export onnx, info)
* ``--variant``: registered model variant when no checkpoint is given (map, run, export onnx)
* ``--allow-untrained``: map with a variant that has no trained weights, tagged untrained (map, run)
* ``--backend``: auto, torch, onnxruntime or tensorrt (map, run, watch, deploy)
* ``--model``: ONNX file / export directory (onnxruntime) or engine (tensorrt) (map, run)
* ``--precision``: graph of an export directory, auto / fp32 / fp16 / int8 (map, run, watch)
* ``--device``: cpu, cuda or cuda:N (map, run, demo)
* ``--batch-size``: tiles per inference call (map, run, demo, bench scene)
* ``--tile``, ``--overlap``, ``--grid-offset``: the tile grid (map, run; overlap also bench scene)
* ``--class-scheme``: output codes, worldcover / dynamicworld / native (map, run)
* ``--resolution``: output pixel size in metres (map, run)
* ``--confidence/--no-confidence``, ``--optics/--no-optics``, ``--stac/--no-stac``: extra outputs (map, run)
* ``--s2-offset``, ``--s2-quantification``: radiometry of GeoTIFF S2 scenes that carry none (map, run)
* ``--s1-missing``: map S2-only pairs with the missing-SAR path, or skip them (map, run)
* ``--prefetch``: tile batches read ahead of the model (map, run)
* ``--max-memory``: fail scenes whose estimated peak exceeds this many MiB (map, run)
* ``--pair-window``, ``--require-s1/--allow-s2-only``: pairing (map, plan)
* ``--resume/--no-resume``: skip scenes whose map exists with the same settings (map, run)
* ``--dry-run``, ``--quiet``, ``--log-format``: what the run prints (map, run)
* ``--dem``, ``--rtc``, ``--orbit-dir``, ``--dem-datum``, ``--dem-fallback``: range-Doppler terrain
  correction of S1 SAFE products (map, plan, run, s1)
* ``--allow-radiometry-mismatch``: map with S1 radiometry other than the model's, tagged (map, run)
* ``--skip-checksums``: do not verify SAFE files against their manifest checksums (map, run, watch)

Choices are enums, so ``--help`` lists them and Typer refuses anything else with exit code 2.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from cloudlulc_edge.errors import EXIT_USAGE

if TYPE_CHECKING:
    from cloudlulc_edge.io.s1_terrain import TerrainCorrection

__all__ = [
    "AllowRadiometryMismatchOpt",
    "AllowUntrainedOpt",
    "BackendChoice",
    "BackendOpt",
    "BatchSizeOpt",
    "CheckpointOpt",
    "ClassSchemeChoice",
    "ClassSchemeOpt",
    "ConfidenceOpt",
    "DemDatumChoice",
    "DemDatumOpt",
    "DemFallbackChoice",
    "DemFallbackOpt",
    "DemOpt",
    "DeviceOpt",
    "DryRunOpt",
    "GridOffsetOpt",
    "LogFormat",
    "LogFormatOpt",
    "MaxMemoryOpt",
    "ModelOpt",
    "OpticsOpt",
    "OrbitDirOpt",
    "OverlapOpt",
    "PairWindowOpt",
    "Precision",
    "PrecisionOpt",
    "PrefetchOpt",
    "QuietOpt",
    "RequireS1Opt",
    "ResolutionOpt",
    "ResumeOpt",
    "RtcOpt",
    "S1MissingChoice",
    "S1MissingOpt",
    "S2OffsetOpt",
    "S2QuantificationOpt",
    "SkipChecksumsOpt",
    "StacOpt",
    "TileOpt",
    "VariantOpt",
    "terrain_correction",
    "usage_error",
]


class BackendChoice(str, Enum):
    """``--backend``."""

    auto = "auto"
    torch = "torch"
    onnxruntime = "onnxruntime"
    tensorrt = "tensorrt"


class Precision(str, Enum):
    """``--precision``."""

    auto = "auto"
    fp32 = "fp32"
    fp16 = "fp16"
    int8 = "int8"


class ClassSchemeChoice(str, Enum):
    """``--class-scheme``."""

    worldcover = "worldcover"
    dynamicworld = "dynamicworld"
    native = "native"


class S1MissingChoice(str, Enum):
    """``--s1-missing``."""

    map = "map"
    skip = "skip"


class DemDatumChoice(str, Enum):
    """``--dem-datum``."""

    auto = "auto"
    ellipsoid = "ellipsoid"
    egm96 = "egm96"
    egm2008 = "egm2008"


class DemFallbackChoice(str, Enum):
    """``--dem-fallback``."""

    fail = "fail"
    gcp = "gcp"


class LogFormat(str, Enum):
    """``--log-format``."""

    rich = "rich"
    jsonl = "jsonl"


CheckpointOpt = Annotated[
    Path | None, typer.Option(help="Checkpoint directory (model card + safetensors) for the torch backend.")
]
VariantOpt = Annotated[
    str,
    typer.Option(help="Registered model variant when no checkpoint is given (its packaged weights, if it has any)."),
]
AllowUntrainedOpt = Annotated[
    bool,
    typer.Option("--allow-untrained", help="Map with a variant that has no trained weights (random weights, tagged)."),
]
BackendOpt = Annotated[
    BackendChoice,
    typer.Option(help="Inference backend; auto: the fastest this machine runs for the model (`info` says which, and "
                      "why)."),
]  # fmt: skip
ModelOpt = Annotated[
    Path | None,
    typer.Option(help="onnxruntime: an ONNX file or an `export onnx` directory; tensorrt: a built model.engine."),
]
PrecisionOpt = Annotated[
    Precision,
    typer.Option(help="Graph of an export directory for onnxruntime; auto: FP16 where it has one, else FP32."),
]
DeviceOpt = Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")]
BatchSizeOpt = Annotated[int, typer.Option(min=1, help="Tiles per inference call.")]
TileOpt = Annotated[int, typer.Option(min=16, help="Tile side in pixels (torch; graphs and engines fix their own).")]
OverlapOpt = Annotated[int, typer.Option(min=0, help="Overlap between neighbouring tiles, pixels (even).")]
GridOffsetOpt = Annotated[
    int, typer.Option(min=0, help="Shift the tile grid up and left by this many pixels (tile-dependence checks).")
]
ClassSchemeOpt = Annotated[ClassSchemeChoice, typer.Option(help="Output class codes.")]
ResolutionOpt = Annotated[
    int | None,
    typer.Option(min=1, help="Output pixel size in metres (default: 10 for SAFE, the finest band for GeoTIFF)."),
]
ConfidenceOpt = Annotated[
    bool, typer.Option("--confidence/--no-confidence", help="Also write a confidence COG (top-class probability).")
]
OpticsOpt = Annotated[
    bool,
    typer.Option("--optics/--no-optics",
                 help="Also write <map>_optics.tif: per pixel, clear optics or mapped through cloud/shadow "
                      "(from the SCL where the product has one, else a spectral cloud proxy)."),
]  # fmt: skip
StacOpt = Annotated[bool, typer.Option("--stac/--no-stac", help="Also write a STAC item per map.")]
S2OffsetOpt = Annotated[
    float | None, typer.Option(help="DN offset of GeoTIFF S2 scenes that carry none (e.g. -1000 from baseline 04.00).")
]
S2QuantificationOpt = Annotated[
    float | None, typer.Option(help="DN divisor of GeoTIFF S2 scenes that carry none (usually 10000).")
]
S1MissingOpt = Annotated[
    S1MissingChoice, typer.Option(help="S2 scenes without S1: map them with the missing-SAR path, or skip them.")
]
PrefetchOpt = Annotated[int, typer.Option(min=1, help="Tile batches the reader may prepare ahead of the model.")]
PairWindowOpt = Annotated[float, typer.Option(min=0.0, help="Largest |S1 − S2| time difference to pair, days.")]
RequireS1Opt = Annotated[bool, typer.Option("--require-s1/--allow-s2-only", help="Leave out S2 scenes without S1.")]
ResumeOpt = Annotated[
    bool,
    typer.Option(
        "--resume/--no-resume",
        help="Skip scenes whose map exists and records the same settings (model, options, inputs); a map made "
        "otherwise fails its scene. --no-resume maps again and replaces.",
    ),
]
MaxMemoryOpt = Annotated[
    int | None,
    typer.Option(
        min=256,
        help="MiB: fail (with the reason) any scene whose estimated peak memory exceeds this, instead of exhausting "
        "the machine; the rest of the batch goes on.",
    ),
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Show what would be mapped, and map nothing.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display; only the summary line.")]
LogFormatOpt = Annotated[
    LogFormat,
    typer.Option(help="rich (progress bars) or jsonl (one JSON object per event on stdout, for unattended stations)."),
]

DemOpt = Annotated[
    Path | None,
    typer.Option(exists=True,
                 help="DEM (GeoTIFF/VRT/.hgt, or a folder of Copernicus DEM or SRTM tiles): terrain-correct S1 "
                 "SAFE products by range-Doppler geocoding on it (S1_GEOCODING=RD_DEM)."),
]  # fmt: skip
RtcOpt = Annotated[
    bool, typer.Option("--rtc", help="With --dem: radiometric terrain flattening, γ⁰ (Small 2011) instead of σ⁰.")
]
OrbitDirOpt = Annotated[
    Path | None,
    typer.Option(
        exists=True,
        file_okay=False,
        help="Folder of POEORB/RESORB .EOF orbit files (default: the annotation's state vectors).",
    ),
]
DemDatumOpt = Annotated[
    DemDatumChoice,
    typer.Option(help="Vertical datum of the DEM heights (auto: from its CRS or Copernicus/SRTM file names)."),
]
DemFallbackOpt = Annotated[
    DemFallbackChoice,
    typer.Option(help="A scene the DEM does not cover: fail it, or fall back to GCP geocoding (tagged)."),
]
SkipChecksumsOpt = Annotated[
    bool,
    typer.Option("--skip-checksums",
                 help="Do not verify SAFE files against the SHA3-256/MD5 of manifest.safe (faster; sizes are "
                      "still checked)."),
]  # fmt: skip
AllowRadiometryMismatchOpt = Annotated[
    bool,
    typer.Option("--allow-radiometry-mismatch",
                 help="Map although the S1 radiometry (σ⁰, or γ⁰ with --rtc) differs from the model's (tagged)."),
]  # fmt: skip


def terrain_correction(
    dem: Path | None, rtc: bool, orbit_dir: Path | None, dem_datum: DemDatumChoice, dem_fallback: DemFallbackChoice
) -> TerrainCorrection | None:
    """The parsed ``--dem`` options as the library's `TerrainCorrection` (None without ``--dem``).

    Raises:
        typer.Exit: ``--rtc`` or ``--orbit-dir`` without ``--dem`` (usage error, code 2).
    """
    if dem is None:
        if rtc or orbit_dir is not None:
            raise usage_error("--rtc and --orbit-dir need --dem (terrain correction works on a DEM)")
        return None
    from cloudlulc_edge.io.s1_terrain import TerrainCorrection

    return TerrainCorrection(dem, rtc, orbit_dir, dem_datum.value, dem_fallback.value)


def usage_error(message: str) -> typer.Exit:
    """Prints ``error: message`` to stderr and returns the usage-error exit (code 2) to raise."""
    Console(stderr=True, highlight=False).print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(EXIT_USAGE)
