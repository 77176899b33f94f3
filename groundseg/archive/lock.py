"""The writer lock: an exclusive ``flock`` on ``<archive>.lock``.

The OS releases it when the writer dies, so whoever holds it knows that consistency
flags left in the file are stale (``recovery``). The lock file is created only once the
caller knows the archive is one (or is about to be created), so a refused path gets
nothing written beside it.
"""
from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

from groundseg.archive.errors import ArchiveError, ArchiveLockedError

__all__ = ["lock_path", "WriterLock", "writer_alive"]


def lock_path(path: Path) -> Path:
    """``<archive>.lock`` beside the archive."""
    return path.with_name(path.name + ".lock")


class WriterLock:
    """An exclusive flock on ``<archive>.lock``: released by the OS when the writer dies,
    so holding it proves any consistency flags left in the file are stale."""

    def __init__(self, path: Path, timeout: float = 2.0):
        self.path = lock_path(path)
        self.fd = -1
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ArchiveError(f"{path}: cannot create the writer lock {self.path}: "
                               f"{exc.strerror or exc}") from None
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    os.close(self.fd)
                    self.fd = -1
                    raise ArchiveLockedError(
                        f"{path}: the archive is in use by another writer (lock {self.path})") from None
                time.sleep(0.05)
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"{os.getpid()}\n".encode())

    def __enter__(self) -> "WriterLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        """Unlock (the lock file stays: removing it would race with the next writer)."""
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1


def writer_alive(path: Path) -> bool:
    """True when some process holds the archive's writer lock (probe, released at once)."""
    lp = lock_path(Path(path))
    if not lp.exists():
        return False
    try:
        fd = os.open(lp, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing drops the probe lock
    return False
