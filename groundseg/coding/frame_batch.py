"""Decoded transfer frames with their per-frame quality (CCSDS 131.0-B output).

The coding layer's output and the link layer's input: a 2-D array of frames
and one quality record per frame, so every later decision (count, drop,
archive) can read what the channel knew about that frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: One row per frame. ``integrity`` is the one verdict every later stage reads
#: (:data:`INTEGRITY_OK` ...); the other fields are the detail behind it.
#: ``rs_corrected`` sums the symbols corrected over the frame's codewords (-1: a
#: codeword was uncorrectable). ``crc``: 1 FECF ok, 0 FECF failed, -1 not checked
#: (no FECF on this link, or the frame already failed RS). ``sync_state``: 0 found by
#: search, 1 verified in lock, 2 flywheel (marker not matched, position predicted),
#: 3 no sync (level "frames"). ``bit_position`` counts the bits frame sync saw (after
#: any inner decoder). ``symbol_error_rate`` and ``esn0_db``: the inner code's link
#: quality over the frame's window (NaN without an inner code).
FRAME_QUALITY_DTYPE = np.dtype([
    ("bit_position", "<i8"),
    ("reception_time", "<f8"),
    ("inverted", "?"),
    ("asm_bit_errors", "i1"),
    ("sync_state", "u1"),
    ("rs_corrected", "<i2"),
    ("crc", "i1"),
    ("integrity", "u1"),
    ("symbol_error_rate", "<f4"),
    ("esn0_db", "<f4"),
])

SYNC_SEARCH, SYNC_LOCKED, SYNC_FLYWHEEL, SYNC_NONE = 0, 1, 2, 3

#: Frame integrity (ccsds-rs calls it the same): decided by the coding stage that knows,
#: read by the link layer, carried to the archive. OK: every check the link has passed
#: with no correction; CORRECTED: Reed-Solomon corrected symbols and the rest passed;
#: UNCORRECTABLE: a codeword was beyond correction (the frame is as received);
#: CRC_FAILED: RS passed (or there is none) but the FECF disagrees.
INTEGRITY_OK, INTEGRITY_CORRECTED, INTEGRITY_UNCORRECTABLE, INTEGRITY_CRC_FAILED = 0, 1, 2, 3
INTEGRITY_NAMES = ("ok", "corrected", "uncorrectable", "crc_failed")


def integrity(rs_corrected: np.ndarray, crc: np.ndarray) -> np.ndarray:
    """The integrity code from the RS verdict and the FECF check (see above)."""
    out = np.where(rs_corrected > 0, INTEGRITY_CORRECTED, INTEGRITY_OK).astype(np.uint8)
    out[crc == 0] = INTEGRITY_CRC_FAILED
    out[rs_corrected < 0] = INTEGRITY_UNCORRECTABLE
    return out


def as_frame_rows(frames: np.ndarray, need: int) -> np.ndarray:
    """``frames`` as a 2-D uint8 array of rows at least ``need`` bytes long (1-D = one frame)."""
    frames = np.asarray(frames)
    if frames.ndim == 1:
        frames = frames[None, :]
    if frames.ndim != 2 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be a 2-D uint8 array, got {frames.dtype} with shape {frames.shape}")
    if frames.shape[1] < need:
        raise ValueError(f"frames of {frames.shape[1]} bytes are shorter than the {need} bytes needed")
    return frames


@dataclass
class FrameBatch:
    frames: np.ndarray   # (n, frame_length) uint8
    quality: np.ndarray  # (n,) FRAME_QUALITY_DTYPE

    def __len__(self) -> int:
        return self.frames.shape[0]

    @classmethod
    def empty(cls, frame_length: int) -> "FrameBatch":
        return cls(np.zeros((0, frame_length), np.uint8), np.zeros(0, FRAME_QUALITY_DTYPE))

    @classmethod
    def from_frames(cls, frames: np.ndarray, first_byte: int = 0,
                    reception_time: float | np.ndarray = np.nan,
                    crc: np.ndarray | None = None) -> "FrameBatch":
        """Frames that enter at level "frames" (already decoded elsewhere)."""
        frames = np.ascontiguousarray(frames, dtype=np.uint8)
        n, length = frames.shape
        q = np.zeros(n, FRAME_QUALITY_DTYPE)
        q["bit_position"] = (first_byte + np.arange(n, dtype=np.int64) * length) * 8
        q["reception_time"] = reception_time
        q["sync_state"] = SYNC_NONE
        q["symbol_error_rate"] = np.nan
        q["esn0_db"] = np.nan
        q["crc"] = -1 if crc is None else crc
        q["integrity"] = integrity(q["rs_corrected"], q["crc"])
        return cls(frames, q)

    @classmethod
    def concatenate(cls, batches: list["FrameBatch"], frame_length: int) -> "FrameBatch":
        batches = [b for b in batches if len(b)]
        if not batches:
            return cls.empty(frame_length)
        return cls(np.concatenate([b.frames for b in batches]),
                   np.concatenate([b.quality for b in batches]))
