"""Archive exceptions, all :class:`~groundseg.errors.GroundsegError` subclasses."""
from __future__ import annotations

import errno
import os
from pathlib import Path

from groundseg.errors import GroundsegError, UsageError

__all__ = ["ArchiveError", "ArchiveMismatchError", "ArchiveLockedError", "ArchiveDamagedError",
           "write_error"]


class ArchiveError(GroundsegError):
    """The archive cannot be used: unreadable, not an archive, full disk, misuse."""


class ArchiveMismatchError(ArchiveError, UsageError):
    """The archive belongs to another mission (name or spacecraft ID); CLI exit status 2."""


class ArchiveLockedError(ArchiveError):
    """Another writer holds the archive."""


class ArchiveDamagedError(ArchiveError):
    """The file is damaged (truncated, corrupt metadata); the message says what
    ``groundseg archive repair`` can recover."""


def write_error(path: Path, exc: BaseException, what: str) -> ArchiveError:
    """An OS or HDF5 write failure as one line that says earlier flushes are safe."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        reason = os.strerror(exc.errno)
    elif "No space" in reason or "File too large" in reason or "write failed" in reason:
        reason = f"write failed ({reason})"
    return ArchiveError(f"{path}: {what}: {reason}; packets of earlier flushes are safe")
