"""Wrong units are caught by their statistics: linear S1 without a tag, dB tagged linear, S2 reflectance for DN, −inf dB."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from cloudlulc_edge.errors import ProductError
from cloudlulc_edge.io.geotiff import GeoTiffS1Reader, GeoTiffS2Reader, find_geotiff_scene, scene_grid

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "sentinel" / "bigearthnet"


def _rewrite(folder: Path, transform, dtype: str = "float32", **tags: str) -> None:
    """Rewrites every band file of a scene folder through ``transform`` (values), with ``tags``."""
    for path in sorted(folder.glob("*.tif")):
        with rasterio.open(path) as ds:
            profile, data = ds.profile, ds.read().astype(np.float64)
        profile.update(dtype=dtype, nodata=None)
        with rasterio.open(path, "w", **profile) as ds:
            ds.write(transform(data).astype(dtype))
            ds.update_tags(**tags)


@pytest.fixture
def scenes(tmp_path: Path) -> tuple[Path, Path]:
    root = Path(shutil.copytree(FIXTURE, tmp_path / "in"))
    (s2,) = (root / "S2").iterdir()
    (s1,) = (root / "S1").iterdir()
    return s2, s1


def _s1_reader(s1: Path, s2: Path) -> GeoTiffS1Reader:
    s2_scene, s1_scene = find_geotiff_scene(s2), find_geotiff_scene(s1)
    assert s2_scene is not None and s1_scene is not None
    return GeoTiffS1Reader(s1_scene, scene_grid(s2_scene))


def test_the_fixture_passes_as_it_is(scenes):
    s2, s1 = scenes
    _s1_reader(s1, s2).close()
    scene = find_geotiff_scene(s2)
    assert scene is not None
    GeoTiffS2Reader(scene, offset=0, quantification=10000).close()


def test_linear_s1_without_a_units_tag_is_refused_and_maps_once_tagged(scenes):
    s2, s1 = scenes
    _rewrite(s1, lambda db: 10 ** (db / 10))
    with pytest.raises(ProductError, match="look like linear power, not dB") as err:
        _s1_reader(s1, s2)
    assert "S1_UNITS=linear" in str(err.value) and "_VV.tif" in str(err.value)
    _rewrite(s1, lambda linear: linear, S1_UNITS="linear")
    _s1_reader(s1, s2).close()


def test_db_values_tagged_linear_are_refused(scenes):
    s2, s1 = scenes
    _rewrite(s1, lambda db: db, S1_UNITS="linear")
    with pytest.raises(ProductError, match="are negative: these are dB"):
        _s1_reader(s1, s2)


def test_minus_infinity_db_is_no_data_not_zero_power(scenes):
    s2, s1 = scenes

    def with_holes(db):
        db = db.copy()
        db[:, :10, :10] = -np.inf  # log10(0) of a zero-power pixel written as dB
        return db

    _rewrite(s1, with_holes)
    reader = _s1_reader(s1, s2)
    linear = reader.read_linear(0, reader.grid.height)
    reader.close()
    assert np.isnan(linear[:, :5, :5]).all(), "−inf dB must be no data"
    assert np.isfinite(linear[:, 60:, 60:]).all()


def test_s2_reflectance_where_dn_is_expected_is_refused_with_the_fix(scenes):
    s2, _ = scenes
    _rewrite(s2, lambda dn: dn / 10000.0)
    scene = find_geotiff_scene(s2)
    assert scene is not None
    with pytest.raises(ProductError, match="look like reflectance") as err:
        GeoTiffS2Reader(scene, offset=0, quantification=10000)
    assert "--s2-quantification 1" in str(err.value)
    GeoTiffS2Reader(scene, offset=0, quantification=1).close()


def test_non_finite_s2_values_are_no_data(scenes):
    from cloudlulc_edge.io.products import identify
    from cloudlulc_edge.io.scene import SceneReader

    s2, _ = scenes

    def with_holes(dn):
        dn = dn.copy()
        dn[:, 3, 3], dn[:, 4, 4], dn[:, 5, 5] = np.nan, np.inf, -np.inf
        return dn

    _rewrite(s2, with_holes)
    product = identify(s2)
    assert product is not None
    reader = SceneReader(product, s2_offset=0, s2_quantification=10000)
    strip = reader.read(0, reader.grid.height)
    reader.close()
    assert not strip.s2_valid[3, 3] and not strip.s2_valid[4, 4] and not strip.s2_valid[5, 5]
    assert np.isfinite(strip.s2).all() and strip.s2_valid[60:, 60:].all()
