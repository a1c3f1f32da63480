"""Shared fixtures: deterministic seeds and the reference kernel path for every test."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from cloudlulc_edge.kernels import set_kernels


@pytest.fixture(autouse=True)
def _seed_and_reset_kernels():
    torch.manual_seed(0)
    set_kernels(None)
    yield
    set_kernels(None)


#: Real Sentinel sample data shared by the workplace (never copied into the repository).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """Path under the shared real-data folder; skips the test with a reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real sample data not available at {path} (see the README's test data section)")
    return path


@pytest.fixture
def s2_safe() -> Path:
    """The real cloudy L2A SAFE product (60 m layers only)."""
    return shared_data("s2-l2a-safe", "S2A_MSIL2A_20221005T115411_N0400_R023_T29UNU_20221005T164454.SAFE")


@pytest.fixture
def bigearthnet_v1() -> Path:
    """Six co-registered BigEarthNet v1 S1+S2 GeoTIFF pairs."""
    return shared_data("bigearthnet-v1")
