"""End-to-end mapping: real scenes → COG maps, resume, and bad input that must not stop a batch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate

from cloudlulc_edge.backends import TorchBackend
from cloudlulc_edge.contract import CLASS_SCHEMES
from cloudlulc_edge.io.products import scan
from cloudlulc_edge.models import create_model
from cloudlulc_edge.models.loading import ModelIdentity
from cloudlulc_edge.pairing import pair_products
from cloudlulc_edge.pipeline import MapOptions, map_plan

pytestmark = pytest.mark.filterwarnings("ignore:.*assuming offset 0:UserWarning")


@pytest.fixture(scope="module")
def backend() -> TorchBackend:
    return TorchBackend(create_model("test_tiny").eval(), ModelIdentity("test_tiny", "untrained", "untrained", 512))


def _no_temporaries(out: Path) -> None:
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], "temporary files left behind"


@pytest.mark.parametrize("scheme", ["worldcover", "dynamicworld"])
def test_bigearthnet_pairs_map_to_valid_cogs(bigearthnet_v1: Path, backend: TorchBackend, tmp_path: Path,
                                             scheme: str) -> None:  # fmt: skip
    plan = pair_products(scan(bigearthnet_v1).products)
    reports = map_plan(plan.pairs, backend, tmp_path, MapOptions(class_scheme=scheme, confidence=True))
    assert [r.status for r in reports] == ["done"] * 6
    codes = set(CLASS_SCHEMES[scheme].codes)
    for r in reports:
        assert r.output is not None
        valid, errors, _ = cog_validate(r.output)
        assert valid, errors
        with rasterio.open(r.output) as ds:
            data = ds.read(1)
            tags = ds.tags()
            assert ds.nodata == CLASS_SCHEMES[scheme].nodata and ds.dtypes[0] == "uint8"
            assert set(np.unique(data)) <= codes  # only the scheme's codes (patches are fully valid)
            assert ds.colormap(1)[CLASS_SCHEMES[scheme].codes[1]][:3] == (0, 100, 0)  # Forest colour
            assert tags["CLASS_SCHEME"] == scheme and tags[f"CLASS_{CLASS_SCHEMES[scheme].codes[0]}"] == "Water"
            assert tags["S1_PRODUCTS"].startswith("S1A_IW_GRDH") and tags["MODEL_NAME"] == "test_tiny"
        item = json.loads(Path(r.output).with_suffix(".json").read_text())
        assert {c["value"] for c in item["assets"]["map"]["classification:classes"]} == codes | {
            CLASS_SCHEMES[scheme].nodata
        }
        assert Path(r.output).with_name(Path(r.output).stem + "_confidence.tif").exists()
    _no_temporaries(tmp_path)
    again = map_plan(plan.pairs, backend, tmp_path, MapOptions(class_scheme=scheme))
    assert [r.status for r in again] == ["skipped"] * 6  # resume: finished maps are not redone


def test_resume_keeps_only_maps_made_with_the_same_settings(bigearthnet_v1: Path, backend: TorchBackend,
                                                            tmp_path: Path) -> None:  # fmt: skip
    """A re-run with another class scheme, model or missing output never keeps the old map silently."""
    pairs = pair_products(scan(bigearthnet_v1).products).pairs[:2]
    first = map_plan(pairs, backend, tmp_path, MapOptions(class_scheme="worldcover"))
    assert [r.status for r in first] == ["done"] * 2
    assert first[0].output is not None
    target = Path(first[0].output)
    with rasterio.open(target) as ds:
        recorded = json.loads(ds.tags()["MAP_SETTINGS"])
    assert recorded["class_scheme"] == "worldcover" and recorded["runtime"] == "torch fp32"
    assert recorded["s2"] == pairs[0].s2.product_id and recorded["s1"] == [p.product_id for p in pairs[0].s1]
    before = target.read_bytes()

    other = map_plan(pairs, backend, tmp_path, MapOptions(class_scheme="dynamicworld"))
    assert [r.status for r in other] == ["failed"] * 2
    assert other[0].error is not None and "class_scheme 'worldcover' → 'dynamicworld'" in other[0].error
    assert "--no-resume" in other[0].error and target.read_bytes() == before  # refused, not replaced

    retrained = TorchBackend(backend.model, ModelIdentity("test_tiny", "0.2", "ab12", 512))
    changed = map_plan(pairs[:1], retrained, tmp_path, MapOptions())
    assert changed[0].status == "failed" and changed[0].error is not None and "model_sha256" in changed[0].error

    lacking = map_plan(pairs[:1], backend, tmp_path, MapOptions(confidence=True))
    assert lacking[0].status == "failed" and "lacks the requested output(s) confidence" in str(lacking[0].error)

    replaced = map_plan(pairs[:1], backend, tmp_path, MapOptions(class_scheme="dynamicworld", resume=False))
    assert replaced[0].status == "done"
    with rasterio.open(target) as ds:
        assert ds.tags()["CLASS_SCHEME"] == "dynamicworld"
    assert map_plan(pairs[:1], backend, tmp_path, MapOptions(class_scheme="dynamicworld"))[0].status == "skipped"

    # Not a map at all, or a map from before settings were recorded: the scene fails, the file stays.
    second = Path(str(first[1].output))
    second.unlink()
    second.mkdir()
    broken = map_plan(pairs[1:], backend, tmp_path, MapOptions())
    assert broken[0].status == "failed" and "not a readable map" in str(broken[0].error) and second.is_dir()
    second.rmdir()
    with rasterio.open(second, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8", crs="EPSG:32633",
                       transform=rasterio.transform.from_origin(0, 40, 10, 10)) as ds:  # fmt: skip
        ds.update_tags(MODEL_NAME="test_tiny")
    legacy = map_plan(pairs[1:], backend, tmp_path, MapOptions())
    assert legacy[0].status == "failed" and "records no settings" in str(legacy[0].error)


def test_cloudy_l2a_safe_at_60m_maps_without_s1(s2_safe: Path, backend: TorchBackend, tmp_path: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    (root / s2_safe.name).symlink_to(s2_safe)
    plan = pair_products(scan(root).products)
    (report,) = map_plan(plan.pairs, backend, tmp_path / "out", MapOptions(resolution=60))
    assert report.status == "done", report.error
    assert report.mapped_pct == pytest.approx(59.6, abs=0.5)  # the S2 footprint, clouds included
    assert report.tiles_skipped > 0  # tiles east of the swath are all nodata
    with rasterio.open(report.output) as ds:
        tags = ds.tags()
        assert ds.res == (60.0, 60.0) and ds.crs.to_epsg() == 32629
        assert ds.overviews(1) and tags["S1_MISSING"] == "true" and tags["S2_OFFSETS"].startswith("-1000")
        assert (ds.read(1)[:, -100:] == 0).all()  # outside the swath: nodata
    assert cog_validate(report.output)[0]


def test_bad_scenes_fail_alone_and_leave_nothing(s2_safe: Path, bigearthnet_v1: Path, backend: TorchBackend,
                                                 tmp_path: Path) -> None:  # fmt: skip
    root = tmp_path / "in"
    shutil.copytree(bigearthnet_v1, root)
    # An all-nodata S2 scene.
    dead = root / "BigEarthNet-S2-Example" / "S2A_MSIL2A_20170617T113321_4_55"
    for tif in dead.glob("*.tif"):
        with rasterio.open(tif, "r+") as ds:
            ds.write(np.zeros((ds.height, ds.width), ds.dtypes[0]), 1)
    # A SAFE with a truncated JP2 (the manifest records the true size).
    bad_safe = root / s2_safe.name
    shutil.copytree(s2_safe, bad_safe)
    jp2 = next(bad_safe.rglob("*_B05_60m.jp2"))
    jp2.write_bytes(jp2.read_bytes()[:1000])
    (root / "not-a-product").mkdir()
    result = scan(root)
    assert any("not-a-product" in s.path for s in result.skipped)
    plan = pair_products(result.products)
    reports = {r.name: r for r in map_plan(plan.pairs, backend, tmp_path / "out", MapOptions(resolution=60))}
    assert reports[dead.name].status == "failed" and "all nodata" in (reports[dead.name].error or "")
    safe = reports[s2_safe.name[: -len(".SAFE")]]
    assert safe.status == "failed" and "B05_60m.jp2" in (safe.error or "") and "truncated" in (safe.error or "")
    assert sum(r.status == "done" for r in reports.values()) == 5  # the other scenes complete
    out = tmp_path / "out"
    assert not (out / f"{dead.name}_lulc.tif").exists()
    _no_temporaries(out)
