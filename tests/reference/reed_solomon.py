"""Reed-Solomon (CCSDS 131.0-B-4 section 4), textbook and slow: GF(256) by shift-and-add
modulo x^8+x^7+x^2+x+1, g(x) from its roots beta^(128-E+j) with beta = alpha^11, encoding by
polynomial division, decoding by syndromes (Horner), Berlekamp-Massey, a brute-force Chien
search and Forney, then a re-check of the corrected word's syndromes."""
from __future__ import annotations

from functools import lru_cache

import numpy as np


def gf_mul(a: int, b: int) -> int:
    r = 0
    while b:
        if b & 1:
            r ^= a
        b >>= 1
        a <<= 1
        if a & 0x100:
            a ^= 0x187
    return r


def gf_pow(a: int, n: int) -> int:
    r = 1
    for _ in range(n % 255):
        r = gf_mul(r, a)
    return r


# Powers of alpha and beta = alpha^11 in plain Python (the slow part done once).
ALPHA_POW = [gf_pow(2, i) for i in range(255)]
BETA_POW = [ALPHA_POW[(11 * i) % 255] for i in range(255)]


@lru_cache(maxsize=None)
def gf_inv(a: int) -> int:
    assert a
    return gf_pow(a, 254)


def poly_eval(coeffs_high_first, x: int) -> int:
    acc = 0
    for c in coeffs_high_first:
        acc = gf_mul(acc, x) ^ c
    return acc


def ref_generator(parity: int) -> list[int]:
    fcr = 128 - parity // 2
    g = [1]
    for j in range(parity):
        root = BETA_POW[(fcr + j) % 255]
        g = [a ^ gf_mul(b, root) for a, b in zip(g + [0], [0] + g)]
    return g


def ref_encode_cw(data: list[int], parity: int) -> list[int]:
    """Conventional-basis systematic encoding: data || (x^p d(x) mod g(x))."""
    g = ref_generator(parity)
    rem = list(data) + [0] * parity
    for i in range(len(data)):
        coef = rem[i]
        if coef:
            for j in range(1, parity + 1):
                rem[i + j] ^= gf_mul(g[j], coef)
    return list(data) + rem[len(data):]


def ref_syndromes(cw: list[int], parity: int) -> list[int]:
    fcr = 128 - parity // 2
    return [poly_eval(cw, BETA_POW[(fcr + j) % 255]) for j in range(parity)]


def ref_decode_cw(cw: list[int], parity: int) -> tuple[list[int], int]:
    """Shortened codeword (len n <= 255, virtual fill implied in front) -> (corrected, count or -1)."""
    n = len(cw)
    t = parity // 2
    fcr = 128 - t
    s = ref_syndromes(cw, parity)
    if not any(s):
        return list(cw), 0
    # Berlekamp-Massey (Massey 1969)
    C, B = [1] + [0] * parity, [1] + [0] * parity
    L, m, b = 0, 1, 1
    for k in range(parity):
        d = s[k]
        for i in range(1, L + 1):
            d ^= gf_mul(C[i], s[k - i])
        if d == 0:
            m += 1
            continue
        coef = gf_mul(d, gf_inv(b))
        T = list(C)
        for i in range(parity + 1 - m):
            C[i + m] ^= gf_mul(coef, B[i])
        if 2 * L <= k:
            L, B, b, m = k + 1 - L, T, d, 1
        else:
            m += 1
    deg = max(i for i in range(parity + 1) if C[i])
    if deg != L or deg > t:
        return list(cw), -1
    lam_high_first = C[:deg + 1][::-1]
    # brute-force Chien over every degree of the full code; a root at a degree
    # >= n lies in the virtual fill
    roots = [i for i in range(255) if poly_eval(lam_high_first, BETA_POW[-i % 255]) == 0]
    if len(roots) != deg or any(i >= n for i in roots):
        return list(cw), -1
    omega = [0] * deg
    for i in range(deg):
        for j in range(i + 1):
            omega[i] ^= gf_mul(s[i - j], C[j])
    dlam = [C[i] if i % 2 == 1 else 0 for i in range(1, deg + 1)]  # coefficient of x^(i-1)
    out = list(cw)
    for i in roots:
        xinv = gf_inv(BETA_POW[i])
        num = poly_eval(omega[::-1], xinv)
        den = poly_eval(dlam[::-1], xinv)
        if den == 0 or num == 0:
            return list(cw), -1
        y = gf_mul(gf_mul(gf_pow(BETA_POW[i], (1 - fcr) % 255), num), gf_inv(den))
        out[n - 1 - i] ^= y
    if any(ref_syndromes(out, parity)):
        return list(cw), -1
    return out, deg


