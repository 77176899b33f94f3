"""Packet deduplication: which packets are already archived (pure numpy and numba kernels).

Key (APID, sequence count, onboard time, content hash) as a 64-bit hash per packet; keys
live in time-partitioned open-addressing hash tables with a memory budget. Reading keys
back from the archive is the caller's ``loader``: nothing here knows the file format.
The rules are in ``docs/archive.md`` (Deduplication).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from groundseg._numba import kernel
from groundseg.archive.schema import TIME_FRAME, TIME_NONE

__all__ = ["packet_keys", "time_key", "Deduplicator", "span", "merge_span", "bucket_ids"]


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


#: bucket id of keys with no time (and of exact keys checked without a key time)
_NO_BUCKET = np.iinfo(np.int64).min


@kernel
def _bucket_ids(t, seconds, none):
    out = np.empty(t.shape[0], np.int64)
    for i in range(t.shape[0]):
        v = t[i]
        out[i] = np.int64(np.floor(v / seconds)) if np.isfinite(v) else none
    return out


def bucket_ids(t: np.ndarray, seconds: float) -> np.ndarray:
    """Time bucket of each time (``floor(t / seconds)``); NaN and infinities -> _NO_BUCKET."""
    return _bucket_ids(np.ascontiguousarray(t, np.float64), float(seconds), _NO_BUCKET)


def _groups(b: np.ndarray):
    """(bucket, indices) of each distinct bucket in ``b``, indices in arrival order."""
    if len(b) == 0:
        return
    first = b[0]
    if (b == first).all():
        yield int(first), None
        return
    order = np.argsort(b, kind="stable")
    sb = b[order]
    cuts = np.flatnonzero(sb[1:] != sb[:-1]) + 1
    for lo, hi in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [len(sb)]])):
        yield int(sb[lo]), order[lo:hi]


@dataclass
class _Run:
    """Dedup keys of some archived (or about to be archived) packet rows, as a hash table.

    ``keys``: the table's slots (None while evicted or never read); timed runs also hold
    ``times`` (reception time, NaN for none) and ``passes`` slot by slot. ``sources``: the
    (table, first row, end row[, pass]) they come from, so an evicted run can be read back.
    ``lo``/``hi``: span of the times its keys are matched on (key time for exact keys,
    reception time otherwise); NaN while unknown (an earlier pass not yet read: its
    pass-level span stands in). ``untimed``: holds packets with no time. ``bucket``: the
    time bucket every key of the run falls in (None: an earlier pass's piece, not yet
    read and split by bucket). A run of one bucket whose sources also hold rows of other
    buckets is read back filtered to its own span (``exact_span``)."""
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
    bucket: int | None = None
    idx: int = -1             # position in the index's run list (its span arrays)
    pending: bool = False     # took keys in the check under way, their rows not yet in sources

    @property
    def loaded(self) -> bool:
        return self.keys is not None

    @property
    def nbytes(self) -> int:
        if self.keys is None:
            return 0
        return self.keys.nbytes + (0 if self.times is None else self.times.nbytes + self.passes.nbytes)


class _KeyIndex:
    """Dedup keys as hash-table runs partitioned by time bucket, within a memory budget.

    Every run holds keys of one time bucket only (``bucket`` seconds of key time or
    reception time), so its span stays narrow whatever order the packets come in; a query
    searches only the runs whose span overlaps the packets asked about (found through
    span arrays, not a walk over the runs), so a pass whose time runs forward touches only
    its current buckets, and a capture that jumps in time touches only the buckets it
    lands in. New keys go into the pass's open run of their bucket until it holds
    ``piece`` keys. Past the budget, the least recently used runs whose rows are in the file
    are dropped and read back from the archive if a later query overlaps them: memory
    stays bounded however long the pass or large the archive."""

    def __init__(self, timed: bool, budget: int, piece: int, loader=None, bucket: float = 60.0):
        self.timed = timed          # window keys: carry reception time and pass
        self.budget = budget
        self.piece = piece
        self.bucket = float(bucket)
        self.runs: list[_Run] = []
        self.live: list[_Run] = []          # loaded runs
        self.open: dict[int, _Run] = {}     # bucket -> the current pass's open run
        self.clock = 0
        self.loader = loader         # (run, timed) -> (keys, times, passes, untimed)
        self._spans = None           # (lo, hi, untimed, unknown) arrays over self.runs
        # a run with no rows to read back may have been unloaded since the last pruning:
        # looking for one scans every run, thousands in a large archive, at every eviction
        self._dead = False
        self._recent = 0             # keys the bucket last inserted into holds (open_run)

    def __len__(self) -> int:
        return sum(r.count for r in self.live)

    def nbytes(self) -> int:
        return sum(r.nbytes for r in self.live)

    def _empty(self, cap: int) -> tuple:
        return (np.zeros(cap, np.uint64), np.zeros(cap, np.float64) if self.timed else None,
                np.zeros(cap, np.int32) if self.timed else None)

    # -- the run list and its span arrays
    def _add(self, r: _Run) -> _Run:
        r.idx = len(self.runs)
        self.runs.append(r)
        if r.loaded:
            self.live.append(r)
        self._spans = None
        return r

    def _arrays(self):
        if self._spans is None:
            n = len(self.runs)
            lo = np.fromiter((r.lo for r in self.runs), np.float64, n)
            hi = np.fromiter((r.hi for r in self.runs), np.float64, n)
            unt = np.fromiter((r.untimed for r in self.runs), np.bool_, n)
            unknown = np.fromiter((not r.exact_span for r in self.runs), np.bool_, n)
            self._spans = (lo, hi, unt, unknown)
        return self._spans

    def _set_span(self, r: _Run) -> None:
        if self._spans is not None:
            lo, hi, unt, unknown = self._spans
            lo[r.idx], hi[r.idx], unt[r.idx], unknown[r.idx] = r.lo, r.hi, r.untimed, not r.exact_span

    def _candidates(self, lo: float, hi: float, untimed: bool) -> list[_Run]:
        """Runs that may hold a match for keys spanning [lo, hi] (``untimed``: some have
        no time), oldest first."""
        if not self.runs:
            return []
        rlo, rhi, runt, unknown = self._arrays()
        m = np.zeros(len(rlo), np.bool_)
        if untimed:
            m |= runt
        if not np.isnan(lo):
            nan = np.isnan(rlo)
            with np.errstate(invalid="ignore"):
                m |= ~nan & (rlo <= hi) & (lo <= rhi)
            m |= nan & unknown  # unknown span: look (an empty-span run never matches)
        return [self.runs[i] for i in np.flatnonzero(m)]

    def _overlaps(self, r: _Run, lo: float, hi: float, untimed: bool) -> bool:
        if untimed and r.untimed:
            return True
        if np.isnan(lo):
            return False
        if np.isnan(r.lo):
            return not r.exact_span
        return r.lo <= hi and lo <= r.hi

    # -- inserting
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

    def open_run(self, extra: int, bucket: int = _NO_BUCKET) -> _Run:
        """The run of ``bucket`` new keys go to, with room for ``extra`` more."""
        r = self.open.get(bucket)
        # a run takes keys while its table for ``piece`` keys has room: up to 1.5 piece
        limit = int(_MAX_LOAD * _table_size(self.piece))
        if r is None or not (r.open and r.loaded) or (r.count and r.count + extra > limit):
            # a new bucket's run is sized for as many keys as the last bucket took: a pass
            # moves from bucket to bucket at a steady rate, and a run grown by doubling
            # from one batch's keys rehashed its keys about twice over
            size = max(extra, min(limit, self._recent))
            if r is not None and r.open and r.loaded:
                # the bucket has filled a run already: size the next one for a full run
                size = max(extra, limit)
            if r is not None:
                r.open = False
            keys, times, passes = self._empty(_table_size(size))
            r = self._add(_Run(keys, times, passes, [], np.nan, np.nan, False, self.clock,
                               exact_span=True, open=True, bucket=bucket))
            self.open[bucket] = r
        self._reserve(r, extra)
        r.used = self.clock
        self._recent = r.count + extra
        return r

    def remember(self, r: _Run, sources, lo, hi, untimed=False) -> None:
        """Rows inserted into ``r`` came from ``sources`` and span [lo, hi]."""
        r.pending = False
        for src in sources:
            # contiguous rows of one table extend that table's last range
            for j in range(len(r.sources) - 1, max(-1, len(r.sources) - 64), -1):
                last = r.sources[j]
                if len(last) == 3 and last[0] == src[0]:
                    if last[2] == src[1]:
                        r.sources[j] = (last[0], last[1], src[2])
                        break
                    r.sources.append(src)
                    break
            else:
                r.sources.append(src)
        if np.isfinite(lo) or np.isinf(lo):
            r.lo = lo if np.isnan(r.lo) else min(r.lo, lo)
            r.hi = hi if np.isnan(r.hi) else max(r.hi, hi)
        r.untimed = r.untimed or untimed
        self._set_span(r)

    def add_unloaded(self, sources, lo, hi, untimed) -> None:
        self._add(_Run(None, None, None, list(sources), lo, hi, untimed, 0))
        self._dead = self._dead or not sources

    # -- reading back
    def _fill(self, r: _Run, keys, times, passes) -> None:
        n = len(keys)
        r.keys, r.times, r.passes = self._empty(_table_size(n))
        skip = np.zeros(n, np.bool_)
        if self.timed:
            r.count = _multi_insert(r.keys, r.times, r.passes, np.asarray(keys, np.uint64),
                                    np.asarray(times, np.float64), np.asarray(passes, np.int32), skip)
        else:
            r.count = _set_insert(r.keys, np.asarray(keys, np.uint64), skip, np.zeros(n, np.bool_))

    def _ensure_loaded(self, r: _Run) -> list[_Run]:
        """Read ``r`` back; an earlier pass's piece is split into one run per bucket
        (returned; ``r`` itself then stays empty and is dropped)."""
        if r.loaded:
            return [r]
        keys, times, passes, untimed = self.loader(r, self.timed)
        times = np.asarray(times, np.float64)
        if r.bucket is not None or len(keys) == 0:
            self._fill(r, keys, times, passes)
            if r.bucket is None:   # an empty piece
                r.lo, r.hi = span(times)
                r.untimed = untimed
            r.exact_span = True
            self._set_span(r)
            self.live.append(r)
            return [r]
        out = []
        b = bucket_ids(times, self.bucket) if self.timed or np.isfinite(times).any() else \
            np.full(len(keys), _NO_BUCKET, np.int64)
        for bk, idx in _groups(b):
            k = keys if idx is None else keys[idx]
            t = times if idx is None else times[idx]
            p = None if passes is None else (passes if idx is None else passes[idx])
            lo, hi = span(t)
            if bk == _NO_BUCKET and not self.timed:
                lo, hi = -np.inf, np.inf
            part = _Run(None, None, None, list(r.sources), lo, hi, bool(np.isnan(t).any()),
                        self.clock, exact_span=True, bucket=bk)
            self._fill(part, k, t, p)
            out.append(self._add(part))
        r.sources = []   # nothing left to read: dropped at the next eviction
        self._dead = True
        r.lo = r.hi = np.nan
        r.exact_span = True
        r.untimed = False
        self._set_span(r)
        return out

    def query(self, q, lo, hi, untimed, check, written, skip: _Run | None = None) -> np.ndarray:
        """OR of ``check(run, found)`` over the runs overlapping [lo, hi] (or holding untimed
        packets when ``untimed``), loading evicted ones as needed; ``skip`` (the run the
        caller inserts into next) is neither searched nor evicted."""
        found = np.zeros(len(q), np.bool_)
        self.clock += 1
        if skip is not None:
            skip.used = self.clock
        for r0 in self._candidates(lo, hi, untimed):
            if r0 is skip:
                continue
            for r in self._ensure_loaded(r0):
                if not self._overlaps(r, lo, hi, untimed):  # its true span is known now
                    continue
                r.used = self.clock
                if r.count:
                    check(r, found)
            self.evict(written, keep=skip)
        return found

    def evict(self, written: dict[str, int], keep: _Run | None = None) -> None:
        total = self.nbytes()
        if total > self.budget:
            for r in sorted(self.live, key=lambda r: r.used):
                if total <= self.budget:
                    break
                # keys taken in the check under way have no rows to read back from yet
                if r is keep or r.pending:
                    continue
                if all(src[2] <= written.get(src[0], 0) for src in r.sources):
                    self._dead = self._dead or not r.sources
                    total -= r.nbytes
                    r.keys = r.times = r.passes = None
                    r.count = 0
                    if r.open:
                        r.open = False
                        if self.open.get(r.bucket) is r:
                            del self.open[r.bucket]
            self.live = [r for r in self.live if r.loaded]
        # runs that never received a row have nothing to read back
        if self._dead:
            self._dead = False
            if any(not r.loaded and not r.sources for r in self.runs):
                self.runs = [r for r in self.runs if r.loaded or r.sources]
                for i, r in enumerate(self.runs):
                    r.idx = i
                self._spans = None


class Deduplicator:
    """Which packets are already archived.

    Key (APID, sequence count, onboard time, content hash). Onboard time is the
    packet's secondary-header time, else its frame's insert-zone time: such keys
    match exactly (to the microsecond). Packets with neither match on reception
    time within ``window`` seconds; packets with no time at all match only a
    packet of another pass. Keys are kept in hash-table runs partitioned by time
    bucket (``bucket`` seconds); only runs whose span overlaps the packets checked are
    searched, and past ``budget`` bytes the least recently used runs are dropped and
    read back from the archive when needed (``loader``), so memory stays bounded.
    """

    def __init__(self, window: float = 10.0, budget: int = 64 << 20, piece: int = 1 << 19, loader=None,
                 bucket: float = 60.0):
        self.window = float(window)
        self.bucket = float(bucket)
        self.exact = _KeyIndex(False, budget // 2, piece, loader, bucket)
        self.timed = _KeyIndex(True, budget // 2, piece, loader, bucket)
        self.written: dict[str, int] = {}
        self._busy = False   # inside check(): an eviction from outside must wait

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
        # reading a run back joins the archive's flush in flight, whose completion reports
        # rows written (evict): evicting then, in the middle of a query, dropped the run
        # being inserted into and renumbered the runs under the query's feet
        self._busy = True
        try:
            return self._check(keys, time_source, reception_time, pass_id, key_time, rows)
        finally:
            self._busy = False

    def _check(self, keys, time_source, reception_time, pass_id: int, key_time=None,
               rows: tuple[str, int] | None = None) -> np.ndarray:
        keys = np.ascontiguousarray(keys, np.uint64)
        time_source = np.asarray(time_source)
        n = len(keys)
        dup = np.zeros(n, bool)
        exact = time_source <= TIME_FRAME
        n_exact = int(np.count_nonzero(exact))
        kt = np.full(n, np.nan) if key_time is None else np.asarray(key_time, np.float64)
        written = self.written
        inserted = []   # (index, run, positions in the batch, times) remembered at the end
        if n_exact:
            ex_idx = np.arange(n) if n_exact == n else np.flatnonzero(exact)
            kx = kt[ex_idx]
            b = bucket_ids(kx, self.bucket) if key_time is not None else \
                np.full(len(ex_idx), _NO_BUCKET, np.int64)
            for bk, gi in _groups(b):
                pos = ex_idx if gi is None else ex_idx[gi]
                k = keys[pos]
                if bk == _NO_BUCKET:
                    lo, hi = -np.inf, np.inf
                else:
                    lo, hi = span(kt[pos])
                # the bucket's open run is not searched but inserted into: the insert finds
                # the keys it holds already (one probe per key, not two)
                run = self.exact.open_run(len(k), bk)
                found = self.exact.query(k, lo, hi, False,
                                         lambda r, f, k=k: _set_contains(r.keys, k, f), written,
                                         skip=run)
                repeat = np.zeros(len(k), np.bool_)
                added = _set_insert(run.keys, k, found, repeat)
                run.count += added
                d = found | repeat
                if added:
                    run.pending = True
                    inserted.append((self.exact, run, pos[~d], bk))
                dup[pos] = d
        if n_exact < n:
            idx = np.flatnonzero(~exact)
            k_all = keys[idx]
            t_all = np.where(time_source[idx] == TIME_NONE, np.nan, reception_time[idx]).astype(np.float64)
            window = self.window
            rep = _window_repeats(k_all, t_all, window)
            for bk, gi in _groups(bucket_ids(t_all, self.bucket)):
                k = k_all if gi is None else k_all[gi]
                t = t_all if gi is None else t_all[gi]
                pos = idx if gi is None else idx[gi]
                lo, hi = span(t)
                untimed = bk == _NO_BUCKET
                d = self.timed.query(k, lo - window, hi + window, untimed,
                                     lambda r, f, k=k, t=t: _window_contains(
                                         r.keys, r.times, r.passes, k, t, pass_id, window, f),
                                     written)
                d |= rep if gi is None else rep[gi]
                new = int(len(k) - np.count_nonzero(d))
                if new:
                    run = self.timed.open_run(new, bk)
                    run.count += _multi_insert(run.keys, run.times, run.passes, k, t,
                                               np.full(len(k), pass_id, np.int32), d)
                    run.pending = True
                    inserted.append((self.timed, run, pos[~d], bk))
                dup[pos] = d
        keep = ~dup
        if inserted:
            # kept rows land at rows[1] on, in batch order: a run's rows are the range
            # between its first and last kept row (rows of other buckets in between are
            # filtered out by time when it is read back)
            rank = np.cumsum(keep) - 1
            for index, run, kept, bk in inserted:
                if rows is not None:
                    src = [(rows[0], rows[1] + int(rank[kept[0]]), rows[1] + int(rank[kept[-1]]) + 1)]
                else:
                    src = []
                if index is self.exact:
                    s = span(kt[kept]) if bk != _NO_BUCKET else (-np.inf, np.inf)
                    index.remember(run, src, *s)
                else:
                    t = np.where(time_source[kept] == TIME_NONE, np.nan,
                                 reception_time[kept]).astype(np.float64)
                    index.remember(run, src, *span(t), untimed=bool(np.isnan(t).any()))
        return dup

    def evict(self, written: dict[str, int]) -> None:
        # in place: a query under way evicts with the newest counts at its next safe point
        self.written.clear()
        self.written.update(written)
        if self._busy:   # the query evicts at its own safe points, with these counts
            return
        self.exact.evict(self.written)
        self.timed.evict(self.written)

    def nbytes(self) -> int:
        return self.exact.nbytes() + self.timed.nbytes()


@kernel
def _span(t):
    lo = np.inf
    hi = -np.inf
    for i in range(t.shape[0]):
        v = t[i]
        if np.isfinite(v):
            lo = min(lo, v)
            hi = max(hi, v)
    return lo, hi


def span(t: np.ndarray) -> tuple[float, float]:
    """(min, max) of the finite values, (NaN, NaN) if none."""
    lo, hi = _span(np.ascontiguousarray(t, np.float64))
    if lo > hi:
        return (np.nan, np.nan)
    return (float(lo), float(hi))


def merge_span(a, b) -> list[float]:
    """The span covering spans ``a`` and ``b`` (NaN ends are unknown)."""
    # plain floats: called per APID and batch, where numpy's per-call cost is the cost
    los = [float(x) for x in (a[0], b[0]) if not math.isnan(x)]
    his = [float(x) for x in (a[1], b[1]) if not math.isnan(x)]
    return [min(los) if los else math.nan, max(his) if his else math.nan]

