"""The simulator's byte and bit copies: small numba kernels (slow references in the unit tests)."""
from __future__ import annotations

import numpy as np

from groundseg._numba import kernel


@kernel
def scatter(src, src_off, lengths, dst, dst_off):
    """Copy variable-length pieces: dst[dst_off[i]:+lengths[i]] = src[src_off[i]:+lengths[i]]."""
    for i in range(lengths.shape[0]):
        s = src_off[i]
        d = dst_off[i]
        for j in range(lengths[i]):
            dst[d + j] = src[s + j]


@kernel
def put_rows(flat, starts, rows):
    """flat[starts[i]:starts[i] + k] = rows[i] for (n, k) ``rows``."""
    k = rows.shape[1]
    for i in range(rows.shape[0]):
        s = starts[i]
        for j in range(k):
            flat[s + j] = rows[i, j]


@kernel
def put_bits(body, values, bit_offset, bit_length):
    """OR ``bit_length``-bit big-endian values into each row of ``body`` at ``bit_offset``."""
    one = np.uint64(1)
    for i in range(body.shape[0]):
        v = values[i]
        for k in range(bit_length):
            bit = (v >> np.uint64(bit_length - 1 - k)) & one
            if bit:
                pos = bit_offset + k
                body[i, pos >> 3] |= np.uint8(0x80 >> (pos & 7))


@kernel
def concat_bits(rows, row_bits, ins, ins_off, ins_bits, out):
    """Row i of ``rows`` (its first row_bits[i] bits), preceded by insertion i (ins_bits[i]
    bits from ins[ins_off[i]:]), all back to back at bit granularity into zeroed ``out``.
    Returns the bit position where each row starts."""
    n = rows.shape[0]
    starts = np.empty(n, np.int64)
    p = 0
    for i in range(n + 1):
        # insertion before row i (the one after the last row is a tail, never used here)
        if i < n:
            nb = ins_bits[i]
            base = ins_off[i]
            for b in range(nb):
                if (ins[base + (b >> 3)] >> (7 - (b & 7))) & 1:
                    out[(p + b) >> 3] |= np.uint8(0x80 >> ((p + b) & 7))
            p += nb
            starts[i] = p
            nb = row_bits[i]
            s = p & 7
            k = p >> 3
            full = nb >> 3
            if s == 0:
                for j in range(full):
                    out[k + j] = rows[i, j]
            else:
                for j in range(full):
                    v = np.uint16(rows[i, j])
                    out[k + j] |= np.uint8(v >> np.uint16(s))
                    out[k + j + 1] |= np.uint8((v << np.uint16(8 - s)) & np.uint16(0xFF))
            for b in range(full * 8, nb):
                if (rows[i, b >> 3] >> (7 - (b & 7))) & 1:
                    out[(p + b) >> 3] |= np.uint8(0x80 >> ((p + b) & 7))
            p += nb
    return starts
