"""Virtual-channel demultiplexing for transfer frames (TM CCSDS 132.0-B-3, AOS 732.0-B-4):
the per-VC (and master-channel) frame counters with their gaps and repeats. The header
checks are the frame type's (:meth:`groundseg.link.frame_types.FrameType.check`).

Counter rules (docs/report.md): with d = (new - old) mod 2^n (TM 8-bit VC and MC counts;
AOS 24-bit, 28-bit when the usage flag extends it with the cycle):
- d = 1: in order.
- d = 0: an exact repeat, counted in ``repeats`` and not a gap. Spacecraft whose idle
  virtual channels never advance their counter, or that do not use it, repeat it on every
  frame; a duplicated frame repeats it once. Nothing is lost, and the frame is delivered
  as in-order (what that means for a packet in progress: see
  :class:`groundseg.link.decoder.LinkDecoder`).
- otherwise a gap: ``frames_lost`` adds d - 1 when d is under half the counter range, else
  the jump is taken as backward (a replay, a reset counter) and adds 0 (with an 8-bit TM
  counter this bounds the losses one gap can report at 127 frames).
State is per VC: a gap on one VC never touches another.
"""
from __future__ import annotations

import numpy as np

from groundseg._numba import kernel
from groundseg.link.records import CounterStats, VcStats

VC_FRAMES, VC_IDLE, VC_GAPS, VC_LOST, VC_REPEATS = range(5)
#: columns of the ``stats`` array of :func:`counter_gaps`
ST_GAPS, ST_LOST, ST_REPEATS = range(3)


@kernel
def _counter_kernel(rows, key, counter, modulus, last, gap_out, lost_out, repeat_out, stats):
    for r in range(rows.shape[0]):
        i = rows[r]
        k = key[i]
        c = counter[i]
        prev = last[k]
        if prev >= 0:
            m = modulus[i]
            d = (c - prev) % m
            if d == 0:
                repeat_out[i] = True
                stats[k, 2] += 1
            elif d != 1:
                gap_out[i] = True
                stats[k, 0] += 1
                if d < m // 2:
                    lost_out[i] = d - 1
                    stats[k, 1] += d - 1
        last[k] = c


def counter_gaps(rows, key, counter, modulus, last, stats):
    """The counter rule over ``rows`` (in order), state ``last`` per key (-1: none yet).

    Returns (gap_before bool (n,), frames_lost int64 (n,), repeat bool (n,));
    ``stats[key]`` += (gaps, lost, repeats)."""
    n = len(counter)
    gap = np.zeros(n, np.bool_)
    lost = np.zeros(n, np.int64)
    repeat = np.zeros(n, np.bool_)
    _counter_kernel(np.ascontiguousarray(rows, np.int64), np.ascontiguousarray(key, np.int64),
                    np.ascontiguousarray(counter, np.int64),
                    # a writable copy always: a read-only view would compile a second signature
                    np.array(np.broadcast_to(modulus, (n,)), np.int64), last, gap, lost, repeat, stats)
    return gap, lost, repeat


class Demux:
    """Per-VC (and master-channel) counters and frame counts across batches.

    ``mc_modulus`` 0: the frame type has no master-channel counter."""

    def __init__(self, n_vcids: int, mc_modulus: int = 0, vc_counters: bool = True):
        self.n_vcids = n_vcids
        self.vc_counters = vc_counters     # False: frames without counters (frame_type "none")
        self.mc_modulus = int(mc_modulus)
        self.vc_last = np.full(n_vcids, -1, np.int64)
        self.vc_stats = np.zeros((n_vcids, 5), np.int64)   # frames, idle, gaps, lost, repeats
        self.mc_last = np.full(1, -1, np.int64)
        self.mc_stats = np.zeros((1, 3), np.int64)

    def update(self, rows, vcid, vcfc, modulus, idle, mcfc=None):
        """Delivered frames ``rows`` (in order): count them and check their counters.
        Returns (gap_before, frames_lost, repeat), each (n,) over all of ``vcid``."""
        n = len(vcid)
        np.add.at(self.vc_stats[:, VC_FRAMES], vcid[rows], 1)
        np.add.at(self.vc_stats[:, VC_IDLE], vcid[rows[idle[rows]]], 1)
        st = np.zeros((self.n_vcids, 3), np.int64)
        if not self.vc_counters:
            return np.zeros(n, bool), np.zeros(n, np.int64), np.zeros(n, bool)
        gap, lost, repeat = counter_gaps(rows, vcid, vcfc, modulus, self.vc_last, st)
        self.vc_stats[:, VC_GAPS:] += st
        if self.mc_modulus and mcfc is not None:
            counter_gaps(rows, np.zeros(n, np.int64), mcfc, self.mc_modulus, self.mc_last, self.mc_stats)
        return gap, lost, repeat

    def reset(self) -> None:
        """A new stream: no counter is compared across it."""
        self.vc_last[:] = -1
        self.mc_last[:] = -1

    @property
    def stats(self) -> dict[int, VcStats]:
        s = self.vc_stats
        return {int(v): VcStats(frames=int(s[v, VC_FRAMES]), idle=int(s[v, VC_IDLE]),
                                gaps=int(s[v, VC_GAPS]), frames_lost=int(s[v, VC_LOST]),
                                repeats=int(s[v, VC_REPEATS]))
                for v in np.flatnonzero(s[:, VC_FRAMES])}

    @property
    def master_channel(self) -> CounterStats | None:
        if not self.mc_modulus:
            return None
        g, lost, rep = (int(x) for x in self.mc_stats[0])
        return CounterStats(gaps=g, frames_lost=lost, repeats=rep)
