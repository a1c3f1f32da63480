"""The S2 SAFE reader on the real cloudy L2A product (T29UNU, 2022-10-05, baseline 04.00)."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cloudlulc_edge.errors import ProductError
from cloudlulc_edge.io.archive import SafeArchive
from cloudlulc_edge.io.s2_safe import S2SafeReader, read_s2_metadata


def test_metadata_offsets_come_from_the_mtd(s2_safe: Path) -> None:
    meta = read_s2_metadata(SafeArchive(s2_safe))
    assert meta.level == "L2A" and meta.processing_baseline == "04.00"
    assert meta.quantification == 10000
    assert set(meta.offsets.values()) == {-1000.0}  # BOA_ADD_OFFSET of all 13 band ids
    assert meta.crs.to_epsg() == 32629
    assert meta.geoposition[60] == (499980.0, 5900040.0, 1830, 1830)
    assert meta.cloud_coverage_pct == pytest.approx(59.769726)


def test_default_10m_fails_naming_the_missing_file(s2_safe: Path) -> None:
    with pytest.raises(ProductError, match=r"B02 .*missing on disk.*R10m.*B02_10m\.jp2.*resolution=60"):
        S2SafeReader(s2_safe)


def test_opens_at_60m_with_offset_applied(s2_safe: Path) -> None:
    reader = S2SafeReader(s2_safe, resolution=60)
    try:
        assert (reader.grid.width, reader.grid.height) == (1830, 1830)
        assert reader.offsets == [-1000.0] * 12
        assert reader.substitutions == {"B08": "B8A"}  # L2A has no B08 at 60 m
        dn = reader.read_dn(0, 1830)
        valid = np.all(dn > 0, axis=0)
        # README: 59.6 % of the tile has data; the eastern part lies outside the swath.
        assert valid.mean() == pytest.approx(0.596, abs=0.005)
        b01 = dn[0][valid]
        assert np.percentile(b01, 50) == pytest.approx(3864, rel=0.01)
        reflectance = (np.percentile(b01, 50) - 1000) / 10000  # what the reader's offsets give
        assert 0.27 < reflectance < 0.3
        assert reader.tags()["S2_BAND_SUBSTITUTIONS"] == "B08<-B8A"
    finally:
        reader.close()


def test_strips_equal_a_whole_read(s2_safe: Path) -> None:
    reader = S2SafeReader(s2_safe, resolution=60)
    try:
        whole = reader.read_dn(600, 300)
        parts = np.concatenate([reader.read_dn(600, 128), reader.read_dn(728, 172)], axis=1)
        np.testing.assert_array_equal(whole, parts)
    finally:
        reader.close()


def test_scl_cloud_fraction_matches_the_metadata(s2_safe: Path) -> None:
    """SCL {8, 9, 10} is exactly the MTD's Cloud_Coverage_Assessment definition.

    The MTD says 59.77 %; counting SCL_60m gives 59.75 % (the MTD is computed on the 20 m SCL, so
    a 0.02-point difference from aggregation to 60 m is expected). Adding cloud shadow (3) gives
    the stricter 70.06 % used for QA.
    """
    reader = S2SafeReader(s2_safe, resolution=60)
    stats = reader.cloud_statistics()
    reader.close()
    assert stats["cloud_pct"] == pytest.approx(59.77, abs=0.1)
    assert stats["cloud_shadow_pct"] == pytest.approx(59.77 + 10.31, abs=0.1)
    assert stats["nodata_pct"] == pytest.approx(40.43, abs=0.05)


def test_zipped_safe_reads_the_same(s2_safe: Path, tmp_path: Path) -> None:
    archive = tmp_path / f"{s2_safe.stem}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for f in s2_safe.rglob("*"):
            if f.is_file():
                zf.write(f, f"{s2_safe.name}/{f.relative_to(s2_safe).as_posix()}")
    a, b = S2SafeReader(s2_safe, 60), S2SafeReader(archive, 60)
    try:
        np.testing.assert_array_equal(a.read_dn(100, 64), b.read_dn(100, 64))
        assert b.meta.product_id == a.meta.product_id
    finally:
        a.close()
        b.close()


def test_truncated_jp2_names_the_file(s2_safe: Path, tmp_path: Path) -> None:
    copy = tmp_path / s2_safe.name
    shutil.copytree(s2_safe, copy)
    jp2 = next(copy.rglob("*_B04_60m.jp2"))
    jp2.write_bytes(jp2.read_bytes()[: jp2.stat().st_size // 3])
    with pytest.raises(ProductError, match=r"B04_60m\.jp2"):
        reader = S2SafeReader(copy, 60)
        try:
            reader.read_dn(0, 1830)
        finally:
            reader.close()


def test_safe_missing_a_band_fails_clearly(s2_safe: Path, tmp_path: Path) -> None:
    copy = tmp_path / s2_safe.name
    shutil.copytree(s2_safe, copy)
    next(copy.rglob("*_B11_60m.jp2")).unlink()
    with pytest.raises(ProductError, match=r"band B11 .*missing on disk"):
        S2SafeReader(copy, 60)
