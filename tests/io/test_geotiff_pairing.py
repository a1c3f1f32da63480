"""GeoTIFF scenes (BigEarthNet layout), product scanning, pairing and the plan file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from cloudlulc_edge.errors import PairingError
from cloudlulc_edge.io.geotiff import GeoTiffS1Reader, GeoTiffS2Reader, find_geotiff_scene
from cloudlulc_edge.io.products import scan
from cloudlulc_edge.pairing import pair_products, read_plan, write_plan
from tests.conftest import shared_data


def test_bigearthnet_pairs_load_and_pair_up(bigearthnet_v1: Path) -> None:
    result = scan(bigearthnet_v1)
    assert sorted(p.kind for p in result.products) == ["s1_geotiff"] * 6 + ["s2_geotiff"] * 6
    assert result.skipped == []
    plan = pair_products(result.products)
    assert len(plan.pairs) == 6
    for pair in plan.pairs:
        assert len(pair.s1) == 1 and pair.s1_coverage_pct == pytest.approx(100.0)
        sidecar = json.loads(next(Path(pair.s1[0].path).glob("*_labels_metadata.json")).read_text())
        assert sidecar["corresponding_s2_patch"] == pair.s2.product_id  # the dataset's own pairing
        assert abs(pair.dt_days) < 1.0  # up to ~19 h apart (69_24)


def test_geotiff_readers_put_every_band_on_the_10m_grid(bigearthnet_v1: Path) -> None:
    s2_dir = bigearthnet_v1 / "BigEarthNet-S2-Example" / "S2A_MSIL2A_20170613T101031_87_48"
    scene = find_geotiff_scene(s2_dir)
    assert scene is not None
    with pytest.warns(UserWarning, match="assuming offset 0"):
        reader = GeoTiffS2Reader(scene)
    dn = reader.read_dn(0, 120)
    reader.close()
    assert dn.shape == (12, 120, 120) and reader.grid.resolution == 10
    with rasterio.open(s2_dir / f"{s2_dir.name}_B08.tif") as ds:
        np.testing.assert_array_equal(dn[7], ds.read(1))  # 10 m bands are copied exactly
    with rasterio.open(s2_dir / f"{s2_dir.name}_B11.tif") as ds:
        b11 = ds.read(1).astype(np.float64)
    # 20 m → 10 m bilinear keeps the mean and stays within the source range.
    assert dn[10].mean() == pytest.approx(b11.mean(), rel=0.02)
    assert b11.min() <= dn[10].min() and dn[10].max() <= b11.max()
    s1 = find_geotiff_scene(bigearthnet_v1 / "BigEarthNet-S1-Example" / "S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48")
    assert s1 is not None
    s1r = GeoTiffS1Reader(s1, reader.grid)
    linear = s1r.read_linear(0, 120)
    s1r.close()
    with rasterio.open(Path(s1.files["VV"].path)) as ds:
        np.testing.assert_allclose(10 * np.log10(linear[0]), ds.read(1), atol=1e-3)


def test_crs_mismatch_with_the_partner_is_specific(bigearthnet_v1: Path, tmp_path: Path) -> None:
    src = bigearthnet_v1 / "BigEarthNet-S1-Example" / "S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48"
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    for tif in dst.glob("*.tif"):
        with rasterio.open(tif, "r+") as ds:
            ds.crs = "EPSG:32632"
    s2 = find_geotiff_scene(bigearthnet_v1 / "BigEarthNet-S2-Example" / "S2A_MSIL2A_20170613T101031_87_48")
    s1 = find_geotiff_scene(dst)
    assert s1 is not None and s2 is not None
    with pytest.warns(UserWarning):
        grid = GeoTiffS2Reader(s2).grid
    with pytest.raises(PairingError, match=r"CRS EPSG:32632 differs from its S2 partner's CRS"):
        GeoTiffS1Reader(s1, grid)


def test_scan_skips_non_products_and_pairs_real_safe_metadata(s2_safe: Path, tmp_path: Path) -> None:
    root = tmp_path / "incoming"
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "readme.txt").write_text("not a product")
    (root / "broken.zip").write_bytes(b"not a zip")
    (root / s2_safe.name).symlink_to(s2_safe)
    s1_dir = shared_data("s1-grd-safe")
    for s1 in s1_dir.iterdir():
        (root / s1.name).symlink_to(s1)
    result = scan(root)
    kinds = sorted(p.kind for p in result.products)
    assert kinds == ["s2_safe"]
    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    assert "not a product" in reasons["notes"] and "unreadable zip" in reasons["broken.zip"]
    # The real S1 products are metadata-only downloads: recognised and left out at scan time.
    for s1 in s1_dir.iterdir():
        assert "metadata-only product" in reasons[s1.name] and "measurement" in reasons[s1.name]
    plan = pair_products(result.products, window_days=6)
    assert len(plan.pairs) == 1 and plan.pairs[0].s1 == () and plan.pairs[0].s1_coverage_pct == 0.0
    strict = pair_products(result.products, require_s1=True)
    assert strict.pairs == [] and "no S1 product overlaps" in strict.skipped[0].reason
    path = write_plan(plan, tmp_path / "plan.json")
    again = read_plan(path, roots=[root])
    assert again.pairs == plan.pairs and again.options == plan.options
    # A plan is untrusted input: entries outside the allowed roots (or no roots at all) are refused.
    with pytest.raises(PairingError, match="outside the allowed input root"):
        read_plan(path, roots=[root / "notes"])
    with pytest.raises(PairingError, match="no input root given"):
        read_plan(path, [])
    doc = json.loads(path.read_text())
    doc["options"]["input_root"] = str(root)
    doc["pairs"][0]["s2"]["path"] = str(root / ".." / ".." / "etc" / "shadow")
    path.write_text(json.dumps(doc))
    with pytest.raises(PairingError, match="shadow"):
        read_plan(path, [root])


def test_pairing_prefers_min_dt_and_mosaics_slices(bigearthnet_v1: Path) -> None:
    from dataclasses import replace

    products = scan(bigearthnet_v1).products
    s2 = next(p for p in products if p.product_id.endswith("87_48") and p.modality == "s2")
    s1 = next(p for p in products if p.product_id.endswith("87_48") and p.modality == "s1")
    later = replace(s1, product_id=s1.product_id.replace("20170613T165043", "20170616T165043"),
                    sensing_time="2017-06-16T16:50:43")  # fmt: skip
    plan = pair_products([s2, later, s1], window_days=6)
    assert plan.pairs[0].s1 == (s1,)
    assert pair_products([s2, later], window_days=2).pairs[0].s1 == ()
    # Two slices of one acquisition, each covering half: mosaicked, coverage adds up.
    ring = s1.footprint["coordinates"][0]
    xs = sorted({p[0] for p in ring})
    mid = (xs[0] + xs[-1]) / 2
    west = [[min(p[0], mid), p[1]] for p in ring]
    east = [[max(p[0], mid), p[1]] for p in ring]
    a = replace(s1, product_id=s1.product_id + "_a", footprint={"type": "Polygon", "coordinates": [west]})
    b = replace(s1, product_id=s1.product_id + "_b", footprint={"type": "Polygon", "coordinates": [east]})
    pair = pair_products([s2, a, b]).pairs[0]
    assert {p.product_id for p in pair.s1} == {a.product_id, b.product_id}
    assert pair.s1_coverage_pct == pytest.approx(100.0, abs=0.5)


def test_bad_plan_file_is_a_pairing_error(tmp_path: Path) -> None:
    bad = tmp_path / "plan.json"
    bad.write_text('{"format_version": 99}')
    with pytest.raises(PairingError, match="format version"):
        read_plan(bad, [tmp_path])


def test_geotiff_time_tag_and_scale_offset(tmp_path: Path) -> None:
    path = tmp_path / "scene.tif"
    profile = {"driver": "GTiff", "width": 32, "height": 32, "count": 12, "dtype": "uint16", "crs": "EPSG:32633",
               "transform": Affine(10, 0, 500000, 0, -10, 5000000)}  # fmt: skip
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(np.full((12, 32, 32), 2000, np.uint16))
        ds.descriptions = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
        ds.update_tags(ACQUISITION_TIME="2024-05-01T10:00:00", S2_OFFSET="-1000")
    products = scan(tmp_path).products
    assert products[0].kind == "s2_geotiff" and products[0].sensing_time == "2024-05-01T10:00:00"
    scene = find_geotiff_scene(path)
    assert scene is not None
    reader = GeoTiffS2Reader(scene)
    assert reader.offsets == [-1000.0] * 12 and reader.radiometry == "tags"
    reader.close()
