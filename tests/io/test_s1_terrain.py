"""Range-Doppler terrain correction: its parts on the real annotations, and the whole against sarsen.

sarsen (bopen/sarsen 0.9.6, the dev extra) is an independent implementation of the same
backward geocoding and of Small's gamma flattening; it delivers β⁰ (GTC) and flattened γ⁰ (RTC)
on the DEM's grid, so ``cloudlulc-edge s1 … --like DEM --dem DEM`` writes onto the same pixels.
The measurements are synthetic (the shared products are metadata-only); the annotations, orbits
and the Rome DEM are real, and the S1A case adds a synthetic DEM with 1.5 km of relief.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform
from scipy import ndimage
from scipy.spatial import cKDTree
from typer.testing import CliRunner

from cloudlulc_edge.bench.synthetic_s1 import point_targets, relief_dem, smooth_field, with_measurement
from cloudlulc_edge.cli import app
from cloudlulc_edge.io.archive import SafeArchive
from cloudlulc_edge.io.dem import Dem, DemError, find_geoid_grid, vertical_datum
from cloudlulc_edge.io.grid import RasterGrid
from cloudlulc_edge.io.orbit import OrbitModel, find_orbit_file, read_orbit_file
from cloudlulc_edge.io.s1_metadata import read_s1_geometry, read_s1_metadata
from cloudlulc_edge.io.s1_safe import S1SafeReader, range_doppler_model
from cloudlulc_edge.io.s1_terrain import GeometryCube, TerrainCorrection, geodetic_to_ecef, local_incidence
from tests.conftest import MISSING_TEST_DEPENDENCY, shared_data

S1A = "S1A_IW_GRDH_1SDV_20210809T173953_20210809T174018_039156_049F13_6FF8.SAFE"
S1B = "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371.SAFE"


def _egm96_grid() -> Path:
    """PROJ's EGM96 grid, or a skip counted by the summary banner (Debian: apt-get install proj-data)."""
    try:
        return find_geoid_grid("egm96")
    except DemError:
        pytest.skip(f"{MISSING_TEST_DEPENDENCY} PROJ's EGM96 geoid grid (apt-get install proj-data)")


def _model(name: str):
    archive = SafeArchive(shared_data("s1-grd-safe", name))
    return archive, read_s1_metadata(archive)


@pytest.mark.parametrize("name", [S1A, S1B])
def test_range_doppler_reproduces_the_annotation_gcps(name: str) -> None:
    archive, meta = _model(name)
    model = range_doppler_model(archive, meta)
    lon, lat, h = (np.array([getattr(g, k) for g in meta.gcps]) for k in "xyz")
    rc = model.radar_coordinates(geodetic_to_ecef(lon, lat, h))
    line_err = np.abs(rc.line - [g.row for g in meta.gcps])
    pixel_err = np.abs(rc.pixel - [g.col for g in meta.gcps])
    # The geolocation grid is itself a range-Doppler solve, written with limited precision in the XML.
    assert np.median(line_err) < 0.2 and np.median(pixel_err) < 0.2
    assert line_err.max() < 0.6 and pixel_err.max() < 0.6
    assert model.orbit.residual_m < 0.05  # the degree-5 fit reproduces the 10 s state vectors


