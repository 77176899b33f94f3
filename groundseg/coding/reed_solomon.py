"""Reed-Solomon codec of CCSDS 131.0-B-4 section 4 (TM Synchronization and Channel Coding).

The codes are RS(255,223) with E=16 (``parity=32``) and RS(255,239) with E=8
(``parity=16``) over GF(256) built on F(x) = x^8+x^7+x^2+x+1, with code
generator g(x) = prod_{j=128-E}^{127+E} (x - alpha^(11 j)), i.e. first
consecutive root 128-E and primitive element beta = alpha^11. Symbols are in
Berlekamp's dual basis by default (``dual_basis=True``), the conventional
(polynomial) basis otherwise.

A codeblock of interleave depth I (1, 2, 3, 4, 5 or 8) holds I codewords:
byte j of the codeblock belongs to codeword j mod I; the I*(255-2E-q) data
bytes come first, then the I*2E parity bytes. q bytes of virtual fill per
codeword (shortened codes, e.g. (252,220) with q=3) are implied zeros at the
start of every codeword and never transmitted; the batch's row length fixes q.

Batches are 2-D uint8 arrays, one codeblock (or data block) per row. A 1-D
array is one row, and the results are then 1-D too (data row, ``(I,)``
corrections).

The decoder runs in one numba kernel per batch (GIL released). Clean
codewords are found by re-encoding the data bytes with a table-driven LFSR
whose 32-byte parity register is four uint64 words (the table works directly
on dual-basis bytes; two symbols per step, two codewords in step) and comparing
with the received parity. Only codewords whose parity differs take the error path:
syndromes from the parity difference (the received word modulo g(x)) through
one table row per byte, Berlekamp-Massey with zero-aware log tables, a Chien
search of all positions at once as XORs of precomputed 256-byte rows (the
odd terms give Lambda' for Forney), and Forney. A codeword is refused
(corrections -1, data returned as received) whenever the failure is
detectable: locator degree above E or unequal to the LFSR length, fewer roots
among the transmitted positions than the degree (a root in the virtual fill
counts as missing), a zero error value, or a correction whose syndromes do
not equal the received ones (the corrected word would not be a codeword).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from groundseg._numba import kernel

__all__ = [
    "FIELD_POLYNOMIAL", "PRIMITIVE_ELEMENT_POWER", "INTERLEAVE_DEPTHS", "PARITY_LENGTHS",
    "FIRST_CONSECUTIVE_ROOT", "TO_DUAL", "FROM_DUAL", "CodewordLayout", "codeword_layout",
    "generator_polynomial", "encode", "decode",
]

#: x^8+x^7+x^2+x+1, CCSDS 131.0-B-4 4.3.2.
FIELD_POLYNOMIAL = 0x187
#: The code generator's roots are powers of beta = alpha^11.
PRIMITIVE_ELEMENT_POWER = 11
INTERLEAVE_DEPTHS = (1, 2, 3, 4, 5, 8)
#: 2E parity symbols per codeword: 32 for (255,223), 16 for (255,239).
PARITY_LENGTHS = (16, 32)
#: First consecutive root of g(x) (as a power of beta): 128 - E.
FIRST_CONSECUTIVE_ROOT = {32: 112, 16: 120}

NN = 255


# --- Galois field tables (built once at import; tiny) -------------------------------------

def _alpha_tables() -> tuple[np.ndarray, np.ndarray]:
    exp = np.zeros(NN, np.int32)
    x = 1
    for i in range(NN):
        exp[i] = x
        x <<= 1
        if x & 0x100:
            x ^= FIELD_POLYNOMIAL
    log = np.zeros(256, np.int32)
    log[exp] = np.arange(NN)
    return exp, log


_ALPHA_EXP, _ = _alpha_tables()

# Logarithms to base beta = alpha^11: in them the code's roots are consecutive
# powers, so the decoder is the textbook one with no "prim" bookkeeping.
_EXP = _ALPHA_EXP[(PRIMITIVE_ELEMENT_POWER * np.arange(NN)) % NN].astype(np.int32)
_LOG = np.zeros(256, np.int32)
_LOG[_EXP] = np.arange(NN, dtype=np.int32)
_LOG[0] = 0  # log 0 is undefined: table builders test for zero first


def _gf_mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return int(_EXP[(_LOG[a] + _LOG[b]) % NN])


def _dual_tables() -> tuple[np.ndarray, np.ndarray]:
    # CCSDS 131.0-B (annex on the Berlekamp representation): conventional ->
    # dual basis is the GF(2)-linear map whose rows for the conventional bits
    # alpha^7..alpha^0 are these bytes (libfec's Tal table agrees).
    rows = (0x8D, 0xEF, 0xEC, 0x86, 0xFA, 0x99, 0xAF, 0x7B)
    to_dual = np.zeros(256, np.uint8)
    for v in range(256):
        z = 0
        for k in range(8):
            if v & (1 << k):
                z ^= rows[7 - k]
        to_dual[v] = z
    from_dual = np.zeros(256, np.uint8)
    from_dual[to_dual] = np.arange(256, dtype=np.uint8)
    return to_dual, from_dual


#: Conventional -> dual basis and back, one byte each (256-entry tables).
TO_DUAL, FROM_DUAL = _dual_tables()
_IDENTITY = np.arange(256, dtype=np.uint8)


def generator_polynomial(parity: int = 32) -> np.ndarray:
    """g(x) coefficients, highest degree first (monic, length parity+1), conventional basis."""
    _check_parity(parity)
    g = [1]
    for j in range(parity):
        root = int(_EXP[(FIRST_CONSECUTIVE_ROOT[parity] + j) % NN])
        out = [0] * (len(g) + 1)
        for i, c in enumerate(g):  # (g(x)) * (x + root), highest degree first
            out[i] ^= c
            out[i + 1] ^= _gf_mul(c, root)
        g = out
    return np.array(g, np.uint8)


def _pack_words(byte_rows: np.ndarray) -> np.ndarray:
    """(m, 32) bytes -> (m, 4) uint64, byte 0 in the top byte of word 0."""
    padded = np.zeros((byte_rows.shape[0], 32), np.uint8)
    padded[:, :byte_rows.shape[1]] = byte_rows
    return padded.reshape(-1, 4, 8).view(">u8").reshape(-1, 4).astype(np.uint64)


def _mul_table() -> np.ndarray:
    a = np.arange(256)
    la, lb = np.meshgrid(_LOG[a], _LOG[a], indexing="ij")
    t = _EXP[(la + lb) % NN].astype(np.uint8)
    t[0, :] = 0
    t[:, 0] = 0
    return t


_MUL = _mul_table()


def _lfsr_table(parity: int, dual: bool) -> np.ndarray:
    """(256, 4) uint64: feedback symbol f -> f * (g_{p-1}, ..., g_0) packed.

    For the dual basis the index and the entries are dual-basis bytes: the
    map is GF(2)-linear, so the encoder never converts data bytes.
    """
    g = generator_polynomial(parity)[1:]  # g_{p-1} .. g_0
    f = np.arange(256)
    fc = FROM_DUAL[f] if dual else f
    prod = _MUL[fc[:, None], g[None, :]]
    if dual:
        prod = TO_DUAL[prod]
    return _pack_words(prod)


def _lfsr_table2(tab: np.ndarray) -> np.ndarray:
    """(256, 4) uint64: ``tab``'s rows after one more zero symbol through the LFSR."""
    top = (tab[:, 0] >> np.uint64(56)).astype(np.intp)
    out = np.empty_like(tab)
    for w in range(3):
        out[:, w] = (tab[:, w] << np.uint64(8)) | (tab[:, w + 1] >> np.uint64(56))
    out[:, 3] = tab[:, 3] << np.uint64(8)
    return out ^ tab[top]


