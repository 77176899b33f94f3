"""Convolutional code k=7 r=1/2 and its punctured rates, soft-decision Viterbi (CCSDS 131.0-B-4 section 3).

The code: constraint length 7, G1 = 171 and G2 = 133 (octal, leftmost bit = the newest
input bit), punctured to 2/3, 3/4, 5/6 or 7/8 with the patterns of 131.0-B-4 table 3-2
(``PUNCTURE``). Conventions (``variant``) for the order and inversion of the two symbols of
a pair, at rate 1/2:

- ``"ccsds"``: C1 = G1, C2 = G2 inverted (131.0-B-4 3.3; BY70-1, GNU Radio polys [79, -109]);
- ``"ccsds-noinv"``: C1 = G1, C2 = G2, no inversion (many receivers and LRPT-style links);
- ``"nasa-dsn"``: C1 = G2 inverted, C2 = G1 (gr-satellites "NASA-DSN", polys [-109, 79]; TRISAT).

The punctured codes of 131.0-B-4 3.4 have no symbol inversion: at rates other than 1/2,
``"ccsds"`` and ``"ccsds-noinv"`` are the same code and ``"nasa-dsn"`` is refused.

Soft symbols follow gr-satellites: int8, positive means bit 1, the magnitude is the
confidence, 0 is an erasure (punctured positions are decoded as erasures). Float symbols
go through :func:`quantize` first. The decoder works on 5-bit costs (0..30 per symbol,
``cost = round((s + 127) * 30 / 254)``), so int8 symbols should use most of the range
(``quantize`` puts the mean magnitude at ``QUANT_TARGET``).

How it decodes: the stream is cut into windows at absolute bit positions: window k
delivers bits [kB, (k+1)B) and is decoded from the symbols of [kB - D, (k+1)B + D), starting
with equal metrics and tracing back from the best state at its end. Windows are independent,
so the output is a function of the absolute position alone (identical whatever the chunk
boundaries) and 32 of them are decoded at once, one per uint8 lane of an AVX2 register
(``_viterbi_acs.py``). A whole zero-tailed block (:func:`viterbi`) is the same with the known
start and end state imposed by padding strongly-zero symbols on both sides.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from groundseg._numba import kernel
from groundseg.coding._viterbi_acs import LANES, acs
from groundseg.coding._viterbi_gen import COST_MAX, POLY_A, POLY_B

K = 7
G1, G2 = 0o171, 0o133

#: Puncturing patterns of CCSDS 131.0-B-4 table 3-2 (1 = transmitted). Per period the
#: symbols go out in the order C1(1) C2(1) C1(2) C2(2) ... skipping the punctured ones:
#: 2/3 -> C1(1) C2(1) C2(2); 3/4 -> C1(1) C2(1) C2(2) C1(3); 7/8 -> C1(1) C2(1) C2(2) C2(3)
#: C2(4) C1(5) C2(6) C1(7).
PUNCTURE = {
    "1/2": ((1,), (1,)),
    "2/3": ((1, 0), (1, 1)),
    "3/4": ((1, 0, 1), (1, 1, 0)),
    "5/6": ((1, 0, 1, 0, 1), (1, 1, 0, 1, 0)),
    "7/8": ((1, 0, 0, 0, 1, 0, 1), (1, 1, 1, 1, 0, 1, 0)),
}
RATES = tuple(PUNCTURE)

#: variant -> (swap, invert first, invert second) of the transmitted pair at rate 1/2.
VARIANTS = {"ccsds": (False, False, True), "ccsds-noinv": (False, False, False),
            "nasa-dsn": (True, True, False)}

#: int8 magnitude that quantize() gives the mean |symbol|.
QUANT_TARGET = 48.0
#: Traceback / acquisition depth per rate (bits), the overlap D on each side of a window.
DEPTH = {"1/2": 64, "2/3": 96, "3/4": 96, "5/6": 120, "7/8": 140}
BLOCK_BITS = 2048

_ERASE = 0
_STRONG_ZERO = -127


def _symbol_table() -> np.ndarray:
    """(G1 << 1) | G2 output for each 7-bit register value (bit 0 = newest input)."""
    t = np.zeros(128, np.uint8)
    for r in range(128):
        t[r] = ((bin(r & POLY_A).count("1") & 1) << 1) | (bin(r & POLY_B).count("1") & 1)
    return t


_SYM = _symbol_table()


def _cost_table() -> np.ndarray:
    """Cost of "bit 0" for each int8 symbol, indexed by symbol + 128; 15 for an erasure."""
    s = np.clip(np.arange(-128, 128), -127, 127)
    return np.round((s + 127) * COST_MAX / 254).astype(np.uint8)


_COST = _cost_table()


# --- code geometry -----------------------------------------------------------------------

@dataclass(frozen=True)
class _Code:
    rate: str
    variant: str
    period_bits: int        # Pb: input bits per puncturing period
    period_symbols: int     # Ps: channel symbols per period
    keep: tuple             # (C1 pattern, C2 pattern)

    @property
    def depth(self) -> int:
        step = 2 * self.period_bits
        return -(-DEPTH[self.rate] // step) * step

    block: int = BLOCK_BITS

    @property
    def block_bits(self) -> int:
        step = 8 * self.period_bits
        return max(step, round(self.block / step) * step)

    def symbols_for(self, nbits: int) -> int:
        """Channel symbols that carry the first ``nbits`` input bits."""
        q, r = divmod(nbits, self.period_bits)
        c1, c2 = self.keep
        return q * self.period_symbols + sum(c1[:r]) + sum(c2[:r])

    def bits_in(self, nsymbols: int) -> int:
        """Input bits whose symbols all lie within the first ``nsymbols`` channel symbols."""
        if nsymbols <= 0:
            return 0
        q, r = divmod(nsymbols, self.period_symbols)
        n = q * self.period_bits
        c1, c2 = self.keep
        used = 0
        for i in range(self.period_bits):
            used += c1[i] + c2[i]
            if used > r:
                break
            n += 1
        return n


def _code(rate: str, variant: str, block_bits: int = BLOCK_BITS) -> _Code:
    if rate not in PUNCTURE:
        raise ValueError(f"rate must be one of {', '.join(RATES)}, not {rate!r}")
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
    if rate != "1/2" and variant == "nasa-dsn":
        raise ValueError("the NASA-DSN convention exists only at rate 1/2 (131.0-B punctures the CCSDS code)")
    c1, c2 = PUNCTURE[rate]
    if block_bits < 8:
        raise ValueError(f"block_bits must be >= 8, got {block_bits}")
    return _Code(rate, variant, len(c1), sum(c1) + sum(c2), (c1, c2), int(block_bits))


@dataclass(frozen=True)
class Hypothesis:
    """A symbol ambiguity: the pair alignment (``offset`` symbols dropped at the start) and,
    for QPSK, the transforms of an interleaved I/Q pair (a, b): ``swap`` -> (b, a), then
    ``negate`` -> second symbol negated. With the 180-degree rotation (which only complements
    the decoded bits, see :class:`ViterbiDecoder`) these reach all 8 QPSK ambiguities:
    (a,b) identity, (b,-a) and (-b,a) are swap+negate (90/270 degrees), (b,a) swap, (a,-b) negate."""
    offset: int = 0
    swap: bool = False
    negate: bool = False

    @property
    def name(self) -> str:
        parts = [f"offset {self.offset}"]
        if self.swap:
            parts.append("I/Q swapped")
        if self.negate:
            parts.append("second negated")
        return ", ".join(parts)


def _phase_map(code: _Code, hyp: Hypothesis) -> tuple[np.ndarray, np.ndarray]:
    """Per phase of the period: channel-symbol index within the period and sign of the
    G1 and G2 soft symbols of the base (uninverted) code, index -1 where punctured."""
    pb = code.period_bits
    idx = np.full((pb, 2), -1, np.int64)
    sign = np.ones((pb, 2), np.int64)
    if code.rate == "1/2":
        swap, inv1, inv2 = VARIANTS[code.variant]
        # transmitted pair (t0, t1) -> after the hypothesis' own transform (index, sign)
        src = [(0, 1), (1, 1)]
        if hyp.swap:
            src = [src[1], src[0]]
        if hyp.negate:
            src[1] = (src[1][0], -src[1][1])
        first, second = src
        if inv1:
            first = (first[0], -first[1])
        if inv2:
            second = (second[0], -second[1])
        g1, g2 = (second, first) if swap else (first, second)
        idx[0] = (g1[0], g2[0])
        sign[0] = (g1[1], g2[1])
        return idx, sign
    if hyp.swap or hyp.negate:
        raise ValueError("I/Q transforms are supported at rate 1/2 only")
    c1, c2 = code.keep
    pos = 0
    for i in range(pb):
        if c1[i]:
            idx[i, 0] = pos
            pos += 1
        if c2[i]:
            idx[i, 1] = pos
            pos += 1
    return idx, sign


# --- kernels -----------------------------------------------------------------------------

@kernel
def _encode_kernel(bits, sym, c1, c2, pb, swap, inv1, inv2, out):
    sr = 0
    n = 0
    for i in range(bits.size):
        sr = ((sr << 1) | bits[i]) & 127
        s = sym[sr]
        g1 = (s >> 1) & 1
        g2 = s & 1
        ph = i % pb
        if swap:
            out[n] = g2 ^ inv1
            out[n + 1] = g1 ^ inv2
            n += 2
        else:
            if c1[ph]:
                out[n] = g1 ^ inv1
                n += 1
            if c2[ph]:
                out[n] = g2 ^ inv2
                n += 1
    return n


@kernel
def _pairs_half(src, swap, s0, s1, out):
    # slices start at 0, so the indices are provably non-negative and the loop vectorises
    for i in range(out.shape[0]):
        a = max(np.int16(src[2 * i]), np.int16(-127))
        b = max(np.int16(src[2 * i + 1]), np.int16(-127))
        if swap:
            a, b = b, a
        out[i, 0] = np.int8(a * np.int16(s0))
        out[i, 1] = np.int8(b * np.int16(s1))


@kernel
def _pairs_kernel(ch, ch_base, step0, nsteps, valid_end, pb, ps, offset, idx, sign, pad_before, pad_after, out):
    """Soft pairs (G1, G2) of the base code for steps step0..step0+nsteps from channel symbols
    ch (ch[0] is absolute symbol ch_base); steps < 0 or >= valid_end are padding."""
    lo = min(max(-step0, 0), nsteps)                 # first index of a real step
    hi = min(max(valid_end - step0, lo), nsteps)     # end of the real steps
    for i in range(lo):
        out[i, 0] = pad_before
        out[i, 1] = pad_before
    for i in range(hi, nsteps):
        out[i, 0] = pad_after
        out[i, 1] = pad_after
    if pb == 1:                                      # rate 1/2: no puncturing, two symbols a step
        if hi > lo:
            j0 = offset - ch_base + 2 * (step0 + lo)
            _pairs_half(ch[j0:j0 + 2 * (hi - lo)], idx[0, 0] == 1, sign[0, 0], sign[0, 1], out[lo:hi])
        return
    for i in range(lo, hi):
        s = step0 + i
        q = s // pb
        ph = s - q * pb
        base = offset + q * ps - ch_base
        for k in range(2):
            j = idx[ph, k]
            if j < 0:
                out[i, k] = 0
            else:
                out[i, k] = max(np.int64(ch[base + j]), -127) * sign[ph, k]


@kernel
def _transpose(pairs, starts, nsteps, cost, c1t, c2t):
    lanes = starts.size
    for l in range(lanes):
        s0 = starts[l]
        for t in range(nsteps):
            c1t[t * lanes + l] = cost[np.int64(pairs[s0 + t, 0]) + 128]
            c2t[t * lanes + l] = cost[np.int64(pairs[s0 + t, 1]) + 128]


@kernel
def _traceback(ma, dec, starts, nsteps, first, nout, bits):
    """From the best final state of each lane back to step ``first - 6``; the decoded bit of
    step ``first - 6 + j`` goes to bits[l, j] (the six before ``first`` seed the re-encoder)."""
    lanes = starts.size
    state = np.empty(lanes, np.int64)
    for l in range(lanes):
        best = 0
        bm = ma[l]
        for s in range(1, 64):
            v = ma[s * lanes + l]
            if v < bm:
                bm = v
                best = s
        state[l] = best
    lo = first - 6
    for t in range(nsteps - 1, lo - 1, -1):
        db = t * 8 * lanes
        for l in range(lanes):
            st = state[l]
            e = (np.int64(dec[db + (st >> 3) * lanes + l]) >> (st & 7)) & 1
            bits[l, t - lo] = st & 1
            state[l] = (st >> 1) | ((1 - e) << 5)


@kernel
def _link_quality(bits, pairs, starts, first, nout, stats):
    """Re-encode each lane's decoded bits and compare with the received pairs: stats[l] =
    symbols compared (non-zero), symbol errors, sum of y, sum of y^2 (y = the soft symbol
    signed by the re-encoded symbol). The re-encoder is written as the generators' taps
    (G1: delays 0,1,2,3,6; G2: 0,2,3,5,6) so the loop vectorises."""
    for l in range(starts.size):
        row0 = starts[l] + first
        bl = bits[l]
        pr = pairs[row0:row0 + nout[l]]
        n = 0
        err = 0
        sy = 0
        sy2 = 0
        for j in range(nout[l]):
            d0 = bl[j + 6]
            d1 = bl[j + 5]
            d2 = bl[j + 4]
            d3 = bl[j + 3]
            d5 = bl[j + 1]
            d6 = bl[j]
            g1 = np.int32(d0 ^ d1 ^ d2 ^ d3 ^ d6)
            g2 = np.int32(d0 ^ d2 ^ d3 ^ d5 ^ d6)
            x0 = np.int32(pr[j, 0])
            x1 = np.int32(pr[j, 1])
            y0 = x0 * (2 * g1 - 1)
            y1 = x1 * (2 * g2 - 1)
            n += np.int32(x0 != 0) + np.int32(x1 != 0)
            err += np.int32(y0 < 0) + np.int32(y1 < 0)
            sy += y0 + y1
            sy2 += y0 * y0 + y1 * y1
        stats[l, 0] = n
        stats[l, 1] = err
        stats[l, 2] = sy
        stats[l, 3] = sy2


@kernel
def _quantize_kernel(x, scale, out):
    for i in range(x.size):
        v = x[i]
        if v != v:
            out[i] = 0
            continue
        v = v * scale
        if v > 127.0:
            v = 127.0
        elif v < -127.0:
            v = -127.0
        out[i] = np.int8(np.round(v))


@kernel
def _mean_abs_finite(x):
    s = 0.0
    n = 0
    for i in range(x.size):
        v = abs(np.float64(x[i]))
        if v < np.inf:
            s += v
            n += 1
    return s / n if n else 0.0


# --- windowed decoding -----------------------------------------------------------------

class _Engine:
    """Decodes windows of soft pairs, LANES at a time; reuses its work buffers."""

    def __init__(self, depth: int, block_bits: int):
        self.depth = depth
        self.block_bits = block_bits
        self.nsteps = 2 * depth + block_bits          # a multiple of 4
        L, W = LANES, self.nsteps
        self.c1t = np.empty(W * L, np.uint8)
        self.c2t = np.empty(W * L, np.uint8)
        self.ma = np.empty(64 * L, np.uint8)
        self.mb = np.empty(64 * L, np.uint8)
        self.dec = np.empty(W * 8 * L, np.uint8)
        self.bits = np.empty((L, block_bits + 6 + depth), np.uint8)
        self.stats = np.empty((L, 4), np.int64)

    def decode(self, pairs: np.ndarray, starts: np.ndarray, nout: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Window i reads pairs[starts[i] : starts[i] + nsteps] and delivers nout[i] bits.
        Returns bits (n, block_bits) uint8 (0/1, valid up to nout) and stats (n, 4) int64."""
        n = starts.size
        L = LANES
        bits = np.zeros((n, self.block_bits), np.uint8)
        stats = np.zeros((n, 4), np.int64)
        for b0 in range(0, n, L):
            m = min(L, n - b0)
            st = np.empty(L, np.int64)
            st[:m] = starts[b0:b0 + m]
            st[m:] = starts[b0]                          # idle lanes repeat a real window
            no = np.zeros(L, np.int64)
            no[:m] = nout[b0:b0 + m]
            _transpose(pairs, st, self.nsteps, _COST, self.c1t, self.c2t)
            self.ma[:] = 0
            acs(self.c1t, self.c2t, self.nsteps, self.ma, self.mb, self.dec)
            _traceback(self.ma, self.dec, st, self.nsteps, self.depth, no, self.bits)
            _link_quality(self.bits, pairs, st, self.depth, no, self.stats)
            bits[b0:b0 + m] = self.bits[:m, 6:6 + self.block_bits]
            stats[b0:b0 + m] = self.stats[:m]
        return bits, stats


