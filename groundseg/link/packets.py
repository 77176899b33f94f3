"""Space Packets (CCSDS 133.0-B-2) out of M_PDU packet zones (TM 132.0-B-3, AOS 732.0-B-4),
out of raw packet streams, and the mirror image: packets into packet zones.

Extraction follows each frame's first header pointer (FHP): packets may span any number
of frames and a primary header may be split between two. One numba kernel walks a batch
of frames of one or more virtual channels (each its own state "slot") and writes every
packet into preallocated flat arrays; the thin :class:`PacketExtractor` keeps only what
crosses a batch boundary: each slot's packet in progress and whether it is in sync.

Rules (the counting rules of docs/report.md):
- FHP 0x7FF: no packet starts in this frame (continuation only); 0x7FE: idle data, the
  frame is skipped and the packet in progress waits for the next frame.
- FHP beyond the packet zone: reject ``fhp_out_of_range``, the packet in progress is
  dropped, extraction resyncs at the next frame's FHP.
- A counter discontinuity (``gap_before``) drops the slot's packet in progress
  (``dropped_incomplete`` for its APID if its header was seen) and extraction resyncs at
  the FHP: a packet is never stitched from two sides of a gap. An exact repeat of the
  VC frame count is not a discontinuity (see :class:`groundseg.link.decoder.LinkDecoder`).
- When a packet in progress ends, the next one must start exactly at the FHP of the frame
  the FHP points into; if not, the FHP is trusted, the disagreeing bytes are rejected as
  ``packet_length`` and extraction goes on from the FHP.
- A header with version != 0 or a length over ``max_packet_length``: reject
  ``packet_length``, resync at the next FHP.
- Idle packets (APID 0x7FF) are counted (``idle_packets``) and dropped.
- A packet's ``reception_time`` and ``frame_time`` are those of the frame its first byte
  arrived in (the insert-zone time stamp nearest its generation).
- Per APID the 14-bit sequence count is followed, d = (new - old) mod 2^14: d = 1 is in
  order; d = 0, an exact repeat, is counted in ``sequence_repeats`` and is not a gap
  (spacecraft that do not use the count leave it at 0; a duplicated packet repeats it);
  any other d is a sequence gap, and adds d - 1 to ``sequence_missing`` unless the jump is
  backward (d of 2^13 or more), which is a gap with 0 missing.
"""
from __future__ import annotations

import numpy as np

from groundseg import _reuse
from groundseg._numba import kernel, kernel_inline
from groundseg.link.records import (PACKET_DTYPE, REJECT_CODE, REJECT_DTYPE, REJECT_REASONS,
                                    ApidStats, PacketBatch, PacketOutput, PacketStats, RejectBatch)

PRIMARY_HEADER_LENGTH = 6
IDLE_APID = 0x7FF
FHP_NO_PACKET = 0x7FF
FHP_IDLE = 0x7FE
SEQ_MODULUS = 1 << 14
#: 6-byte header + the largest data field the 16-bit length can announce (65536).
DEFAULT_MAX_PACKET_LENGTH = 65542
N_APIDS = 2048

# per-APID statistics columns
ST_COUNT, ST_BYTES, ST_GAPS, ST_MISSING, ST_DROPPED, ST_REPEATS = range(6)

_R_FHP = REJECT_CODE["fhp_out_of_range"]
_R_LEN = REJECT_CODE["packet_length"]
_R_TRUNC = REJECT_CODE["truncated"]


# --- kernel helpers (LLVM inlines them) ---------------------------------------------------

