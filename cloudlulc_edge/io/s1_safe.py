"""Sentinel-1 GRD SAFE reader: calibrated backscatter of one product on a target grid, strip by strip.

Order of operations (`sentinel.md` §7–8):

1. Find the radar window that covers the target grid: through the annotation's GCPs
   (`s1_geocode.radar_window`), or, with terrain correction, by range-Doppler solves on the DEM
   (`s1_terrain.TerrainGeocoder`).
2. Calibrate and denoise that window (`s1_calibration.backscatter`; σ⁰, or β⁰ when the terrain is
   flattened) in chunks of lines and write float32 linear backscatter to a tiled temporary
   GeoTIFF. When the target grid is coarser than the radar pixels, power is averaged over
   ``looks × looks`` blocks first (multilooking in linear power).
3. Per output strip, geocode that file onto the strip in linear power (averaging dB is biased):
   `GcpGeocoder` (GCP thin-plate spline, ``S1_GEOCODING=GCP_ELLIPSOID``) or `TerrainGeocoder`
   (range-Doppler on the DEM, ``S1_GEOCODING=RD_DEM``; layover and shadow become NaN; γ⁰ with
   ``rtc``). Conversion to dB happens later, in the scene reader.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

from cloudlulc_edge.errors import PairingError, ProductError
from cloudlulc_edge.io.archive import SafeArchive
from cloudlulc_edge.io.dem import Dem, DemError
from cloudlulc_edge.io.grid import RasterGrid
from cloudlulc_edge.io.orbit import OrbitModel, StateVectors, find_orbit_file, read_orbit_file
from cloudlulc_edge.io.s1_calibration import Coefficient, backscatter, read_calibration, read_noise
from cloudlulc_edge.io.s1_geocode import WGS84, GcpGeocoder, radar_window
from cloudlulc_edge.io.s1_metadata import S1SafeMetadata, read_s1_geometry, read_s1_metadata
from cloudlulc_edge.io.s1_terrain import RangeDoppler, TerrainCorrection, TerrainGeocoder

__all__ = ["S1SafeReader", "range_doppler_model"]

log = logging.getLogger(__name__)

#: Lines calibrated per chunk (multiplied up to a multiple of the look count).
_CHUNK_LINES = 512


def range_doppler_model(archive: SafeArchive, meta: S1SafeMetadata, orbit_dir: Path | None = None) -> RangeDoppler:
    """The range-Doppler model of a product: annotation timing and polynomials, annotation or orbit-file orbit.

    Raises:
        ProductError: The annotation lacks the geometry, or no orbit file in ``orbit_dir`` covers the product.
    """
    first = next(iter(meta.polarisations.values()))
    geometry = read_s1_geometry(archive, first.annotation)
    if orbit_dir is None:
        vectors = StateVectors(geometry.orbit_times, geometry.orbit_positions, geometry.orbit_velocities,
                               "annotation")  # fmt: skip
    else:
        path = find_orbit_file(Path(orbit_dir), meta.mission, meta.start_time, meta.stop_time)
        vectors = read_orbit_file(path, geometry.epoch)
    duration = geometry.lines * geometry.azimuth_time_interval
    return RangeDoppler(geometry, OrbitModel.fit(vectors, 0.0, duration))


class S1SafeReader:
    """Calibrated backscatter of one GRD product, geocoded onto a target grid strip by strip.

    Args:
        path: ``.SAFE`` folder or zip.
        grid: Target grid (the S2 output grid).
        polarisations: Polarisations to deliver, in channel order.
        workdir: Folder for the temporary calibrated rasters (default: the system temp folder).
        noise_removal: Subtract the thermal-noise LUTs.
        terrain: Range-Doppler terrain correction on a DEM (None: GCP geocoding on the ellipsoid).
        coefficient: ``sigma0`` (what the models take) or ``beta0`` (radar brightness, for
            comparisons with processors that deliver it); ignored with ``terrain.rtc``, which
            flattens β⁰ into γ⁰.
        verify_checksums: Check each measurement's MD5 against ``manifest.safe`` (sizes always).

    Attributes:
        radiometry: ``sigma0``, ``beta0`` or ``gamma0_terrain`` (what `read_linear` returns).
        geocoder: `GcpGeocoder` or `TerrainGeocoder`.

    Raises:
        ProductError: Metadata or LUTs are bad, a polarisation or the measurement file is missing,
            or the measurement cannot be decoded.
        DemError: The DEM is unusable or does not cover the scene (unless ``dem_fallback="gcp"``).
        PairingError: The product does not overlap the grid.
    """

    def __init__(
        self,
        path: str | Path,
        grid: RasterGrid,
        polarisations: Sequence[str] = ("VV", "VH"),
        workdir: str | Path | None = None,
        noise_removal: bool = True,
        terrain: TerrainCorrection | None = None,
        coefficient: Literal["sigma0", "beta0"] = "sigma0",
        verify_checksums: bool = True,
    ) -> None:
        self.archive = SafeArchive(Path(path), verify_checksums)
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
        self.looks = max(1, int(min(grid.pixel_size_m()) // self.meta.pixel_spacing))
        self.noise_removal = noise_removal
        self.fallback: str | None = None  # why terrain correction fell back to GCPs
        self._tmpdir = tempfile.TemporaryDirectory(prefix="cloudlulc-s1-", dir=workdir)
        try:
            self.geocoder = self._geocoder(terrain)
            rtc = isinstance(self.geocoder, TerrainGeocoder) and self.geocoder.rtc
            self.radiometry = "gamma0_terrain" if rtc else coefficient
            lut: Coefficient = "beta0" if rtc else coefficient  # RTC divides β⁰ by the illuminated area
            self._files = [self._calibrate(pol, lut) for pol in self.polarisations]
        except BaseException:
            self.close()
            raise

    @property
    def window(self) -> Window:
        """The calibrated radar window (full-resolution lines and samples)."""
        return self.geocoder.window

    def _geocoder(self, terrain: TerrainCorrection | None) -> GcpGeocoder | TerrainGeocoder:
        if terrain is not None:
            try:
                dem = Dem.open(terrain.dem, terrain.dem_datum, workdir=self._tmpdir.name)
                model = range_doppler_model(self.archive, self.meta, terrain.orbit_dir)
                return TerrainGeocoder(model, dem, self.grid, self.looks, model.geometry.azimuth_pixel_spacing,
                                       rtc=terrain.rtc)  # fmt: skip
            except DemError as exc:
                if terrain.dem_fallback != "gcp":
                    raise
                self.fallback = str(exc)
                log.warning("%s: terrain correction fell back to GCP geocoding: %s", self.archive.name, exc)
        window = radar_window(self.meta.gcps, self.meta.lines, self.meta.samples, self.grid)
        if window is None:
            raise PairingError(f"does not overlap the target grid {self.grid.bounds} ({self.grid.crs})",
                               self.archive.path)  # fmt: skip
        return GcpGeocoder(self.meta.gcps, window, self.looks, self.grid)

    def _calibrate(self, pol: str, coefficient: Coefficient) -> Path:
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
        out_path = Path(self._tmpdir.name) / f"{self.meta.product_id}_{pol}_{coefficient}.tif"
        profile = {
            "driver": "GTiff", "width": out_w, "height": out_h, "count": 1, "dtype": "float32", "nodata": np.nan,
            "tiled": True, "blockxsize": 512, "blockysize": 512, "BIGTIFF": "IF_SAFER",
        }  # fmt: skip
        chunk = max(looks, (_CHUNK_LINES // looks) * looks)
        try:
            with warnings.catch_warnings():  # a radar-geometry raster: no geotransform (GCPs at most)
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
                    block = backscatter(dn, r0, int(w.col_off), cal, noise, looks=looks, coefficient=coefficient)
                    dst.write(block, 1, window=Window(0, out_row, out_w, n_out))
                if isinstance(self.geocoder, GcpGeocoder):  # GDAL's GCP warp reads them from the file
                    dst.gcps = (self.geocoder.gcps, WGS84)
        except RasterioError as exc:
            raise ProductError(f"cannot decode the {pol} measurement ({exc})",
                               self.archive.display(members.measurement)) from exc  # fmt: skip
        return out_path

    def read_linear(self, row0: int, nrows: int, col0: int = 0, ncols: int | None = None) -> npt.NDArray[np.float32]:
        """Linear backscatter (`radiometry`) of the grid window ``[row0, row0 + nrows) × [col0, col0 + ncols)``.

        Returns:
            (P, n, w) float32, NaN where the product has no data (and in layover or shadow).
        """
        nrows = min(nrows, self.grid.height - row0)
        ncols = min(self.grid.width - col0 if ncols is None else ncols, self.grid.width - col0)
        return self.geocoder.sample(self._files, row0, nrows, col0, ncols)

    def tags(self) -> dict[str, str]:
        """Provenance tags for the written map."""
        tags = {
            "S1_RADIOMETRY": self.radiometry,
            "S1_NOISE_REMOVAL": str(self.noise_removal).lower(),
            "S1_LOOKS": str(self.looks),
            **self.geocoder.tags(),
        }
        if self.fallback is not None:
            tags["S1_GEOCODING_FALLBACK"] = self.fallback
        return tags

    def close(self) -> None:
        """Deletes the temporary calibrated rasters."""
        self._tmpdir.cleanup()