def test_orbit_file_is_found_and_gives_the_annotation_orbit(tmp_path: Path) -> None:
    archive, meta = _model(S1B)
    geometry = read_s1_geometry(archive, meta.polarisations["VV"].annotation)

    def eof(name: str) -> None:
        osvs = "".join(
            f"<OSV><TAI>TAI={(geometry.epoch + timedelta(seconds=t + 37)).isoformat()}</TAI>"
            f"<UTC>UTC={(geometry.epoch + timedelta(seconds=t)).isoformat()}</UTC><Absolute_Orbit>+30148"
            f"</Absolute_Orbit><X unit=\"m\">{p[0]}</X><Y unit=\"m\">{p[1]}</Y><Z unit=\"m\">{p[2]}</Z>"
            f"<VX unit=\"m/s\">{v[0]}</VX><VY unit=\"m/s\">{v[1]}</VY><VZ unit=\"m/s\">{v[2]}</VZ>"
            "<Quality>NOMINAL</Quality></OSV>"
            for t, p, v in zip(geometry.orbit_times, geometry.orbit_positions, geometry.orbit_velocities, strict=True)
        )  # fmt: skip
        (tmp_path / name).write_text(
            '<?xml version="1.0" ?><Earth_Explorer_File><Earth_Explorer_Header/><Data_Block type="xml">'
            f'<List_of_OSVs count="{len(geometry.orbit_times)}">{osvs}</List_of_OSVs></Data_Block>'
            "</Earth_Explorer_File>"
        )

    eof("S1B_OPER_AUX_RESORB_OPOD_20211223T080000_V20211223T040000_20211223T070000.EOF")
    eof("S1B_OPER_AUX_POEORB_OPOD_20220112T080000_V20211222T225942_20211224T005942.EOF")
    eof("S1A_OPER_AUX_POEORB_OPOD_20220112T080000_V20211222T225942_20211224T005942.EOF")  # other mission
    eof("S1B_OPER_AUX_POEORB_OPOD_20220113T080000_V20211221T225942_20211222T225942.EOF")  # does not cover
    found = find_orbit_file(tmp_path, "S1B", meta.start_time, meta.stop_time)
    assert "POEORB" in found.name and "V20211222T225942_20211224T005942" in found.name
    from_file = range_doppler_model(archive, meta, tmp_path)
    from_annotation = range_doppler_model(archive, meta)
    t = np.linspace(0, geometry.lines * geometry.azimuth_time_interval, 7)
    assert from_file.orbit.source == found.name
    np.testing.assert_allclose(from_file.orbit.position(t), from_annotation.orbit.position(t), atol=1e-3)
    vectors = read_orbit_file(found, geometry.epoch)
    assert OrbitModel.fit(vectors, 0.0, 25.0).residual_m < 0.05
    with pytest.raises(Exception, match="no S1B POEORB/RESORB orbit file covering"):
        find_orbit_file(tmp_path, "S1B", meta.start_time + timedelta(days=3), meta.stop_time + timedelta(days=3))


def test_geometry_cube_matches_the_exact_solve() -> None:
    archive, meta = _model(S1B)
    model = range_doppler_model(archive, meta)
    dem = Dem.open(shared_data("dem", "Rome-30m-DEM.tif"), "ellipsoid")  # heights as given: the cube is the test
    x0, y0 = transform("EPSG:4326", "EPSG:32633", [12.46], [42.04])
    grid = RasterGrid(CRS.from_epsg(32633), Affine(10, 0, x0[0], 0, -10, y0[0]), 600, 600)
    heights = dem.heights(grid, 0, grid.height)
    assert np.isfinite(heights).all() and np.ptp(heights) > 80
    x = grid.transform.c + (np.arange(grid.width) + 0.5) * 10
    y = grid.transform.f - (np.arange(grid.height) + 0.5) * 10
    cube = GeometryCube(model, grid.crs, x, y, float(heights.min()), float(heights.max()))
    line, pixel, slant = cube.coordinates(heights)
    rows, cols = np.mgrid[3 : grid.height : 37, 5 : grid.width : 41]
    lon, lat = transform(grid.crs, "EPSG:4326", x[cols].ravel(), y[rows].ravel())
    exact = model.radar_coordinates(geodetic_to_ecef(np.asarray(lon), np.asarray(lat), heights[rows, cols].ravel()))
    assert np.abs(line[rows, cols].ravel() - exact.line).max() < 0.01
    assert np.abs(pixel[rows, cols].ravel() - exact.pixel).max() < 0.01
    assert slant is not None and np.abs(slant[rows, cols].ravel() - exact.slant_range).max() < 0.05  # metres


@pytest.mark.parametrize(("slope_deg", "expected"), [(0.0, 35.0), (20.0, 15.0), (60.0, -25.0), (-60.0, 95.0)])
def test_local_incidence_flags_layover_and_shadow(slope_deg: float, expected: float) -> None:
    # A sensor to the west looking east at 35°: a slope rising eastward faces it (θ_loc = θ − α).
    theta = np.radians(35.0)
    x = np.arange(20) * 10.0
    heights = np.tile(np.tan(np.radians(slope_deg)) * x, (20, 1))
    look = np.broadcast_to(np.array([-np.sin(theta), 0.0, np.cos(theta)]), (20, 20, 3))
    angle = local_incidence(heights, (10.0, 10.0), look)
    np.testing.assert_allclose(angle, expected, atol=1e-6)


