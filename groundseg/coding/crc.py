"""Frame Error Control Field: CRC-16 of CCSDS 132.0-B (TM) and 732.0-B (AOS), section 4.1.6.

Polynomial x^16 + x^12 + x^5 + 1 (0x1021), register preset to 0xFFFF, no
reflection, no final XOR ("123456789" -> 0x29B1; the same as
``binascii.crc_hqx(data, 0xFFFF)``). The FECF is the CRC of the frame minus
its last two bytes, stored big-endian in those two bytes.

The kernel is table driven, slicing-by-8 (eight 256-entry tables: the effect
of a byte followed by k zero bytes), and walks four frames side by side so
the four independent CRC chains overlap in the CPU pipeline.
"""
from __future__ import annotations

import numpy as np

from groundseg._numba import kernel

POLY = 0x1021
INIT = 0xFFFF


def _tables() -> np.ndarray:
    t = np.zeros((8, 256), np.uint16)
    for x in range(256):
        c = x << 8
        for _ in range(8):
            c = ((c << 1) ^ POLY) if c & 0x8000 else (c << 1)
        t[0, x] = c & 0xFFFF
    for k in range(1, 8):
        for x in range(256):
            prev = int(t[k - 1, x])
            t[k, x] = ((prev << 8) & 0xFFFF) ^ int(t[0, prev >> 8])
    return t


#: ``_T[k, x]``: CRC register contribution of byte x followed by k zero bytes.
_T = _tables()


@kernel
def _crc16_rows(data, length, t, out):
    # ``length``: bytes of each row covered (the FECF check skips the last two).
    n = data.shape[0]
    nblk = length // 8
    n4 = n - n % 4
    # Four rows at a time: independent chains keep the load ports busy.
    for r in range(0, n4, 4):
        c0 = np.uint16(0xFFFF)
        c1 = np.uint16(0xFFFF)
        c2 = np.uint16(0xFFFF)
        c3 = np.uint16(0xFFFF)
        for b in range(nblk):
            j = b * 8
            c0 = _slice8(data, r, j, c0, t)
            c1 = _slice8(data, r + 1, j, c1, t)
            c2 = _slice8(data, r + 2, j, c2, t)
            c3 = _slice8(data, r + 3, j, c3, t)
        for j in range(nblk * 8, length):
            c0 = _byte(data[r, j], c0, t)
            c1 = _byte(data[r + 1, j], c1, t)
            c2 = _byte(data[r + 2, j], c2, t)
            c3 = _byte(data[r + 3, j], c3, t)
        out[r] = c0
        out[r + 1] = c1
        out[r + 2] = c2
        out[r + 3] = c3
    for r in range(n4, n):
        c = np.uint16(0xFFFF)
        for b in range(nblk):
            c = _slice8(data, r, b * 8, c, t)
        for j in range(nblk * 8, length):
            c = _byte(data[r, j], c, t)
        out[r] = c


@kernel
def _byte(x, c, t):
    return np.uint16((c << np.uint16(8)) ^ t[0, (c >> np.uint16(8)) ^ x])


@kernel
def _slice8(data, r, j, c, t):
    # The register XORs into the first two bytes; every byte then contributes
    # independently through its own table.
    hi = (c >> np.uint16(8)) ^ data[r, j]
    lo = (c & np.uint16(0xFF)) ^ data[r, j + 1]
    return np.uint16(t[7, hi] ^ t[6, lo] ^ t[5, data[r, j + 2]] ^ t[4, data[r, j + 3]]
                     ^ t[3, data[r, j + 4]] ^ t[2, data[r, j + 5]] ^ t[1, data[r, j + 6]]
                     ^ t[0, data[r, j + 7]])


def _as_rows(frames) -> tuple[np.ndarray, bool]:
    a = np.asarray(frames)
    if a.dtype != np.uint8:
        if isinstance(frames, (bytes, bytearray, memoryview)):
            a = np.frombuffer(frames, np.uint8)
        else:
            raise ValueError(f"crc: expected uint8 frames, got dtype {a.dtype}")
    if a.ndim == 1:
        return np.ascontiguousarray(a.reshape(1, -1)), True
    if a.ndim != 2:
        raise ValueError(f"crc: expected a 1-D or 2-D uint8 array, got {a.ndim} dimensions")
    return np.ascontiguousarray(a), False


def crc16(frames) -> np.ndarray:
    """CRC-16 (0x1021, init 0xFFFF) of each row of a 2-D uint8 array.

    A 1-D array (or bytes) is one row and gives a 1-element array.
    Returns ``uint16`` of shape ``(n,)``.
    """
    rows, _ = _as_rows(frames)
    out = np.empty(rows.shape[0], np.uint16)
    _crc16_rows(rows, rows.shape[1], _T, out)
    return out


def fecf_ok(frames) -> np.ndarray:
    """True where the last two bytes (big-endian) equal the CRC-16 of the rest of the row.

    Rows shorter than 2 bytes raise ValueError. Returns ``bool`` of shape ``(n,)``.
    """
    rows, _ = _as_rows(frames)
    if rows.shape[1] < 2:
        raise ValueError(f"fecf_ok: frames of {rows.shape[1]} bytes cannot carry a 2-byte FECF")
    stored = (rows[:, -2].astype(np.uint16) << 8) | rows[:, -1]
    out = np.empty(rows.shape[0], np.uint16)
    _crc16_rows(rows, rows.shape[1] - 2, _T, out)
    return out == stored


def append_fecf(frames) -> np.ndarray:
    """A new array with each row's CRC-16 appended big-endian (2 more columns).

    1-D input gives a 1-D result.
    """
    rows, one = _as_rows(frames)
    crc = crc16(rows)
    out = np.empty((rows.shape[0], rows.shape[1] + 2), np.uint8)
    out[:, :-2] = rows
    out[:, -2] = crc >> 8
    out[:, -1] = crc & 0xFF
    return out[0] if one else out
