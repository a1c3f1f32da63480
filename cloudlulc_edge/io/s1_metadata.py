"""Sentinel-1 IW/EW GRD SAFE metadata: the manifest and the product annotation.

`read_s1_metadata` parses what pairing, calibration and geocoding need without reading pixels:
identity and timing, footprint, the files of each polarisation, the image size and pixel spacing,
and the geolocation grid (GCPs: line, pixel → longitude, latitude, height).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from rasterio.control import GroundControlPoint

from cloudlulc_edge.errors import ProductError
from cloudlulc_edge.io.archive import SafeArchive, find_text, metadata_errors, parse_xml

__all__ = ["S1Polarisation", "S1SafeMetadata", "read_s1_metadata"]


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