def _syndrome_table(parity: int, dual: bool) -> np.ndarray:
    """(parity, 256, 4) uint64: parity-difference byte b with value v -> its syndromes packed.

    Byte b of the parity region has degree parity-1-b; syndrome j evaluates at
    beta^(fcr+j). The received word modulo g(x) is this difference, so its
    syndromes are the codeword's.
    """
    fcr = FIRST_CONSECUTIVE_ROOT[parity]
    v = np.arange(256)
    vc = FROM_DUAL[v] if dual else v
    out = np.zeros((parity, 256, parity), np.uint8)
    for b in range(parity):
        deg = parity - 1 - b
        powers = _EXP[((fcr + np.arange(parity)) * deg) % NN]
        out[b] = _MUL[vc[:, None], powers[None, :]]
    return _pack_words(out.reshape(-1, parity)).reshape(parity, 256, 4)


def _chien_table() -> np.ndarray:
    """(17, 2, 16, 256) uint8: [m, h, v, i] = (v << 4h) (conventional) * beta^(-m i)."""
    m = np.arange(17)[:, None]
    i = np.arange(256)[None, :]
    powers = _EXP[(-m * i) % NN]  # (17, 256)
    v = np.arange(16)
    nibbles = np.stack([v, v << 4])  # (2, 16)
    return _MUL[nibbles[None, :, :, None], powers[:, None, None, :]]


