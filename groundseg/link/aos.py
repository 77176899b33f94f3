"""AOS Transfer Frame headers (CCSDS 732.0-B-4), vectorised, with the Frame Header Error
Control (RS(10,6) over GF(16)) and the M_PDU header.

Primary header, 6 bytes: version (2 b, field value 1), SCID (8 b), VCID (6 b; 63 = idle),
VC frame count (24 b), then the signalling field: replay flag, VC frame count usage flag,
2 spare bits, VC frame count cycle (4 b). With the usage flag set the cycle extends the
count to 28 bits. Optional FHEC (2 bytes) follows, then the insert zone (fixed length per
physical channel), the data field, the optional OCF (4 bytes) and the optional FECF.
An M_PDU data field starts with 5 spare bits and an 11-bit first header pointer.
"""
from __future__ import annotations

import numpy as np

from groundseg.coding.frame_batch import as_frame_rows

AOS_VERSION = 1
HEADER_LENGTH = 6
FHEC_LENGTH = 2
MPDU_HEADER_LENGTH = 2
IDLE_VCID = 63
FHP_NO_PACKET = 0x7FF
FHP_IDLE = 0x7FE
VC_MODULUS = 1 << 24
VC_MODULUS_EXTENDED = 1 << 28



def decode_primary_header(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Primary header fields of every row. ``vcfc`` is extended to 28 bits (cycle << 24)
    on rows whose usage flag is set; ``vcfc_modulus`` says which (2^24 or 2^28)."""
    f = as_frame_rows(frames, HEADER_LENGTH)
    b0 = f[:, 0].astype(np.uint16)
    b1 = f[:, 1].astype(np.uint16)
    count = (f[:, 2].astype(np.int64) << 16) | (f[:, 3].astype(np.int64) << 8) | f[:, 4]
    sig = f[:, 5]
    usage = ((sig >> 6) & 1).astype(bool)
    cycle = (sig & 0xF).astype(np.uint8)
    vcfc = np.where(usage, count | (cycle.astype(np.int64) << 24), count)
    return {
        "version": (b0 >> 6).astype(np.uint8),
        "scid": (((b0 & 0x3F) << 2) | (b1 >> 6)).astype(np.uint16),
        "vcid": (b1 & 0x3F).astype(np.uint8),
        "vcfc": vcfc,
        "vcfc_modulus": np.where(usage, VC_MODULUS_EXTENDED, VC_MODULUS).astype(np.int64),
        "replay": (sig >> 7).astype(bool),
        "vc_count_usage": usage,
        "vc_cycle": cycle,
    }


def pack_primary_header(scid, vcid, vcfc, *, replay=False, vc_count_usage=False, vc_cycle=None,
                        version=AOS_VERSION, n: int | None = None) -> np.ndarray:
    """The encoder: ``(n, 6)`` uint8 primary headers from scalar or (n,) fields.

    ``vcfc`` is taken modulo 2^24, or modulo 2^28 with its top 4 bits as the cycle when
    ``vc_count_usage`` is set and ``vc_cycle`` is not given.
    """
    usage = np.asarray(vc_count_usage).astype(np.int64)
    count = np.asarray(vcfc).astype(np.int64)
    if vc_cycle is None:
        cycle = np.where(usage != 0, (count >> 24) & 0xF, 0)
    else:
        cycle = np.asarray(vc_cycle).astype(np.int64)
    count = count % VC_MODULUS
    arrays = {"version": (version, 2), "scid": (scid, 8), "vcid": (vcid, 6), "replay": (replay, 1),
              "vc_count_usage": (usage, 1), "vc_cycle": (cycle, 4)}
    a = {}
    for name, (value, bits) in arrays.items():
        v = np.asarray(value).astype(np.int64)
        if v.size and (v.min() < 0 or v.max() >= (1 << bits)):
            raise ValueError(f"AOS header field {name} does not fit in {bits} bits")
        a[name] = v
    shape = (n,) if n is not None else np.broadcast(count, *a.values()).shape
    a = {k: np.broadcast_to(v, shape) for k, v in a.items()}
    count = np.broadcast_to(count, shape)
    word0 = (a["version"] << 14) | (a["scid"] << 6) | a["vcid"]
    out = np.empty(shape + (HEADER_LENGTH,), np.uint8)
    out[..., 0] = word0 >> 8
    out[..., 1] = word0 & 0xFF
    out[..., 2] = (count >> 16) & 0xFF
    out[..., 3] = (count >> 8) & 0xFF
    out[..., 4] = count & 0xFF
    out[..., 5] = (a["replay"] << 7) | (a["vc_count_usage"] << 6) | a["vc_cycle"]
    return out.reshape(-1, HEADER_LENGTH)


def decode_mpdu_header(frames: np.ndarray, offset: int) -> np.ndarray:
    """(n,) uint16 first header pointers of the M_PDU headers at byte ``offset`` of each row."""
    f = as_frame_rows(frames, offset + MPDU_HEADER_LENGTH)
    return (((f[:, offset].astype(np.uint16) & 7) << 8) | f[:, offset + 1]).astype(np.uint16)


def pack_mpdu_header(fhp) -> np.ndarray:
    """The encoder: (n, 2) uint8 M_PDU headers (spare bits 0)."""
    fhp = np.atleast_1d(np.asarray(fhp).astype(np.int64))
    if fhp.size and (fhp.min() < 0 or fhp.max() > 0x7FF):
        raise ValueError("the M_PDU first header pointer is 11 bits")
    out = np.empty((fhp.shape[0], 2), np.uint8)
    out[:, 0] = fhp >> 8
    out[:, 1] = fhp & 0xFF
    return out


# --- Frame Header Error Control -------------------------------------------------------
# RS(10,6) over GF(16), field polynomial x^4+x+1, generator (x+a^6)(x+a^7)(x+a^8)(x+a^9)
# (732.0-B 4.1.2.6). The six information nibbles are the 16 bits of version+SCID+VCID and
# the 8-bit signalling field; the four parity nibbles are the FHEC. The code is linear
# over GF(2), so parity is an XOR of 24 per-bit parities, and with d = 5 every pattern of
# up to two nibble errors has its own 16-bit syndrome: decoding is one table look-up.

def _gf16_tables():
    exp = np.zeros(30, np.int64)
    x = 1
    for i in range(15):
        exp[i] = exp[i + 15] = x
        x <<= 1
        if x & 0x10:
            x ^= 0x13
    log = np.zeros(16, np.int64)
    for i in range(15):
        log[exp[i]] = i
    return exp, log


def _fhec_generator() -> list[int]:
    exp, log = _gf16_tables()

    def mul(a, b):
        return 0 if a == 0 or b == 0 else int(exp[log[a] + log[b]])

    g = [1]  # highest degree first
    for root in (6, 7, 8, 9):
        r = int(exp[root])
        g = [a ^ mul(b, r) for a, b in zip(g + [0], [0] + g)]
    return g


def _fhec_parity_scalar(info24: int) -> int:
    exp, log = _gf16_tables()

    def mul(a, b):
        return 0 if a == 0 or b == 0 else int(exp[log[a] + log[b]])

    g = _fhec_generator()
    rem = [0, 0, 0, 0]
    for i in range(6):
        d = (info24 >> (20 - 4 * i)) & 0xF
        fb = d ^ rem[0]
        rem = rem[1:] + [0]
        if fb:
            rem = [r ^ mul(fb, gc) for r, gc in zip(rem, g[1:])]
    return (rem[0] << 12) | (rem[1] << 8) | (rem[2] << 4) | rem[3]


_BIT_PARITY = np.array([_fhec_parity_scalar(1 << k) for k in range(24)], np.int64)
_SYNDROME_TABLE: np.ndarray | None = None


def _fhec_parity(info24: np.ndarray) -> np.ndarray:
    info24 = np.asarray(info24, np.int64)
    p = np.zeros(info24.shape, np.int64)
    for k in range(24):
        p ^= np.where((info24 >> k) & 1, _BIT_PARITY[k], 0)
    return p


def _syndrome_table() -> np.ndarray:
    """syndrome (16 b) -> 40-bit error pattern (info 24 b << 16 | parity 16 b), -1 if > 2 errors."""
    global _SYNDROME_TABLE
    if _SYNDROME_TABLE is None:
        shifts = 36 - 4 * np.arange(10, dtype=np.int64)
        vals = np.arange(1, 16, dtype=np.int64)
        single = (vals[None, :] << shifts[:, None]).ravel()
        i, j = np.triu_indices(10, 1)
        double = ((vals[None, :, None] << shifts[i][:, None, None])
                  | (vals[None, None, :] << shifts[j][:, None, None])).ravel()
        patterns = np.concatenate([single, double])
        syn = _fhec_parity(patterns >> 16) ^ (patterns & 0xFFFF)
        table = np.full(1 << 16, -1, np.int64)
        table[0] = 0
        table[syn] = patterns
        _SYNDROME_TABLE = table
    return _SYNDROME_TABLE


def _info24(headers: np.ndarray) -> np.ndarray:
    h = headers.astype(np.int64)
    return (h[:, 0] << 16) | (h[:, 1] << 8) | h[:, 5]


def fhec_encode(headers: np.ndarray) -> np.ndarray:
    """(n, 2) uint8 FHEC for (n, >=6) primary headers."""
    h = as_frame_rows(headers, HEADER_LENGTH)
    p = _fhec_parity(_info24(h))
    return np.stack([(p >> 8) & 0xFF, p & 0xFF], axis=1).astype(np.uint8)


def fhec_decode(frames: np.ndarray, correct: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Check (and correct in place, if ``correct``) the FHEC of each row of ``frames``.

    Returns (ok bool (n,), nibbles corrected int8 (n,), -1 where uncorrectable). Only the
    protected fields (bytes 0, 1, 5 and the FHEC itself) are ever changed.
    """
    f = as_frame_rows(frames, HEADER_LENGTH + FHEC_LENGTH)
    info = _info24(f)
    received = (f[:, 6].astype(np.int64) << 8) | f[:, 7]
    syn = _fhec_parity(info) ^ received
    pattern = _syndrome_table()[syn]
    ok = pattern >= 0
    e = np.where(ok, pattern, 0)
    nib = np.zeros(len(e), np.int8)
    for s in range(10):
        nib += (((e >> (36 - 4 * s)) & 0xF) != 0).astype(np.int8)
    nib[~ok] = -1
    if correct:
        fix = ok & (e != 0)
        if fix.any():
            ei, rows = e[fix], np.flatnonzero(fix)
            f[rows, 0] ^= ((ei >> 32) & 0xFF).astype(np.uint8)
            f[rows, 1] ^= ((ei >> 24) & 0xFF).astype(np.uint8)
            f[rows, 5] ^= ((ei >> 16) & 0xFF).astype(np.uint8)
            f[rows, 6] ^= ((ei >> 8) & 0xFF).astype(np.uint8)
            f[rows, 7] ^= (ei & 0xFF).astype(np.uint8)
    return ok, nib
