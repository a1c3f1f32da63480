"""Sentinel-1 IW/EW GRD SAFE metadata: the manifest and the product annotation.

`read_s1_metadata` parses what pairing, calibration and GCP geocoding need without reading pixels:
identity and timing, footprint, the files of each polarisation, the image size and pixel spacing,
and the geolocation grid (GCPs: line, pixel → longitude, latitude, height). `read_s1_geometry`
parses what range-Doppler terrain correction needs: the orbit state vectors, the line timing and
the slant-to-ground-range polynomials.
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

__all__ = ["S1Geometry", "S1Polarisation", "S1SafeMetadata", "read_s1_geometry", "read_s1_metadata"]


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
class S1Geometry:
    """The acquisition geometry of a GRD product: what range-Doppler geocoding needs.

    Times are seconds since ``epoch`` (the first line's zero-Doppler time, UTC).

    Attributes:
        epoch: Zero-Doppler time of the first image line (``productFirstLineUtcTime``).
        azimuth_time_interval: Seconds between image lines.
        range_pixel_spacing: Ground-range spacing of image samples, metres (pixel p lies at ground
            range p · spacing from the first sample).
        azimuth_pixel_spacing: Along-track spacing of image lines on the ground, metres.
        near_slant_range: Slant range of the first image sample, metres (``slantRangeTime`` · c / 2).
        lines: Image lines.
        samples: Image samples.
        orbit_times: (N,) state-vector times.
        orbit_positions: (N, 3) ECEF positions, metres (Earth-fixed frame).
        orbit_velocities: (N, 3) ECEF velocities, m/s.
        conversion_times: (M,) times of the slant-to-ground-range polynomials.
        sr0: (M,) slant-range origin of each polynomial, metres.
        srgr: (M, D) coefficients, ground range = Σ_k c_k (R − sr0)^k.
        incidence_mid_swath: Ellipsoid incidence angle at mid swath, degrees.
    """

    epoch: datetime
    azimuth_time_interval: float
    range_pixel_spacing: float
    azimuth_pixel_spacing: float
    near_slant_range: float
    lines: int
    samples: int
    orbit_times: npt.NDArray[np.float64]
    orbit_positions: npt.NDArray[np.float64]
    orbit_velocities: npt.NDArray[np.float64]
    conversion_times: npt.NDArray[np.float64]
    sr0: npt.NDArray[np.float64]
    srgr: npt.NDArray[np.float64]
    incidence_mid_swath: float

    def seconds(self, when: datetime) -> float:
        """Seconds from the epoch to ``when``."""
        return (when - self.epoch).total_seconds()


def _utc(text: str) -> datetime:
    """Annotation time with its microseconds (``2021-12-23T05:11:22.594441``)."""
    return datetime.fromisoformat(text.strip().rstrip("Z"))


@metadata_errors
def read_s1_geometry(archive: SafeArchive, annotation: str) -> S1Geometry:
    """Parses the orbit, timing and slant-to-ground-range polynomials of one product annotation.

    Raises:
        ProductError: The annotation lacks any of them (naming the element).
    """
    ann = parse_xml(archive, annotation)
    src = archive.display(annotation)
    epoch = _utc(find_text(ann, ".//imageInformation/productFirstLineUtcTime", src))

    def seconds(text: str) -> float:
        return (_utc(text) - epoch).total_seconds()

    orbits = ann.findall(".//generalAnnotation/orbitList/orbit")
    if len(orbits) < 4:
        raise ProductError(f"the annotation has {len(orbits)} orbit state vectors; at least 4 are needed", src)
    times = np.array([seconds(find_text(o, "time", src)) for o in orbits])
    positions = np.array([[float(find_text(o, f"position/{a}", src)) for a in "xyz"] for o in orbits])
    velocities = np.array([[float(find_text(o, f"velocity/{a}", src)) for a in "xyz"] for o in orbits])
    conversions = ann.findall(".//coordinateConversionList/coordinateConversion")
    if not conversions:
        raise ProductError("the annotation has no coordinateConversion (slant-to-ground-range) polynomials", src)
    srgr = [np.asarray(find_text(c, "srgrCoefficients", src).split(), dtype=np.float64) for c in conversions]
    if len({c.size for c in srgr}) != 1:
        raise ProductError("srgrCoefficients of unequal length", src)
    return S1Geometry(
        epoch=epoch,
        azimuth_time_interval=float(find_text(ann, ".//imageInformation/azimuthTimeInterval", src)),
        range_pixel_spacing=float(find_text(ann, ".//imageInformation/rangePixelSpacing", src)),
        azimuth_pixel_spacing=float(find_text(ann, ".//imageInformation/azimuthPixelSpacing", src)),
        near_slant_range=float(find_text(ann, ".//imageInformation/slantRangeTime", src)) * 299_792_458.0 / 2,
        lines=int(find_text(ann, ".//imageInformation/numberOfLines", src)),
        samples=int(find_text(ann, ".//imageInformation/numberOfSamples", src)),
        orbit_times=times,
        orbit_positions=positions,
        orbit_velocities=velocities,
        conversion_times=np.array([seconds(find_text(c, "azimuthTime", src)) for c in conversions]),
        sr0=np.array([float(find_text(c, "sr0", src)) for c in conversions]),
        srgr=np.stack(srgr),
        incidence_mid_swath=float(find_text(ann, ".//imageInformation/incidenceAngleMidSwath", src)),
    )
