"""Every reader on the committed synthetic products of ``tests/data/sentinel`` (no ``../shared/data`` needed).

The generator (``tests/data/sentinel/data.py``) writes known values, so these tests check the
readers' arithmetic exactly: the L2A offset, L1C radiometry and layout, S1 calibration with noise
removal, GCP geocoding, BigEarthNet GeoTIFF folders, and mapping a SAFE pair end to end.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from cloudlulc_edge.cli import app
from cloudlulc_edge.errors import ProductError
from cloudlulc_edge.io.archive import SafeArchive
from cloudlulc_edge.io.products import identify, scan
from cloudlulc_edge.io.s1_calibration import backscatter, read_calibration, read_noise
from cloudlulc_edge.io.s1_metadata import read_s1_metadata
from cloudlulc_edge.io.s1_safe import S1SafeReader
from cloudlulc_edge.io.s2_safe import S2SafeReader, read_s2_metadata
from cloudlulc_edge.io.scene import SceneReader
from cloudlulc_edge.pairing import pair_products

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "sentinel"
L2A = FIXTURES / "S2B_MSIL2A_20230612T100559_N0509_R022_T32TQM_20230612T131422.SAFE"
L1C = FIXTURES / "S2A_MSIL1C_20230612T100601_N0301_R022_T32TQM_20230612T121014.SAFE"
S1 = FIXTURES / "S1A_IW_GRDH_1SDV_20230612T050512_20230612T050537_048954_05E32B_1A2F.SAFE"
BEN = FIXTURES / "bigearthnet"


def test_the_fixtures_are_identified_and_paired():
    found = scan(FIXTURES)
    kinds = sorted(p.kind for p in found.products)
    assert kinds == ["s1_geotiff", "s1_safe", "s2_geotiff", "s2_safe", "s2_safe"]
    plan = pair_products(found.products)
    by_name = {p.name: p for p in plan.pairs}
    assert {p.s1[0].kind for p in plan.pairs} == {"s1_safe", "s1_geotiff"}
    safe_pair = by_name[L2A.name.removesuffix(".SAFE")]
    assert safe_pair.s1[0].path == str(S1) and 0 < safe_pair.s1_coverage_pct < 100  # a rotated swath
    assert safe_pair.dt_days == pytest.approx(-0.2089, abs=1e-3)  # S1 05:05, S2 10:05 UTC


def test_l2a_at_60_m_applies_the_boa_offset_and_counts_scl_clouds():
    meta = read_s2_metadata(SafeArchive(L2A))
    assert meta.level == "L2A" and meta.processing_baseline == "05.09" and set(meta.offsets.values()) == {-1000.0}
    with pytest.raises(ProductError, match="open it with resolution=60"):
        S2SafeReader(L2A)  # the 10 m bands are not in the fixture
    reader = S2SafeReader(L2A, resolution=60)
    try:
        assert (reader.grid.height, reader.grid.width) == (32, 32) and reader.substitutions == {"B08": "B8A"}
        dn = reader.read_dn(0, 32)
        with rasterio.open(L2A / meta.band_files["B04"][60]) as ds:
            np.testing.assert_array_equal(dn[3], ds.read(1).astype(np.float32))  # B04 read unresampled
        assert reader.offsets == [-1000.0] * 12
        stats = reader.cloud_statistics()
        assert stats["cloud_pct"] == pytest.approx(100 * 80 / (32 * 32 - 12), abs=0.01)  # 8 × 10 px of SCL 9
    finally:
        reader.close()


def test_l1c_reads_thirteen_band_layout_without_an_offset():
    meta = read_s2_metadata(SafeArchive(L1C))
    assert meta.level == "L1C" and set(meta.offsets.values()) == {0.0}
    assert meta.band_files["B10"] == {60: next(iter(meta.band_files["B10"].values()))}  # B10 listed, not read
    assert all("/IMG_DATA/T32TQM_" in next(iter(f.values())) for f in meta.band_files.values())  # flat layout
    with pytest.warns(UserWarning, match="L1C"):
        reader = S2SafeReader(L1C, resolution=20)
    try:
        assert (reader.grid.height, reader.grid.width) == (96, 96)
        dn = reader.read_dn(0, 96)
        assert dn.shape == (12, 96, 96) and (dn > 0).mean() > 0.95
    finally:
        reader.close()


def test_s1_calibration_recovers_the_generated_sigma0():
    archive = SafeArchive(S1)
    meta = read_s1_metadata(archive)
    assert (meta.lines, meta.samples, meta.orbit_pass, sorted(meta.polarisations)) == (160, 200, "DESCENDING",
                                                                                       ["VH", "VV"])  # fmt: skip
    vv = meta.polarisations["VV"]
    cal, noise = read_calibration(archive, vv.calibration), read_noise(archive, vv.noise)
    with rasterio.open(S1 / vv.measurement) as ds:
        dn = ds.read(1)
    s0 = backscatter(dn, 0, 0, cal, noise)
    # The generator wrote DN² = σ⁰·A² + η with A = 600, η = 60: calibration inverts it to rounding.
    valid = dn > 0
    expected = (dn.astype(np.float64) ** 2 - 60.0) / 600.0**2
    np.testing.assert_allclose(s0[valid], np.maximum(expected[valid], 1e-4), rtol=1e-5)
    assert np.isnan(s0[~valid]).all()


def test_s1_is_geocoded_onto_the_s2_grid_through_the_gcps():
    s2 = identify(L2A)
    assert s2 is not None
    reader = SceneReader(s2, (identify(S1),), resolution=60)  # type: ignore[arg-type]
    try:
        strip = reader.read(0, 32)
        assert strip.s1 is not None and strip.s1_valid is not None
        covered = strip.s1_valid.mean()
        assert 0.3 < covered < 0.95  # the rotated swath covers part of the tile
        db = strip.s1[0][strip.s1_valid] * 25.0 - 25.0  # VV back to dB (contract: [-25, 0] → [0, 1])
        assert -16.0 < np.median(db) < -10.0  # the generated land is ≈ −13 dB VV
        assert reader.tags()["S1_GEOCODING"] == "GCP_ELLIPSOID"
    finally:
        reader.close()


def test_s1_reader_refuses_a_missing_polarisation(tmp_path):
    copy = tmp_path / S1.name
    shutil.copytree(S1, copy)
    for path in copy.rglob("*-vh-*"):
        path.unlink()
    s2 = identify(L2A)
    assert s2 is not None
    with pytest.raises(ProductError, match="polarisation"):
        S1SafeReader(copy, S2SafeReader(L2A, 60).grid)


def test_bigearthnet_geotiff_folders_read_at_10_m():
    found = scan(BEN)
    (pair,) = pair_products(found.products).pairs
    reader = SceneReader(pair.s2, pair.s1, s2_offset=0.0, s2_quantification=10000.0)
    try:
        strip = reader.read(0, 120)
        assert strip.s2.shape == (12, 120, 120) and strip.s1 is not None and strip.s1_valid is not None
        assert strip.s2_valid.all() and strip.s1_valid.all()
    finally:
        reader.close()
    meta = json.loads(next(BEN.glob("S1/*/*_labels_metadata.json")).read_text())
    assert meta["corresponding_s2_patch"] == pair.name


def test_map_resolution_60_maps_the_safe_pair_end_to_end(tmp_path):
    inputs = tmp_path / "in"
    for product in (L2A, S1):
        shutil.copytree(product, inputs / product.name)
    out = tmp_path / "out"
    args = ["map", str(inputs), str(out), "--resolution", "60", "--variant", "test_tiny_local", "--allow-untrained",
            "--tile", "32", "--overlap", "8", "-q"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (path,) = out.glob("*_lulc.tif")
    with rasterio.open(path) as ds:
        assert ds.res == (60.0, 60.0) and ds.tags()["S2_RESOLUTION_M"] == "60"
        assert ds.tags()["MODEL_VERSION"] == "untrained" and ds.tags()["S1_MISSING"] == "false"
        assert (ds.read(1) != ds.nodata).mean() > 0.9


def test_optics_layer_says_where_the_map_was_made_through_cloud(tmp_path):
    inputs = tmp_path / "in"
    for product in (L2A, S1):
        shutil.copytree(product, inputs / product.name)
    shutil.copytree(BEN, inputs / "ben")
    out = tmp_path / "out"
    args = ["map", str(inputs), str(out), "--resolution", "60", "--variant", "test_tiny_local", "--allow-untrained",
            "--tile", "32", "--overlap", "8", "--optics", "-q", "--s2-offset", "0", "--s2-quantification", "10000"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    safe_map = out / f"{L2A.name.removesuffix('.SAFE')}_lulc.tif"
    with rasterio.open(safe_map) as m, rasterio.open(safe_map.with_name(safe_map.stem + "_optics.tif")) as o:
        optics, classes = o.read(1), m.read(1)
        assert m.tags()["OPTICS_SOURCE"].startswith("SCL") and o.nodata == 0
    scl = S2SafeReader(L2A, 60).read_scl(60)
    expected = np.where(scl == 0, 0, np.where(np.isin(scl, (8, 9, 10)), 2, np.where(scl == 3, 3, 1)))
    np.testing.assert_array_equal(optics, expected)  # the SCL's categories, pixel for pixel
    assert ((optics == 0) == (classes == 0)).mean() > 0.99  # no map ⇔ no optics (SCL no-data vs S2 no-data)
    item = json.loads(safe_map.with_suffix(".json").read_text())
    assert [c["name"] for c in item["assets"]["optics"]["classification:classes"]] == [
        "nodata", "clear", "cloud", "cloud_shadow"]  # fmt: skip
    (report,) = (out / "reports").glob("map-*.json")
    scenes = {s["name"]: s for s in json.loads(report.read_text())["scenes"]}
    cloudy = np.isin(expected, (2, 3)).sum() / (expected > 0).sum()
    assert scenes[L2A.name.removesuffix(".SAFE")]["through_cloud_pct"] == pytest.approx(100 * cloudy, abs=1e-3)
    # A GeoTIFF scene has no SCL: the spectral proxy, tagged as such.
    (ben_map,) = [p for p in out.glob("*_lulc.tif") if p != safe_map]
    with rasterio.open(ben_map) as m:
        assert m.tags()["OPTICS_SOURCE"].startswith("spectral proxy")
    assert ben_map.with_name(ben_map.stem + "_optics.tif").exists()