_ENGINES: dict = {}


def _engine(code: _Code) -> _Engine:
    key = (code.depth, code.block_bits)
    if key not in _ENGINES:
        _ENGINES[key] = _Engine(*key)
    return _ENGINES[key]


def _soft_array(soft, what: str) -> np.ndarray:
    a = soft if isinstance(soft, np.ndarray) else np.frombuffer(bytes(soft), np.int8)
    if a.ndim != 1:
        a = a.reshape(-1)
    if a.dtype == np.int8:
        return a
    if a.dtype in (np.float32, np.float64):
        return quantize(a)
    raise ValueError(f"{what}: soft symbols must be int8 or float32, got dtype {a.dtype}")


def _bits_array(data, what: str) -> np.ndarray:
    a = data if isinstance(data, np.ndarray) else np.frombuffer(bytes(data), np.uint8)
    if a.dtype != np.uint8:
        raise ValueError(f"{what}: expected packed bytes (uint8), got dtype {a.dtype}")
    return np.unpackbits(a.reshape(-1))


# --- public API --------------------------------------------------------------------------

def quantize(soft_float, scale: float | None = None) -> np.ndarray:
    """Float soft symbols -> int8 (positive = 1): ``round(x * scale)`` clipped to +-127,
    NaN -> 0 (erasure), +-inf -> +-127. ``scale=None`` puts the mean |x| of the finite
    values at ``QUANT_TARGET`` (48), which leaves headroom to about 2.6 times the mean."""
    x = np.ascontiguousarray(soft_float).reshape(-1)
    if x.dtype not in (np.float32, np.float64):
        raise ValueError(f"quantize: expected float32 or float64, got dtype {x.dtype}")
    if scale is None:
        m = _mean_abs_finite(x)
        scale = QUANT_TARGET / m if m > 0 else 1.0
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"quantize: scale must be positive and finite, got {scale}")
    out = np.empty(x.size, np.int8)
    _quantize_kernel(x, float(scale), out)
    return out