_CHIEN = np.ascontiguousarray(_chien_table())
#: (255, 32) int32: (i * j) mod 255, the exponent steps of the syndrome re-check.
_JMUL = ((np.arange(NN)[:, None] * np.arange(32)[None, :]) % NN).astype(np.int32)


class _GF(NamedTuple):
    logz: np.ndarray  # (256,) int32, log to base beta; 511 for 0
    expz: np.ndarray  # (1024,) int32, antilog of k mod 255 below 510, 0 from 510


def _gf_zero_aware() -> _GF:
    logz = _LOG.copy()
    logz[0] = 511
    expz = np.zeros(1024, np.int32)
    expz[:510] = np.concatenate([_EXP, _EXP])
    return _GF(logz, expz)


_GFZ = _gf_zero_aware()


class _Work(NamedTuple):
    """Scratch arrays of the error path, allocated once per batch."""
    syn: np.ndarray
    slog: np.ndarray
    lam: np.ndarray
    bb: np.ndarray
    tmp: np.ndarray
    roots: np.ndarray
    values: np.ndarray
    odd: np.ndarray
    even: np.ndarray


def _work() -> _Work:
    small = (np.zeros(33, np.int32) for _ in range(7))
    return _Work(*small, np.zeros(256, np.uint8), np.zeros(256, np.uint8))


_TABLES: dict = {}


def _tables(parity: int, dual: bool):
    key = (parity, dual)
    if key not in _TABLES:
        lfsr = _lfsr_table(parity, dual)
        _TABLES[key] = (
            np.ascontiguousarray(lfsr).ravel(),                  # flat: see _lfsr2
            np.ascontiguousarray(_lfsr_table2(lfsr)).ravel(),
            _syndrome_table(parity, dual),
            TO_DUAL if dual else _IDENTITY,
        )
    return _TABLES[key]


# --- Validation and layout ---------------------------------------------------------------

def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_parity(parity) -> None:
    if not _is_int(parity) or parity not in PARITY_LENGTHS:
        raise ValueError(f"parity must be 32 (RS(255,223), E=16) or 16 (RS(255,239), E=8), got {parity!r}")


def _check_interleave(interleave) -> None:
    if not _is_int(interleave) or interleave not in INTERLEAVE_DEPTHS:
        raise ValueError(f"interleave must be one of {INTERLEAVE_DEPTHS} (CCSDS 131.0-B-4), got {interleave!r}")


@dataclass(frozen=True)
class CodewordLayout:
    """How a codeblock row splits into codewords (CCSDS 131.0-B-4 4.3.7, shortening 4.3.8)."""

    interleave: int
    parity: int
    virtual_fill: int       # q: implied zero symbols at the start of each codeword
    codeword_length: int    # 255 - q: transmitted symbols per codeword
    data_per_codeword: int  # 255 - parity - q

    @property
    def codeblock_length(self) -> int:
        return self.interleave * self.codeword_length

    @property
    def data_length(self) -> int:
        return self.interleave * self.data_per_codeword


def codeword_layout(row_length: int, interleave: int = 1, parity: int = 32, *,
                    codeblock: bool = True) -> CodewordLayout:
    """Layout for a codeblock row (``codeblock=True``) or a data row of ``row_length`` bytes.

    Raises ValueError if the length does not split into ``interleave`` codewords
    of at least one data byte each.
    """
    _check_interleave(interleave)
    _check_parity(parity)
    k = NN - parity
    what = "codeblock" if codeblock else "data"
    full = NN if codeblock else k
    if row_length % interleave:
        raise ValueError(f"{what} length {row_length} is not a multiple of interleave depth {interleave}")
    per = row_length // interleave
    lowest = parity + 1 if codeblock else 1
    if not lowest <= per <= full:
        raise ValueError(
            f"{what} length {row_length} with interleave {interleave} gives {per} bytes per codeword; "
            f"expected {lowest}..{full} (at most {full * interleave} bytes per row)")
    q = full - per
    return CodewordLayout(interleave, parity, q, NN - q, k - q)


