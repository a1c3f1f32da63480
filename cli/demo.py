"""``cloudlulc-edge demo``: real sample scenes → the default model → COG maps + PNG quicklooks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from cloudlulc_edge.cli.options import BatchSizeOpt, DeviceOpt, QuietOpt, usage_error
from cloudlulc_edge.cli.progress import RunDisplay, summary_table
from rich.console import Console

from cloudlulc_edge.errors import CloudLULCError
from cloudlulc_edge.pipeline import MapOptions
from cloudlulc_edge.runner import BackendSpec, check_output_dir, open_backend, plan_directory, run_pairs

__all__ = ["demo_command"]


def demo_command(
    output_dir: Annotated[Path, typer.Argument(help="Demo folder: inputs/, maps/ and quicklooks/ go here.")] = Path(
        "cloudlulc-demo"
    ),
    samples: Annotated[
        Path | None,
        typer.Option(help="Use this folder of S1/S2 scenes instead of the packaged BigEarthNet examples."),
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Checkpoint directory (default: the packaged cloudlulc_edge checkpoint).")
    ] = None,
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
    from cloudlulc_edge.data.cloud_sim import CloudDonor, CloudSimulator
    from cloudlulc_edge.demo import cloudy_pair, prepare_demo_inputs
    from cloudlulc_edge.quicklook import render_quicklook

    console = Console()
    # The sample patches are 120 × 120 px: one 128-px tile each, about the size the default model
    # trained on. BigEarthNet S2 is processing baseline 02.xx: no radiometric offset.
    options = MapOptions(tile=128, overlap=8, batch_size=batch_size, s2_offset=0.0, s2_quantification=10000.0)
    try:
        check_output_dir(output_dir)
        inputs = prepare_demo_inputs(output_dir / "inputs", samples)
        plan = plan_directory(inputs)
        pairs = list(plan.pairs)
        if cloud_donor is not None:
            simulator = CloudSimulator(CloudDonor.from_safe(cloud_donor))
            pairs += [cloudy_pair(p, simulator, cover, output_dir / "clouded", options) for p in plan.pairs]
        backend = open_backend(BackendSpec("torch", "cloudlulc_edge", checkpoint, device=device, tile=128))
    except CloudLULCError as exc:
        raise usage_error(str(exc)) from exc
    if not pairs:
        raise usage_error(f"no S2 scene found in {inputs}")
    maps = output_dir / "maps"
    display = RunDisplay("quiet" if quiet else "rich", len(pairs), console)
    with display.running():
        report, report_path = run_pairs("demo", pairs, backend, maps, options, None, display.scene, display.tiles,
                                        plan.skipped)  # fmt: skip
    looks = []
    by_name = {p.name: p for p in pairs}
    for scene in report.scenes:
        if scene.output is None or scene.status == "failed":
            continue
        try:
            looks.append(render_quicklook(by_name[scene.name], Path(scene.output),
                                          output_dir / "quicklooks" / f"{scene.name}.png", options))  # fmt: skip
        except CloudLULCError as exc:
            console.print(f"[yellow]quicklook of {scene.name} not written:[/yellow] {exc}")
    if not quiet:
        console.print(summary_table(report.scenes, f"demo: {maps}"))
    console.print(f"model: {backend.identity.name} (weights {backend.identity.sha256[:12]}); "
                  f"maps in {maps}, {len(looks)} quicklook(s) in {output_dir / 'quicklooks'}, report {report_path}")  # fmt: skip
    raise typer.Exit(report.exit_code())