@kernel_inline
def _emit(src, a, total, vc, rt, ft, apid_last, apid_stats, idle_count, out_data, out_off, out_hdr, p, b):
    # p, b: packets and bytes written so far (kept in registers by the caller); returns them updated
    b0 = np.int64(src[a])
    apid = ((b0 & 7) << 8) | np.int64(src[a + 1])
    if apid == IDLE_APID:
        idle_count[0] += 1
        return p, b
    b2 = np.int64(src[a + 2])
    seq = ((b2 & 0x3F) << 8) | np.int64(src[a + 3])
    last = apid_last[apid]
    gap = False
    if last >= 0:
        d = (seq - last) & (SEQ_MODULUS - 1)
        if d == 0:
            apid_stats[apid, ST_REPEATS] += 1
        elif d != 1:
            gap = True
            apid_stats[apid, ST_GAPS] += 1
            if d < SEQ_MODULUS // 2:
                apid_stats[apid, ST_MISSING] += d - 1
    apid_last[apid] = seq
    apid_stats[apid, ST_COUNT] += 1
    apid_stats[apid, ST_BYTES] += total
    # unsigned indices: numba checks every signed one for a negative value, which keeps
    # LLVM from streaming the copy (a slice assignment costs more per short packet still)
    ua = np.uint64(a)
    ub = np.uint64(b)
    for k in range(np.uint64(total)):
        out_data[ub + k] = src[ua + k]
    out_off[p + 1] = b + total
    h = out_hdr[p]
    h["apid"] = apid
    h["version"] = b0 >> 5
    h["type"] = (b0 >> 4) & 1
    h["sec_hdr"] = (b0 >> 3) & 1
    h["seq_flags"] = b2 >> 6
    h["seq_count"] = seq
    h["length"] = total
    h["vcid"] = vc
    h["reception_time"] = rt
    h["frame_time"] = ft
    h["gap_before"] = gap
    return p + 1, b + total


@kernel
def _rej_append(src, a, length, rej_data, nout):
    b = nout[3]
    for k in range(length):
        rej_data[b + k] = src[a + k]
    nout[3] = b + length


@kernel
def _rej_close(reason, row, apid, rej_off, rej_reason, rej_row, rej_apid, rej_counts, nout):
    r = nout[2]
    rej_reason[r] = reason
    rej_row[r] = row
    rej_apid[r] = apid
    rej_off[r + 1] = nout[3]
    nout[2] = r + 1
    rej_counts[reason] += 1


@kernel
def _drop(buf, n, apid_stats):
    # a packet in progress abandoned: counted only if its header was seen
    if n >= PRIMARY_HEADER_LENGTH:
        apid = ((np.int64(buf[0]) & 7) << 8) | np.int64(buf[1])
        if apid != IDLE_APID:
            apid_stats[apid, ST_DROPPED] += 1


@kernel
def _header_apid(buf, a):
    return ((np.int64(buf[a]) & 7) << 8) | np.int64(buf[a + 1])