def _as_rows(array, name: str) -> tuple[np.ndarray, bool]:
    if isinstance(array, (bytes, bytearray, memoryview)):
        array = np.frombuffer(array, np.uint8)
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{name} must be a numpy uint8 array, got {type(array).__name__}")
    if array.dtype != np.uint8:
        raise ValueError(f"{name} must have dtype uint8, got {array.dtype}")
    if array.ndim == 1:
        return np.ascontiguousarray(array[None, :]), True
    if array.ndim != 2:
        raise ValueError(f"{name} must be 1-D (one row) or 2-D (one row per block), got {array.ndim}-D")
    return np.ascontiguousarray(array), False


# --- Kernels -------------------------------------------------------------------------------

_S8 = np.uint64(8)
_S2 = np.uint64(2)
_S16 = np.uint64(16)
_S48 = np.uint64(48)
_U1 = np.uint64(1)
_U2 = np.uint64(2)
_U3 = np.uint64(3)
_S56 = np.uint64(56)
_M8 = np.uint64(0xFF)


@kernel
def _lfsr2(ra, sa, rb, sb, stride, count, tab, tab2):
    # Remainder of x^p d(x) mod g(x) for two codewords (symbols ra[sa::stride]
    # and rb[sb::stride]): each register is 32 bytes in four words, feedback
    # from the top bytes. A register's chain waits on table loads, so two chains
    # run in step (1.8x measured over one), and each step takes two symbols
    # (slicing by 2, +35%): by linearity the first symbol's feedback goes through
    # ``tab2`` (its effect after one more shift) and the second's, read from the
    # register's second byte without waiting for the first lookup, through ``tab``.
    # Tables are (256, 4) flattened: a 2-D index multiplies by a run-time stride,
    # an IMUL in the chain (+30% without it); unsigned indices spare numba's
    # negative-index checks.
    a0 = np.uint64(0)
    a1 = np.uint64(0)
    a2 = np.uint64(0)
    a3 = np.uint64(0)
    b0 = np.uint64(0)
    b1 = np.uint64(0)
    b2 = np.uint64(0)
    b3 = np.uint64(0)
    ja = np.uint64(sa)
    jb = np.uint64(sb)
    step = np.uint64(stride)
    if count & 1:  # an odd symbol first, into the empty registers
        fa = np.uint64(ra[ja]) << _S2
        fb = np.uint64(rb[jb]) << _S2
        a0, a1, a2, a3 = tab[fa], tab[fa + _U1], tab[fa + _U2], tab[fa + _U3]
        b0, b1, b2, b3 = tab[fb], tab[fb + _U1], tab[fb + _U2], tab[fb + _U3]
        ja += step
        jb += step
    for _ in range(count >> 1):
        fa = ((a0 >> _S56) ^ np.uint64(ra[ja])) << _S2
        ga = (((a0 >> _S48) & _M8) ^ np.uint64(ra[ja + step])) << _S2
        fb = ((b0 >> _S56) ^ np.uint64(rb[jb])) << _S2
        gb = (((b0 >> _S48) & _M8) ^ np.uint64(rb[jb + step])) << _S2
        a0 = ((a0 << _S16) | (a1 >> _S48)) ^ tab2[fa] ^ tab[ga]
        b0 = ((b0 << _S16) | (b1 >> _S48)) ^ tab2[fb] ^ tab[gb]
        a1 = ((a1 << _S16) | (a2 >> _S48)) ^ tab2[fa + _U1] ^ tab[ga + _U1]
        b1 = ((b1 << _S16) | (b2 >> _S48)) ^ tab2[fb + _U1] ^ tab[gb + _U1]
        a2 = ((a2 << _S16) | (a3 >> _S48)) ^ tab2[fa + _U2] ^ tab[ga + _U2]
        b2 = ((b2 << _S16) | (b3 >> _S48)) ^ tab2[fb + _U2] ^ tab[gb + _U2]
        a3 = (a3 << _S16) ^ tab2[fa + _U3] ^ tab[ga + _U3]
        b3 = (b3 << _S16) ^ tab2[fb + _U3] ^ tab[gb + _U3]
        ja += step + step
        jb += step + step
    return a0, a1, a2, a3, b0, b1, b2, b3