# --- DEMs --------------------------------------------------------------------------------------------------------


def test_vertical_datum_comes_from_the_crs_or_the_tile_name() -> None:
    with rasterio.open(shared_data("dem", "Rome-30m-DEM.tif")) as ds:
        assert vertical_datum(ds.crs, "Rome-30m-DEM.tif") == "egm96"  # EPSG:9707 = WGS 84 + EGM96 height
    plain = CRS.from_epsg(4326)
    assert vertical_datum(plain, "Copernicus_DSM_COG_10_N41_00_E012_00_DEM.tif") == "egm2008"
    assert vertical_datum(plain, "N41E012.hgt") == "egm96"
    assert vertical_datum(CRS.from_epsg(4979), "dem.tif") == "ellipsoid"
    assert vertical_datum(plain, "dem.tif") is None


def test_geoid_heights_agree_with_proj() -> None:
    pyproj = pytest.importorskip("pyproj", reason=f"{MISSING_TEST_DEPENDENCY} pyproj")
    _egm96_grid()
    dem = Dem.open(shared_data("dem", "Rome-30m-DEM.tif"))  # refuses without the grid: see the next test
    assert dem.datum == "egm96"
    with rasterio.open(dem.path) as ds:
        grid = RasterGrid(CRS.from_epsg(4326), ds.transform, ds.width, ds.height)
        raw = ds.read(1).astype(np.float64)
    heights = dem.heights(grid, 0, grid.height)
    rows, cols = np.mgrid[0 : grid.height : 29, 0 : grid.width : 31]
    lon, lat = rasterio.transform.xy(grid.transform, rows.ravel(), cols.ravel())
    pyproj.datadir.append_data_dir(str(_egm96_grid().parent))
    to_ellipsoid = pyproj.Transformer.from_crs("EPSG:9707", "EPSG:4979", always_xy=True)
    _, _, expected = to_ellipsoid.transform(lon, lat, raw[rows, cols].ravel())
    np.testing.assert_allclose(heights[rows, cols].ravel(), expected, atol=0.02)  # PROJ's own conversion


def test_a_geoid_dem_without_its_grid_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("cloudlulc_edge.io.dem.PROJ_DIRS", (tmp_path,))
    monkeypatch.setenv("PROJ_DATA", str(tmp_path))
    monkeypatch.delenv("PROJ_LIB", raising=False)
    with pytest.raises(DemError, match=r"EGM96 geoid heights but PROJ's grid \(us_nga_egm96_15.tif or "
                                       r"egm96_15.gtx\) is not installed: apt-get install proj-data"):  # fmt: skip
        Dem.open(shared_data("dem", "Rome-30m-DEM.tif"))
    assert Dem.open(shared_data("dem", "Rome-30m-DEM.tif"), "ellipsoid").datum == "ellipsoid"  # --dem-datum


def test_a_folder_of_tiles_is_mosaicked_without_touching_it(tmp_path: Path) -> None:
    source = shared_data("dem", "Rome-30m-DEM.tif")
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    with rasterio.open(source) as ds:
        profile, data, t = ds.profile, ds.read(1), ds.transform
    for i, (r0, c0) in enumerate([(0, 0), (0, 180), (180, 0), (180, 180)]):
        tile_profile = profile | {"width": 180, "height": 180, "transform": t * Affine.translation(c0, r0)}
        with rasterio.open(tiles / f"tile_{i}.tif", "w", **tile_profile) as dst:
            dst.write(data[r0 : r0 + 180, c0 : c0 + 180], 1)
    before = sorted(p.name for p in tiles.iterdir())
    (x0,), (y0,) = transform("EPSG:4326", "EPSG:32633", [12.46], [42.04])
    grid = RasterGrid(CRS.from_epsg(32633), Affine(30, 0, x0, 0, -30, y0), 200, 200)
    mosaic = Dem.open(tiles, "ellipsoid", workdir=tmp_path).heights(grid, 0, grid.height)
    single = Dem.open(source, "ellipsoid").heights(grid, 0, grid.height)
    assert sorted(p.name for p in tiles.iterdir()) == before  # the mosaic VRT went to the workdir
    assert np.isfinite(mosaic).mean() > 0.95
    np.testing.assert_allclose(mosaic, single, atol=1e-3)  # NaN where the single file has none too
    (tmp_path / "empty").mkdir()
    with pytest.raises(DemError, match="no DEM tiles"):
        Dem.open(tmp_path / "empty")


