"""The data link layer for one physical channel: transfer frames in (TM CCSDS 132.0-B-3 or
AOS 732.0-B-4, one :class:`~groundseg.link.frame_types.FrameType` each), Space Packets
(133.0-B-2), VCA data fields and counts out.

:class:`LinkDecoder` composes the frame type's header decoding and checks
(frame_types.py over tm.py, aos.py), the virtual-channel counters (demux.py) and the
packet extraction kernel (packets.py). It carries across batches only the per-VC counters
and packets in progress.

Counting rules (docs/report.md): each frame's ``FrameBatch.quality["integrity"]`` decides
first: UNCORRECTABLE counts as reject ``rs_uncorrectable`` and touches nothing; of the
others each counts under its first failing check (version, scid, frame_length, truncated,
fhec), then a CRC_FAILED frame under ``crc``; the rest are delivered and counted per VC.
Idle frames (the frame type's rule: TM FHP 0x7FE, AOS VCID == ``idle_vcid``) are
delivered: they update counters and deliver their OCF, and carry no packets.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from groundseg.coding.frame_batch import INTEGRITY_CRC_FAILED, INTEGRITY_UNCORRECTABLE, FrameBatch
from groundseg.link import demux, frame_types
from groundseg.link.frame_types import FECF_LENGTH, OCF_LENGTH, FrameType
from groundseg.link.packets import DEFAULT_MAX_PACKET_LENGTH, PacketExtractor
from groundseg.link.records import (FRAME_RECORD_DTYPE, REJECT_CODE, REJECT_DTYPE, REJECT_REASONS,
                                    VCA_DTYPE, LinkStats, PacketBatch, RejectBatch, VcaBatch)
from groundseg.link.timecodes import InsertZoneTime

VC_DATA_KINDS = ("packets", "vca", "none")
_KIND_CODE = {k: i for i, k in enumerate(VC_DATA_KINDS)}
_FRAME_REJECTS = [REJECT_CODE[k] for k in ("version", "scid", "frame_length", "truncated", "fhec")]


@dataclass
class LinkConfig:
    """One physical channel's data link layout.

    ``frame_type``: a :class:`~groundseg.link.frame_types.FrameType` or its name (a key of
    ``frame_types.FRAME_TYPES``, any case); after construction ``frame_type`` is the name and
    :attr:`ft` the object, which owns every type-specific rule.
    ``ocf``: TM: whether frames carry an OCF (a frame whose OCF flag disagrees is refused
    as ``frame_length``); AOS: True/False for every VC, or a set of the VCIDs that carry one.
    ``idle_vcid``: None takes the frame type's default (AOS 63; TM none: idle frames are
    those with FHP 0x7FE), -1 for none. ``vc_data``: {vcid: "packets" | "vca" | "none"},
    "packets" for VCs not listed. ``insert_zone_time``: how to read a time stamp from the
    insert zone, e.g. ``{"offset": 0, "length": 6, "byteorder": "little", "unit": 2**-16,
    "epoch": "2019-12-31T16:00:00Z"}`` or ``{"offset": 0, "code": "cuc:4,2"}`` (see
    :class:`groundseg.link.timecodes.InsertZoneTime`).
    """
    frame_type: str | FrameType = frame_types.TM
    frame_length: int = 1115
    spacecraft_id: int = 0
    fecf: bool = False
    ocf: bool | set | frozenset = False
    insert_zone: int = 0
    fhec: bool = False
    tm_secondary_header: int = 0
    idle_vcid: int | None = None
    vc_data: dict = field(default_factory=dict)
    insert_zone_time: dict | None = None
    check_scid: bool = True
    fhec_correct: bool = True
    max_packet_length: int = DEFAULT_MAX_PACKET_LENGTH
    ft: FrameType = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        self.ft = frame_types.get(self.frame_type)
        self.frame_type = self.ft.name
        if self.idle_vcid is None:
            self.idle_vcid = self.ft.default_idle_vcid
        self.ft.validate(self)
        n_vc = self.ft.n_vcids
        for vcid, kind in self.vc_data.items():
            if not 0 <= int(vcid) < n_vc:
                raise ValueError(f"vc_data: VCID {vcid} outside 0..{n_vc - 1}")
            if kind not in VC_DATA_KINDS:
                raise ValueError(f"vc_data[{vcid}] must be one of {VC_DATA_KINDS}, got {kind!r}")
        if self.frame_length < self.ft.min_frame_length(self):
            overhead = self.ft.min_frame_length(self) - 1
            raise ValueError(f"frame_length {self.frame_length} leaves no data field after "
                             f"{overhead} bytes of headers and trailer")
        if self.max_packet_length < 7:
            raise ValueError("max_packet_length must be at least 7")

    @property
    def n_vcids(self) -> int:
        return self.ft.n_vcids

    @property
    def header_length(self) -> int:
        """Bytes before the data field (TM: plus the frame's secondary header)."""
        return self.ft.header_length(self)

    @property
    def trailer_max(self) -> int:
        return self.ft.trailer_max(self)

    def ocf_by_vcid(self) -> np.ndarray:
        return self.ft.ocf_by_vcid(self.ocf)

    def zone_length(self, vcid: int) -> int:
        """Bytes of packet zone in a frame of ``vcid`` (see ``FrameType.zone_length``)."""
        return self.ft.zone_length(self, vcid)

    def kind_by_vcid(self) -> np.ndarray:
        out = np.full(self.n_vcids, _KIND_CODE[self.ft.default_vc_data], np.uint8)
        for vcid, kind in self.vc_data.items():
            out[int(vcid)] = _KIND_CODE[kind]
        return out


@dataclass
class LinkOutput:
    frames: np.ndarray        # (n,) FRAME_RECORD_DTYPE, one row per input frame
    packets: PacketBatch
    rejects: RejectBatch      # refused frames (whole frame bytes) and packets
    vca: VcaBatch

    @classmethod
    def empty(cls) -> "LinkOutput":
        return cls(np.zeros(0, FRAME_RECORD_DTYPE), PacketBatch.empty(), RejectBatch.empty(),
                   VcaBatch.empty())


class LinkDecoder:
    """Frames -> packets for one physical channel; see the module docstring for the rules.

    A stage like the others: ``push(FrameBatch) -> LinkOutput``, ``flush() -> LinkOutput``
    (end of stream), ``reset()`` (a new stream), ``stats`` (:class:`LinkStats`).

    An exact repeat of a VC frame count (d = 0, see demux.py) is counted in the VC's
    ``repeats``, not as a gap, and the frame is delivered as if in order: a packet in
    progress on that VC goes on into it. Yamcs (``DownlinkTransferFrame.lostFramesCount``)
    takes a repeated count as a stream interruption and drops the packet in progress; on a
    spacecraft whose VC counter does not advance that loses every packet spanning two
    frames, and a counter that did not move is no evidence that anything was lost. A true
    duplicate frame is caught by the first header pointer instead: the packet in progress
    must end exactly where the repeated frame's FHP says the next one starts, otherwise its
    bytes are refused as ``packet_length`` and extraction resyncs at that FHP (the
    duplicate's own packets come out again, counted in ``sequence_repeats``, and the
    archive keeps one copy). The one stitch this lets through is a duplicate whose FHP
    happens to equal the bytes the packet in progress still needs.
    """

    def __init__(self, config: LinkConfig):
        if not isinstance(config, LinkConfig):
            raise ValueError("LinkDecoder needs a LinkConfig")
        self.config = config
        self.ft = config.ft
        self._ocf_vc = config.ocf_by_vcid()
        self._kind_vc = config.kind_by_vcid()
        self._time = InsertZoneTime(**config.insert_zone_time) if config.insert_zone_time else None
        if self._time is not None and self._time.end > config.insert_zone:
            raise ValueError(f"insert_zone_time reads {self._time.end} bytes but the insert zone "
                             f"has {config.insert_zone}")
        self.demux = demux.Demux(self.ft.n_vcids, self.ft.mc_modulus,
                                 vc_counters=self.ft.vc_counter_bits > 0)
        self.extractor = PacketExtractor(self.ft.n_vcids, config.max_packet_length)
        self._frame_rejects = np.zeros(len(REJECT_REASONS), np.int64)

    # -- public API ----------------------------------------------------------------------
    def push(self, batch: FrameBatch) -> LinkOutput:
        cfg = self.config
        frames = np.asarray(batch.frames)
        q = batch.quality
        if frames.ndim != 2 or frames.dtype != np.uint8 or len(q) != frames.shape[0]:
            raise ValueError("FrameBatch.frames must be (n, L) uint8 with one quality row per frame")
        n, width = frames.shape
        rec = np.zeros(n, FRAME_RECORD_DTYPE)
        for name in ("reception_time", "bit_position", "rs_corrected", "crc", "asm_bit_errors", "inverted",
                     "symbol_error_rate", "esn0_db"):
            rec[name] = q[name]
        rec["vcid"] = -1
        rec["mcfc"] = -1
        rec["vcfc"] = -1
        rec["fhp"] = -1
        rec["insert_zone_time"] = np.nan
        if n == 0:
            return LinkOutput.empty()

        integrity = q["integrity"]
        status = np.zeros(n, np.uint8)
        status[integrity == INTEGRITY_UNCORRECTABLE] = REJECT_CODE["rs_uncorrectable"]
        if width != cfg.frame_length:
            reason = "truncated" if width < cfg.frame_length else "frame_length"
            status[status == 0] = REJECT_CODE[reason]
            return self._finish(frames, rec, status, None)

        head = self.ft.check(frames, cfg, status)
        crc_failed = integrity == INTEGRITY_CRC_FAILED
        if cfg.fecf:
            # a batch whose FECF nobody checked (FrameBatch.from_frames without crc): checked here
            unchecked = (status == 0) & (q["crc"] < 0)
            if unchecked.any():
                from groundseg.coding.crc import fecf_ok
                rows = np.flatnonzero(unchecked)
                # the whole batch unchecked (the usual case here): no 1 MB-per-1000-frames copy
                ok = fecf_ok(frames if len(rows) == n else frames[rows])
                rec["crc"][rows] = ok.astype(np.int8)
                crc_failed = crc_failed.copy()
                crc_failed[rows[~ok]] = True
        status[(status == 0) & crc_failed] = REJECT_CODE["crc"]
        return self._finish(frames, rec, status, head)

    def flush(self) -> LinkOutput:
        """End of stream: packets in progress are counted ``dropped_incomplete``; returns what
        the packet extractor flushes (no frames)."""
        out = self.extractor.flush()
        return LinkOutput(np.zeros(0, FRAME_RECORD_DTYPE), out.packets, out.rejects, VcaBatch.empty())

    def reset(self) -> None:
        """A new stream: packets in progress dropped and counted, counters forgotten (no gap
        is counted across the boundary). Counts accumulate over the object's life."""
        self.extractor.reset()
        self.demux.reset()

    @property
    def stats(self) -> LinkStats:
        """The counters so far (a snapshot; ``stats.to_dict()`` is the report's link part)."""
        r = self._frame_rejects
        pk = self.extractor.stats
        rejects = {REJECT_REASONS[i]: int(c) for i, c in enumerate(r) if c}
        for k, v in pk.rejects.items():
            rejects[k] = rejects.get(k, 0) + v
        return LinkStats(rejected=int(r[_FRAME_REJECTS].sum()), crc_failed=int(r[REJECT_CODE["crc"]]),
                         idle=int(self.demux.vc_stats[:, demux.VC_IDLE].sum()),
                         virtual_channels=self.demux.stats, master_channel=self.demux.master_channel,
                         packet=pk, rejects=rejects)

    # -- internals -----------------------------------------------------------------------
    def _finish(self, frames, rec, status, head) -> LinkOutput:
        cfg, ft = self.config, self.ft
        n, width = frames.shape
        rec["status"] = status
        np.add.at(self._frame_rejects, status[status != 0], 1)
        delivered = status == 0
        packets, pk_rejects, vca = PacketBatch.empty(), RejectBatch.empty(), VcaBatch.empty()
        if head is not None:
            vcid = head["vcid"].astype(np.int64)
            trusted = delivered | (status == REJECT_CODE["crc"])
            rec["vcid"][trusted] = vcid[trusted]
            rec["vcfc"][trusted] = head["vcfc"][trusted]
            rec["mcfc"][trusted] = head["mcfc"][trusted]
            idle_rule = ft.idle(frames, head, cfg)
            idle = delivered & idle_rule
            has_ocf = ft.has_ocf(head, cfg, self._ocf_vc)
            df_start = ft.data_field_start(head, cfg, n)
            zone_start = df_start + ft.mpdu_header_length
            fecf = FECF_LENGTH if cfg.fecf else 0
            zone_end = width - fecf - OCF_LENGTH * has_ocf.astype(np.int64)
            kind = self._kind_vc[vcid]
            # FHP where an M_PDU is carried
            fhp = ft.first_header_pointer(frames, head, cfg,
                                          np.flatnonzero(trusted & (kind == _KIND_CODE["packets"])), idle_rule)
            with_fhp = fhp >= 0
            rec["fhp"][with_fhp] = fhp[with_fhp]
            rec["idle"] = idle
            ocf_rows = trusted & has_ocf
            if ocf_rows.any():
                o = width - fecf - OCF_LENGTH
                rec["has_ocf"] = ocf_rows
                rec["ocf"][ocf_rows] = ((frames[ocf_rows, o].astype(np.uint32) << 24)
                                        | (frames[ocf_rows, o + 1].astype(np.uint32) << 16)
                                        | (frames[ocf_rows, o + 2].astype(np.uint32) << 8)
                                        | frames[ocf_rows, o + 3])
            if self._time is not None:
                iz0 = ft.insert_zone_offset(cfg)
                t = self._time.decode(frames[trusted, iz0:iz0 + cfg.insert_zone])
                rec["insert_zone_time"][trusted] = t

            # a repeat is not a discontinuity: only gaps reach the packet extractor
            gap, lost, _repeat = self.demux.update(np.flatnonzero(delivered), vcid, head["vcfc"],
                                                   head["vcfc_modulus"], idle, head["mcfc"])
            rec["gap_before"] = gap
            rec["frames_lost"] = lost

            rows = np.flatnonzero(delivered & (kind == _KIND_CODE["packets"]) & with_fhp)
            if len(rows):
                out = self.extractor.push(
                    frames, rows, zone_start, zone_end, np.where(fhp < 0, 0, fhp), gap, vcid, vcid,
                    rec["reception_time"], rec["insert_zone_time"])
                packets, pk_rejects = out.packets, out.rejects
            vrows = np.flatnonzero(delivered & ~idle & (kind == _KIND_CODE["vca"]))
            if len(vrows):
                vca = self._vca(frames, vrows, df_start, zone_end, vcid, head["vcfc"], rec)
        rejects = RejectBatch.concatenate([self._frame_reject_batch(frames, rec, status), pk_rejects])
        return LinkOutput(rec, packets, rejects, vca)

    @staticmethod
    def _vca(frames, rows, df_start, zone_end, vcid, vcfc, rec) -> VcaBatch:
        start = np.broadcast_to(df_start, (frames.shape[0],))[rows]
        length = zone_end[rows] - start
        width = int(length.max())
        cols = np.arange(width)
        idx = np.minimum(start[:, None] + cols, frames.shape[1] - 1)
        data = frames[rows[:, None], idx]
        data[cols[None, :] >= length[:, None]] = 0
        r = np.zeros(len(rows), VCA_DTYPE)
        r["vcid"] = vcid[rows]
        r["vcfc"] = vcfc[rows]
        r["reception_time"] = rec["reception_time"][rows]
        r["frame_time"] = rec["insert_zone_time"][rows]
        r["length"] = length
        return VcaBatch(r, data)

    @staticmethod
    def _frame_reject_batch(frames, rec, status) -> RejectBatch:
        rows = np.flatnonzero(status != 0)
        if not len(rows):
            return RejectBatch.empty()
        width = frames.shape[1]
        r = np.zeros(len(rows), REJECT_DTYPE)
        r["reason"] = status[rows]
        r["vcid"] = rec["vcid"][rows]
        r["apid"] = -1
        r["reception_time"] = rec["reception_time"][rows]
        r["offset"] = np.arange(len(rows), dtype=np.int64) * width
        r["length"] = width
        return RejectBatch(r, frames[rows].ravel())