@kernel
def _word_byte(w0, w1, w2, w3, b):
    w = w0 if b < 8 else (w1 if b < 16 else (w2 if b < 24 else w3))
    return np.uint8((w >> np.uint64(56 - 8 * (b & 7))) & _M8)


@kernel
def _encode_kernel(data, out, interleave, k_short, parity, tab, tab2):
    n_rows = data.shape[0]
    d_len = interleave * k_short
    for r in range(n_rows):
        for j in range(d_len):
            out[r, j] = data[r, j]
    # codewords in pairs over the whole batch (q -> row q // I, codeword q % I)
    n_cw = n_rows * interleave
    for q in range(0, n_cw, 2):
        ra, ca = q // interleave, q % interleave
        if q + 1 < n_cw:
            rb, cwb = (q + 1) // interleave, (q + 1) % interleave
        else:  # odd count: the last codeword runs twice
            rb, cwb = ra, ca
        a0, a1, a2, a3, b0, b1, b2, b3 = _lfsr2(data[ra], ca, data[rb], cwb, interleave, k_short,
                                                tab, tab2)
        oa = out[ra]
        ob = out[rb]
        for b in range(parity):
            oa[d_len + b * interleave + ca] = _word_byte(a0, a1, a2, a3, b)
            ob[d_len + b * interleave + cwb] = _word_byte(b0, b1, b2, b3, b)


@kernel
def _pack8(row, j, stride):
    v = np.uint64(0)
    for _ in range(8):
        v = (v << _S8) | np.uint64(row[j])
        j += stride
    return v


@kernel
def _pack_received(row, start, stride, parity):
    """The received parity symbols as the LFSR's four words (parity 16 fills two)."""
    w0 = _pack8(row, start, stride)
    w1 = _pack8(row, start + 8 * stride, stride)
    w2 = np.uint64(0)
    w3 = np.uint64(0)
    if parity == 32:
        w2 = _pack8(row, start + 16 * stride, stride)
        w3 = _pack8(row, start + 24 * stride, stride)
    return w0, w1, w2, w3


