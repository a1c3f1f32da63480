"""Cloud simulation from the real cloudy L2A product onto real BigEarthNet patches."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from cloudlulc_edge.contract import S2_BANDS
from cloudlulc_edge.data.bigearthnet import BigEarthNetDW
from cloudlulc_edge.data.cloud_sim import CloudDonor, CloudSimulator, simulate_sample
from cloudlulc_edge.errors import ProductError
from tests.conftest import shared_data

B02, B08 = S2_BANDS.index("B02"), S2_BANDS.index("B08")


@pytest.fixture(scope="module")
def donor() -> CloudDonor:
    safe = shared_data("s2-l2a-safe", "S2A_MSIL2A_20221005T115411_N0400_R023_T29UNU_20221005T164454.SAFE")
    return CloudDonor.from_safe(safe)


@pytest.fixture(scope="module")
def clear_patch():
    data = BigEarthNetDW(shared_data(), "train")
    sample = next(s for s in data if s.name.endswith("87_48"))  # Austrian cropland, clear
    return sample


def test_donor_holds_real_cloud_material(donor):
    assert donor.reflectance.shape == (12, 1830, 1830)
    assert 0.55 < donor.valid.mean() < 0.65  # 59.6 % of the tile has data
    cloudy = donor.density >= 0.15
    assert 0.2 < cloudy[donor.valid].mean() < 0.7
    # Real clouds: bright in the blue, darker in the SWIR; shadows darken every band.
    thick = donor.density > 0.8
    blue, swir = donor.reflectance[B02][thick].astype(float), donor.reflectance[S2_BANDS.index("B12")][thick]
    assert np.median(blue) > 0.4 and np.median(swir) < np.median(blue)
    assert np.all(donor.shadow_ratio < 1.0) and np.all(donor.shadow_ratio > 0.05)
    assert math.isclose(donor.sun_zenith_deg, 57.82, abs_tol=0.01)
    assert math.isclose(donor.sun_azimuth_deg, 172.84, abs_tol=0.01)


@pytest.mark.parametrize("cover", [0.1, 0.3, 0.5, 0.7, 0.9])
def test_requested_cover_is_met_to_the_pixel(donor, clear_patch, cover):
    patch = CloudSimulator(donor).simulate(clear_patch.s2_clear, cover, np.random.default_rng(7))
    assert abs(patch.cover - cover) <= 2 / clear_patch.label.size
    assert patch.s2.shape == clear_patch.s2_clear.shape and patch.s2.dtype == np.float32
    assert patch.s2.min() >= 0 and patch.s2.max() <= 1


def test_clouds_are_structured_graded_and_bright(donor, clear_patch):
    patch = CloudSimulator(donor).simulate(clear_patch.s2_clear, 0.4, np.random.default_rng(3))
    cloud = patch.alpha > 0
    # Not a box: the mask does not fill its bounding box, and opacity is graded, not binary.
    rows, cols = np.nonzero(cloud)
    box = (np.ptp(rows) + 1) * (np.ptp(cols) + 1)
    assert cloud.sum() < box
    assert len(np.unique(np.round(patch.alpha[cloud], 2))) > 20
    # Spatially coherent (real cloud texture), not per-pixel noise: neighbours agree.
    assert (cloud[:, 1:] == cloud[:, :-1]).mean() > 0.95
    # Opaque cloud is much brighter in the blue than the clear land under it.
    opaque = patch.alpha > 0.8
    assert opaque.any()
    assert np.median(patch.s2[B02][opaque] - clear_patch.s2_clear[B02][opaque]) > 0.2


def test_shadows_are_displaced_away_from_the_sun_and_darken(donor, clear_patch):
    height = 300.0
    sim = CloudSimulator(donor, cloud_height_m=(height, height))
    # Documented geometry: h·tan(zenith) away from the sun; sun at azimuth 173° (south) → shadows north.
    shift = height * math.tan(math.radians(donor.sun_zenith_deg)) / 10.0
    d_row = round(shift * math.cos(math.radians(donor.sun_azimuth_deg)))
    d_col = round(-shift * math.sin(math.radians(donor.sun_azimuth_deg)))
    assert d_row < -40 and abs(d_col) < 10
    checked = 0
    for seed in range(10):
        patch = sim.simulate(clear_patch.s2_clear, 0.3, np.random.default_rng(seed), rotate=False)
        shaded = patch.shadow > 0.3
        assert not np.any(shaded & (patch.alpha > 0))  # a shadow only shows where there is no cloud
        if shaded.sum() < 50:
            continue
        # Cloud-free shaded pixels: clear · (1 − s · (1 − donor shadow ratio)), band by band.
        expected = clear_patch.s2_clear[:, shaded] * (1 - patch.shadow[shaded] * (1 - donor.shadow_ratio[:, None]))
        np.testing.assert_allclose(patch.s2[:, shaded], expected, rtol=1e-5, atol=1e-6)
        assert np.median(patch.s2[B08][shaded] / clear_patch.s2_clear[B08][shaded]) < 0.85
        # Every shaded pixel whose casting pixel lies inside the patch has thick cloud there.
        rows, cols = np.nonzero(shaded)
        src_r, src_c = rows - d_row, cols - d_col
        inside = (src_r < 120) & (src_c >= 0) & (src_c < 120)
        assert np.all(patch.alpha[src_r[inside], src_c[inside]] > 0.2)
        checked += int(inside.sum())
    assert checked > 100, "too few shadows with their cloud inside the patch to check the geometry"


def test_zero_cover_returns_the_clear_patch_and_invalid_pixels_are_kept(donor, clear_patch):
    sim = CloudSimulator(donor)
    untouched = sim.simulate(clear_patch.s2_clear, 0.0, np.random.default_rng(0))
    np.testing.assert_array_equal(untouched.s2, clear_patch.s2_clear)
    valid = np.ones(clear_patch.label.shape, dtype=bool)
    valid[:, :30] = False
    patch = sim.simulate(clear_patch.s2_clear, 0.6, np.random.default_rng(0), valid=valid)
    np.testing.assert_array_equal(patch.s2[:, ~valid], clear_patch.s2_clear[:, ~valid])
    assert not patch.alpha[~valid].any()
    assert abs(patch.cover - 0.6) <= 2 / valid.sum()


def test_simulation_is_deterministic_per_seed(donor, clear_patch):
    sim = CloudSimulator(donor)
    a = simulate_sample(clear_patch, sim, 0.5, np.random.default_rng([1, 2]))
    b = simulate_sample(clear_patch, sim, 0.5, np.random.default_rng([1, 2]))
    c = simulate_sample(clear_patch, sim, 0.5, np.random.default_rng([1, 3]))
    np.testing.assert_array_equal(a.s2, b.s2)
    assert not np.array_equal(a.s2, c.s2)
    assert abs(a.cloud_fraction - 0.5) < 0.01
    np.testing.assert_array_equal(a.s2_clear, clear_patch.s2_clear)  # the clear reference is kept


def test_bad_arguments_are_refused(donor, clear_patch):
    sim = CloudSimulator(donor)
    with pytest.raises(ValueError, match="cover"):
        sim.simulate(clear_patch.s2_clear, 1.5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="12, H, W"):
        sim.simulate(clear_patch.s2_clear[:3], 0.5, np.random.default_rng(0))


def test_a_donor_without_scl_is_refused_naming_the_file(tmp_path):
    src = shared_data("s2-l2a-safe", "S2A_MSIL2A_20221005T115411_N0400_R023_T29UNU_20221005T164454.SAFE")
    safe = tmp_path / src.name
    shutil.copytree(src, safe)
    scl = next(safe.glob("GRANULE/*/IMG_DATA/R60m/*_SCL_60m.jp2"))
    scl.unlink()
    with pytest.raises(ProductError, match="SCL") as info:
        CloudDonor.from_safe(safe)
    assert "SCL_60m.jp2" in str(info.value)


def test_non_square_scenes_get_the_exact_cover_too(donor, clear_patch):
    wide = np.concatenate([clear_patch.s2_clear, clear_patch.s2_clear[:, :, :70]], axis=2)  # 120 × 190
    for seed in range(4):
        patch = CloudSimulator(donor).simulate(wide, 0.45, np.random.default_rng(seed))
        assert patch.s2.shape == wide.shape
        assert abs(patch.cover - 0.45) <= 2 / (120 * 190)