# CCSDS 131.0-B-4 Annex F: rows of the conventional -> Berlekamp transformation
# for the conventional bits alpha^7 .. alpha^0 (bit 7 of the byte first).
_T_ROWS = (0x8D, 0xEF, 0xEC, 0x86, 0xFA, 0x99, 0xAF, 0x7B)


def ref_to_dual(x: int) -> int:
    z = 0
    for bit in range(8):
        if x >> (7 - bit) & 1:
            z ^= _T_ROWS[bit]
    return z


_REF_FROM_DUAL = {ref_to_dual(x): x for x in range(256)}


def ref_encode(data: np.ndarray, interleave: int, parity: int, dual: bool) -> np.ndarray:
    rows = []
    for row in np.atleast_2d(data):
        k = row.size // interleave
        block = np.zeros((k + parity) * interleave, np.uint8)
        for c in range(interleave):
            d = [int(v) for v in row[c::interleave]]
            if dual:
                d = [_REF_FROM_DUAL[v] for v in d]
            cw = ref_encode_cw(d, parity)
            if dual:
                cw = [ref_to_dual(v) for v in cw]
            block[c::interleave] = cw
        rows.append(block)
    return np.array(rows, np.uint8)


def ref_decode(blocks: np.ndarray, interleave: int, parity: int, dual: bool):
    blocks = np.atleast_2d(blocks)
    n_cw = blocks.shape[1] // interleave
    data = np.zeros((blocks.shape[0], (n_cw - parity) * interleave), np.uint8)
    corr = np.zeros((blocks.shape[0], interleave), np.int16)
    for r, row in enumerate(blocks):
        for c in range(interleave):
            cw = [int(v) for v in row[c::interleave]]
            if dual:
                cw = [_REF_FROM_DUAL[v] for v in cw]
            fixed, count = ref_decode_cw(cw, parity)
            if dual:
                fixed = [ref_to_dual(v) for v in fixed]
            data[r, c::interleave] = fixed[: n_cw - parity]
            corr[r, c] = count
    return data, corr


def pn_sequence(n: int) -> np.ndarray:
    """CCSDS pseudo-randomiser: h(x) = x^8+x^7+x^5+x^3+1, all-ones seed, MSB first."""
    state = [1] * 8
    bits = []
    for _ in range(8 * n):
        bits.append(state[0])
        state = state[1:] + [state[0] ^ state[3] ^ state[5] ^ state[7]]
    return np.packbits(np.array(bits, np.uint8))


def add_errors(blocks: np.ndarray, interleave: int, count: int, rng, positions=None) -> np.ndarray:
    """``count`` distinct symbol errors (nonzero) in every codeword of every row."""
    out = blocks.copy()
    n_cw = out.shape[1] // interleave
    for r in range(out.shape[0]):
        for c in range(interleave):
            pool = np.arange(n_cw) if positions is None else np.asarray(positions)
            pos = rng.choice(pool, count, replace=False)
            out[r, pos * interleave + c] ^= rng.integers(1, 256, count, dtype=np.uint8)
    return out


# --- the reference agrees with itself and with the standard's published facts ---------
