"""Keeping files too large to stay cached out of the kernel's page cache (Linux
``posix_fadvise``; elsewhere nothing is done).

A replay reads a capture once and writes an archive about twice its size. When the two
outgrow free memory, every new page the kernel caches must first be reclaimed from an
older one, in the reading or writing thread: on the 2-core CI machine a 10.7 GB replay
spent 77 of its 256 CPU seconds in the kernel (24 with the pages dropped).
Pages the replay will not read again are therefore dropped once they are clean: the
capture's behind the read position, the archive's written before the last commit.
Files smaller than a quarter of physical memory are left to the kernel (a capture
replayed again is then read from memory).
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
