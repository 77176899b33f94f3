"""Record types that leave the link layer (CCSDS 132.0-B, 732.0-B, 133.0-B).

Packets travel as one flat byte buffer plus offsets and a structured header
array, so a batch of a million packets is three numpy arrays, not a million
objects. Telemetry decoding and the archive read these and nothing else.
The stage outputs (:class:`PacketOutput`; ``LinkOutput`` in decoder.py) and the
stages' counters (:class:`LinkStats`, :class:`PacketStats`, whose ``to_dict()`` are the
pass report's link keys, see docs/report.md) are defined here too.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: One row per Space Packet, primary header fields decoded.
#: ``gap_before``: the APID's 14-bit sequence count jumped before this packet (an exact
#: repeat of the previous count is not a jump).
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

#: Fixed vocabulary of reject reasons (docs/report.md); index 0 means delivered.
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
#: flag is set. ``gap_before``/``frames_lost``: VC counter discontinuity before this frame
#: (an exact repeat of the previous count is not one; it is counted in the VC's ``repeats``).
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
    ("symbol_error_rate", "<f4"),
    ("esn0_db", "<f4"),
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


@dataclass
class PacketOutput:
    """What a packet stage (``PacketStreamSplitter``, ``PacketExtractor``) returns per call:
    the packets and what it refused, with its bytes."""
    packets: PacketBatch
    rejects: RejectBatch

    @classmethod
    def empty(cls) -> "PacketOutput":
        return cls(PacketBatch.empty(), RejectBatch.empty())


# --- counters ------------------------------------------------------------------------------

@dataclass
class CounterStats:
    """One frame counter (a VC's, or the TM master channel's). ``gaps``: the count moved on by
    anything but +1 and was not an exact repeat; ``frames_lost``: the counts skipped by the
    forward gaps; ``repeats``: exact repeats of the previous count (not gaps)."""
    gaps: int = 0
    frames_lost: int = 0
    repeats: int = 0

    def to_dict(self) -> dict:
        return {"gaps": self.gaps, "frames_lost": self.frames_lost, "repeats": self.repeats}


@dataclass
class VcStats(CounterStats):
    """One virtual channel: delivered frames (``idle`` of them idle) and its counter."""
    frames: int = 0
    idle: int = 0

    def to_dict(self) -> dict:
        return {"frames": self.frames, "idle": self.idle, **super().to_dict()}


@dataclass
class ApidStats:
    """One APID: packets delivered and their bytes; the 14-bit sequence count's gaps (moved on
    by anything but +1, not an exact repeat), the counts they skipped (``sequence_missing``,
    forward gaps only) and exact repeats (``sequence_repeats``: a spacecraft that leaves
    the count at 0, or a duplicated packet); packets in progress abandoned after their
    header was seen (``dropped_incomplete``)."""
    count: int = 0
    bytes: int = 0
    sequence_gaps: int = 0
    sequence_missing: int = 0
    sequence_repeats: int = 0
    dropped_incomplete: int = 0

    def to_dict(self) -> dict:
        return {"count": self.count, "bytes": self.bytes, "sequence_gaps": self.sequence_gaps,
                "sequence_missing": self.sequence_missing, "sequence_repeats": self.sequence_repeats,
                "dropped_incomplete": self.dropped_incomplete}


@dataclass
class PacketStats:
    """A packet stage's counters: per APID, idle packets, and rejects by reason."""
    packets: dict[int, ApidStats] = field(default_factory=dict)
    idle_packets: int = 0
    rejects: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """{"packets": {"apid": {...}}, "idle_packets": n, "rejects": {reason: n}} (string keys)."""
        return {"packets": {str(a): s.to_dict() for a, s in self.packets.items()},
                "idle_packets": self.idle_packets, "rejects": dict(self.rejects)}


@dataclass
class LinkStats:
    """A link decoder's counters. ``to_dict()`` is the pass report's link part: ``frames``
    {rejected, crc_failed, idle}, ``virtual_channels`` {"vcid": {...}}, ``master_channel``
    (frame types with a master-channel counter only), ``packets``, ``idle_packets``,
    ``rejects`` (frames and packets, by reason)."""
    rejected: int = 0
    crc_failed: int = 0
    idle: int = 0
    virtual_channels: dict[int, VcStats] = field(default_factory=dict)
    master_channel: CounterStats | None = None
    packet: PacketStats = field(default_factory=PacketStats)
    rejects: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {"frames": {"rejected": self.rejected, "crc_failed": self.crc_failed, "idle": self.idle},
               "virtual_channels": {str(v): s.to_dict() for v, s in self.virtual_channels.items()}}
        if self.master_channel is not None:
            out["master_channel"] = self.master_channel.to_dict()
        out["packets"] = self.packet.to_dict()["packets"]
        out["idle_packets"] = self.packet.idle_packets
        out["rejects"] = dict(self.rejects)
        return out
