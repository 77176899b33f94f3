"""Pseudo-randomiser of CCSDS 131.0-B-4 section 10 (TM Synchronization and Channel Coding).

The sequence comes from h(x) = x^8 + x^7 + x^5 + x^3 + 1 with every register
bit set to one at the start of each codeblock; it is XORed over the codeblock
(never over the ASM) and repeats every 255 bytes. Its first bytes are
FF 48 0E C0 9A 0D 70 BC. Randomising and de-randomising are the same XOR.

The sequence is tiled to the row length once (cached per length) and XORed
row by row in a kernel: the work is memory-bound.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from groundseg._numba import kernel

PERIOD = 255


def _lfsr_bits(nbits: int) -> np.ndarray:
    """The sequence bit by bit from the generator (Fibonacci form, x1..x8)."""
    reg = [1] * 8           # reg[0] is the output stage
    out = np.empty(nbits, np.uint8)
    for i in range(nbits):
        out[i] = reg[0]
        # x^8 + x^7 + x^5 + x^3 + 1: feedback from the taps at x^0, x^3, x^5, x^7
        fb = reg[0] ^ reg[3] ^ reg[5] ^ reg[7]
        reg = reg[1:] + [fb]
    return out


@lru_cache(maxsize=1)
def _period() -> np.ndarray:
    seq = np.packbits(_lfsr_bits(PERIOD * 8))
    seq.flags.writeable = False
    return seq


@lru_cache(maxsize=32)
def _tiled(n: int) -> np.ndarray:
    seq = np.resize(_period(), n)
    seq.flags.writeable = False
    return seq


def pn_sequence(n: int) -> np.ndarray:
    """The first ``n`` bytes of the CCSDS pseudo-random sequence (a new writable array)."""
    n = int(n)
    if n < 0:
        raise ValueError(f"pn_sequence: length must be >= 0, got {n}")
    return _tiled(n).copy()


@kernel
def _xor_rows(blocks, pn, out):
    n, length = blocks.shape
    for r in range(n):
        for j in range(length):
            out[r, j] = blocks[r, j] ^ pn[j]


@kernel
def _xor_rows_inplace(blocks, pn):
    # Separate from _xor_rows: with in and out the same array LLVM's runtime
    # alias check sends the loop down its scalar path.
    n, length = blocks.shape
    for r in range(n):
        for j in range(length):
            blocks[r, j] ^= pn[j]


def _as_blocks(blocks) -> tuple[np.ndarray, bool]:
    a = blocks if isinstance(blocks, np.ndarray) else np.frombuffer(bytes(blocks), np.uint8)
    if a.dtype != np.uint8:
        raise ValueError(f"randomize: expected uint8 blocks, got dtype {a.dtype}")
    if a.ndim == 1:
        return a.reshape(1, -1), True
    if a.ndim != 2:
        raise ValueError(f"randomize: expected a 1-D or 2-D uint8 array, got {a.ndim} dimensions")
    return a, False


def randomize(blocks) -> np.ndarray:
    """A new array: each row XORed with the sequence restarted at the row's first byte.

    A 1-D array (or bytes) is one block and gives a 1-D result. Its own inverse.
    """
    rows, one = _as_blocks(blocks)
    out = np.empty(rows.shape, np.uint8)
    _xor_rows(rows, _tiled(rows.shape[1]), out)
    return out[0] if one else out


def randomize_inplace(blocks: np.ndarray) -> None:
    """XOR each row of a writable uint8 array with the sequence, in place."""
    if not isinstance(blocks, np.ndarray):
        raise ValueError("randomize_inplace: expected a writable numpy uint8 array")
    rows, _ = _as_blocks(blocks)
    if not rows.flags.writeable:
        raise ValueError("randomize_inplace: array is read-only")
    _xor_rows_inplace(rows, _tiled(rows.shape[1]))
