"""groundseg.archive: the per-mission HDF5 archive (docs/archive.md).

Modules by responsibility: ``schema`` (layout, names, report columns), ``errors``,
``lock`` (the writer lock), ``superblock`` (flags, validation), ``h5access`` (opening
for reading without hanging on a damaged file), ``recovery`` (after a crashed writer)
and ``salvage`` (after a damaged file), ``commitlog`` (/flushes), ``dedup`` (numpy and
numba only) and ``keystore`` (its keys read back), ``rows`` (batches as columns),
``tables`` (appendable datasets, background flush), ``storage`` (the file open for
writing: layout, flush, commit), ``writer`` (``ArchiveWriter``, the facade),
``reader`` (``open_archive``), ``paths``, ``export``, ``plot``.
"""
from __future__ import annotations

import importlib

_API = {
    "ArchiveWriter": "groundseg.archive.writer",
    "open_archive": "groundseg.archive.reader",
    "ArchiveError": "groundseg.archive.errors",
    "ArchiveMismatchError": "groundseg.archive.errors",
    "ArchiveLockedError": "groundseg.archive.errors",
    "ArchiveDamagedError": "groundseg.archive.errors",
}

__all__ = list(_API)


def __getattr__(name: str):
    # lazy: importing the package must not import h5py and numba (CLI start-up)
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'groundseg.archive' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
