"""Real S1 GRD metadata with a synthetic measurement: what the terrain-correction benchmark and tests geocode.

The shared S1 products are metadata-only downloads. `with_measurement` copies one and writes a
full-size uint16 measurement per polarisation from a pattern of (line, pixel), records its size
and MD5 in the manifest (the readers check both), and attaches the annotation GCPs as the real files carry.
`relief_dem` writes a synthetic DEM of hills and valleys where no real one is at hand.
"""

from __future__ import annotations

import re
import shutil
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from cloudlulc_edge.io.archive import SafeArchive
from cloudlulc_edge.io.s1_metadata import read_s1_metadata

Pattern = Callable[[npt.NDArray[np.float64], npt.NDArray[np.float64]], npt.NDArray[np.float64]]


def point_targets(line: npt.NDArray[np.float64], pixel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Gaussian point targets (σ = 2 px) on a 100-pixel lattice, centred on lines/pixels ≡ 50 (mod 100)."""
    return 30.0 + 3000.0 * np.exp(-(((line % 100) - 50) ** 2 + ((pixel % 100) - 50) ** 2) / 8.0)


def smooth_field(line: npt.NDArray[np.float64], pixel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """A smooth DN field (km-scale undulation around 300)."""
    return 300.0 + 120.0 * np.sin(2 * np.pi * line / 3000.0) * np.cos(2 * np.pi * pixel / 2500.0)


def constant(value: float) -> Pattern:
    """A constant DN."""
    return lambda line, pixel: np.full(np.broadcast(line, pixel).shape, value)


def with_measurement(source: Path, dest_dir: Path, pattern: Pattern, polarisations: Sequence[str] = ("VV",)) -> Path:
    """A copy of ``source`` under ``dest_dir`` with synthetic measurements of ``polarisations``."""
    dst = dest_dir / source.name
    shutil.copytree(source, dst)
    meta = read_s1_metadata(SafeArchive(dst))
    manifest = dst / "manifest.safe"
    text = manifest.read_text()
    for pol in polarisations:
        tiff = dst / meta.polarisations[pol].measurement
        tiff.parent.mkdir(exist_ok=True)
        profile = {"driver": "GTiff", "width": meta.samples, "height": meta.lines, "count": 1, "dtype": "uint16",
                   "tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "deflate"}  # fmt: skip
        with warnings.catch_warnings():  # GCPs are attached after creation
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            f = rasterio.open(tiff, "w", **profile)
        with f:
            pixel = np.arange(meta.samples, dtype=np.float64)[None, :]
            for r in range(0, meta.lines, 1024):
                n = min(1024, meta.lines - r)
                line = np.arange(r, r + n, dtype=np.float64)[:, None]
                dn = np.clip(np.round(pattern(line, pixel)), 0, 65535).astype(np.uint16)
                f.write(dn, 1, window=Window(0, r, meta.samples, n))
            f.gcps = (meta.gcps, CRS.from_epsg(4326))
        href = re.escape(tiff.name)
        text = re.sub(rf'size="\d+"(>\s*<fileLocation[^>]*{href})', rf'size="{tiff.stat().st_size}"\1', text)
        md5 = SafeArchive(dst).checksum(meta.polarisations[pol].measurement, "MD5")
        text = re.sub(rf'({href}"/>\s*<checksum checksumName="MD5">)[0-9a-fA-F]+', rf"\g<1>{md5}", text)
    manifest.write_text(text)
    return dst


def relief_dem(path: Path, west: float, north: float, size: int, step_deg: float, seed: int = 7) -> Path:
    """A synthetic ellipsoidal-height DEM (EPSG:4326, float32): a ramp plus twelve Gaussian hills and valleys.

    Args:
        path: GeoTIFF to write.
        west: Longitude of the west edge, degrees.
        north: Latitude of the north edge, degrees.
        size: Pixels per side.
        step_deg: Pixel size, degrees.
        seed: Seed of the hills.

    Returns:
        ``path``; heights ≈ 450–2050 m over a ≈ 10 km side at 1/3 arc-second, scaled with the side.
    """
    extent = size * step_deg * 111_000.0  # metres, roughly
    yy, xx = np.mgrid[0:size, 0:size] * (extent / size)
    heights = 900 + 0.05 * xx * (10_800 / extent)
    rng = np.random.default_rng(seed)
    for _ in range(12):
        cx, cy = rng.uniform(0, extent, 2)
        s, a = rng.uniform(800, 2000) * extent / 10_800, rng.uniform(-400, 600)
        heights = heights + a * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 1, "dtype": "float32",
               "crs": CRS.from_epsg(4326), "transform": Affine(step_deg, 0, west, 0, -step_deg, north),
               "nodata": np.nan, "tiled": True, "compress": "deflate"}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(heights.astype(np.float32), 1)
    return path
