"""ruff (lint + format) and mypy --strict over the package, exactly as plain `ruff`/`mypy` run from the repository root."""

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
    # Plain `mypy` from the repository root, with the committed configuration: the links
    # cloudlulc_edge/{kernels,export,cli,bench} show it the package as it installs.
    result = subprocess.run(
        [_tool("mypy"), "--cache-dir", str(tmp_path / ".mypy")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    checked = int(result.stdout.split(" source files")[0].rsplit(" ", 1)[-1])
    assert checked > 100, result.stdout  # the core and the four mapped folders, not the core alone


def test_the_package_links_point_at_the_top_level_folders():
    for name in PACKAGE_DIRS:
        link = ROOT / "cloudlulc_edge" / name
        assert link.is_symlink() and link.resolve() == (ROOT / name).resolve(), link
