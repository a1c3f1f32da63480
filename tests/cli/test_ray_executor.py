"""The Ray executor on a local Ray instance produces the same maps as the local path."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from cloudlulc_edge.cli import app
from cloudlulc_edge.models import create_model
from cloudlulc_edge.models.checkpoint import save_checkpoint

ray = pytest.importorskip("ray", reason="the Ray executor needs the 'ray' extra")
pytestmark = pytest.mark.filterwarnings("ignore:.*assuming offset 0:UserWarning")


@pytest.fixture
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_maps_equal_local_maps(bigearthnet_v1, tmp_path, local_ray):
    ckpt = save_checkpoint(create_model("test_tiny").eval(), tmp_path / "ckpt")
    plan = tmp_path / "plan.json"
    assert CliRunner().invoke(app, ["plan", str(bigearthnet_v1), str(plan)]).exit_code == 0
    common = ["--checkpoint", str(ckpt), "--backend", "torch", "--tile", "64", "--overlap", "16", "-q"]
    common += ["--input-root", str(bigearthnet_v1)]
    local = CliRunner().invoke(app, ["run", str(plan), str(tmp_path / "local"), *common])
    assert local.exit_code == 0, local.output
    remote = CliRunner().invoke(app, ["run", str(plan), str(tmp_path / "ray"), "--executor", "ray",
                                      "--ray-actors", "2", *common])  # fmt: skip
    assert remote.exit_code == 0, remote.output
    (report,) = (tmp_path / "ray" / "reports").glob("run-*.json")
    data = json.loads(report.read_text())
    assert data["backend"]["executor"] == "ray" and data["counts"] == {"done": 6}
    (local_report,) = (tmp_path / "local" / "reports").glob("run-*.json")
    local_backend = json.loads(local_report.read_text())["backend"]
    # One schema for both executors: the same keys, the same model identity and spec.
    assert set(data["backend"]) == set(local_backend)
    assert data["backend"]["kind"] == local_backend["kind"] == "torch"
    assert data["backend"]["model"] == local_backend["model"] and data["backend"]["spec"] == local_backend["spec"]
    assert data["backend"]["actors"] == 2 and local_backend["actors"] is None
    maps = sorted((tmp_path / "local").glob("*_lulc.tif"))
    assert len(maps) == 6
    for path in maps:
        with rasterio.open(path) as a, rasterio.open(tmp_path / "ray" / path.name) as b:
            np.testing.assert_array_equal(a.read(1), b.read(1))
            assert a.tags()["MODEL_SHA256"] == b.tags()["MODEL_SHA256"]


def test_bad_executor_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(app, ["run", str(tmp_path / "p.json"), str(tmp_path), "--executor", "dask"])
    assert result.exit_code == 2 and "executor" in result.output
