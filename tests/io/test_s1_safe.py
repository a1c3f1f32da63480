"""S1 GRD metadata, calibration and GCP geocoding on the real SAFE metadata (measurement synthetic)."""

from __future__ import annotations

import bisect
import itertools
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from rasterio.features import geometry_mask
from rasterio.warp import transform, transform_geom

from cloudlulc_edge.bench.synthetic_s1 import constant, with_measurement
from cloudlulc_edge.errors import PairingError
from cloudlulc_edge.io.archive import SafeArchive
from cloudlulc_edge.io.grid import RasterGrid
from cloudlulc_edge.io.s1_calibration import SIGMA0_FLOOR, NoiseLut, backscatter, read_calibration, read_noise
from cloudlulc_edge.io.s1_metadata import read_s1_metadata
from cloudlulc_edge.io.s1_safe import S1SafeReader
from tests.conftest import MISSING_TEST_DEPENDENCY, shared_data

S1A = "S1A_IW_GRDH_1SDV_20210809T173953_20210809T174018_039156_049F13_6FF8.SAFE"
S1B = "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371.SAFE"


@pytest.mark.parametrize(
    ("name", "pols", "cal", "pixels", "noise_range", "ipf"),
    [(S1A, ["VH", "VV"], 27, 655, 26, "003.31"), (S1B, ["VV"], 27, 654, 27, "003.40")],
)
def test_metadata_and_lut_vector_counts(name: str, pols: list[str], cal: int, pixels: int, noise_range: int,
                                        ipf: str) -> None:  # fmt: skip
    archive = SafeArchive(shared_data("s1-grd-safe", name))
    meta = read_s1_metadata(archive)
    assert sorted(meta.polarisations) == pols
    assert meta.ipf_version == ipf and len(meta.gcps) == 210 and meta.pixel_spacing == 10.0
    for pol in meta.polarisations.values():
        c = read_calibration(archive, pol.calibration)
        n = read_noise(archive, pol.noise)
        assert len(c.lines) == cal and all(p.size == pixels for p in c.pixels)
        assert len(n.range_lines) == noise_range and len(n.azimuth) == 3  # IPF >= 2.9: IW1..IW3 azimuth blocks


def _independent_lut(lines: list[float], pixels: list[list[float]], values: list[list[float]], row: float,
                     col: float) -> float:  # fmt: skip
    """Scalar bilinear evaluation written from the formula, without the vectorised helper."""

    def along(k: int) -> float:
        p, v = pixels[k], values[k]
        j = min(max(bisect.bisect_right(p, col) - 1, 0), len(p) - 2)
        t = min(max((col - p[j]) / (p[j + 1] - p[j]), 0.0), 1.0)
        return v[j] * (1 - t) + v[j + 1] * t

    i = min(max(bisect.bisect_right(lines, row) - 1, 0), len(lines) - 2)
    u = min(max((row - lines[i]) / (lines[i + 1] - lines[i]), 0.0), 1.0)
    return along(i) * (1 - u) + along(i + 1) * u


def test_calibration_matches_an_independent_evaluation() -> None:
    archive = SafeArchive(shared_data("s1-grd-safe", S1A))
    pol = read_s1_metadata(archive).polarisations["VV"]
    cal, noise = read_calibration(archive, pol.calibration), read_noise(archive, pol.noise)
    rng = np.random.default_rng(0)
    lines = [float(x) for x in cal.lines]
    for _ in range(20):
        row, col = int(rng.integers(0, 16676)), int(rng.integers(0, 26144))
        dn = np.array([[int(rng.integers(20, 2000))]], dtype=np.uint16)
        a = _independent_lut(lines, [list(p) for p in cal.pixels], [list(v) for v in cal.sigma0], row, col)
        eta_r = _independent_lut([float(x) for x in noise.range_lines], [list(p) for p in noise.range_pixels],
                                 [list(v) for v in noise.range_values], row, col)  # fmt: skip
        block = next(b for b in noise.azimuth if b.first_sample <= col <= b.last_sample)
        eta_a = float(np.interp(row, block.lines, block.values))
        expected = max((float(dn[0, 0]) ** 2 - eta_r * eta_a) / a**2, 1e-4)
        assert backscatter(dn, row, col, cal, noise)[0, 0] == pytest.approx(expected, rel=1e-5)


