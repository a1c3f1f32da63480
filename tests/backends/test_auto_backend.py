"""``--backend auto``: what it picks on this CPU, the graphs the checkpoint carries, and the graph cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from cloudlulc_edge.backends.factory import BackendSpec, choose_backend, open_backend
from cloudlulc_edge.backends.onnxruntime_backend import CPU_TILES_PER_RUN, OnnxRuntimeBackend
from cloudlulc_edge.cli import app
from cloudlulc_edge.errors import OptionsError
from cloudlulc_edge.export.bundle import read_manifest
from cloudlulc_edge.export.graph_cache import CACHE_ENV, cache_root, carried_graphs, graph_dir
from cloudlulc_edge.files import sha256_file
from cloudlulc_edge.models.checkpoint import read_card
from cloudlulc_edge.models.loading import load_model
from cloudlulc_edge.weights import default_checkpoint

DEFAULT = default_checkpoint("cloudlulc_edge")


def test_auto_picks_onnxruntime_with_the_carried_fp16_graph_on_this_cpu():
    resolved = choose_backend(BackendSpec())
    assert resolved.spec.kind == "onnxruntime"
    assert resolved.spec.precision == "fp16"
    assert resolved.spec.model == DEFAULT / "onnx-t512"
    assert "CPU provider" in resolved.reason and "carried by the checkpoint" in resolved.reason
    backend = open_backend(BackendSpec())
    assert isinstance(backend, OnnxRuntimeBackend) and backend.runtime == "onnxruntime model_fp16.onnx"
    assert backend.identity.sha256 == read_card(DEFAULT).weights_sha256 and backend.identity.tile == 512


@pytest.mark.parametrize("tile", [128, 512])
def test_carried_graphs_are_of_the_packaged_weights_and_intact(tile):
    manifest = read_manifest(DEFAULT / f"onnx-t{tile}")  # verifies every file's SHA-256
    assert manifest["model"]["weights_sha256"] == read_card(DEFAULT).weights_sha256
    assert manifest["tile"] == tile
    assert [a["file"] for a in manifest["artifacts"]] == ["model_fp16.onnx"]


def test_untrained_weights_and_explicit_kinds_are_not_redirected():
    untrained = choose_backend(BackendSpec(variant="test_tiny", tile=64, allow_untrained=True))
    assert untrained.spec.kind == "torch" and "never exported" in untrained.reason
    explicit = choose_backend(BackendSpec(kind="torch"))
    assert explicit.spec.kind == "torch" and explicit.reason == "--backend torch"
    engine = choose_backend(BackendSpec(model=DEFAULT / "model.engine"))
    assert engine.spec.kind == "tensorrt"
    with pytest.raises(OptionsError, match="multiple of 16"):
        choose_backend(BackendSpec(tile=500))


def test_without_onnxruntime_auto_runs_torch_and_says_why(monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real_find_spec(name, *a))  # fmt: skip
    resolved = choose_backend(BackendSpec())
    assert resolved.spec.kind == "torch" and "onnxruntime is not installed" in resolved.reason


def test_an_altered_carried_graph_is_not_used(tmp_path):
    checkpoint = shutil.copytree(DEFAULT, tmp_path / "ckpt")
    graph = checkpoint / "onnx-t512" / "model_fp16.onnx"
    data = bytearray(graph.read_bytes())
    data[-1] ^= 0xFF
    graph.write_bytes(bytes(data))
    loaded = load_model(checkpoint=checkpoint)
    assert carried_graphs(loaded, 512) is None
    resolved = choose_backend(BackendSpec(checkpoint=checkpoint), build=False)  # only looks
    assert resolved.spec.kind == "onnxruntime" and "built on first use" in resolved.reason
    assert resolved.spec.model is not None and resolved.spec.model.parent == cache_root() / "onnx"


def test_cpu_runs_one_tile_per_call_with_the_same_result():
    backend = open_backend(BackendSpec(tile=128))
    assert backend.tiles_per_run == CPU_TILES_PER_RUN == 1
    rng = np.random.default_rng(0)
    inputs = {"s2": rng.random((3, 12, 128, 128), dtype=np.float32), "s1": rng.random((3, 2, 128, 128), np.float32),
              "s2_valid": np.ones((3, 1, 128, 128), np.float32), "s1_valid": np.ones((3, 1, 128, 128), np.float32)}  # fmt: skip
    chunked = backend.logits(inputs)
    backend.tiles_per_run = None
    whole = backend.logits(inputs)
    assert chunked.shape == (3, 6, 128, 128)
    np.testing.assert_allclose(chunked, whole, atol=1e-4)  # FP16 graph: kernels differ by batch size


def test_map_without_a_backend_flag_runs_onnxruntime_within_the_accuracy_gate(bigearthnet_v1, tmp_path):
    """The plain `map` of the real sample scenes runs the FP16 graph; its maps match PyTorch's on ≥ 99 % of pixels."""
    common = ["--tile", "128", "--overlap", "8", "--s2-offset", "0", "--s2-quantification", "10000", "--no-stac"]
    runner = CliRunner()
    auto = runner.invoke(app, ["map", str(bigearthnet_v1), str(tmp_path / "auto"), *common])
    assert auto.exit_code == 0, auto.output
    reference = runner.invoke(app, ["map", str(bigearthnet_v1), str(tmp_path / "torch"), "--backend", "torch", *common])
    assert reference.exit_code == 0, reference.output
    report = json.loads(next((tmp_path / "auto" / "reports").glob("map-*.json")).read_text())
    assert report["backend"]["kind"] == "onnxruntime" and report["backend"]["spec"]["precision"] == "fp16"
    assert report["backend"]["chosen"].startswith("auto: onnxruntime (CPU provider)")
    maps = sorted((tmp_path / "auto").glob("*_lulc.tif"))
    assert len(maps) == 6
    agree = []
    for path in maps:
        with rasterio.open(path) as a, rasterio.open(tmp_path / "torch" / path.name) as b:
            agree.append(float((a.read(1) == b.read(1)).mean()))
            # Provenance: the graph that ran (its verified bytes) beside the weights it claims; torch has no graph.
            assert a.tags()["MODEL_ARTIFACT_SHA256"] == sha256_file(DEFAULT / "onnx-t128" / "model_fp16.onnx")
            assert a.tags()["MODEL_SHA256"] == b.tags()["MODEL_SHA256"] and "MODEL_ARTIFACT_SHA256" not in b.tags()
    assert min(agree) >= 0.99, agree


