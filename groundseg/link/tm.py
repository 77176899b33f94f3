"""TM Transfer Frame primary and secondary headers (CCSDS 132.0-B-3), vectorised.

The primary header is 6 bytes: version (2 b, 0), SCID (10 b), VCID (3 b), OCF flag,
MCFC (8 b), VCFC (8 b), then the data field status: secondary-header flag, sync flag,
packet-order flag, segment length id (2 b) and the first header pointer (11 b;
``FHP_NO_PACKET`` 0x7FF: no packet starts here, ``FHP_IDLE`` 0x7FE: idle data).
Decoders take a batch of frames ``(n, L)`` and return one array per field, so a
chunk of frames costs a handful of numpy operations, not a Python loop.
"""
from __future__ import annotations

import numpy as np

from groundseg.coding.frame_batch import as_frame_rows

TM_VERSION = 0
HEADER_LENGTH = 6
FHP_NO_PACKET = 0x7FF
FHP_IDLE = 0x7FE
MC_MODULUS = 256
VC_MODULUS = 256



def decode_primary_header(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Primary header fields of every row of ``frames`` ((n, L) uint8, L >= 6)."""
    f = as_frame_rows(frames, HEADER_LENGTH)
    b0 = f[:, 0].astype(np.uint16)
    b1 = f[:, 1].astype(np.uint16)
    b4 = f[:, 4].astype(np.uint16)
    b5 = f[:, 5].astype(np.uint16)
    return {
        "version": (b0 >> 6).astype(np.uint8),
        "scid": (((b0 & 0x3F) << 4) | (b1 >> 4)).astype(np.uint16),
        "vcid": ((b1 >> 1) & 0x7).astype(np.uint8),
        "ocf_flag": (b1 & 1).astype(bool),
        "mcfc": f[:, 2].copy(),
        "vcfc": f[:, 3].copy(),
        "sec_hdr_flag": (b4 >> 7).astype(bool),
        "sync_flag": ((b4 >> 6) & 1).astype(bool),
        "packet_order": ((b4 >> 5) & 1).astype(bool),
        "seg_len_id": ((b4 >> 3) & 3).astype(np.uint8),
        "fhp": (((b4 & 7) << 8) | b5).astype(np.uint16),
    }


def pack_primary_header(scid, vcid, mcfc, vcfc, fhp, *, ocf_flag=False, sec_hdr_flag=False,
                        sync_flag=False, packet_order=False, seg_len_id=3,
                        version=TM_VERSION, n: int | None = None) -> np.ndarray:
    """The encoder: ``(n, 6)`` uint8 primary headers; every argument is a scalar or an (n,) array.

    Counters are taken modulo 256; other fields must fit their widths (ValueError otherwise).
    ``seg_len_id`` defaults to 3 (binary 11: no segmentation), as 132.0-B requires when the
    sync flag is 0.
    """
    fields = {"version": (version, 2), "scid": (scid, 10), "vcid": (vcid, 3), "ocf_flag": (ocf_flag, 1),
              "sec_hdr_flag": (sec_hdr_flag, 1), "sync_flag": (sync_flag, 1),
              "packet_order": (packet_order, 1), "seg_len_id": (seg_len_id, 2), "fhp": (fhp, 11)}
    arrays = {}
    for name, (value, bits) in fields.items():
        a = np.asarray(value).astype(np.int64)
        if a.size and (a.min() < 0 or a.max() >= (1 << bits)):
            raise ValueError(f"TM header field {name} does not fit in {bits} bits")
        arrays[name] = a
    mc = np.asarray(mcfc).astype(np.int64) % MC_MODULUS
    vc = np.asarray(vcfc).astype(np.int64) % VC_MODULUS
    shape = np.broadcast(*arrays.values(), mc, vc).shape
    if n is not None:
        shape = (n,)
    a = {k: np.broadcast_to(v, shape) for k, v in arrays.items()}
    word0 = (a["version"] << 14) | (a["scid"] << 4) | (a["vcid"] << 1) | a["ocf_flag"]
    word2 = ((a["sec_hdr_flag"] << 15) | (a["sync_flag"] << 14) | (a["packet_order"] << 13)
             | (a["seg_len_id"] << 11) | a["fhp"])
    out = np.empty(shape + (HEADER_LENGTH,), np.uint8)
    out[..., 0] = word0 >> 8
    out[..., 1] = word0 & 0xFF
    out[..., 2] = np.broadcast_to(mc, shape)
    out[..., 3] = np.broadcast_to(vc, shape)
    out[..., 4] = word2 >> 8
    out[..., 5] = word2 & 0xFF
    return out.reshape(-1, HEADER_LENGTH)


def decode_secondary_header(frames: np.ndarray) -> dict[str, np.ndarray]:
    """The secondary header identification octet after the primary header.

    ``length`` is the whole secondary header in bytes (the 6-bit field is total - 1).
    Only meaningful on rows whose primary header has the secondary-header flag set.
    """
    f = as_frame_rows(frames, HEADER_LENGTH + 1)
    b = f[:, HEADER_LENGTH]
    return {"version": (b >> 6).astype(np.uint8), "length": (b & 0x3F).astype(np.int16) + 1}


def pack_secondary_header(data: np.ndarray, version: int = 0) -> np.ndarray:
    """The encoder: identification octet + ``data`` rows ((n, k) uint8, k <= 63) -> (n, k + 1)."""
    data = np.atleast_2d(np.asarray(data, np.uint8))
    k = data.shape[1]
    if not 0 <= k <= 63:
        raise ValueError(f"a TM secondary header carries 0..63 data bytes, got {k}")
    if version not in (0, 1, 2, 3):
        raise ValueError("TM secondary header version is 2 bits")
    out = np.empty((data.shape[0], k + 1), np.uint8)
    out[:, 0] = (version << 6) | k
    out[:, 1:] = data
    return out
