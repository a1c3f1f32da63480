"""The built wheel installs everything under cloudlulc_edge and nothing generic at top level."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    pytest.importorskip("setuptools", minversion="69")
    out = tmp_path_factory.mktemp("wheel")
    # Build from a clean copy: setuptools' build/ directory would otherwise land in the source tree
    # and could carry stale modules into later wheels.
    source = tmp_path_factory.mktemp("source") / "src"
    skip = shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__", ".*_cache")
    shutil.copytree(ROOT, source, ignore=skip)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)],
        check=True,
        cwd=out,
    )
    (path,) = out.glob("cloudlulc_edge-*.whl")
    return path


def test_wheel_top_level_names(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/", 1)[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"cloudlulc_edge"}
    for sub in (
        "kernels/reference.py",
        "kernels/dispatch.py",
        "export/torch_export.py",
        "cli/__init__.py",
        "bench/model_cost.py",
        "models/net.py",
        "py.typed",
        "weights/train_default.toml",
        "weights/cloudlulc_edge_default/model.safetensors",
        "weights/cloudlulc_edge_default/model_card.json",
        "weights/cloudlulc_edge_default/TRAINING.md",
        "weights/cloudlulc_edge_default/onnx-t512/manifest.json",
        "weights/cloudlulc_edge_default/onnx-t512/model_fp16.onnx",
        "weights/cloudlulc_edge_default/onnx-t128/model_fp16.onnx",
    ):
        assert f"cloudlulc_edge/{sub}" in names, sub


def test_wheel_metadata(wheel):
    zf = zipfile.ZipFile(wheel)
    meta = zf.read(next(n for n in zf.namelist() if n.endswith("METADATA"))).decode()
    assert "Requires-Dist: torch>=2.6" in meta
    for extra in ("kernels", "export", "bench", "ray", "tensorrt", "demo", "dev", "dev-cpu"):
        assert f"Provides-Extra: {extra}" in meta
    requirements = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    ort = [r for r in requirements if r.split()[1].startswith("onnxruntime")]
    # One onnxruntime distribution (never onnxruntime-gpu beside it): a range in the plain install
    # (`--backend auto`), pinned in [export] for reproducible export checks.
    assert [r.split()[1].split(";")[0] for r in ort] == ["onnxruntime>=1.20", "onnxruntime==1.32.0"], ort
    assert "extra ==" not in ort[0] and 'extra == "export"' in ort[1], ort
    entry = zf.read(next(n for n in zf.namelist() if n.endswith("entry_points.txt"))).decode()
    assert "cloudlulc-edge = cloudlulc_edge.cli:main" in entry


def test_generic_names_are_not_importable_outside_the_repo(tmp_path):
    code = "import importlib.util as u; print([n for n in ('kernels','export','cli','bench') if u.find_spec(n)])"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
