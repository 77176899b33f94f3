"""Record types that leave the link layer (CCSDS 132.0-B, 732.0-B, 133.0-B).

Packets travel as one flat byte buffer plus offsets and a structured header
array, so a batch of a million packets is three numpy arrays, not a million
objects. Telemetry decoding and the archive read these and nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: One row per Space Packet, primary header fields decoded.
#: ``gap_before``: the APID's 14-bit sequence count jumped before this packet.
#: ``frame_time``: the carrying frame's insert-zone time (UNIX s), NaN if none.
PACKET_DTYPE = np.dtype([
    ("apid", "<u2"),
    ("version", "u1"),
    ("type", "u1"),
    ("sec_hdr", "u1"),
    ("seq_flags", "u1"),
    ("seq_count", "<u2"),
    ("length", "<i4"),
    ("vcid", "u1"),
    ("reception_time", "<f8"),
    ("frame_time", "<f8"),
    ("gap_before", "?"),
])

#: Fixed vocabulary of reject reasons (DESIGN.md); index 0 means delivered.
REJECT_REASONS = ("delivered", "rs_uncorrectable", "crc", "version", "scid",
                  "frame_length", "truncated", "fhp_out_of_range",
                  "packet_length", "fhec")
REJECT_CODE = {name: i for i, name in enumerate(REJECT_REASONS)}


@dataclass
class PacketBatch:
    data: np.ndarray     # uint8, packets back to back, primary header included
    offsets: np.ndarray  # int64 (n + 1,), packet i is data[offsets[i]:offsets[i+1]]
    header: np.ndarray   # (n,) PACKET_DTYPE

    def __len__(self) -> int:
        return self.header.shape[0]

    @classmethod
    def empty(cls) -> "PacketBatch":
        return cls(np.zeros(0, np.uint8), np.zeros(1, np.int64), np.zeros(0, PACKET_DTYPE))

    def packet(self, i: int) -> bytes:
        return self.data[self.offsets[i]:self.offsets[i + 1]].tobytes()

    def select(self, mask_or_index: np.ndarray) -> "PacketBatch":
        """A new batch holding the chosen packets, in their order."""
        idx = np.asarray(mask_or_index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        lengths = (self.offsets[1:] - self.offsets[:-1])[idx]
        offsets = np.zeros(len(idx) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        starts = self.offsets[:-1][idx]
        # gather all bytes in one vectorised step
        pos = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1], dtype=np.int64)
        return PacketBatch(self.data[pos], offsets, self.header[idx])

    @classmethod
    def concatenate(cls, batches: list["PacketBatch"]) -> "PacketBatch":
        batches = [b for b in batches if len(b)]
        if not batches:
            return cls.empty()
        data = np.concatenate([b.data for b in batches])
        shifts = np.cumsum([0] + [len(b.data) for b in batches[:-1]])
        offsets = np.concatenate([batches[0].offsets[:1]] +
                                 [b.offsets[1:] + s for b, s in zip(batches, shifts)])
        return cls(data, offsets.astype(np.int64), np.concatenate([b.header for b in batches]))