def test_calibration_of_a_block_matches_xarray_sentinel() -> None:
    """σ⁰ of 200 full-width lines of random DNs on the real LUTs, against xarray-sentinel's ``calibrate_intensity``."""
    xarray_sentinel = pytest.importorskip("xarray_sentinel", reason=f"{MISSING_TEST_DEPENDENCY} xarray-sentinel")
    import xarray as xr

    product = shared_data("s1-grd-safe", S1A)
    archive = SafeArchive(product)
    pol = read_s1_metadata(archive).polarisations["VV"]
    cal = read_calibration(archive, pol.calibration)
    row0, rows, cols = 7000, 200, 26144
    dn = np.random.default_rng(0).integers(1, 3000, size=(rows, cols), dtype=np.uint16)
    dn[:, :50] = 0  # no-value samples at the swath edge
    ours = backscatter(dn, row0, 0, cal, None)
    lut = xarray_sentinel.open_sentinel1_dataset(str(product), group="IW/VV/calibration").sigmaNought
    measurement = xr.DataArray(dn, dims=("line", "pixel"),
                               coords={"line": np.arange(row0, row0 + rows), "pixel": np.arange(cols)})  # fmt: skip
    theirs = xarray_sentinel.calibrate_intensity(measurement, lut).values
    assert np.isnan(ours[:, :50]).all() and (theirs[:, :50] == 0).all()
    ours, theirs = ours[:, 50:], theirs[:, 50:]
    above = theirs > SIGMA0_FLOOR  # below it ours holds the −40 dB floor, as xarray-sentinel's min_db does in dB
    assert 0.9 < above.mean() < 1.0
    np.testing.assert_array_equal(ours[~above], np.float32(SIGMA0_FLOOR))
    # xarray-sentinel holds the LUT in float32: agreement to its precision.
    np.testing.assert_allclose(ours[above], theirs[above], rtol=2e-6)


def test_multilook_averages_power_not_amplitude() -> None:
    archive = SafeArchive(shared_data("s1-grd-safe", S1A))
    pol = read_s1_metadata(archive).polarisations["VV"]
    cal = read_calibration(archive, pol.calibration)
    dn = np.array([[100, 300], [100, 300]], dtype=np.uint16)
    ml = backscatter(dn, 4000, 9000, cal, None, looks=2)[0, 0]
    single = backscatter(dn, 4000, 9000, cal, None).mean()
    assert ml == pytest.approx(single, rel=1e-3)  # mean of σ⁰, not σ⁰ of mean DN (which is 20 % lower)
    assert (
        backscatter(np.zeros((2, 2), np.uint16), 0, 0, cal, None, looks=2)[0, 0]
        != backscatter(dn, 0, 0, cal, None, 2)[0, 0]
    )