@kernel
def _extract_kernel(frames, rows, zstart, zend, fhp, gap, slot, vcid, rtime, ftime,
                    pbuf, plen, p_rt, p_ft, in_sync, apid_last, apid_stats, rej_counts,
                    idle_count, max_len,
                    out_data, out_off, out_hdr,
                    rej_data, rej_off, rej_reason, rej_row, rej_apid, nout):
    p = nout[0]
    b = nout[1]
    for r in range(rows.shape[0]):
        i = rows[r]
        s = slot[i]
        z = frames[i]
        zs = zstart[i]
        ze = zend[i]
        f = np.int64(fhp[i])
        vc = vcid[i]
        if gap[i]:
            if plen[s] > 0:
                _drop(pbuf[s], plen[s], apid_stats)
                plen[s] = 0
            in_sync[s] = False
        if f == FHP_IDLE:
            continue
        if f != FHP_NO_PACKET and f >= ze - zs:
            if plen[s] > 0:
                _drop(pbuf[s], plen[s], apid_stats)
                plen[s] = 0
            in_sync[s] = False
            _rej_append(z, zs, ze - zs, rej_data, nout)
            _rej_close(_R_FHP, i, -1, rej_off, rej_reason, rej_row, rej_apid, rej_counts, nout)
            continue
        fpos = zs + f
        pos = zs
        if not in_sync[s]:
            if f == FHP_NO_PACKET:
                continue  # a headless fragment: nothing to resync on in this frame
            pos = fpos
            in_sync[s] = True
        elif plen[s] > 0:
            n0 = plen[s]
            limit = ze if f == FHP_NO_PACKET else fpos
            header_ok = True
            if n0 < PRIMARY_HEADER_LENGTH:
                k = min(PRIMARY_HEADER_LENGTH - n0, limit - pos)
                for j in range(k):
                    pbuf[s, n0 + j] = z[pos + j]
                pos += k
                n0 += k
                plen[s] = n0
                if n0 < PRIMARY_HEADER_LENGTH:
                    if f == FHP_NO_PACKET:
                        continue
                    # the FHP says the next packet starts before this header is complete
                    _rej_append(pbuf[s], 0, n0, rej_data, nout)
                    _rej_close(_R_LEN, i, -1, rej_off, rej_reason, rej_row, rej_apid, rej_counts, nout)
                    plen[s] = 0
                    header_ok = False
                else:
                    total = ((np.int64(pbuf[s, 4]) << 8) | np.int64(pbuf[s, 5])) + 7
                    if (pbuf[s, 0] >> 5) != 0 or total > max_len:
                        _rej_append(pbuf[s], 0, n0, rej_data, nout)
                        _rej_close(_R_LEN, i, -1, rej_off, rej_reason, rej_row, rej_apid, rej_counts, nout)
                        plen[s] = 0
                        header_ok = False
                        if f == FHP_NO_PACKET:
                            in_sync[s] = False
                            continue
            if header_ok:
                total = ((np.int64(pbuf[s, 4]) << 8) | np.int64(pbuf[s, 5])) + 7
                need = total - n0
                avail = limit - pos
                if f == FHP_NO_PACKET and need > avail:
                    for j in range(avail):
                        pbuf[s, n0 + j] = z[pos + j]
                    plen[s] = n0 + avail
                    continue
                if need == avail:
                    for j in range(need):
                        pbuf[s, n0 + j] = z[pos + j]
                    p, b = _emit(pbuf[s], 0, total, vc, p_rt[s], p_ft[s], apid_last, apid_stats, idle_count,
                                 out_data, out_off, out_hdr, p, b)
                    plen[s] = 0
                    if f == FHP_NO_PACKET:
                        continue
                else:
                    # where this packet ends disagrees with the FHP: trust the FHP
                    apid = _header_apid(pbuf[s], 0)
                    _rej_append(pbuf[s], 0, n0, rej_data, nout)
                    _rej_append(z, pos, ze - pos if f == FHP_NO_PACKET else fpos - pos, rej_data, nout)
                    _rej_close(_R_LEN, i, apid, rej_off, rej_reason, rej_row, rej_apid, rej_counts, nout)
                    plen[s] = 0
                    if f == FHP_NO_PACKET:
                        in_sync[s] = False
                        continue
            pos = fpos
        else:
            # in sync with nothing in progress: a packet must start at the zone's first byte
            if f != 0:
                stop = ze if f == FHP_NO_PACKET else fpos
                _rej_append(z, zs, stop - zs, rej_data, nout)
                _rej_close(_R_LEN, i, -1, rej_off, rej_reason, rej_row, rej_apid, rej_counts, nout)
                if f == FHP_NO_PACKET:
                    in_sync[s] = False
                    continue
            pos = fpos
        # packets that start in this frame
        while pos < ze:
            rem = ze - pos
            if rem >= PRIMARY_HEADER_LENGTH:
                total = ((np.int64(z[pos + 4]) << 8) | np.int64(z[pos + 5])) + 7
                if (z[pos] >> 5) != 0 or total > max_len:
                    _rej_append(z, pos, rem, rej_data, nout)
                    _rej_close(_R_LEN, i, -1, rej_off, rej_reason, rej_row, rej_apid, rej_counts, nout)
                    in_sync[s] = False
                    break
                if total <= rem:
                    p, b = _emit(z, pos, total, vc, rtime[i], ftime[i], apid_last, apid_stats,
                                 idle_count, out_data, out_off, out_hdr, p, b)
                    pos += total
                    continue
            # the packet (or its header) goes on in the VC's next frame: keep what is here
            for j in range(rem):
                pbuf[s, j] = z[pos + j]
            plen[s] = rem
            p_rt[s] = rtime[i]
            p_ft[s] = ftime[i]
            break
    nout[0] = p
    nout[1] = b


