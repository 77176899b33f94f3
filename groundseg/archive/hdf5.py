"""The per-mission HDF5 archive: layout and writer (CCSDS 133.0-B Space Packets, 132.0-B/732.0-B frames).

One file per mission, ``<archive dir>/<mission name>.h5``; every replay or receive
is a pass appended to it. The layout is in ``docs/archive.md``. What shapes it:

* HDF5 SWMR (single writer, multiple readers): nothing can be created in SWMR
  mode, so the writer creates every group and dataset a pass needs while the
  file is open normally, then starts SWMR and only appends. Should a pass bring
  something unforeseen (a new decoded field), the writer commits, reopens the
  file normally for the few milliseconds the creation takes, and resumes SWMR.
* Crash safety: data are buffered and flushed every few seconds or N packets;
  each flush ends by appending a row to ``/flushes`` (the row count of every
  table), written only after the data it counts. A reader trusts that row and
  nothing beyond it, so after kill -9 it sees every packet of every completed
  flush. The next writer clears the stale consistency flags in the superblock
  itself (what ``h5clear -s`` does), truncates the tables to the last commit and
  marks the interrupted pass so.
* Tables are groups of 1-D column datasets (resizable, chunked), variable-length
  bytes a flat ``uint8`` heap plus per-row offsets: no compound or vlen types,
  so columns can be added as missions change and Debian's h5dump reads it all.
* Idempotent: packets are deduplicated on (APID, sequence count, onboard time,
  content hash); see :class:`Deduplicator`.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import resource
import struct
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from groundseg._numba import kernel
from groundseg.link.records import PACKET_DTYPE, REJECT_REASONS, PacketBatch

__all__ = [
    "ArchiveError", "ArchiveMismatchError", "ArchiveLockedError", "ArchiveWriter",
    "archive_path", "clear_status_flags", "read_superblock", "packet_keys",
    "Deduplicator", "SCHEMA_VERSION", "PASS_OPEN", "PASS_COMPLETE",
    "PASS_INTERRUPTED", "PASS_INCOMPLETE",
]

SCHEMA_VERSION = 1
#: Debian's h5dump 1.10 reads v110 files; 'latest' would not be.
LIBVER = ("v110", "v110")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

#: /passes status values.
PASS_OPEN, PASS_COMPLETE, PASS_INTERRUPTED, PASS_INCOMPLETE = 0, 1, 2, 3
PASS_STATUS = ("open", "complete", "interrupted", "incomplete")

#: time_source column of packet tables: which time the dedup key and onboard_time use.
TIME_ONBOARD, TIME_FRAME, TIME_RECEPTION, TIME_NONE = 0, 1, 2, 3
TIME_SOURCES = ("onboard", "frame", "reception", "none")

UNDECLARED = "_undeclared"
PACKETS_GROUP = "packets"

# /flushes row: these leading columns, then one row count per table (order in its attribute)
FLUSH_HEAD = ("flush_id", "pass_id", "layout_gen", "time_ms")

#: /passes columns (one dataset each). Report counts are -1 until the pass ends with a report.
PASS_COLUMNS = [
    ("pass_id", "<u4"), ("status", "u1"), ("started_at", "<f8"), ("ended_at", "<f8"),
    ("reception_start", "<f8"), ("reception_end", "<f8"),
    ("onboard_start", "<f8"), ("onboard_end", "<f8"),
    ("packets_archived", "<i8"), ("duplicates_skipped", "<i8"), ("untimed_packets", "<i8"),
    ("frames_archived", "<i8"), ("rejects_archived", "<i8"),
    ("source_offset", "<i8"), ("source_length", "<i8"),
    ("mission_offset", "<i8"), ("mission_length", "<i8"),
    ("report_offset", "<i8"), ("report_length", "<i8"),
]
#: Scalar counts of the report JSON (DESIGN.md), flattened into /passes columns.
REPORT_COLUMNS = [
    ("frames_total", ("frames", "total")), ("frames_clean", ("frames", "clean")),
    ("frames_corrected", ("frames", "corrected")), ("frames_uncorrectable", ("frames", "uncorrectable")),
    ("frames_crc_failed", ("frames", "crc_failed")), ("frames_rejected", ("frames", "rejected")),
    ("frames_idle", ("frames", "idle")), ("rs_symbols_corrected", ("rs_symbols_corrected",)),
    ("sync_bits_in", ("sync", "bits_in")), ("sync_lock_losses", ("sync", "lock_losses")),
    ("sync_inverted_codeblocks", ("sync", "inverted_codeblocks")),
    ("idle_packets", ("idle_packets",)),
]
#: Sums over the report's per-VC / per-APID / per-reason dictionaries.
REPORT_SUMS = [
    ("packets_count", "packets", "count"), ("packets_bytes", "packets", "bytes"),
    ("packets_sequence_gaps", "packets", "sequence_gaps"),
    ("packets_sequence_missing", "packets", "sequence_missing"),
    ("packets_dropped_incomplete", "packets", "dropped_incomplete"),
    ("vc_gaps", "virtual_channels", "gaps"), ("vc_frames_lost", "virtual_channels", "frames_lost"),
    ("rejects_total", "rejects", None),
]
ALL_PASS_COLUMNS = PASS_COLUMNS + [(n, "<i8") for n, _ in REPORT_COLUMNS] + \
    [(n, "<i8") for n, _, _ in REPORT_SUMS]

_TIME_COLUMNS = ("started_at", "ended_at", "reception_start", "reception_end", "onboard_start",
                 "onboard_end")

#: Columns every packet table has besides the PACKET_DTYPE header fields.
PACKET_EXTRA_COLUMNS = [("pass_id", "<u4"), ("onboard_time", "<f8"), ("time_source", "u1"),
                        ("dedup_key", "<u8"), ("raw_offset", "<i8")]

#: Compression per dataset category, chosen by measurement (benchmarks/bench_archive.py;
#: docs/archive.md has the figures). Header columns are mostly constant or regular
#: (pass, APID, lengths, counters, reception times): byte shuffle + gzip level 1 shrinks
#: them 4 to 200x at 150-700 MB/s. Decoded fields and raw packet bytes are often noisy,
#: where zlib runs at 15-50 MB/s for a ratio near 1: stored as they are by default
#: (``compression={"fields": {"compression": "gzip", "compression_opts": 1, "shuffle": True}}``
#: turns it on). Dedup keys are random and never compressed.
DEFAULT_COMPRESSION = {
    "header": {"compression": "gzip", "compression_opts": 1, "shuffle": True},
    "fields": {},
    "raw": {},
    "text": {"compression": "gzip", "compression_opts": 1},
}
CHUNK_ROWS = 32768
#: Free space a flush needs beyond its data: chunk rounding, metadata, the commit row.
SPACE_MARGIN = 16 << 20
CHUNK_BYTES = 1 << 18              # uncompressed chunks: 256 KiB (raw heaps, fields, keys)
CHUNK_BYTES_COMPRESSED = 1 << 20   # compressed chunks hold up to 32768 rows


class ArchiveError(Exception):
    """The archive cannot be used: unreadable, not an archive, full disk, misuse."""


class ArchiveMismatchError(ArchiveError):
    """The archive belongs to another mission (name or spacecraft ID); CLI exit status 2."""


class ArchiveLockedError(ArchiveError):
    """Another writer holds the archive."""


def archive_path(archive: str | os.PathLike, mission_name: str) -> Path:
    """``archive`` is a directory (-> ``<dir>/<mission_name>.h5``) or a ``.h5`` file path."""
    p = Path(archive)
    if p.suffix.lower() in (".h5", ".hdf5") or p.is_file():
        return p
    return p / f"{mission_name}.h5"


# -- superblock: clearing stale consistency flags ------------------------------------------
# After kill -9 of a writer the superblock keeps its "file open for write / SWMR write"
# flags and HDF5 refuses every non-SWMR open. HDF5's fix is the h5clear tool; its library
# property is private, so we patch the superblock (versions 2 and 3) ourselves.

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


# -- writer lock ----------------------------------------------------------------------------
def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


class WriterLock:
    """An exclusive flock on ``<archive>.lock``: released by the OS when the writer dies,
    so holding it proves any consistency flags left in the file are stale."""

    def __init__(self, path: Path, timeout: float = 2.0):
        self.path = lock_path(path)
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ArchiveError(f"{path}: cannot create the writer lock {self.path}: "
                               f"{exc.strerror or exc}") from None
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    os.close(self.fd)
                    self.fd = -1
                    raise ArchiveLockedError(
                        f"{path}: the archive is in use by another writer (lock {self.path})") from None
                time.sleep(0.05)
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"{os.getpid()}\n".encode())

    def release(self) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1


def writer_alive(path: Path) -> bool:
    """True when some process holds the archive's writer lock (probe, released at once)."""
    lp = lock_path(Path(path))
    if not lp.exists():
        return False
    try:
        fd = os.open(lp, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing drops the probe lock
    return False


# -- dedup keys -----------------------------------------------------------------------------
@kernel
def _packet_keys_kernel(words, data, offsets, apid, seq, tkey, exact):
    # words[a]: data from byte a on as little-endian uint64 words, so a packet starting at
    # byte p reads its 8-byte words from words[p % 8] in one load each
    n = apid.shape[0]
    out = np.empty(n, np.uint64)
    prime = np.uint64(0x100000001B3)
    for i in range(n):
        # FNV-1a style over 8-byte little-endian words, then the tail bytes: a content
        # hash independent of batch layout, one multiply per word
        h = np.uint64(0xCBF29CE484222325)
        start = offsets[i]
        end = offsets[i + 1]
        nw = (end - start) // 8
        a = start & 7
        wa = words[a]
        base = (start - a) >> 3
        for w in range(nw):
            h = (h ^ wa[base + w]) * prime
        for j in range(start + 8 * nw, end):
            h = (h ^ np.uint64(data[j])) * prime
        h ^= (np.uint64(apid[i]) << np.uint64(48)) | (np.uint64(seq[i]) << np.uint64(32))
        if exact[i]:
            h ^= tkey[i] * np.uint64(0x9E3779B97F4A7C15)
        # splitmix64 finaliser spreads the bits: hash tables index by the low bits
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        out[i] = h ^ (h >> np.uint64(31))
    return out


def _word_views(data: np.ndarray) -> tuple:
    """The eight uint64 views of ``data`` starting at bytes 0..7 (no copy; unaligned loads
    cost nothing on x86-64). Little-endian words on every host."""
    # all views of the one buffer, so they share one numba type (read-only or not)
    return tuple(data[a:a + 8 * max(0, (len(data) - a) // 8)].view("<u8") for a in range(8))


def time_key(t: np.ndarray) -> np.ndarray:
    """Times as integer microseconds (uint64 bit pattern), so float noise cannot split a key."""
    t = np.asarray(t, np.float64)
    us = np.where(np.isfinite(t), np.rint(t * 1e6), 0.0).astype(np.int64)
    return us.view(np.uint64)


def packet_keys(data: np.ndarray, offsets: np.ndarray, apid: np.ndarray, seq: np.ndarray,
                key_time: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """uint64 dedup key per packet: hash of (APID, sequence count, content[, time if exact])."""
    with np.errstate(over="ignore"):  # only matters with NUMBA_DISABLE_JIT: wrap-around is intended
        data = np.ascontiguousarray(data, np.uint8).ravel()
        return _packet_keys_kernel(_word_views(data), data,
                                   np.ascontiguousarray(offsets, np.int64),
                                   np.ascontiguousarray(apid, np.uint16),
                                   np.ascontiguousarray(seq, np.uint16),
                                   time_key(key_time), np.ascontiguousarray(exact, np.bool_))


# Exact keys live in open-addressing hash sets (linear probing, power-of-two tables); keys
# with a reception time in hash multimaps whose slots also hold that time and the pass.
# Slot value 0 means empty, so a key of 0 is stored as _ZERO_KEY (a 2^-64 coincidence,
# like any hash collision). Keys are splitmix64 outputs: their low bits index the table.
_ZERO_KEY = np.uint64(0x9E3779B97F4A7C15)
#: Tables grow (doubling) past this load: linear probing stays short below it.
_MAX_LOAD = 0.75


def _table_size(count: int) -> int:
    cap = 8
    while cap * _MAX_LOAD < count:
        cap *= 2
    return cap


@kernel
def _set_contains(table, q, found):
    """found[i] |= q[i] in the set ``table``."""
    mask = np.int64(table.shape[0] - 1)
    for i in range(q.shape[0]):
        k = q[i]
        if k == 0:
            k = _ZERO_KEY
        s = np.int64(k & np.uint64(mask))
        while True:
            v = table[s]
            if v == k:
                found[i] = True
                break
            if v == 0:
                break
            s = (s + 1) & mask


@kernel
def _set_insert(table, q, skip, dup):
    """Insert q[i] (not where ``skip``); dup[i] = q[i] was already there (an earlier row of
    q included, so the first of equal keys is the one kept). Returns the count inserted;
    the caller sizes ``table`` for them."""
    mask = np.int64(table.shape[0] - 1)
    added = 0
    for i in range(q.shape[0]):
        if skip[i]:
            continue
        k = q[i]
        if k == 0:
            k = _ZERO_KEY
        s = np.int64(k & np.uint64(mask))
        while True:
            v = table[s]
            if v == 0:
                table[s] = k
                added += 1
                break
            if v == k:
                dup[i] = True
                break
            s = (s + 1) & mask
    return added


@kernel
def _set_rehash(old, new):
    mask = np.int64(new.shape[0] - 1)
    for j in range(old.shape[0]):
        k = old[j]
        if k == 0:
            continue
        s = np.int64(k & np.uint64(mask))
        while new[s] != 0:
            s = (s + 1) & mask
        new[s] = k


@kernel
def _multi_insert(tkeys, ttimes, tpass, q, qt, qp, skip):
    """Insert every (q[i], qt[i], qp[i]) not ``skip``; equal keys take separate slots."""
    mask = np.int64(tkeys.shape[0] - 1)
    added = 0
    for i in range(q.shape[0]):
        if skip[i]:
            continue
        k = q[i]
        if k == 0:
            k = _ZERO_KEY
        s = np.int64(k & np.uint64(mask))
        while tkeys[s] != 0:
            s = (s + 1) & mask
        tkeys[s] = k
        ttimes[s] = qt[i]
        tpass[s] = qp[i]
        added += 1
    return added


@kernel
def _window_contains(tkeys, ttimes, tpass, q, qt, qpass, window, found):
    """found[i] |= some entry with key q[i] lies within ``window`` s of qt[i]; with no
    time on either side, an entry of another pass."""
    mask = np.int64(tkeys.shape[0] - 1)
    for i in range(q.shape[0]):
        k = q[i]
        if k == 0:
            k = _ZERO_KEY
        t = qt[i]
        s = np.int64(k & np.uint64(mask))
        while True:
            v = tkeys[s]
            if v == 0:
                break
            if v == k:
                t0 = ttimes[s]
                if np.isnan(t) and np.isnan(t0):
                    if tpass[s] != qpass:
                        found[i] = True
                        break
                elif abs(t - t0) <= window:
                    found[i] = True
                    break
            s = (s + 1) & mask


@kernel
def _window_repeats(keys, times, window):
    """Repeats within one batch: a packet with a time is a duplicate of an earlier,
    non-duplicate packet of the same key within ``window`` s. A batch-local hash table
    chains each key's rows in arrival order."""
    n = keys.shape[0]
    cap = 8
    while cap < 2 * n:
        cap *= 2
    mask = np.int64(cap - 1)
    slot_key = np.zeros(cap, np.uint64)
    head = np.full(cap, -1, np.int64)
    nxt = np.full(n, -1, np.int64)
    dup = np.zeros(n, np.bool_)
    for i in range(n):
        k = keys[i]
        if k == 0:
            k = _ZERO_KEY
        s = np.int64(k & np.uint64(mask))
        while slot_key[s] != 0 and slot_key[s] != k:
            s = (s + 1) & mask
        t = times[i]
        if slot_key[s] == 0:
            slot_key[s] = k
        elif not np.isnan(t):
            j = head[s]
            while j >= 0:
                if not dup[j] and abs(times[j] - t) <= window:
                    dup[i] = True
                    break
                j = nxt[j]
        nxt[i] = head[s]
        head[s] = i
    return dup


@dataclass
class _Run:
    """Dedup keys of some archived (or about to be archived) packet rows, as a hash table.

    ``keys``: the table's slots (None while evicted or never read); timed runs also hold
    ``times`` (reception time, NaN for none) and ``passes`` slot by slot. ``sources``: the
    (table, first row, end row[, pass]) they come from, so an evicted run can be read back.
    ``lo``/``hi``: span of the times its keys are matched on (key time for exact keys,
    reception time otherwise); NaN while unknown (an earlier pass not yet read: its
    pass-level span stands in). ``untimed``: holds packets with no time. ``open``: the
    current pass's newest run, which later batches are inserted into."""
    keys: np.ndarray | None
    times: np.ndarray | None
    passes: np.ndarray | None
    sources: list
    lo: float
    hi: float
    untimed: bool = False
    used: int = 0
    exact_span: bool = False  # lo/hi measured from the keys, not estimated
    count: int = 0
    open: bool = False

    @property
    def loaded(self) -> bool:
        return self.keys is not None

    @property
    def nbytes(self) -> int:
        if self.keys is None:
            return 0
        return self.keys.nbytes + (0 if self.times is None else self.times.nbytes + self.passes.nbytes)


class _KeyIndex:
    """Dedup keys as time-partitioned hash-table runs, within a memory budget.

    A query searches only the runs whose time span overlaps the packets asked about, so a
    pass whose time runs forward touches only its most recent run. New keys go into the
    pass's open run until it holds ``piece`` keys. Past the budget, the least recently
    used runs whose rows are committed are dropped and read back from the archive if a
    later query overlaps them: memory stays bounded however long the pass."""

    def __init__(self, timed: bool, budget: int, piece: int):
        self.timed = timed          # window keys: carry reception time and pass
        self.budget = budget
        self.piece = piece
        self.runs: list[_Run] = []
        self.clock = 0
        self.loader = None           # run -> (keys, times, passes, lo, hi, untimed)

    def __len__(self) -> int:
        return sum(r.count for r in self.runs if r.loaded)

    def nbytes(self) -> int:
        return sum(r.nbytes for r in self.runs)

    def _empty(self, cap: int) -> tuple:
        return (np.zeros(cap, np.uint64), np.zeros(cap, np.float64) if self.timed else None,
                np.zeros(cap, np.int32) if self.timed else None)

    def _reserve(self, r: _Run, extra: int) -> None:
        """Room in ``r``'s table for ``extra`` more keys (rehash into a doubled table)."""
        cap = _table_size(r.count + extra)
        if cap <= len(r.keys):
            return
        if not self.timed:
            new = np.zeros(cap, np.uint64)
            _set_rehash(r.keys, new)
            r.keys = new
            return
        keys, times, passes = self._empty(cap)
        occ = r.keys != 0
        _multi_insert(keys, times, passes, r.keys[occ], r.times[occ], r.passes[occ],
                      np.zeros(int(occ.sum()), np.bool_))
        r.keys, r.times, r.passes = keys, times, passes

    def open_run(self, extra: int) -> _Run:
        """The run new keys go to, with room for ``extra`` more."""
        r = self.runs[-1] if self.runs else None
        # a run takes keys while its table for ``piece`` keys has room: up to 1.5 piece
        limit = int(_MAX_LOAD * _table_size(self.piece))
        if r is None or not (r.open and r.loaded) or (r.count and r.count + extra > limit):
            size = extra
            if r is not None and r.open and r.loaded:
                # the pass has filled a run already: size the next one for a full run
                size = max(extra, limit)
                r.open = False
            keys, times, passes = self._empty(_table_size(size))
            r = _Run(keys, times, passes, [], np.nan, np.nan, False, self.clock,
                     exact_span=True, open=True)
            self.runs.append(r)
        self._reserve(r, extra)
        r.used = self.clock
        return r

    @staticmethod
    def remember(r: _Run, sources, lo, hi, untimed=False) -> None:
        """Rows inserted into ``r`` came from ``sources`` and span [lo, hi]."""
        for src in sources:
            last = r.sources[-1] if r.sources else None
            if last is not None and len(last) == 3 and last[0] == src[0] and last[2] == src[1]:
                r.sources[-1] = (last[0], last[1], src[2])  # contiguous rows of one table
            else:
                r.sources.append(src)
        if np.isfinite(lo) or np.isinf(lo):
            r.lo = lo if np.isnan(r.lo) else min(r.lo, lo)
            r.hi = hi if np.isnan(r.hi) else max(r.hi, hi)
        r.untimed = r.untimed or untimed

    def add_unloaded(self, sources, lo, hi, untimed) -> None:
        self.runs.append(_Run(None, None, None, list(sources), lo, hi, untimed, 0))

    def _overlaps(self, r: _Run, lo: float, hi: float, untimed: bool) -> bool:
        if untimed and r.untimed:
            return True
        if np.isnan(lo):
            return False
        if np.isnan(r.lo):
            return not r.exact_span  # unknown span: look (an empty-span run never matches)
        return r.lo <= hi and lo <= r.hi

    def _ensure_loaded(self, r: _Run) -> None:
        if r.loaded:
            return
        keys, times, passes, lo, hi, r.untimed = self.loader(r, self.timed)
        n = len(keys)
        r.keys, r.times, r.passes = self._empty(_table_size(n))
        skip = np.zeros(n, np.bool_)
        if self.timed:
            r.count = _multi_insert(r.keys, r.times, r.passes, np.asarray(keys, np.uint64),
                                    np.asarray(times, np.float64), np.asarray(passes, np.int32), skip)
        else:
            r.count = _set_insert(r.keys, np.asarray(keys, np.uint64), skip, np.zeros(n, np.bool_))
        r.lo, r.hi, r.exact_span = lo, hi, True

    def query(self, q, lo, hi, untimed, check, committed) -> np.ndarray:
        """OR of ``check(run, found)`` over the runs overlapping [lo, hi] (or holding untimed
        packets when ``untimed``), loading evicted ones as needed."""
        found = np.zeros(len(q), np.bool_)
        self.clock += 1
        for r in list(self.runs):
            if not self._overlaps(r, lo, hi, untimed):
                continue
            if not r.loaded:
                self._ensure_loaded(r)
                if not self._overlaps(r, lo, hi, untimed):  # its true span is known now
                    self.evict(committed, True)
                    continue
            r.used = self.clock
            if r.count:
                check(r, found)
            self.evict(committed, True)
        return found

    def evict(self, committed: dict[str, int], in_query: bool = False) -> None:
        total = self.nbytes()
        if total <= self.budget:
            return
        for r in sorted((r for r in self.runs if r.loaded), key=lambda r: r.used):
            if total <= self.budget:
                break
            if all(src[2] <= committed.get(src[0], 0) for src in r.sources):
                total -= r.nbytes
                r.keys = r.times = r.passes = None
                r.count = 0
                r.open = False
        # runs that never received a row have nothing to read back
        self.runs = [r for r in self.runs if r.loaded or r.sources]


class Deduplicator:
    """Which packets are already archived.

    Key (APID, sequence count, onboard time, content hash). Onboard time is the
    packet's secondary-header time, else its frame's insert-zone time: such keys
    match exactly (to the microsecond). Packets with neither match on reception
    time within ``window`` seconds; packets with no time at all match only a
    packet of another pass. Keys are kept in time-partitioned hash-table runs; only
    runs whose span overlaps the packets checked are searched, and past ``budget``
    bytes the least recently used runs are dropped and read back from the archive
    when needed (``loader``), so memory stays bounded.
    """

    def __init__(self, window: float = 10.0, budget: int = 64 << 20, piece: int = 1 << 19, loader=None):
        self.window = float(window)
        self.exact = _KeyIndex(False, budget // 2, piece)
        self.timed = _KeyIndex(True, budget // 2, piece)
        self.exact.loader = self.timed.loader = loader
        self.committed: dict[str, int] = {}

    def add_unloaded(self, sources, onboard_span, reception_span, untimed: bool, has_exact=True,
                     has_timed=True) -> None:
        """An earlier pass's rows, read from the archive only if a query overlaps them."""
        if has_exact and np.isfinite(onboard_span[0]):
            self.exact.add_unloaded(sources, *onboard_span, False)
        if has_timed and (np.isfinite(reception_span[0]) or untimed):
            self.timed.add_unloaded(sources, *reception_span, untimed)

    def check(self, keys, time_source, reception_time, pass_id: int, key_time=None,
              rows: tuple[str, int] | None = None) -> np.ndarray:
        """Duplicate mask; the non-duplicates are then remembered as archived, as the rows
        of table ``rows[0]`` from ``rows[1]`` on, in order (so they can be read back)."""
        keys = np.ascontiguousarray(keys, np.uint64)
        time_source = np.asarray(time_source)
        n = len(keys)
        dup = np.zeros(n, bool)
        exact = time_source <= TIME_FRAME
        n_exact = int(np.count_nonzero(exact))
        kt = np.full(n, np.nan) if key_time is None else np.asarray(key_time, np.float64)
        committed = self.committed
        ex_run = tm_run = None
        if n_exact:
            idx = None if n_exact == n else np.flatnonzero(exact)
            k = keys if idx is None else keys[idx]
            lo, hi = _span(kt if idx is None else kt[idx])
            if not np.isfinite(lo):
                lo, hi = -np.inf, np.inf
            found = self.exact.query(k, lo, hi, False, lambda r, f: _set_contains(r.keys, k, f),
                                     committed)
            # the open run takes the new keys; a key seen earlier in the batch is a repeat
            new = int(len(k) - np.count_nonzero(found))
            d = found
            if new:
                ex_run = self.exact.open_run(new)
                repeat = np.zeros(len(k), np.bool_)
                ex_run.count += _set_insert(ex_run.keys, k, found, repeat)
                d = found | repeat
            if idx is None:
                dup = d
            else:
                dup[idx] = d
        if n_exact < n:
            idx = np.flatnonzero(~exact)
            k = keys[idx]
            t = np.where(time_source[idx] == TIME_NONE, np.nan, reception_time[idx]).astype(np.float64)
            lo, hi = _span(t)
            untimed = bool(np.isnan(t).any())
            window = self.window
            d = self.timed.query(k, lo - window, hi + window, untimed,
                                 lambda r, f: _window_contains(r.keys, r.times, r.passes, k, t,
                                                               pass_id, window, f), committed)
            d |= _window_repeats(k, t, window)
            dup[idx] = d
            new = int(len(k) - np.count_nonzero(d))
            if new:
                tm_run = self.timed.open_run(new)
                tm_run.count += _multi_insert(tm_run.keys, tm_run.times, tm_run.passes, k, t,
                                              np.full(len(k), pass_id, np.int32), d)
                keep_t = t[~d]
                tm_span = _span(keep_t)
                tm_untimed = bool(np.isnan(keep_t).any())
        keep = ~dup
        n_keep = int(np.count_nonzero(keep))
        src = [(rows[0], rows[1], rows[1] + n_keep)] if rows is not None else []
        if ex_run is not None:
            ex_keep = keep & exact
            if ex_keep.any():
                span = _span(kt[ex_keep]) if key_time is not None else (-np.inf, np.inf)
                self.exact.remember(ex_run, src, *span)
        if tm_run is not None:
            self.timed.remember(tm_run, src, *tm_span, untimed=tm_untimed)
        return dup

    def evict(self, committed: dict[str, int]) -> None:
        self.committed = dict(committed)
        self.exact.evict(self.committed)
        self.timed.evict(self.committed)

    def nbytes(self) -> int:
        return self.exact.nbytes() + self.timed.nbytes()


# -- tables ---------------------------------------------------------------------------------
def _fill_for(dtype: np.dtype):
    if dtype.kind == "f":
        return np.nan
    if dtype.kind == "c":
        return complex(np.nan, np.nan)
    return None


def _enum_reasons(dtype) -> np.dtype:
    return h5py.enum_dtype({name: i for i, name in enumerate(REJECT_REASONS)}, basetype=np.dtype(dtype))


@dataclass
class _Pending:
    columns: dict[str, np.ndarray]
    rows: int
    heap: np.ndarray | None = None  # this piece's bytes; its rows' raw_offset are local to it


class _Table:
    """A group of equal-length column datasets plus an optional flat uint8 heap."""

    def __init__(self, path: str, heap: str | None = None):
        self.path = path
        self.heap = heap
        self.datasets: dict[str, h5py.Dataset] | None = None  # handles, dropped on reopen
        self.pending: list[_Pending] = []
        self.pending_rows = 0
        self.pending_bytes = 0

    def add(self, columns: dict[str, np.ndarray], rows: int, heap: np.ndarray | None = None):
        if rows == 0:
            return
        self.pending.append(_Pending(columns, rows, heap))
        self.pending_rows += rows
        self.pending_bytes += sum(a.nbytes for a in columns.values()) + (0 if heap is None else heap.nbytes)

    def detach(self, group: h5py.Group) -> "_Table":
        """The pending rows as a table of their own (for a background flush); this one
        starts empty. Dataset handles are looked up here, in the calling thread."""
        if self.datasets is None:
            self.datasets = _columns(group)
            if self.heap is not None:
                self.datasets["\0heap"] = group[self.heap]
        snap = _Table(self.path, self.heap)
        snap.datasets = self.datasets
        snap.pending, snap.pending_rows, snap.pending_bytes = self.pending, self.pending_rows, self.pending_bytes
        self.pending, self.pending_rows, self.pending_bytes = [], 0, 0
        return snap

    def heap_bytes(self) -> int:
        return sum(len(p.heap) for p in self.pending if p.heap is not None) if self.heap is not None else 0

    def column_names(self) -> set[str]:
        names: set[str] = set()
        for p in self.pending:
            names.update(p.columns)
        return names

    def write(self, group: h5py.Group, rows: int, heap_len: int) -> tuple[int, int]:
        """Append the pending rows after ``rows`` (committed), heap after ``heap_len``."""
        if not self.pending:
            return rows, heap_len
        n = self.pending_rows
        names = self.column_names()
        if self.datasets is None:
            self.datasets = _columns(group)
            if self.heap is not None:
                self.datasets["\0heap"] = group[self.heap]
        dsets = self.datasets
        if self.heap is not None:
            shift = heap_len
            offsets = []
            for p in self.pending:
                offsets.append(p.columns["raw_offset"] + shift)
                shift += 0 if p.heap is None else len(p.heap)
            ds = dsets["\0heap"]
            ds.resize((shift,))
            pos = heap_len
            for p in self.pending:
                # piece by piece: no copy of a whole flush's bytes
                if p.heap is not None and len(p.heap):
                    ds[pos:pos + len(p.heap)] = p.heap
                    pos += len(p.heap)
            heap_len = shift
            for p, off in zip(self.pending, offsets):
                p.columns["raw_offset"] = off
        for name in names:
            ds = dsets[name]
            ds.resize((rows + n,) + ds.shape[1:])
            pos = rows
            for p in self.pending:
                # piece by piece, as the batches came: no copy of a whole flush
                a = p.columns.get(name)
                if a is not None:
                    if a.dtype != ds.dtype and ds.dtype.kind not in "SU":
                        a = a.astype(ds.dtype)
                    ds[pos:pos + p.rows] = a
                elif ds.fillvalue is not None:
                    ds[pos:pos + p.rows] = np.full((p.rows,) + ds.shape[1:], ds.fillvalue, ds.dtype)
                pos += p.rows
        # columns nobody wrote this time keep pace with fill values
        for name, ds in dsets.items():
            if name != "\0heap" and name not in names and ds.shape[0] < rows + n:
                ds.resize((rows + n,) + ds.shape[1:])
        self.pending.clear()
        self.pending_rows = 0
        self.pending_bytes = 0
        return rows + n, heap_len


def _columns(group: h5py.Group, prefix: str = "") -> dict[str, h5py.Dataset]:
    """Row-indexed datasets of a table group (fields/ included; heaps excluded)."""
    out = {}
    for name, obj in group.items():
        if isinstance(obj, h5py.Group):
            if name == "fields":
                out.update(_columns(obj, prefix + name + "/"))
            continue
        if obj.attrs.get("heap", False):
            continue
        out[prefix + name] = obj
    return out


def _mission_apids(mission) -> dict[int, str]:
    apids = getattr(mission, "apids", None) or {}
    out = {}
    for k, v in apids.items():
        out[int(getattr(v, "id", k))] = str(getattr(v, "name", f"apid_{k}"))
    return out


def _hdf5_name(name: str) -> str:
    name = name.replace("/", "_").strip() or "unnamed"
    return "_" + name if name in (".", "..") else name


def _report_value(report: dict, path: tuple) -> int:
    v: Any = report
    for k in path:
        if not isinstance(v, dict) or k not in v:
            return -1
        v = v[k]
    try:
        return int(v)
    except (TypeError, ValueError):
        return -1


def _report_sum(report: dict, key: str, sub: str | None) -> int:
    d = report.get(key)
    if not isinstance(d, dict):
        return -1
    total = 0
    for v in d.values():
        if sub is None:
            total += int(v) if isinstance(v, (int, float, np.integer)) else 0
        elif isinstance(v, dict):
            total += int(v.get(sub, 0) or 0)
    return total


def _os_error(path: Path, exc: BaseException, what: str) -> ArchiveError:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        reason = os.strerror(exc.errno)
    elif "No space" in reason or "File too large" in reason or "write failed" in reason:
        reason = f"write failed ({reason})"
    return ArchiveError(f"{path}: {what}: {reason}; packets of earlier flushes are safe")


# -- commit log -----------------------------------------------------------------------------
def last_commit(fl: np.ndarray) -> int:
    """Index of the last valid /flushes row (its flush_id is its index + 1), -1 if none.
    A row a crash left resized but unwritten reads as zeros and is skipped."""
    for i in range(len(fl) - 1, -1, -1):
        if int(fl[i, 0]) == i + 1:
            return i
    return -1


def pass_ranges(fl: np.ndarray, tables: list[str]) -> dict[int, dict[str, tuple[int, int]]]:
    """Rows of each table written by each pass: from the counts before its first commit
    to those of its last one. Linear in the commits (a pass's commits are contiguous)."""
    out: dict[int, dict[str, tuple[int, int]]] = {}
    if len(fl) == 0:
        return out
    pids = fl[:, 1]
    width = fl.shape[1]
    k = min(width - len(FLUSH_HEAD), len(tables))
    starts = np.concatenate([[0], np.flatnonzero(np.diff(pids)) + 1])
    ends = np.concatenate([starts[1:], [len(pids)]]) - 1
    firsts: dict[int, int] = {}
    lasts: dict[int, int] = {}
    for a, b in zip(starts.tolist(), ends.tolist()):
        p = int(pids[a])
        firsts.setdefault(p, a)
        lasts[p] = b
    zero = np.zeros(width, np.int64)
    for p, a in firsts.items():
        before = fl[a - 1] if a > 0 else zero
        last = fl[lasts[p]]
        out[p] = {t: (int(before[len(FLUSH_HEAD) + i]) if i < k else 0,
                      int(last[len(FLUSH_HEAD) + i]) if i < k else 0)
                  for i, t in enumerate(tables)}
    return out


# -- writer ---------------------------------------------------------------------------------
class _Flight:
    """One flush written by a thread of its own while decoding goes on: HDF5 writes,
    compression and H5Fflush release the GIL, and the decoder's numba kernels do too."""

    def __init__(self, work, committed: dict[str, int] | None):
        self.committed = committed
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(work,), name="groundseg-archive-flush")
        self.thread.start()

    def _run(self, work) -> None:
        try:
            work()
        except BaseException as exc:  # handed to the writer's thread at the next join
            self.error = exc

    def done(self) -> bool:
        return not self.thread.is_alive()

    def wait(self) -> BaseException | None:
        self.thread.join()
        return self.error


class ArchiveWriter:
    """Append passes of one mission to its archive.

    ``archive``: a directory (the file is ``<dir>/<mission.name>.h5``) or a ``.h5`` path.
    Raises :class:`ArchiveMismatchError` if the file belongs to another mission name or
    spacecraft ID, :class:`ArchiveLockedError` if another writer has it, and
    :class:`ArchiveError` if it is unreadable. Opening it recovers from a crashed writer.
    """

    def __init__(self, archive: str | os.PathLike, mission, *, flush_seconds: float = 2.0,
                 flush_packets: int = 100_000, flush_bytes: int = 64 << 20,
                 dedup_window: float = 10.0, dedup_memory: int = 64 << 20, dedup_piece: int = 1 << 19,
                 compression: dict | str | None = "default",
                 clock=time.time):
        self.mission = mission
        self.mission_name = str(mission.name)
        self.spacecraft_id = getattr(mission, "spacecraft_id", None)
        self.path = archive_path(archive, self.mission_name)
        self.flush_seconds = float(flush_seconds)
        self.flush_packets = int(flush_packets)
        self.flush_bytes = int(flush_bytes)
        self.dedup_window = float(dedup_window)
        self.dedup_budget = int(dedup_memory)
        self.dedup_piece = int(dedup_piece)
        self.compression = self._compression_settings(compression)
        self._clock = clock
        self._file: h5py.File | None = None
        self._swmr = False
        self._lock: WriterLock | None = None
        self._pass: dict | None = None
        self._tables: dict[str, _Table] = {}
        self._known: set[str] = set()
        self._dtypes: dict[tuple[str, str], np.dtype] = {}
        self._flight: _Flight | None = None
        self.recovered: dict = {}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArchiveError(f"{self.path.parent}: cannot create the archive directory: "
                               f"{exc.strerror or exc}") from None
        self._lock = WriterLock(self.path)
        try:
            if self.path.exists():
                self.recovered = self._open_existing()
            else:
                self._create()
        except BaseException:
            self._close_file()
            self._lock.release()
            raise

    # -- settings
    @staticmethod
    def _compression_settings(compression) -> dict:
        if compression == "default":
            return {k: dict(v) for k, v in DEFAULT_COMPRESSION.items()}
        if compression is None or compression == "none":
            return {k: {} for k in DEFAULT_COMPRESSION}
        if compression == "gzip":
            return {k: {"compression": "gzip", "compression_opts": 1,
                        "shuffle": k != "raw" and k != "text"} for k in DEFAULT_COMPRESSION}
        if isinstance(compression, dict):
            out = {k: dict(v) for k, v in DEFAULT_COMPRESSION.items()}
            out.update({k: dict(v or {}) for k, v in compression.items()})
            return out
        raise ValueError(f"compression must be 'default', 'gzip', None or a dict, not {compression!r}")

    # -- file handling
    def _h5open(self, mode: str) -> h5py.File:
        try:
            # the chunk cache is per open dataset and a pass keeps ~200 open: 2 MiB each
            # held ~400 MB at its fullest; appends need little more than the tail chunk
            return h5py.File(self.path, mode, libver=LIBVER, locking=False,
                             rdcc_nbytes=512 << 10, rdcc_nslots=1009)
        except OSError as exc:
            raise ArchiveError(f"{self.path}: cannot open the archive: {str(exc).splitlines()[0]}") from None

    def _close_file(self) -> None:
        if self._flight is not None:
            flight, self._flight = self._flight, None
            if flight.wait() is not None:
                self._broken = True
        for t in self._tables.values():
            t.datasets = None
        if self._file is not None:
            hook = sys.unraisablehook
            if getattr(self, "_broken", False):
                sys.unraisablehook = lambda *_: None  # h5py would print every failed release
            try:
                self._file.close()
            except Exception:
                pass
            finally:
                sys.unraisablehook = hook
            self._file = None
            self._swmr = False

    def _create(self) -> None:
        # built under a temporary name and renamed: a crash never leaves half an archive
        tmp = self.path.with_name(self.path.name + ".new")
        try:
            with h5py.File(tmp, "w", libver=LIBVER, locking=False) as f:
                f.attrs["mission_name"] = self.mission_name
                f.attrs["spacecraft_id"] = -1 if self.spacecraft_id is None else int(self.spacecraft_id)
                from groundseg import __version__
                f.attrs["groundseg_version"] = __version__
                f.attrs["schema_version"] = SCHEMA_VERSION
                f.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                f.attrs["layout_gen"] = 0
                fl = f.create_dataset("flushes", shape=(0, len(FLUSH_HEAD)), maxshape=(None, None),
                                      chunks=(256, 16), dtype="<i8")
                fl.attrs["columns"] = json.dumps(list(FLUSH_HEAD))
                fl.attrs["tables"] = json.dumps([])
                f.create_group(PACKETS_GROUP)
            os.replace(tmp, self.path)
        except OSError as exc:
            raise _os_error(self.path, exc, "cannot create the archive") from None
        self._file = self._h5open("a")
        self._load_state()

    def _open_existing(self) -> dict:
        recovered: dict = {}
        try:
            sb = read_superblock(self.path)
        except ArchiveError as exc:
            raise ArchiveError(f"{self.path}: not a groundseg archive ({exc})") from None
        except OSError as exc:
            raise ArchiveError(f"{self.path}: cannot read the archive: {exc.strerror or exc}") from None
        if sb["flags"]:
            # we hold the lock, so the writer that set these flags is dead
            try:
                recovered["cleared_flags"] = clear_status_flags(self.path)
            except OSError as exc:
                raise ArchiveError(f"{self.path}: cannot clear the stale flags of a crashed writer: "
                                   f"{exc.strerror or exc}") from None
        self._file = self._h5open("a")
        f = self._file
        if "schema_version" not in f.attrs or "flushes" not in f:
            raise ArchiveError(f"{self.path}: not a groundseg archive (no schema_version)")
        if int(f.attrs["schema_version"]) > SCHEMA_VERSION:
            raise ArchiveError(f"{self.path}: archive schema {int(f.attrs['schema_version'])} is newer "
                               f"than this groundseg understands ({SCHEMA_VERSION})")
        name = str(f.attrs.get("mission_name", ""))
        scid = int(f.attrs.get("spacecraft_id", -1))
        want = -1 if self.spacecraft_id is None else int(self.spacecraft_id)
        if name != self.mission_name or scid != want:
            raise ArchiveMismatchError(
                f"{self.path} is the archive of mission '{name}' (spacecraft {scid}), "
                f"not '{self.mission_name}' (spacecraft {want}); use another --archive directory")
        self._load_state()
        recovered.update(self._recover())
        return recovered

    def _load_state(self) -> None:
        f = self._file
        fl = f["flushes"]
        self._table_names: list[str] = json.loads(fl.attrs["tables"])
        self._layout_gen = int(f.attrs.get("layout_gen", 0))
        n = last_commit(fl[:]) + 1
        self._commits_on_disk = fl.shape[0]
        last = fl[n - 1] if n else np.zeros(len(FLUSH_HEAD) + len(self._table_names), np.int64)
        self._flush_id = n
        self._rows = {t: int(last[len(FLUSH_HEAD) + i]) if len(FLUSH_HEAD) + i < len(last) else 0
                      for i, t in enumerate(self._table_names)}
        self._heap_len = {}
        for t in self._table_names:
            g = f[t]
            self._heap_len[t] = self._heap_end(g, self._rows[t])
        self._apid_groups: dict[int, str] = {}
        if PACKETS_GROUP in f:
            for name, g in f[PACKETS_GROUP].items():
                if name != UNDECLARED and "apid" in g.attrs:
                    self._apid_groups[int(g.attrs["apid"])] = f"{PACKETS_GROUP}/{name}"

    @staticmethod
    def _heap_end(g: h5py.Group, rows: int) -> int:
        if "raw" in g and rows:
            off = int(g["raw_offset"][rows - 1])
            ln = int(g["length"][rows - 1])
            return off + ln
        if "text" in g:
            return int(g["text"].shape[0])  # written directly, never truncated
        return 0

    def _recover(self) -> dict:
        """Truncate tables to the last commit; mark a pass left open as interrupted."""
        f = self._file
        info: dict = {"truncated": {}, "interrupted_passes": []}
        fl = f["flushes"]
        if fl.shape[0] != self._flush_id:
            info["truncated"]["flushes"] = int(fl.shape[0] - self._flush_id)
            fl.resize((self._flush_id, fl.shape[1]))
        for t in self._table_names:
            g = f[t]
            rows = self._rows[t]
            for name, ds in _columns(g).items():
                if ds.shape[0] != rows:
                    info["truncated"][f"{t}/{name}"] = int(ds.shape[0] - rows)
                    ds.resize((rows,) + ds.shape[1:])
            if "raw" in g and g["raw"].shape[0] > self._heap_len[t]:
                g["raw"].resize((self._heap_len[t],))
        if "passes" in f:
            g = f["passes"]
            status = g["status"][:]
            for row in np.flatnonzero(status == PASS_OPEN):
                self._recompute_pass(int(row))
                g["status"][row] = PASS_INTERRUPTED
                info["interrupted_passes"].append(int(g["pass_id"][row]))
        if not info["truncated"]:
            del info["truncated"]
        if not info["interrupted_passes"]:
            del info["interrupted_passes"]
        if info:
            f.flush()
        return info

    # -- /flushes helpers
    def _pass_ranges(self) -> dict[int, dict[str, tuple[int, int]]]:
        fl = self._file["flushes"]
        n = last_commit(fl[:]) + 1
        return pass_ranges(fl[:n], self._table_names)

    def _recompute_pass(self, row: int) -> None:
        """Stats of an interrupted pass from what was committed."""
        f = self._file
        g = f["passes"]
        pid = int(g["pass_id"][row])
        ranges = self._pass_ranges().get(pid, {})
        packets = untimed = 0
        rt = [np.nan, np.nan]
        kt = [np.nan, np.nan]
        for t, (a, b) in ranges.items():
            if not t.startswith(PACKETS_GROUP + "/") or b <= a:
                continue
            tg = f[t]
            packets += b - a
            src = tg["time_source"][a:b]
            r = tg["reception_time"][a:b]
            o = tg["onboard_time"][a:b]
            untimed += int(np.count_nonzero(src == TIME_NONE))
            if np.isfinite(r).any():
                rt = [np.nanmin([rt[0], np.nanmin(r)]), np.nanmax([rt[1], np.nanmax(r)])]
            ex = src <= TIME_FRAME
            if ex.any():
                kt = [np.nanmin([kt[0], o[ex].min()]), np.nanmax([kt[1], o[ex].max()])]
        g["packets_archived"][row] = packets
        g["untimed_packets"][row] = untimed
        g["reception_start"][row], g["reception_end"][row] = rt
        g["onboard_start"][row], g["onboard_end"][row] = kt
        for t, col in (("frames", "frames_archived"), ("rejects", "rejects_archived")):
            a, b = ranges.get(t, (0, 0))
            g[col][row] = b - a
        fl = f["flushes"]
        if fl.shape[0]:
            g["ended_at"][row] = float(fl[fl.shape[0] - 1, 3]) / 1e3

    # -- layout (only while not in SWMR mode)
    def _structural(self) -> None:
        """Leave SWMR mode so groups and datasets can be created."""
        self._join()
        if self._swmr:
            self._flush(commit=True)
            self._close_file()
            self._file = self._h5open("a")
        self._layout_changed = True

    def _ds_kwargs(self, category: str, dtype: np.dtype, tail: tuple, rows: int) -> dict:
        dtype = np.dtype(dtype)
        opts = dict(self.compression.get(category, {}))
        if category == "header" and dtype == np.dtype("<u8"):
            opts = {}  # dedup keys are uniformly random: gzip would only cost time
        if opts.get("shuffle") and dtype.itemsize == 1:
            opts.pop("shuffle")
        # HDF5 allocates an uncompressed chunk whole: smaller chunks keep a small archive
        # small; compressed chunks shrink to their content, so they can be larger
        target = CHUNK_BYTES_COMPRESSED if opts.get("compression") else CHUNK_BYTES
        if category in ("raw", "text"):
            chunks = (target,)
        else:
            per_row = max(1, int(np.prod(tail, dtype=np.int64)) * max(1, dtype.itemsize))
            chunk_rows = max(256, min(CHUNK_ROWS, target // per_row))
            chunks = (chunk_rows,) + tuple(tail)
        kw = dict(chunks=chunks, maxshape=(None,) + tuple(tail))
        kw.update(opts)
        return kw

    def _need_dataset(self, group_path: str, name: str, dtype, tail: tuple, category: str,
                      table: str | None = None, attrs: dict | None = None, heap: bool = False) -> None:
        """Create ``group_path/name`` unless it exists; a new column gets the table's
        committed row count, filled (NaN for floats) where no value was ever written."""
        key = group_path + "/" + name
        if key in self._known:
            return
        f = self._file
        if group_path in f and name in f[group_path]:
            self._known.add(key)
            return
        self._structural()
        g = self._file.require_group(group_path)
        rows = 0 if (heap or table is None) else self._rows.get(table, 0)
        dtype = np.dtype(dtype)
        h5type = dtype
        if (name == "reason" and group_path == "rejects") or (name == "status" and group_path == "frames"):
            if dtype.kind == "u":
                h5type = _enum_reasons(dtype)
        fill = _fill_for(dtype)
        kw = self._ds_kwargs(category, dtype, tail, rows)
        if group_path == "passes" and not heap:
            kw["chunks"] = (256,)  # a few rows per pass, not millions
        if fill is not None:
            kw["fillvalue"] = fill
        ds = g.create_dataset(name, shape=(rows,) + tuple(tail), dtype=h5type, **kw)
        for t in self._tables.values():
            if group_path == t.path or group_path.startswith(t.path + "/"):
                t.datasets = None
        if heap:
            ds.attrs["heap"] = True
        elif dtype.kind == "f" and (name.endswith("_time") or name in _TIME_COLUMNS):
            ds.attrs["units"] = "s since 1970-01-01T00:00:00Z (UTC, UNIX time); NaN unknown"
        for k, v in (attrs or {}).items():
            ds.attrs[k] = v
        self._known.add(key)

    def _register_table(self, path: str, heap: str | None) -> _Table:
        if path not in self._tables:
            self._tables[path] = _Table(path, heap)
        if path not in self._table_names:
            self._structural()
            self._table_names.append(path)
            self._rows[path] = 0
            self._heap_len[path] = 0
            fl = self._file["flushes"]
            fl.resize((fl.shape[0], len(FLUSH_HEAD) + len(self._table_names)))
            fl.attrs["tables"] = json.dumps(self._table_names)
        return self._tables[path]

    def _ensure_table_columns(self, path: str, specs: dict[str, tuple], category: str,
                              heap: str | None = None, group_attrs: dict | None = None) -> _Table:
        """specs: name -> (dtype, tail shape[, attrs]); missing ones are created."""
        table = self._register_table(path, heap)
        if path not in self._known:
            if path not in self._file:
                self._structural()
                self._file.require_group(path)
            g = self._file[path]
            for k, v in (group_attrs or {}).items():
                if k not in g.attrs:
                    self._structural()
                    self._file[path].attrs[k] = v
            self._known.add(path)
        for name, spec in specs.items():
            dtype, tail = spec[0], spec[1]
            attrs = spec[2] if len(spec) > 2 else None
            cat = "fields" if name.startswith("fields/") else category
            gp, _, leaf = (path + "/" + name).rpartition("/")
            self._need_dataset(gp, leaf, dtype, tail, cat, table=path, attrs=attrs)
        if heap is not None:
            self._need_dataset(path, heap, np.uint8, (), "raw" if heap == "raw" else "text", heap=True)
        return table

    def _ensure_passes(self) -> _Table:
        specs = {n: (np.dtype(t), ()) for n, t in ALL_PASS_COLUMNS}
        t = self._ensure_table_columns("passes", specs, "header")
        # source, mission and report texts: a heap written directly, outside the row buffer
        self._need_dataset("passes", "text", np.uint8, (), "text", heap=True)
        return t

    def _packet_specs(self) -> dict:
        specs = {n: (PACKET_DTYPE[n], ()) for n in PACKET_DTYPE.names}
        specs.update({n: (np.dtype(t), ()) for n, t in PACKET_EXTRA_COLUMNS})
        return specs

    def _ensure_packet_table(self, apid: int | None, name: str | None = None) -> str:
        if apid is None or apid not in self._apid_groups and name is None:
            path = f"{PACKETS_GROUP}/{UNDECLARED}"
            self._ensure_table_columns(path, self._packet_specs(), "header", heap="raw",
                                       group_attrs={"description": "packets of APIDs the mission "
                                                    "file did not declare (raw)"})
            return path
        path = self._apid_groups.get(apid)
        if path is None:
            base = _hdf5_name(name)
            path = f"{PACKETS_GROUP}/{base}"
            existing = self._file.get(path)
            if base == UNDECLARED or (existing is not None and int(existing.attrs.get("apid", -1)) != apid):
                path = f"{PACKETS_GROUP}/{base}_{apid}"
            self._apid_groups[apid] = path
        self._ensure_table_columns(path, self._packet_specs(), "header", heap="raw",
                                   group_attrs={"apid": int(apid), "name": str(name or path)})
        return path

    def _ensure_frames(self, dtype: np.dtype) -> _Table:
        specs = {"pass_id": (np.dtype("<u4"), ())}
        specs.update({n: (dtype[n].base, dtype[n].shape) for n in dtype.names})
        return self._ensure_table_columns("frames", specs, "header")

    def _reject_specs(self, dtype: np.dtype) -> dict:
        specs = {"pass_id": (np.dtype("<u4"), ())}
        for n in dtype.names:
            if n == "offset":
                continue
            specs[n] = (dtype[n].base, dtype[n].shape)
        specs["length"] = (np.dtype("<i8"), ())
        specs["raw_offset"] = (np.dtype("<i8"), ())
        return specs

    def _ensure_rejects(self, dtype: np.dtype) -> _Table:
        t = self._ensure_table_columns("rejects", self._reject_specs(dtype), "header", heap="raw")
        g = self._file["rejects"]
        if "reasons" not in g.attrs:
            self._structural()
            self._file["rejects"].attrs["reasons"] = json.dumps(list(REJECT_REASONS))
        return t

    def _enter_swmr(self) -> None:
        if self._swmr or getattr(self, "_in_append", False):
            return
        f = self._file
        if getattr(self, "_layout_changed", False):
            self._layout_gen += 1
            f.attrs["layout_gen"] = self._layout_gen
            self._layout_changed = False
        try:
            f.swmr_mode = True
        except (OSError, ValueError) as exc:
            raise ArchiveError(f"{self.path}: cannot start SWMR writing: {exc}") from None
        self._swmr = True

    # -- passes
    def begin_pass(self, source: str, frame_dtype: np.dtype | None = None,
                   reject_dtype: np.dtype | None = None) -> int:
        """Start a pass; create everything it may write; return its pass id."""
        if self._file is None:
            raise ArchiveError(f"{self.path}: the writer is closed")
        if self._pass is not None:
            raise ArchiveError(f"{self.path}: pass {self._pass['pass_id']} is still open")
        from groundseg.link import records
        frame_dtype = np.dtype(frame_dtype if frame_dtype is not None else
                               getattr(records, "FRAME_RECORD_DTYPE", None) or [("reception_time", "<f8")])
        reject_dtype = np.dtype(reject_dtype if reject_dtype is not None else
                                getattr(records, "REJECT_DTYPE", None) or
                                [("reason", "u1"), ("vcid", "<i2"), ("apid", "<i2"),
                                 ("reception_time", "<f8")])
        try:
            self._ensure_passes()
            self._ensure_frames(frame_dtype)
            self._ensure_rejects(reject_dtype)
            self._ensure_packet_table(None)
            for apid, name in sorted(_mission_apids(self.mission).items()):
                self._ensure_packet_table(apid, name)
            g = self._file["passes"]
            rows = self._rows["passes"]
            pass_id = int(g["pass_id"][rows - 1]) + 1 if rows else 1
            now = self._clock()
            text = self._file["passes/text"]
            heap = [np.frombuffer(str(source).encode(), np.uint8)]
            src_off = self._heap_len["passes"]
            mtext = str(getattr(self.mission, "source_text", "") or "")
            m_off = src_off + len(heap[0])
            m_len = len(mtext.encode())
            if rows and int(g["mission_length"][rows - 1]) == m_len:
                prev_off = int(g["mission_offset"][rows - 1])
                if bytes(text[prev_off:prev_off + m_len]) == mtext.encode():
                    m_off = prev_off  # same mission file as last pass: share its text
                else:
                    heap.append(np.frombuffer(mtext.encode(), np.uint8))
            else:
                heap.append(np.frombuffer(mtext.encode(), np.uint8))
            row = {n: np.zeros(1, t) for n, t in ALL_PASS_COLUMNS}
            for n, _ in REPORT_COLUMNS:
                row[n][:] = -1
            for n, _, _ in REPORT_SUMS:
                row[n][:] = -1
            for n in ("ended_at", "reception_start", "reception_end", "onboard_start", "onboard_end"):
                row[n][:] = np.nan
            row["pass_id"][:] = pass_id
            row["status"][:] = PASS_OPEN
            row["started_at"][:] = now
            row["source_offset"][:] = src_off
            row["source_length"][:] = len(heap[0])
            row["mission_offset"][:] = m_off
            row["mission_length"][:] = m_len
            row["report_offset"][:] = -1
            hb = np.concatenate(heap)
            # the text heap is appended here directly: begin_pass is committed at once
            text.resize((src_off + len(hb),))
            if len(hb):
                text[src_off:src_off + len(hb)] = hb
            self._heap_len["passes"] = src_off + len(hb)
            self._tables["passes"].add(row, 1)
            self._pass = {"pass_id": pass_id, "row": rows, "packets": 0, "duplicates": 0,
                          "untimed": 0, "frames": 0, "rejects": 0,
                          "rt": [np.nan, np.nan], "kt": [np.nan, np.nan],
                          "last_flush": self._clock(), "frame_dtype": frame_dtype,
                          "reject_dtype": reject_dtype}
            self._flush(commit=True)
            self._enter_swmr()
            self._dedup = Deduplicator(self.dedup_window, self.dedup_budget, self.dedup_piece,
                                       loader=self._load_run)
            self._dedup.committed = dict(self._rows)
            self._loaded: set[int] = set()
            self._register_prior_passes(exclude=pass_id)
        except (OSError, RuntimeError) as exc:
            raise _os_error(self.path, exc, "cannot start a pass") from None
        return pass_id

    def _register_prior_passes(self, exclude: int) -> None:
        """Earlier passes' rows become unloaded dedup runs (pieces of ``piece`` rows) with the
        pass's time spans: read only when a batch overlaps them."""
        g = self._file["passes"]
        rows = self._rows["passes"]
        if rows == 0:
            return
        cols = {n: g[n][:rows] for n in ("pass_id", "reception_start", "reception_end",
                                          "onboard_start", "onboard_end", "untimed_packets",
                                          "packets_archived")}
        ranges = self._pass_ranges()
        piece = self._dedup.exact.piece
        for i in range(rows):
            pid = int(cols["pass_id"][i])
            if pid == exclude or cols["packets_archived"][i] == 0:
                continue
            on = (float(cols["onboard_start"][i]), float(cols["onboard_end"][i]))
            rx = (float(cols["reception_start"][i]), float(cols["reception_end"][i]))
            untimed = bool(cols["untimed_packets"][i] > 0)
            for t, (a, b) in ranges.get(pid, {}).items():
                if not t.startswith(PACKETS_GROUP + "/") or b <= a:
                    continue
                for s0 in range(a, b, piece):
                    self._dedup.add_unloaded([(t, s0, min(b, s0 + piece), pid)], on, rx, untimed)

    def _load_run(self, run, timed: bool):
        """Read an evicted or never-loaded dedup run back from the archive."""
        self._join()
        keys, times, passes = [], [], []
        lo, hi = np.nan, np.nan
        untimed = False
        f = self._file
        for src in run.sources:
            t, a, b = src[0], src[1], src[2]
            if len(src) > 3:
                self._loaded.add(int(src[3]))
            g = f[t]
            k = g["dedup_key"][a:b]
            ts = g["time_source"][a:b]
            sel = ts > TIME_FRAME if timed else ts <= TIME_FRAME
            if not sel.any():
                continue
            keys.append(k[sel])
            if timed:
                rt = np.where(ts[sel] == TIME_NONE, np.nan, g["reception_time"][a:b][sel])
                times.append(rt)
                passes.append(g["pass_id"][a:b][sel].astype(np.int64))
                span = _span(rt)
                untimed |= bool(np.isnan(rt).any())
            else:
                span = _span(g["onboard_time"][a:b][sel])
            if np.isfinite(span[0]):
                lo = span[0] if not np.isfinite(lo) else min(lo, span[0])
                hi = span[1] if not np.isfinite(hi) else max(hi, span[1])
        k = np.concatenate(keys) if keys else np.zeros(0, np.uint64)
        if timed:
            return (k, np.concatenate(times) if times else np.zeros(0),
                    np.concatenate(passes) if passes else np.zeros(0, np.int64), lo, hi, untimed)
        return k, None, None, lo, hi, False

    def end_pass(self, report: dict | None = None, complete: bool = True) -> dict:
        """Flush, then close the pass row: status, end time, the report's counts and JSON."""
        if report is not None and hasattr(report, "to_dict"):
            report = report.to_dict()
        if self._pass is None:
            raise ArchiveError(f"{self.path}: no pass is open")
        p = self._pass
        try:
            self._flush(commit=False)
            g = self._file["passes"]
            row = p["row"]
            g["status"][row] = PASS_COMPLETE if complete else PASS_INCOMPLETE
            g["ended_at"][row] = self._clock()
            if report is not None:
                for n, path in REPORT_COLUMNS:
                    g[n][row] = _report_value(report, path)
                for n, key, sub in REPORT_SUMS:
                    g[n][row] = _report_sum(report, key, sub)
                js = np.frombuffer(json.dumps(report, sort_keys=True, default=_json_default).encode(),
                                   np.uint8)
                text = self._file["passes/text"]
                off = self._heap_len["passes"]
                text.resize((off + len(js),))
                text[off:off + len(js)] = js
                self._heap_len["passes"] = off + len(js)
                g["report_offset"][row] = off
                g["report_length"][row] = len(js)
            self._commit()
        except (OSError, RuntimeError) as exc:
            self._pass = None
            self._broken = True
            raise _os_error(self.path, exc, "cannot end the pass") from None
        info = {"pass_id": p["pass_id"], "path": str(self.path), "packets": p["packets"],
                "duplicates": p["duplicates"], "frames": p["frames"], "rejects": p["rejects"],
                "status": PASS_STATUS[PASS_COMPLETE if complete else PASS_INCOMPLETE]}
        if self.recovered.get("interrupted_passes"):
            info["recovered_passes"] = ",".join(map(str, self.recovered["interrupted_passes"]))
        self._pass = None
        return info

    def abort_pass(self) -> None:
        """End the open pass as incomplete (keeping what was flushed) and close the writer.
        Never raises: it runs while another exception propagates."""
        try:
            if self._pass is not None:
                try:
                    self._join()
                    self.end_pass(None, complete=False)
                except ArchiveError:
                    if getattr(self, "_broken", False):
                        raise
                    # the buffered batch cannot be written (disk full): drop it, keep the rest
                    for t in self._tables.values():
                        t.pending.clear()
                        t.pending_rows = t.pending_bytes = 0
                    self._pass["packets"] = self._pass.get("flushed_packets", 0)
                    self.end_pass(None, complete=False)
        except Exception:
            self._pass = None
        finally:
            self.close()

    def close(self) -> None:
        """End an open pass as incomplete, close the file, release the lock."""
        try:
            if self._pass is not None and self._file is not None:
                self.end_pass(None, complete=False)
        finally:
            self._close_file()
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def __enter__(self) -> "ArchiveWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort_pass()
        else:
            self.close()

    # -- appending
    def append(self, frames: np.ndarray | None = None, decoded: dict | None = None,
               rejects=None, reject_data: np.ndarray | None = None,
               reject_offsets: np.ndarray | None = None,
               packets: PacketBatch | None = None) -> None:
        """Buffer a batch; flush when ``flush_seconds`` passed or the buffer is full.

        ``frames``: frame records (one structured row per frame, any dtype).
        ``decoded``: ``{apid: DecodedApid}`` from ``telemetry.decode``.
        ``packets``: a ``PacketBatch`` archived without decoded fields.
        ``rejects``: a ``RejectBatch``, or structured records with ``reject_data`` and either
        ``offset``/``length`` fields or ``reject_offsets`` (n + 1).
        """
        if self._pass is None:
            raise ArchiveError(f"{self.path}: append outside a pass (call begin_pass first)")
        try:
            # SWMR resumes once per call: datasets that several APIDs of one batch bring
            # (their first decoded fields) are created in one non-SWMR session, not one each
            self._in_append = True
            try:
                if frames is not None and len(frames):
                    self._append_frames(np.asarray(frames))
                if rejects is not None and len(rejects):
                    self._append_rejects(rejects, reject_data, reject_offsets)
                if decoded:
                    items = decoded.values() if isinstance(decoded, dict) else decoded
                    for d in items:
                        if len(d.packets):
                            self._append_decoded(d)
                if packets is not None and len(packets):
                    self._append_packets(packets)
            finally:
                self._in_append = False
            self._enter_swmr()
            self.poll()
        except (OSError, RuntimeError) as exc:
            raise _os_error(self.path, exc, "cannot write the archive") from None

    def poll(self) -> None:
        """Flush if due; a live receiver may call this when no data arrive."""
        if self._pass is None:
            return
        pend_rows = sum(t.pending_rows for t in self._tables.values() if t.path.startswith(PACKETS_GROUP))
        pend_bytes = sum(t.pending_bytes for t in self._tables.values())
        if self._flight is not None and self._flight.done():
            self._join()
        time_due = self._clock() - self._pass["last_flush"] >= self.flush_seconds
        if time_due or pend_rows >= self.flush_packets or pend_bytes >= self.flush_bytes:
            # flush_seconds bounds how stale a reader's view is: a flush due by time is
            # committed before this returns; one due by size (bulk replay) is written by a
            # background thread while decoding goes on, committed before the next flush
            try:
                self._flush(commit=True, background=not time_due)
            except (OSError, RuntimeError) as exc:
                self._broken = True
                raise _os_error(self.path, exc, "cannot write the archive") from None

    def flush(self) -> None:
        """Write what is buffered and commit it (readers see it; it survives kill -9)."""
        try:
            self._flush(commit=True)
        except (OSError, RuntimeError) as exc:
            self._broken = True
            raise _os_error(self.path, exc, "cannot write the archive") from None

    def _append_frames(self, frames: np.ndarray) -> None:
        if frames.dtype.names is None:
            raise ValueError("frames must be a structured array of frame records")
        table = self._ensure_frames(frames.dtype)
        cols = {n: np.ascontiguousarray(frames[n]) for n in frames.dtype.names}
        cols["pass_id"] = np.full(len(frames), self._pass["pass_id"], np.uint32)
        table.add(cols, len(frames))
        self._pass["frames"] += len(frames)
        self._enter_swmr()

    def _append_rejects(self, rejects, data, offsets) -> None:
        records = getattr(rejects, "records", rejects)
        if data is None:
            data = getattr(rejects, "data", None)
        records = np.asarray(records)
        if records.dtype.names is None:
            raise ValueError("rejects must be structured records (see REJECT_DTYPE)")
        n = len(records)
        data = np.zeros(0, np.uint8) if data is None else np.ascontiguousarray(data, np.uint8).ravel()
        if offsets is not None:
            offsets = np.asarray(offsets, np.int64)
            if len(offsets) != n + 1:
                raise ValueError(f"reject_offsets must have {n + 1} entries, not {len(offsets)}")
            start, length = offsets[:-1], offsets[1:] - offsets[:-1]
        elif "offset" in records.dtype.names and "length" in records.dtype.names:
            start = records["offset"].astype(np.int64)
            length = records["length"].astype(np.int64)
        else:
            start = np.zeros(n, np.int64)
            length = np.zeros(n, np.int64)
        if np.any(length < 0) or np.any(start < 0) or np.any(start + length > len(data)):
            raise ValueError("reject offsets point outside reject_data")
        table = self._ensure_rejects(records.dtype)
        local = np.zeros(n, np.int64)
        np.cumsum(length[:-1], out=local[1:])
        pos = np.repeat(start - local, length) + np.arange(int(length.sum()), dtype=np.int64)
        cols = {nm: np.ascontiguousarray(records[nm]) for nm in records.dtype.names if nm != "offset"}
        cols["length"] = length
        cols["raw_offset"] = local
        cols["pass_id"] = np.full(n, self._pass["pass_id"], np.uint32)
        table.add(cols, n, data[pos])
        self._pass["rejects"] += n
        self._enter_swmr()

    def _append_packet_rejects(self, batch: PacketBatch, reason: str) -> None:
        from groundseg.link import records
        dtype = getattr(records, "REJECT_DTYPE", None)
        if dtype is None or self._pass is None:
            return
        n = len(batch)
        rec = np.zeros(n, dtype)
        rec["reason"] = REJECT_REASONS.index(reason)
        rec["vcid"] = batch.header["vcid"]
        rec["apid"] = batch.header["apid"].astype(np.int64)
        rec["reception_time"] = batch.header["reception_time"]
        rec["offset"] = batch.offsets[:-1] - batch.offsets[0]
        rec["length"] = batch.offsets[1:] - batch.offsets[:-1]
        self._append_rejects(rec, batch.data[batch.offsets[0]:batch.offsets[-1]], None)

    def _append_vca_records(self, records: np.ndarray, data: np.ndarray) -> None:
        n = len(records)
        length = records["length"].astype(np.int64)
        width = data.shape[1] if data.ndim == 2 else 0
        mask = np.arange(width)[None, :] < length[:, None]
        heap = data[mask] if width else np.zeros(0, np.uint8)
        local = np.zeros(n, np.int64)
        np.cumsum(length[:-1], out=local[1:])
        specs = {"pass_id": (np.dtype("<u4"), ()), "raw_offset": (np.dtype("<i8"), ())}
        specs.update({nm: (records.dtype[nm].base, records.dtype[nm].shape) for nm in records.dtype.names})
        table = self._ensure_table_columns("vca", specs, "header", heap="raw")
        cols = {nm: np.ascontiguousarray(records[nm]) for nm in records.dtype.names}
        cols["raw_offset"] = local
        cols["pass_id"] = np.full(n, self._pass["pass_id"], np.uint32)
        table.add(cols, n, np.ascontiguousarray(heap, np.uint8))
        self._enter_swmr()

    def append_vca(self, vca) -> None:
        """Frames of VCs whose data is "vca": their data fields, archived per frame in /vca."""
        if self._pass is None:
            raise ArchiveError(f"{self.path}: append outside a pass (call begin_pass first)")
        if vca is None or len(vca) == 0:
            return
        try:
            self._append_vca_records(np.asarray(vca.records), np.asarray(vca.data, np.uint8))
            self.poll()
        except (OSError, RuntimeError) as exc:
            raise _os_error(self.path, exc, "cannot write the archive") from None

    def _append_packets(self, packets: PacketBatch) -> None:
        apids = packets.header["apid"]
        declared = _mission_apids(self.mission)
        for a in np.unique(apids):
            sel = packets.select(apids == a) if len(np.unique(apids)) > 1 else packets
            self._archive_packets(int(a), declared.get(int(a)), sel,
                                  np.full(len(sel), np.nan), {}, {}, {})

    def _append_decoded(self, d) -> None:
        refused = getattr(d, "rejected", None)
        if refused is not None and len(refused):
            # packets telemetry could not decode (length off its definition): /rejects
            self._append_packet_rejects(refused, "packet_length")
        declared = _mission_apids(self.mission)
        apid = int(d.apid)
        onboard = np.asarray(d.onboard_time, np.float64) if d.onboard_time is not None else \
            np.full(len(d.packets), np.nan)
        if np.any(d.packets.header["apid"] != apid):
            # a DecodedApid carries one APID; anything else is routed by its own header
            for a in np.unique(d.packets.header["apid"]):
                m = d.packets.header["apid"] == a
                self._archive_packets(int(a), declared.get(int(a)), d.packets.select(m), onboard[m],
                                      {k: np.asarray(v)[m] for k, v in d.fields.items()} if a == apid else {},
                                      d.units, d.calibration)
            return
        self._archive_packets(apid, declared.get(apid), d.packets, onboard,
                              d.fields or {}, d.units or {}, d.calibration or {})

    def _archive_packets(self, apid: int, name: str | None, batch: PacketBatch, onboard: np.ndarray,
                         fields: dict, units: dict, calibration: dict) -> None:
        n = len(batch)
        h = batch.header
        p = self._pass
        if len(onboard) != n:
            raise ValueError(f"APID {apid}: {len(onboard)} onboard times for {n} packets")
        frame_time = h["frame_time"].astype(np.float64) if "frame_time" in h.dtype.names else np.full(n, np.nan)
        rt = h["reception_time"].astype(np.float64) if "reception_time" in h.dtype.names else np.full(n, np.nan)
        src = np.full(n, TIME_NONE, np.uint8)
        src[np.isfinite(rt)] = TIME_RECEPTION
        src[np.isfinite(frame_time)] = TIME_FRAME
        src[np.isfinite(onboard)] = TIME_ONBOARD
        ktime = np.where(np.isfinite(onboard), onboard, frame_time)
        exact = src <= TIME_FRAME
        keys = packet_keys(batch.data, batch.offsets, h["apid"], h["seq_count"], ktime, exact)
        path = self._ensure_packet_table(apid if name is not None else None, name)
        # fields checked and their datasets made before dedup remembers these packets
        specs = {}
        for fname in list(fields):
            arr = np.asarray(fields[fname])
            if arr.dtype.kind in "OU":
                arr = arr.astype("S")
            fields[fname] = arr
            attrs = {"units": str(units.get(fname, "") or ""),
                     "calibration": str(calibration.get(fname, "") or "")}
            specs["fields/" + _hdf5_name(fname)] = (arr.dtype, arr.shape[1:], attrs)
        table = self._ensure_table_columns(path, specs, "header", heap="raw") if specs else self._tables[path]
        fcols = {}
        for fname, arr in fields.items():
            col = "fields/" + _hdf5_name(fname)
            dt = self._dtypes.get((path, col))
            if dt is None:
                dt = self._dtypes[(path, col)] = self._file[path][col].dtype
            if arr.dtype != dt:
                if not np.can_cast(arr.dtype, dt, "same_kind") and not (
                        arr.dtype.kind in "iub" and dt.kind == "f"):
                    raise ArchiveError(f"{self.path}: field {fname!r} of APID {apid} is {dt} in "
                                       f"this archive but {arr.dtype} now; rename the field")
                arr = arr.astype(dt)
            if len(arr) != n:
                raise ValueError(f"APID {apid}: field {fname!r} has {len(arr)} values for {n} packets")
            fcols[col] = arr
        first = self._rows[path] + table.pending_rows  # where these rows will land
        dup = self._dedup.check(keys, src, rt, p["pass_id"], key_time=ktime, rows=(path, first))
        nd = int(dup.sum())
        p["duplicates"] += nd
        if nd == n:
            return
        if nd:
            keep = ~dup
            batch = batch.select(keep)
            h = batch.header
            onboard, src, keys, ktime, rt = onboard[keep], src[keep], keys[keep], ktime[keep], rt[keep]
            fcols = {k: v[keep] for k, v in fcols.items()}
            exact = src <= TIME_FRAME
        m = len(batch)
        cols = {nm: np.ascontiguousarray(h[nm]) for nm in h.dtype.names}
        cols["pass_id"] = np.full(m, p["pass_id"], np.uint32)
        cols["onboard_time"] = np.where(np.isfinite(onboard), onboard, ktime).astype(np.float64)
        cols["time_source"] = src
        cols["dedup_key"] = keys
        cols["raw_offset"] = batch.offsets[:-1] - batch.offsets[0]
        cols["length"] = (batch.offsets[1:] - batch.offsets[:-1]).astype(np.int32)
        cols.update(fcols)
        data = batch.data[batch.offsets[0]:batch.offsets[-1]]
        table.add(cols, m, np.ascontiguousarray(data, np.uint8))
        p["packets"] += m
        p["untimed"] += int(np.count_nonzero(src == TIME_NONE))
        p["rt"] = _merge_span(p["rt"], _span(rt))
        p["kt"] = _merge_span(p["kt"], _span(ktime[exact]))
        self._enter_swmr()

    # -- flush and commit
    def _check_space(self) -> None:
        """Refuse a flush the disk (or RLIMIT_FSIZE) cannot hold, before HDF5 writes a byte:
        a write failing inside HDF5 leaves its caches in a state it cannot close cleanly."""
        need = sum(t.pending_bytes for t in self._tables.values()) + SPACE_MARGIN
        try:
            st = os.statvfs(self.path.parent)
            free = st.f_bavail * st.f_frsize
        except OSError:
            return
        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if soft != resource.RLIM_INFINITY:
            try:
                free = min(free, soft - os.path.getsize(self.path))
            except OSError:
                pass
        if free < need:
            raise ArchiveError(f"{self.path}: disk full: {max(free, 0) / 1e6:.1f} MB free, the next "
                               f"flush needs {need / 1e6:.1f} MB; packets of earlier flushes are safe")

    def _join(self) -> None:
        """Wait for the flush in flight; its failure is raised here (the file is then left
        for the next writer to recover); its committed rows let dedup drop their keys."""
        flight = self._flight
        if flight is None:
            return
        self._flight = None
        exc = flight.wait()
        if exc is not None:
            self._broken = True
            if isinstance(exc, (OSError, RuntimeError)):
                raise _os_error(self.path, exc, "cannot write the archive") from None
            raise exc
        if flight.committed is not None and self._pass is not None and getattr(self, "_dedup", None) is not None:
            self._dedup.evict(flight.committed)  # committed rows can be read back: their keys may go

    def _flush(self, commit: bool, background: bool = False) -> None:
        """Write the buffered rows (and commit them). Everything the write needs is decided
        here: row counts, the pass row, the commit row; with ``background`` a thread of its
        own writes it while the caller goes on (one flush in flight at a time)."""
        self._join()
        f = self._file
        if any(t.pending for t in self._tables.values()):
            self._check_space()
        jobs = []
        for path, table in self._tables.items():
            if table.pending:
                rows, heap_len = self._rows[path], self._heap_len.get(path, 0)
                snap = table.detach(f[path])
                jobs.append((path, snap, rows, heap_len))
                self._rows[path] = rows + snap.pending_rows
                self._heap_len[path] = heap_len + snap.heap_bytes()
        pass_row = None
        if self._pass is not None and "passes" in self._rows:
            row = self._pass["row"]
            if row < self._rows["passes"]:
                p = self._pass
                pass_row = (row, {"packets_archived": p["packets"], "duplicates_skipped": p["duplicates"],
                                  "untimed_packets": p["untimed"], "frames_archived": p["frames"],
                                  "rejects_archived": p["rejects"],
                                  "reception_start": p["rt"][0], "reception_end": p["rt"][1],
                                  "onboard_start": p["kt"][0], "onboard_end": p["kt"][1]})
                p["last_flush"] = self._clock()
        commit_row = self._commit_row() if commit else None
        if self._pass is not None:
            self._pass["flushed_packets"] = self._pass["packets"]

        def work():
            for path, snap, rows, heap_len in jobs:
                snap.write(f[path], rows, heap_len)
            if pass_row is not None:
                g = f["passes"]
                for name, v in pass_row[1].items():
                    g[name][pass_row[0]] = v
            if commit_row is not None:
                self._write_commit(commit_row)
        committed = dict(self._rows) if commit else None
        if background and jobs:
            self._flight = _Flight(work, committed)
            return
        work()
        if committed is not None and self._pass is not None and getattr(self, "_dedup", None) is not None:
            self._dedup.evict(committed)  # committed rows can be read back: their keys may go

    def _commit_row(self) -> np.ndarray:
        """The /flushes row that commits the row counts as they will be once written."""
        self._flush_id += 1
        row = np.zeros(len(FLUSH_HEAD) + len(self._table_names), np.int64)
        row[0] = self._flush_id
        row[1] = self._pass["pass_id"] if self._pass is not None else 0
        row[2] = self._layout_gen + (1 if getattr(self, "_layout_changed", False) else 0)
        row[3] = int(time.time() * 1e3)
        for i, t in enumerate(self._table_names):
            row[len(FLUSH_HEAD) + i] = self._rows.get(t, 0)
        return row

    def _write_commit(self, row: np.ndarray) -> None:
        """Make the data durable first, then record the row counts that readers trust."""
        f = self._file
        f.flush()
        fl = f["flushes"]
        n = fl.shape[0]
        if fl.shape[1] < len(row):
            fl.resize((n, len(row)))
        fl.resize((n + 1, fl.shape[1]))
        fl[n, :len(row)] = row
        f.flush()

    def _commit(self) -> None:
        """Commit what is written (nothing may be in flight: the commit counts it)."""
        self._join()
        self._write_commit(self._commit_row())
        if self._pass is not None and getattr(self, "_dedup", None) is not None:
            self._dedup.evict(self._rows)  # committed rows can be read back: their keys may go


def _span(t: np.ndarray) -> tuple[float, float]:
    t = np.asarray(t, np.float64)
    fin = t[np.isfinite(t)]
    if fin.size == 0:
        return (np.nan, np.nan)
    return (float(fin.min()), float(fin.max()))


def _merge_span(a, b) -> list[float]:
    lo = np.nanmin([a[0], b[0]]) if np.isfinite([a[0], b[0]]).any() else np.nan
    hi = np.nanmax([a[1], b[1]]) if np.isfinite([a[1], b[1]]).any() else np.nan
    return [float(lo), float(hi)]


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
