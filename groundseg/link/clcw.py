"""Operational Control Field: the Communications Link Control Word (CCSDS 232.0-B, carried
by TM 132.0-B and AOS 732.0-B frames), decoded and encoded vectorised.

Bit layout of the 32-bit CLCW, most significant first: control word type (1, 0 for a
CLCW), version (2), status (3), COP in effect (2), VCID (6), spare (2), no RF available,
no bit lock, lockout, wait, retransmit, FARM-B counter (2), spare (1), report value (8).
"""
from __future__ import annotations

import numpy as np

#: (name, bit offset from the LSB, width)
CLCW_FIELDS = (
    ("control_word_type", 31, 1),
    ("version", 29, 2),
    ("status", 26, 3),
    ("cop_in_effect", 24, 2),
    ("vcid", 18, 6),
    ("no_rf_available", 15, 1),
    ("no_bitlock", 14, 1),
    ("lockout", 13, 1),
    ("wait", 12, 1),
    ("retransmit", 11, 1),
    ("farm_b_counter", 9, 2),
    ("report_value", 0, 8),
)


def ocf_words(ocf_bytes: np.ndarray) -> np.ndarray:
    """(n, 4) uint8 OCF bytes (big-endian) -> (n,) uint32 words."""
    b = np.atleast_2d(np.asarray(ocf_bytes, np.uint8))
    if b.shape[1] != 4:
        raise ValueError(f"an OCF is 4 bytes, got rows of {b.shape[1]}")
    b = b.astype(np.uint32)
    return (b[:, 0] << 24) | (b[:, 1] << 16) | (b[:, 2] << 8) | b[:, 3]


def decode(ocf) -> dict[str, np.ndarray]:
    """Every CLCW field of ``ocf``: (n,) uint32 words or (n, 4) bytes. Flags come back as bool."""
    w = np.asarray(ocf)
    if w.ndim == 2 or w.dtype == np.uint8:
        w = ocf_words(w)
    w = w.astype(np.uint32)
    out = {}
    for name, shift, width in CLCW_FIELDS:
        v = (w >> np.uint32(shift)) & np.uint32((1 << width) - 1)
        out[name] = v.astype(bool) if width == 1 and name != "control_word_type" else v.astype(np.uint8)
    return out


def encode(*, status=0, cop_in_effect=1, vcid=0, no_rf_available=False, no_bitlock=False,
           lockout=False, wait=False, retransmit=False, farm_b_counter=0, report_value=0,
           version=0, control_word_type=0) -> np.ndarray:
    """The encoder: (n,) uint32 CLCW words from scalar or (n,) field values."""
    values = dict(control_word_type=control_word_type, version=version, status=status,
                  cop_in_effect=cop_in_effect, vcid=vcid, no_rf_available=no_rf_available,
                  no_bitlock=no_bitlock, lockout=lockout, wait=wait, retransmit=retransmit,
                  farm_b_counter=farm_b_counter, report_value=report_value)
    arrays = {k: np.asarray(v).astype(np.int64) for k, v in values.items()}
    word = np.zeros(np.broadcast(*arrays.values()).shape, np.uint32)
    for name, shift, width in CLCW_FIELDS:
        a = arrays[name]
        if a.size and (a.min() < 0 or a.max() >= (1 << width)):
            raise ValueError(f"CLCW field {name} does not fit in {width} bits")
        word |= (a.astype(np.uint32) << np.uint32(shift))
    return np.atleast_1d(word)


def to_bytes(words) -> np.ndarray:
    """(n,) uint32 words -> (n, 4) uint8 big-endian, ready to place in the OCF."""
    w = np.atleast_1d(np.asarray(words, np.uint32))
    return w.astype(">u4").view(np.uint8).reshape(-1, 4)