@kernel
def _split_kernel(buf, max_len, apid_last, apid_stats, rej_counts, idle_count,
                  out_data, out_off, out_hdr,
                  rej_data, rej_off, rej_reason, rej_row, rej_apid, nout):
    """Back-to-back packets; returns the position of the first byte not consumed."""
    pos = 0
    n = buf.shape[0]
    p = nout[0]
    b = nout[1]
    while n - pos >= PRIMARY_HEADER_LENGTH:
        total = ((np.int64(buf[pos + 4]) << 8) | np.int64(buf[pos + 5])) + 7
        if (buf[pos] >> 5) != 0 or total > max_len:
            # no framing to resync on: the rest of this buffer is refused
            _rej_append(buf, pos, n - pos, rej_data, nout)
            _rej_close(_R_LEN, -1, -1, rej_off, rej_reason, rej_row, rej_apid, rej_counts, nout)
            pos = n
            break
        if total > n - pos:
            break
        p, b = _emit(buf, pos, total, 0, np.nan, np.nan, apid_last, apid_stats, idle_count,
                     out_data, out_off, out_hdr, p, b)
        pos += total
    nout[0] = p
    nout[1] = b
    return pos


# --- Python side ---------------------------------------------------------------------------

def decode_primary_headers(data: np.ndarray, starts: np.ndarray) -> dict[str, np.ndarray]:
    """Primary header fields of the packets starting at ``data[starts]`` (vectorised)."""
    h = data[np.asarray(starts, np.int64)[:, None] + np.arange(PRIMARY_HEADER_LENGTH)].astype(np.uint16)
    return {
        "version": (h[:, 0] >> 5).astype(np.uint8),
        "type": ((h[:, 0] >> 4) & 1).astype(np.uint8),
        "sec_hdr": ((h[:, 0] >> 3) & 1).astype(np.uint8),
        "apid": (((h[:, 0] & 7) << 8) | h[:, 1]).astype(np.uint16),
        "seq_flags": (h[:, 2] >> 6).astype(np.uint8),
        "seq_count": (((h[:, 2] & 0x3F) << 8) | h[:, 3]).astype(np.uint16),
        "length": ((h[:, 4].astype(np.int32) << 8) | h[:, 5]) + 7,
    }


class _Outputs:
    """Kernel outputs for at most ``capacity`` bytes: the last batch's when its caller let
    go of them (see :mod:`groundseg._reuse`), mapped off the heap: the header rows are
    sized for the most packets a batch could hold, and pages never reached stay unmapped."""

    def __init__(self, capacity: int, max_rejects: int):
        max_packets = capacity // 7 + 2
        self.data = _reuse.empty("packets.data", (capacity,), np.uint8, mapped=True)
        # only off[0] is read before the kernel writes it: zeroing megabytes is page faults
        self.off = _reuse.empty("packets.off", (max_packets + 1,), np.int64, mapped=True)
        self.off[0] = 0
        self.hdr = _reuse.empty("packets.hdr", (max_packets,), PACKET_DTYPE, mapped=True)
        self.rej_data = _reuse.empty("packets.rej_data", (capacity,), np.uint8, mapped=True)
        self.rej_off = np.zeros(max_rejects + 1, np.int64)
        self.rej_reason = np.empty(max_rejects, np.int64)
        self.rej_row = np.empty(max_rejects, np.int64)
        self.rej_apid = np.empty(max_rejects, np.int64)
        self.n = np.zeros(4, np.int64)  # packets, bytes, rejects, reject bytes

    def args(self):
        return (self.data, self.off, self.hdr)

    def rej_args(self):
        return (self.rej_data, self.rej_off, self.rej_reason, self.rej_row, self.rej_apid, self.n)

    def packets(self) -> PacketBatch:
        # views, not copies: the unused tail of a large np.empty buffer is never touched,
        # so it costs address space but no memory
        n, nbytes = int(self.n[0]), int(self.n[1])
        return PacketBatch(self.data[:nbytes], self.off[:n + 1], self.hdr[:n])

    def rejects(self, vcid: np.ndarray | None = None, rtime: np.ndarray | None = None) -> RejectBatch:
        n, nbytes = int(self.n[2]), int(self.n[3])
        rec = np.zeros(n, REJECT_DTYPE)
        rec["reason"] = self.rej_reason[:n]
        rec["apid"] = self.rej_apid[:n]
        rec["offset"] = self.rej_off[:n]
        rec["length"] = self.rej_off[1:n + 1] - self.rej_off[:n]
        rows = self.rej_row[:n]
        known = rows >= 0
        rec["vcid"] = -1
        rec["reception_time"] = np.nan
        if vcid is not None:
            rec["vcid"][known] = vcid[rows[known]]
        if rtime is not None:
            rec["reception_time"][known] = rtime[rows[known]]
        return RejectBatch(rec, self.rej_data[:nbytes].copy())


