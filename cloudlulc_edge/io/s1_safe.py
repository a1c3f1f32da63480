"""Sentinel-1 IW/EW GRD SAFE metadata and radiometric calibration with thermal-noise removal.

GDAL reads GRD pixels but does not calibrate them (OSGeo/gdal#5826), so calibration is done here
from the product's LUTs (`sentinel.md` §6):

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
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
import numpy.typing as npt
from rasterio.control import GroundControlPoint

from cloudlulc_edge.errors import ProductError
from cloudlulc_edge.io.archive import SafeArchive, find_text, metadata_errors, parse_xml

__all__ = [
    "CalibrationLut",
    "NoiseAzimuthBlock",
    "NoiseLut",
    "S1Polarisation",
    "S1SafeMetadata",
    "read_calibration",
    "read_noise",
    "read_s1_metadata",
    "sigma0",
]

#: Linear σ⁰ floor applied after noise subtraction (-40 dB, as xarray-sentinel's ``min_db``).
SIGMA0_FLOOR = 1e-4


def _floats(text: str | None) -> npt.NDArray[np.float64]:
    return np.asarray((text or "").split(), dtype=np.float64)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.rstrip("Z").split(".")[0])


@dataclass(frozen=True)
class S1Polarisation:
    """File members of one polarisation.

    Attributes:
        name: ``VV``, ``VH``, ``HH`` or ``HV``.
        annotation: Product annotation XML member.
        calibration: Calibration XML member.
        noise: Noise XML member.
        measurement: Measurement TIFF member.
    """

    name: str
    annotation: str
    calibration: str
    noise: str
    measurement: str


@dataclass
class S1SafeMetadata:
    """What the manifest and annotation say about a GRD product.

    Attributes:
        product_id: Product name without ``.SAFE``.
        mission: ``S1A`` / ``S1B`` / ``S1C``.
        mode: ``IW``, ``EW``...
        product_type: ``GRD``.
        start_time: Acquisition start (UTC, naive).
        stop_time: Acquisition stop (UTC, naive).
        absolute_orbit: Absolute orbit number.
        datatake_id: Mission datatake id (consecutive slices share it).
        orbit_pass: ``ASCENDING`` / ``DESCENDING``.
        ipf_version: Processor version string (``003.40``).
        footprint: GeoJSON polygon (EPSG:4326) from the manifest.
        polarisations: Polarisation name → its members.
        lines: Image lines of the measurement.
        samples: Image samples (columns) of the measurement.
        pixel_spacing: Ground range pixel spacing, metres.
        gcps: Geolocation-grid GCPs (row=line, col=pixel; x=lon, y=lat, z=height).
        slice_number: Slice number within the datatake, if given.
    """

    product_id: str
    mission: str
    mode: str
    product_type: str
    start_time: datetime
    stop_time: datetime
    absolute_orbit: int
    datatake_id: int
    orbit_pass: str
    ipf_version: str
    footprint: dict[str, Any]
    polarisations: dict[str, S1Polarisation]
    lines: int
    samples: int
    pixel_spacing: float
    gcps: list[GroundControlPoint]
    slice_number: int | None


@metadata_errors
def read_s1_metadata(archive: SafeArchive) -> S1SafeMetadata:
    """Parses ``manifest.safe`` and the first product annotation.

    Raises:
        ProductError: Not a GRD product, or required metadata is missing.
    """
    src = archive.display("manifest.safe")
    root = parse_xml(archive, "manifest.safe")
    product_type = find_text(root, ".//productType", src)
    if product_type != "GRD":
        raise ProductError(f"product type {product_type!r} is not supported; only Level-1 GRD products are", src)
    family = find_text(root, ".//platform/number", src)
    mission = "S1" + family
    coords = find_text(root, ".//footPrint/coordinates", src)
    ring = [[float(p.split(",")[1]), float(p.split(",")[0])] for p in coords.split()]
    ring.append(ring[0])
    software = root.find(".//processing/facility/software")
    if software is None:
        software = root.find(".//software")
    ipf = software.attrib.get("version", "") if software is not None else ""
    pols = _polarisation_members(archive, [p.text or "" for p in root.iterfind(".//transmitterReceiverPolarisation")])
    if not pols:
        raise ProductError("no polarisation annotation files found under annotation/", archive.path)
    first = next(iter(pols.values()))
    ann = parse_xml(archive, first.annotation)
    ann_src = archive.display(first.annotation)
    slice_el = root.find(".//sliceNumber")
    return S1SafeMetadata(
        product_id=archive.name,
        mission=mission,
        mode=find_text(root, ".//instrumentMode/mode", src),
        product_type=product_type,
        start_time=_time(find_text(root, ".//acquisitionPeriod/startTime", src)),
        stop_time=_time(find_text(root, ".//acquisitionPeriod/stopTime", src)),
        absolute_orbit=int(find_text(root, ".//orbitNumber", src)),
        datatake_id=int(find_text(root, ".//missionDataTakeID", src)),
        orbit_pass=find_text(root, ".//orbitProperties/pass", src).upper(),
        ipf_version=ipf,
        footprint={"type": "Polygon", "coordinates": [ring]},
        polarisations=pols,
        lines=int(find_text(ann, ".//imageInformation/numberOfLines", ann_src)),
        samples=int(find_text(ann, ".//imageInformation/numberOfSamples", ann_src)),
        pixel_spacing=float(find_text(ann, ".//imageInformation/rangePixelSpacing", ann_src)),
        gcps=_gcps(ann, ann_src),
        slice_number=int(slice_el.text) if slice_el is not None and slice_el.text else None,
    )


def _polarisation_members(archive: SafeArchive, names: list[str]) -> dict[str, S1Polarisation]:
    """Finds the annotation/calibration/noise/measurement members of each polarisation."""
    out: dict[str, S1Polarisation] = {}
    annotations = archive.glob("annotation/*.xml")  # list the product once, not per polarisation
    calibrations = archive.glob("annotation/calibration/calibration-*.xml")
    noises = archive.glob("annotation/calibration/noise-*.xml")
    for pol in names:
        tag = f"-{pol.lower()}-"
        ann = [m for m in annotations if tag in m]
        cal = [m for m in calibrations if tag in m]
        noise = [m for m in noises if tag in m]
        if not ann and (cal or noise):
            missing = f"annotation/s1?-*{tag}*.xml"
            raise ProductError(f"{pol}: product annotation ({missing}) is missing but its calibration/noise XML is "
                               "present: an incomplete download", archive.path)  # fmt: skip
        if not ann:
            continue  # listed in the manifest but none of its files delivered (a VV-only extract)
        if not cal or not noise:
            raise ProductError(f"{pol}: calibration or noise XML missing under annotation/calibration/", archive.path)
        stem = ann[0].rsplit("/", 1)[-1][: -len(".xml")]
        out[pol] = S1Polarisation(pol, ann[0], cal[0], noise[0], f"measurement/{stem}.tiff")
    return out


def _gcps(ann: ElementTree.Element, src: Path) -> list[GroundControlPoint]:
    points = ann.findall(".//geolocationGridPointList/geolocationGridPoint")
    if len(points) < 4:
        raise ProductError(f"geolocation grid has {len(points)} points; at least 4 are needed", src)
    return [
        GroundControlPoint(
            row=float(find_text(p, "line", src)),
            col=float(find_text(p, "pixel", src)),
            x=float(find_text(p, "longitude", src)),
            y=float(find_text(p, "latitude", src)),
            z=float(find_text(p, "height", src)),
            id=str(i),
        )
        for i, p in enumerate(points)
    ]


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
            r_in = (rows >= block.first_line) & (rows <= block.last_line)
            c_in = (cols >= block.first_sample) & (cols <= block.last_sample)
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
    out: npt.NDArray[np.float64] = (1 - w) * per_vector[k] + w * per_vector[k + 1]
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


def sigma0(
    dn: npt.NDArray[Any],
    row0: int,
    col0: int,
    calibration: CalibrationLut,
    noise: NoiseLut | None,
    looks: int = 1,
    floor: float = SIGMA0_FLOOR,
) -> npt.NDArray[np.float32]:
    """Calibrated, noise-removed σ⁰ (linear) of a window of measurement DNs.

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

    Returns:
        (h / looks, w / looks) float32 σ⁰; NaN where every DN of a block is 0 (no-value pixels).
    """
    h, w = dn.shape[0] // looks, dn.shape[1] // looks
    blocks = dn[: h * looks, : w * looks].reshape(h, looks, w, looks).astype(np.float64)
    valid = blocks != 0
    count = valid.sum(axis=(1, 3))
    power = (blocks * blocks).sum(axis=(1, 3)) / np.maximum(count, 1)
    centre = (looks - 1) / 2.0
    rows = row0 + np.arange(h, dtype=np.float64) * looks + centre
    cols = col0 + np.arange(w, dtype=np.float64) * looks + centre
    if noise is not None:
        power -= noise.interpolate(rows, cols)
    a = calibration.interpolate(rows, cols, "sigma0")
    out: npt.NDArray[np.float32] = np.maximum(power / (a * a), floor).astype(np.float32)
    out[count == 0] = np.nan
    return out
