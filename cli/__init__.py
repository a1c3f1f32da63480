"""The ``cloudlulc-edge`` command line (Typer), one module per command group.

Import name ``cloudlulc_edge.cli``. Commands only parse, call one library function and print.
Command modules import the library inside their command functions, so ``cloudlulc-edge --help``
imports neither torch nor GDAL.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from cloudlulc_edge.cli.bench import bench_app
from cloudlulc_edge.cli.demo import demo_command
from cloudlulc_edge.cli.deploy import deploy_app
from cloudlulc_edge.cli.engine import engine_app
from cloudlulc_edge.cli.export import export_app
from cloudlulc_edge.cli.info import info
from cloudlulc_edge.cli.mapping import map_command, plan_command, run_command
from cloudlulc_edge.cli.s1 import s1_command
from cloudlulc_edge.cli.training import evaluate_command, train_command
from cloudlulc_edge.cli.watch import watch_command

__all__ = ["EXIT_INTERNAL", "app", "main"]

#: An unexpected error (a bug): one line on stderr, the traceback only with ``--debug``.
EXIT_INTERNAL = 1

app = typer.Typer(
    name="cloudlulc-edge",
    help="LULC maps through clouds from Sentinel-1 + Sentinel-2 with CloudLULC-Net.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("demo")(demo_command)
app.command("info")(info)
app.command("plan")(plan_command)
app.command("map")(map_command)
app.command("run")(run_command)
app.command("watch")(watch_command)
app.command("s1")(s1_command)
app.command("train")(train_command)
app.command("evaluate")(evaluate_command)
app.add_typer(export_app, name="export")
app.add_typer(engine_app, name="engine")
app.add_typer(deploy_app, name="deploy")
app.add_typer(bench_app, name="bench")


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback of an unexpected error.")] = False,
) -> None:
    """cloudlulc-edge: CloudLULC-Net SAR-optical fusion on edge and datacenter machines."""
    # Parsed for --help; `main` reads it before Typer runs so it also covers errors in parsing.


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (GDAL's settings are applied by each run, `cloudlulc_edge.io.gdal_env`).

    An exception that is not a usage error or a typed run outcome is a bug: it is reported in one
    line naming its type, and exits `EXIT_INTERNAL`; ``cloudlulc-edge --debug …`` shows the traceback.
    """
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args[: next((i for i, a in enumerate(args) if not a.startswith("-")), len(args))]
    try:
        app(args=args, prog_name="cloudlulc-edge")
    except Exception as exc:
        if debug:
            raise
        Console(stderr=True, highlight=False).print(
            f"[red]error:[/red] unexpected {type(exc).__name__}: {escape(str(exc))} (a bug; rerun as "
            "`cloudlulc-edge --debug …` for the traceback and report it)", soft_wrap=True)  # fmt: skip
        sys.exit(EXIT_INTERNAL)