# --- against sarsen -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    """Per case: products with point targets and a smooth field, and an ellipsoidal DEM at 10 m."""
    pytest.importorskip("sarsen", reason=f"{MISSING_TEST_DEPENDENCY} sarsen (pip install -e '.[dev]')")
    _egm96_grid()  # the Rome DEM's EGM96 heights become ellipsoidal
    root = tmp_path_factory.mktemp("terrain")
    out: dict[str, dict[str, Path]] = {}
    # S1B over Rome: the real DEM, on a 1/3-arcsecond grid, converted to ellipsoidal heights.
    rome = Dem.open(shared_data("dem", "Rome-30m-DEM.tif"))
    with rasterio.open(rome.path) as ds:
        fine = RasterGrid(CRS.from_epsg(4326), ds.transform * Affine.scale(1 / 3), ds.width * 3, ds.height * 3)
    out["S1B_Rome"] = {"dem": _write_dem(root / "rome_10m.tif", fine, rome.heights(fine, 0, fine.height))}
    # S1A over the Massif Central: a synthetic DEM of hills and valleys, 470–2020 m.
    out["S1A_relief"] = {"dem": relief_dem(root / "relief_10m.tif", 3.35, 45.60, 1080, 1 / 10800)}
    for case, name in (("S1B_Rome", S1B), ("S1A_relief", S1A)):
        for kind, pattern in (("points", point_targets), ("smooth", smooth_field)):
            (root / case / kind).mkdir(parents=True)
            pols = ("VV", "VH") if (case, kind) == ("S1A_relief", "smooth") else ("VV",)  # the pipeline needs both
            out[case][kind] = with_measurement(shared_data("s1-grd-safe", name), root / case / kind, pattern, pols)
    return out


def _write_dem(path: Path, grid: RasterGrid, heights: npt.NDArray[np.float64]) -> Path:
    profile = {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": 1, "dtype": "float32",
               "crs": grid.crs, "transform": grid.transform, "nodata": np.nan}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(heights.astype(np.float32), 1)
    return path


def _ours(product: Path, dem: Path, out: Path, *extra: str, beta0: bool = True) -> npt.NDArray[np.float64]:
    """``cloudlulc-edge s1`` on the DEM's grid without noise removal: β⁰ (what sarsen delivers), else σ⁰."""
    args = ["s1", str(product), str(out), "--like", str(dem), "--dem", str(dem), "--dem-datum", "ellipsoid",
            "--pol", "VV", "--no-noise-removal", *(["--beta0"] if beta0 else []), *extra]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as ds:
        assert ds.tags()["S1_GEOCODING"] == "RD_DEM" and ds.tags()["S1_DEM_DATUM"] == "ellipsoid"
        return ds.read(1).astype(np.float64)


def _sarsen(product: Path, dem: Path, out: Path, radiometry: str | None = None,
            sigma0: bool = False) -> npt.NDArray[np.float64]:  # fmt: skip
    """sarsen's terrain correction of β⁰ (its own calibration), or of xarray-sentinel's σ⁰ (``sigma0``)."""
    import xarray_sentinel
    from sarsen import apps, sentinel1

    class Sigma0Product(sentinel1.Sentinel1SarProduct):  # type: ignore[misc]
        """sarsen's product with xarray-sentinel's σ⁰ where sarsen geocodes β⁰."""

        def beta_nought(self, persist: bool = False) -> Any:
            measurement = self.measurement.data_vars["measurement"]
            sigma = xarray_sentinel.calibrate_intensity(measurement, self.calibration.sigmaNought)
            return sigma.drop_vars(["pixel", "line"])

    kind = Sigma0Product if sigma0 else sentinel1.Sentinel1SarProduct
    apps.terrain_correction(kind(str(product), "IW/VV"), str(dem), output_urlpath=str(out),
                            correct_radiometry=radiometry, interp_method="linear", chunks=2048)  # fmt: skip
    with rasterio.open(out) as ds, rasterio.open(dem) as ref:
        data = ds.read(1).astype(np.float64)
        assert ds.shape == ref.shape
        if ds.transform.e > 0:  # sarsen writes the DEM grid south-up
            data = data[::-1]
    return data


