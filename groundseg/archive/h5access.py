"""Opening an archive for reading so that a damaged file fails fast instead of hanging.

Why a damaged archive hung every reader: an HDF5 SWMR reader takes a metadata checksum
mismatch for a block the writer is rewriting and reads it again, up to the file access
property "metadata read attempts" (default 100 in SWMR mode), sleeping between attempts
with a doubling back-off that starts at 1 ns (``H5C__load_entry``). On a truncated or
corrupt file every attempt fails, and 100 doublings sum to 2^100 ns: forever, inside one
C call that holds the GIL, so SIGINT is never handled either. SWMR read mode also skips
HDF5's end-of-file check (a file being written grows), so a truncated file opens.

Here the attempts are bounded (:data:`READ_ATTEMPTS`: the back-off then sums to about a
quarter of a second, ample for a live writer's rewrite), and callers check the superblock
and the file's length first (``superblock.check_file``).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import io
import os
from pathlib import Path

import h5py
from h5py._hl.files import make_fapl  # the fapl h5py.File would build: one place to add to

from groundseg.archive.superblock import patched_superblock

__all__ = ["READ_ATTEMPTS", "open_swmr_reader", "OverlayFile"]

#: SWMR metadata read attempts: 1 + 2 + ... + 2^27 ns of back-off, about 0.27 s in all.
READ_ATTEMPTS = 28


def _hdf5_library():
    """The HDF5 C library h5py is linked with (already loaded in this process)."""
    try:
        with open("/proc/self/maps") as fh:
            for line in fh:
                path = line.rsplit(None, 1)[-1]
                name = os.path.basename(path)
                if name.startswith("libhdf5") and not name.startswith("libhdf5_hl") and ".so" in name:
                    return ctypes.CDLL(path)
    except OSError:
        pass
    found = ctypes.util.find_library("hdf5")
    return ctypes.CDLL(found) if found else None


def _set_read_attempts(fapl, attempts: int) -> bool:
    lib = _hdf5_library()
    fn = getattr(lib, "H5Pset_metadata_read_attempts", None) if lib is not None else None
    if fn is None:
        return False
    fn.argtypes = [ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn(fapl.id, attempts) >= 0


def open_swmr_reader(path: Path) -> h5py.File:
    """``h5py.File(path, "r", swmr=True, locking=False)`` with bounded metadata read
    attempts. Raises OSError as h5py does."""
    fapl = make_fapl(None, locking=False)
    _set_read_attempts(fapl, READ_ATTEMPTS)
    fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY | h5py.h5f.ACC_SWMR_READ, fapl=fapl)
    return h5py.File(fid)




class OverlayFile(io.RawIOBase):
    """The archive file with a replacement superblock, read-only: lets HDF5 open a file
    whose writer died without clearing its flags, without touching the file."""

    def __init__(self, path: Path):
        self._fh = open(path, "rb")
        size = os.fstat(self._fh.fileno()).st_size
        head = self._fh.read(64)
        self._sb, info = patched_superblock(head, size)
        self._size = max(size, info["eoa_before"])
        self._real = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0:
            self._pos = offset
        elif whence == 1:
            self._pos += offset
        else:
            self._pos = self._size + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, b) -> int:
        n = min(len(b), max(0, self._size - self._pos))
        if n <= 0:
            return 0
        self._fh.seek(self._pos)
        data = bytearray(self._fh.read(min(n, max(0, self._real - self._pos))))
        data.extend(bytes(n - len(data)))  # allocated but never written before the crash
        lo = self._pos
        if lo < len(self._sb):
            k = min(len(self._sb) - lo, n)
            data[:k] = self._sb[lo:lo + k]
        b[:n] = data
        self._pos += n
        return n

    def close(self) -> None:
        self._fh.close()
        super().close()

