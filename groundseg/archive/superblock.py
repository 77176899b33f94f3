"""The HDF5 superblock, read and patched without HDF5 (versions 2 and 3, lookup3 checksum).

After kill -9 of a writer the superblock keeps its "file open for write / SWMR write"
flags and HDF5 refuses every non-SWMR open. HDF5's fix is the h5clear tool; its library
property is private, so the flags are cleared here. :func:`check_file` validates the
superblock and the file's length before HDF5 sees the file: a truncated file read by an
SWMR reader is otherwise taken for a file still being written (see ``h5access``).
"""
from __future__ import annotations

import os
import struct
import time

from groundseg.archive.errors import ArchiveDamagedError, ArchiveError
from groundseg.archive.schema import HDF5_SIGNATURE

__all__ = ["lookup3", "read_superblock", "patched_superblock", "clear_status_flags", "check_file"]


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & 0xFFFFFFFF


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``: HDF5's metadata checksum."""
    m = 0xFFFFFFFF
    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & m
    i = 0
    while length > 12:
        a = (a + int.from_bytes(data[i:i + 4], "little")) & m
        b = (b + int.from_bytes(data[i + 4:i + 8], "little")) & m
        c = (c + int.from_bytes(data[i + 8:i + 12], "little")) & m
        a = (a - c) & m; a ^= _rot(c, 4); c = (c + b) & m
        b = (b - a) & m; b ^= _rot(a, 6); a = (a + c) & m
        c = (c - b) & m; c ^= _rot(b, 8); b = (b + a) & m
        a = (a - c) & m; a ^= _rot(c, 16); c = (c + b) & m
        b = (b - a) & m; b ^= _rot(a, 19); a = (a + c) & m
        c = (c - b) & m; c ^= _rot(b, 4); b = (b + a) & m
        length -= 12
        i += 12
    if length == 0:
        return c
    tail = data[i:] + bytes(12 - length)  # missing tail bytes add nothing, as in the C switch
    a = (a + int.from_bytes(tail[0:4], "little")) & m
    b = (b + int.from_bytes(tail[4:8], "little")) & m
    c = (c + int.from_bytes(tail[8:12], "little")) & m
    c ^= b; c = (c - _rot(b, 14)) & m
    a ^= c; a = (a - _rot(c, 11)) & m
    b ^= a; b = (b - _rot(a, 25)) & m
    c ^= b; c = (c - _rot(b, 16)) & m
    a ^= c; a = (a - _rot(c, 4)) & m
    b ^= a; b = (b - _rot(a, 14)) & m
    c ^= b; c = (c - _rot(b, 24)) & m
    return c


def _superblock_bytes(head: bytes) -> dict:
    if head[:8] != HDF5_SIGNATURE:
        raise ArchiveError("not an HDF5 file")
    version = head[8]
    if version not in (2, 3):
        raise ArchiveError(f"HDF5 superblock version {version} (groundseg archives use 2 or 3)")
    so = head[9]
    if so not in (4, 8):
        raise ArchiveError(f"unsupported HDF5 offset size {so}")
    fmt = "<Q" if so == 8 else "<I"
    end = 12 + 4 * so
    eoa = struct.unpack_from(fmt, head, 12 + 2 * so)[0]
    stored = struct.unpack_from("<I", head, end)[0]
    return {"version": version, "offset_size": so, "flags": head[11], "eoa": eoa,
            "eoa_pos": 12 + 2 * so, "end": end, "checksum_ok": lookup3(head[:end]) == stored}


def read_superblock(path: str | os.PathLike) -> dict:
    """Version, consistency flags (1 write, 4 SWMR write), end-of-allocation address."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    info = _superblock_bytes(head)
    info["file_size"] = os.path.getsize(path)
    return info


def patched_superblock(head: bytes, file_size: int) -> tuple[bytes, dict]:
    """The superblock with flags cleared and EOA >= file size, checksum recomputed."""
    info = _superblock_bytes(head)
    so, end = info["offset_size"], info["end"]
    fmt = "<Q" if so == 8 else "<I"
    sb = bytearray(head[:end + 4])
    sb[11] = 0
    # a crash can leave data past the recorded end of allocation: keep it out of reuse
    eoa = max(info["eoa"], file_size)
    struct.pack_into(fmt, sb, info["eoa_pos"], eoa)
    struct.pack_into("<I", sb, end, lookup3(bytes(sb[:end])))
    return bytes(sb), {"flags_before": info["flags"], "eoa_before": info["eoa"], "eoa_after": eoa}


def clear_status_flags(path: str | os.PathLike) -> dict:
    """Clear a dead writer's consistency flags in place (``h5clear -s --increment`` alike).

    Only safe when no process writes the file; :class:`ArchiveWriter` holds the
    archive's lock when it calls this.
    """
    with open(path, "r+b") as fh:
        head = fh.read(64)
        size = os.fstat(fh.fileno()).st_size
        sb, info = patched_superblock(head, size)
        if info["eoa_before"] > size:
            # space allocated but never written before the crash: make the file that long
            fh.truncate(info["eoa_before"])
        fh.seek(0)
        fh.write(sb)
        fh.flush()
        os.fsync(fh.fileno())
    return info



def _checksum_ok(head: bytes) -> bool:
    try:
        return _superblock_bytes(head)["checksum_ok"]
    except (ArchiveError, struct.error):
        return True  # not a checksum matter: reported below


def check_file(path: str | os.PathLike) -> dict:
    """The superblock of ``path`` (:func:`read_superblock`) once the file is known to be a
    whole HDF5 file: raises ArchiveError when it is not HDF5, ArchiveDamagedError when the
    superblock is corrupt or the file is shorter than its superblock says.

    A file whose write flags are set may legitimately end before its end of allocation
    (a writer running, or killed before its last write reached the disk): only a file
    with no writer flags is judged by its length.
    """
    for attempt in range(5):
        try:
            size = os.path.getsize(path)
            with open(path, "rb") as fh:
                head = fh.read(64)
        except OSError as exc:
            raise ArchiveError(f"{path}: cannot read: {exc.strerror or exc}") from None
        if len(head) < 48 or head[:8] != HDF5_SIGNATURE or _checksum_ok(head):
            break
        time.sleep(0.01)  # a live writer rewriting the superblock: read it again
    if head[:8] != HDF5_SIGNATURE:
        raise ArchiveError(f"{path}: not an HDF5 archive")
    if len(head) < 48:
        raise ArchiveDamagedError(f"{path}: damaged archive: truncated to {size} bytes, "
                                  f"inside its superblock")
    try:
        info = _superblock_bytes(head)
    except ArchiveError as exc:
        raise ArchiveError(f"{path}: not a groundseg archive ({exc})") from None
    info["file_size"] = size
    if not info["checksum_ok"]:
        raise ArchiveDamagedError(f"{path}: damaged archive: superblock checksum mismatch")
    if not info["flags"] and info["eoa"] > size:
        raise ArchiveDamagedError(f"{path}: damaged archive: truncated to {size:,} bytes of "
                                  f"{info['eoa']:,}")
    return info
