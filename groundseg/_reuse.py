"""Output arrays handed out again once nobody else holds them.

A batch's outputs are fresh arrays of megabytes. Fresh memory costs the kernel a page
fault per 4 kB page it zeroes (about 4 us each on the 2-core CI machine: ~30 ms for a
30 MB batch, as long as decoding it), and glibc maps every block over 32 MiB anew at
each call. Reusing the previous batch's outputs spares both, but only when no caller
kept them: every numpy view of an array (and every array numba returns from one) holds
a reference to the array that owns the memory, so an owner that only this module
references is free to write over. One still held anywhere (a consumer's batch, an
archive flush in flight) is left alone and a new one is made.

Owners are kept per thread (two per name: a caller that rebinds its result after the
next call still holds the last one while it runs), so threads decoding streams side by
side never share one.

A stage's own buffers, which a later batch takes again (the capture's reads, sync's
codeblocks, RS's frames, the packet extractor's output, telemetry's sorted packets), are
asked for ``mapped``: owners of a megabyte or more are then mapped on their own
(:mod:`groundseg._mapped`), off the heap. ``keep`` must then cover every batch a
consumer may hold at once: telemetry's sorted packets stay with the archive until the
flush that writes them is done (about ten batches), and with the default two a new owner
was made for most batches, each a fresh map paid in page faults (4-6 s more in the
kernel over a 10.7 GB replay); kept by twelve, a 2.1 GB replay maps six in all.
"""
from __future__ import annotations

import sys
import threading

import numpy as np

from groundseg import _mapped

_KEEP = 2


def _holders(owner: np.ndarray) -> int:
    return sys.getrefcount(owner)


def _free_count() -> int:
    # what ``empty`` sees of an owner nobody else holds (its list, the loop's name, the
    # calls' arguments), measured the same way on this interpreter rather than assumed
    for owner in [np.empty(1)]:
        return _holders(owner)
    raise AssertionError


_FREE = _free_count()

_local = threading.local()


def empty(name: str, shape: tuple[int, ...], dtype, keep: int = _KEEP, mapped: bool = False) -> np.ndarray:
    """An uninitialised array of ``shape``: a view of a reused owner when one of this
    thread's ``name`` owners is free and large enough (its first dimension may be
    longer, the others must match), else of a new one a quarter larger, kept with the
    ``keep`` newest (one per array a batch holds at once under this name, plus one).
    ``mapped``: a new owner of a megabyte or more is mapped on its own."""
    dtype = np.dtype(dtype)
    shape = tuple(int(k) for k in shape)
    owners = getattr(_local, "owners", None)
    if owners is None:
        owners = _local.owners = {}
    kept = owners.setdefault(name, [])
    for owner in kept:
        if (owner.dtype == dtype and owner.shape[1:] == shape[1:] and owner.shape[0] >= shape[0]
                and _holders(owner) <= _FREE):
            return owner[:shape[0]]
    full = (shape[0] + shape[0] // 4,) + shape[1:]
    owner = _mapped.zeros(full, dtype) if mapped else np.empty(full, dtype)
    kept.append(owner)
    if len(kept) > keep:
        kept.pop(0)
    return owner[:shape[0]]


def release() -> None:
    """Forget this thread's owners (their memory goes when the last holder lets go)."""
    _local.owners = {}
