"""The archive's writer API under its historical import path.

The archive is a package split by responsibility (see ``groundseg.archive``);
``groundseg.archive.hdf5`` re-exports what callers import from it.
"""
from __future__ import annotations

from groundseg.archive.dedup import Deduplicator, packet_keys
from groundseg.archive.errors import (
    ArchiveDamagedError, ArchiveError, ArchiveLockedError, ArchiveMismatchError,
)
from groundseg.archive.schema import (
    PASS_COMPLETE, PASS_INCOMPLETE, PASS_INTERRUPTED, PASS_OPEN, SCHEMA_VERSION, TIME_FRAME,
    TIME_NONE, TIME_ONBOARD, TIME_RECEPTION, archive_path,
)
from groundseg.archive.superblock import clear_status_flags, lookup3, read_superblock
from groundseg.archive.writer import ArchiveWriter

__all__ = [
    "ArchiveError", "ArchiveMismatchError", "ArchiveLockedError", "ArchiveDamagedError",
    "ArchiveWriter", "archive_path", "clear_status_flags", "read_superblock", "lookup3",
    "packet_keys", "Deduplicator", "SCHEMA_VERSION", "PASS_OPEN", "PASS_COMPLETE",
    "PASS_INTERRUPTED", "PASS_INCOMPLETE", "TIME_ONBOARD", "TIME_FRAME", "TIME_RECEPTION",
    "TIME_NONE",
]
