"""Shared fixtures: deterministic seeds and the reference kernel path for every test."""

from __future__ import annotations

import pytest
import torch
from cloudlulc_edge.kernels import set_kernels


@pytest.fixture(autouse=True)
def _seed_and_reset_kernels():
    torch.manual_seed(0)
    set_kernels(None)
    yield
    set_kernels(None)