def _targets(image: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """(N, 2) sub-pixel centroids (row, col) of the point targets."""
    values = np.nan_to_num(image, nan=0.0)
    background = float(np.nanmedian(image))
    labels, n = ndimage.label(values > 20 * background)
    return np.array(ndimage.center_of_mass(np.clip(values - background, 0, None), labels, range(1, n + 1)))


@pytest.mark.parametrize("case", ["S1B_Rome", "S1A_relief"])
def test_point_targets_land_where_sarsen_puts_them(cases: dict[str, dict[str, Path]], case: str,
                                                   tmp_path: Path) -> None:  # fmt: skip
    c = cases[case]
    ours = _targets(_ours(c["points"], c["dem"], tmp_path / "ours.tif"))
    theirs = _targets(_sarsen(c["points"], c["dem"], tmp_path / "sarsen.tif"))
    with rasterio.open(c["dem"]) as ds:
        dx, dy = RasterGrid(ds.crs, ds.transform, ds.width, ds.height).pixel_size_m()
    assert len(ours) == len(theirs) > 50
    distance, _ = cKDTree(theirs * [dy, dx]).query(ours * [dy, dx])
    assert np.median(distance) <= 5.0 and distance.max() <= 12.0  # issue targets; measured ≈ 0.1–0.3 m, ≤ 0.5 m


@pytest.mark.parametrize("case", ["S1B_Rome", "S1A_relief"])
def test_beta0_sigma0_and_gamma0_agree_with_sarsen(
    cases: dict[str, dict[str, Path]], case: str, tmp_path: Path
) -> None:
    c = cases[case]

    def db_error(ours: npt.NDArray[np.float64], theirs: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        both = np.isfinite(ours) & np.isfinite(theirs) & (theirs > 0)
        assert both.mean() > 0.99  # no layover or shadow on these DEMs: every pixel compared
        return np.abs(10 * np.log10(ours[both] / theirs[both]))

    gtc = db_error(
        _ours(c["smooth"], c["dem"], tmp_path / "gtc.tif"), _sarsen(c["smooth"], c["dem"], tmp_path / "s.tif")
    )
    assert np.median(gtc) <= 0.1 and np.percentile(gtc, 99) <= 0.1  # measured: ≤ 1e-6 dB median
    sigma0 = db_error(
        _ours(c["smooth"], c["dem"], tmp_path / "sigma0.tif", beta0=False),
        _sarsen(c["smooth"], c["dem"], tmp_path / "s0.tif", sigma0=True),
    )
    assert np.median(sigma0) <= 0.1 and np.percentile(sigma0, 99) <= 0.1  # σ⁰, the default radiometry
    rtc = db_error(_ours(c["smooth"], c["dem"], tmp_path / "rtc.tif", "--rtc"),
                   _sarsen(c["smooth"], c["dem"], tmp_path / "r.tif", "gamma_bilinear"))  # fmt: skip
    assert np.median(rtc) <= 0.3  # measured: ≈ 0.002–0.004 dB median, 0.2–0.27 dB at the 95th percentile


def test_an_egm96_dem_gives_the_positions_of_its_ellipsoidal_conversion(cases: dict[str, dict[str, Path]],
                                                                        tmp_path: Path) -> None:  # fmt: skip
    pyproj = pytest.importorskip("pyproj", reason=f"{MISSING_TEST_DEPENDENCY} pyproj")
    rome = shared_data("dem", "Rome-30m-DEM.tif")
    with rasterio.open(rome) as ds:
        grid = RasterGrid(CRS.from_epsg(4326), ds.transform, ds.width, ds.height)
        raw = ds.read(1).astype(np.float64)
    rows, cols = np.mgrid[0 : grid.height, 0 : grid.width]
    lon, lat = rasterio.transform.xy(grid.transform, rows.ravel(), cols.ravel())
    pyproj.datadir.append_data_dir(str(_egm96_grid().parent))
    _, _, h = pyproj.Transformer.from_crs("EPSG:9707", "EPSG:4979", always_xy=True).transform(lon, lat, raw.ravel())
    ellipsoidal = _write_dem(tmp_path / "rome_ellipsoidal.tif", grid, np.asarray(h).reshape(raw.shape))
    c = cases["S1B_Rome"]
    on_geoid = _targets(_ours_on(c["points"], c["dem"], rome, tmp_path / "geoid.tif", "auto"))
    on_ellipsoid = _targets(_ours_on(c["points"], c["dem"], ellipsoidal, tmp_path / "ell.tif", "ellipsoid"))
    assert len(on_geoid) == len(on_ellipsoid) > 50
    distance, _ = cKDTree(on_ellipsoid).query(on_geoid)
    assert distance.max() < 0.05  # output pixels (10 m): the geoid conversion is PROJ's to centimetres


def _ours_on(product: Path, like: Path, dem: Path, out: Path, datum: str) -> npt.NDArray[np.float64]:
    result = CliRunner().invoke(app, ["s1", str(product), str(out), "--like", str(like), "--dem", str(dem),
                                      "--dem-datum", datum, "--pol", "VV"])  # fmt: skip
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as ds:
        return ds.read(1).astype(np.float64)


def test_a_dem_that_misses_the_scene_fails_it_or_falls_back(cases: dict[str, dict[str, Path]]) -> None:
    x0, y0 = transform("EPSG:4326", "EPSG:32633", [12.3], [42.2])
    big = RasterGrid(CRS.from_epsg(32633), Affine(60, 0, x0[0], 0, -60, y0[0]), 600, 600)  # 36 km: Rome's DEM is 8
    product, dem = cases["S1B_Rome"]["smooth"], cases["S1B_Rome"]["dem"]
    with pytest.raises(DemError, match="the DEM does not cover the scene"):
        S1SafeReader(product, big, ("VV",), terrain=TerrainCorrection(dem, dem_datum="ellipsoid"))
    reader = S1SafeReader(product, big, ("VV",), terrain=TerrainCorrection(dem, dem_datum="ellipsoid",
                                                                           dem_fallback="gcp"))  # fmt: skip
    try:
        tags = reader.tags()
        assert tags["S1_GEOCODING"] == "GCP_ELLIPSOID" and "does not cover" in tags["S1_GEOCODING_FALLBACK"]
        assert np.isfinite(reader.read_linear(0, 64)).any()
    finally:
        reader.close()


def _s2_scene(path: Path) -> Path:
    """A 12-band S2 GeoTIFF in the relief DEM, 1.28 km at 10 m, acquired seven hours before the S1A product."""
    (x0,), (y0,) = transform("EPSG:4326", "EPSG:32631", [3.39], [45.56])
    profile = {"driver": "GTiff", "width": 128, "height": 128, "count": 12, "dtype": "uint16", "crs": "EPSG:32631",
               "transform": Affine(10, 0, x0, 0, -10, y0), "nodata": 0}  # fmt: skip
    rng = np.random.default_rng(3)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(rng.integers(300, 3000, (12, 128, 128)).astype(np.uint16))
        dst.descriptions = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
        dst.update_tags(ACQUISITION_TIME="2021-08-09T10:30:00", S2_OFFSET="0", S2_QUANTIFICATION="10000")
    return path


def test_map_plan_and_run_terrain_correct_s1_and_guard_the_radiometry(cases: dict[str, dict[str, Path]],
                                                                      tmp_path: Path) -> None:  # fmt: skip
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / S1A).symlink_to(cases["S1A_relief"]["smooth"])
    _s2_scene(inputs / "S2B_MSIL2A_20210809T103000_relief.tif")
    dem = str(cases["S1A_relief"]["dem"])
    runner = CliRunner()

    def mapped(out: str, *extra: str, expect: int = 0) -> dict[str, str]:
        args = ["map", str(inputs), str(tmp_path / out), "--variant", "test_tiny_local", "--allow-untrained",
                "--tile", "64", "--overlap", "8", "-q", *extra]  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == expect, result.output
        if expect:
            return {"output": " ".join(result.output.split())}  # rich wraps long messages
        (path,) = (tmp_path / out).glob("*_lulc.tif")
        with rasterio.open(path) as ds:
            return ds.tags()

    tags = mapped("dem", "--dem", dem, "--dem-datum", "ellipsoid")
    assert tags["S1_GEOCODING"] == "RD_DEM" and tags["S1_RADIOMETRY"] == "sigma0" and tags["S1_ORBIT"] == "annotation"
    assert "S1_GEOCODING_MISMATCH" not in tags and 0.0 <= float(tags["S1_LAYOVER_SHADOW_PCT"]) < 5.0
    (report,) = (tmp_path / "dem" / "reports").glob("map-*.json")
    record = json.loads(report.read_text())
    assert record["scenes"][0]["s1_geocoding"] == "RD_DEM" and record["options"]["terrain"]["dem"] == dem
    # Without a DEM: GCP geocoding, and a warning tag (the default model was trained on terrain-corrected S1).
    assert "mapped with GCP_ELLIPSOID" in mapped("gcp")["S1_GEOCODING_MISMATCH"]
    # γ⁰ for a σ⁰ model: refused before any scene is read, or allowed and tagged.
    refused = mapped("rtc", "--dem", dem, "--dem-datum", "ellipsoid", "--rtc", expect=2)["output"]
    assert "S1 radiometry mismatch: model trained on sigma0, S1 mapped as gamma0_terrain" in refused
    tags = mapped("rtc_allowed", "--dem", dem, "--dem-datum", "ellipsoid", "--rtc", "--allow-radiometry-mismatch")
    assert tags["S1_RADIOMETRY"] == "gamma0_terrain" and "gamma0_terrain" in tags["S1_RADIOMETRY_MISMATCH"]
    assert "need --dem" in mapped("no_dem", "--rtc", expect=2)["output"]
    # plan records the terrain correction; run applies it, and refuses a different one.
    plan = tmp_path / "plan.json"
    result = runner.invoke(app, ["plan", str(inputs), str(plan), "--dem", dem, "--dem-datum", "ellipsoid"])
    assert result.exit_code == 0, result.output
    assert json.loads(plan.read_text())["options"]["terrain"]["dem_datum"] == "ellipsoid"
    run = ["run", str(plan), str(tmp_path / "run"), "--input-root", str(inputs), "--variant", "test_tiny_local",
           "--allow-untrained", "--tile", "64", "--overlap", "8", "-q"]  # fmt: skip
    result = runner.invoke(app, run)
    assert result.exit_code == 0, result.output
    (path,) = (tmp_path / "run").glob("*_lulc.tif")
    with rasterio.open(path) as ds:
        assert ds.tags()["S1_GEOCODING"] == "RD_DEM"
    result = runner.invoke(app, [*run, "--dem", str(cases["S1B_Rome"]["dem"])])
    assert result.exit_code == 2 and "the plan records terrain correction" in " ".join(result.output.split())


def test_paths_that_do_not_exist_are_usage_errors(tmp_path: Path) -> None:
    """`s1` and `map` refuse a missing SAFE, reference raster, DEM or orbit folder at parse time (exit 2)."""
    fixtures = Path(__file__).resolve().parents[1] / "data" / "sentinel"
    safe = next(fixtures.glob("S1*_GRDH_*.SAFE"))
    like = tmp_path / "like.tif"
    with rasterio.open(like, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8", crs="EPSG:32633",
                       transform=Affine(10, 0, 0, 0, -10, 40)) as ds:  # fmt: skip
        ds.write(np.zeros((1, 4, 4), np.uint8))  # only its grid matters
    missing = str(tmp_path / "missing")
    cases = [
        ["s1", missing, str(tmp_path / "o.tif"), "--like", str(like)],
        ["s1", str(safe), str(tmp_path / "o.tif"), "--like", missing],
        ["s1", str(safe), str(tmp_path / "o.tif"), "--like", str(like), "--dem", missing],
        ["s1", str(safe), str(tmp_path / "o.tif"), "--like", str(like), "--dem", str(like), "--orbit-dir", missing],
        ["map", str(fixtures / "bigearthnet"), str(tmp_path / "maps"), "--dem", missing],
    ]
    for args in cases:
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        words = " ".join(w for w in result.output.split() if w != "│")  # Typer's error box, unwrapped
        assert "does not exist" in words, (args, result.output)
        assert isinstance(result.exception, SystemExit)  # a usage error, not a traceback
    assert not (tmp_path / "o.tif").exists() and not (tmp_path / "maps").exists()