class _ApidCounters:
    def __init__(self):
        self.apid_last = np.full(N_APIDS, -1, np.int64)
        self.apid_stats = np.zeros((N_APIDS, 6), np.int64)
        self.rej_counts = np.zeros(len(REJECT_REASONS), np.int64)
        self.idle_count = np.zeros(1, np.int64)

    @property
    def stats(self) -> PacketStats:
        """The counters so far (a snapshot; ``.to_dict()`` gives the report's form)."""
        st = self.apid_stats
        active = np.flatnonzero(st.any(axis=1))
        packets = {int(a): ApidStats(count=int(st[a, ST_COUNT]), bytes=int(st[a, ST_BYTES]),
                                     sequence_gaps=int(st[a, ST_GAPS]),
                                     sequence_missing=int(st[a, ST_MISSING]),
                                     sequence_repeats=int(st[a, ST_REPEATS]),
                                     dropped_incomplete=int(st[a, ST_DROPPED])) for a in active}
        rejects = {REJECT_REASONS[i]: int(c) for i, c in enumerate(self.rej_counts) if c}
        return PacketStats(packets, int(self.idle_count[0]), rejects)


class PacketExtractor(_ApidCounters):
    """Space Packets out of M_PDU packet zones, with state per slot (one slot per VC).

    ``push`` takes whole frames and, per frame, where its packet zone lies; only the
    frames listed in ``rows`` are read, in that order. ``reset`` (a new stream) and
    ``flush`` (end of stream) drop the packets in progress (``dropped_incomplete``) and
    forget sync; ``reset`` also forgets the APID sequence counts, so no gap is counted
    across a stream boundary. Counters (``stats``) accumulate over the object's life.
    """

    def __init__(self, n_slots: int = 1, max_packet_length: int = DEFAULT_MAX_PACKET_LENGTH):
        super().__init__()
        if n_slots < 1:
            raise ValueError("n_slots must be at least 1")
        if not PRIMARY_HEADER_LENGTH + 1 <= max_packet_length <= DEFAULT_MAX_PACKET_LENGTH:
            raise ValueError(f"max_packet_length must be in 7..{DEFAULT_MAX_PACKET_LENGTH}")
        self.n_slots = n_slots
        self.max_packet_length = int(max_packet_length)
        self.pbuf = np.zeros((n_slots, self.max_packet_length), np.uint8)
        self.plen = np.zeros(n_slots, np.int64)
        self.p_rt = np.full(n_slots, np.nan)
        self.p_ft = np.full(n_slots, np.nan)
        self.in_sync = np.zeros(n_slots, np.bool_)

    def push(self, frames: np.ndarray, rows: np.ndarray, zone_start, zone_end, fhp, gap_before,
             slot=0, vcid=0, reception_time=np.nan, frame_time=np.nan) -> PacketOutput:
        """Extract from ``frames[rows]``; per-frame arguments are scalars or (n,) arrays over all
        rows of ``frames``. ``zone_start``/``zone_end`` bound each packet zone (after the
        M_PDU header, before OCF/FECF); ``fhp`` counts from ``zone_start``."""
        frames = np.asarray(frames)
        if frames.ndim != 2 or frames.dtype != np.uint8:
            raise ValueError("frames must be a 2-D uint8 array")
        n = frames.shape[0]
        rows = np.ascontiguousarray(rows, np.int64)

        def per_frame(v, dtype):
            return np.ascontiguousarray(np.broadcast_to(np.asarray(v).astype(dtype), (n,)))

        zs = per_frame(zone_start, np.int64)
        ze = per_frame(zone_end, np.int64)
        fh = per_frame(fhp, np.int64)
        gp = per_frame(gap_before, np.bool_)
        sl = per_frame(slot, np.int64)
        vc = per_frame(vcid, np.int64)
        rt = per_frame(reception_time, np.float64)
        ft = per_frame(frame_time, np.float64)
        if len(rows):
            if rows.min() < 0 or rows.max() >= n:
                raise ValueError("rows index outside the batch")
            if zs[rows].min() < 0 or ze[rows].max() > frames.shape[1] or (ze[rows] < zs[rows]).any():
                raise ValueError("packet zone outside the frame")
            if sl[rows].min() < 0 or sl[rows].max() >= self.n_slots:
                raise ValueError(f"slot outside 0..{self.n_slots - 1}")
            if (fh[rows] < 0).any() or (fh[rows] > FHP_NO_PACKET).any():
                raise ValueError("the first header pointer is 11 bits")
        capacity = int((ze[rows] - zs[rows]).sum()) + int(self.plen.sum()) + 1
        out = _Outputs(capacity, 2 * len(rows) + self.n_slots + 1)
        _extract_kernel(frames, rows, zs, ze, fh, gp, sl, vc, rt, ft,
                        self.pbuf, self.plen, self.p_rt, self.p_ft, self.in_sync,
                        self.apid_last, self.apid_stats, self.rej_counts, self.idle_count,
                        np.int64(self.max_packet_length), *out.args(), *out.rej_args())
        return PacketOutput(out.packets(), out.rejects(vc, rt))

    def push_data_fields(self, data_fields: np.ndarray, fhp, gap_before=False, vcid=0,
                         reception_time=np.nan, frame_time=np.nan) -> PacketOutput:
        """One VC (slot 0): ``data_fields`` (m, L) packet zones, ``fhp`` (m,)."""
        d = np.ascontiguousarray(data_fields, np.uint8)
        if d.ndim != 2:
            raise ValueError("data_fields must be 2-D (frames, bytes)")
        m, length = d.shape
        return self.push(d, np.arange(m), 0, length, fhp, gap_before, 0, vcid, reception_time, frame_time)

    def _drop_all(self):
        for s in range(self.n_slots):
            if self.plen[s] > 0:
                _drop(self.pbuf[s], self.plen[s], self.apid_stats)
        self.plen[:] = 0
        self.in_sync[:] = False

    def flush(self) -> PacketOutput:
        """End of stream: packets in progress are counted ``dropped_incomplete`` (their bytes
        are not returned: nothing is complete)."""
        self._drop_all()
        return PacketOutput.empty()

    def reset(self) -> None:
        """A new stream: packets in progress dropped and counted, sequence counts forgotten."""
        self._drop_all()
        self.apid_last[:] = -1