def encode(data, rate: str = "1/2", variant: str = "ccsds") -> np.ndarray:
    """Packed bytes (MSB first) -> channel symbols, uint8 0/1, in transmission order.

    The encoder starts in state 0 and encodes exactly the given bits; for a zero-tailed
    block append at least 6 zero bits (a zero byte) before encoding. Output length:
    ``8 * len(data) * 2`` at rate 1/2; punctured rates emit only the symbols their
    pattern keeps (the last period may be partial)."""
    code = _code(rate, variant)
    bits = _bits_array(data, "encode")
    swap, inv1, inv2 = VARIANTS[variant] if rate == "1/2" else (False, False, False)
    out = np.empty(code.symbols_for(bits.size), np.uint8)
    c1, c2 = (np.array(p, np.uint8) for p in code.keep)
    n = _encode_kernel(bits, _SYM, c1, c2, code.period_bits, swap, int(inv1), int(inv2), out)
    assert n == out.size
    return out


def symbols_to_soft(symbols, amplitude: int = 127) -> np.ndarray:
    """Hard channel symbols 0/1 -> int8 soft symbols -amplitude/+amplitude (tests, simulator)."""
    s = np.asarray(symbols, np.int16)
    return ((2 * s - 1) * amplitude).astype(np.int8)


def viterbi(soft, rate: str = "1/2", variant: str = "ccsds", terminated: bool = True) -> np.ndarray:
    """Decode a whole block that starts in state 0 (and, with ``terminated``, ends in state 0:
    zero-tailed). ``soft``: int8 (or float32, through :func:`quantize`) channel symbols in
    transmission order, exactly the symbols of a whole number of input bits (else
    ValueError). Returns the decoded bits packed MSB first, the last byte zero-padded."""
    code = _code(rate, variant)
    ch = _soft_array(soft, "viterbi")
    nbits = code.bits_in(ch.size)
    if code.symbols_for(nbits) != ch.size:
        raise ValueError(f"viterbi: {ch.size} symbols are not a whole number of input bits at rate {rate} "
                         f"({code.symbols_for(nbits)} symbols carry {nbits} bits)")
    if nbits == 0:
        return np.zeros(0, np.uint8)
    bits, _ = _decode_range(code, ch, 0, Hypothesis(), 0, nbits, nbits, _STRONG_ZERO,
                            _STRONG_ZERO if terminated else _ERASE)
    return np.packbits(bits)


