"""GDAL's configuration for a run, applied at the run entry point (never at import).

GDAL's block cache defaults to 5 % of RAM (1.2 GB on a 24 GB station), which alone would break
the bounded-memory promise of streaming, and opening a file inside a SAFE folder would list the
whole folder. `gdal_env` bounds the cache at `GDAL_CACHE_MB` (the figure
`pipeline.estimate_scene_memory_mb` budgets) and switches the listing off; values already in the
environment win, so operators can still override them.

``GDAL_NUM_THREADS`` is pinned to one thread, whatever the environment says. With ``ALL_CPUS`` a
60 m S2 band decodes 1.4× faster (2-core AMD EPYC, 2026-12-01), but whether a truncated JPEG 2000
file then raises depends on GDAL internals: with ``ALL_CPUS`` alone, GDAL 3.x as rasterio 1.4
bundles it returned the band as zeros, its decode failures reaching only stderr ("ERROR 1: Stream
too short") from the worker threads, while with a block cache size set the same read raised. A
scene must never be mapped from such garbage, so the pipeline decodes on one thread, where the
read raises and the reader refuses the band (`tests/io/test_decode_errors.py`).
"""

from __future__ import annotations

import os

import rasterio

__all__ = ["GDAL_CACHE_MB", "gdal_env", "gdal_options"]

#: GDAL's block cache for a run, MB.
GDAL_CACHE_MB = 256


def gdal_options() -> dict[str, str | int]:
    """The run's GDAL configuration options (environment values take precedence).

    rasterio takes ``GDAL_CACHEMAX`` as an integer (MB below 100000, else bytes); a value with a unit
    or a percentage set in the environment is left to GDAL itself.
    """
    options: dict[str, str | int] = {
        "GDAL_DISABLE_READDIR_ON_OPEN": os.environ.get("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR"),
        "GDAL_NUM_THREADS": "1",  # decode errors must reach the reading thread (module docstring)
    }
    cache = os.environ.get("GDAL_CACHEMAX", str(GDAL_CACHE_MB))
    if cache.isdigit():
        options["GDAL_CACHEMAX"] = int(cache)
    return options


def gdal_env() -> rasterio.Env:
    """``rasterio.Env`` with `gdal_options`: wrap a run (or one scene) in it."""
    return rasterio.Env(**gdal_options())