class PacketStreamSplitter(_ApidCounters):
    """Back-to-back Space Packets (level "packets", e.g. a Level-0 file) -> PacketBatch.

    A stage like the others: ``push(chunk) -> PacketOutput`` (packets and rejects; it may cut
    packets anywhere, the tail is carried to the next chunk), ``flush() -> PacketOutput``
    (end of stream: a truncated tail is refused as ``truncated`` and counted
    ``dropped_incomplete`` if its header was seen), ``reset()`` (a new stream: any tail is
    dropped as by ``flush``, whose output it does not return, so call ``flush`` first to
    keep it; APID sequence counts are forgotten, so no gap is counted across), ``stats``
    (:class:`~groundseg.link.records.PacketStats`). A header with version != 0 or a length
    over ``max_packet_length`` cannot be resynchronised in an unframed stream: the rest of
    the chunk is refused as ``packet_length`` and the next chunk is read as starting on a
    packet boundary.
    """

    def __init__(self, max_packet_length: int = DEFAULT_MAX_PACKET_LENGTH):
        super().__init__()
        if not PRIMARY_HEADER_LENGTH + 1 <= max_packet_length <= DEFAULT_MAX_PACKET_LENGTH:
            raise ValueError(f"max_packet_length must be in 7..{DEFAULT_MAX_PACKET_LENGTH}")
        self.max_packet_length = int(max_packet_length)
        self.tail = np.zeros(0, np.uint8)

    def push(self, chunk) -> PacketOutput:
        chunk = np.frombuffer(chunk, np.uint8) if isinstance(chunk, (bytes, bytearray, memoryview)) \
            else np.asarray(chunk, np.uint8).ravel()
        buf = np.concatenate([self.tail, chunk]) if len(self.tail) else np.ascontiguousarray(chunk)
        out = _Outputs(len(buf) + 1, 2)
        consumed = _split_kernel(buf, np.int64(self.max_packet_length), self.apid_last, self.apid_stats,
                                 self.rej_counts, self.idle_count, *out.args(), *out.rej_args())
        self.tail = buf[consumed:].copy()
        return PacketOutput(out.packets(), out.rejects())

    def flush(self) -> PacketOutput:
        rejects = RejectBatch.empty()
        if len(self.tail):
            if len(self.tail) >= PRIMARY_HEADER_LENGTH:
                _drop(self.tail, len(self.tail), self.apid_stats)
            rec = np.zeros(1, REJECT_DTYPE)
            rec["reason"] = _R_TRUNC
            rec["vcid"] = -1
            rec["apid"] = _header_apid(self.tail, 0) if len(self.tail) >= 2 else -1
            rec["reception_time"] = np.nan
            rec["length"] = len(self.tail)
            rejects = RejectBatch(rec, self.tail.copy())
            self.rej_counts[_R_TRUNC] += 1
            self.tail = np.zeros(0, np.uint8)
        return PacketOutput(PacketBatch.empty(), rejects)

    def reset(self) -> None:
        """A new stream: a leftover tail is refused and counted as by ``flush`` and the APID
        sequence counts are forgotten, so no gap is counted across the boundary."""
        self.flush()
        self.apid_last[:] = -1


