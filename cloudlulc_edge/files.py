"""File helpers shared by checkpoints, exports and engines: content hashes and atomic writes."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "sha256_file"]


def sha256_file(path: Path) -> str:
    """Returns the hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write(target: Path, write: Callable[[Path], object]) -> Path:
    """Writes ``target`` via a temporary file in the same directory, then renames it into place.

    A crash or an exception leaves no partial ``target`` behind (and no temporary file).

    Args:
        target: Final path; its directory must exist.
        write: Called with the temporary path; must create the file there.

    Returns:
        ``target``.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
