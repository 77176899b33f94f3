"""Frame checks and virtual-channel demultiplexing for TM (CCSDS 132.0-B-3) and AOS
(732.0-B-4) transfer frames: header validation in the order DESIGN.md fixes, and the
per-VC (and TM master-channel) frame counters with their gaps.

Counter rules: a frame whose count is not the previous one + 1 (mod 2^n: TM 8-bit VC and
MC counts; AOS 24-bit, 28-bit when the usage flag extends it with the cycle) is a gap.
``frames_lost`` adds (new - old - 1) mod 2^n, except for a backward jump, counted as a gap
with 0 lost. A backward jump is an exact repeat (a duplicated or replayed frame: it is a
discontinuity, the VC's packet in progress is dropped, but nothing was lost) or a forward
distance of half the counter range or more (with an 8-bit TM counter this bounds the
losses one gap can report at 127 frames). State is per VC: a gap on one VC never touches
another.
"""
from __future__ import annotations

import numpy as np

from groundseg._numba import kernel
from groundseg.link import aos, tm
from groundseg.link.records import REJECT_CODE

VC_FRAMES, VC_IDLE, VC_GAPS, VC_LOST = range(4)


def check_frames(frames: np.ndarray, config, status: np.ndarray) -> dict[str, np.ndarray]:
    """Decode the primary headers and mark, in ``status`` (updated in place where still 0),
    each frame's first failing check: version, scid, frame_length, fhec. Returns the header
    fields (AOS: after FHEC correction, which works on a copy, never on ``frames``).

    ``frame_length`` also covers a TM frame whose layout disagrees with the mission: a
    secondary header whose presence or length differs from ``config.tm_secondary_header``,
    or an OCF flag that differs from ``config.ocf``.
    """
    pending = status == 0
    if config.frame_type == "TM":
        head = tm.decode_primary_header(frames)
        head["vcfc"] = head["vcfc"].astype(np.int64)
        head["vcfc_modulus"] = np.full(len(frames), tm.VC_MODULUS, np.int64)
        version_ok = head["version"] == tm.TM_VERSION
        fhec_ok = np.ones(len(frames), bool)
        if config.tm_secondary_header:
            sec_len = tm.decode_secondary_header(frames)["length"]
            length_ok = head["sec_hdr_flag"] & (sec_len == config.tm_secondary_header)
        else:
            length_ok = ~head["sec_hdr_flag"]
        length_ok &= head["ocf_flag"] == bool(config.ocf)
    else:
        if config.fhec:
            h = frames[:, :aos.HEADER_LENGTH + aos.FHEC_LENGTH].copy()
            fhec_ok, _ = aos.fhec_decode(h, correct=config.fhec_correct)
        else:
            h = frames
            fhec_ok = np.ones(len(frames), bool)
        head = aos.decode_primary_header(h)
        version_ok = head["version"] == aos.AOS_VERSION
        length_ok = np.ones(len(frames), bool)
    scid_ok = head["scid"] == config.spacecraft_id if config.check_scid else np.ones(len(frames), bool)
    for ok, reason in ((version_ok, "version"), (scid_ok, "scid"), (length_ok, "frame_length"),
                       (fhec_ok, "fhec")):
        bad = pending & ~ok
        status[bad] = REJECT_CODE[reason]
        pending &= ok
    return head


@kernel
def _counter_kernel(rows, key, counter, modulus, last, gap_out, lost_out, stats):
    for r in range(rows.shape[0]):
        i = rows[r]
        k = key[i]
        c = counter[i]
        prev = last[k]
        if prev >= 0:
            m = modulus[i]
            d = (c - prev) % m
            if d != 1:
                gap_out[i] = True
                stats[k, 0] += 1
                if d != 0 and d < m // 2:
                    lost_out[i] = d - 1
                    stats[k, 1] += d - 1
        last[k] = c


def counter_gaps(rows, key, counter, modulus, last, stats):
    """The counter rule over ``rows`` (in order), state ``last`` per key (-1: none yet).

    Returns (gap_before bool (n,), frames_lost int64 (n,)); ``stats[key]`` += (gaps, lost)."""
    n = len(counter)
    gap = np.zeros(n, np.bool_)
    lost = np.zeros(n, np.int64)
    _counter_kernel(np.ascontiguousarray(rows, np.int64), np.ascontiguousarray(key, np.int64),
                    np.ascontiguousarray(counter, np.int64),
                    # a writable copy always: a read-only view would compile a second signature
                    np.array(np.broadcast_to(modulus, (n,)), np.int64), last, gap, lost, stats)
    return gap, lost


class Demux:
    """Per-VC (and TM master-channel) counters and frame counts across batches."""

    def __init__(self, n_vcids: int, master_channel: bool = False):
        self.n_vcids = n_vcids
        self.master_channel = master_channel
        self.vc_last = np.full(n_vcids, -1, np.int64)
        self.vc_stats = np.zeros((n_vcids, 4), np.int64)   # frames, idle, gaps, lost
        self.mc_last = np.full(1, -1, np.int64)
        self.mc_stats = np.zeros((1, 2), np.int64)

    def update(self, rows, vcid, vcfc, modulus, idle, mcfc=None):
        """Delivered frames ``rows`` (in order): count them and check their counters."""
        n = len(vcid)
        np.add.at(self.vc_stats[:, VC_FRAMES], vcid[rows], 1)
        np.add.at(self.vc_stats[:, VC_IDLE], vcid[rows[idle[rows]]], 1)
        gl = np.zeros((self.n_vcids, 2), np.int64)
        gap, lost = counter_gaps(rows, vcid, vcfc, modulus, self.vc_last, gl)
        self.vc_stats[:, VC_GAPS] += gl[:, 0]
        self.vc_stats[:, VC_LOST] += gl[:, 1]
        if self.master_channel and mcfc is not None:
            counter_gaps(rows, np.zeros(n, np.int64), mcfc, tm.MC_MODULUS, self.mc_last, self.mc_stats)
        return gap, lost

    def reset_stream(self) -> None:
        self.vc_last[:] = -1
        self.mc_last[:] = -1

    def vc_counts(self) -> dict:
        s = self.vc_stats
        return {str(v): {"frames": int(s[v, VC_FRAMES]), "idle": int(s[v, VC_IDLE]),
                         "gaps": int(s[v, VC_GAPS]), "frames_lost": int(s[v, VC_LOST])}
                for v in np.flatnonzero(s[:, VC_FRAMES])}

    def mc_counts(self) -> dict:
        return {"gaps": int(self.mc_stats[0, 0]), "frames_lost": int(self.mc_stats[0, 1])}
