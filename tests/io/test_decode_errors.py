"""A JPEG 2000 band that cannot be decoded fails its scene, even where the manifest cannot tell (no size, no checksum).

With ``GDAL_NUM_THREADS=ALL_CPUS`` GDAL decodes in worker threads whose errors reach only stderr and
the read returns zeros; the run's GDAL options pin one thread (`io.gdal_env`), so the error
reaches the reader, whatever the environment says.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from cloudlulc_edge.backends.factory import BackendSpec, open_backend
from cloudlulc_edge.pairing import plan_directory
from cloudlulc_edge.pipeline import MapOptions, map_plan
from tests.conftest import shared_data

S2 = "S2A_MSIL2A_20221005T115411_N0400_R023_T29UNU_20221005T164454.SAFE"


def _truncated_product(tmp_path: Path) -> Path:
    product = Path(shutil.copytree(shared_data("s2-l2a-safe", S2), tmp_path / "in" / S2))
    (band,) = product.glob("GRANULE/*/IMG_DATA/R60m/*_B02_60m.jp2")
    data = band.read_bytes()
    band.write_bytes(data[: len(data) * 55 // 100])  # a copy that stopped half-way
    manifest = product / "manifest.safe"
    text = manifest.read_text()
    # A repackaged manifest without size or checksum for this file: only decoding can tell.
    entry = re.compile(r'(<dataObject ID="IMG_DATA_Band_B02_60m_Tile1_Data">\s*<byteStream [^>]*?) size="\d+"(.*?)'
                       r"\s*<checksum [^>]*>[0-9A-Fa-f]+</checksum>", re.DOTALL)  # fmt: skip
    text, count = entry.subn(r"\1\2", text)
    assert count == 1
    manifest.write_text(text)
    return product


@pytest.mark.parametrize("environment_threads", [None, "ALL_CPUS"])
def test_a_truncated_band_fails_the_scene_and_writes_no_map(tmp_path, monkeypatch, environment_threads):
    if environment_threads is not None:
        monkeypatch.setenv("GDAL_NUM_THREADS", environment_threads)
    product = _truncated_product(tmp_path)
    backend = open_backend(BackendSpec("torch", "test_tiny", allow_untrained=True))
    (report,) = map_plan(plan_directory(product.parent).pairs, backend, tmp_path / "out",
                         MapOptions(resolution=60, stac=False))  # fmt: skip
    assert report.status == "failed"
    assert "cannot decode band B02" in str(report.error) and "truncated or corrupt" in str(report.error)
    assert not list((tmp_path / "out").glob("*_lulc.tif"))


def test_the_runs_gdal_options_make_a_truncated_band_raise_whatever_the_environment(tmp_path, monkeypatch):
    import rasterio
    from rasterio.errors import RasterioIOError

    from cloudlulc_edge.io.gdal_env import gdal_env

    monkeypatch.setenv("GDAL_NUM_THREADS", "ALL_CPUS")  # under which GDAL returns zeros without an error
    (band,) = _truncated_product(tmp_path).glob("GRANULE/*/IMG_DATA/R60m/*_B02_60m.jp2")
    with gdal_env(), rasterio.open(band) as ds, pytest.raises(RasterioIOError):
        ds.read(1)
