"""Typed errors of cloudlulc-edge.

Every error names the offending file or object and says what to do, so one bad input can be
reported at the scene boundary without stopping a batch.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "EXIT_ALL_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_NOTHING_TO_MAP",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "CloudLULCError",
    "EngineCompatibilityError",
    "ExportError",
    "ModelCardError",
    "OptionsError",
    "OutputError",
    "PairingError",
    "ProductError",
    "ResourceLimitError",
]


#: Every pair done or skipped.
EXIT_OK = 0
#: Bad command line, options or plan (Typer's own usage errors use 2 as well).
EXIT_USAGE = 2
#: Some scenes failed, others were mapped.
EXIT_PARTIAL = 3
#: Every scene that was attempted failed.
EXIT_ALL_FAILED = 4
#: The input folder or plan holds no pair to map (no usable product, or every S2 left out).
EXIT_NOTHING_TO_MAP = 5
#: Stopped by SIGINT (Ctrl-C), SIGTERM or SIGHUP; the run report says what finished (128 + SIGINT).
EXIT_INTERRUPTED = 130


class CloudLULCError(Exception):
    """Base class of all cloudlulc-edge errors.

    Args:
        message: What is wrong and what to do about it.
        path: The file or directory the problem is about, if any.
    """

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)


class OptionsError(CloudLULCError):
    """A mapping or run option is invalid or options contradict each other (a usage error, exit code 2)."""


class ModelCardError(CloudLULCError):
    """A model card or checkpoint is missing, malformed, or does not match the model or contract."""


class ProductError(CloudLULCError):
    """A scene product is unreadable, incomplete or inconsistent (a missing band, a truncated file, bad XML)."""


class PairingError(CloudLULCError):
    """Scenes cannot be paired or combined (no footprint overlap, different CRS, bad plan file)."""


class OutputError(CloudLULCError):
    """A map cannot be written, or a scene yields nothing to write (for example all nodata)."""


class ExportError(CloudLULCError):
    """An ONNX export, precision conversion or engine build failed, or an export directory is malformed."""


class EngineCompatibilityError(CloudLULCError):
    """A TensorRT engine was built for another system (TensorRT, CUDA, GPU, precision or ONNX) and is refused."""


class ResourceLimitError(CloudLULCError):
    """A scene would need more memory than the configured limit (``--max-memory``)."""
