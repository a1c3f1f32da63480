"""Sentinel-1 GRD radiometric calibration with thermal-noise removal, from the product's LUTs.

GDAL reads GRD pixels but does not calibrate them (OSGeo/gdal#5826), so calibration is done here
(`sentinel.md` §6):

    σ⁰ = (DN² − η) / A_σ²,   η = noiseRange(line, pixel) · noiseAzimuth(line, pixel)

with every LUT bilinearly interpolated from its vector grid: linear along pixels within each
vector, then linear along lines between vectors. Beyond the first/last vector the nearest vector
is used (the last range vector may stop inside the image, umr-lops/xsar#3). IPF ≥ 2.9 products
split the noise into range and azimuth vectors; older ones have a single range ``noiseVector``
and no azimuth term. Noise-subtracted values ≤ 0 are raised to a positive floor; DN 0 marks
no-value pixels and becomes NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from cloudlulc_edge.errors import ProductError
from cloudlulc_edge.io.archive import SafeArchive, find_text, metadata_errors, parse_xml

__all__ = [
    "SIGMA0_FLOOR",
    "CalibrationLut",
    "Coefficient",
    "NoiseAzimuthBlock",
    "NoiseLut",
    "backscatter",
    "read_calibration",
    "read_noise",
]

#: Backscatter coefficient of a calibration LUT: σ⁰ (``sigmaNought``), β⁰ (``betaNought``) or ellipsoid γ⁰ (``gamma``).
Coefficient = Literal["sigma0", "beta0", "gamma"]

#: Linear σ⁰ floor applied after noise subtraction (-40 dB, as xarray-sentinel's ``min_db``).
SIGMA0_FLOOR = 1e-4


def _floats(text: str | None) -> npt.NDArray[np.float64]:
    return np.asarray((text or "").split(), dtype=np.float64)


@dataclass(frozen=True)
class CalibrationLut:
    """Calibration vectors of one polarisation.

    Attributes:
        lines: (K,) line of each vector.
        pixels: K arrays of pixel positions.
        sigma0: K arrays of ``sigmaNought`` values.
        beta0: K arrays of ``betaNought`` values.
        gamma: K arrays of ``gamma`` values.
        absolute_constant: ``absoluteCalibrationConstant`` (informational; already in the LUTs).
    """

    lines: npt.NDArray[np.float64]
    pixels: tuple[npt.NDArray[np.float64], ...]
    sigma0: tuple[npt.NDArray[np.float64], ...]
    beta0: tuple[npt.NDArray[np.float64], ...]
    gamma: tuple[npt.NDArray[np.float64], ...]
    absolute_constant: float

    def interpolate(
        self, rows: npt.NDArray[Any], cols: npt.NDArray[Any], which: str = "sigma0"
    ) -> npt.NDArray[np.float64]:
        """Bilinear value of a LUT on the grid ``rows × cols`` → (len(rows), len(cols))."""
        return _interp_vectors(self.lines, self.pixels, getattr(self, which), rows, cols)


@dataclass(frozen=True)
class NoiseAzimuthBlock:
    """One ``noiseAzimuthVector``: an azimuth LUT valid over a block of lines × samples."""

    first_line: int
    last_line: int
    first_sample: int
    last_sample: int
    lines: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64]


@dataclass(frozen=True)
class NoiseLut:
    """Thermal-noise LUTs of one polarisation.

    Attributes:
        range_lines: (K,) line of each range vector.
        range_pixels: K arrays of pixel positions.
        range_values: K arrays of range noise values.
        azimuth: Azimuth blocks (empty for IPF < 2.9 products, whose azimuth factor is 1).
    """

    range_lines: npt.NDArray[np.float64]
    range_pixels: tuple[npt.NDArray[np.float64], ...]
    range_values: tuple[npt.NDArray[np.float64], ...]
    azimuth: tuple[NoiseAzimuthBlock, ...]

    def interpolate(self, rows: npt.NDArray[Any], cols: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        """η on the grid ``rows × cols`` → (len(rows), len(cols))."""
        eta = _interp_vectors(self.range_lines, self.range_pixels, self.range_values, rows, cols)
        rows = np.asarray(rows, dtype=np.float64)
        cols = np.asarray(cols, dtype=np.float64)
        for block in self.azimuth:
            # Half-open blocks widened by half a pixel: a multilooked pixel whose centre falls between
            # two sub-swaths (x.5 with an even look count) belongs to exactly one of them.
            r_in = (rows >= block.first_line - 0.5) & (rows < block.last_line + 0.5)
            c_in = (cols >= block.first_sample - 0.5) & (cols < block.last_sample + 0.5)
            if not r_in.any() or not c_in.any():
                continue
            if block.lines.size == 1:  # lineCount=1 blocks (isce2#202): constant over the block
                factor = np.full(int(r_in.sum()), block.values[0])
            else:
                factor = np.interp(rows[r_in], block.lines, block.values)
            eta[np.ix_(r_in, c_in)] *= factor[:, None]
        return eta


def _interp_vectors(
    lines: npt.NDArray[np.float64],
    pixels: tuple[npt.NDArray[np.float64], ...],
    values: tuple[npt.NDArray[np.float64], ...],
    rows: npt.NDArray[Any],
    cols: npt.NDArray[Any],
) -> npt.NDArray[np.float64]:
    """Linear in pixel within each vector, then linear in line between vectors (clamped)."""
    rows = np.asarray(rows, dtype=np.float64)
    cols = np.asarray(cols, dtype=np.float64)
    per_vector = np.stack([np.interp(cols, p, v) for p, v in zip(pixels, values, strict=True)])  # (K, C)
    k = np.clip(np.searchsorted(lines, rows, side="right") - 1, 0, len(lines) - 2) if len(lines) > 1 else None
    if k is None:
        single: npt.NDArray[np.float64] = np.broadcast_to(per_vector[0], (rows.size, cols.size)).copy()
        return single
    span = lines[k + 1] - lines[k]
    w = np.clip((rows - lines[k]) / np.where(span == 0, 1, span), 0.0, 1.0)[:, None]
    # (1 − w)·v[k] + w·v[k+1] in place: two (rows, cols) arrays at a time, not five.
    upper = per_vector[k + 1]
    upper *= w
    out: npt.NDArray[np.float64] = per_vector[k]
    out *= 1 - w
    out += upper
    return out


@metadata_errors
def read_calibration(archive: SafeArchive, member: str) -> CalibrationLut:
    """Parses a calibration XML.

    Raises:
        ProductError: Malformed or empty vector list, or vector lengths that disagree.
    """
    src = archive.display(member)
    root = parse_xml(archive, member)
    vectors = root.findall(".//calibrationVectorList/calibrationVector")
    if not vectors:
        raise ProductError("no calibrationVector entries", src)
    lines, pixels, s0, b0, g0 = [], [], [], [], []
    for v in vectors:
        lines.append(float(find_text(v, "line", src)))
        px = _floats(find_text(v, "pixel", src))
        arrays = [_floats(find_text(v, tag, src)) for tag in ("sigmaNought", "betaNought", "gamma")]
        if any(a.size != px.size for a in arrays):
            raise ProductError(f"calibration vector at line {lines[-1]:g} has LUTs of unequal length", src)
        pixels.append(px)
        s0.append(arrays[0])
        b0.append(arrays[1])
        g0.append(arrays[2])
    const = root.find(".//absoluteCalibrationConstant")
    return CalibrationLut(np.asarray(lines), tuple(pixels), tuple(s0), tuple(b0), tuple(g0),
                          float(const.text) if const is not None and const.text else 1.0)  # fmt: skip


@metadata_errors
def read_noise(archive: SafeArchive, member: str) -> NoiseLut:
    """Parses a noise XML in the IPF ≥ 2.9 (range + azimuth) or older (range only) form.

    Raises:
        ProductError: No noise vectors, or lengths that disagree.
    """
    src = archive.display(member)
    root = parse_xml(archive, member)
    range_vectors = root.findall(".//noiseRangeVectorList/noiseRangeVector")
    lut_tag = "noiseRangeLut"
    if not range_vectors:  # IPF < 2.9
        range_vectors = root.findall(".//noiseVectorList/noiseVector")
        lut_tag = "noiseLut"
    if not range_vectors:
        raise ProductError("no noiseRangeVector or noiseVector entries", src)
    lines, pixels, values = [], [], []
    for v in range_vectors:
        lines.append(float(find_text(v, "line", src)))
        px, lut = _floats(find_text(v, "pixel", src)), _floats(find_text(v, lut_tag, src))
        if px.size != lut.size:
            raise ProductError(f"noise vector at line {lines[-1]:g}: {px.size} pixels but {lut.size} values", src)
        pixels.append(px)
        values.append(lut)
    blocks = []
    for a in root.findall(".//noiseAzimuthVectorList/noiseAzimuthVector"):
        az_lines, az_values = _floats(find_text(a, "line", src)), _floats(find_text(a, "noiseAzimuthLut", src))
        if az_lines.size != az_values.size:
            raise ProductError("noiseAzimuthVector line and LUT lengths differ", src)
        blocks.append(
            NoiseAzimuthBlock(
                int(find_text(a, "firstAzimuthLine", src)), int(find_text(a, "lastAzimuthLine", src)),
                int(find_text(a, "firstRangeSample", src)), int(find_text(a, "lastRangeSample", src)),
                az_lines, az_values,
            )
        )  # fmt: skip
    return NoiseLut(np.asarray(lines), tuple(pixels), tuple(values), tuple(blocks))


def backscatter(
    dn: npt.NDArray[Any],
    row0: int,
    col0: int,
    calibration: CalibrationLut,
    noise: NoiseLut | None,
    looks: int = 1,
    floor: float = SIGMA0_FLOOR,
    coefficient: Coefficient = "sigma0",
) -> npt.NDArray[np.float32]:
    """Calibrated, noise-removed backscatter (linear; σ⁰ by default) of a window of measurement DNs.

    With ``looks > 1`` the intensity DN² is averaged over ``looks × looks`` blocks (ignoring
    no-value pixels) and the LUTs are evaluated at block centres; the LUTs vary over hundreds of
    pixels, so this equals averaging per-pixel σ⁰ to well below 0.01 dB.

    Args:
        dn: (h, w) DNs of the window whose upper-left pixel is ``(row0, col0)``; h and w must be
            multiples of ``looks``.
        row0: First image line of the window.
        col0: First image sample of the window.
        calibration: Calibration LUTs of the polarisation.
        noise: Noise LUTs, or None to skip thermal-noise removal.
        looks: Block size of the multilook average.
        floor: Positive floor for noise-subtracted values.
        coefficient: ``sigma0``, ``beta0`` (the input of radiometric terrain flattening) or ``gamma``.

    Returns:
        (h / looks, w / looks) float32 backscatter; NaN where every DN of a block is 0 (no-value pixels).
    """
    h, w = dn.shape[0] // looks, dn.shape[1] // looks
    # In place where it can be: at full resolution (10 m S1 onto a 10 m grid, looks 1) a block of
    # 512 GRD lines is 13 Mpx, and every float64 temporary 107 MB.
    if looks == 1:
        power = dn[:h, :w].astype(np.float64)
        empty = power == 0
        power *= power
    else:
        blocks = dn[: h * looks, : w * looks].reshape(h, looks, w, looks).astype(np.float64)
        count = (blocks != 0).sum(axis=(1, 3))
        power = (blocks * blocks).sum(axis=(1, 3)) / np.maximum(count, 1)
        empty = count == 0
    centre = (looks - 1) / 2.0
    rows = row0 + np.arange(h, dtype=np.float64) * looks + centre
    cols = col0 + np.arange(w, dtype=np.float64) * looks + centre
    if noise is not None:
        power -= noise.interpolate(rows, cols)
    a = calibration.interpolate(rows, cols, coefficient)
    a *= a
    power /= a
    np.maximum(power, floor, out=power)
    out: npt.NDArray[np.float32] = power.astype(np.float32)
    out[empty] = np.nan
    return out
