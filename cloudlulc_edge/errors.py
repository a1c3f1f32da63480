"""Typed errors of cloudlulc-edge.

Every error names the offending file or object and says what to do, so one bad input can be
reported at the scene boundary without stopping a batch.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CloudLULCError", "ModelCardError"]


class CloudLULCError(Exception):
    """Base class of all cloudlulc-edge errors.

    Args:
        message: What is wrong and what to do about it.
        path: The file or directory the problem is about, if any.
    """

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)


class ModelCardError(CloudLULCError):
    """A model card or checkpoint is missing, malformed, or does not match the model or contract."""
