"""Shared fixtures: deterministic seeds, the reference kernel path, and the real-data tier.

Two tiers of input data:

* the synthetic products committed under ``tests/data/`` (generators beside them), which every
  clone has: they exercise every reader in the default suite;
* the real products of ``../shared/data`` (or ``$CLOUDLULC_SHARED_DATA``), never copied into the
  repository. Tests that need them carry the ``realdata`` marker (added here from the fixtures and
  calls they use) and skip when the folder is absent — and the run's summary then says so in a
  banner, so a clone without the data never passes quietly.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest
import torch

from cloudlulc_edge.kernels import set_kernels


@pytest.fixture(autouse=True, scope="session")
def _graph_cache(tmp_path_factory):
    """``--backend auto``'s graph cache in a folder of this run (also for the CLI subprocesses), never ~/.cache."""
    from cloudlulc_edge.export.graph_cache import CACHE_ENV

    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("graph-cache"))
    yield
    if before is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = before


@pytest.fixture(autouse=True)
def _seed_and_reset_kernels():
    torch.manual_seed(0)
    set_kernels(None)
    yield
    set_kernels(None)


#: Real Sentinel sample data shared by the workplace (never copied into the repository).
SHARED_DATA = Path(os.environ.get("CLOUDLULC_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
#: Skip reason of every real-data test, counted by the summary banner.
REALDATA_SKIP = "real sample data not available at"
#: Skip reason of tests whose independent reference (sarsen, pyproj...) is not installed, counted by a banner.
MISSING_TEST_DEPENDENCY = "test dependency missing:"
#: Fixtures that read ../shared/data.
_REALDATA_FIXTURES = {"s2_safe", "bigearthnet_v1"}


def shared_data(*parts: str) -> Path:
    """Path under the shared real-data folder; skips the test with a reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{REALDATA_SKIP} {path} (docs/testing.md: the real-data tier)")
    return path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks the tests that read ../shared/data ``realdata`` (by fixture, or by what their body calls)."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        function = getattr(item, "function", None)
        try:
            source = inspect.getsource(function) if function is not None else ""
        except (OSError, TypeError):
            source = ""
        if fixtures & _REALDATA_FIXTURES or "shared_data(" in source or "SHARED_DATA" in source:
            item.add_marker(pytest.mark.realdata)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """A banner when the real-data tier did not run, with the count of what ran instead."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if REALDATA_SKIP in str(r.longrepr)]
    ran = len(terminalreporter.stats.get("passed", [])) + len(terminalreporter.stats.get("failed", []))
    if skipped:
        terminalreporter.write_sep("!", f"REAL-DATA TIER SKIPPED: {len(skipped)} test(s) need {SHARED_DATA}", red=True)
        terminalreporter.write_line(f"{ran} test(s) ran on the synthetic products of tests/data only; put the shared "
                                    "data there or set CLOUDLULC_SHARED_DATA to run the real-data tier.")  # fmt: skip
    elif SHARED_DATA.is_dir():
        terminalreporter.write_line(f"real-data tier ran against {SHARED_DATA}")
    tiers = ("slow", "gpu", "tensorrt", "interpret")
    held_back = [item for item in terminalreporter.stats.get("deselected", [])
                 if any(m.name in tiers for m in getattr(item, "iter_markers", list)())]  # fmt: skip
    if held_back:
        names = sorted({m.name for item in held_back for m in item.iter_markers() if m.name in tiers})
        terminalreporter.write_sep("!", f"NOT RUN HERE: {len(held_back)} test(s) of the {', '.join(names)} tier(s)",
                                   yellow=True)  # fmt: skip
        terminalreporter.write_line("interpret runs as `TRITON_INTERPRET=1 pytest -m interpret` (the README's test "
                                    "command); gpu and tensorrt need a CUDA machine (`pytest -m gpu`, "
                                    "`-m tensorrt`), slow is opt-in (`-m slow`); docs/testing.md.")  # fmt: skip
    missing = [r for r in terminalreporter.stats.get("skipped", []) if MISSING_TEST_DEPENDENCY in str(r.longrepr)]
    if missing:
        terminalreporter.write_sep("!", f"REFERENCE CHECKS SKIPPED: {len(missing)} test(s) lack a test dependency "
                                   "(install the dev extra; gdal-bin for gdalinfo)", red=True)  # fmt: skip


@pytest.fixture
def s2_safe() -> Path:
    """The real cloudy L2A SAFE product (60 m layers only)."""
    return shared_data("s2-l2a-safe", "S2A_MSIL2A_20221005T115411_N0400_R023_T29UNU_20221005T164454.SAFE")


@pytest.fixture
def bigearthnet_v1() -> Path:
    """Six co-registered BigEarthNet v1 S1+S2 GeoTIFF pairs."""
    return shared_data("bigearthnet-v1")
