"""Arrays of a megabyte or more mapped on their own (an anonymous ``mmap``), for
buffers that live across many chunks: a stage's reused outputs (:mod:`groundseg._reuse`).

A replay allocates and frees blocks of every size at each chunk. glibc serves blocks
under its mmap threshold from the heap, and that threshold rises to the largest block
freed so far (up to 32 MiB), so after the first multi-megabyte array is freed every
array under that size comes from the heap. A long-lived multi-megabyte block in the
heap then leaves holes of its size around it as the short-lived blocks move, and glibc
returns no heap page until every block above it is free: a 10.7 GB replay kept 25-39
MB of free 1-8 MB holes in its heap (malloc_info). Mapped on their own, long-lived
buffers never sit in the heap, and the pages a buffer never reaches never become
resident (figures in docs/archive.md, Memory). A map is zero-filled by the kernel as it
is touched.

Short-lived arrays stay on the heap: a fresh map per call costs a page fault for every
4 kB page it touches, where the heap hands the same pages out again.
"""
from __future__ import annotations

import mmap

import numpy as np

MAPPED_BYTES = 1 << 20   # arrays this large are mapped on their own


def zeros(shape, dtype) -> np.ndarray:
    """A zero-filled array, mapped on its own when it has MAPPED_BYTES or more.

    Views of it have it as their base (it is made straight on the map), so a holder
    count of the array (:mod:`groundseg._reuse`) sees them as it does an ordinary
    array's."""
    dtype = np.dtype(dtype)
    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(k) for k in shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes < MAPPED_BYTES:
        return np.zeros(shape, dtype)
    return np.ndarray(shape, dtype, buffer=mmap.mmap(-1, nbytes))
