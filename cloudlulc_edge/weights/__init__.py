"""Checkpoints shipped inside the package.

``cloudlulc_edge_default/``: the default ``cloudlulc_edge`` checkpoint (safetensors + model card +
training report), trained by ``cloudlulc-edge train cloudlulc_edge/weights/train_default.toml``
on real BigEarthNet S1+S2 patches with Dynamic World **teacher** labels and clouds simulated from
a real cloudy Sentinel-2 L2A product. `map`, `run` and `demo` use it when no ``--checkpoint`` is
given for the ``cloudlulc_edge`` variant. Its card says what it was trained on and what it is not.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_CHECKPOINTS", "default_checkpoint"]

_HERE = Path(__file__).resolve().parent
#: Variant → packaged checkpoint directory.
DEFAULT_CHECKPOINTS: dict[str, Path] = {"cloudlulc_edge": _HERE / "cloudlulc_edge_default"}


def default_checkpoint(variant: str) -> Path | None:
    """The packaged checkpoint of ``variant``, or None when the package ships none for it."""
    path = DEFAULT_CHECKPOINTS.get(variant)
    return path if path is not None and (path / "model_card.json").is_file() else None
