"""Transfer frames: each VC's packet stream cut into M_PDU packet zones (idle packets where the
spacecraft had nothing to send), idle frames, and headers, OCF/CLCW and FECF written through
the frame type (:class:`groundseg.link.frame_types.FrameType`)."""
from __future__ import annotations

import math

import numpy as np

from groundseg.coding import crc
from groundseg.link import clcw, packets as pk
from groundseg.sim.kernels import put_rows, scatter
from groundseg.sim.packets import be_bytes, make_packets
from groundseg.sim.plan import CLOCK_START, IDLE_APID, IDLE_FILL, SEQ_MODULUS, Plan


def zone_layout(plan: Plan, vcid: int) -> tuple[int, int]:
    """(first byte, length) of the packet zone (TM data field / AOS M_PDU packet zone)."""
    data, ocf = plan.vcs[vcid]
    tail = (4 if ocf else 0) + (2 if plan.link.fecf else 0)
    ft = plan.frame_type
    start = ft.header_length(plan.link_config) + (ft.mpdu_header_length if data == "packets" else 0)
    return start, plan.frame_length - start - tail


def vc_stream(rng, plan: Plan, vcid: int, n_frames: int, duration: float, t0: float, flush: float):
    """A VC's packet stream cut to exactly n_frames packet zones, with idle packets where
    the spacecraft had nothing to send (after a ``flush`` fraction of the packets) and at
    the end.

    Returns (stream, starts, apids, seqs, lengths, {apid: (flat, lengths) as generated});
    idle packets have APID 0x7FF."""
    _, zone = zone_layout(plan, vcid)
    mine = [a for a in plan.apids if a.vcid == vcid]
    capacity = n_frames * zone
    if not mine or n_frames == 0:
        mine = []
    # packet rates scaled so the VC is a little over-subscribed (the tail is not sent)
    byte_rate = sum(a.weight * a.mean_length for a in mine) or 1.0
    scale = 1.05 * capacity / (byte_rate * duration) if mine else 0.0
    src, src_len, t_all, apid_all, seq_all, per_apid = [], [], [], [], [], {}
    for a in mine:
        rate = a.weight * scale
        n = int(math.ceil(rate * duration)) + 1
        phase = rng.uniform(0, 1)
        times = t0 + (phase + np.arange(n)) / rate
        seq0 = int(rng.integers(SEQ_MODULUS))
        flat, lengths = make_packets(rng, a, n, times, seq0)
        per_apid[a.apid] = (flat, lengths)
        src.append(flat)
        src_len.append(lengths)
        t_all.append(times)
        apid_all.append(np.full(n, a.apid, np.int64))
        seq_all.append((seq0 + np.arange(n)) % SEQ_MODULUS)
    if mine:
        flat_all = np.concatenate(src)
        lengths = np.concatenate(src_len)
        src_off = np.zeros(len(lengths), np.int64)
        np.cumsum(lengths[:-1], out=src_off[1:])
        order = np.argsort(np.concatenate(t_all), kind="stable")
        lengths, src_off = lengths[order], src_off[order]
        apids = np.concatenate(apid_all)[order]
        seqs = np.concatenate(seq_all)[order]
    else:
        flat_all = np.zeros(0, np.uint8)
        lengths = src_off = apids = seqs = np.zeros(0, np.int64)
    m = len(lengths)
    # segments end at flush points; each is padded to a zone boundary with one idle packet
    flush_after = rng.random(m) < flush
    seg = np.zeros(m, np.int64)
    if m:
        seg[1:] = np.cumsum(flush_after[:-1])
    end_in_seg = np.cumsum(lengths) - np.concatenate([[0], np.cumsum(lengths)])[
        np.searchsorted(seg, seg, side="left")] if m else lengths
    room = (-end_in_seg) % zone
    pad = np.where((room > 0) & (room < 7), room + zone, room)
    seg_len = np.zeros(int(seg[-1]) + 1 if m else 0, np.int64)
    if m:
        last_of_seg = np.flatnonzero(np.r_[seg[1:] != seg[:-1], True])
        seg_len[:] = end_in_seg[last_of_seg] + pad[last_of_seg]
    seg_start = np.zeros_like(seg_len)
    if len(seg_len):
        np.cumsum(seg_len[:-1], out=seg_start[1:])
    # the stream ends after the last packet whose own closing idle packet still fits
    end_if_flushed = (seg_start[seg] + end_in_seg + pad) if m else np.zeros(0, np.int64)
    fits = np.flatnonzero(end_if_flushed <= capacity)
    keep = int(fits[-1]) + 1 if len(fits) else 0
    lengths, src_off, apids, seqs = lengths[:keep], src_off[:keep], apids[:keep], seqs[:keep]
    seg, end_in_seg, pad = seg[:keep], end_in_seg[:keep], pad[:keep]
    dst = (seg_start[seg] + end_in_seg - lengths) if keep else np.zeros(0, np.int64)
    if keep:
        # one idle packet closes each segment (the last kept packet closes the final one)
        closes = np.r_[seg[1:] != seg[:-1], True] & (pad > 0)
        idle_pos = (dst + lengths)[closes]
        idle_len = pad[closes]
        filled = int(dst[-1] + lengths[-1] + pad[-1])
    else:
        idle_pos = idle_len = np.zeros(0, np.int64)
        filled = 0
    extra = (capacity - filled) // zone
    if extra > 0:
        idle_pos = np.r_[idle_pos, filled + zone * np.arange(extra)]
        idle_len = np.r_[idle_len, np.full(extra, zone)]
    idle_pos = idle_pos.astype(np.int64)
    idle_len = idle_len.astype(np.int64)
    stream = np.full(capacity, IDLE_FILL, np.uint8)
    if len(idle_pos):
        hdr = pk.pack_primary_headers(IDLE_APID, 0, idle_len - 7)
        put_rows(stream, idle_pos, hdr)
    scatter(flat_all, src_off, lengths, stream, dst)
    starts = np.r_[dst, idle_pos].astype(np.int64)
    all_len = np.r_[lengths, idle_len].astype(np.int64)
    all_apid = np.r_[apids, np.full(len(idle_pos), IDLE_APID)].astype(np.int64)
    all_seq = np.r_[seqs, np.zeros(len(idle_pos), np.int64)].astype(np.int64)
    o = np.argsort(starts, kind="stable")
    return stream, starts[o], all_apid[o], all_seq[o], all_len[o], per_apid