# --- encoders (for the simulator) --------------------------------------------------------

def pack_primary_headers(apid, seq_count, data_length, *, packet_type=0, sec_hdr=0, seq_flags=3,
                         version=0) -> np.ndarray:
    """(n, 6) uint8 Space Packet primary headers; ``data_length`` = bytes after the header - 1."""
    vals = {"version": (version, 3), "packet_type": (packet_type, 1), "sec_hdr": (sec_hdr, 1),
            "apid": (apid, 11), "seq_flags": (seq_flags, 2), "data_length": (data_length, 16)}
    a = {}
    for name, (v, bits) in vals.items():
        v = np.asarray(v).astype(np.int64)
        if v.size and (v.min() < 0 or v.max() >= (1 << bits)):
            raise ValueError(f"packet header field {name} does not fit in {bits} bits")
        a[name] = v
    seq = np.asarray(seq_count).astype(np.int64) % SEQ_MODULUS
    shape = np.broadcast(seq, *a.values()).shape
    a = {k: np.broadcast_to(v, shape) for k, v in a.items()}
    seq = np.broadcast_to(seq, shape)
    w0 = (a["version"] << 13) | (a["packet_type"] << 12) | (a["sec_hdr"] << 11) | a["apid"]
    w1 = (a["seq_flags"] << 14) | seq
    out = np.empty(shape + (6,), np.uint8)
    for k, w in enumerate((w0, w1, a["data_length"])):
        out[..., 2 * k] = w >> 8
        out[..., 2 * k + 1] = w & 0xFF
    return out.reshape(-1, 6)


@kernel
def _assemble_kernel(headers, flat, lengths, stream):
    src = 0
    dst = 0
    for i in range(lengths.shape[0]):
        for k in range(PRIMARY_HEADER_LENGTH):
            stream[dst + k] = headers[i, k]
        dst += PRIMARY_HEADER_LENGTH
        n = lengths[i]
        stream[dst:dst + n] = flat[src:src + n]
        src += n
        dst += n


