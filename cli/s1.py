"""``cloudlulc-edge s1``: parse → `io.s1_on_grid.write_s1_on_grid` → print."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from cloudlulc_edge.cli.options import (
    DemDatumChoice,
    DemDatumOpt,
    DemFallbackChoice,
    DemFallbackOpt,
    DemOpt,
    OrbitDirOpt,
    RtcOpt,
    terrain_correction,
    usage_error,
)
from cloudlulc_edge.errors import EXIT_ALL_FAILED, CloudLULCError, OptionsError

__all__ = ["s1_command"]


def s1_command(
    safe: Annotated[
        Path, typer.Argument(metavar="SAFE", exists=True, help="Sentinel-1 GRD product (.SAFE folder or zip).")
    ],
    output: Annotated[
        Path, typer.Argument(metavar="OUTPUT", help="GeoTIFF to write (float32, one band per polarisation).")
    ],
    like: Annotated[
        Path,
        typer.Option(
            exists=True, dir_okay=False, help="Reference raster: the output takes its CRS, transform and size."
        ),
    ],
    dem: DemOpt = None,
    rtc: RtcOpt = False,
    orbit_dir: OrbitDirOpt = None,
    dem_datum: DemDatumOpt = DemDatumChoice.auto,
    dem_fallback: DemFallbackOpt = DemFallbackChoice.fail,
    pol: Annotated[str, typer.Option(help="Polarisations to write, comma-separated, in band order.")] = "VV,VH",
    db: Annotated[bool, typer.Option("--db/--linear", help="Write dB instead of linear power.")] = False,
    noise_removal: Annotated[
        bool, typer.Option("--noise-removal/--no-noise-removal", help="Subtract the thermal-noise LUTs.")
    ] = True,
    beta0: Annotated[
        bool, typer.Option("--beta0", help="Write β⁰ (radar brightness, as sarsen's GTC) instead of σ⁰.")
    ] = False,
) -> None:
    """Write calibrated S1 backscatter (σ⁰, or γ⁰ with --rtc) of SAFE on the grid of a reference raster.

    The pipeline's own S1 stage: calibration, noise removal, multilooking, and GCP geocoding, or
    range-Doppler terrain correction with --dem (layover and shadow become NaN). Exit codes: 0
    written, 2 usage errors (a SAFE, reference raster, DEM or orbit folder that does not exist
    included), 4 the product, DEM or orbit could not be processed.
    """
    from cloudlulc_edge.io.s1_on_grid import S1GridRequest, write_s1_on_grid

    terrain = terrain_correction(dem, rtc, orbit_dir, dem_datum, dem_fallback)
    polarisations = tuple(p.strip().upper() for p in pol.split(",") if p.strip())
    if not polarisations:
        raise usage_error(f"--pol must name at least one polarisation, got {pol!r}")
    try:
        result = write_s1_on_grid(
            S1GridRequest(safe, output, like, terrain, polarisations, db, noise_removal, "beta0" if beta0 else "sigma0")
        )
    except OptionsError as exc:
        raise usage_error(str(exc)) from exc
    except CloudLULCError as exc:
        Console(stderr=True, highlight=False).print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(EXIT_ALL_FAILED) from exc  # the one product failed, as `map` when every scene did
    tags = result.tags
    detail = f"{tags.get('S1_RADIOMETRY')}, {tags.get('S1_GEOCODING')}"
    if "S1_LAYOVER_SHADOW_PCT" in tags:
        detail += f", layover/shadow {tags['S1_LAYOVER_SHADOW_PCT']} %"
    Console().print(f"{result.output}: {result.height}×{result.width} px, {result.valid_pct:g} % with data "
                    f"({detail}) in {result.seconds:g} s")  # fmt: skip
