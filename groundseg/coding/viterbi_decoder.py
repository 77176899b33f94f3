"""The streaming soft-decision Viterbi decoder of the CCSDS convolutional code (CCSDS
131.0-B-4 section 3) as a chain stage: chunks of soft symbols in, packed bits out, the
same bits whatever the chunking; the symbol-pair alignment and the QPSK swap/rotation
ambiguities resolved by re-encoding and re-checked after a loss of lock; link quality
(symbol error rate, Es/N0) per decoded window. The code, its kernels and the one-shot
decoder are in :mod:`groundseg.coding.convolutional`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from groundseg.coding._viterbi_acs import LANES
from groundseg.coding.convolutional import (BLOCK_BITS, Hypothesis, _ERASE, _code, _decode_range,
                                            _decode_ranges, quantize)

#: One row per decoded window (B bits): where it starts, which hypothesis decoded it and
#: the link quality measured on it. ``ser``: channel symbol error rate, the re-encoded
#: decoded bits against the hard decisions of the received symbols (erasures excluded).
#: ``esn0_db``: decision-directed Es/N0 of the int8 symbols, mean^2 / (2 var) of the soft
#: symbols signed by the re-encoded symbols (+inf when they do not vary, e.g. saturated;
#: int8 clipping biases it upwards above about 10 dB).
WINDOW_DTYPE = np.dtype([
    ("bit_position", "<i8"),      # first decoded bit of the window in the output stream
    ("symbol_position", "<i8"),   # its first channel symbol in the input stream
    ("bits", "<i4"),
    ("hypothesis", "u1"),         # index into ViterbiDecoder.hypotheses
    ("symbols", "<i4"),           # symbols compared (not erased)
    ("symbol_errors", "<i4"),
    ("ser", "<f4"),
    ("esn0_db", "<f4"),
])

_SEARCH, _LOCKED = 0, 1


def _esn0_db(n, sum_y, sum_y2) -> float:
    if n <= 0:
        return float("nan")
    mean = sum_y / n
    var = sum_y2 / n - mean * mean
    if mean <= 0:
        return float("nan")
    if var <= 0:
        return float("inf")
    return float(10 * np.log10(mean * mean / (2 * var)))


@dataclass
class ViterbiStats:
    """Counters of a :class:`ViterbiDecoder` (whole stream, or streams since the last clearing reset)."""
    symbols_in: int = 0
    bits_out: int = 0
    windows: int = 0
    symbols_compared: int = 0
    symbol_errors: int = 0
    sum_y: float = 0.0
    sum_y2: float = 0.0
    locks: int = 0             # search -> locked (a hypothesis gave a symbol error rate below lock_ser)
    lock_losses: int = 0       # locked -> search (the window under the current hypothesis did not)
    switches: int = 0          # hypothesis changes
    searches: int = 0          # windows decoded under every hypothesis
    symbols_dropped: int = 0   # at flush: trailing symbols that carry no whole input bit
    pad_bits: int = 0          # zero bits completing the last byte at flush
    bytes_carried: int = 0     # bytes held back because they were not a whole symbol (byte input)
    #: (symbol_position, bit_position, offset, swap, negate) each time the hypothesis changed,
    #: including the first lock of each stream (positions count from the stream's start).
    changes: list = field(default_factory=list)

    @property
    def ser(self) -> float:
        return self.symbol_errors / self.symbols_compared if self.symbols_compared else float("nan")

    @property
    def esn0_db(self) -> float:
        return _esn0_db(self.symbols_compared, self.sum_y, self.sum_y2)


class ViterbiDecoder:
    """Streaming soft-decision Viterbi stage: soft symbols in, packed decoded bits out.

    ``push(chunk) -> bytes`` (uint8 array), ``flush() -> bytes``, ``reset()``, ``stats``
    (:class:`ViterbiStats`), ``last_windows`` (``WINDOW_DTYPE`` rows of the windows the last
    push or flush delivered: link quality per 2048-bit block).

    Input: int8 or float32/float64 numpy arrays, or bytes-like interpreted as ``dtype``
    ("int8" or "float32"; a partial float is carried to the next chunk). Floats are quantised
    with ``scale`` or, when None, per block of ``quant_block`` symbols at absolute positions,
    each with its own automatic scale (so the result does not depend on the chunking).

    The output is identical whatever the chunk boundaries: window k (bits [kB, (k+1)B))
    is decoded from symbols at fixed absolute positions, and the hypothesis it uses is
    decided window by window from the windows' own decodes. Only the symbols from the next
    window's start minus the depth are carried.

    Ambiguities (``ambiguity``): None (the symbols are as the variant says); "bpsk" tries
    every symbol alignment of the period (pair alignment at rate 1/2); "qpsk" (rate 1/2)
    tries the I/Q transforms of :class:`Hypothesis`. Inverted polarity needs no hypothesis:
    G1 and G2 both have odd weight, so inverted symbols are the codeword of the complemented
    bits under every variant here; the decoder outputs the complement, which the frame
    synchroniser corrects per codeblock (or NRZ-M makes irrelevant). The decision: a window
    decoded under the current hypothesis is kept while its symbol error rate (re-encoded
    bits against hard decisions) is below ``lock_ser``; otherwise (loss of lock), and every
    ``recheck`` windows, the window is decoded under every hypothesis and the lowest rate
    wins if it is below ``lock_ser`` (the current one is kept on ties and unless another is
    better by ``margin`` or has less than half its rate). ``stats.changes`` lists every change.
    """

    def __init__(self, rate: str = "1/2", variant: str = "ccsds", ambiguity: str | None = None,
                 lock_ser: float = 0.12, recheck: int = 256, margin: float = 0.02,
                 scale: float | None = None, quant_block: int = 65536, dtype: str = "int8",
                 block_bits: int = BLOCK_BITS):
        self.code = _code(rate, variant, block_bits)
        if ambiguity is None:
            self.hypotheses = [Hypothesis()]
        elif ambiguity == "bpsk":
            self.hypotheses = [Hypothesis(o) for o in range(self.code.period_symbols)]
        elif ambiguity == "qpsk":
            if rate != "1/2":
                raise ValueError("ambiguity 'qpsk' is supported at rate 1/2 only")
            self.hypotheses = [Hypothesis(0, s, n) for s in (False, True) for n in (False, True)]
        else:
            raise ValueError(f"ambiguity must be None, 'bpsk' or 'qpsk', not {ambiguity!r}")
        if dtype not in ("int8", "float32"):
            raise ValueError(f"dtype must be 'int8' or 'float32', not {dtype!r}")
        if recheck < 1 or quant_block < 1:
            raise ValueError("recheck and quant_block must be >= 1")
        self.ambiguity = ambiguity
        self.lock_ser = float(lock_ser)
        self.recheck = int(recheck)
        self.margin = float(margin)
        self.scale = scale
        self.quant_block = int(quant_block)
        self.dtype = dtype
        self.stats = ViterbiStats()
        self.reset()

    @cached_property
    def block_bits(self) -> int:
        return self.code.block_bits

    @property
    def hypothesis(self) -> Hypothesis:
        return self.hypotheses[self._h]

    def reset(self, clear_stats: bool = True) -> None:
        """A new stream: symbol and bit positions from 0, state forgotten."""
        if clear_stats:
            self.stats = ViterbiStats()
        self._sym = np.zeros(0, np.int8)
        self._base = 0                      # absolute index of self._sym[0]
        self._k = 0                         # next window
        self._bits = 0                      # bits delivered in this stream
        self._h = 0
        self._mode = _LOCKED if self.ambiguity is None else _SEARCH
        self._recorded = False
        self._fbuf = np.zeros(0, np.float32)
        self._fbase = 0                     # absolute index of self._fbuf[0]
        self._bytes = b""
        self.last_windows = np.zeros(0, WINDOW_DTYPE)

    # input conversion -------------------------------------------------------------------
    def _to_int8(self, chunk, final: bool) -> np.ndarray:
        if chunk is None:
            a = np.zeros(0, np.float32 if self._fbuf.size else np.int8)
        elif isinstance(chunk, np.ndarray):
            a = chunk.reshape(-1)
        else:
            raw = self._bytes + bytes(chunk)
            size = 1 if self.dtype == "int8" else 4
            cut = len(raw) - len(raw) % size
            self._bytes = raw[cut:]
            self.stats.bytes_carried = len(self._bytes)
            a = np.frombuffer(raw[:cut], np.int8 if size == 1 else np.float32)
        if a.dtype == np.int8 and not self._fbuf.size:
            return a
        if a.dtype not in (np.int8, np.float32, np.float64):
            raise ValueError(f"ViterbiDecoder.push: soft symbols must be int8 or float32, got dtype {a.dtype}")
        if a.dtype == np.int8:
            raise ValueError("ViterbiDecoder.push: int8 symbols after float ones in the same stream")
        if self.scale is not None:
            return quantize(a, self.scale)
        buf = np.concatenate([self._fbuf, a.astype(np.float32, copy=False)])
        Q = self.quant_block
        # blocks at absolute multiples of Q, each scaled by its own mean magnitude
        first = (-self._fbase) % Q
        end = buf.size if final else max(buf.size - (self._fbase + buf.size) % Q, 0)
        parts = []
        p = 0
        while p < end:
            q = min(end, p + (first if p == 0 and first else Q))
            parts.append(quantize(buf[p:q]))
            p = q
        self._fbuf = buf[end:].copy()
        self._fbase += end
        return np.concatenate(parts) if parts else np.zeros(0, np.int8)

    # decoding ------------------------------------------------------------------------------
    def _steps(self, h: int) -> int:
        return self.code.bits_in(self._base + self._sym.size - self.hypotheses[h].offset)

    def _decode(self, h: int, k0: int, n: int, final: bool):
        total = self._steps(h)
        B = self.code.block_bits
        nbits = min(n * B, total - k0 * B) if final else n * B
        if nbits <= 0:
            return np.zeros(0, np.uint8), np.zeros((0, 4), np.int64), 0
        bits, st = _decode_range(self.code, self._sym, self._base, self.hypotheses[h], k0, nbits,
                                 total, _ERASE, _ERASE)
        return bits, st, nbits

    def _decode_all(self, k0: int, n: int, final: bool) -> list:
        """Windows k0..k0+n-1 under every hypothesis, in one engine pass."""
        B = self.code.block_bits
        jobs, which = [], []
        res = [(np.zeros(0, np.uint8), np.zeros((0, 4), np.int64), 0)] * len(self.hypotheses)
        for h in range(len(self.hypotheses)):
            total = self._steps(h)
            nbits = min(n * B, total - k0 * B) if final else n * B
            if nbits > 0:
                jobs.append((self.hypotheses[h], nbits, total))
                which.append(h)
        if jobs:
            for h, (job, (packed, st)) in zip(which, zip(jobs, _decode_ranges(
                    self.code, self._sym, self._base, jobs, k0, _ERASE, _ERASE))):
                res[h] = (packed, st, job[1])
        return res

    def _available(self, h: int, final: bool) -> int:
        """Windows decodable under hypothesis h (exclusive end index)."""
        B, D = self.code.block_bits, self.code.depth
        total = self._steps(h)
        if final:
            return -(-total // B)
        return max(0, (total - D) // B)

    def _ser(self, st: np.ndarray, i: int) -> float:
        if i >= st.shape[0]:
            return 1.0
        return st[i, 1] / st[i, 0] if st[i, 0] else 0.5

    def _run(self, final: bool) -> np.ndarray:
        B = self.code.block_bits
        H = len(self.hypotheses)
        out_bits: list = []
        rows: list = []
        amb = self.ambiguity is not None
        while True:
            k = self._k
            if self._mode == _LOCKED and not (amb and k % self.recheck == 0):
                kmax = self._available(self._h, final)
                if k >= kmax:
                    break
                n = kmax - k                           # one engine call for every window
                if amb:
                    n = min(n, self.recheck - k % self.recheck)
                bits, st, nbits = self._decode(self._h, k, n, final)
                if nbits <= 0:
                    break
                nw = st.shape[0]
                if amb:
                    ser = st[:, 1] / np.maximum(st[:, 0], 1)
                    ser[st[:, 0] == 0] = 0.5
                    bad = np.flatnonzero(ser >= self.lock_ser)
                    if bad.size:
                        nw = int(bad[0])
                        self.stats.lock_losses += 1
                        self._mode = _SEARCH
                self._accept_run((bits, st, nbits), 0, nw, out_bits, rows)
                continue
            # every hypothesis on up to LANES // H windows; each window then follows the
            # same per-window rule as above, so the result does not depend on the batching
            avail = [self._available(h, final) for h in range(H)]
            kmax = max(avail) if final else min(avail)
            if k >= kmax:
                break
            n = max(1, min(LANES // H, kmax - k))
            res = self._decode_all(k, n, final)
            for i in range(n):
                if self._mode == _LOCKED and not (amb and self._k % self.recheck == 0):
                    if self._ser(res[self._h][1], i) < self.lock_ser:
                        self._accept_from(res[self._h], i, out_bits, rows)
                        continue
                    self.stats.lock_losses += 1
                    self._mode = _SEARCH
                sers = [self._ser(res[h][1], i) for h in range(H)]
                self.stats.searches += 1
                cur = self._h
                best = int(np.argmin(sers))
                if sers[cur] <= sers[best]:
                    best = cur
                # switch when the current hypothesis has lost lock, or another one is better by
                # the margin or by half (high-rate codes fit a misaligned stream closely)
                if best != cur and sers[best] < self.lock_ser and (
                        sers[cur] >= self.lock_ser or sers[best] < sers[cur] - self.margin
                        or sers[best] < 0.5 * sers[cur]):
                    self._h = best
                    self.stats.switches += 1
                    self._record_change()
                good = sers[self._h] < self.lock_ser
                if good and self._mode == _SEARCH:
                    self.stats.locks += 1
                    if not self._recorded:
                        self._record_change()
                self._mode = _LOCKED if good else _SEARCH
                if i >= res[self._h][1].shape[0]:
                    break
                self._accept_from(res[self._h], i, out_bits, rows)
        # carry only what the next window needs
        D = self.code.depth
        keep = self.code.symbols_for(max(0, self._k * B - D))
        drop = min(max(0, keep - self._base), self._sym.size)
        if drop:
            self._sym = self._sym[drop:].copy()
            self._base += drop
        self.last_windows = self._rows(rows)
        if final and self._bits % 8:
            self.stats.pad_bits += 8 - self._bits % 8
        return np.concatenate(out_bits) if out_bits else np.zeros(0, np.uint8)

    def _record_change(self) -> None:
        hyp = self.hypotheses[self._h]
        sym_pos = hyp.offset + self.code.symbols_for(self._k * self.code.block_bits)
        self.stats.changes.append((int(sym_pos), int(self._bits), hyp.offset, hyp.swap, hyp.negate))
        self._recorded = True

    def _accept_from(self, res, i: int, out_bits: list, rows: list) -> None:
        self._accept_run(res, i, i + 1, out_bits, rows)

    def _accept_run(self, res, i0: int, i1: int, out_bits: list, rows: list) -> None:
        """Deliver windows i0..i1-1 of one decode result (bits, stats, nbits) under the current
        hypothesis; their WINDOW_DTYPE rows are built once per push (:meth:`_rows`)."""
        if i1 <= i0:
            return
        bits, st, nbits = res
        B = self.code.block_bits
        nb = min(i1 * B, nbits) - i0 * B
        wb = bits[i0 * B // 8: i0 * B // 8 + -(-nb // 8)]
        st = st[i0:i1]
        m = i1 - i0
        rows.append((self._k, self._bits, nb, self._h, st))
        self._bits += nb
        s = self.stats
        s.bits_out += nb
        s.windows += m
        s.symbols_compared += int(st[:, 0].sum())
        s.symbol_errors += int(st[:, 1].sum())
        s.sum_y += float(st[:, 2].sum())
        s.sum_y2 += float(st[:, 3].sum())
        out_bits.append(wb)
        self._k += m

    def _rows(self, runs: list) -> np.ndarray:
        if not runs:
            return np.zeros(0, WINDOW_DTYPE)
        B = self.code.block_bits
        per_window = B // self.code.period_bits * self.code.period_symbols
        st = np.concatenate([r[4] for r in runs])
        k = np.concatenate([r[0] + np.arange(r[4].shape[0]) for r in runs])
        h = np.concatenate([np.full(r[4].shape[0], r[3], np.uint8) for r in runs])
        first_bit = np.concatenate([r[1] + np.arange(r[4].shape[0]) * B for r in runs])
        nbits = np.concatenate([np.minimum(B, r[2] - np.arange(r[4].shape[0]) * B) for r in runs])
        offsets = np.array([hyp.offset for hyp in self.hypotheses], np.int64)[h]
        out = np.zeros(st.shape[0], WINDOW_DTYPE)
        out["bit_position"] = first_bit
        out["symbol_position"] = offsets + k * per_window
        out["bits"] = nbits
        out["hypothesis"] = h
        n = st[:, 0]
        out["symbols"] = n
        out["symbol_errors"] = st[:, 1]
        nn = np.maximum(n, 1)
        mean = st[:, 2] / nn
        var = st[:, 3] / nn - mean * mean
        ok = (n > 0) & (mean > 0)
        out["ser"] = np.where(n > 0, st[:, 1] / nn, np.nan)
        es = np.full(n.size, np.inf)
        pos = ok & (var > 0)
        es[pos] = 10 * np.log10(mean[pos] ** 2 / (2 * var[pos]))
        es[~ok] = np.nan
        out["esn0_db"] = es
        return out

    def push(self, chunk) -> np.ndarray:
        """Decoded bits (packed, MSB first) of every window this chunk completes."""
        a = self._to_int8(chunk, final=False)
        self.stats.symbols_in += a.size
        if a.size:
            self._sym = np.concatenate([self._sym, a]) if self._sym.size else a.copy()
        return self._run(final=False)

    def flush(self) -> np.ndarray:
        """End of stream: the remaining windows, the last byte zero-padded. The next push
        starts a new stream (positions from 0, ambiguities searched again); stats accumulate."""
        a = self._to_int8(None, final=True)
        self.stats.symbols_in += a.size
        if a.size:
            self._sym = np.concatenate([self._sym, a])
        out = self._run(final=True)
        h = self.hypotheses[self._h]
        used = h.offset + self.code.symbols_for(self._steps(self._h))
        self.stats.symbols_dropped += max(0, self._base + self._sym.size - used)
        self.stats.bytes_carried = 0
        last = self.last_windows
        self.reset(clear_stats=False)
        self.last_windows = last
        return out


__all__ = ["ViterbiDecoder", "ViterbiStats", "WINDOW_DTYPE"]
