"""The ``cloudlulc-edge`` command line (Typer), one module per command group.

Import name ``cloudlulc_edge.cli``. Commands only parse, call one library function and print.
Command modules import the library inside their command functions, so ``cloudlulc-edge --help``
imports neither torch nor GDAL.
"""

from __future__ import annotations

import typer

from cloudlulc_edge.cli.bench import bench_app
from cloudlulc_edge.cli.demo import demo_command
from cloudlulc_edge.cli.deploy import deploy_app
from cloudlulc_edge.cli.engine import engine_app
from cloudlulc_edge.cli.export import export_app
from cloudlulc_edge.cli.info import info
from cloudlulc_edge.cli.mapping import map_command, plan_command, run_command
from cloudlulc_edge.cli.s1 import s1_command
from cloudlulc_edge.cli.training import evaluate_command, train_command

__all__ = ["app", "main"]

app = typer.Typer(
    name="cloudlulc-edge",
    help="LULC maps through clouds from Sentinel-1 + Sentinel-2 with CloudLULC-Net.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("demo")(demo_command)
app.command("info")(info)
app.command("plan")(plan_command)
app.command("map")(map_command)
app.command("run")(run_command)
app.command("s1")(s1_command)
app.command("train")(train_command)
app.command("evaluate")(evaluate_command)
app.add_typer(export_app, name="export")
app.add_typer(engine_app, name="engine")
app.add_typer(deploy_app, name="deploy")
app.add_typer(bench_app, name="bench")


@app.callback()
def _root() -> None:
    """cloudlulc-edge: CloudLULC-Net SAR-optical fusion on edge and datacenter machines."""


def main() -> None:
    """Console-script entry point (GDAL's settings are applied by each run, `cloudlulc_edge.io.gdal_env`)."""
    app()