@kernel
def _correct_codeword(syn, parity, fcr, n_short, tabs, chien, jmul, w):
    """Berlekamp-Massey, Chien, Forney on syndromes ``syn`` (conventional, j = 0..parity-1).

    Returns the number of errors, with their degrees in ``w.roots`` and their
    values (conventional) in ``w.values``, or -1 when uncorrectable.
    ``tabs`` holds the zero-aware logs and antilogs: log 0 is 511, and every
    antilog index from 510 up reads 0, so products need no zero test.
    """
    logz = tabs.logz
    expz = tabs.expz
    lam = w.lam
    bb = w.bb
    tmp = w.tmp
    slog = w.slog
    t = parity // 2
    for i in range(parity):
        slog[i] = logz[syn[i]]
    for i in range(parity + 1):
        lam[i] = 0
        bb[i] = 0
    lam[0] = 1
    bb[0] = 1
    ell = 0
    bdeg = 0
    m = 1
    b_log = 0  # log of the last nonzero discrepancy (starts at 1)
    for nstep in range(parity):
        d = syn[nstep]
        for i in range(1, ell + 1):
            # unsigned indices spare numba's negative-index wraparound
            d ^= expz[np.uint32(logz[np.uint8(lam[i])] + slog[np.uint32(nstep - i)])]
        if d == 0:
            m += 1
            continue
        scale = logz[d] - b_log  # lam -= (d/b) x^m bb
        if scale < 0:
            scale += 255
        top = min(bdeg + 1, parity + 1 - m)
        if 2 * ell <= nstep:
            for i in range(ell + 1):
                tmp[i] = lam[i]
            for i in range(top):
                lam[i + m] ^= expz[np.uint32(logz[np.uint8(bb[i])] + scale)]
            for i in range(max(bdeg, ell) + 1):
                bb[i] = tmp[i] if i <= ell else 0
            bdeg = ell
            ell = nstep + 1 - ell
            b_log = logz[d]
            m = 1
        else:
            for i in range(top):
                lam[i + m] ^= expz[np.uint32(logz[np.uint8(bb[i])] + scale)]
            m += 1
    deg = 0
    for i in range(parity + 1):
        if lam[i] != 0:
            deg = i
    if deg > t or deg != ell or deg == 0:
        return -1
    # Chien search: Lambda(beta^-i) at every degree i at once. Multiplying by
    # lam_m is GF(2)-linear, so lam_m beta^(-m i) over all i is the XOR of two
    # precomputed 256-byte rows, one per nibble of lam_m (no data-dependent
    # branch). Odd and even terms apart: the odd part at X^-1 is X^-1
    # Lambda'(X^-1), Forney's denominator, for free.
    odd = w.odd
    even = w.even
    for i in range(256):
        odd[i] = 0
        even[i] = 0
    for mm in range(1, deg + 1, 2):
        lo = chien[mm, 0, lam[mm] & 15]
        hi = chien[mm, 1, lam[mm] >> 4]
        for i in range(256):
            odd[i] ^= lo[i] ^ hi[i]
    for mm in range(2, deg + 1, 2):
        lo = chien[mm, 0, lam[mm] & 15]
        hi = chien[mm, 1, lam[mm] >> 4]
        for i in range(256):
            even[i] ^= lo[i] ^ hi[i]
    roots = w.roots
    found = 0
    for i in range(n_short):  # transmitted degrees only: a root in the virtual fill is missed
        if (odd[i] ^ even[i]) == 1:  # lam_0 = 1
            if found == deg:
                return -1
            roots[found] = i
            found += 1
    if found != deg:
        return -1
    # Forney: Y = X^(1-fcr) Omega(X^-1) / Lambda'(X^-1) = X^-fcr Omega(X^-1) / odd(X^-1),
    # Omega = S Lambda mod x^deg, evaluated at every degree like Lambda.
    om = w.even
    for i in range(256):
        om[i] = 0
    for k in range(deg):
        o = syn[k]
        for i in range(1, k + 1):
            o ^= expz[slog[k - i] + logz[lam[i]]]
        lo = chien[k, 0, o & 15]
        hi = chien[k, 1, o >> 4]
        for i in range(256):
            om[i] ^= lo[i] ^ hi[i]
    values = w.values
    for r in range(deg):
        i = roots[r]
        num = om[i]
        den = odd[i]
        if num == 0 or den == 0:
            return -1
        values[r] = expz[(logz[num] + 255 - logz[den] + 255 - (i * fcr) % 255) % 255]
    # The error pattern must reproduce every syndrome, else the corrected
    # word is not a codeword (syndromes are linear in the word).
    chk = w.odd
    for j in range(parity):
        chk[j] = 0
    for r in range(deg):
        i = roots[r]
        base = (logz[values[r]] + i * fcr) % 255
        ji = jmul[i]
        for j in range(parity):
            chk[j] ^= np.uint8(expz[base + ji[j]])
    for j in range(parity):
        if chk[j] != syn[j]:
            return -1
    return deg


@kernel
def _check_codeword(row, o, corr_row, c, w0, w1, w2, w3, interleave, n_short, parity, fcr,
                    syn_tab, to_out, tabs, chien, jmul, w):
    """Compare the re-encoded parity with the received one; correct if they differ."""
    k_short = n_short - parity
    p0, p1, p2, p3 = _pack_received(row, interleave * k_short + c, interleave, parity)
    d0 = w0 ^ p0
    d1 = w1 ^ p1
    d2 = w2 ^ p2
    d3 = w3 ^ p3
    if (d0 | d1 | d2 | d3) == 0:
        corr_row[c] = 0
        return
    # syndromes of the parity difference (the received word mod g)
    s0 = np.uint64(0)
    s1 = np.uint64(0)
    s2 = np.uint64(0)
    s3 = np.uint64(0)
    for b in range(parity):
        v = _word_byte(d0, d1, d2, d3, b)
        s0 ^= syn_tab[b, v, 0]
        s1 ^= syn_tab[b, v, 1]
        s2 ^= syn_tab[b, v, 2]
        s3 ^= syn_tab[b, v, 3]
    syn = w.syn
    for j in range(parity):
        syn[j] = np.int32(_word_byte(s0, s1, s2, s3, j))
    nerr = _correct_codeword(syn, parity, fcr, n_short, tabs, chien, jmul, w)
    corr_row[c] = nerr
    for e in range(max(nerr, 0)):
        pos = n_short - 1 - w.roots[e]  # symbol index within the codeword
        if pos < k_short:
            o[pos * interleave + c] ^= to_out[w.values[e]]


