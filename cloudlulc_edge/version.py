"""The package version, defined in exactly one place, and versions of the packages results depend on."""

from __future__ import annotations

from collections.abc import Sequence

__version__ = "0.1.0"


def package_versions(names: Sequence[str]) -> dict[str, str]:
    """Installed versions of the named distributions (absent ones left out), without importing them."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out