def build_frames(rng, plan: Plan, n_frames: int, idle_fraction: float, flush: float,
                 clock_start: float | None = None):
    """Every transmitted frame, in order, plus what the truth needs to know about each.
    ``clock_start``: onboard time of the first frame (UNIX s); default CLOCK_START plus a
    day's random offset."""
    link = plan.link
    ft = plan.frame_type
    fl = plan.frame_length
    frame_seconds = (fl + link.rs_parity * link.interleave + len(link.asm) // 2) * 8 / plan.bit_rate
    offset = float(rng.uniform(0, 86400.0))  # drawn either way: the seed gives the same data
    t0 = CLOCK_START + offset if clock_start is None else float(clock_start)
    # which VC each frame slot carries
    data_vcs = [v for v in plan.vcs if v != plan.idle_vcid]
    weights = np.array([1.0 if plan.vcs[v][0] == "packets" else 0.2 for v in data_vcs])
    sched = np.asarray(data_vcs, np.int64)[rng.choice(len(data_vcs), n_frames, p=weights / weights.sum())]
    idle_frame = np.zeros(n_frames, bool)
    if plan.idle_vcid is not None and idle_fraction > 0:
        idle_frame = rng.random(n_frames) < idle_fraction
        sched[idle_frame] = plan.idle_vcid
    # idle frames are exactly the frames on the idle VC (whatever marks them on the frame type)
    is_idle = idle_frame
    frame_times = t0 + np.arange(n_frames) * frame_seconds
    duration = max(n_frames * frame_seconds, frame_seconds)
    frames = np.full((n_frames, fl), IDLE_FILL, np.uint8)
    fhp = np.full(n_frames, 0x7FF, np.int64)
    # VC frame counters: start anywhere (so short captures see wraps too); a counter too
    # long to wrap in a capture starts just before its wrap
    vc_mod = ft.vc_modulus
    vcfc = np.zeros(n_frames, np.int64)
    packet_info = {}
    for v in sorted(plan.vcs):
        rows = np.flatnonzero(sched == v)
        start = int(rng.integers(vc_mod)) if vc_mod <= 256 else int(vc_mod - rng.integers(1, 4 * len(rows) + 2))
        vcfc[rows] = (start + np.arange(len(rows))) % vc_mod
        data, _ = plan.vcs[v]
        zstart, zone = zone_layout(plan, v)
        vc_idle = np.full(len(rows), v == plan.idle_vcid)
        work = rows[~vc_idle]
        if data == "packets" and v != plan.idle_vcid:
            stream, starts, apids, seqs, lens, per_apid = vc_stream(rng, plan, v, len(work), duration,
                                                                   t0, flush)
            zones, vfhp = pk.pack_mpdu(stream, starts, zone)
            frames[work, zstart:zstart + zone] = zones
            fhp[work] = vfhp
            packet_info[v] = dict(rows=work, stream=stream, starts=starts, apids=apids, seqs=seqs,
                                  lengths=lens, zone=zone, per_apid=per_apid)
        elif len(work):
            a0 = zstart - (ft.mpdu_header_length if data == "packets" else 0)
            frames[work, a0:zstart + zone] = rng.integers(0, 256, (len(work), zstart + zone - a0), dtype=np.uint8)
    # headers, secondary header / insert zone, OCF, FECF
    # per-VC properties as lookup tables indexed by VCID (no loop over frames)
    ocf_of = np.zeros(ft.n_vcids, bool)
    packets_of = np.zeros(ft.n_vcids, bool)
    for v, (d, o) in plan.vcs.items():
        ocf_of[v], packets_of[v] = o, d == "packets" and v != plan.idle_vcid
    ocf_flag = ocf_of[sched]
    cfg = plan.link_config
    mcfc = secondary = insert_zone = None
    if ft.master_channel_counter:
        mc0 = int(rng.integers(ft.mc_modulus))
        mcfc = (mc0 + np.arange(n_frames)) % ft.mc_modulus
    if cfg.tm_secondary_header:
        # the secondary header's data field: the frame number, big-endian
        k = cfg.tm_secondary_header - 1
        secondary = be_bytes(np.arange(n_frames, dtype=np.uint64), 8)[:, max(0, 8 - k):]
        if k > 8:
            secondary = np.concatenate([np.zeros((n_frames, k - 8), np.uint8), secondary], axis=1)
    if cfg.insert_zone:
        insert_zone = np.empty((n_frames, cfg.insert_zone), np.uint8)
        insert_zone[:] = rng.integers(0, 256, cfg.insert_zone, dtype=np.uint8)
        izt = link.insert_zone_time
        if izt is not None:
            counts = np.floor((frame_times - izt.epoch_unix) / izt.unit).astype(np.int64)
            b = be_bytes((counts % (1 << (8 * izt.length))).astype(np.uint64), izt.length)
            if izt.byteorder == "little":
                b = b[:, ::-1]
            insert_zone[:, izt.offset:izt.offset + izt.length] = b
    ft.pack_headers(frames, cfg, scid=plan.scid, vcid=sched, vcfc=vcfc, fhp=fhp, data=packets_of[sched],
                    idle=is_idle, mcfc=mcfc, ocf_flag=ocf_flag, secondary=secondary, insert_zone=insert_zone)
    tail = fl - (2 if link.fecf else 0)
    if ocf_flag.any():
        report = (np.arange(n_frames) // 37) % 256
        words = clcw.encode(vcid=0, report_value=report[ocf_flag])
        frames[ocf_flag, tail - 4:tail] = clcw.to_bytes(words)
    if link.fecf:
        c = crc.crc16(frames[:, :tail])
        frames[:, tail] = (c >> 8).astype(np.uint8)
        frames[:, tail + 1] = (c & 0xFF).astype(np.uint8)
    return frames, sched, vcfc, is_idle.copy(), packet_info, vc_mod
