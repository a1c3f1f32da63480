"""One pair's inputs as model-ready strips: S2 reflectance and S1 backscatter (dB) on the S2 grid.

`SceneReader` opens the S2 product with the reader of its kind, opens every S1 slice of the
pair onto the S2 grid, and for each strip converts DNs to reflectance with the product's own
offsets, mosaics the S1 slices in linear power (mean where slices overlap), converts to dB and
normalises both with the contract.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from cloudlulc_edge.contract import (
    DEFAULT_CONTRACT,
    InputContract,
    linear_to_db,
    normalise_s1_db,
    normalise_s2_reflectance,
    s2_dn_to_reflectance,
)
from cloudlulc_edge.errors import ProductError
from cloudlulc_edge.io.geotiff import GeoTiffS1Reader, GeoTiffS2Reader, find_geotiff_scene
from cloudlulc_edge.io.grid import RasterGrid, Strip
from cloudlulc_edge.io.products import Product
from cloudlulc_edge.io.s1_safe import S1SafeReader
from cloudlulc_edge.io.s1_terrain import TerrainCorrection
from cloudlulc_edge.io.s2_safe import S2SafeReader
from cloudlulc_edge.optics import from_reflectance, from_scl

__all__ = ["SceneReader"]


class _S2Source(Protocol):
    grid: RasterGrid
    offsets: list[float]

    def read_dn(self, row0: int, nrows: int, col0: int = 0, ncols: int | None = None) -> npt.NDArray[np.float32]: ...
    def scl_rows(self, row0: int, nrows: int) -> npt.NDArray[np.uint8] | None: ...
    def tags(self) -> dict[str, str]: ...
    def close(self) -> None: ...


class _S1Source(Protocol):
    def read_linear(
        self, row0: int, nrows: int, col0: int = 0, ncols: int | None = None
    ) -> npt.NDArray[np.float32]: ...
    def tags(self) -> dict[str, str]: ...
    def close(self) -> None: ...


class SceneReader:
    """Reads a pair's S2 and S1 products as normalised strips on the S2 grid.

    Args:
        s2: The optical product.
        s1: The SAR products (slices of one acquisition), possibly empty.
        resolution: Output resolution in metres (SAFE default 10; GeoTIFF default: finest band).
        workdir: Folder for temporary calibrated S1 rasters.
        s2_offset: DN offset for GeoTIFF scenes that carry none.
        s2_quantification: DN divisor for GeoTIFF scenes that carry none.
        contract: Normalisation contract.
        terrain: Range-Doppler terrain correction of S1 SAFE products (None: GCP geocoding).
        verify_checksums: Check the SAFE files read against the checksums of ``manifest.safe``.

    Raises:
        ProductError: A product cannot be opened.
        PairingError: An S1 product does not fit the S2 grid (no overlap, different CRS).
    """

    def __init__(
        self,
        s2: Product,
        s1: tuple[Product, ...] = (),
        resolution: int | None = None,
        workdir: str | Path | None = None,
        s2_offset: float | None = None,
        s2_quantification: float | None = None,
        contract: InputContract = DEFAULT_CONTRACT,
        terrain: TerrainCorrection | None = None,
        verify_checksums: bool = True,
    ) -> None:
        self.contract = contract
        self.terrain = terrain
        self.verify_checksums = verify_checksums
        self.s2_norm = contract.s2
        self._s1: list[_S1Source] = []
        self.s2 = self._open_s2(s2, resolution, s2_offset, s2_quantification)
        self.grid = self.s2.grid
        try:
            for product in s1:
                self._s1.append(self._open_s1(product, workdir))
        except BaseException:
            self.close()
            raise

    def _open_s2(
        self, product: Product, resolution: int | None, offset: float | None, quantification: float | None
    ) -> _S2Source:
        if product.kind == "s2_safe":
            return S2SafeReader(product.path, resolution or 10, self.verify_checksums)
        scene = find_geotiff_scene(Path(product.path))
        if scene is None:
            raise ProductError("no longer a GeoTIFF scene", product.path)
        reader = GeoTiffS2Reader(scene, resolution, offset, quantification)
        self.s2_norm = dataclasses.replace(self.contract.s2, quantification=reader.quantification)
        return reader

    def _open_s1(self, product: Product, workdir: str | Path | None) -> _S1Source:
        if product.kind == "s1_safe":
            return S1SafeReader(product.path, self.grid, self.contract.s1_polarisations, workdir,
                                terrain=self.terrain, verify_checksums=self.verify_checksums)  # fmt: skip
        scene = find_geotiff_scene(Path(product.path))
        if scene is None:
            raise ProductError("no longer a GeoTIFF scene", product.path)
        return GeoTiffS1Reader(scene, self.grid)

    @property
    def has_s1(self) -> bool:
        """Whether the scene has SAR input."""
        return bool(self._s1)

    def read(self, row0: int, nrows: int, col0: int = 0, ncols: int | None = None) -> Strip:
        """Reads the grid window ``[row0, row0 + nrows) × [col0, col0 + ncols)`` as a normalised `Strip`."""
        s2, s2_valid = self._read_s2(row0, nrows, col0, ncols)
        if not self._s1:
            return Strip(row0, s2, s2_valid, None, None)
        stack = np.stack([src.read_linear(row0, nrows, col0, ncols) for src in self._s1])  # (S, 2, n, W)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices outside every footprint
            linear = np.nanmean(stack, axis=0) if len(self._s1) > 1 else stack[0]
        s1_valid = np.all(np.isfinite(linear), axis=0)
        s1, s1_valid = normalise_s1_db(linear_to_db(np.nan_to_num(linear, nan=1.0)), s1_valid, self.contract.s1)
        return Strip(row0, s2, s2_valid, s1, s1_valid)

    def _read_s2(self, row0: int, nrows: int, col0: int = 0,
                 ncols: int | None = None) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:  # fmt: skip
        """(12, n, w) normalised reflectance of a grid window and its (n, w) validity."""
        dn = self.s2.read_dn(row0, nrows, col0, ncols)
        # In place: a 512-row strip of a 10980-wide tile is 270 MB per float32 copy.
        reflectance, valid = s2_dn_to_reflectance(dn, self.s2.offsets, self.s2_norm, inplace=True)
        s2, s2_valid = normalise_s2_reflectance(reflectance, valid, self.s2_norm, inplace=True)
        return s2, s2_valid

    def optics(self, row0: int, nrows: int) -> tuple[npt.NDArray[np.uint8], str]:
        """Where the optics of rows ``[row0, row0 + nrows)`` were usable (`cloudlulc_edge.optics` categories).

        Returns:
            ``((n, W) uint8 categories, source)``: from the product's SCL (its no-data class is
            no map), else from the spectral cloud proxy on the reflectance (which reads the S2
            bands again; S1 is not read).
        """
        scl = self.s2.scl_rows(row0, nrows)
        if scl is not None:
            return from_scl(scl, scl != 0), "SCL (Sen2Cor scene classification)"
        s2, s2_valid = self._read_s2(row0, nrows)
        return from_reflectance(s2, s2_valid), "spectral proxy (B02 > 0.2 and B11 > 0.15)"

    def tags(self) -> dict[str, str]:
        """Provenance tags of the inputs."""
        tags = dict(self.s2.tags())
        for src in self._s1:
            tags.update(src.tags())
        return tags

    def close(self) -> None:
        """Closes every product (and deletes temporary S1 rasters)."""
        for src in self._s1:
            src.close()
        self._s1.clear()
        if hasattr(self, "s2"):
            self.s2.close()
