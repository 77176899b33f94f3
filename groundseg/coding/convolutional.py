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

    @property
    def block_bits(self) -> int:
        step = 8 * self.period_bits
        return max(step, round(BLOCK_BITS / step) * step)

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


def _code(rate: str, variant: str) -> _Code:
    if rate not in PUNCTURE:
        raise ValueError(f"rate must be one of {', '.join(RATES)}, not {rate!r}")
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
    if rate != "1/2" and variant == "nasa-dsn":
        raise ValueError("the NASA-DSN convention exists only at rate 1/2 (131.0-B punctures the CCSDS code)")
    c1, c2 = PUNCTURE[rate]
    return _Code(rate, variant, len(c1), sum(c1) + sum(c2), (c1, c2))


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
def _pairs_kernel(ch, ch_base, step0, nsteps, valid_end, pb, ps, offset, idx, sign, pad_before, pad_after, out):
    """Soft pairs (G1, G2) of the base code for steps step0..step0+nsteps from channel symbols
    ch (ch[0] is absolute symbol ch_base); steps < 0 or >= valid_end are padding."""
    for i in range(nsteps):
        s = step0 + i
        if s < 0:
            out[i, 0] = pad_before
            out[i, 1] = pad_before
            continue
        if s >= valid_end:
            out[i, 0] = pad_after
            out[i, 1] = pad_after
            continue
        q = s // pb
        ph = s - q * pb
        base = offset + q * ps - ch_base
        for k in range(2):
            j = idx[ph, k]
            if j < 0:
                out[i, k] = 0
            else:
                v = np.int64(ch[base + j])
                if v < -127:
                    v = -127
                out[i, k] = v * sign[ph, k]


@kernel
def _transpose(pairs, starts, nsteps, cost, c1t, c2t):
    lanes = starts.size
    for l in range(lanes):
        s0 = starts[l]
        for t in range(nsteps):
            c1t[t * lanes + l] = cost[np.int64(pairs[s0 + t, 0]) + 128]
            c2t[t * lanes + l] = cost[np.int64(pairs[s0 + t, 1]) + 128]


@kernel
def _traceback(ma, dec, pairs, starts, nsteps, first, nout, sym, bits, stats):
    """Best final state per lane, back to step ``first``; bits of steps first..first+nout[l]-1
    to bits[l, :]; stats[l] = symbols compared, symbol errors, sum of y, sum of y^2 where y is
    the soft symbol signed by the re-encoded symbol (link quality)."""
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
        for k in range(4):
            stats[l, k] = 0
    for t in range(nsteps - 1, first - 1, -1):
        db = t * 8 * lanes
        for l in range(lanes):
            st = state[l]
            e = (dec[db + (st >> 3) * lanes + l] >> (st & 7)) & 1
            prev = (st >> 1) | ((1 - np.int64(e)) << 5)
            if t < first + nout[l]:
                b = st & 1
                bits[l, t - first] = b
                s = sym[((prev << 1) | b) & 127]
                row = starts[l] + t
                for k in range(2):
                    x = np.int64(pairs[row, k])
                    if x != 0:
                        c = (s >> (1 - k)) & 1
                        y = x if c else -x
                        stats[l, 0] += 1
                        if y < 0:
                            stats[l, 1] += 1
                        stats[l, 2] += y
                        stats[l, 3] += y * y
            state[l] = prev


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
        self.bits = np.empty((L, block_bits), np.uint8)
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
            _traceback(self.ma, self.dec, pairs, st, self.nsteps, self.depth, no, _SYM, self.bits, self.stats)
            bits[b0:b0 + m] = self.bits[:m]
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


__all__ = ["K", "G1", "G2", "PUNCTURE", "RATES", "VARIANTS", "QUANT_TARGET", "Hypothesis",
           "quantize", "encode", "viterbi", "symbols_to_soft"]
