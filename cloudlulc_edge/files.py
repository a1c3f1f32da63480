"""File helpers shared by checkpoints, exports and engines: content hashes and atomic writes."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

__all__ = ["atomic_write", "durable_replace", "leaves_root", "sha256_file"]


def leaves_root(relative: str) -> bool:
    """Whether a ``/``-separated member path from an archive or metadata would escape its root.

    True for absolute paths and for any ``..`` component: such a name must never be joined to a
    destination or product folder (path traversal).
    """
    path = PurePosixPath(relative)
    return path.is_absolute() or ".." in path.parts


def sha256_file(path: Path) -> str:
    """Returns the hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def durable_replace(tmp: Path, target: Path) -> None:
    """Renames a finished ``tmp`` onto ``target`` so that a power cut leaves the old or the new file.

    The data is flushed (fsync) before the rename and the directory entry after it; without this,
    a file system with delayed allocation may show the new name over an empty file after a crash.
    """
    _fsync(tmp)
    os.replace(tmp, target)
    _fsync(target.parent)


def _fsync(path: Path) -> None:
    """Flushes a file's data, or a directory's entries, to the device."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(target: Path, write: Callable[[Path], object]) -> Path:
    """Writes ``target`` via a temporary file in the same directory, then renames it into place.

    A crash or an exception leaves no partial ``target`` behind, and a power cut leaves the old or
    the new file (`durable_replace`). The file gets the usual 0644 mode (``mkstemp`` makes 0600).

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
        os.chmod(tmp, 0o644)
        durable_replace(Path(tmp), target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
