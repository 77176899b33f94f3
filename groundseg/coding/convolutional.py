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
``15 +- round(|s| * 15 / 127)``, at least 1 from 15 unless s = 0; see ``_cost``), so int8
symbols should use most of the range (``quantize`` puts the mean magnitude at ``QUANT_TARGET``).

How it decodes: the stream is cut into windows at absolute bit positions: window k
delivers bits [kB, (k+1)B) and is decoded from the symbols of [kB - D, (k+1)B + D), starting
with equal metrics and tracing back from the best state at its end. Windows are independent,
so the output is a function of the absolute position alone (identical whatever the chunk
boundaries) and 32 of them are decoded at once, one per uint8 lane of an AVX2 register
(``_viterbi_acs.py``). A whole zero-tailed block (:func:`viterbi`) is the same with the known
start and end state imposed by padding strongly-zero symbols on both sides.

Per batch of 32 windows the work is (best thread time per decoded bit measured here; it
grows by up to 1.5x when the two cores are shared): costs (int16 arithmetic, vectorised,
0.5 ns), an 8x8 byte transpose of uint64 words into the lanes (0.4 ns), add-compare-select
(1.7 ns, AVX2 uint8 with saturating adds, renormalised every 4 steps: the largest part), a
traceback eight lanes at a time, each lane's path a uint64 shift register that finds its
decision in the bit-reversed decision bytes with a mask and a shift (1 ns), and the link
quality on the first 512 bits of each window (0.3 ns). Error rate at r=1/2 with 8-bit
symbols: at the soft-decision union bound of the code (BER 1.9e-5 at Eb/N0 4 dB, 3.3e-6
at 4.5 dB; benchmarks/bench_viterbi.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from groundseg._numba import kernel
from groundseg.coding._viterbi_acs import LANES, acs
from groundseg.coding._viterbi_gen import POLY_A, POLY_B

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
#: Link quality (and the ambiguity decisions) are measured on the first QUALITY_BITS bits of
#: each window: plenty for a rate estimate, a quarter of the re-encoding work.
QUALITY_BITS = 512

_ERASE = 0
_STRONG_ZERO = -127


def _symbol_table() -> np.ndarray:
    """(G1 << 1) | G2 output for each 7-bit register value (bit 0 = newest input)."""
    t = np.zeros(128, np.uint8)
    for r in range(128):
        t[r] = ((bin(r & POLY_A).count("1") & 1) << 1) | (bin(r & POLY_B).count("1") & 1)
    return t


_SYM = _symbol_table()


# --- code geometry -----------------------------------------------------------------------

@dataclass(frozen=True)
class _Code:
    rate: str
    variant: str
    period_bits: int        # Pb: input bits per puncturing period
    period_symbols: int     # Ps: channel symbols per period
    keep: tuple             # (C1 pattern, C2 pattern)

    @cached_property
    def depth(self) -> int:
        step = 2 * self.period_bits
        return -(-DEPTH[self.rate] // step) * step

    block: int = BLOCK_BITS

    @cached_property
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
def _cost(v):
    """Cost of "bit 0" (0..30, 15 = erasure) for a soft value v in -127..127:
    15 +- max((|v| * 121 + 512) >> 10, 1) (= round(|v| * 15 / 127) at least 1 away from 15
    for v != 0, so the hard decision keeps every non-zero symbol). int16 arithmetic without
    division or tables: the loops around it vectorise 16 lanes wide."""
    a = np.int16(v)
    m = np.int16(max(np.int16((np.int16(abs(a)) * np.int16(121) + np.int16(512)) >> np.int16(10)),
                     np.int16(a != 0)))
    return np.uint8(np.int16(15) + (m if a > 0 else np.int16(-m)))


@kernel
def _costs_half(src, swap, s0, s1, c0, c1):
    """src: the symbol pairs as int16 (first symbol in the low byte): every load, operation
    and store is a contiguous 16-lane one, which LLVM vectorises (int8 pairs would need
    de-interleaving shuffles)."""
    s8 = np.int16(8)
    lim = np.int16(-127)
    if swap:
        for i in range(c0.size):
            w = src[i]
            a = np.int16(max(np.int16(w >> s8), lim) * s0)
            b = np.int16(max(np.int16(np.int16(w << s8) >> s8), lim) * s1)
            c0[i] = _cost(a)
            c1[i] = _cost(b)
    else:
        for i in range(c0.size):
            w = src[i]
            a = np.int16(max(np.int16(np.int16(w << s8) >> s8), lim) * s0)
            b = np.int16(max(np.int16(w >> s8), lim) * s1)
            c0[i] = _cost(a)
            c1[i] = _cost(b)


@kernel
def _costs_kernel(ch, ch_base, step0, nsteps, valid_end, pb, ps, offset, idx, sign, pad_before, pad_after, c0, c1):
    """Costs of the G1 and G2 symbols of the base code for steps step0..step0+nsteps from
    channel symbols ch (ch[0] is absolute symbol ch_base); steps < 0 or >= valid_end are
    the padding soft values, punctured symbols erasures."""
    lo = min(max(-step0, 0), nsteps)                 # first index of a real step
    hi = min(max(valid_end - step0, lo), nsteps)     # end of the real steps
    pb_cost = _cost(pad_before)
    pa_cost = _cost(pad_after)
    for i in range(lo):
        c0[i] = pb_cost
        c1[i] = pb_cost
    for i in range(hi, nsteps):
        c0[i] = pa_cost
        c1[i] = pa_cost
    if hi <= lo:
        return
    if pb == 1:                                      # rate 1/2: no puncturing, two symbols a step
        j0 = offset - ch_base + 2 * (step0 + lo)
        _costs_half(ch[j0:j0 + 2 * (hi - lo)].view(np.int16), idx[0, 0] == 1, np.int16(sign[0, 0]), np.int16(sign[0, 1]),
                    c0[lo:hi], c1[lo:hi])
        return
    # punctured: walk the phases incrementally (no division per step)
    s = step0 + lo
    q = s // pb
    ph = s - q * pb
    base = offset + q * ps - ch_base
    erased = _cost(0)
    for i in range(lo, hi):
        j0 = idx[ph, 0]
        j1 = idx[ph, 1]
        c0[i] = _cost(max(np.int32(ch[base + j0]), np.int32(-127)) * sign[ph, 0]) if j0 >= 0 else erased
        c1[i] = _cost(max(np.int32(ch[base + j1]), np.int32(-127)) * sign[ph, 1]) if j1 >= 0 else erased
        ph += 1
        if ph == pb:
            ph = 0
            base += ps


_M32 = np.uint64(0x00000000FFFFFFFF)
_M32H = np.uint64(0xFFFFFFFF00000000)
_M16 = np.uint64(0x0000FFFF0000FFFF)
_M16H = np.uint64(0xFFFF0000FFFF0000)
_M8 = np.uint64(0x00FF00FF00FF00FF)
_M8H = np.uint64(0xFF00FF00FF00FF00)


@kernel
def _transpose(src, starts, nsteps, dst):
    """Lane-major costs for the ACS: dst byte t*LANES + l = src byte starts[l] + t. Both are
    uint64 views (starts and nsteps multiples of 8): 8 lanes x 8 steps are moved as eight
    words through a three-stage 8x8 byte transpose, several times faster than byte stores."""
    s32 = np.uint64(32)
    s16 = np.uint64(16)
    s8 = np.uint64(8)
    q = LANES // 8
    for g in range(q):
        w0 = starts[8 * g] >> 3
        w1 = starts[8 * g + 1] >> 3
        w2 = starts[8 * g + 2] >> 3
        w3 = starts[8 * g + 3] >> 3
        w4 = starts[8 * g + 4] >> 3
        w5 = starts[8 * g + 5] >> 3
        w6 = starts[8 * g + 6] >> 3
        w7 = starts[8 * g + 7] >> 3
        for b in range(nsteps >> 3):
            x0 = src[w0 + b]
            x1 = src[w1 + b]
            x2 = src[w2 + b]
            x3 = src[w3 + b]
            x4 = src[w4 + b]
            x5 = src[w5 + b]
            x6 = src[w6 + b]
            x7 = src[w7 + b]
            y0 = (x0 & _M32) | (x4 << s32)               # 4x4 blocks
            y4 = (x0 >> s32) | (x4 & _M32H)
            y1 = (x1 & _M32) | (x5 << s32)
            y5 = (x1 >> s32) | (x5 & _M32H)
            y2 = (x2 & _M32) | (x6 << s32)
            y6 = (x2 >> s32) | (x6 & _M32H)
            y3 = (x3 & _M32) | (x7 << s32)
            y7 = (x3 >> s32) | (x7 & _M32H)
            z0 = (y0 & _M16) | ((y2 & _M16) << s16)      # 2x2 blocks of 16 bits
            z2 = ((y0 >> s16) & _M16) | (y2 & _M16H)
            z1 = (y1 & _M16) | ((y3 & _M16) << s16)
            z3 = ((y1 >> s16) & _M16) | (y3 & _M16H)
            z4 = (y4 & _M16) | ((y6 & _M16) << s16)
            z6 = ((y4 >> s16) & _M16) | (y6 & _M16H)
            z5 = (y5 & _M16) | ((y7 & _M16) << s16)
            z7 = ((y5 >> s16) & _M16) | (y7 & _M16H)
            t = 8 * b * q + g                            # bytes
            dst[t] = (z0 & _M8) | ((z1 & _M8) << s8)
            dst[t + q] = ((z0 >> s8) & _M8) | (z1 & _M8H)
            dst[t + 2 * q] = (z2 & _M8) | ((z3 & _M8) << s8)
            dst[t + 3 * q] = ((z2 >> s8) & _M8) | (z3 & _M8H)
            dst[t + 4 * q] = (z4 & _M8) | ((z5 & _M8) << s8)
            dst[t + 5 * q] = ((z4 >> s8) & _M8) | (z5 & _M8H)
            dst[t + 6 * q] = (z6 & _M8) | ((z7 & _M8) << s8)
            dst[t + 7 * q] = ((z6 >> s8) & _M8) | (z7 & _M8H)


_U1 = np.uint64(1)
_U3 = np.uint64(3)
_U5 = np.uint64(5)
_U7 = np.uint64(7)
_U63 = np.uint64(63)
_UROW = np.uint64(8 * LANES)
#: bit-reversed bytes
_REV8 = np.array([int(f"{i:08b}"[::-1], 2) for i in range(256)], np.uint8)


@kernel
def _tb_step(q, dec, row):
    """One traceback step of a lane. q holds the path with the oldest known bit at the bottom:
    its low six bits are the state bit-reversed, r = rev6(s). The decision of s at this step
    (1 = the survivor comes from the upper predecessor, whose oldest bit is 1) is bit r >> 3
    of dec[row + LANES * (r & 7)] (see _viterbi_gen), and it is the bit shifted in."""
    d = np.uint64(dec[row + ((q & _U7) << _U5)])
    return (q << _U1) | ((d >> ((q >> _U3) & _U7)) & _U1)


@kernel
def _tb_store(q, out, l, m, nbytes):
    """q (bit j = the bit of step a + j) -> bytes 8m .. 8m + 7 of out[l], MSB first."""
    for i in range(8):
        j = 8 * m + i
        if j < nbytes:
            out[l, j] = _REV8[(q >> np.uint64(8 * i)) & np.uint64(255)]


@kernel
def _traceback(ma, dec, nsteps, first, nbytes, out, seed):
    """From the best final state of each lane back to step ``first``: the bits of steps
    first .. first + 8*nbytes - 1 packed MSB first into out[l, :nbytes]; seed[l] = the state
    before step ``first`` (its six bits seed the re-encoder). Each lane's path is a uint64
    shift register (see _tb_step): after step t its bit j is the bit of step t - 6 + j, so
    every 64 steps it is a whole output word. Eight lanes at a time, in registers."""
    state = np.empty(LANES, np.uint64)
    for l in range(LANES):
        best = 0
        bm = ma[l]
        for s in range(1, 64):
            v = ma[s * LANES + l]
            if v < bm:
                bm = v
                best = s
        state[l] = np.uint64(_REV8[best] >> 2)
    nw = (nbytes + 7) >> 3                           # output words
    top = first + 6 + 64 * (nw - 1)                  # step after which the last word is complete
    for l in range(0, LANES, 8):
        q0 = state[l + 0]
        q1 = state[l + 1]
        q2 = state[l + 2]
        q3 = state[l + 3]
        q4 = state[l + 4]
        q5 = state[l + 5]
        q6 = state[l + 6]
        q7 = state[l + 7]
        row = np.uint64((nsteps - 1) * 8 * LANES + l)
        for _ in range(nsteps - top):
            q0 = _tb_step(q0, dec, row)
            q1 = _tb_step(q1, dec, row + np.uint64(1))
            q2 = _tb_step(q2, dec, row + np.uint64(2))
            q3 = _tb_step(q3, dec, row + np.uint64(3))
            q4 = _tb_step(q4, dec, row + np.uint64(4))
            q5 = _tb_step(q5, dec, row + np.uint64(5))
            q6 = _tb_step(q6, dec, row + np.uint64(6))
            q7 = _tb_step(q7, dec, row + np.uint64(7))
            row -= _UROW
        for m in range(nw - 1, -1, -1):
            _tb_store(q0, out, l + 0, m, nbytes)
            _tb_store(q1, out, l + 1, m, nbytes)
            _tb_store(q2, out, l + 2, m, nbytes)
            _tb_store(q3, out, l + 3, m, nbytes)
            _tb_store(q4, out, l + 4, m, nbytes)
            _tb_store(q5, out, l + 5, m, nbytes)
            _tb_store(q6, out, l + 6, m, nbytes)
            _tb_store(q7, out, l + 7, m, nbytes)
            for _ in range(64 if m else 6):
                q0 = _tb_step(q0, dec, row)
                q1 = _tb_step(q1, dec, row + np.uint64(1))
                q2 = _tb_step(q2, dec, row + np.uint64(2))
                q3 = _tb_step(q3, dec, row + np.uint64(3))
                q4 = _tb_step(q4, dec, row + np.uint64(4))
                q5 = _tb_step(q5, dec, row + np.uint64(5))
                q6 = _tb_step(q6, dec, row + np.uint64(6))
                q7 = _tb_step(q7, dec, row + np.uint64(7))
                row -= _UROW
        seed[l + 0] = np.int64(_REV8[q0 & _U63] >> 2)
        seed[l + 1] = np.int64(_REV8[q1 & _U63] >> 2)
        seed[l + 2] = np.int64(_REV8[q2 & _U63] >> 2)
        seed[l + 3] = np.int64(_REV8[q3 & _U63] >> 2)
        seed[l + 4] = np.int64(_REV8[q4 & _U63] >> 2)
        seed[l + 5] = np.int64(_REV8[q5 & _U63] >> 2)
        seed[l + 6] = np.int64(_REV8[q6 & _U63] >> 2)
        seed[l + 7] = np.int64(_REV8[q7 & _U63] >> 2)


@kernel
def _link_quality(out, seed, c0, c1, starts, first, nout, bits, stats):
    """Re-encode each lane's decoded bits and compare with the received symbols' costs:
    stats[l] = symbols compared (not erased), symbol errors, sum of y, sum of y^2 where
    y = cost - 15 (the soft symbol on the decoder's 31-level scale) signed by the re-encoded
    symbol. The re-encoder is written as the generators' taps
    (G1: delays 0,1,2,3,6; G2: 0,2,3,5,6) so the loop vectorises; ``bits`` is scratch."""
    for l in range(starts.size):
        m = nout[l]
        for k in range(6):
            bits[5 - k] = (seed[l] >> k) & 1
        ol = out[l]
        for i in range((m + 7) >> 3):               # whole bytes (bits beyond m are not read)
            b = ol[i]
            for k in range(8):
                bits[6 + 8 * i + k] = (b >> np.uint8(7 - k)) & np.uint8(1)
        row0 = starts[l] + first
        r0 = c0[row0:row0 + m]
        r1 = c1[row0:row0 + m]
        # per symbol: int16 lanes; the sums in int32 (at most 2 * 2048 * 225)
        n = np.int32(0)
        err = np.int32(0)
        sy = np.int32(0)
        sy2 = np.int32(0)
        for j in range(m):
            d0 = bits[j + 6]
            d2 = bits[j + 4]
            d3 = bits[j + 3]
            d6 = bits[j]
            g1 = d0 ^ bits[j + 5] ^ d2 ^ d3 ^ d6
            g2 = d0 ^ d2 ^ d3 ^ bits[j + 1] ^ d6
            x0 = np.int16(np.int16(r0[j]) - np.int16(15))
            x1 = np.int16(np.int16(r1[j]) - np.int16(15))
            y0 = x0 if g1 else np.int16(-x0)
            y1 = x1 if g2 else np.int16(-x1)
            n += np.int32(np.int16(x0 != 0) + np.int16(x1 != 0))
            err += np.int32(np.int16(y0 < 0) + np.int16(y1 < 0))
            sy += np.int32(np.int16(y0 + y1))
            sy2 += np.int32(np.int16(x0 * x0 + x1 * x1))
        stats[l, 0] = n
        stats[l, 1] = err
        stats[l, 2] = sy
        stats[l, 3] = sy2


@kernel
def _quantize_kernel(x, scale, out):
    for i in range(x.size):
        v = x[i]
        if np.isnan(v):
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

@kernel
def _decode_windows(cw0, cw1, starts, nout, qbits, nsteps, depth, c1w, c2w, ma, mb, dec, out, seed, scratch,
                    lstats, st, no, bits, stats):
    """Every window, LANES at a time, in one call: transpose the costs to the lanes, ACS,
    traceback, link quality; packed bits to bits[i], stats to stats[i]."""
    c0 = cw0.view(np.uint8)
    c1 = cw1.view(np.uint8)
    c1t = c1w.view(np.uint8)
    c2t = c2w.view(np.uint8)
    n = starts.size
    nbytes = out.shape[1]
    for b0 in range(0, n, LANES):
        m = min(LANES, n - b0)
        for l in range(LANES):
            k = b0 + l if l < m else b0                  # idle lanes repeat a real window
            st[l] = starts[k]
            no[l] = min(nout[k], qbits) if l < m else 0
        _transpose(cw0, st, nsteps, c1w)
        _transpose(cw1, st, nsteps, c2w)
        ma[:] = 0
        acs(c1t, c2t, nsteps, ma, mb, dec)
        _traceback(ma, dec, nsteps, depth, nbytes, out, seed)
        _link_quality(out, seed, c0, c1, st, depth, no, scratch, lstats)
        for l in range(m):
            bits[b0 + l, :] = out[l, :]
            stats[b0 + l, :] = lstats[l, :]


class _Engine:
    """Decodes windows of costs, LANES at a time; owns the work buffers."""

    def __init__(self, depth: int, block_bits: int):
        self.depth = depth
        self.block_bits = block_bits
        self.nsteps = 2 * depth + block_bits          # a multiple of 8
        L, W = LANES, self.nsteps
        self.c1w = np.empty(W * L // 8, np.uint64)   # word views for the transpose
        self.c2w = np.empty(W * L // 8, np.uint64)
        self.c1t = self.c1w.view(np.uint8)
        self.c2t = self.c2w.view(np.uint8)
        self.ma = np.empty(64 * L, np.uint8)
        self.mb = np.empty(64 * L, np.uint8)
        self.dec = np.empty(W * 8 * L, np.uint8)
        self.out = np.empty((L, block_bits // 8), np.uint8)
        self.seed = np.empty(L, np.int64)
        self.scratch = np.empty(block_bits + 6, np.uint8)
        self.lstats = np.empty((L, 4), np.int64)
        self.st = np.empty(L, np.int64)
        self.no = np.empty(L, np.int64)

    def decode(self, costs: np.ndarray, starts: np.ndarray, nout: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """costs: (2, N) uint64 words holding the G1 and G2 cost bytes per step; window i reads
        steps starts[i] .. starts[i] + nsteps (multiples of 8) and delivers nout[i] bits.
        Returns packed bits (n, block_bits // 8) (valid up to nout) and stats (n, 4) int64."""
        n = starts.size
        bits = np.empty((n, self.block_bits // 8), np.uint8)
        stats = np.empty((n, 4), np.int64)
        _decode_windows(costs[0], costs[1], starts, nout, QUALITY_BITS, self.nsteps, self.depth, self.c1w,
                        self.c2w, self.ma, self.mb, self.dec, self.out, self.seed, self.scratch, self.lstats,
                        self.st, self.no, bits, stats)
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
    packed, _ = _decode_range(code, ch, 0, Hypothesis(), 0, nbits, nbits, _STRONG_ZERO,
                              _STRONG_ZERO if terminated else _ERASE)
    return packed


def _decode_range(code: _Code, ch: np.ndarray, ch_base: int, hyp: Hypothesis, k0: int, nwin_bits: int,
                  valid_end: int, pad_before: int, pad_after: int) -> tuple[np.ndarray, np.ndarray]:
    """Bits [k0*B, k0*B + nwin_bits) of the stream (windows k0...) packed MSB first (the last
    byte's unused bits zero), and per-window stats."""
    return _decode_ranges(code, ch, ch_base, [(hyp, nwin_bits, valid_end)], k0, pad_before, pad_after)[0]


def _decode_ranges(code: _Code, ch: np.ndarray, ch_base: int, jobs: list, k0: int,
                   pad_before: int, pad_after: int) -> list:
    """The same windows under several hypotheses, jobs = [(hyp, nwin_bits, valid_end)], in one
    pass of the engine (so a search fills the lanes); [(packed, stats)] per job."""
    eng = _engine(code)
    B, D = code.block_bits, code.depth
    step0 = k0 * B - D
    nwins = [-(-nwin_bits // B) for _, nwin_bits, _ in jobs]
    total = sum(n * B + 2 * D for n in nwins)
    costs = np.empty((2, total // 8), np.uint64)     # steps of every job, back to back
    c0 = costs[0].view(np.uint8)
    c1 = costs[1].view(np.uint8)
    starts, nouts = [], []
    row = 0
    for (hyp, nwin_bits, valid_end), nwin in zip(jobs, nwins):
        nsteps = nwin * B + 2 * D
        idx, sign = _phase_map(code, hyp)
        _costs_kernel(ch, ch_base, step0, nsteps, valid_end, code.period_bits, code.period_symbols, hyp.offset,
                      idx, sign, pad_before, pad_after, c0[row:row + nsteps], c1[row:row + nsteps])
        starts.append(row + np.arange(nwin, dtype=np.int64) * B)
        nout = np.full(nwin, B, np.int64)
        nout[-1] = nwin_bits - (nwin - 1) * B
        nouts.append(nout)
        row += nsteps
    packed, stats = eng.decode(costs, np.concatenate(starts), np.concatenate(nouts))
    out = []
    w = 0
    for (hyp, nwin_bits, valid_end), nwin in zip(jobs, nwins):
        p = packed[w:w + nwin].reshape(-1)[:-(-nwin_bits // 8)]
        if nwin_bits % 8:
            p[-1] &= (0xFF << (8 - nwin_bits % 8)) & 0xFF
        out.append((p, stats[w:w + nwin]))
        w += nwin
    return out


__all__ = ["K", "G1", "G2", "PUNCTURE", "RATES", "VARIANTS", "QUANT_TARGET", "Hypothesis",
           "quantize", "encode", "viterbi", "symbols_to_soft"]