def test_info_says_what_auto_picks_and_why():
    result = CliRunner().invoke(app, ["info", "--no-models"])
    assert result.exit_code == 0, result.output
    assert "--backend auto: onnxruntime on cpu" in result.output.replace("\n", " ")


def test_a_missing_graph_is_built_once_into_the_cache_and_reused():
    loaded = load_model(tile=64)
    assert graph_dir(loaded, 64, build=False) is None
    entry = graph_dir(loaded, 64)
    assert entry is not None and entry.parent == cache_root() / "onnx"
    assert entry.name.startswith(f"{loaded.identity.sha256[:16]}-t64-")
    assert "-ort" in entry.name
    manifest = read_manifest(entry)
    assert manifest["tile"] == 64 and manifest["model"]["weights_sha256"] == loaded.identity.sha256
    stamp = (entry / "manifest.json").stat().st_mtime_ns
    assert graph_dir(loaded, 64) == entry and (entry / "manifest.json").stat().st_mtime_ns == stamp
    assert not [p for p in entry.parent.iterdir() if p.name.startswith(".")]  # no temporary left behind
    resolved = choose_backend(BackendSpec(tile=64))
    assert resolved.spec.model == entry and "cached" in resolved.reason


_BUILD = "from cloudlulc_edge.models.loading import load_model\nfrom cloudlulc_edge.export.graph_cache import graph_dir\nprint(graph_dir(load_model(tile=96), 96))"


@pytest.mark.slow
def test_two_processes_building_one_entry_leave_one_intact_entry(tmp_path):
    env = {**os.environ, CACHE_ENV: str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", _BUILD], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    outputs = [p.communicate(timeout=600)[0].strip().splitlines()[-1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outputs[0] == outputs[1]
    entries = list((tmp_path / "onnx").iterdir())
    assert [e.name for e in entries] == [os.path.basename(outputs[0])]
    read_manifest(entries[0])


def test_torch_on_the_cpu_runs_one_tile_per_forward_with_the_same_result():
    from cloudlulc_edge.backends.torch_backend import CPU_TILES_PER_RUN, TorchBackend
    from cloudlulc_edge.models import create_model
    from cloudlulc_edge.models.loading import ModelIdentity
    from cloudlulc_edge.tiling import TileBatch

    backend = TorchBackend(create_model("test_tiny").eval(), ModelIdentity("test_tiny", "untrained", "untrained", 32))
    assert backend.tiles_per_run == CPU_TILES_PER_RUN == 1
    rng = np.random.default_rng(1)
    batch = TileBatch(rng.random((3, 12, 32, 32), dtype=np.float32), np.ones((3, 32, 32), bool),
                      rng.random((3, 2, 32, 32), dtype=np.float32), np.ones((3, 32, 32), bool), [0, 0, 0], [0, 32, 64])  # fmt: skip
    one_by_one = backend.predict(batch)
    backend.tiles_per_run = None
    np.testing.assert_allclose(one_by_one, backend.predict(batch), atol=1e-5)
    assert one_by_one.shape == (3, 6, 32, 32)