def build_packets(apid, seq_count, payloads, *, packet_type=0, sec_hdr=0, seq_flags=3
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Space Packets back to back: (stream uint8, starts int64 (n,)).

    ``payloads`` (the bytes after the primary header, >= 1 each): a list of bytes-like, a
    2-D uint8 array (one payload per row), or a tuple ``(flat uint8, lengths)``. ``apid``,
    ``seq_count`` and the flags are scalars or (n,) arrays.
    """
    if isinstance(payloads, tuple):
        flat, lengths = np.asarray(payloads[0], np.uint8), np.asarray(payloads[1], np.int64)
    elif isinstance(payloads, np.ndarray) and payloads.ndim == 2:
        lengths = np.full(payloads.shape[0], payloads.shape[1], np.int64)
        flat = np.ascontiguousarray(payloads, np.uint8).ravel()
    else:
        parts = [np.frombuffer(bytes(p), np.uint8) for p in payloads]
        lengths = np.array([len(p) for p in parts], np.int64)
        flat = np.concatenate(parts) if parts else np.zeros(0, np.uint8)
    n = len(lengths)
    if n and (lengths.min() < 1 or lengths.max() > 65536):
        raise ValueError("a packet data field is 1..65536 bytes")
    if lengths.sum() != len(flat):
        raise ValueError("payload lengths do not add up to the payload bytes")
    headers = pack_primary_headers(np.broadcast_to(apid, (n,)), np.broadcast_to(seq_count, (n,)),
                                   lengths - 1, packet_type=packet_type, sec_hdr=sec_hdr,
                                   seq_flags=seq_flags)
    total = lengths + PRIMARY_HEADER_LENGTH
    starts = np.zeros(n, np.int64)
    np.cumsum(total[:-1], out=starts[1:])
    stream = np.empty(int(total.sum()), np.uint8)
    _assemble_kernel(headers, np.ascontiguousarray(flat), lengths, stream)
    return stream, starts


def idle_packet(length: int, fill: int = 0x55) -> np.ndarray:
    """One idle packet (APID 0x7FF) of ``length`` >= 7 bytes in total."""
    if not 7 <= length <= DEFAULT_MAX_PACKET_LENGTH:
        raise ValueError(f"an idle packet is 7..{DEFAULT_MAX_PACKET_LENGTH} bytes")
    stream, _ = build_packets(IDLE_APID, 0, (np.full(length - 6, fill, np.uint8), [length - 6]))
    return stream


def pack_mpdu(packet_stream: np.ndarray, packet_starts: np.ndarray, data_field_length: int,
              idle_fill: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The encoder: a packet stream into M_PDU packet zones.

    Returns (data_fields (m, data_field_length) uint8, fhp (m,) uint16): the stream cut
    into consecutive packet zones, each FHP the offset of the first packet starting in
    it or 0x7FF. The last zone is completed with an idle packet (APID 0x7FF), spilling into
    one more zone when fewer than 7 bytes are left, as CCSDS does; ``idle_fill=False``
    leaves the last zone incomplete (it is not returned, and its bytes are lost).
    """
    stream = np.asarray(packet_stream, np.uint8).ravel()
    starts = np.asarray(packet_starts, np.int64).ravel()
    length = int(data_field_length)
    if not 7 <= length <= 2046:
        raise ValueError("an M_PDU packet zone must be 7..2046 bytes for an 11-bit FHP")
    if len(starts) and (np.any(np.diff(starts) <= 0) or starts[0] < 0 or starts[-1] >= len(stream)):
        raise ValueError("packet_starts must be increasing offsets into the stream")
    short = (-len(stream)) % length
    if short and idle_fill:
        idle_len = short if short >= 7 else short + length
        starts = np.concatenate([starts, [len(stream)]])
        stream = np.concatenate([stream, idle_packet(idle_len)])
    m = len(stream) // length
    fields = stream[:m * length].reshape(m, length).copy()
    fhp = np.full(m, FHP_NO_PACKET, np.uint16)
    starts = starts[starts < m * length]
    frame_of = starts // length
    uniq, first = np.unique(frame_of, return_index=True)
    fhp[uniq] = (starts[first] - uniq * length).astype(np.uint16)
    return fields, fhp
