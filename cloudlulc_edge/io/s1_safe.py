"""Sentinel-1 GRD SAFE reader: calibrated σ⁰ of one product on a target grid, strip by strip.

Order of operations (`sentinel.md` §7–8):

1. Find the radar-geometry window that covers the target grid (`s1_geocode.radar_window`).
2. Calibrate and denoise that window (`s1_calibration.sigma0`) in chunks of lines and write float32
   linear σ⁰ to a tiled temporary GeoTIFF that keeps the (shifted) GCPs. When the target grid is
   coarser than the radar pixels, power is averaged over ``looks × looks`` blocks first
   (multilooking in linear power).
3. Per output strip, warp that file onto the strip with bilinear resampling *in linear power*
   (averaging dB is biased). Conversion to dB happens later, in the scene reader.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.control import GroundControlPoint
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.warp import reproject
from rasterio.windows import Window

from cloudlulc_edge.errors import PairingError, ProductError
from cloudlulc_edge.io.archive import SafeArchive
from cloudlulc_edge.io.grid import RasterGrid
from cloudlulc_edge.io.s1_calibration import read_calibration, read_noise, sigma0
from cloudlulc_edge.io.s1_geocode import GEOCODING_METHOD, WGS84, radar_window
from cloudlulc_edge.io.s1_metadata import read_s1_metadata

__all__ = ["S1SafeReader"]

#: Lines calibrated per chunk (multiplied up to a multiple of the look count).
_CHUNK_LINES = 512


class S1SafeReader:
    """Calibrated σ⁰ of one GRD product, geocoded onto a target grid strip by strip.

    Args:
        path: ``.SAFE`` folder or zip.
        grid: Target grid (the S2 output grid).
        polarisations: Polarisations to deliver, in channel order.
        workdir: Folder for the temporary calibrated rasters (default: the system temp folder).
        noise_removal: Subtract the thermal-noise LUTs.

    Raises:
        ProductError: Metadata or LUTs are bad, a polarisation or the measurement file is missing,
            or the measurement cannot be decoded.
        PairingError: The product does not overlap the grid.
    """

    def __init__(
        self,
        path: str | Path,
        grid: RasterGrid,
        polarisations: Sequence[str] = ("VV", "VH"),
        workdir: str | Path | None = None,
        noise_removal: bool = True,
    ) -> None:
        self.archive = SafeArchive(Path(path))
        self.meta = read_s1_metadata(self.archive)
        self.grid = grid
        self.polarisations = tuple(polarisations)
        missing = [p for p in self.polarisations if p not in self.meta.polarisations]
        if missing:
            raise ProductError(
                f"polarisation(s) {missing} not in this product (it has {sorted(self.meta.polarisations)}); "
                "the model needs VV and VH (a 1SDV product)",
                self.archive.path,
            )
        window = radar_window(self.meta.gcps, self.meta.lines, self.meta.samples, grid)
        if window is None:
            raise PairingError(f"does not overlap the target grid {grid.bounds} ({grid.crs})", self.archive.path)
        self.window = window
        self.looks = max(1, int(grid.resolution // self.meta.pixel_spacing))
        self.noise_removal = noise_removal
        self._tmpdir = tempfile.TemporaryDirectory(prefix="cloudlulc-s1-", dir=workdir)
        self._files: list[Path] = []
        self._gcps = self._window_gcps()
        try:
            for pol in self.polarisations:
                self._files.append(self._calibrate(pol))
        except BaseException:
            self.close()
            raise

    def _window_gcps(self) -> list[GroundControlPoint]:
        """GCPs near the window, in the calibrated raster's (multilooked, window-relative) geometry."""
        w = self.window
        spacing_r = max(np.diff(sorted({g.row for g in self.meta.gcps})).max(initial=0.0), 1.0)
        spacing_c = max(np.diff(sorted({g.col for g in self.meta.gcps})).max(initial=0.0), 1.0)
        near = [
            g for g in self.meta.gcps
            if w.row_off - spacing_r <= g.row <= w.row_off + w.height + spacing_r
            and w.col_off - spacing_c <= g.col <= w.col_off + w.width + spacing_c
        ]  # fmt: skip
        chosen = near if len(near) >= 6 else self.meta.gcps
        return [
            GroundControlPoint(row=(g.row - w.row_off) / self.looks, col=(g.col - w.col_off) / self.looks,
                               x=g.x, y=g.y, z=g.z, id=g.id)
            for g in chosen
        ]  # fmt: skip

    def _calibrate(self, pol: str) -> Path:
        members = self.meta.polarisations[pol]
        if not self.archive.exists(members.measurement):
            raise ProductError(f"{pol} measurement file is missing", self.archive.display(members.measurement))
        self.archive.check_integrity(members.measurement)
        cal = read_calibration(self.archive, members.calibration)
        noise = read_noise(self.archive, members.noise) if self.noise_removal else None
        w, looks = self.window, self.looks
        out_h, out_w = int(w.height) // looks, int(w.width) // looks
        if out_h == 0 or out_w == 0:
            raise PairingError("overlap with the target grid is smaller than one output pixel", self.archive.path)
        out_path = Path(self._tmpdir.name) / f"{self.meta.product_id}_{pol}_sigma0.tif"
        profile = {
            "driver": "GTiff", "width": out_w, "height": out_h, "count": 1, "dtype": "float32", "nodata": np.nan,
            "tiled": True, "blockxsize": 512, "blockysize": 512, "BIGTIFF": "IF_SAFER",
        }  # fmt: skip
        chunk = max(looks, (_CHUNK_LINES // looks) * looks)
        try:
            with warnings.catch_warnings():  # the file gets GCPs, not a geotransform
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                dst = rasterio.open(out_path, "w", **profile)
            with rasterio.open(self.archive.gdal_path(members.measurement)) as src, dst:
                if (src.height, src.width) != (self.meta.lines, self.meta.samples):
                    raise ProductError(
                        f"measurement is {src.height}x{src.width}, annotation says "
                        f"{self.meta.lines}x{self.meta.samples}",
                        self.archive.display(members.measurement),
                    )
                for out_row in range(0, out_h, chunk // looks):
                    n_out = min(chunk // looks, out_h - out_row)
                    r0 = int(w.row_off) + out_row * looks
                    dn = src.read(1, window=Window(int(w.col_off), r0, out_w * looks, n_out * looks))
                    block = sigma0(dn, r0, int(w.col_off), cal, noise, looks=looks)
                    dst.write(block, 1, window=Window(0, out_row, out_w, n_out))
                dst.gcps = (self._gcps, WGS84)
        except RasterioError as exc:
            raise ProductError(f"cannot decode the {pol} measurement ({exc})",
                               self.archive.display(members.measurement)) from exc  # fmt: skip
        return out_path

    def read_linear(self, row0: int, nrows: int, col0: int = 0, ncols: int | None = None) -> npt.NDArray[np.float32]:
        """σ⁰ (linear) of the grid window ``[row0, row0 + nrows) × [col0, col0 + ncols)``.

        Returns:
            (P, n, w) float32, NaN where the product has no data.
        """
        nrows = min(nrows, self.grid.height - row0)
        ncols = min(self.grid.width - col0 if ncols is None else ncols, self.grid.width - col0)
        out = np.full((len(self._files), nrows, ncols), np.nan, dtype=np.float32)
        for i, path in enumerate(self._files):
            with rasterio.open(path) as src:
                reproject(
                    source=rasterio.band(src, 1),
                    destination=out[i],
                    gcps=self._gcps,
                    src_crs=WGS84,
                    src_nodata=np.nan,
                    dst_transform=self.grid.strip_transform(row0, col0),
                    dst_crs=self.grid.crs,
                    dst_nodata=np.nan,
                    resampling=Resampling.bilinear,
                    warp_mem_limit=256,
                    SRC_METHOD="GCP_TPS",
                )
        return out

    def tags(self) -> dict[str, str]:
        """Provenance tags for the written map."""
        return {
            "S1_COEFFICIENT": "sigma0",
            "S1_GEOCODING": GEOCODING_METHOD,
            "S1_NOISE_REMOVAL": str(self.noise_removal).lower(),
            "S1_LOOKS": str(self.looks),
        }

    def close(self) -> None:
        """Deletes the temporary calibrated rasters."""
        self._tmpdir.cleanup()
