"""SAFE files are checked against the checksums of their manifest: the real L2A product (SHA3-256) and a synthetic S1 measurement (MD5)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from cloudlulc_edge.errors import ProductError
from cloudlulc_edge.io.archive import SafeArchive
from cloudlulc_edge.io.s2_safe import S2SafeReader
from tests.conftest import shared_data

S2 = "S2A_MSIL2A_20221005T115411_N0400_R023_T29UNU_20221005T164454.SAFE"


@pytest.fixture
def s2_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(shared_data("s2-l2a-safe", S2), tmp_path / S2))


def _band(product: Path, name: str) -> Path:
    (path,) = product.glob(f"GRANULE/*/IMG_DATA/R60m/*_{name}_60m.jp2")
    return path


def test_the_real_product_verifies_and_its_manifest_hashes_are_sha3(s2_copy):
    archive = SafeArchive(s2_copy)
    band = _band(s2_copy, "B04")
    relative = band.relative_to(s2_copy).as_posix()
    archive.check_integrity(relative)  # the real hashes match: verification is on by default
    assert archive._checksums[relative][0] == "SHA3-256"
    assert archive.checksum(relative, "SHA3-256") == hashlib.sha3_256(band.read_bytes()).hexdigest()
    S2SafeReader(s2_copy, 60).close()


def test_a_corrupt_band_of_the_right_size_is_refused_unless_skipped(s2_copy):
    band = _band(s2_copy, "B04")
    data = bytearray(band.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte deep in the codestream: same size, decodes "fine"
    band.write_bytes(bytes(data))
    with pytest.raises(ProductError, match=r"SHA3-256 differs from the one manifest\.safe records") as err:
        S2SafeReader(s2_copy, 60)
    assert band.name in str(err.value)
    S2SafeReader(s2_copy, 60, verify_checksums=False).close()  # --skip-checksums: sizes only


def test_a_band_swapped_for_another_of_equal_size_is_refused(s2_copy):
    b04, b03 = _band(s2_copy, "B04"), _band(s2_copy, "B03")
    if b04.stat().st_size != b03.stat().st_size:  # make them equal-sized so only the hash can tell
        data = b03.read_bytes()
        b03_padded = data[: b04.stat().st_size].ljust(b04.stat().st_size, b"\0")
        b04.write_bytes(b03_padded)
    else:
        b04.write_bytes(b03.read_bytes())
    with pytest.raises(ProductError, match="SHA3-256 differs"):
        S2SafeReader(s2_copy, 60)


def test_synthetic_s1_measurements_record_their_md5(tmp_path):
    from cloudlulc_edge.bench.synthetic_s1 import constant, with_measurement
    from cloudlulc_edge.io.s1_metadata import read_s1_metadata

    s1b = "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371.SAFE"
    product = with_measurement(shared_data("s1-grd-safe", s1b), tmp_path, constant(200.0))
    archive = SafeArchive(product)
    relative = read_s1_metadata(archive).polarisations["VV"].measurement
    archive.check_integrity(relative)
    assert archive._checksums[relative][0] == "MD5"
    with (product / relative).open("r+b") as f:  # corrupt one byte of the measurement
        f.seek(4096)
        byte = f.read(1)
        f.seek(4096)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ProductError, match="MD5 differs"):
        SafeArchive(product).check_integrity(relative)


def test_map_fails_the_corrupt_scene_and_maps_it_with_skip_checksums(s2_copy, tmp_path):
    import json

    from typer.testing import CliRunner

    from cloudlulc_edge.cli import app
    from cloudlulc_edge.errors import EXIT_ALL_FAILED

    band = _band(s2_copy, "B8A")
    data = bytearray(band.read_bytes())
    data[-100] ^= 0x01
    band.write_bytes(bytes(data))
    fast = [
        "--variant",
        "test_tiny",
        "--allow-untrained",
        "--tile",
        "256",
        "--overlap",
        "16",
        "--resolution",
        "60",
        "-q",
    ]
    out = tmp_path / "out"
    refused = CliRunner().invoke(app, ["map", str(s2_copy.parent), str(out), *fast])
    assert refused.exit_code == EXIT_ALL_FAILED, refused.output
    (scene,) = json.loads(next((out / "reports").glob("*.json")).read_text())["scenes"]
    assert "SHA3-256 differs" in scene["error"] and "--skip-checksums" in scene["error"]
    allowed = CliRunner().invoke(app, ["map", str(s2_copy.parent), str(out), *fast, "--skip-checksums"])
    assert allowed.exit_code == 0, allowed.output
    assert (out / f"{S2.removesuffix('.SAFE')}_lulc.tif").is_file()


def test_a_band_of_the_wrong_size_is_refused_where_the_manifest_cannot_tell(s2_copy):
    import re

    import numpy as np
    import rasterio

    manifest = s2_copy / "manifest.safe"
    band = _band(s2_copy, "B04")
    # A repackaged product: its manifest lost the sizes and checksums of the band files.
    manifest.write_text(
        re.sub(r"<checksum[^>]*>[^<]*</checksum>", "", re.sub(r' size="\d+"', "", manifest.read_text()))
    )
    with rasterio.open(band) as ds:
        profile, data = ds.profile, ds.read(out_shape=(1, ds.height // 2, ds.width // 2))
    profile.update(
        width=data.shape[2], height=data.shape[1], transform=profile["transform"] * profile["transform"].scale(2)
    )
    band.unlink()
    with rasterio.open(band, "w", **profile) as ds:  # a 120 m band in the 60 m folder
        ds.write(data)
    with pytest.raises(ProductError, match=r"its 60 m grid in MTD_TL\.xml is 1830 × 1830") as err:
        S2SafeReader(s2_copy, 60)
    assert "915 × 915" in str(err.value) and band.name in str(err.value)
    np.testing.assert_equal(data.shape, (1, 915, 915))
