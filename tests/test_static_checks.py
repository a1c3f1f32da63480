"""ruff (lint + format) and mypy --strict over the package, as configured in pyproject.toml."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = {"kernels": "kernels", "export": "export", "cli": "cli", "bench": "bench"}


def _tool(name):
    if shutil.which(name, path=str(Path(sys.executable).parent)) is None and shutil.which(name) is None:
        pytest.skip(f"{name} is not installed (install the 'dev' extra)")
    return shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)


def test_ruff_lint():
    result = subprocess.run(
        [_tool("ruff"), "check", "--no-fix", "."], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format():
    result = subprocess.run(
        [_tool("ruff"), "format", "--check", "."], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict(tmp_path):
    mypy = _tool("mypy")
    # mypy cannot follow setuptools' package-dir mapping: mirror the installed layout with symlinks.
    pkg = tmp_path / "cloudlulc_edge"
    pkg.mkdir()
    for entry in (ROOT / "cloudlulc_edge").iterdir():
        (pkg / entry.name).symlink_to(entry)
    for name, folder in PACKAGE_DIRS.items():
        (pkg / name).symlink_to(ROOT / folder)
    result = subprocess.run(
        [
            mypy,
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / ".mypy"),
            "-p",
            "cloudlulc_edge",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={"MYPYPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