def _decode_range(code: _Code, ch: np.ndarray, ch_base: int, hyp: Hypothesis, k0: int, nwin_bits: int,
                  valid_end: int, pad_before: int, pad_after: int) -> tuple[np.ndarray, np.ndarray]:
    """Bits [k0*B, k0*B + nwin_bits) of the stream (windows k0...), and per-window stats."""
    eng = _engine(code)
    B, D = code.block_bits, code.depth
    nwin = -(-nwin_bits // B)
    step0 = k0 * B - D
    nsteps = nwin * B + 2 * D
    pairs = np.empty((nsteps, 2), np.int8)
    idx, sign = _phase_map(code, hyp)
    _pairs_kernel(ch, ch_base, step0, nsteps, valid_end, code.period_bits, code.period_symbols, hyp.offset,
                  idx, sign, pad_before, pad_after, pairs)
    starts = np.arange(nwin, dtype=np.int64) * B
    nout = np.full(nwin, B, np.int64)
    nout[-1] = nwin_bits - (nwin - 1) * B
    bits, stats = eng.decode(pairs, starts, nout)
    return bits.reshape(-1)[:nwin_bits], stats



# --- streaming stage ---------------------------------------------------------------------

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
    #: including the first choice.
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
    better by ``margin``). ``stats.changes`` lists every change.
    """

    def __init__(self, rate: str = "1/2", variant: str = "ccsds", ambiguity: str | None = None,
                 lock_ser: float = 0.12, recheck: int = 64, margin: float = 0.02,
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

    @property
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
        end = buf.size if final else buf.size - (self._fbase + buf.size) % Q
        if end < 0:
            end = 0
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
                n = min(LANES, kmax - k)
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
            res = [self._decode(h, k, n, final) for h in range(H)]
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
                if best != cur and sers[best] < self.lock_ser and (
                        sers[cur] >= self.lock_ser or sers[best] < sers[cur] - self.margin):
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
        self.last_windows = np.concatenate(rows) if rows else np.zeros(0, WINDOW_DTYPE)
        bits = np.concatenate(out_bits) if out_bits else np.zeros(0, np.uint8)
        if final and bits.size % 8:
            self.stats.pad_bits += 8 - bits.size % 8
        return np.packbits(bits)

    def _record_change(self) -> None:
        hyp = self.hypotheses[self._h]
        sym_pos = hyp.offset + self.code.symbols_for(self._k * self.code.block_bits)
        self.stats.changes.append((int(sym_pos), int(self.stats.bits_out), hyp.offset, hyp.swap, hyp.negate))
        self._recorded = True

    def _accept_from(self, res, i: int, out_bits: list, rows: list) -> None:
        self._accept_run(res, i, i + 1, out_bits, rows)

    def _accept_run(self, res, i0: int, i1: int, out_bits: list, rows: list) -> None:
        """Deliver windows i0..i1-1 of one decode result (bits, stats, nbits) under the current hypothesis."""
        if i1 <= i0:
            return
        bits, st, nbits = res
        B = self.code.block_bits
        hyp = self.hypotheses[self._h]
        wb = bits[i0 * B: min(i1 * B, nbits)]
        st = st[i0:i1]
        m = i1 - i0
        r = np.zeros(m, WINDOW_DTYPE)
        ks = self._k + np.arange(m)
        r["bit_position"] = self.stats.bits_out + (ks - self._k) * B
        r["symbol_position"] = [hyp.offset + self.code.symbols_for(int(k) * B) for k in ks]
        r["bits"] = B
        r["bits"][-1] = wb.size - (m - 1) * B
        r["hypothesis"] = self._h
        n = st[:, 0]
        r["symbols"] = n
        r["symbol_errors"] = st[:, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            r["ser"] = np.where(n > 0, st[:, 1] / np.maximum(n, 1), np.nan)
            mean = st[:, 2] / np.maximum(n, 1)
            var = st[:, 3] / np.maximum(n, 1) - mean * mean
            es = np.where(var > 0, 10 * np.log10(mean * mean / np.where(var > 0, 2 * var, 1.0)), np.inf)
        r["esn0_db"] = np.where((n > 0) & (mean > 0), es, np.nan)
        rows.append(r)
        s = self.stats
        s.bits_out += wb.size
        s.windows += m
        s.symbols_compared += int(n.sum())
        s.symbol_errors += int(st[:, 1].sum())
        s.sum_y += float(st[:, 2].sum())
        s.sum_y2 += float(st[:, 3].sum())
        out_bits.append(wb)
        self._k += m

    def push(self, chunk) -> np.ndarray:
        """Decoded bits (packed, MSB first) of every window this chunk completes."""
        a = self._to_int8(chunk, final=False)
        self.stats.symbols_in += a.size
        if a.size:
            self._sym = np.concatenate([self._sym, a]) if self._sym.size else a.copy()
        return self._run(final=False)

    def flush(self) -> np.ndarray:
        """End of stream: the remaining windows, the last byte zero-padded. Further pushes
        would continue the same stream; call :meth:`reset` for a new one."""
        a = self._to_int8(None, final=True)
        self.stats.symbols_in += a.size
        if a.size:
            self._sym = np.concatenate([self._sym, a])
        out = self._run(final=True)
        h = self.hypotheses[self._h]
        total = self._steps(self._h)
        used = h.offset + self.code.symbols_for(total)
        self.stats.symbols_dropped += max(0, self._base + self._sym.size - used)
        self._sym = np.zeros(0, np.int8)
        self._base = self._base + 0
        return out


__all__ = ["K", "G1", "G2", "PUNCTURE", "RATES", "VARIANTS", "QUANT_TARGET", "Hypothesis",
           "ViterbiDecoder", "ViterbiStats", "WINDOW_DTYPE",
           "quantize", "encode", "viterbi", "symbols_to_soft"]