@kernel
def _decode_kernel(cb, out, corr, interleave, n_short, parity, fcr,
                   lfsr_tab, lfsr_tab2, syn_tab, to_out, tabs, chien, jmul, w):
    n_rows = cb.shape[0]
    k_short = n_short - parity
    d_len = interleave * k_short
    for r in range(n_rows):
        for j in range(d_len):
            out[r, j] = cb[r, j]
    # codewords in pairs over the whole batch (q -> row q // I, codeword q % I)
    n_cw = n_rows * interleave
    for q in range(0, n_cw, 2):
        ra, ca = q // interleave, q % interleave
        pair = q + 1 < n_cw
        if pair:
            rb, cwb = (q + 1) // interleave, (q + 1) % interleave
        else:
            rb, cwb = ra, ca
        a0, a1, a2, a3, b0, b1, b2, b3 = _lfsr2(cb[ra], ca, cb[rb], cwb, interleave, k_short,
                                                lfsr_tab, lfsr_tab2)
        _check_codeword(cb[ra], out[ra], corr[ra], ca, a0, a1, a2, a3, interleave, n_short, parity,
                        fcr, syn_tab, to_out, tabs, chien, jmul, w)
        if pair:
            _check_codeword(cb[rb], out[rb], corr[rb], cwb, b0, b1, b2, b3, interleave, n_short,
                            parity, fcr, syn_tab, to_out, tabs, chien, jmul, w)


# --- Public API ------------------------------------------------------------------------------

def encode(data, interleave: int = 1, parity: int = 32, dual_basis: bool = True) -> np.ndarray:
    """Codeblocks for data rows: ``(n, I*(255-parity-q))`` uint8 -> ``(n, I*(255-q))`` uint8.

    Each row is its data followed by the interleaved parity (byte j belongs to
    codeword j mod I). A 1-D row gives a 1-D codeblock.
    """
    _check_interleave(interleave)
    _check_parity(parity)
    rows, one = _as_rows(data, "data")
    layout = codeword_layout(rows.shape[1], interleave, parity, codeblock=False)
    lfsr_tab, lfsr_tab2, _, _ = _tables(parity, bool(dual_basis))
    out = np.empty((rows.shape[0], layout.codeblock_length), np.uint8)
    _encode_kernel(rows, out, interleave, layout.data_per_codeword, parity, lfsr_tab, lfsr_tab2)
    return out[0] if one else out


def decode(codeblocks, interleave: int = 1, parity: int = 32,
           dual_basis: bool = True, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Correct codeblock rows: ``(n, I*(255-q))`` uint8 -> data ``(n, I*(255-parity-q))``, corrections.

    ``corrections`` is ``(n, I)`` int16: symbols corrected in each codeword
    (parity symbols included), -1 where the codeword is uncorrectable; that
    codeword's data bytes are returned as received. A 1-D codeblock gives a
    1-D data row and ``(I,)`` corrections. ``out``: a C-contiguous uint8 array of
    the data rows' shape to write them into (returned), for a caller reusing one.
    """
    _check_interleave(interleave)
    _check_parity(parity)
    rows, one = _as_rows(codeblocks, "codeblocks")
    layout = codeword_layout(rows.shape[1], interleave, parity, codeblock=True)
    lfsr_tab, lfsr_tab2, syn_tab, to_out = _tables(parity, bool(dual_basis))
    shape = (rows.shape[0], layout.data_length)
    if out is None:
        out = np.empty(shape, np.uint8)
    else:
        if one:
            out = out.reshape(1, -1) if out.ndim == 1 else out
        if out.shape != shape or out.dtype != np.uint8 or not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError(f"out must be a writable C-contiguous uint8 array of shape {shape}, "
                             f"not {out.dtype} {out.shape}")
    corr = np.zeros((rows.shape[0], interleave), np.int16)
    _decode_kernel(rows, out, corr, interleave, layout.codeword_length, parity,
                   FIRST_CONSECUTIVE_ROOT[parity], lfsr_tab, lfsr_tab2, syn_tab, to_out, _GFZ, _CHIEN, _JMUL, _work())
    if one:
        return out[0], corr[0]
    return out, corr
