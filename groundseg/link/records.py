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


#: One row per input transfer frame (every frame, delivered or not).
#: ``status``: 0 delivered, else the ``REJECT_REASONS`` index of its first failing check.
#: ``vcid`` -1 and counters -1 where the header was not trusted (RS-uncorrectable, or
#: rejected for version, SCID, length, truncation or FHEC). ``mcfc`` is -1 on AOS.
#: ``vcfc`` is the AOS 24-bit count, extended to 28 bits with the cycle when the usage
#: flag is set. ``gap_before``/``frames_lost``: VC counter discontinuity before this frame.
#: ``fhp`` -1 where the VC carries no M_PDU. ``ocf`` raw OCF (CLCW) word where ``has_ocf``.
#: ``insert_zone_time``: UNIX s decoded from the AOS insert zone, NaN where none.
FRAME_RECORD_DTYPE = np.dtype([
    ("reception_time", "<f8"),
    ("bit_position", "<i8"),
    ("vcid", "<i2"),
    ("mcfc", "<i2"),
    ("vcfc", "<i8"),
    ("status", "u1"),
    ("idle", "?"),
    ("gap_before", "?"),
    ("frames_lost", "<i8"),
    ("fhp", "<i2"),
    ("rs_corrected", "<i2"),
    ("crc", "i1"),
    ("asm_bit_errors", "i1"),
    ("inverted", "?"),
    ("has_ocf", "?"),
    ("ocf", "<u4"),
    ("insert_zone_time", "<f8"),
])

#: One row per refused frame or packet. ``reason`` indexes ``REJECT_REASONS``;
#: ``vcid``/``apid`` -1 when unknown; the refused bytes are
#: ``RejectBatch.data[offset:offset + length]``.
REJECT_DTYPE = np.dtype([
    ("reason", "u1"),
    ("vcid", "<i2"),
    ("apid", "<i2"),
    ("reception_time", "<f8"),
    ("offset", "<i8"),
    ("length", "<i8"),
])


@dataclass
class RejectBatch:
    records: np.ndarray  # (n,) REJECT_DTYPE
    data: np.ndarray     # uint8, the refused bytes back to back

    def __len__(self) -> int:
        return self.records.shape[0]

    @classmethod
    def empty(cls) -> "RejectBatch":
        return cls(np.zeros(0, REJECT_DTYPE), np.zeros(0, np.uint8))

    def raw(self, i: int) -> bytes:
        r = self.records[i]
        return self.data[r["offset"]:r["offset"] + r["length"]].tobytes()

    @property
    def offsets(self) -> np.ndarray:
        """(n + 1,) int64 like ``PacketBatch.offsets`` (records are stored back to back)."""
        out = np.zeros(len(self) + 1, np.int64)
        np.cumsum(self.records["length"], out=out[1:])
        return out

    @classmethod
    def concatenate(cls, batches: list["RejectBatch"]) -> "RejectBatch":
        batches = [b for b in batches if len(b)]
        if not batches:
            return cls.empty()
        shift = 0
        records = []
        for b in batches:
            r = b.records.copy()
            r["offset"] += shift
            shift += len(b.data)
            records.append(r)
        return cls(np.concatenate(records), np.concatenate([b.data for b in batches]))


#: One row per frame of a VC whose data is "vca" (raw data field, archived per frame).
VCA_DTYPE = np.dtype([
    ("vcid", "<i2"),
    ("vcfc", "<i8"),
    ("reception_time", "<f8"),
    ("frame_time", "<f8"),
    ("length", "<i4"),
])


@dataclass
class VcaBatch:
    records: np.ndarray  # (n,) VCA_DTYPE
    data: np.ndarray     # (n, width) uint8: row i's data field is data[i, :records["length"][i]]

    def __len__(self) -> int:
        return self.records.shape[0]

    @classmethod
    def empty(cls, width: int = 0) -> "VcaBatch":
        return cls(np.zeros(0, VCA_DTYPE), np.zeros((0, width), np.uint8))

    @classmethod
    def concatenate(cls, batches: list["VcaBatch"]) -> "VcaBatch":
        batches = [b for b in batches if len(b)]
        if not batches:
            return cls.empty()
        width = max(b.data.shape[1] for b in batches)
        data = np.zeros((sum(len(b) for b in batches), width), np.uint8)
        row = 0
        for b in batches:
            data[row:row + len(b), :b.data.shape[1]] = b.data
            row += len(b)
        return cls(np.concatenate([b.records for b in batches]), data)