@pytest.mark.parametrize("name", [S1A, S1B])
def test_multilooked_pixels_on_a_subswath_boundary_get_the_azimuth_noise(name: str) -> None:
    """Regression: with 2 looks a block centre at x.5 between two sub-swaths used to get no azimuth factor."""
    archive = SafeArchive(shared_data("s1-grd-safe", name))
    pol = next(iter(read_s1_metadata(archive).polarisations.values()))
    cal, noise = read_calibration(archive, pol.calibration), read_noise(archive, pol.noise)
    range_only = NoiseLut(noise.range_lines, noise.range_pixels, noise.range_values, ())
    blocks = sorted(noise.azimuth, key=lambda b: b.first_sample)
    for left, right in itertools.pairwise(blocks):
        assert right.first_sample == left.last_sample + 1  # the sub-swaths tile the samples
        row = float(int(0.5 * (max(left.first_line, right.first_line) + min(left.last_line, right.last_line))))
        centre = np.array([left.last_sample + 0.5])  # the centre of a 2-look block across the boundary
        factor = (noise.interpolate(np.array([row]), centre) / range_only.interpolate(np.array([row]), centre))[0, 0]
        sides = [float(np.interp(row, b.lines, b.values)) for b in (left, right)]
        assert min(abs(factor / f - 1) for f in sides) < 1e-9, f"{name}: factor {factor} is neither of {sides}"
        # End to end, noise removal on: a dark target (DN² = 1.5 η) shows no spike in the boundary column.
        r0, c0 = int(row) - int(row) % 2, left.last_sample - 7  # the 4th 2×2 block straddles the boundary
        eta = float(noise.interpolate(np.array([row]), centre)[0, 0])
        dn = np.full((2, 16), round(np.sqrt(1.5 * eta)), np.uint16)
        db = 10 * np.log10(backscatter(dn, r0, c0, cal, noise, looks=2)[0])
        lo, hi = min(db[2], db[4]), max(db[2], db[4])
        assert lo - 0.05 <= db[3] <= hi + 0.05, (
            f"{name}: boundary column {db[3]:.2f} dB vs neighbours {lo:.2f}..{hi:.2f}"
        )


@pytest.fixture(scope="module")
def s1b_with_measurement(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real S1B metadata plus a full-size synthetic VV measurement (constant DN 200)."""
    return with_measurement(shared_data("s1-grd-safe", S1B), tmp_path_factory.mktemp("s1"), constant(200.0))


def _utm_grid(footprint: dict, res: float) -> RasterGrid:
    ring = footprint["coordinates"][0]
    xs, ys = transform("EPSG:4326", "EPSG:32633", [p[0] for p in ring], [p[1] for p in ring])
    left, top = min(xs) - 5000, max(ys) + 5000
    width, height = int((max(xs) + 5000 - left) / res), int((top - min(ys) + 5000) / res)
    return RasterGrid(CRS.from_epsg(32633), Affine(res, 0, left, 0, -res, top), width, height)


def test_geocodes_onto_utm_in_the_right_place(s1b_with_measurement: Path) -> None:
    meta = read_s1_metadata(SafeArchive(s1b_with_measurement))
    grid = _utm_grid(meta.footprint, 200.0)
    reader = S1SafeReader(s1b_with_measurement, grid, polarisations=("VV",))
    try:
        assert reader.looks == 20
        sigma = reader.read_linear(0, grid.height)[0]
    finally:
        reader.close()
    valid = np.isfinite(sigma)
    # Image corners (first/last line × first/last pixel GCPs) land within 2 output pixels of the data.
    rows, cols = np.nonzero(valid)
    for g in meta.gcps:
        if g.row in (0, meta.lines - 1) and g.col in (0, meta.samples - 1):
            x, y = transform("EPSG:4326", grid.crs, [g.x], [g.y])
            c, r = ~grid.transform * (x[0], y[0])
            assert np.hypot(rows + 0.5 - r, cols + 0.5 - c).min() < 2.0
    # The geocoded data and the manifest footprint agree as areas (IoU); the manifest's own corners
    # differ from the annotation's corner GCPs by up to ~1.2 km (7 px here), a property of the product.
    footprint = geometry_mask([transform_geom("EPSG:4326", grid.crs, meta.footprint)], (grid.height, grid.width),
                              grid.transform, invert=True)  # fmt: skip
    iou = (footprint & valid).sum() / (footprint | valid).sum()
    assert iou > 0.98
    # Constant DN 200: σ⁰ follows the LUTs, -18..-6 dB across the swath.
    db = 10 * np.log10(sigma[valid])
    assert -20 < db.min() < db.max() < -4


def test_product_without_overlap_is_a_pairing_error(s1b_with_measurement: Path) -> None:
    far = RasterGrid(CRS.from_epsg(32629), Affine(60, 0, 499980, 0, -60, 5900040), 1830, 1830)  # Ireland
    with pytest.raises(PairingError, match="does not overlap"):
        S1SafeReader(s1b_with_measurement, far, polarisations=("VV",))
