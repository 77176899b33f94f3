"""Frame synchronisation on the Attached Sync Marker (CCSDS 131.0-B-4 section 9).

Every codeblock (CADU = ASM + codeblock) is preceded by the ASM, 0x1ACFFC1D
for uncoded and Reed-Solomon links. The receiver sees packed hard bits, MSB
first, at any bit alignment, and BPSK's phase ambiguity may invert every bit
(from any point on). The synchroniser finds the marker, corrects polarity per
codeblock, strips the marker and shifts the codeblock to byte alignment.

State machine (131.0-B-4 leaves the strategy to the receiver; this is the
usual search / check / lock / flywheel one):

- search: slide over the bits; a candidate is a position where the marker or
  its complement is within ``max_bit_errors`` (Hamming distance). With
  ``verify`` the candidate needs the next marker one CADU later (within
  ``spacing_tolerance`` bits) before it is accepted (check state).
- lock: jump to the predicted position, accept the best match within
  +-``spacing_tolerance`` bits (bit slips and 2072/2073-bit spacing).
  On a miss, a verified marker (one whose successor also matches) from a
  few bits before the predicted position up to the next one resynchronises
  at once (garbage between CADUs, slips beyond tolerance; counted as a lock
  loss). Otherwise the codeblock at the predicted position is delivered
  anyway (flywheel) up to ``flywheel`` consecutive misses; one more loses
  lock and search resumes just before the missed marker.

All of this runs in one numba kernel per chunk; :class:`FrameSync` only keeps
the unconsumed tail bytes and a few integers of state between chunks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from groundseg import _reuse
from groundseg._numba import kernel
from groundseg.stage import Stats
from groundseg.coding.frame_batch import SYNC_FLYWHEEL, SYNC_LOCKED, SYNC_SEARCH

CCSDS_ASM = 0x1ACFFC1D

SYNC_META_DTYPE = np.dtype([
    ("bit_position", "<i8"),
    ("inverted", "?"),
    ("asm_bit_errors", "i1"),
    ("sync_state", "u1"),
])

# Zero bytes after the valid data in every kernel buffer, so marker windows
# near the end read without bounds tests (the extra bits are masked off).
_PAD = 16

# Indices into the int64 state array carried between chunks.
_MODE, _POS, _MISSES, _PREV_END, _INV = 0, 1, 2, 3, 4
_CODEBLOCKS, _LOCK_LOSSES, _INVERTED, _DISCARDED, _TRUNCATED = 5, 6, 7, 8, 9
_FLYWHEELED, _LOCKS = 10, 11
_STATE_LEN = 16


@dataclass
class SyncBatch:
    """Codeblocks found in one chunk: ``(n, codeblock_length)`` uint8 plus ``(n,)`` SYNC_META_DTYPE."""
    codeblocks: np.ndarray
    meta: np.ndarray

    def __len__(self) -> int:
        return self.codeblocks.shape[0]

    @classmethod
    def empty(cls, codeblock_length: int) -> "SyncBatch":
        return cls(np.zeros((0, codeblock_length), np.uint8), np.zeros(0, SYNC_META_DTYPE))


# ---------------------------------------------------------------- kernels

if numba.config.DISABLE_JIT:
    def _popcount(x):
        return int(x).bit_count()
else:
    @kernel
    def _popcount(x):
        # SWAR popcount; LLVM turns it into one popcnt instruction.
        x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
        x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
        x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
        return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@kernel
def _window(buf, p):
    """The 64 bits starting at bit ``p`` (needs 9 readable bytes from p // 8)."""
    k = p >> 3
    s = np.uint64(p & 7)
    w = np.uint64(0)
    for i in range(8):
        w = (w << np.uint64(8)) | np.uint64(buf[k + i])
    if s != np.uint64(0):
        w = (w << s) | (np.uint64(buf[k + 8]) >> (np.uint64(8) - s))
    return w


@kernel
def _errors(buf, p, asm, asm_bits):
    """Bit errors of the marker at ``p``: (true polarity, inverted polarity)."""
    m = _window(buf, p) >> np.uint64(64 - asm_bits)
    d = _popcount(m ^ asm)
    return d, asm_bits - d


@kernel
def _scan(buf, p, nbits, asm, asm_bits, max_err):
    """First bit position >= p where the marker or its complement is within
    max_err bit errors and fits before nbits; -1 if none."""
    last = nbits - asm_bits
    if p > last:
        return -1
    shift = np.uint64(64 - asm_bits)
    k = p >> 3
    w = np.uint64(0)
    for i in range(8):
        w = (w << np.uint64(8)) | np.uint64(buf[k + i])
    s = p & 7
    while True:
        nxt = np.uint64(buf[k + 8])
        while s < 8:
            q = k * 8 + s
            if q > last:
                return -1
            if s == 0:
                v = w
            else:
                us = np.uint64(s)
                v = (w << us) | (nxt >> (np.uint64(8) - us))
            d = _popcount((v >> shift) ^ asm)
            if d <= max_err or asm_bits - d <= max_err:
                return q
            s += 1
        s = 0
        k += 1
        w = (w << np.uint64(8)) | nxt


@kernel
def _best_near(buf, e, tol, nbits, asm, asm_bits):
    """Best marker match within e +- tol (offset 0 first, then -1, +1, ...).

    Returns (position, errors, inverted); errors 999 when no position fits."""
    best_p = e
    best_d = 999
    best_inv = False
    for j in range(2 * tol + 1):
        off = (j + 1) // 2
        if j % 2 == 1:
            off = -off
        p = e + off
        if p < 0 or p + asm_bits > nbits:
            continue
        d, di = _errors(buf, p, asm, asm_bits)
        if d < best_d:
            best_p, best_d, best_inv = p, d, False
        if di < best_d:
            best_p, best_d, best_inv = p, di, True
    return best_p, best_d, best_inv


@kernel
def _verified_in(buf, start, stop, nbits, final, cadu, asm, asm_bits, max_err, tol):
    """First q in [start, stop) where the marker matches and the next marker one
    CADU later (+-tol) matches too; -1 if none, -2 if more data is needed to decide."""
    q = max(start, 0)
    limit = min(nbits, stop - 1 + asm_bits)
    while True:
        q = _scan(buf, q, limit, asm, asm_bits, max_err)
        if q < 0:
            if stop - 1 + asm_bits > nbits and not final:
                return -2
            return -1
        if q + cadu + tol + asm_bits > nbits:
            if not final:
                return -2
            q += 1
            continue
        _, d2, _ = _best_near(buf, q + cadu, tol, nbits, asm, asm_bits)
        if d2 <= max_err:
            return q
        q += 1


@kernel
def _emit(buf, p, asm_bits, length, inv, errs, state, base, n, out, pos, inverted, errors, states, st):
    c = p + asm_bits
    k = c >> 3
    s = c & 7
    # Each output byte is the middle of a 16-bit big-endian window; kept in
    # uint16 lanes so LLVM vectorises it (uint8 shifts widen to int64).
    mask = np.uint16(0xFF) if inv else np.uint16(0)
    sh = np.uint16(8 - s)
    src = buf[k:k + length + 1]
    row = out[n]
    for i in range(length):
        w = (np.uint16(src[i]) << np.uint16(8)) | np.uint16(src[i + 1])
        row[i] = np.uint8(((w >> sh) ^ mask) & np.uint16(0xFF))
    pos[n] = base + p
    inverted[n] = inv
    errors[n] = min(errs, 127)
    states[n] = state
    st[_CODEBLOCKS] += 1
    if inv:
        st[_INVERTED] += 1
    if state == 2:
        st[_FLYWHEELED] += 1
    start = base + p
    if start > st[_PREV_END]:
        st[_DISCARDED] += start - st[_PREV_END]
    st[_PREV_END] = start + asm_bits + 8 * length
    st[_INV] = 1 if inv else 0


@kernel
def _sync_chunk(buf, nbits, base, final, asm, asm_bits, length, max_err, tol, back, flywheel,
                verify, strong, st, out, pos, inverted, errors, states):
    """Run the state machine over buf[:nbits] (bit ``base`` of the stream is buf's first bit).

    ``back``: how far before a missed marker the resync looks (bits deleted by a slip).

    Returns the number of codeblocks written to out/pos/inverted/errors/states;
    st carries the state (absolute bit positions) in and out."""
    cadu = asm_bits + 8 * length
    n = 0
    while True:
        if st[_MODE] == 1:
            e = st[_POS] - base
            if e + tol + cadu > nbits and not final:
                break
            p, d, inv = _best_near(buf, e, tol, nbits, asm, asm_bits)
            if d <= max_err:
                if p + cadu > nbits:
                    st[_TRUNCATED] += 1          # final: marker seen, codeblock cut off
                    st[_POS] = base + nbits
                    break
                ep, einv, eerr, estate = p, inv, d, 1
            else:
                if e + cadu > nbits:             # final: too little left to be a codeblock
                    st[_POS] = base + nbits
                    break
                # Before flywheeling: a verified marker before the next predicted
                # one means garbage or a slip beyond tolerance; resynchronise there.
                r = _verified_in(buf, e - back, e + cadu - tol, nbits, final, cadu, asm, asm_bits,
                                 max_err, tol)
                if r == -2:
                    break
                if r >= 0:
                    d, di = _errors(buf, r, asm, asm_bits)
                    ep, einv, eerr, estate = r, di < d, min(d, di), 0
                    st[_LOCK_LOSSES] += 1
                    st[_LOCKS] += 1
                else:
                    st[_MISSES] += 1
                    if st[_MISSES] > flywheel:
                        st[_LOCK_LOSSES] += 1
                        st[_MODE] = 0
                        st[_MISSES] = 0
                        st[_POS] = base + max(e - tol, 0)
                        continue
                    held = st[_INV] == 1
                    d, di = _errors(buf, e, asm, asm_bits)
                    ep, einv, eerr, estate = e, held, di if held else d, 2
        else:
            p = st[_POS] - base
            q = _scan(buf, p, nbits, asm, asm_bits, max_err)
            if q < 0:
                st[_POS] = base + max(p, nbits - asm_bits + 1)
                break
            d, di = _errors(buf, q, asm, asm_bits)
            inv = di < d
            dmin = di if inv else d
            accept = True
            if q + cadu + (tol + asm_bits if verify else 0) > nbits:
                if not final:
                    st[_POS] = base + q
                    break
                if q + cadu <= nbits:
                    accept = (not verify) or dmin <= strong
                elif dmin <= (max_err if not verify else strong):
                    st[_TRUNCATED] += 1
                    st[_POS] = base + nbits
                    break
                else:
                    accept = False
            elif verify:
                _, d2, _ = _best_near(buf, q + cadu, tol, nbits, asm, asm_bits)
                accept = d2 <= max_err
            if not accept:
                st[_POS] = base + q + 1
                continue
            ep, einv, eerr, estate = q, inv, dmin, 0
            st[_LOCKS] += 1
            st[_MODE] = 1
        # The one call site of _emit: every inlined copy of its loop costs seconds of compile.
        _emit(buf, ep, asm_bits, length, einv, eerr, estate, base, n, out, pos, inverted, errors,
              states, st)
        n += 1
        if estate != 2:
            st[_MISSES] = 0
        st[_POS] = base + ep + cadu
    return n


@kernel
def _find_some(buf, p, nbits, asm, asm_bits, max_err, pos, inv, err):
    """Markers from bit p on, at most pos.size of them; returns (count, where to go on)."""
    n = 0
    while n < pos.size:
        q = _scan(buf, p, nbits, asm, asm_bits, max_err)
        if q < 0:
            return n, nbits
        d, di = _errors(buf, q, asm, asm_bits)
        pos[n] = q
        inv[n] = di < d
        err[n] = min(d, di)
        n += 1
        p = q + 1
    return n, p


# ---------------------------------------------------------------- Python API

def _as_bytes(chunk, what: str) -> np.ndarray:
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        return np.frombuffer(chunk, np.uint8)
    a = np.asarray(chunk)
    if a.dtype != np.uint8 or a.ndim != 1:
        raise ValueError(f"{what}: expected a 1-D uint8 array of packed bits, got {a.dtype} with {a.ndim} dimensions")
    return a


def _check_asm(asm: int, asm_bits: int) -> None:
    if not 8 <= asm_bits <= 64:
        raise ValueError(f"asm_bits must be between 8 and 64, got {asm_bits}")
    if not 0 <= asm < (1 << asm_bits):
        raise ValueError(f"asm 0x{asm:X} does not fit in {asm_bits} bits")


def _padded(*parts: np.ndarray) -> tuple[np.ndarray, int]:
    nbytes = sum(p.size for p in parts)
    buf = np.empty(nbytes + _PAD, np.uint8)
    at = 0
    for part in parts:
        buf[at:at + part.size] = part
        at += part.size
    buf[nbytes:] = 0
    return buf, nbytes


def attach_asm(codeblocks, asm: int = CCSDS_ASM, asm_bits: int = 32) -> np.ndarray:
    """The encoder: each row of ``codeblocks`` preceded by the marker, all rows concatenated.

    A 1-D array is one codeblock. ``asm_bits`` must be a multiple of 8 here.
    """
    _check_asm(asm, asm_bits)
    if asm_bits % 8:
        raise ValueError(f"attach_asm: asm_bits must be a multiple of 8, got {asm_bits}")
    cb = np.asarray(codeblocks)
    if cb.dtype != np.uint8:
        raise ValueError(f"attach_asm: expected uint8 codeblocks, got dtype {cb.dtype}")
    if cb.ndim == 1:
        cb = cb.reshape(1, -1)
    if cb.ndim != 2:
        raise ValueError(f"attach_asm: expected a 1-D or 2-D array, got {cb.ndim} dimensions")
    marker = np.frombuffer(asm.to_bytes(asm_bits // 8, "big"), np.uint8)
    out = np.empty((cb.shape[0], marker.size + cb.shape[1]), np.uint8)
    out[:, :marker.size] = marker
    out[:, marker.size:] = cb
    return out.reshape(-1)


def find_asm(bits_bytes, asm: int = CCSDS_ASM, max_bit_errors: int = 4,
             asm_bits: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every bit position where the marker (or its complement) is within ``max_bit_errors``.

    Returns ``(positions int64, inverted bool, errors int8)``; positions are bit
    indices of the marker's first bit from the start of ``bits_bytes``
    (packed bits, MSB first). Overlapping near-matches are all reported.
    """
    _check_asm(asm, asm_bits)
    if not 0 <= max_bit_errors < asm_bits // 2:
        raise ValueError(f"max_bit_errors must be in 0..{asm_bits // 2 - 1}, got {max_bit_errors}")
    data = _as_bytes(bits_bytes, "find_asm")
    buf, nbytes = _padded(data)
    nbits = nbytes * 8
    parts = []
    p = 0
    cap = 1024
    while p < nbits:
        pos = np.empty(cap, np.int64)
        inv = np.empty(cap, np.bool_)
        err = np.empty(cap, np.int8)
        n, p = _find_some(buf, p, nbits, np.uint64(asm), asm_bits, max_bit_errors, pos, inv, err)
        parts.append((pos[:n], inv[:n], err[:n]))
        cap = min(cap * 4, 1 << 22)
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.bool_), np.zeros(0, np.int8)
    return tuple(np.concatenate([part[i] for part in parts]) for i in range(3))


@dataclass(eq=False)
class SyncStats(Stats):
    """What :class:`FrameSync` counted (see its docstring)."""
    bits_in: int = 0
    codeblocks: int = 0
    lock_losses: int = 0
    inverted_codeblocks: int = 0
    bits_discarded: int = 0
    truncated: int = 0
    flywheel_codeblocks: int = 0
    locks: int = 0


class FrameSync:
    """Stateful ASM synchroniser over a stream of packed hard bits (MSB first).

    Parameters
    ----------
    codeblock_length: bytes after the marker (e.g. 1020 for RS(255,223) I=4).
    asm, asm_bits: the marker and its length in bits (8..64).
    max_bit_errors: marker bit errors tolerated (Hamming distance, either polarity).
    verify: in search, a candidate needs the next marker one CADU later before
        lock. With ``verify=False`` the first candidate is accepted (combine with
        ``max_bit_errors=0`` to accept only exact markers).
    flywheel: consecutive missed markers delivered in lock (sync_state 2) before
        lock is lost.
    spacing_tolerance: bits either side of the predicted position searched in
        lock (and in the check); bit slips within it are recovered at once.
    strong_match: at the end of the stream, where the check cannot be made, a
        candidate with at most this many bit errors is still accepted (so a
        one-CADU capture decodes); -1 never.

    ``push(chunk)`` and ``flush()`` return :class:`SyncBatch`; every codeblock is
    delivered once. ``stats``: bits_in, codeblocks, lock_losses, inverted_codeblocks,
    bits_discarded (not part of any delivered CADU; the pending tail is counted at
    flush), truncated (marker found but the stream ended inside its codeblock),
    flywheel_codeblocks, locks (times lock was acquired).
    """

    def __init__(self, codeblock_length: int, asm: int = CCSDS_ASM, asm_bits: int = 32,
                 max_bit_errors: int = 4, verify: bool = True, flywheel: int = 3,
                 spacing_tolerance: int = 1, strong_match: int = 0):
        _check_asm(asm, asm_bits)
        if codeblock_length < 1:
            raise ValueError(f"codeblock_length must be >= 1, got {codeblock_length}")
        if not 0 <= max_bit_errors < asm_bits // 2:
            raise ValueError(f"max_bit_errors must be in 0..{asm_bits // 2 - 1}, got {max_bit_errors}")
        cadu = asm_bits + 8 * codeblock_length
        if not 0 <= spacing_tolerance <= min(64, cadu // 4):
            raise ValueError(f"spacing_tolerance must be in 0..{min(64, cadu // 4)}, got {spacing_tolerance}")
        if flywheel < 0:
            raise ValueError(f"flywheel must be >= 0, got {flywheel}")
        if strong_match > max_bit_errors:
            raise ValueError("strong_match cannot exceed max_bit_errors")
        self.codeblock_length = int(codeblock_length)
        self.asm = int(asm)
        self.asm_bits = int(asm_bits)
        self.max_bit_errors = int(max_bit_errors)
        self.verify = bool(verify)
        self.flywheel = int(flywheel)
        self.spacing_tolerance = int(spacing_tolerance)
        self.strong_match = int(strong_match)
        self._cadu_bits = cadu
        # A resync after a miss looks this far back for markers moved earlier by deleted bits.
        self._back = max(self.spacing_tolerance, min(16, cadu // 4))
        self.reset(clear_stats=True)

    def reset(self, clear_stats: bool = False) -> None:
        """Start a new stream (bit positions from 0, search state); stats kept unless asked."""
        old = getattr(self, "_st", None)
        self._st = np.zeros(_STATE_LEN, np.int64)
        if old is not None and not clear_stats:
            keep = [_CODEBLOCKS, _LOCK_LOSSES, _INVERTED, _DISCARDED, _TRUNCATED, _FLYWHEELED, _LOCKS]
            self._st[keep] = old[keep]
        else:
            self._bits_in = 0
        self._tail = np.zeros(0, np.uint8)
        self._base = 0               # stream bit index of self._tail's first bit
        self._buf = None

    @property
    def stats(self) -> "SyncStats":
        st = self._st
        return SyncStats(
            bits_in=int(self._bits_in),
            codeblocks=int(st[_CODEBLOCKS]),
            lock_losses=int(st[_LOCK_LOSSES]),
            inverted_codeblocks=int(st[_INVERTED]),
            bits_discarded=int(st[_DISCARDED]),
            truncated=int(st[_TRUNCATED]),
            flywheel_codeblocks=int(st[_FLYWHEELED]),
            locks=int(st[_LOCKS]),
        )

    @property
    def resync_back(self) -> int:
        """Bits before a missed marker's predicted position that the resync looks back."""
        return self._back

    @property
    def locked(self) -> bool:
        return bool(self._st[_MODE] == 1)

    def _fill(self, chunk: np.ndarray) -> tuple[np.ndarray, int]:
        # One buffer reused across pushes: a fresh one per chunk costs more in
        # page faults than the kernel spends on the data.
        t = self._tail.size
        nbytes = t + chunk.size
        if self._buf is None or self._buf.size < nbytes + _PAD:
            self._buf = np.empty(nbytes + nbytes // 4 + _PAD, np.uint8)
        buf = self._buf
        buf[:t] = self._tail
        buf[t:nbytes] = chunk
        buf[nbytes:nbytes + _PAD] = 0
        return buf, nbytes

    def _run(self, chunk: np.ndarray, final: bool) -> SyncBatch:
        buf, nbytes = self._fill(chunk)
        nbits = nbytes * 8
        tol = self.spacing_tolerance
        n_max = nbits // (self._cadu_bits - self._back) + 1
        # the last batch's codeblocks again once the chain has let go of them
        out = _reuse.empty("sync.codeblocks", (n_max, self.codeblock_length), np.uint8,
                           mapped=True)
        meta = np.empty(n_max, SYNC_META_DTYPE)
        pos = np.empty(n_max, np.int64)
        inverted = np.empty(n_max, np.bool_)
        errors = np.empty(n_max, np.int8)
        states = np.empty(n_max, np.uint8)
        n = _sync_chunk(buf, nbits, self._base, final, np.uint64(self.asm), self.asm_bits,
                        self.codeblock_length, self.max_bit_errors, tol, self._back, self.flywheel,
                        self.verify, self.strong_match, self._st, out, pos, inverted, errors, states)
        meta = meta[:n]
        meta["bit_position"] = pos[:n]
        meta["inverted"] = inverted[:n]
        meta["asm_bit_errors"] = errors[:n]
        meta["sync_state"] = states[:n]
        if final:
            end = self._base + nbits
            if end > self._st[_PREV_END]:
                self._st[_DISCARDED] += end - self._st[_PREV_END]
            self._st[_PREV_END] = end
            self._tail = np.zeros(0, np.uint8)
            self._base = end
        else:
            keep_from = int(self._st[_POS]) - (self._back if self._st[_MODE] == 1 else 0)
            drop = min(max(keep_from - self._base, 0) >> 3, nbytes)
            self._tail = buf[drop:nbytes].copy()
            self._base += drop * 8
        return SyncBatch(out[:n], meta)

    def push(self, chunk) -> SyncBatch:
        """Codeblocks completed by this chunk of packed bits (MSB first)."""
        data = _as_bytes(chunk, "FrameSync.push")
        self._bits_in += data.size * 8
        if data.size == 0:
            return SyncBatch.empty(self.codeblock_length)
        return self._run(data, final=False)

    def flush(self) -> SyncBatch:
        """End of stream: codeblocks still pending are delivered (or counted truncated).

        Further pushes continue the same stream's bit numbering; call
        :meth:`reset` for a new stream."""
        return self._run(np.zeros(0, np.uint8), final=True)


__all__ = ["CCSDS_ASM", "SYNC_META_DTYPE", "SyncBatch", "SyncStats", "FrameSync", "attach_asm", "find_asm",
           "SYNC_SEARCH", "SYNC_LOCKED", "SYNC_FLYWHEEL"]
