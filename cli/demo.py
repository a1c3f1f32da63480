"""``cloudlulc-edge demo``: parse → `demo.run_demo` → print (real sample scenes → default model → maps + quicklooks)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cloudlulc_edge.cli.options import BatchSizeOpt, CheckpointOpt, DeviceOpt, QuietOpt, usage_error

__all__ = ["demo_command"]


def demo_command(
    output_dir: Annotated[
        Path, typer.Argument(metavar="OUTPUT_DIR", help="Demo folder: inputs/, maps/ and quicklooks/ go here.")
    ] = Path("cloudlulc-demo"),
    samples: Annotated[
        Path | None,
        typer.Option(help="Use this folder of S1/S2 scenes instead of the packaged BigEarthNet examples."),
    ] = None,
    checkpoint: CheckpointOpt = None,
    cloud_donor: Annotated[
        Path | None,
        typer.Option(help="A real cloudy S2 L2A SAFE: also map a copy of every scene with its clouds simulated on it."),
    ] = None,
    cover: Annotated[float, typer.Option(min=0.0, max=1.0, help="Cloud cover of the cloudy copies.")] = 0.6,
    device: DeviceOpt = "cpu",
    batch_size: BatchSizeOpt = 4,
    quiet: QuietOpt = False,
) -> None:
    """Map real sample scenes with the default model: COG maps, PNG quicklooks and a summary table.

    The scenes are the six BigEarthNet S1+S2 example pairs inside the PyPI package
    bigearthnet-common (the `demo` extra). With --cloud-donor, a cloudy copy of each scene (real
    clouds and shadows simulated onto it) is mapped too. A re-run reuses finished maps.
    """
    from cloudlulc_edge.cli.progress import RunDisplay, summary_table
    from cloudlulc_edge.demo import DemoRequest, run_demo
    from cloudlulc_edge.errors import CloudLULCError

    console = Console()
    display = RunDisplay("quiet" if quiet else "rich", console)
    try:
        with display.running():
            result = run_demo(DemoRequest(output_dir, samples, checkpoint, cloud_donor, cover, device, batch_size),
                              display)  # fmt: skip
    except CloudLULCError as exc:
        raise usage_error(str(exc)) from exc
    for scene, error in result.quicklook_errors.items():
        console.print(f"[yellow]quicklook of {scene} not written:[/yellow] {error}")
    if not quiet:
        console.print(summary_table(result.report.scenes, f"demo: {result.maps}"))
    model = result.report.backend["model"]
    console.print(f"model: {model['name']} (weights {model['sha256'][:12]}); maps in {result.maps}, "
                  f"{len(result.quicklooks)} quicklook(s) in {output_dir / 'quicklooks'}, report {result.report_path}")  # fmt: skip
    raise typer.Exit(result.report.exit_code())
