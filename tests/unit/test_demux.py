"""Frame checks (FrameType.check) and VC counters (132.0-B / 732.0-B): kernel vs a plain-Python reference."""
import numpy as np
import pytest

from groundseg.link import aos, demux, tm
from groundseg.link.decoder import LinkConfig
from groundseg.link.records import REJECT_CODE


def reference_counters(keys, counters, moduli):
    """d = 0 a repeat (not a gap); d = 1 in order; else a gap, d - 1 lost when d < m / 2."""
    last, gaps, lost, repeats = {}, [], [], []
    for k, c, m in zip(keys, counters, moduli):
        g, n, r = False, 0, False
        if k in last:
            d = (c - last[k]) % m
            if d == 0:
                r = True
            elif d != 1:
                g = True
                n = d - 1 if d < m // 2 else 0
        last[k] = c
        gaps.append(g)
        lost.append(n)
        repeats.append(r)
    return gaps, lost, repeats


@pytest.mark.parametrize("modulus", [256, 2 ** 24, 2 ** 28])
def test_counter_kernel_matches_reference(modulus):
    rng = np.random.default_rng(modulus % 97)
    n = 400
    keys = rng.integers(0, 4, n)
    counters = np.zeros(n, np.int64)
    state = rng.integers(0, modulus, 4)
    for i, k in enumerate(keys):
        r = rng.random()
        step = 1 if r < 0.8 else (0 if r < 0.85 else int(rng.integers(2, modulus)))
        state[k] = (state[k] + step) % modulus
        counters[i] = state[k]
    rows = np.flatnonzero(rng.random(n) < 0.9)   # some frames not delivered: skipped entirely
    last = np.full(4, -1, np.int64)
    stats = np.zeros((4, 3), np.int64)
    gap, lost, repeat = demux.counter_gaps(rows, keys, counters, modulus, last, stats)
    ref_gap, ref_lost, ref_repeat = reference_counters(keys[rows], counters[rows], [modulus] * len(rows))
    assert gap[rows].tolist() == ref_gap and lost[rows].tolist() == ref_lost
    assert repeat[rows].tolist() == ref_repeat and any(ref_repeat)
    skipped = np.setdiff1d(np.arange(n), rows)
    assert not gap[skipped].any() and not repeat[skipped].any()
    assert stats[:, 0].sum() == sum(ref_gap) and stats[:, 1].sum() == sum(ref_lost)
    assert stats[:, 2].sum() == sum(ref_repeat)


def test_counter_state_carries_across_calls():
    last = np.full(1, -1, np.int64)
    stats = np.zeros((1, 3), np.int64)
    demux.counter_gaps(np.array([0]), np.array([0]), np.array([254]), 256, last, stats)
    gap, lost, _ = demux.counter_gaps(np.array([0, 1]), np.array([0, 0]), np.array([255, 1]), 256, last, stats)
    assert gap.tolist() == [False, True] and lost.tolist() == [0, 1]
    gap, lost, repeat = demux.counter_gaps(np.array([0, 1]), np.array([0, 0]), np.array([1, 0]), 256, last, stats)
    assert repeat.tolist() == [True, False] and gap.tolist() == [False, True] and lost.tolist() == [0, 0]
    assert stats.tolist() == [[2, 1, 1]]


def test_check_order_version_then_scid_then_length():
    cfg = LinkConfig(frame_type="TM", frame_length=20, spacecraft_id=5, tm_secondary_header=0)
    h = tm.pack_primary_header([5, 6, 5, 6, 5], 0, 0, 0, 0, sec_hdr_flag=[0, 0, 1, 1, 0], n=5)
    frames = np.concatenate([h, np.zeros((5, 14), np.uint8)], axis=1)
    frames[4, 0] |= 0x80          # version 2 and (below) a wrong SCID too
    status = np.zeros(5, np.uint8)
    status[0] = REJECT_CODE["rs_uncorrectable"]
    cfg.ft.check(frames, cfg, status)
    assert [int(s) for s in status] == [REJECT_CODE[r] for r in
                                        ("rs_uncorrectable", "scid", "frame_length", "scid", "version")]


def test_check_scid_can_be_disabled():
    cfg = LinkConfig(frame_type="AOS", frame_length=20, spacecraft_id=5, check_scid=False)
    frames = np.concatenate([aos.pack_primary_header([5, 6], 1, 0), np.zeros((2, 14), np.uint8)], axis=1)
    status = np.zeros(2, np.uint8)
    cfg.ft.check(frames, cfg, status)
    assert (status == 0).all()


def test_demux_counts_per_vc_idle_vc_that_never_advances_is_repeats():
    d = demux.Demux(64)
    vcid = np.array([1, 1, 2, 1, 2, 2])
    vcfc = np.array([10, 11, 0, 13, 1, 1])
    idle = np.array([False, False, True, False, True, True])
    gap, lost, repeat = d.update(np.arange(6), vcid, vcfc, np.full(6, 2 ** 24), idle)
    assert gap.tolist() == [False, False, False, True, False, False] and lost.tolist() == [0, 0, 0, 1, 0, 0]
    assert repeat.tolist() == [False] * 5 + [True]
    assert {v: s.to_dict() for v, s in d.stats.items()} == {
        1: {"frames": 3, "idle": 0, "gaps": 1, "frames_lost": 1, "repeats": 0},
        2: {"frames": 3, "idle": 3, "gaps": 0, "frames_lost": 0, "repeats": 1}}
    assert d.master_channel is None
    d.reset()
    gap, _, _ = d.update(np.arange(1), np.array([1]), np.array([100]), np.array([2 ** 24]), np.array([False]))
    assert not gap.any()


def test_master_channel_counter():
    d = demux.Demux(8, 256)
    vcid = np.array([0, 1, 0, 1])
    gap, lost, _ = d.update(np.arange(4), vcid, np.array([0, 0, 1, 1]), np.full(4, 256),
                            np.zeros(4, bool), mcfc=np.array([7, 8, 8, 11]))
    assert not gap.any()
    assert d.master_channel.to_dict() == {"gaps": 1, "frames_lost": 2, "repeats": 1}
