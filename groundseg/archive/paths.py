"""Paths in and out of the archive commands: an archive directory resolved to its file,
an output file whose directory must already exist."""
from __future__ import annotations

import os
from pathlib import Path

from groundseg.archive.errors import ArchiveError
from groundseg.errors import UsageError

__all__ = ["resolve_archive", "check_output"]


def resolve_archive(path: str | os.PathLike) -> Path:
    """An archive file, or the archive directory ``replay --archive DIR`` writes: the one
    ``<mission>.h5`` in it. Raises UsageError when the directory holds several (naming
    them) and ArchiveError when it holds none."""
    p = Path(path)
    if not p.is_dir():
        return p
    found = sorted(x for x in p.glob("*.h5") if x.is_file() and not x.name.startswith("."))
    if len(found) == 1:
        return found[0]
    if not found:
        raise ArchiveError(f"{p}: no archive (<mission>.h5) in this directory")
    raise UsageError(f"{p} holds {len(found)} archives ({', '.join(x.name for x in found)}): "
                     f"name one, e.g. {found[0]}")


def check_output(out: str | os.PathLike) -> Path:
    """An output file path whose directory exists (a typo in it must not create
    directories somewhere unexpected): raises UsageError otherwise."""
    p = Path(out)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{p}: directory {parent} does not exist")
    if p.is_dir():
        raise UsageError(f"{p}: is a directory; name the output file")
    return p
