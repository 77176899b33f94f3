"""The data link layer for one physical channel: TM (CCSDS 132.0-B-3) or AOS (732.0-B-4)
transfer frames in, Space Packets (133.0-B-2), VCA data fields and counts out.

:class:`LinkDecoder` composes the vectorised header decoders (tm.py, aos.py), the frame
checks and virtual-channel counters (demux.py) and the packet extraction kernel
(packets.py). It carries across batches only the per-VC counters and packets in progress.

Counting rules (DESIGN.md): a frame with an uncorrectable RS codeword counts as reject
``rs_uncorrectable`` and touches nothing; of the others each counts under its first failing
check (version, scid, frame_length, truncated, fhec), then ``crc``; the rest are delivered
and counted per VC. Idle frames (TM FHP 0x7FE, AOS VCID == ``idle_vcid``) are delivered:
they update counters and deliver their OCF, and carry no packets.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from groundseg.coding.frame_batch import INTEGRITY_UNCORRECTABLE, FrameBatch
from groundseg.link import aos, demux, tm
from groundseg.link.packets import DEFAULT_MAX_PACKET_LENGTH, PacketExtractor
from groundseg.link.records import (FRAME_RECORD_DTYPE, REJECT_CODE, REJECT_DTYPE, REJECT_REASONS,
                                    VCA_DTYPE, PacketBatch, RejectBatch, VcaBatch)
from groundseg.link.timecodes import InsertZoneTime

VC_DATA_KINDS = ("packets", "vca", "none")
_KIND_CODE = {k: i for i, k in enumerate(VC_DATA_KINDS)}


@dataclass
class LinkConfig:
    """One physical channel's data link layout.

    ``ocf``: TM: whether frames carry an OCF (a frame whose OCF flag disagrees is refused
    as ``frame_length``); AOS: True/False for every VC, or a set of the VCIDs that carry one.
    ``idle_vcid``: AOS default 63, -1 for none; TM default None (idle frames are those with
    FHP 0x7FE). ``vc_data``: {vcid: "packets" | "vca" | "none"}, "packets" for VCs not
    listed. ``insert_zone_time``: how to read a time stamp from the AOS insert zone, e.g.
    ``{"offset": 0, "length": 6, "byteorder": "little", "unit": 2**-16,
    "epoch": "2019-12-31T16:00:00Z"}`` or ``{"offset": 0, "code": "cuc:4,2"}`` (see
    :class:`groundseg.link.timecodes.InsertZoneTime`).
    """
    frame_type: str = "TM"
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

    def __post_init__(self):
        ft = str(self.frame_type).upper()
        if ft not in ("TM", "AOS"):
            raise ValueError(f"frame_type must be 'TM' or 'AOS', got {self.frame_type!r}")
        self.frame_type = ft
        n_vc = 64 if ft == "AOS" else 8
        max_scid = 255 if ft == "AOS" else 1023
        if not 0 <= int(self.spacecraft_id) <= max_scid:
            raise ValueError(f"spacecraft_id {self.spacecraft_id} does not fit a {ft} header (0..{max_scid})")
        if self.insert_zone < 0 or (ft == "TM" and self.insert_zone):
            raise ValueError("insert_zone is a non-negative byte count and exists on AOS only")
        if self.fhec and ft != "AOS":
            raise ValueError("fhec exists on AOS frames only")
        if ft == "TM" and not 0 <= self.tm_secondary_header <= 64:
            raise ValueError("tm_secondary_header is 0 (none) or 1..64 bytes")
        if ft == "AOS" and self.tm_secondary_header:
            raise ValueError("tm_secondary_header applies to TM frames only")
        if ft == "AOS" and self.idle_vcid is None:
            self.idle_vcid = aos.IDLE_VCID
        if self.idle_vcid is not None and not -1 <= self.idle_vcid < n_vc:
            raise ValueError(f"idle_vcid must be -1 (none) or a VCID 0..{n_vc - 1}")
        for vcid, kind in self.vc_data.items():
            if not 0 <= int(vcid) < n_vc:
                raise ValueError(f"vc_data: VCID {vcid} outside 0..{n_vc - 1}")
            if kind not in VC_DATA_KINDS:
                raise ValueError(f"vc_data[{vcid}] must be one of {VC_DATA_KINDS}, got {kind!r}")
        if isinstance(self.ocf, (set, frozenset, list, tuple)):
            if ft == "TM":
                raise ValueError("TM ocf is a bool (the frame's OCF flag gives the layout)")
            if any(not 0 <= int(v) < 64 for v in self.ocf):
                raise ValueError("ocf VCIDs must be 0..63")
        overhead = self.header_length + self.trailer_max + (2 if ft == "AOS" else 0)
        if self.frame_length <= overhead:
            raise ValueError(f"frame_length {self.frame_length} leaves no data field after "
                             f"{overhead} bytes of headers and trailer")
        if self.max_packet_length < 7:
            raise ValueError("max_packet_length must be at least 7")
        if self.insert_zone_time is not None and ft != "AOS":
            raise ValueError("insert_zone_time needs an AOS insert zone")

    @property
    def n_vcids(self) -> int:
        return 64 if self.frame_type == "AOS" else 8

    @property
    def header_length(self) -> int:
        """Bytes before the data field (TM: plus the frame's secondary header)."""
        if self.frame_type == "AOS":
            return aos.HEADER_LENGTH + (aos.FHEC_LENGTH if self.fhec else 0) + self.insert_zone
        return tm.HEADER_LENGTH + self.tm_secondary_header

    @property
    def trailer_max(self) -> int:
        return (2 if self.fecf else 0) + (4 if self.ocf else 0)

    def ocf_by_vcid(self) -> np.ndarray:
        out = np.zeros(self.n_vcids, bool)
        if isinstance(self.ocf, (set, frozenset, list, tuple)):
            out[list(self.ocf)] = True
        else:
            out[:] = bool(self.ocf)
        return out

    def kind_by_vcid(self) -> np.ndarray:
        out = np.zeros(self.n_vcids, np.uint8)
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
    """Frames -> packets for one physical channel; see the module docstring for the rules."""

    def __init__(self, config: LinkConfig):
        if not isinstance(config, LinkConfig):
            raise ValueError("LinkDecoder needs a LinkConfig")
        self.config = config
        self._ocf_vc = config.ocf_by_vcid()
        self._kind_vc = config.kind_by_vcid()
        self._time = InsertZoneTime(**config.insert_zone_time) if config.insert_zone_time else None
        if self._time is not None and self._time.end > config.insert_zone:
            raise ValueError(f"insert_zone_time reads {self._time.end} bytes but the insert zone "
                             f"has {config.insert_zone}")
        self.demux = demux.Demux(config.n_vcids, master_channel=config.frame_type == "TM")
        self.extractor = PacketExtractor(config.n_vcids, config.max_packet_length)
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
        for name in ("reception_time", "bit_position", "rs_corrected", "crc", "asm_bit_errors", "inverted"):
            rec[name] = q[name]
        rec["vcid"] = -1
        rec["mcfc"] = -1
        rec["vcfc"] = -1
        rec["fhp"] = -1
        rec["insert_zone_time"] = np.nan
        if n == 0:
            return LinkOutput(rec, PacketBatch.empty(), RejectBatch.empty(), VcaBatch.empty())

        status = np.zeros(n, np.uint8)
        status[q["integrity"] == INTEGRITY_UNCORRECTABLE] = REJECT_CODE["rs_uncorrectable"]
        if width != cfg.frame_length:
            reason = "truncated" if width < cfg.frame_length else "frame_length"
            status[status == 0] = REJECT_CODE[reason]
            return self._finish(frames, rec, status, None, None)

        head = demux.check_frames(frames, cfg, status)
        crc = q["crc"].copy()
        if cfg.fecf:
            unknown = (status == 0) & (crc < 0)
            if unknown.any():
                from groundseg.coding.crc import fecf_ok
                crc[unknown] = fecf_ok(frames[unknown]).astype(np.int8)
        status[(status == 0) & (crc == 0)] = REJECT_CODE["crc"]
        rec["crc"] = crc
        return self._finish(frames, rec, status, head, q)

    def flush(self) -> LinkOutput:
        """End of stream: packets in progress are counted ``dropped_incomplete``."""
        self.extractor.flush()
        return LinkOutput.empty()

    def reset_stream(self) -> None:
        """A new file: counters and packets in progress forgotten; no gap counted across."""
        self.extractor.reset_stream()
        self.demux.reset_stream()

    def counts(self) -> dict:
        r = self._frame_rejects
        frame_reject_codes = [REJECT_CODE[k] for k in ("version", "scid", "frame_length", "truncated", "fhec")]
        pk = self.extractor.counts()
        rejects = {REJECT_REASONS[i]: int(c) for i, c in enumerate(r) if c}
        for k, v in pk["rejects"].items():
            rejects[k] = rejects.get(k, 0) + v
        out = {"frames": {"rejected": int(r[frame_reject_codes].sum()),
                          "crc_failed": int(r[REJECT_CODE["crc"]]),
                          "idle": int(self.demux.vc_stats[:, demux.VC_IDLE].sum())},
               "virtual_channels": self.demux.vc_counts()}
        if self.config.frame_type == "TM":
            out["master_channel"] = self.demux.mc_counts()
        out["packets"] = pk["packets"]
        out["idle_packets"] = pk["idle_packets"]
        out["rejects"] = rejects
        return out

    # -- internals -----------------------------------------------------------------------
    def _finish(self, frames, rec, status, head, q) -> LinkOutput:
        cfg = self.config
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
            if cfg.frame_type == "TM":
                rec["mcfc"][trusted] = head["mcfc"][trusted]
                idle = delivered & (head["fhp"] == tm.FHP_IDLE)
                has_ocf = head["ocf_flag"].astype(bool)
                sec = np.where(head["sec_hdr_flag"], cfg.tm_secondary_header, 0)
                df_start = tm.HEADER_LENGTH + sec
                zone_start = df_start
            else:
                idle = delivered & (vcid == cfg.idle_vcid)
                has_ocf = self._ocf_vc[vcid]
                df_start = np.full(n, cfg.header_length, np.int64)
                zone_start = df_start + aos.MPDU_HEADER_LENGTH
            zone_end = width - (2 if cfg.fecf else 0) - 4 * has_ocf.astype(np.int64)
            kind = self._kind_vc[vcid]
            # FHP where an M_PDU is carried
            if cfg.frame_type == "TM":
                fhp = head["fhp"].astype(np.int64)
                with_fhp = trusted & (kind == _KIND_CODE["packets"])
            else:
                mpdu = trusted & ~(vcid == cfg.idle_vcid) & (kind == _KIND_CODE["packets"])
                fhp = np.full(n, -1, np.int64)
                if mpdu.any():
                    fhp[mpdu] = aos.decode_mpdu_header(frames[mpdu], cfg.header_length)
                with_fhp = mpdu
            rec["fhp"][with_fhp] = fhp[with_fhp]
            rec["idle"] = idle
            ocf_rows = trusted & has_ocf
            if ocf_rows.any():
                o = width - (2 if cfg.fecf else 0) - 4
                rec["has_ocf"] = ocf_rows
                rec["ocf"][ocf_rows] = ((frames[ocf_rows, o].astype(np.uint32) << 24)
                                        | (frames[ocf_rows, o + 1].astype(np.uint32) << 16)
                                        | (frames[ocf_rows, o + 2].astype(np.uint32) << 8)
                                        | frames[ocf_rows, o + 3])
            if self._time is not None:
                iz0 = aos.HEADER_LENGTH + (aos.FHEC_LENGTH if cfg.fhec else 0)
                t = self._time.decode(frames[trusted, iz0:iz0 + cfg.insert_zone])
                rec["insert_zone_time"][trusted] = t

            gap, lost = self.demux.update(np.flatnonzero(delivered), vcid, head["vcfc"],
                                          head["vcfc_modulus"], idle,
                                          head["mcfc"] if cfg.frame_type == "TM" else None)
            rec["gap_before"] = gap
            rec["frames_lost"] = lost

            rows = np.flatnonzero(delivered & (kind == _KIND_CODE["packets"]) & with_fhp)
            if cfg.frame_type == "AOS":
                rows = rows[~idle[rows]]
            if len(rows):
                packets, pk_rejects = self.extractor.push(
                    frames, rows, zone_start, zone_end, np.where(fhp < 0, 0, fhp), gap, vcid, vcid,
                    rec["reception_time"], rec["insert_zone_time"])
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
