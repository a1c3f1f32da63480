"""Every case of the fault/bad-input matrix (`bench/fault_matrix.py`) is handled as specified."""

from __future__ import annotations

import pytest

from cloudlulc_edge.backends.torch_backend import TorchBackend
from cloudlulc_edge.bench.fault_matrix import CASES, run_case
from cloudlulc_edge.models.loading import load_model
from tests.conftest import shared_data

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*assuming offset 0:UserWarning"),
    pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning"),
]


@pytest.fixture(scope="module")
def backend() -> TorchBackend:
    loaded = load_model("test_tiny", None, 128, allow_untrained=True)
    return TorchBackend(loaded.model, loaded.identity)


def test_the_matrix_covers_the_issue():
    groups = {c.group for c in CASES}
    first = {"xml", "safe", "zip", "geotiff", "scene", "paths", "resources"}  # the listed faults
    hardening = {"scan", "identity", "output", "domain", "integrity", "plan"}  # inputs nobody listed
    assert groups == first | hardening
    assert len({c.name for c in CASES}) == len(CASES) >= 70
    # Both input paths: the SAFE and the GeoTIFF readers meet the output, identity and integrity classes.
    safe = {c.group for c in CASES if "safe" in c.name or c.resolution == 60}
    assert {"identity", "output", "integrity", "safe"} <= safe


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_is_handled(case, backend, tmp_path):
    result = run_case(case, shared_data(), tmp_path, backend)
    assert result.handled, (result.checks, result.detail)
