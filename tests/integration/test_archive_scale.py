"""The archive at scale, scaled down: time-bucketed dedup stays exact and within its
budget when captures overlap or jump in time; the time index answers exactly what a
full scan does."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from groundseg import telemetry
from groundseg.archive import timeindex
from groundseg.archive.hdf5 import ArchiveWriter
from groundseg.archive.reader import open_archive
from tests.integration.test_archive_support import mixed_batch, write_mission
from groundseg.mission import load_mission

import pytest


@pytest.fixture
def mission(tmp_path):
    return load_mission(write_mission(tmp_path / "m"))


def _decoded(batch, mission):
    return telemetry.decode(batch, mission)[0]


def test_overlapping_capture_of_another_station_adds_nothing_new_twice(tmp_path, mission):
    """Station B's capture of the same pass starts and ends later than A's and its clock
    is 2.5 s off; replayed in pieces, with buckets smaller than a piece and a dedup
    budget smaller than the pass: only B's packets after A's end are new, and replaying
    either capture again adds nothing."""
    a = [mixed_batch(20, t0=1.7e9 + 20 * i, seq0=20 * i, seed=i, rx0=1.8e9 + 20 * i) for i in range(8)]
    b = [mixed_batch(20, t0=1.7e9 + 20 * i, seq0=20 * i, seed=i, rx0=1.8e9 + 20 * i + 2.5)
         for i in range(3, 11)]
    opts = dict(dedup_bucket=7.0, dedup_memory=40 * 24 * 20, dedup_piece=16, flush_packets=30)

    def replay(batches, name):
        with ArchiveWriter(tmp_path, mission, **opts) as w:
            w.begin_pass(name)
            for x in batches:
                w.append(decoded=_decoded(x, mission))
            return w.end_pass({})

    first = replay(a, "station A")
    second = replay(b, "station B")
    assert second["packets"] == sum(len(x) for x in b[5:])           # rounds 160..219
    assert second["duplicates"] == sum(len(x) for x in b[:5])
    for batches in (a, b, a[2:5] + b[::-1]):
        again = replay(batches, "again")
        assert again["packets"] == 0 and again["duplicates"] == sum(len(x) for x in batches)
    with open_archive(tmp_path / "unit.h5") as arc:
        hk = arc.packets("hk")
        assert sorted(hk["seq_count"].tolist()) == list(range(220))
        assert arc.packet_count() == first["packets"] + second["packets"]


def test_pass_jumping_in_time_stays_within_budget_and_exact(tmp_path, mission):
    """A pass whose onboard time jumps between distant stretches (several recordings
    concatenated, as the benchmark's capture is): keys of each stretch stay in their own
    buckets, memory stays within the budget, and a replay finds every packet."""
    starts = [5000, 100, 9000, 300, 7000, 2000]
    batches = [mixed_batch(15, t0=1.7e9 + s, seq0=15 * i, seed=i, rx0=1.8e9 + 15 * i)
               for i, s in enumerate(starts)]
    one_batch = 24 * len(batches[0])
    budget = 3 * one_batch
    peaks = []
    for name in ("first", "replayed"):
        with ArchiveWriter(tmp_path, mission, dedup_memory=budget, dedup_piece=8, dedup_bucket=5.0,
                           flush_packets=1) as w:
            w.begin_pass(name)
            for x in batches:
                w.append(decoded=_decoded(x, mission))
                peaks.append(w._dedup.nbytes())
                # every run holds keys of one bucket: no span wider than a bucket
                for index in (w._dedup.exact, w._dedup.timed):
                    for r in index.runs:
                        if r.bucket is not None and r.bucket != np.iinfo(np.int64).min and r.exact_span \
                                and np.isfinite(r.lo):
                            assert r.hi - r.lo <= 5.0
            info = w.end_pass({})
        if name == "replayed":
            assert info["packets"] == 0 and info["duplicates"] == sum(len(x) for x in batches)
    assert max(peaks) <= budget + 2 * one_batch  # budget + one batch arriving + one read back


# -- time index -----------------------------------------------------------------------------
@settings(deadline=None, max_examples=200)
@given(st.lists(st.one_of(st.floats(0, 100, allow_nan=False), st.just(np.nan)), min_size=1, max_size=60),
       st.integers(0, 30), st.integers(1, 7), st.integers(1, 5),
       st.tuples(st.one_of(st.none(), st.floats(-5, 105)), st.one_of(st.none(), st.floats(-5, 105))),
       st.integers(0, 59), st.integers(0, 60))
def test_time_index_spans_cover_exactly_the_matching_rows(times, first, block, pieces, window, a, b):
    """Rows the index leaves out never match; blocks are built piece by piece (flushes)
    the same as all at once."""
    t = np.array(times, np.float64)
    rx = t[::-1].copy()
    carry, index = None, np.zeros((0, 4))
    cuts = np.linspace(0, len(t), pieces + 1).astype(int)
    for s, e in zip(cuts[:-1], cuts[1:]):
        k0, vals, carry = timeindex.block_spans(t[s:e], rx[s:e], first + s, carry, block)
        if len(vals):
            need = k0 + len(vals)
            if len(index) < need:
                index = np.vstack([index, np.full((need - len(index), 4), np.nan)])
            index[k0:need] = timeindex.finish(vals)
    _, whole, _ = timeindex.block_spans(t, rx, first, None, block)
    k_first = first // block
    assert np.array_equal(index[k_first:k_first + len(whole)], timeindex.finish(whole), equal_nan=True)
    t0, t1 = window
    a, b = sorted((min(a, len(t)), min(b, len(t))))
    for column, col in ((0, t), (1, rx)):
        spans = timeindex.candidate_spans(index, first + a, first + b, column, t0, t1, block)
        covered = np.zeros(len(t), bool)
        for lo, hi in spans:
            assert first + a <= lo < hi <= first + b
            covered[lo - first:hi - first] = True
        with np.errstate(invalid="ignore"):
            match = np.ones(len(t), bool)
            if t0 is not None:
                match &= col >= t0
            if t1 is not None:
                match &= col < t1
        match[:a] = match[b:] = False
        assert not (match & ~covered).any()


def test_time_window_read_equals_full_scan(tmp_path, mission):
    """Several passes of packets out of time order over more than one index block: every
    window (onboard and reception) returns exactly what filtering a full read gives."""
    rng = np.random.default_rng(7)
    n = timeindex.INDEX_BLOCK // 2 + 8   # hk rows per pass: 1.5 index blocks in all
    for p in range(3):
        starts = rng.permutation(4) * 40000.0 + 1.7e9 + 1e6 * (p % 2)
        batches = [mixed_batch(n // 4, t0=s, seq0=0, seed=10 * p + j, rx0=1.8e9 + 1e6 * p + 4e4 * j,
                               undeclared=False) for j, s in enumerate(starts)]
        with ArchiveWriter(tmp_path, mission, flush_packets=20000) as w:
            w.begin_pass(f"pass {p}")
            for x in batches:
                w.append(decoded=_decoded(x, mission))
            w.end_pass({})
    with open_archive(tmp_path / "unit.h5") as arc:
        assert arc._time_index("packets/hk") is not None
        full = arc.packets("hk")
        lo, hi = np.nanmin(full["onboard_time"]), np.nanmax(full["onboard_time"])
        assert arc.apid_time_span("hk") == (lo, hi)
        for _ in range(25):
            for time in ("onboard", "reception"):
                col = full[f"{time}_time"]
                t0, t1 = np.sort(rng.uniform(np.nanmin(col) - 10, np.nanmax(col) + 10, 2))
                if rng.random() < 0.2:
                    t1 = t0 + 30.0
                got = arc.packets("hk", start=t0, stop=t1, time=time)
                want = full[(col >= t0) & (col < t1)]
                assert got.tobytes() == want.tobytes() and len(got) == len(want)
                passes = [int(rng.integers(1, 4))]
                got = arc.packets("payload", start=t0, stop=t1, time=time, passes=passes)
                pl = arc.packets("payload", passes=passes)
                c = pl[f"{time}_time"]
                assert got.tobytes() == pl[(c >= t0) & (c < t1)].tobytes()
