"""Keeping files the replay will not read again out of the kernel's page cache (Linux
``posix_fadvise``; elsewhere nothing is done).

A replay reads a capture once and writes an archive about 1.5 times its size. Every page
the page cache grows by is memory the kernel must find: once the two outgrow free
memory, a page reclaimed from an older one, in the reading or writing thread (on the
2-core CI machine a 10.7 GB replay spent 77 of its 256 CPU seconds in the kernel, 24
with the pages dropped); before that, on a virtual machine that hands freed memory back
to its host (the CI's does), a page the host must map anew: copying the archive's writes
into the cache took 15 % of a 2.1 GB replay's CPU, against 1 % at 307 MB, whose archive
fits in memory freed moments before.
So pages are dropped once they are clean and not wanted again:
- the archive's written before the last commit, whatever its size: an archive is
  written once and read later by windows; dropping them took a 2.1 GB replay from
  5.2-6.1 to 2.6-2.7 kernel CPU s (25 -> 22 CPU s in all), and changed nothing
  measurable at 307 MB;
- a capture's behind the read position, when it is larger than a quarter of physical
  memory: a smaller capture is left to the kernel, so a capture replayed again is read
  from memory (from a slow disk, reading it again would cost more than the pages do).
"""
from __future__ import annotations

import os


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return 0


#: files above this many bytes are not kept cached (0 where the size of memory is unknown)
LARGE_BYTES = _physical_memory() // 4
_ADVISE = getattr(os, "posix_fadvise", None)


def available() -> bool:
    """Pages can be dropped here (Linux)."""
    return _ADVISE is not None


def large(nbytes: int) -> bool:
    """A file of ``nbytes`` would crowd the page cache."""
    return _ADVISE is not None and LARGE_BYTES > 0 and nbytes > LARGE_BYTES


def drop(fd: int, start: int, end: int) -> None:
    """Drop ``fd``'s cached pages in [start, end): clean ones now, dirty ones are queued
    for writing and go at a later call (advice only: an error changes nothing)."""
    if _ADVISE is None or end <= start:
        return
    try:
        _ADVISE(fd, start, end - start, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass
