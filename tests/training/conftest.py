"""A generated CloudLULC-Set in the official layout, shared by the training tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    path = Path(__file__).parents[1] / "data" / "make_cloudlulc_set.py"
    spec = importlib.util.spec_from_file_location("make_cloudlulc_set", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    root = tmp_path_factory.mktemp("cloudlulc_set")
    module.make_cloudlulc_set(root)
    return root
