"""Per-scene claims: at most one process maps a scene into an output folder, and crashes leave nothing.

A claim is an exclusive, non-blocking ``flock`` on ``OUTPUT/.<map stem>.lock``. The kernel drops
the lock when its holder exits for any reason (``kill -9``, power cut), so a claim never goes stale
and needs no timeout. While holding the claim, a process removes what a killed predecessor left
of *this* scene (``.<stem>.*`` temporaries and the scene's work folder), maps it, and renames the
map into place last; then it deletes the lock file and releases the lock. A process that opened
the old lock file just before it was deleted gets the lock afterwards, finds the finished map, and
skips the scene (resume), so a scene is never written twice.

``flock`` works on local file systems and on NFSv4 (emulated with byte-range locks); on file
systems without locking, run one process per output folder (or shard by plan).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import sys
from pathlib import Path
from types import TracebackType

from cloudlulc_edge.errors import OutputError

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover - Python 3.10 (JetPack 6); typing_extensions comes with torch
    from typing_extensions import Self

__all__ = ["SceneClaim"]


class SceneClaim:
    """The claim on one output map (a context manager).

    Args:
        target: Final path of the scene's map (``OUTPUT/<name>_lulc.tif``).

    Attributes:
        acquired: Whether this process holds the claim (set on entering).
        lock_path: The lock file.
        workdir: Hidden per-scene folder for temporary rasters (created by `clear_stale`).
    """

    def __init__(self, target: Path) -> None:
        self.target = Path(target)
        stem = self.target.stem
        self.lock_path = self.target.with_name(f".{stem}.lock")
        self.workdir = self.target.with_name(f".{stem}.work")
        self.acquired = False
        self._fd: int | None = None

    def __enter__(self) -> Self:
        """Takes the claim if no other process holds it (`acquired` says which).

        Raises:
            OutputError: The lock path is a symbolic link (never followed: it could point at any
                file) or cannot be opened.
        """
        try:  # O_NOFOLLOW: a planted symlink must not make us truncate the file it points to
            fd = os.open(self.lock_path, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            if self.lock_path.is_symlink():
                raise OutputError("the scene's lock path is a symbolic link; it is never followed — remove it",
                                  self.lock_path) from exc  # fmt: skip
            raise OutputError(f"cannot open the scene's lock file ({exc.strerror or exc})", self.lock_path) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return self
        self._fd, self.acquired = fd, True
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
        return self

    def holder(self) -> str:
        """Who holds the claim, as recorded in the lock file (for messages)."""
        try:
            info = json.loads(self.lock_path.read_text() or "{}")
        except (OSError, ValueError):
            return "another process"
        return f"pid {info.get('pid')} on {info.get('host')}" if info else "another process"

    def clear_stale(self) -> None:
        """Removes this scene's leftovers from an interrupted run (only while the claim is held)."""
        if not self.acquired:
            raise RuntimeError("clear_stale needs the claim")
        stem = self.target.stem
        for pattern in (f".{stem}.*", f".{stem}_*"):
            for path in self.target.parent.glob(pattern):
                if path == self.lock_path:
                    continue
                if path.is_symlink():  # our temporaries are never links: remove the link, not its target
                    path.unlink()
                elif path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        self.workdir.mkdir(exist_ok=True)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is None:
            return
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.lock_path.unlink(missing_ok=True)  # before releasing: see the module docstring
        os.close(self._fd)
        self._fd, self.acquired = None, False
