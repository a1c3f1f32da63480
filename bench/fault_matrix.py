"""Fault and bad-input matrix: broken, hostile and odd inputs built from the real products, mapped.

Every case writes one damaged (or merely unusual) product, built from the real files in
``../shared/data``, into an input folder beside one good BigEarthNet pair, and maps the folder
through the same library calls as ``cloudlulc-edge map``. A case is **handled** when all hold:

* the outcome is the specified one: *refused* (a skip or scene failure whose message matches the
  case and names the damaged file) or *mapped* (the scene is done and its map is valid);
* the good scene is mapped anyway (one bad input never stops a batch);
* no partial output: no temporary file is left and every map present opens, reads and has overviews;
* nothing is written outside the output folder, and the inputs are unchanged (sizes and mtimes).

Cases that need no mapping (S1 metadata, which ships without pixels) open the product the way the
reader does and expect a `ProductError` naming the file.

    python -m cloudlulc_edge.bench.fault_matrix [--readme docs/failure-behaviour.md]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import tempfile
import traceback
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from cloudlulc_edge.backends.base import Backend
from cloudlulc_edge.bench.utils import environment, markdown_table, publish
from cloudlulc_edge.errors import CloudLULCError
from cloudlulc_edge.io.archive import SafeArchive
from cloudlulc_edge.io.s1_calibration import read_calibration, read_noise
from cloudlulc_edge.io.s1_metadata import read_s1_metadata
from cloudlulc_edge.pairing import plan_directory, plan_to_file, read_plan
from cloudlulc_edge.pipeline import MapOptions
from cloudlulc_edge.runner import run_pairs

__all__ = ["CASES", "Case", "run_case", "run_matrix"]

_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
S2_SAFE = "s2-l2a-safe/S2A_MSIL2A_20221005T115411_N0400_R023_T29UNU_20221005T164454.SAFE"
S1_SAFE = "s1-grd-safe/S1A_IW_GRDH_1SDV_20210809T173953_20210809T174018_039156_049F13_6FF8.SAFE"
GOOD = "36_85"  # the good pair mapped beside every damaged input
DAMAGED = "4_55"  # the BigEarthNet pair GeoTIFF cases damage
OPTIONS = MapOptions(tile=128, overlap=8, batch_size=4, s2_offset=0.0, s2_quantification=10000.0, stac=False,
                     max_memory_mb=4096)  # fmt: skip

Builder = Callable[[Path, Path], Path]


@dataclass(frozen=True)
class Case:
    """One bad or unusual input.

    Attributes:
        name: Case id.
        group: ``xml``, ``safe``, ``zip``, ``geotiff``, ``scene``, ``paths``, ``resources`` (the
            listed faults) or ``scan``, ``identity``, ``output``, ``domain``, ``integrity``,
            ``plan`` (hardening against inputs nobody listed).
        build: ``(shared data, input folder) -> damaged path`` (written inside the input folder).
        expect: ``refused``, ``mapped``, or ``one-mapped`` (two products with one id: one is
            mapped, the other refused with a message naming it; never merged into one map).
        match: Regex the refusal message must match (``refused``, ``one-mapped``).
        mode: ``map`` (map the folder), ``plan`` (the case builds a plan file of the folder; it is
            read and run as ``run --input-root INPUTS`` does) or ``open_s1`` (open S1 metadata
            the way the reader does).
        resolution: Mapping resolution (60 for the S2 SAFE sample, which ships only its 60 m layers).
        plant: ``(output folder, operator's file outside it, damaged product)``: plants something
            in the output folder before mapping (links to the operator's file, which must stay
            byte-for-byte as it was).
    """

    name: str
    group: str
    build: Builder
    expect: str
    match: str = ""
    mode: str = "map"
    resolution: int | None = None
    plant: Callable[[Path, Path, Path], None] | None = None


@dataclass
class CaseResult:
    """Outcome of one case: ``handled`` and the individual checks."""

    name: str
    group: str
    expect: str
    handled: bool
    checks: dict[str, bool] = field(default_factory=dict)
    detail: str = ""


# ---------------------------------------------------------------- helpers that build inputs


def _pair(shared: Path, dest: Path, patch: str) -> tuple[Path, Path]:
    """Copies one BigEarthNet v1 pair (S2 and S1 folders) into ``dest``; returns (s2, s1) folders."""
    root = shared / "bigearthnet-v1"
    s2 = next((root / "BigEarthNet-S2-Example").glob(f"*_{patch}"))
    s1 = next((root / "BigEarthNet-S1-Example").glob(f"*_{patch}"))
    out = dest / "BigEarthNet-S2-Example" / s2.name, dest / "BigEarthNet-S1-Example" / s1.name
    shutil.copytree(s2, out[0])
    shutil.copytree(s1, out[1])
    return out


def _s2_safe(shared: Path, dest: Path) -> Path:
    target = dest / Path(S2_SAFE).name
    shutil.copytree(shared / S2_SAFE, target)
    return target


def _s1_safe(shared: Path, dest: Path) -> Path:
    target = dest / Path(S1_SAFE).name
    shutil.copytree(shared / S1_SAFE, target)
    return target


def _one(folder: Path, pattern: str) -> Path:
    return next(iter(sorted(folder.glob(pattern))))


_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">' for i in range(1, 10))
    + "]>\n<lolz>&lol9;</lolz>\n"
)
_XXE = '<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n<x>&e;</x>\n'


def _replace_xml(relative_glob: str, text: str | None, safe: Callable[[Path, Path], Path]) -> Builder:
    def build(shared: Path, dest: Path) -> Path:
        product = safe(shared, dest)
        target = _one(product, relative_glob)
        if text is None:
            data = target.read_bytes()
            target.write_bytes(data[: len(data) // 2])
        else:
            target.write_text(text)
        return target

    return build


def _remove(relative_glob: str, safe: Callable[[Path, Path], Path]) -> Builder:
    def build(shared: Path, dest: Path) -> Path:
        target = _one(safe(shared, dest), relative_glob)
        target.unlink()
        return target

    return build


def _jp2(size: Callable[[int], int]) -> Builder:
    def build(shared: Path, dest: Path) -> Path:
        target = _one(_s2_safe(shared, dest), "GRANULE/*/IMG_DATA/R60m/*_B04_60m.jp2")
        data = target.read_bytes()
        target.write_bytes(data[: size(len(data))])
        return target

    return build


def _zip(extra: Callable[[zipfile.ZipFile], None] | None, content: bytes | None = None) -> Builder:
    """A zipped SAFE (metadata members of the real product) plus a hostile member, or raw bytes."""

    def build(shared: Path, dest: Path) -> Path:
        target = dest / (Path(S2_SAFE).stem + ".zip")
        if content is not None:
            target.write_bytes(content)
            return target
        src = shared / S2_SAFE
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
            for member in ("MTD_MSIL2A.xml", "manifest.safe"):
                zf.write(src / member, f"{src.name}/{member}")
            if extra is not None:
                extra(zf)
        return target

    return build


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _symlink_member(zf: zipfile.ZipFile) -> None:
    info = zipfile.ZipInfo(f"{Path(S2_SAFE).name}/GRANULE/link.jp2")
    info.external_attr = (0o120777 << 16) | 0x20
    zf.writestr(info, "/etc/passwd")


def _bomb_member(zf: zipfile.ZipFile) -> None:
    zf.writestr(f"{Path(S2_SAFE).name}/GRANULE/bomb.jp2", b"\0" * (24 * 2**20))


def _member(name: str) -> Callable[[zipfile.ZipFile], None]:
    return lambda zf: zf.writestr(name, b"payload")


def _geotiff(edit: Callable[[Path, Path], Path]) -> Builder:
    """Copies the damaged pair, then lets ``edit(s2_folder, s1_folder)`` damage it."""

    def build(shared: Path, dest: Path) -> Path:
        s2, s1 = _pair(shared, dest / "damaged", DAMAGED)
        return edit(s2, s1)

    return build


Transform = Callable[[np.ndarray, dict[str, Any]], tuple[np.ndarray, dict[str, Any]]]


def _rewrite_band(band: str, transform: Transform) -> Callable[[Path, Path], Path]:
    def edit(s2: Path, s1: Path) -> Path:
        path = _one(s2, f"*_{band}.tif")
        with rasterio.open(path) as ds:
            data, profile = ds.read(), dict(ds.profile)
        data, profile = transform(data, profile)
        path.unlink()
        with rasterio.open(path, "w", **profile) as out:
            out.write(data)
        return path

    return edit


def _all_bands(folder: Path, fill: Callable[[np.ndarray], np.ndarray], float32: bool = False, **tags: str) -> Path:
    """Rewrites every band file of ``folder`` as ``fill(data)``: in its own type, or as float32 without nodata."""
    for path in sorted(folder.glob("*.tif")):
        with rasterio.open(path) as ds:
            data, profile = ds.read(), dict(ds.profile)
        if float32:
            data, profile = data.astype(np.float32), {**profile, "dtype": "float32", "nodata": None}
        with rasterio.open(path, "w", **profile) as out:
            out.write(fill(data).astype(data.dtype))
            if tags:
                out.update_tags(**tags)
    return folder


def _nan_inf(data: np.ndarray, profile: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    out = data.astype(np.float32)
    out[0, :10, :10] = np.nan
    out[0, 20:30, 20:30] = np.inf
    return out, {**profile, "dtype": "float32", "nodata": None}


def _complex(data: np.ndarray, profile: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    return data.astype(np.complex64), {**profile, "dtype": "complex64", "nodata": None}


def _no_crs(data: np.ndarray, profile: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    return data, {**profile, "crs": None}


def _other_crs(s2: Path, s1: Path) -> Path:
    for path in sorted(s1.glob("*.tif")):
        with rasterio.open(path) as ds:
            data, profile = ds.read(), dict(ds.profile)
        with rasterio.open(path, "w", **{**profile, "crs": "EPSG:32631"}) as out:
            out.write(data)
    return s1


def _shifted_s1(s2: Path, s1: Path) -> Path:
    for path in sorted(s1.glob("*.tif")):
        with rasterio.open(path) as ds:
            data, profile = ds.read(), dict(ds.profile)
        t = profile["transform"]
        moved = rasterio.Affine(t.a, t.b, t.c + 50_000, t.d, t.e, t.f)  # 50 km east: no overlap
        with rasterio.open(path, "w", **{**profile, "transform": moved}) as out:
            out.write(data)
    return s1


def _multiband_no_names(s2: Path, s1: Path) -> Path:
    target = s2.parent / "three_bands.tif"
    profile = {"driver": "GTiff", "width": 16, "height": 16, "count": 3, "dtype": "uint16", "crs": "EPSG:32629",
               "transform": rasterio.Affine(10, 0, 600000, 0, -10, 5800000)}  # fmt: skip
    with rasterio.open(target, "w", **profile) as out:
        out.write(np.ones((3, 16, 16), dtype=np.uint16))
    shutil.rmtree(s2)
    shutil.rmtree(s1)
    return target


def _truncate(band: str, keep: float) -> Callable[[Path, Path], Path]:
    def edit(s2: Path, s1: Path) -> Path:
        path = _one(s2, f"*_{band}.tif")
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])
        return path

    return edit


def _drop_band(s2: Path, s1: Path) -> Path:
    path = _one(s2, "*_B11.tif")
    path.unlink()
    return s2


def _huge_scene(shared: Path, dest: Path) -> Path:
    """A 12-band S2 GeoTIFF declaring 400,000 × 128 px: a few KB on disk (sparse), GBs to map."""
    target = dest / "S2A_MSIL2A_20170617T113321_huge.tif"
    profile = {"driver": "GTiff", "width": 400_000, "height": 128, "count": 12, "dtype": "uint16", "tiled": True,
               "sparse_ok": True, "compress": "deflate", "crs": "EPSG:32629",
               "transform": rasterio.Affine(10, 0, 600000, 0, -10, 5800000)}  # fmt: skip
    with rasterio.open(target, "w", **profile) as out:
        out.descriptions = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
        out.update_tags(ACQUISITION_TIME="2017-06-17T11:33:21")
    return target


def _unicode_path(shared: Path, dest: Path) -> Path:
    s2, _ = _pair(shared, dest / "scènes météo" / "雲 ü ß", DAMAGED)
    return s2


def _sidecar(content: bytes) -> Builder:
    """The damaged pair with its BigEarthNet ``*_labels_metadata.json`` replaced by ``content``."""

    def edit(s2: Path, s1: Path) -> Path:
        target = _one(s2, "*_labels_metadata.json")
        target.write_bytes(content)
        return target

    return _geotiff(edit)


def _time_tag(s2: Path, s1: Path) -> Path:
    for band in sorted(s2.glob("*_B*.tif")):
        with rasterio.open(band, "r+") as ds:
            ds.update_tags(ACQUISITION_TIME="2017-13-45T99:00:00")
    (s2 / next(s2.glob("*_labels_metadata.json")).name).unlink()  # the tag is then the only time source
    return s2


def _symlink_loop(shared: Path, dest: Path) -> Path:
    (dest / "loop").symlink_to(dest, target_is_directory=True)
    return dest / "loop"


def _fifo(shared: Path, dest: Path) -> Path:
    os.mkfifo(dest / "incoming_B02.tif")
    return dest / "incoming_B02.tif"


def _deep_tree(shared: Path, dest: Path) -> Path:
    from cloudlulc_edge.io.products import MAX_SCAN_DEPTH

    deep = dest.joinpath(*[f"d{i}" for i in range(MAX_SCAN_DEPTH + 2)])
    deep.mkdir(parents=True)
    return dest.joinpath(*[f"d{i}" for i in range(MAX_SCAN_DEPTH + 1)])


def _dangling(shared: Path, dest: Path) -> Path:
    (dest / "dangling").symlink_to(dest / "gone")
    return dest / "dangling"


def _duplicate_pair(shared: Path, dest: Path) -> Path:
    _pair(shared, dest / "damaged", DAMAGED)
    s2, _ = _pair(shared, dest / "copy", DAMAGED)  # the same product id in another folder
    return s2


def _duplicate_safe(shared: Path, dest: Path) -> Path:
    _s2_safe(shared, dest / "a")
    return _s2_safe(shared, dest / "b")


def _rewrite_values(
    which: str, values: Callable[[np.ndarray], np.ndarray], **tags: str
) -> Callable[[Path, Path], Path]:
    """Rewrites every band of the pair's ``s2`` or ``s1`` folder as float32 ``values(data)``, with ``tags``."""
    return lambda s2, s1: _all_bands(s2 if which == "s2" else s1, values, float32=True, **tags)


def _minus_inf(db: np.ndarray) -> np.ndarray:
    out: np.ndarray = db.copy()
    out[:, :10, :10] = -np.inf  # log10(0) of zero power, written as dB
    return out


def _safe_band(edit: Callable[[Path, Path], None], manifest_sizes: bool = True) -> Builder:
    """The S2 SAFE with its 60 m B04 edited by ``edit(B04, B03)``; optionally without manifest sizes/checksums."""

    def build(shared: Path, dest: Path) -> Path:
        product = _s2_safe(shared, dest)
        b04 = _one(product, "GRANULE/*/IMG_DATA/R60m/*_B04_60m.jp2")
        if not manifest_sizes:  # a repackaged product: the manifest lost sizes and checksums
            manifest = product / "manifest.safe"
            text = re.sub(r' size="\d+"', "", manifest.read_text())
            manifest.write_text(re.sub(r"<checksum[^>]*>[^<]*</checksum>", "", text))
        edit(b04, _one(product, "GRANULE/*/IMG_DATA/R60m/*_B03_60m.jp2"))
        return b04

    return build


def _flip_byte(b04: Path, b03: Path) -> None:
    data = bytearray(b04.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, decodes "fine"
    b04.write_bytes(bytes(data))


def _swap_band(b04: Path, b03: Path) -> None:
    size = b04.stat().st_size
    b04.write_bytes(b03.read_bytes()[:size].ljust(size, b"\0"))  # B03's codestream at B04's size


def _half_resolution(b04: Path, b03: Path) -> None:
    with rasterio.open(b04) as ds:
        profile, data = dict(ds.profile), ds.read(out_shape=(1, ds.height // 2, ds.width // 2))
    profile.update(width=data.shape[2], height=data.shape[1], transform=profile["transform"] * rasterio.Affine.scale(2))
    b04.unlink()
    with rasterio.open(b04, "w", **profile) as out:  # a 120 m band in the 60 m folder
        out.write(data)


def _truncate_band(b04: Path, b03: Path) -> None:
    data = b04.read_bytes()
    b04.write_bytes(data[: len(data) // 2])


def _plan(edit: Callable[[dict[str, Any]], bytes]) -> Builder:
    """A plan of the input folder (the good pair and the damaged pair), written as ``edit(plan JSON)``.

    The plan lies beside the input folder; `run_case` reads it as ``run`` does, with the input
    folder as the only ``--input-root``.
    """

    def build(shared: Path, dest: Path) -> Path:
        _pair(shared, dest / "damaged", DAMAGED)
        target = dest.parent / "plan.json"
        plan_to_file(dest, target)
        target.write_bytes(edit(json.loads(target.read_text())))
        return target

    return build


def _damaged_entry(doc: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in doc["pairs"] if p["s2"]["product_id"].endswith(DAMAGED))


def _plan_id(product_id: str) -> Callable[[dict[str, Any]], bytes]:
    def edit(doc: dict[str, Any]) -> bytes:
        _damaged_entry(doc)["s2"]["product_id"] = product_id
        return json.dumps(doc).encode()

    return edit


def _plan_path(path: str) -> Callable[[dict[str, Any]], bytes]:
    def edit(doc: dict[str, Any]) -> bytes:
        _damaged_entry(doc)["s2"]["path"] = path
        return json.dumps(doc).encode()

    return edit


def _plan_twice(doc: dict[str, Any]) -> bytes:
    doc["pairs"].append(_damaged_entry(doc))
    return json.dumps(doc).encode()


def _map_name(damaged: Path) -> str:
    """The map file name of the damaged product's scene."""
    product = next((p for p in (damaged, *damaged.parents) if p.suffix == ".SAFE"), damaged)
    return f"{product.name.removesuffix('.SAFE')}_lulc"


def _link(name: str, directory: bool = False) -> Callable[[Path, Path, Path], None]:
    """Plants ``OUTPUT/<name with {map}>`` as a symbolic link to the operator's file (or its folder)."""

    def plant(out: Path, victim: Path, damaged: Path) -> None:
        (out / name.format(map=_map_name(damaged))).symlink_to(victim.parent if directory else victim)

    return plant


# fmt: off
CASES: tuple[Case, ...] = (
    # Hostile and broken XML (the real S2 L2A SAFE and the real S1 GRD SAFE metadata).
    Case("s2-mtd-billion-laughs", "xml", _replace_xml("MTD_MSIL2A.xml", _LAUGHS, _s2_safe), "refused", "unsafe XML"),
    Case("s2-mtd-external-entity", "xml", _replace_xml("MTD_MSIL2A.xml", _XXE, _s2_safe), "refused", "unsafe XML"),
    Case("s2-mtd-malformed", "xml", _replace_xml("MTD_MSIL2A.xml", None, _s2_safe), "refused", "malformed XML"),
    Case("s2-mtd-empty", "xml", _replace_xml("MTD_MSIL2A.xml", "", _s2_safe), "refused", "malformed XML"),
    Case("s2-tile-mtd-external-entity", "xml", _replace_xml("GRANULE/*/MTD_TL.xml", _XXE, _s2_safe), "refused",
         "unsafe XML"),
    Case("s1-manifest-billion-laughs", "xml", _replace_xml("manifest.safe", _LAUGHS, _s1_safe), "refused",
         "unsafe XML", "open_s1"),
    Case("s1-annotation-malformed", "xml", _replace_xml("annotation/s1a-*-vv-*.xml", None, _s1_safe), "refused",
         "malformed XML", "open_s1"),
    Case("s1-calibration-external-entity", "xml", _replace_xml("annotation/calibration/calibration-*-vv-*.xml", _XXE,
         _s1_safe), "refused", "unsafe XML", "open_s1"),
    Case("s1-noise-empty", "xml", _replace_xml("annotation/calibration/noise-*-vh-*.xml", "", _s1_safe), "refused",
         "malformed XML", "open_s1"),
    # SAFE products missing files, truncated rasters.
    Case("s2-mtd-missing", "safe", _remove("MTD_MSIL2A.xml", _s2_safe), "refused", "MTD|metadata|not a"),
    Case("s2-band-missing", "safe", _remove("GRANULE/*/IMG_DATA/R60m/*_B8A_60m.jp2", _s2_safe), "refused",
         "missing on disk", resolution=60),
    Case("s2-jp2-truncated", "safe", _jp2(lambda n: n // 2), "refused", "truncated", resolution=60),
    Case("s2-jp2-zero-byte", "safe", _jp2(lambda n: 0), "refused", "truncated", resolution=60),
    Case("s1-annotation-missing", "safe", _remove("annotation/s1a-*-vh-*.xml", _s1_safe), "refused",
         "annotation|missing", "open_s1"),
    Case("s1-calibration-missing", "safe", _remove("annotation/calibration/calibration-*-vv-*.xml", _s1_safe),
         "refused", "calibration", "open_s1"),
    Case("s1-noise-missing", "safe", _remove("annotation/calibration/noise-*-vh-*.xml", _s1_safe), "refused",
         "noise", "open_s1"),
    # Zipped SAFEs: hostile members are refused from the directory, before anything is inflated.
    Case("zip-path-traversal", "zip", _zip(_member("../../x")), "refused", "leaves the archive"),
    Case("zip-absolute-member", "zip", _zip(_member("/tmp/cloudlulc-evil")), "refused", "leaves the archive"),
    Case("zip-symlink-member", "zip", _zip(_symlink_member), "refused", "symbolic link"),
    Case("zip-decompression-bomb", "zip", _zip(_bomb_member), "refused", "decompression bomb"),
    Case("zip-corrupt", "zip", _zip(None, b"PK\x03\x04 not really a zip" * 10), "refused", "unreadable zip"),
    Case("zip-zero-byte", "zip", _zip(None, b""), "refused", "unreadable zip"),
    Case("zip-without-safe", "zip", _zip(None, _zip_bytes({"readme.txt": b"no product here"})), "refused",
         "expected one"),
    # GeoTIFF scenes: bad values, types, bands, georeferencing.
    Case("s2-nan-inf", "geotiff", _geotiff(_rewrite_band("B04", _nan_inf)), "mapped"),
    Case("s2-wrong-dtype", "geotiff", _geotiff(_rewrite_band("B04", _complex)), "refused", "data type|dtype"),
    Case("s2-no-crs", "geotiff", _geotiff(_rewrite_band("B02", _no_crs)), "refused", "CRS"),
    Case("s2-wrong-band-count", "geotiff", _geotiff(_multiband_no_names), "refused", "not a recognised product"),
    Case("s2-band-file-missing", "geotiff", _geotiff(_drop_band), "refused", "missing band file"),
    Case("s2-tif-truncated", "geotiff", _geotiff(_truncate("B03", 0.5)), "refused", "truncated|corrupt|decode|open"),
    Case("s2-tif-zero-byte", "geotiff", _geotiff(_truncate("B03", 0.0)), "refused", "truncated|corrupt|decode|open"),
    Case("s1-crs-mismatch", "geotiff", _geotiff(_other_crs), "mapped"),
    Case("s1-no-overlap", "geotiff", _geotiff(_shifted_s1), "mapped"),
    # Whole scenes that are legal but extreme.
    Case("s2-all-nodata", "scene", _geotiff(lambda s2, s1: _all_bands(s2, np.zeros_like)), "refused", "all nodata"),
    Case("s2-fully-clouded", "scene", _geotiff(lambda s2, s1: _all_bands(s2, lambda a: np.full_like(a, 9000))),
         "mapped"),
    Case("unicode-and-spaces-in-paths", "paths", _unicode_path, "mapped"),
    # A scene whose declared size would exhaust memory is refused by the --max-memory guard.
    Case("s2-huge-declared-size", "resources", _huge_scene, "refused", "max-memory"),
    # scan isolation: one bad entry is an "unusable input", the rest is scanned and mapped
    Case("ben-sidecar-truncated", "scan", _sidecar(b'{"acquisition_ti'), "refused",
         "unreadable BigEarthNet metadata sidecar"),
    Case("ben-sidecar-list", "scan", _sidecar(b"[1, 2]"), "refused", "is not a JSON object"),
    Case("ben-sidecar-binary", "scan", _sidecar(bytes(range(256))), "refused",
         "unreadable BigEarthNet metadata sidecar"),
    Case("ben-sidecar-nested-deep", "scan", _sidecar(b"[" * 100_000), "refused",
         "unreadable BigEarthNet metadata sidecar"),
    Case("ben-time-unparseable", "scan", _sidecar(b'{"acquisition_time": "last tuesday"}'), "refused",
         "is not an ISO 8601 time"),
    Case("geotiff-time-tag-unparseable", "scan", _geotiff(_time_tag), "refused", "ACQUISITION_TIME tag"),
    Case("symlink-loop", "scan", _symlink_loop, "refused", "symlink loop"),
    Case("fifo-with-a-raster-name", "scan", _fifo, "refused", "not a regular file or folder"),
    Case("tree-too-deep", "scan", _deep_tree, "refused", "deeper than"),
    Case("dangling-symlink", "scan", _dangling, "refused", "cannot be read"),
    # identity: two products with one id are never merged into one map
    Case("duplicate-id-geotiff", "identity", _duplicate_pair, "one-mapped", "same id"),
    Case("duplicate-id-safe", "identity", _duplicate_safe, "one-mapped", "same id", resolution=60),
    # confinement: links planted in OUTPUT are never written through
    Case("planted-lock-link-geotiff", "output", _geotiff(lambda s2, s1: s2), "refused",
         "lock path is a symbolic link", plant=_link(".{map}.lock")),
    Case("planted-lock-link-safe", "output", _s2_safe, "refused", "lock path is a symbolic link", resolution=60,
         plant=_link(".{map}.lock")),
    Case("planted-map-link-geotiff", "output", _geotiff(lambda s2, s1: s2), "refused",
         "map path is a symbolic link", plant=_link("{map}.tif")),
    Case("planted-map-link-safe", "output", _s2_safe, "refused", "map path is a symbolic link", resolution=60,
         plant=_link("{map}.tif")),
    Case("planted-partial-link", "output", _geotiff(lambda s2, s1: s2), "mapped", plant=_link(".{map}.partial.tif")),
    Case("planted-workdir-link", "output", _geotiff(lambda s2, s1: s2), "mapped",
         plant=_link(".{map}.work", directory=True)),
    Case("planted-stac-temp-link", "output", _geotiff(lambda s2, s1: s2), "mapped", plant=_link(".{map}.json.tmp")),
    # silent garbage: wrong units and values are refused (or are no data), never mapped as if right
    Case("s1-linear-without-units-tag", "domain", _geotiff(_rewrite_values("s1", lambda db: 10 ** (db / 10))),
         "refused", "look like linear power"),
    Case("s1-db-tagged-linear", "domain", _geotiff(_rewrite_values("s1", lambda db: db, S1_UNITS="linear")),
         "refused", "these are dB"),
    Case("s1-minus-infinity-db", "domain", _geotiff(_rewrite_values("s1", _minus_inf)), "mapped"),
    Case("s2-reflectance-as-dn", "domain", _geotiff(_rewrite_values("s2", lambda dn: dn / 10000.0)), "refused",
         "look like reflectance"),
    # plans are input: path-like ids never become paths, entries stay inside --input-root, bad files are refused
    Case("plan-id-parent-dir", "plan", _plan(_plan_id("../escaped")), "refused", "cannot name a map file",
         mode="plan"),
    Case("plan-id-absolute", "plan", _plan(_plan_id("/tmp/cloudlulc-escaped")), "refused", "cannot name a map file",
         mode="plan"),
    Case("plan-id-newline", "plan", _plan(_plan_id("S2A_MSIL2A_x\nrm -rf")), "refused", "cannot name a map file",
         mode="plan"),
    Case("plan-id-hidden", "plan", _plan(_plan_id(".hidden")), "refused", "cannot name a map file", mode="plan"),
    Case("plan-entry-outside-input-root", "plan", _plan(_plan_path("/etc")), "refused",
         "outside the allowed input root", mode="plan"),
    Case("plan-entry-dotdot-escape", "plan", _plan(_plan_path("inputs/../../../../etc")), "refused",
         "outside the allowed input root", mode="plan"),
    Case("plan-entries-share-a-map-name", "plan", _plan(_plan_twice), "refused", "share a map name", mode="plan"),
    Case("plan-not-utf8", "plan", _plan(lambda doc: b"\xff\xfe" + json.dumps(doc).encode()), "refused",
         "not a readable plan", mode="plan"),
    Case("plan-nested-deep", "plan", _plan(lambda doc: b"[" * 100_000), "refused", "not a readable plan", mode="plan"),
    Case("plan-not-an-object", "plan", _plan(lambda doc: b"[1, 2]"), "refused", "not a plan", mode="plan"),
    # integrity where the format offers it (SAFE manifest checksums, MTD grids, GDAL decode errors)
    Case("s2-jp2-byte-flipped", "integrity", _safe_band(_flip_byte), "refused", "SHA3-256 differs", resolution=60),
    Case("s2-jp2-swapped-band", "integrity", _safe_band(_swap_band), "refused", "SHA3-256 differs", resolution=60),
    Case("s2-jp2-coarser-band-no-manifest-sizes", "integrity", _safe_band(_half_resolution, manifest_sizes=False),
         "refused", "grid in MTD_TL.xml", resolution=60),
    Case("s2-jp2-truncated-no-manifest-sizes", "integrity", _safe_band(_truncate_band, manifest_sizes=False),
         "refused", "truncated|corrupt|decode|cannot read|Stream", resolution=60),
)
# fmt: on


# ---------------------------------------------------------------- running a case


def _snapshot(root: Path, exclude: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file() and exclude not in p.parents
    }


def _map_valid(path: Path) -> bool:
    """The map opens and every pixel reads (a half-written file fails here)."""
    try:
        with rasterio.open(path) as ds:
            ds.read(1)
        return True
    except rasterio.errors.RasterioError:
        return False


def _open_s1(path: Path) -> None:
    archive = SafeArchive(path)
    meta = read_s1_metadata(archive)
    for pol in meta.polarisations.values():
        read_calibration(archive, pol.calibration)
        read_noise(archive, pol.noise)


def run_case(case: Case, shared: Path, work: Path, backend: Backend) -> CaseResult:
    """Builds and runs one case in ``work`` (which must be empty)."""
    inputs, out = work / "inputs", work / "outputs"
    inputs.mkdir(parents=True)
    result = CaseResult(case.name, case.group, case.expect, False)
    if case.mode == "plan":
        _pair(shared, inputs / "good", GOOD)  # the plan must hold it
    damaged = case.build(shared, inputs)
    if case.mode == "open_s1":
        try:
            _open_s1(next(p for p in (damaged, *damaged.parents) if p.name.endswith(".SAFE")))
        except CloudLULCError as exc:
            message = str(exc)
            result.checks = {"refused": True, "message matches": bool(re.search(case.match, message)),
                             "names the file": damaged.name in message or damaged.parent.name in message}  # fmt: skip
            result.detail = message.replace(f"{work}/", "")
        else:
            result.checks = {"refused": False}
            result.detail = "opened without error"
        result.handled = all(result.checks.values())
        return result

    if case.mode != "plan":
        _pair(shared, inputs / "good", GOOD)
    victim = work / "operator" / "precious.txt"  # an operator's file outside OUTPUT: it must never change
    victim.parent.mkdir()
    victim.write_text("an operator's file\n")
    planted: set[Path] = set()
    if case.plant is not None:
        out.mkdir()
        case.plant(out, victim, damaged)
        planted = set(out.iterdir())  # the case's own links: the checks below are about what the run wrote
    before = _snapshot(work, out)
    if case.mode == "plan":
        try:
            plan = read_plan(damaged, [inputs])
        except CloudLULCError as exc:  # refused as a whole: nothing may be mapped or written
            message = str(exc)
            result.checks = {"refused with a specific message": bool(re.search(case.match, message)),
                             "message names the file": damaged.name in message,
                             "nothing written": not out.exists() or not any(out.iterdir()),
                             "inputs unchanged, nothing written outside the output": _snapshot(work, out) == before}  # fmt: skip
            result.detail = message.replace(f"{work}/", "")
            result.handled = all(result.checks.values())
            return result
    try:
        plan = read_plan(damaged, [inputs]) if case.mode == "plan" else plan_directory(inputs)
        options = OPTIONS if case.resolution is None else replace(OPTIONS, resolution=case.resolution)
        report, _ = run_pairs("fault-matrix", plan.pairs, backend, out, options, None, None, None, plan.skipped)
    except Exception as exc:  # noqa: BLE001 - a crash is exactly what the matrix reports
        result.checks = {"no crash": False}
        result.detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return result
    scenes = {s.name: s for s in report.scenes}
    good = next((s for name, s in scenes.items() if name.endswith(GOOD)), None)
    checks: dict[str, bool] = {"good scene mapped": good is not None and good.status == "done"}
    damaged_scenes = [s for name, s in scenes.items() if not name.endswith(GOOD)]
    done = [s for s in report.scenes if s.status == "done"]
    checks["no two scenes in one map"] = len({s.output for s in done}) == len(done)
    if case.expect == "mapped":
        checks["damaged scene mapped"] = bool(damaged_scenes) and all(s.status == "done" for s in damaged_scenes)
        result.detail = "; ".join(f"{s.name}: {s.status} {s.error or ''}".strip() for s in damaged_scenes)
    elif case.expect == "one-mapped":
        hit = [f"{s.path}: {s.reason}" for s in plan.skipped if re.search(case.match, s.reason)]
        checks["one of them mapped"] = sum(s.status == "done" for s in damaged_scenes) == 1
        checks["the other refused, named"] = len(hit) == 1 and damaged.name in hit[0]
        result.detail = " | ".join(hit)[:400]
    else:
        messages = [f"{s.path}: {s.reason}" for s in plan.skipped] + [
            f"{s.name}: {s.error}" for s in damaged_scenes if s.status == "failed"
        ]
        hit = [m for m in messages if re.search(case.match, m)]
        checks["refused with a specific message"] = bool(hit)
        names = (damaged.name, damaged.parent.name, damaged.stem)
        checks["message names the file"] = any(any(n in m for n in names) for m in hit)
        checks["nothing mapped from it"] = not any(s.status == "done" for s in damaged_scenes)
        result.detail = " | ".join(hit or messages)[:400]
    leftovers = [p for p in out.rglob("*") if p.is_file() and p not in planted
                 and (p.name.startswith(".") or p.suffix in (".tmp", ".part"))]  # fmt: skip
    checks["no temporary files"] = not leftovers
    checks["every map valid"] = all(_map_valid(p) for p in out.glob("*_lulc.tif") if p not in planted)
    checks["inputs unchanged, nothing written outside the output"] = _snapshot(work, out) == before
    result.checks = checks
    result.handled = all(checks.values())
    result.detail = result.detail.replace(f"{work}/", "")
    return result


def run_matrix(shared: Path, backend: Backend, cases: tuple[Case, ...] = CASES) -> dict[str, Any]:
    """Runs every case in its own temporary folder; returns the JSON record."""
    results = []
    for case in cases:
        with tempfile.TemporaryDirectory(prefix=f"fault-{case.name}-") as tmp:
            results.append(run_case(case, shared, Path(tmp), backend))
    handled = sum(r.handled for r in results)
    return {
        "date": datetime.now().isoformat(timespec="seconds"),
        "environment": environment(),
        "tried": len(results),
        "handled": handled,
        "cases": [r.__dict__ for r in results],
    }


def _reason(detail: str) -> str:
    """The end of a message (the reason), without the long product paths in front of it."""
    text = detail.replace("|", "/").replace("\n", " ")
    return ("…" + text[-150:]) if len(text) > 150 else text


def render(result: dict[str, Any]) -> str:
    """Markdown: the counts, then one row per case."""
    rows = [{"case": c["name"], "group": c["group"], "expected": c["expect"], "handled": "yes" if c["handled"] else
             "**no**", "detail": _reason(c["detail"])} for c in result["cases"]]  # fmt: skip
    head = (f"**{result['handled']} of {result['tried']} cases handled as specified** "
            f"({result['date'][:10]}, {result['environment']['cpu']}).\n\n")  # fmt: skip
    columns = [("case", "case"), ("group", "group"), ("expected", "expected"), ("handled", "handled"),
               ("detail", "what happened")]  # fmt: skip
    return head + markdown_table(rows, columns)


def main() -> None:
    """CLI entry point."""
    from cloudlulc_edge.backends.torch_backend import TorchBackend
    from cloudlulc_edge.models.loading import load_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=_SHARED)
    parser.add_argument(
        "--readme",
        type=Path,
        default=None,
        help="page to update between fault-matrix markers (docs/failure-behaviour.md)",
    )
    args = parser.parse_args()
    loaded = load_model("test_tiny", None, OPTIONS.tile, allow_untrained=True)
    backend = TorchBackend(loaded.model, loaded.identity)
    result = run_matrix(args.data, backend)
    publish("fault_matrix", result, render(result), args.readme, "fault-matrix")


if __name__ == "__main__":
    main()
