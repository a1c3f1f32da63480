"""The export directory end to end through the CLI: every artifact, a verified manifest, clear failures."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

from cloudlulc_edge.cli import app
from cloudlulc_edge.errors import ExportError
from cloudlulc_edge.export.bundle import read_manifest

pytestmark = [
    pytest.mark.export,
    pytest.mark.filterwarnings("ignore:.*assuming offset 0:UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from tests.conftest import SHARED_DATA

    scenes = SHARED_DATA / "bigearthnet-v1"
    if not scenes.exists():
        pytest.skip(f"real sample data not available at {scenes}")
    out = tmp_path_factory.mktemp("export")
    args = ["export", "onnx", str(out), "--variant", "test_tiny", "--allow-untrained", "--tile", "64", "--max-batch", "8",
            "--calibrate", str(scenes), "--calibration-tiles", "12"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return out, result.output


def test_export_directory_holds_every_artifact(exported):
    out, output = exported
    manifest = read_manifest(out)  # verifies every artifact's hash
    files = {a["file"]: a for a in manifest["artifacts"]}
    # The plugin flavour (Triton PTX) is written where triton is installed (the kernels extra); dev-cpu has none.
    plugin = importlib.util.find_spec("triton") is not None
    graphs = {"model_fp32.onnx", "model_fp16.onnx", "model_int8.onnx"} | (
        {"model_plugin_fp32.onnx"} if plugin else set()
    )
    assert set(files) == graphs
    assert files["model_int8.onnx"]["qdq_pairs"] > 0 and files["model_fp32.onnx"]["qdq_pairs"] == 0
    assert max(p["max_abs"] for p in files["model_fp32.onnx"]["parity_vs_torch"].values()) <= 1e-4
    for precision in ("fp16", "int8"):
        assert 0.0 <= files[f"model_{precision}.onnx"]["parity_vs_fp32"]["argmax_agreement"] <= 1.0
    assert manifest["model"] == {
        "variant": "test_tiny",
        "version": "untrained",
        "weights_sha256": "untrained",
        # An untrained model has no card: it is recorded with the package's default S1 contract.
        "s1_radiometry": "sigma0",
        "s1_geocoding": "RD_DEM",
    }
    assert manifest["opset"] == 20 and manifest["tile"] == 64 and manifest["spectral"] == "matmul"
    calib = manifest["calibration"]
    assert calib["tiles"] >= 6 and len(calib["scenes"]) == 6 and calib["method"] == "entropy"
    assert any("decoder.head" in n or "conv" in n for n in calib["excluded_nodes"])
    if plugin:
        assert manifest["plugins"]["archs"] and (out / manifest["plugins"]["index"]).is_file()
    else:
        assert "plugins" not in manifest and "plugin flavour skipped: it needs triton" in output
    assert manifest["tolerances"]["int8"]["argmax_agreement"] == 0.97
    assert "model_int8.onnx" in output  # the summary table
    assert not [p for p in out.rglob(".*") if p.is_file()], "temporary files left behind"


def test_exported_graphs_run_on_the_calibration_tiles(exported):
    out, _ = exported
    with np.load(out / "calibration.npz") as data:
        x = {k: data[k][:2] for k in data.files}
    logits = {
        p: ort.InferenceSession(str(out / f"model_{p}.onnx"), providers=["CPUExecutionProvider"]).run(None, x)[0]
        for p in ("fp32", "fp16", "int8")
    }
    assert all(v.shape == (2, 6, 64, 64) and np.isfinite(v).all() for v in logits.values())


def test_altered_artifacts_and_missing_manifest_are_refused(exported, tmp_path):
    out, _ = exported
    with pytest.raises(ExportError, match="no manifest"):
        read_manifest(tmp_path)
    for name in ("manifest.json", "model_fp16.onnx"):
        (tmp_path / name).write_bytes((out / name).read_bytes())
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["artifacts"] = [a for a in manifest["artifacts"] if a["file"] == "model_fp16.onnx"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    read_manifest(tmp_path)
    with (tmp_path / "model_fp16.onnx").open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ExportError, match="does not match its manifest"):
        read_manifest(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[1, 2]", "not an object"),
        (b"\xff\xfe not utf-8", "not valid JSON"),
        (b"[" * 100_000, "not valid JSON"),
        (b'{"artifacts": {"file": "x"}}', "must be a list"),
        (b'{"artifacts": [{"file": "../../etc/passwd", "sha256": "0"}]}', "outside the export folder"),
        (b'{"artifacts": [{"file": "/etc/passwd", "sha256": "0"}]}', "outside the export folder"),
    ],
)
def test_malformed_manifests_are_refused_with_the_reason(tmp_path, content, message):
    (tmp_path / "manifest.json").write_bytes(content)
    with pytest.raises(ExportError, match=message):
        read_manifest(tmp_path)


def test_a_map_records_the_bytes_that_ran_and_an_unlisted_graph_is_refused(exported, tmp_path):
    """A consistently edited bundle (graph and manifest) keeps its claimed weights hash, but the map records the
    hash of the graph that actually ran; a graph dropped beside a manifest that does not list it never runs."""
    import shutil

    from cloudlulc_edge.backends import BackendSpec, open_backend
    from cloudlulc_edge.files import sha256_file

    out, _ = exported
    forged = tmp_path / "forged"
    shutil.copytree(out, forged)
    graph = forged / "model_fp32.onnx"
    real = open_backend(BackendSpec("onnxruntime", model=out / "model_fp32.onnx")).identity
    assert real.artifact_sha256 == sha256_file(out / "model_fp32.onnx")
    shutil.copyfile(out / "model_fp16.onnx", graph)  # other bytes under the fp32 name, manifest updated to match
    manifest = json.loads((forged / "manifest.json").read_text())
    for art in manifest["artifacts"]:
        if art["file"] == graph.name:
            art["sha256"] = sha256_file(graph)
    (forged / "manifest.json").write_text(json.dumps(manifest))
    ran = open_backend(BackendSpec("onnxruntime", model=graph)).identity
    assert ran.sha256 == real.sha256  # the claim cannot be disproved without a signature…
    assert ran.artifact_sha256 == sha256_file(graph) != real.artifact_sha256  # …but the map records what ran
    unlisted = forged / "model_extra.onnx"
    shutil.copyfile(graph, unlisted)
    with pytest.raises(ExportError, match="not listed in this export"):
        open_backend(BackendSpec("onnxruntime", model=unlisted))


def test_cli_failures_exit_non_zero_with_the_reason(exported, tmp_path):
    out, _ = exported
    result = CliRunner().invoke(app, ["engine", "build", str(out), "--precision", "int8"])
    assert result.exit_code == 2
    assert "TensorRT is not importable" in result.output or "tensorrt" in result.output.lower()
    result = CliRunner().invoke(app, ["export", "onnx", str(tmp_path / "x"), "--variant", "nope"])
    assert result.exit_code != 0 and "unknown variant" in result.output
    result = CliRunner().invoke(
        app, ["export", "onnx", str(tmp_path / "y"), "--variant", "test_tiny", "--allow-untrained", "--tile", "40"]
    )
    assert result.exit_code == 2 and "multiple of 16" in result.output
    if importlib.util.find_spec("triton") is None:  # an explicit --plugin without triton is a usage error
        result = CliRunner().invoke(app, ["export", "onnx", str(tmp_path / "z"), "--variant", "test_tiny",
                                          "--allow-untrained", "--plugin"])  # fmt: skip
        assert result.exit_code == 2 and "needs triton" in result.output
