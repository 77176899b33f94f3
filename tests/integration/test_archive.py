"""Per-mission HDF5 archive: writer, read API, dedup, crash consistency, export, plots."""
from __future__ import annotations

import csv

import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from groundseg import telemetry
from groundseg.archive import dedup, hdf5, tables
from groundseg.archive.export import describe_archive, export_packets, repair
from groundseg.archive.hdf5 import (
    ArchiveError, ArchiveLockedError, ArchiveMismatchError, ArchiveWriter, Deduplicator,
    clear_status_flags, lookup3, packet_keys, read_superblock,
)
from groundseg.archive.reader import open_archive
from groundseg.link.records import FRAME_RECORD_DTYPE, REJECT_DTYPE, REJECT_REASONS, RejectBatch
from groundseg.mission import load_mission
from tests.integration.test_archive_support import (
    HK2_CSV, hk_body, make_batch, mixed_batch, split_stream, write_mission,
)

M64 = (1 << 64) - 1


# -- pure-Python references ----------------------------------------------------------------
def ref_key(pkt: bytes, apid: int, seq: int, t: float, exact: bool) -> int:
    h = 0xCBF29CE484222325
    nw = len(pkt) // 8
    for w in range(nw):
        h = ((h ^ int.from_bytes(pkt[8 * w:8 * w + 8], "little")) * 0x100000001B3) & M64
    for b in pkt[8 * nw:]:
        h = ((h ^ b) * 0x100000001B3) & M64
    h ^= (apid << 48) | (seq << 32)
    if exact:
        us = int(round(t * 1e6)) & M64
        h ^= (us * 0x9E3779B97F4A7C15) & M64
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & M64
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & M64
    return h ^ (h >> 31)


def ref_dedup(items, window):
    """items: (pass, apid, seq, content, kind, t) in arrival order; kind 'exact', 'rx', 'none'.
    A packet is a duplicate of an archived one with equal APID, seq and content and:
    exact kinds -> the same time to the microsecond; reception kinds -> |dt| <= window;
    no time -> another pass."""
    archived = []
    dup = []
    for p, apid, seq, content, kind, t in items:
        d = False
        for q, a2, s2, c2, k2, t2 in archived:
            if (a2, s2, c2) != (apid, seq, content) or k2 != kind:
                continue
            if kind == "exact" and round(t * 1e6) == round(t2 * 1e6):
                d = True
            elif kind == "rx" and abs(t - t2) <= window:
                d = True
            elif kind == "none" and q != p:
                d = True
            if d:
                break
        dup.append(d)
        if not d:
            archived.append((p, apid, seq, content, kind, t))
    return dup


# -- fixtures ------------------------------------------------------------------------------
@pytest.fixture
def mission(tmp_path):
    return load_mission(write_mission(tmp_path / "m"))


def write_pass(path, mission, batch, source="test", report=None, **kw):
    decoded, _ = telemetry.decode(batch, mission)
    with ArchiveWriter(path, mission, **kw) as w:
        pid = w.begin_pass(source)
        w.append(decoded=decoded)
        info = w.end_pass(report or {"frames": {"total": 0}})
    return pid, info


# -- superblock checksum -------------------------------------------------------------------
def test_lookup3_known_values():
    # from lookup3.c's driver (Bob Jenkins)
    assert lookup3(b"") == 0xDEADBEEF
    assert lookup3(b"Four score and seven years ago") == 0x17770551
    assert lookup3(b"Four score and seven years ago", 1) == 0xCD628161


def test_superblock_checksum_matches_hdf5(tmp_path):
    p = tmp_path / "x.h5"
    with h5py.File(p, "w", libver=("v110", "v110")) as f:
        f.create_dataset("a", data=np.arange(10))
    sb = read_superblock(p)
    assert sb["version"] in (2, 3) and sb["checksum_ok"] and sb["flags"] == 0


def test_clear_status_flags_lets_hdf5_open(tmp_path):
    p = tmp_path / "x.h5"
    f = h5py.File(p, "w", libver=("v110", "v110"))
    f.create_dataset("a", data=np.arange(10))
    f.flush()
    crashed = tmp_path / "crashed.h5"
    shutil.copy(p, crashed)  # the file as a kill -9 would leave it: flags still set
    f.close()
    assert read_superblock(crashed)["flags"] != 0
    with pytest.raises(OSError):
        h5py.File(crashed, "r")
    info = clear_status_flags(crashed)
    assert info["flags_before"] != 0
    sb = read_superblock(crashed)
    assert sb["flags"] == 0 and sb["checksum_ok"]
    with h5py.File(crashed, "r") as g:
        assert g["a"][:].tolist() == list(range(10))


# -- dedup keys ----------------------------------------------------------------------------
@settings(deadline=None, max_examples=50)
@given(st.lists(st.tuples(st.integers(0, 2047), st.integers(0, 16383), st.binary(min_size=0, max_size=20),
                          st.floats(-1e9, 4e9, allow_nan=False), st.booleans()), min_size=1, max_size=8))
def test_packet_keys_match_reference(rows):
    data = b"".join(r[2] for r in rows)
    offsets = np.zeros(len(rows) + 1, np.int64)
    np.cumsum([len(r[2]) for r in rows], out=offsets[1:])
    keys = packet_keys(np.frombuffer(data, np.uint8), offsets, np.array([r[0] for r in rows]),
                       np.array([r[1] for r in rows]), np.array([r[3] for r in rows]),
                       np.array([r[4] for r in rows]))
    assert [int(k) for k in keys] == [ref_key(r[2], r[0], r[1], r[3], r[4]) for r in rows]


def test_packet_keys_separate_content_and_time():
    data = np.frombuffer(b"abcabd", np.uint8)
    off = np.array([0, 3, 6])
    k = packet_keys(data, off, np.array([1, 1]), np.array([5, 5]), np.array([1.0, 1.0]), np.array([True, True]))
    assert k[0] != k[1]
    k2 = packet_keys(data[:3], off[:2], np.array([1]), np.array([5]), np.array([2.0]), np.array([True]))
    assert k2[0] != k[0]
    k3 = packet_keys(data[:3], off[:2], np.array([1]), np.array([5]), np.array([1.0000001]), np.array([True]))
    assert k3[0] == k[0]  # below a microsecond: the same time


item = st.tuples(st.sampled_from([1, 2]), st.sampled_from([0, 1]), st.sampled_from([b"a", b"b"]),
                 st.sampled_from(["exact", "rx", "none"]), st.sampled_from([0.0, 1.0, 4.0, 30.0]))


def _batch_keys(b):
    """(keys, time source, key time, reception time) of a batch of ``item`` tuples."""
    content = b"".join(c for _, _, c, _, _ in b)
    offsets = np.zeros(len(b) + 1, np.int64)
    np.cumsum([len(c) for _, _, c, _, _ in b], out=offsets[1:])
    kinds = np.array([k for _, _, _, k, _ in b])
    t = np.array([x[4] for x in b])
    src = np.where(kinds == "exact", hdf5.TIME_ONBOARD,
                   np.where(kinds == "rx", hdf5.TIME_RECEPTION, hdf5.TIME_NONE)).astype(np.uint8)
    keys = packet_keys(np.frombuffer(content, np.uint8), offsets, np.array([x[0] for x in b]),
                       np.array([x[1] for x in b]), t, kinds == "exact")
    return keys, src, t, np.where(kinds == "rx", t, np.nan)


@settings(deadline=None, max_examples=100)
@given(st.lists(st.lists(item, min_size=1, max_size=6), min_size=1, max_size=4),
       st.lists(st.integers(0, 1), min_size=4, max_size=4), st.booleans(),
       st.sampled_from([1, 2, 5, 1 << 19]), st.sampled_from([60.0, 1.0, 3.0]))
def test_deduplicator_matches_reference(batches, pass_steps, use_key_time, piece, bucket):
    window = 5.0
    # small pieces: keys spread over several runs; small buckets: a batch over several
    dd = Deduplicator(window, piece=piece, bucket=bucket)
    items, got = [], []
    pass_id = 1
    for b, step in zip(batches, pass_steps):
        pass_id += step
        keys, src, t, rt = _batch_keys(b)
        got += dd.check(keys, src, rt, pass_id, key_time=t if use_key_time else None).tolist()
        items += [(pass_id, a, s, c, k, tt) for a, s, c, k, tt in b]
    assert got == ref_dedup(items, window)


def test_a_new_bucket_run_is_sized_like_the_last():
    """A pass moving on to the next time bucket opens its run at the size the previous
    bucket's reached (no doubling from one batch up), and both stay exact."""
    dd = Deduplicator(5.0, bucket=60.0)
    rng = np.random.default_rng(1)
    keys = rng.integers(1, 2 ** 63, 3000, dtype=np.uint64)
    src = np.full(3000, hdf5.TIME_ONBOARD, np.uint8)
    t = np.concatenate([np.linspace(0, 59, 2990), np.linspace(60, 61, 10)])
    for lo in range(0, 3000, 500):   # batches of 500, the last one reaching bucket 1
        sl = slice(lo, lo + 500)
        assert not dd.check(keys[sl], src[sl], np.full(500, np.nan), 1, key_time=t[sl]).any()
    first, second = dd.exact.open[0], dd.exact.open[1]
    assert first.count == 2990 and second.count == 10
    assert len(second.keys) >= dedup._table_size(2990 - 500)
    assert dd.check(keys, src, np.full(3000, np.nan), 1, key_time=t).all()


@settings(deadline=None, max_examples=100)
@given(st.lists(st.lists(item, min_size=1, max_size=6), min_size=2, max_size=6),
       st.lists(st.integers(0, 1), min_size=6, max_size=6), st.sampled_from([1, 2, 3]),
       st.sampled_from([1.0, 3.0]), st.lists(st.booleans(), min_size=6, max_size=6))
def test_deduplicator_evicting_inside_a_read_back_stays_exact(batches, pass_steps, piece, bucket, lands):
    """Reading a run back joins the archive's flush in flight, whose completion reports rows
    written (an eviction) in the middle of a check: with a budget of almost nothing every
    such report evicts, and the check must still find every duplicate and keep its own run
    (it once dropped the run it was inserting into, and renumbered the runs under it)."""
    window = 5.0
    table = []   # the archived rows: (key, time source, time, pass)
    written = [0]   # rows in the file
    flight = [0]    # rows in flight: in the file after the next join

    def loader(run, timed):
        written[0] = flight[0]   # the join: the rows in flight land
        dd.evict({"t": written[0]})
        rows = [table[i] for s in run.sources for i in range(s[1], min(s[2], written[0]))]
        rows = [r for r in rows if (r[1] > hdf5.TIME_FRAME) == timed]
        t = np.array([r[2] for r in rows], np.float64)
        if run.bucket is not None:   # one bucket of rows holding others: its span only
            inside = (t >= run.lo) & (t <= run.hi) | (np.isnan(t) & run.untimed)
            rows = [r for r, ok in zip(rows, inside) if ok]
            t = t[inside]
        keys = np.array([r[0] for r in rows], np.uint64)
        if not timed:
            return keys, t, None, False
        return keys, t, np.array([r[3] for r in rows], np.int64), bool(np.isnan(t).any())

    dd = Deduplicator(window, budget=64, piece=piece, loader=loader, bucket=bucket)
    items, got = [], []
    pass_id = 1
    for b, step, land in zip(batches, pass_steps, lands):
        pass_id += step
        keys, src, t, rt = _batch_keys(b)
        dup = dd.check(keys, src, rt, pass_id, key_time=t, rows=("t", len(table)))
        for i in np.flatnonzero(~dup):
            kt = t[i] if src[i] <= hdf5.TIME_FRAME else rt[i]
            table.append((int(keys[i]), int(src[i]), float(kt), pass_id))
        got += dup.tolist()
        items += [(pass_id, a, s, c, k, tt) for a, s, c, k, tt in b]
        if land:   # a flush: what was buffered goes in flight, what was in flight lands
            written[0], flight[0] = flight[0], len(table)
            dd.evict({"t": written[0]})
    assert got == ref_dedup(items, window)


# keys that share their low bits collide in small tables: long probe sequences
hash_key = st.one_of(st.just(0), st.integers(0, 7).map(lambda lo: lo | (0xABCD << 32)),
                     st.integers(1, 2**64 - 1).filter(lambda k: k != int(dedup._ZERO_KEY)))


@settings(deadline=None, max_examples=100)
@given(st.lists(st.lists(hash_key, max_size=12), min_size=1, max_size=5))
def test_hash_set_kernels_match_python_set(batches):
    """lookup, insert with in-batch repeats, and growth against a Python set."""
    ref: set[int] = set()
    table = np.zeros(dedup._table_size(0), np.uint64)
    count = 0
    for b in batches:
        q = np.array(b, np.uint64)
        found = np.zeros(len(q), np.bool_)
        dedup._set_contains(table, q, found)
        assert found.tolist() == [k in ref for k in b]
        if dedup._table_size(count + len(q)) > len(table):
            bigger = np.zeros(dedup._table_size(count + len(q)), np.uint64)
            dedup._set_rehash(table, bigger)
            table = bigger
        repeat = np.zeros(len(q), np.bool_)
        count += dedup._set_insert(table, q, found, repeat)
        want = []
        for k in b:
            want.append(k in ref)
            ref.add(k)
        assert (found | repeat).tolist() == want
        assert count == len(ref) == np.count_nonzero(table)
        assert count <= dedup._MAX_LOAD * len(table)


@settings(deadline=None, max_examples=100)
@given(st.lists(st.tuples(hash_key, st.sampled_from([np.nan, 0.0, 3.0, 9.0]), st.integers(1, 2)),
                max_size=12),
       st.lists(st.tuples(hash_key, st.sampled_from([np.nan, 0.0, 3.0, 9.0])), min_size=1, max_size=12),
       st.integers(1, 2))
def test_window_multimap_matches_reference(entries, queries, qpass):
    window = 5.0
    cap = dedup._table_size(len(entries))
    tk, tt, tp = np.zeros(cap, np.uint64), np.zeros(cap), np.zeros(cap, np.int32)
    added = dedup._multi_insert(tk, tt, tp, np.array([e[0] for e in entries], np.uint64),
                               np.array([e[1] for e in entries], np.float64),
                               np.array([e[2] for e in entries], np.int32), np.zeros(len(entries), np.bool_))
    assert added == len(entries)  # equal keys each keep their own slot
    q = np.array([x[0] for x in queries], np.uint64)
    qt = np.array([x[1] for x in queries], np.float64)
    found = np.zeros(len(q), np.bool_)
    dedup._window_contains(tk, tt, tp, q, qt, qpass, window, found)

    def match(k, t):
        for k0, t0, p0 in entries:
            if k0 != k:
                continue
            if np.isnan(t) and np.isnan(t0):
                if p0 != qpass:
                    return True
            elif abs(t - t0) <= window:
                return True
        return False
    assert found.tolist() == [match(k, t) for k, t in queries]


@settings(deadline=None, max_examples=100)
@given(st.lists(st.tuples(hash_key, st.sampled_from([np.nan, 0.0, 3.0, 6.0, 9.0])), max_size=16))
def test_window_repeats_match_reference(rows):
    """In-batch repeats: a timed packet within the window of an earlier, non-repeat packet
    of the same key (the earlier one wins)."""
    window = 5.0
    keys = np.array([r[0] for r in rows], np.uint64)
    times = np.array([r[1] for r in rows], np.float64)
    got = dedup._window_repeats(keys, times, window).tolist()
    want: list[bool] = []
    for i, (k, t) in enumerate(rows):
        want.append(not np.isnan(t) and any(
            rows[j][0] == k and not want[j] and abs(rows[j][1] - t) <= window for j in range(i)))
    assert got == want


# -- write, read back ----------------------------------------------------------------------
def test_write_then_read_equals_written(tmp_path, mission):
    batch = mixed_batch(30)
    decoded, rejects = telemetry.decode(batch, mission)
    assert not rejects
    pid, info = write_pass(tmp_path / "arch", mission, batch)
    path = tmp_path / "arch" / "unit.h5"
    assert path.is_file() and pid == 1 and info["packets"] == len(batch) and info["duplicates"] == 0
    # raw h5py view of the layout
    with h5py.File(path, "r") as f:
        assert f.attrs["mission_name"] == "unit" and f.attrs["spacecraft_id"] == 7
        assert f.attrs["schema_version"] == hdf5.SCHEMA_VERSION
        g = f["packets/hk"]
        assert g.attrs["apid"] == 10
        hk = decoded[10]
        assert g["seq_count"][:].tolist() == hk.packets.header["seq_count"].tolist()
        np.testing.assert_array_equal(g["raw"][:], hk.packets.data)
        # a calibrated field holds its raw counts (schema 2), one integer size wider; int16
        # counts leave the int32 minimum free to mean "no value"
        t = g["fields/temp"]
        np.testing.assert_array_equal(t[:], hk.raw_fields["temp"])
        assert t.dtype == np.dtype("<i4") and t.fillvalue == -2 ** 31 and t.attrs["values"] == "raw counts"
        assert t.attrs["units"] == "degC"
        assert t.attrs["calibration"] == "poly:-40.0,0.5"
        assert json.loads(t.attrs["calibrations"]) == [[1, "poly:-40.0,0.5"]]
        np.testing.assert_array_equal(g["onboard_time"][:], hk.onboard_time)
        np.testing.assert_allclose(g["onboard_time"][:], 1.7e9 + np.arange(30), rtol=0, atol=60)
        assert (g["time_source"][:] == hdf5.TIME_ONBOARD).all()
        u = f["packets/_undeclared"]
        assert set(u["apid"][:].tolist()) == {99}
        assert f["passes/pass_id"][:].tolist() == [1]
        assert f["passes/status"][0] == hdf5.PASS_COMPLETE
        assert f["passes/packets_archived"][0] == len(batch)
    # read API
    with open_archive(path) as a:
        assert a.apids == {10: "hk", 11: "payload", 99: None}
        rows = a.packets("hk")
        assert len(rows) == 30
        np.testing.assert_allclose(rows["temp"], decoded[10].fields["temp"])
        np.testing.assert_allclose(rows["volt"], decoded[10].fields["volt"])
        assert rows["seq_count"].tolist() == list(range(30))
        for apid in (10, 11, 99):
            want = batch.select(batch.header["apid"] == apid)
            got = a.raw_packets(apid)
            assert [got.packet(i) for i in range(len(got))] == [want.packet(i) for i in range(len(want))]
            np.testing.assert_array_equal(got.header["reception_time"], want.header["reception_time"])
        assert a.packets(11)["time_source"].tolist() == [hdf5.TIME_RECEPTION] * 30
        assert len(a.packets(99)) == 10
        assert a.packet_count() == len(batch)
        info = a.pass_info(1)
        assert info["source"] == "test" and "name = \"unit\"" in info["mission_text"]
        assert info["report"] == {"frames": {"total": 0}}


def test_time_and_pass_selection(tmp_path, mission):
    write_pass(tmp_path, mission, mixed_batch(20, t0=1000.0, rx0=5000.0), source="p1")
    write_pass(tmp_path, mission, mixed_batch(20, t0=2000.0, seq0=100, rx0=6000.0, seed=1), source="p2")
    with open_archive(tmp_path / "unit.h5") as a:
        assert len(a.passes) == 2
        assert len(a.packets("hk")) == 40
        sel = a.packets("hk", start=1005.0, stop=1010.0)
        assert sel["onboard_time"].round().tolist() == [1005.0, 1006.0, 1007.0, 1008.0, 1009.0]
        assert len(a.packets("hk", passes=2)) == 20
        assert a.packets("hk", passes=[2])["seq_count"][0] == 100
        r = a.packets("payload", start=6000.0, stop=6003.0, time="reception")
        assert r["reception_time"].tolist() == [6000.5, 6001.5, 6002.5]
        assert len(a.raw_packets("hk", passes=1)) == 20
        with pytest.raises(KeyError):
            a.packets("nosuch")
        with pytest.raises(ValueError):
            a.packets("hk", time="wallclock")


def test_dataframe(tmp_path, mission):
    pytest.importorskip("pandas")
    write_pass(tmp_path, mission, mixed_batch(5))
    with open_archive(tmp_path / "unit.h5") as a:
        df = a.dataframe("hk")
        assert len(df) == 5 and "temp" in df and "onboard_utc" in df
        assert str(df["onboard_utc"].iloc[0].year) == "2023"


def test_replay_twice_no_duplicates(tmp_path, mission):
    batch = mixed_batch(25)
    _, first = write_pass(tmp_path, mission, batch)
    _, second = write_pass(tmp_path, mission, batch)
    assert first["duplicates"] == 0 and second["packets"] == 0
    assert second["duplicates"] == len(batch)
    with open_archive(tmp_path / "unit.h5") as a:
        assert a.packet_count() == len(batch)
        assert a.passes["duplicates_skipped"].tolist() == [0, len(batch)]
        assert len(a.raw_packets(99)) == 9


def test_overlapping_second_station_adds_only_new_packets(tmp_path, mission):
    # station B saw rounds 10..39 of the pass station A saw as 0..29; reception times
    # differ by 1.5 s (within the dedup window)
    a = mixed_batch(30)
    b = mixed_batch(40, seed=0)
    b = b.select(np.arange(len(b)) >= np.flatnonzero(b.header["seq_count"] == 10)[0])
    b.header["reception_time"] += 1.5
    write_pass(tmp_path, mission, a)
    _, info = write_pass(tmp_path, mission, b)
    with open_archive(tmp_path / "unit.h5") as arc:
        assert sorted(arc.packets("hk")["seq_count"].tolist()) == list(range(40))
        assert sorted(arc.packets("payload")["seq_count"].tolist()) == list(range(40))
        assert info["duplicates"] == int(np.count_nonzero(b.header["seq_count"] < 30))


def test_dedup_loads_only_overlapping_passes(tmp_path, mission):
    write_pass(tmp_path, mission, mixed_batch(10, t0=1000.0, rx0=1e6))
    write_pass(tmp_path, mission, mixed_batch(10, t0=9000.0, rx0=2e6, seed=3))
    batch = mixed_batch(10, t0=9000.0, rx0=2e6, seed=3, undeclared=False)
    decoded, _ = telemetry.decode(batch, mission)
    with ArchiveWriter(tmp_path, mission) as w:
        w.begin_pass("third")
        w.append(decoded=decoded)
        assert w._loaded == {2}
        info = w.end_pass({})
    assert info["duplicates"] == len(batch)


def test_mismatched_mission_refused(tmp_path, mission):
    write_pass(tmp_path, mission, mixed_batch(3))
    other = load_mission(write_mission(tmp_path / "m2", name="unit", scid=8))
    with pytest.raises(ArchiveMismatchError, match="spacecraft 7"):
        ArchiveWriter(tmp_path, other)
    renamed = load_mission(write_mission(tmp_path / "m3", name="other", scid=7))
    with pytest.raises(ArchiveMismatchError, match="mission 'unit'"):
        ArchiveWriter(tmp_path / "unit.h5", renamed)
    with open_archive(tmp_path / "unit.h5") as a:  # nothing lost
        assert a.packet_count() == len(mixed_batch(3))


def test_second_writer_locked_out(tmp_path, mission):
    with ArchiveWriter(tmp_path, mission) as w:
        w.begin_pass("x")
        t0 = __import__("time").monotonic()
        with pytest.raises(ArchiveLockedError):
            ArchiveWriter(tmp_path, mission)
        assert __import__("time").monotonic() - t0 < 10
        w.end_pass({})


def test_not_an_archive(tmp_path, mission):
    bad = tmp_path / "unit.h5"
    bad.write_bytes(b"not hdf5 at all" * 10)
    with pytest.raises(ArchiveError, match="not"):
        ArchiveWriter(tmp_path, mission)
    with pytest.raises(ArchiveError, match="not an HDF5"):
        open_archive(bad)
    with pytest.raises(ArchiveError, match="no such"):
        open_archive(tmp_path / "missing.h5")


def test_changed_mission_between_passes(tmp_path):
    m1 = load_mission(write_mission(tmp_path / "v1"))
    write_pass(tmp_path / "a", m1, mixed_batch(10))
    # v2: a new field in hk and a new APID 12; APID 99 still undeclared
    m2 = load_mission(write_mission(tmp_path / "v2", hk_csv=HK2_CSV, extra_apid=True))
    b2 = mixed_batch(10, t0=1.7e9 + 100, seq0=50, hk2=True, rx0=1.9e9)
    extra = make_batch([(12, bytes([1, 2, 3, i]), i) for i in range(4)], reception_time=1.9e9)
    from groundseg.link.records import PacketBatch
    write_pass(tmp_path / "a", m2, PacketBatch.concatenate([b2, extra]))
    with open_archive(tmp_path / "a" / "unit.h5") as a:
        assert a.apids[12] == "extra"
        rows = a.packets("hk")
        assert len(rows) == 20
        cur = rows["current"]
        assert np.isnan(cur[:10]).all() if cur.dtype.kind == "f" else (cur[:10] == 0).all()
        assert cur[10:].astype(int).tolist() == list(range(10))
        assert len(a.raw_packets("extra")) == 4
        assert a.pass_info(1)["mission_text"] != a.pass_info(2)["mission_text"]


def test_apid_declared_later_is_read_from_both_tables(tmp_path):
    m1 = load_mission(write_mission(tmp_path / "v1"))
    first = make_batch([(12, bytes([i]), i) for i in range(3)], reception_time=10.0 + np.arange(3))
    write_pass(tmp_path, m1, first)
    m2 = load_mission(write_mission(tmp_path / "v2", extra_apid=True))
    second = make_batch([(12, bytes([9, i]), 3 + i) for i in range(2)], reception_time=100.0 + np.arange(2))
    write_pass(tmp_path, m2, second)
    with open_archive(tmp_path / "unit.h5") as a:
        assert a.packets(12)["seq_count"].tolist() == [0, 1, 2, 3, 4]
        got = a.raw_packets("extra")
        assert [got.packet(i) for i in range(5)] == [first.packet(i) for i in range(3)] + \
            [second.packet(i) for i in range(2)]


def test_frames_and_rejects(tmp_path, mission):
    frames = np.zeros(7, FRAME_RECORD_DTYPE)
    frames["reception_time"] = 100.0 + np.arange(7)
    frames["vcid"] = [0, 1, 0, 1, 0, -1, 0]
    frames["vcfc"] = np.arange(7)
    frames["status"] = [0, 0, 0, 0, 0, 1, 2]
    frames["rs_corrected"] = [0, 3, 0, 0, 1, -1, 0]
    frames["ocf"] = 0x01000000
    rec = np.zeros(3, REJECT_DTYPE)
    rec["reason"] = [REJECT_REASONS.index("rs_uncorrectable"), REJECT_REASONS.index("crc"),
                     REJECT_REASONS.index("packet_length")]
    rec["vcid"] = [-1, 0, 0]
    rec["apid"] = [-1, -1, 10]
    rec["reception_time"] = [105.0, 106.0, 106.5]
    rec["offset"] = [0, 4, 9]
    rec["length"] = [4, 5, 2]
    data = np.arange(11, dtype=np.uint8)
    with ArchiveWriter(tmp_path, mission) as w:
        w.begin_pass("f")
        w.append(frames=frames, rejects=RejectBatch(rec, data))
        w.append(frames=frames[:2])
        w.end_pass({})
    with open_archive(tmp_path / "unit.h5") as a:
        f = a.frames()
        assert len(f) == 9
        for name in FRAME_RECORD_DTYPE.names:
            np.testing.assert_array_equal(f[name][:7], frames[name])
        assert (f["pass_id"] == 1).all()
        assert len(a.frames(start=103.0, stop=105.0)) == 2
        r, blob, off = a.rejects(with_data=True)
        assert r["reason_name"].tolist() == ["rs_uncorrectable", "crc", "packet_length"]
        assert [blob[off[i]:off[i + 1]].tolist() for i in range(3)] == [[0, 1, 2, 3], [4, 5, 6, 7, 8], [9, 10]]
    # the reason is an HDF5 enum, so h5dump and h5py name it
    with h5py.File(tmp_path / "unit.h5", "r") as f:
        assert h5py.check_enum_dtype(f["rejects/reason"].dtype)["crc"] == REJECT_REASONS.index("crc")


def test_reject_offsets_form_and_bad_input(tmp_path, mission):
    rec = np.zeros(2, [("reason", "u1"), ("vcid", "<i2"), ("apid", "<i2"), ("reception_time", "<f8")])
    rec["reason"] = [2, 3]
    with ArchiveWriter(tmp_path, mission) as w:
        w.begin_pass("r")
        with pytest.raises(ValueError):
            w.append(rejects=rec, reject_data=np.zeros(3, np.uint8), reject_offsets=np.array([0, 2, 9]))
        w.append(rejects=rec, reject_data=np.arange(5, dtype=np.uint8), reject_offsets=np.array([0, 2, 5]))
        w.end_pass({})
    with open_archive(tmp_path / "unit.h5") as a:
        r, blob, off = a.rejects(with_data=True)
        assert r["reason_name"].tolist() == ["crc", "version"]
        assert blob[off[1]:off[2]].tolist() == [2, 3, 4]


def test_append_outside_pass_is_an_error(tmp_path, mission):
    with ArchiveWriter(tmp_path, mission) as w:
        with pytest.raises(ArchiveError, match="outside a pass"):
            w.append(packets=mixed_batch(1))


def test_report_counts_in_pass_row(tmp_path, mission):
    report = {"frames": {"total": 10, "clean": 8, "corrected": 1, "uncorrectable": 1, "crc_failed": 0,
                         "rejected": 1, "idle": 2},
              "rs_symbols_corrected": 5, "sync": {"bits_in": 80000, "lock_losses": 1, "inverted_codeblocks": 0},
              "virtual_channels": {"0": {"frames": 7, "idle": 2, "gaps": 1, "frames_lost": 3}},
              "packets": {"10": {"count": 4, "bytes": 64, "sequence_gaps": 1, "sequence_missing": 2,
                                 "dropped_incomplete": 1}},
              "idle_packets": 3, "rejects": {"rs_uncorrectable": 1, "scid": 1}}
    write_pass(tmp_path, mission, mixed_batch(2), report=report)
    with open_archive(tmp_path / "unit.h5") as a:
        p = a.passes[0]
        assert (p["frames_total"], p["frames_clean"], p["frames_idle"], p["rs_symbols_corrected"]) == (10, 8, 2, 5)
        assert (p["sync_bits_in"], p["vc_gaps"], p["vc_frames_lost"], p["packets_sequence_missing"]) == (80000, 1, 3, 2)
        assert p["rejects_total"] == 2 and p["idle_packets"] == 3
        assert a.pass_info(1)["report"] == report


# -- crash consistency (in-process: copy the file as a kill -9 would leave it) -------------
def test_uncommitted_rows_invisible_and_truncated(tmp_path, mission):
    path = tmp_path / "unit.h5"
    write_pass(tmp_path, mission, mixed_batch(5))
    # a flush that died half way: rows appended to some columns, no commit row
    with h5py.File(path, "a", libver=("v110", "v110")) as f:
        for name in ("seq_count", "reception_time"):
            ds = f["packets/hk/" + name]
            ds.resize((ds.shape[0] + 3,))
        fl = f["flushes"]
        fl.resize((fl.shape[0] + 1, fl.shape[1]))  # a commit row resized but never written
    with open_archive(path) as a:
        assert len(a.packets("hk")) == 5
    w = ArchiveWriter(tmp_path, mission)
    assert "packets/hk/seq_count" in w.recovered["truncated"]
    w.close()
    with h5py.File(path, "r") as f:
        assert f["packets/hk/seq_count"].shape[0] == 5
    with open_archive(path) as a:
        assert len(a.packets("hk")) == 5


def test_crashed_swmr_writer_file_opens_and_recovers(tmp_path, mission):
    path = tmp_path / "unit.h5"
    write_pass(tmp_path, mission, mixed_batch(5))
    decoded, _ = telemetry.decode(mixed_batch(8, t0=2e9, rx0=3e9, seed=4), mission)
    w = ArchiveWriter(tmp_path, mission, flush_seconds=1e9)
    w.begin_pass("crashing")
    w.append(decoded={10: decoded[10]})
    w.flush()
    w.append(decoded={11: decoded[11]})  # buffered, never flushed
    crashed = tmp_path / "crashed" / "unit.h5"
    crashed.parent.mkdir()
    shutil.copy(path, crashed)
    w.close()
    assert read_superblock(crashed)["flags"] != 0
    with open_archive(crashed) as a:  # reader: masks the stale flags, sees the committed flush
        assert len(a.packets("hk")) == 13 and len(a.packets("payload")) == 5
        assert a.passes["status"].tolist() == [hdf5.PASS_COMPLETE, hdf5.PASS_OPEN]
    w2 = ArchiveWriter(crashed.parent, mission)
    assert w2.recovered["interrupted_passes"] == [2] and w2.recovered["cleared_flags"]
    w2.begin_pass("next")
    w2.append(decoded={11: decoded[11]})
    w2.end_pass({})
    w2.close()
    assert read_superblock(crashed)["flags"] == 0
    with open_archive(crashed) as a:
        assert a.passes["status"].tolist() == [hdf5.PASS_COMPLETE, hdf5.PASS_INTERRUPTED, hdf5.PASS_COMPLETE]
        assert a.passes["packets_archived"].tolist() == [len(mixed_batch(5)), 8, 8]
        assert len(a.packets("payload")) == 13


def test_crash_before_swmr_reader_masks_flags(tmp_path, mission):
    path = tmp_path / "unit.h5"
    write_pass(tmp_path, mission, mixed_batch(4))
    f = h5py.File(path, "a", libver=("v110", "v110"))  # a writer caught before SWMR started
    crashed = tmp_path / "c.h5"
    shutil.copy(path, crashed)
    f.close()
    assert read_superblock(crashed)["flags"] & 1
    with open_archive(crashed) as a:
        assert len(a.packets("hk")) == 4
    info = repair(crashed)
    assert info["cleared_flags"] and info["packets"] == len(mixed_batch(4))
    assert read_superblock(crashed)["flags"] == 0


def test_repair_healthy_archive_is_harmless(tmp_path, mission):
    write_pass(tmp_path, mission, mixed_batch(4))
    info = repair(tmp_path / "unit.h5")
    assert not info["cleared_flags"] and info["interrupted_passes"] == []
    assert info["status"] == {"complete": 1}


def test_write_failure_is_a_clear_error(tmp_path, mission, monkeypatch):
    w = ArchiveWriter(tmp_path, mission)
    w.begin_pass("x")
    w.append(packets=mixed_batch(3))

    def boom(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(tables.Table, "write", boom)
    with pytest.raises(ArchiveError, match="No space left on device"):
        w.flush()
    monkeypatch.undo()
    w.abort_pass()  # never raises
    with open_archive(tmp_path / "unit.h5") as a:
        assert a.passes["status"].tolist() == [hdf5.PASS_INCOMPLETE]


def test_disk_full_refused_before_writing(tmp_path, mission, monkeypatch):
    w = ArchiveWriter(tmp_path, mission, flush_seconds=0)
    w.begin_pass("x")
    w.append(packets=mixed_batch(3))
    real = os.statvfs

    def nearly_full(path):
        st = real(path)
        return type("st", (), {"f_bavail": 1, "f_frsize": st.f_frsize})()
    monkeypatch.setattr(os, "statvfs", nearly_full)
    with pytest.raises(ArchiveError, match="disk full"):
        w.append(packets=mixed_batch(4, seq0=10, rx0=2e9))
    w.abort_pass()  # still full: the buffered batch is dropped, the pass marked incomplete
    monkeypatch.undo()
    with open_archive(tmp_path / "unit.h5") as a:
        assert a.passes["status"].tolist() == [hdf5.PASS_INCOMPLETE]
        assert a.packet_count() == len(mixed_batch(3)) == a.passes["packets_archived"][0]


# -- export, inspect, plot, h5dump ---------------------------------------------------------
def test_export_ccsds_round_trip(tmp_path, mission):
    batch = mixed_batch(12)
    write_pass(tmp_path, mission, batch)
    write_pass(tmp_path, mission, mixed_batch(5, t0=1.7e9 + 500, seq0=12, rx0=1.9e9, seed=9))
    arc = tmp_path / "unit.h5"
    out = tmp_path / "hk.bin"
    info = export_packets(arc, "hk", out)
    assert info["packets"] == 17 and info["apid"] == 10
    pk = split_stream(out.read_bytes())
    assert [int.from_bytes(p[2:4], "big") & 0x3FFF for p in pk] == list(range(17))
    want = batch.select(batch.header["apid"] == 10)
    assert pk[:12] == [want.packet(i) for i in range(12)]
    from ccsdspy.utils import split_by_apid
    with open(out, "rb") as fh:
        parts = split_by_apid(fh)
    assert list(parts) == [10] and parts[10].read() == out.read_bytes()
    info = export_packets(arc, 99, tmp_path / "u.bin")
    assert info["packets"] == 4 + 2 and info["name"] is None


def test_export_csv_and_errors(tmp_path, mission):
    write_pass(tmp_path, mission, mixed_batch(6))
    arc = tmp_path / "unit.h5"
    out = tmp_path / "hk.csv"
    info = export_packets(arc, "hk", out, fmt="csv")
    lines = out.read_text().splitlines()
    assert info["packets"] == 6 and len(lines) == 7
    head = lines[0].split(",")
    assert any(h == "temp" or h.startswith("temp [") for h in head) and "onboard_utc" in head
    assert lines[1].split(",")[head.index("seq_count")] == "0"
    info = export_packets(arc, "HK", out, fmt="csv", raw_hex=True)
    rows = list(csv.DictReader(out.open()))
    raw = open_archive(arc).raw_packets("hk")
    assert [r["packet_hex"] for r in rows] == [raw.data[a:b].tobytes().hex() for a, b in zip(raw.offsets[:-1], raw.offsets[1:])]
    with pytest.raises(ValueError, match="format"):
        export_packets(arc, "hk", out, fmt="xml")
    with pytest.raises(KeyError):
        export_packets(arc, "nosuch", out)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        with pytest.raises(ArchiveError, match="pyarrow"):
            export_packets(arc, "hk", tmp_path / "x.parquet", fmt="parquet")


def test_describe_archive(tmp_path, mission):
    batch = mixed_batch(9)
    write_pass(tmp_path, mission, batch, source="cap.bin")
    write_pass(tmp_path, mission, batch, source="cap.bin")
    d = describe_archive(tmp_path / "unit.h5")
    json.dumps(d)
    assert d["mission"] == "unit" and d["spacecraft_id"] == 7
    assert [p["pass"] for p in d["passes"]] == [1, 2]
    assert d["passes"][1]["duplicates_skipped"] == len(batch) and d["passes"][0]["source"] == "cap.bin"
    assert {a["apid"]: a["packets"] for a in d["apids"]} == {10: 9, 11: 9, 99: 3}
    assert d["packets"] == len(batch)
    decoded, _ = telemetry.decode(batch, mission)
    from groundseg.archive.reader import iso
    assert d["time_span"]["onboard"][0] == iso(float(decoded[10].onboard_time.min()))
    assert d["time_span"]["reception"] == [iso(1.8e9), iso(1.8e9 + 8.5)]


def test_plot_fields(tmp_path, mission):
    pytest.importorskip("matplotlib")
    from groundseg.archive.plot import gap_breaks, plot_fields
    b1 = mixed_batch(20)
    b2 = mixed_batch(20, t0=1.7e9 + 100, seq0=20, rx0=1.9e9, seed=2)
    write_pass(tmp_path, mission, b1)
    write_pass(tmp_path, mission, b2)
    out = tmp_path / "q.png"
    info = plot_fields(tmp_path / "unit.h5", "hk", ["temp", "volt"], out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert info["points"] == 40 and info["gaps"] == 1
    with pytest.raises(KeyError, match="no field"):
        plot_fields(tmp_path / "unit.h5", "hk", ["nosuch"], out)
    assert gap_breaks(np.array([0, 1, 2, 10, 11.0])).tolist() == [3]
    assert gap_breaks(np.array([0, 1, 2, 3.0]), np.array([0, 0, 1, 0], bool)).tolist() == [2]


def test_h5dump_lists_archive(tmp_path, mission):
    if shutil.which("h5dump") is None:
        pytest.skip("h5dump (Debian hdf5-tools) not installed")
    frames = np.zeros(3, FRAME_RECORD_DTYPE)
    decoded, _ = telemetry.decode(mixed_batch(5), mission)
    with ArchiveWriter(tmp_path, mission) as w:
        w.begin_pass("d")
        w.append(frames=frames, decoded=decoded,
                 rejects=RejectBatch(np.zeros(1, REJECT_DTYPE), np.zeros(0, np.uint8)))
        w.end_pass({})
    r = subprocess.run(["h5dump", "-H", str(tmp_path / "unit.h5")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for name in ('GROUP "packets"', 'GROUP "hk"', 'DATASET "raw"', 'GROUP "passes"', 'DATASET "flushes"',
                 'GROUP "frames"', 'GROUP "rejects"', "H5T_ENUM"):
        assert name in r.stdout
    r = subprocess.run(["h5dump", str(tmp_path / "unit.h5")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_packets_telemetry_refused_go_to_rejects(tmp_path, mission):
    good = mixed_batch(3, undeclared=False)
    bad = make_batch([(10, hk_body(1.7e9, 1, 2) + b"xx", 7)], reception_time=5.0)  # 2 bytes too long
    from groundseg.link.records import PacketBatch
    decoded, rejects = telemetry.decode(PacketBatch.concatenate([good, bad]), mission)
    assert rejects == {"packet_length": 1}
    with ArchiveWriter(tmp_path, mission) as w:
        w.begin_pass("t")
        w.append(decoded=decoded)
        w.end_pass({})
    with open_archive(tmp_path / "unit.h5") as a:
        assert len(a.packets("hk")) == 3
        r, blob, off = a.rejects(with_data=True)
        assert r["reason_name"].tolist() == ["packet_length"] and r["apid"].tolist() == [10]
        assert blob[off[0]:off[1]].tobytes() == bad.packet(0)


def test_dedup_memory_bounded_and_evicted_keys_read_back(tmp_path, mission):
    batches = [mixed_batch(10, t0=1.7e9 + 10 * i, seq0=10 * i, seed=i, rx0=1.8e9 + 10 * i) for i in range(12)]
    decoded = [telemetry.decode(b, mission)[0] for b in batches]
    one_batch = 24 * len(batches[0])  # bytes of keys (+ time and pass) one batch may hold
    peaks = []
    with ArchiveWriter(tmp_path, mission, dedup_memory=2 * one_batch, dedup_piece=20,
                       flush_packets=1) as w:
        w.begin_pass("two stations in one pass")
        for d in decoded + decoded[:4]:  # the second station's file restarts at the start
            w.append(decoded=d)
            peaks.append(w._dedup.nbytes())
        info = w.end_pass({})
    assert info["duplicates"] == sum(len(b) for b in batches[:4])
    assert max(peaks) <= 4 * one_batch  # budget (2 batches) + one batch arriving + one read back
    with ArchiveWriter(tmp_path, mission, dedup_memory=2 * one_batch, dedup_piece=20,
                       flush_packets=1) as w:
        w.begin_pass("replayed")
        for d in decoded[6:]:
            w.append(decoded=d)
            peaks.append(w._dedup.nbytes())
        info = w.end_pass({})
    assert info["packets"] == 0 and info["duplicates"] == sum(len(b) for b in batches[6:])
    assert max(peaks) <= 4 * one_batch  # budget (2 batches) + one batch arriving + one read back
    with open_archive(tmp_path / "unit.h5") as a:
        assert a.packet_count() == sum(len(b) for b in batches)


def test_incompatible_field_type_refused_without_losing_packets(tmp_path):
    m1 = load_mission(write_mission(tmp_path / "v1"))
    write_pass(tmp_path, m1, mixed_batch(3))
    # v2 calibrates 'volt' (uint16 in the archive) to float: refused, clearly
    m2 = load_mission(write_mission(tmp_path / "v2", hk_csv=HK2_CSV.replace(
        "volt,uint,16,V,,", 'volt,uint,16,V,"poly:0,0.001",')))
    later = mixed_batch(3, t0=1.7e9 + 50, seq0=50, rx0=1.9e9, hk2=True)
    with ArchiveWriter(tmp_path, m2) as w:
        w.begin_pass("v2")
        with pytest.raises(ArchiveError, match="volt"):
            w.append(decoded=telemetry.decode(later, m2)[0])
        w.end_pass({})
    # the same packets under the old definition are not mistaken for duplicates
    later_v1 = mixed_batch(3, t0=1.7e9 + 50, seq0=50, rx0=1.9e9)
    _, info = write_pass(tmp_path, m1, later_v1)
    assert info["duplicates"] == 0 and info["packets"] == len(later_v1)


def test_repeated_queries_over_many_chunks(tmp_path, mission):
    """Regression: a second handle on a dataset made SWMR refresh fail ("can't insert
    duplicate key") once datasets spanned several chunks."""
    from groundseg.link.records import PACKET_DTYPE, PacketBatch
    from groundseg.telemetry import DecodedApid
    n = 20000
    data = np.zeros(n * 7, np.uint8)
    data[0::7], data[1::7] = 0x08, 10  # sec. header flag, APID 10
    data[2::7] = 0xC0 | ((np.arange(n) >> 8) & 0x3F)
    data[3::7] = np.arange(n) & 0xFF
    data[6::7] = np.arange(n) % 251
    h = np.zeros(n, PACKET_DTYPE)
    h["apid"], h["sec_hdr"], h["seq_flags"], h["length"] = 10, 1, 3, 7
    h["seq_count"] = np.arange(n) & 0x3FFF
    h["reception_time"] = 1e9 + np.arange(n)
    h["frame_time"] = np.nan
    batch = PacketBatch(data, np.arange(n + 1, dtype=np.int64) * 7, h)
    vec = np.arange(n * 4, dtype=np.float64).reshape(n, 4)
    d = DecodedApid(10, "hk", batch, 1e9 + np.arange(n, dtype=np.float64), {"vec": vec, "k": np.arange(n)})
    with ArchiveWriter(tmp_path, mission) as w:
        w.begin_pass("many")
        w.append(decoded={10: d})
        w.end_pass({})
    with open_archive(tmp_path / "unit.h5") as a:
        for _ in range(3):
            rows = a.packets("hk")
            np.testing.assert_array_equal(rows["vec"], vec)
            assert len(a.raw_packets("hk")) == n and a.packet_count("hk") == n
        got = PacketBatch.concatenate(list(a.iter_raw_packets("hk", max_bytes=10000)))
        np.testing.assert_array_equal(got.data, data)
        np.testing.assert_array_equal(got.header["seq_count"], h["seq_count"])


def test_uncommitted_writes_are_invisible_until_the_commit_and_trimmed_after_a_crash(tmp_path, mission):
    """Rows past ``buffer_packets`` go to HDF5 uncommitted: a reader sees none of them until
    ``flush_packets`` (or time) commits them, and a writer that dies before the commit
    leaves an archive the next writer trims back to the last commit."""
    batches = [mixed_batch(10, t0=1.7e9 + 10 * i, seq0=10 * i, seed=i, rx0=1.8e9 + 10 * i) for i in range(6)]
    decoded = [telemetry.decode(b, mission)[0] for b in batches]
    per = len(batches[0])
    w = ArchiveWriter(tmp_path, mission, flush_seconds=1e9, flush_packets=4 * per, buffer_packets=1)
    w.begin_pass("uncommitted")
    written = []
    for d in decoded[:3]:
        w.append(decoded=d)
        w._store.join()       # the background write is done: the rows are in the file
        written.append(w._store.rows["packets/hk"])
    assert written[0] > 0 and written == sorted(written) and written[-1] > written[0]
    with open_archive(tmp_path / "unit.h5") as a:
        assert a.packet_count() == 0            # written, not committed
    w.append(decoded=decoded[3])                # 4 batches: due by flush_packets
    w._store.join()
    with open_archive(tmp_path / "unit.h5") as a:
        assert a.packet_count() == 4 * per
    w.append(decoded=decoded[4])                # written, uncommitted ...
    w._store.join()
    # ... and the writer stops here without a commit (no end_pass: the pass stays open and
    # rows past the last commit are in the file; the crash tests kill real processes)
    w._store.file.close()
    w._store.file = None
    w._lock.release()
    with ArchiveWriter(tmp_path, mission) as w2:
        assert w2.recovered.get("interrupted_passes") == [1]
        with open_archive(tmp_path / "unit.h5") as a:
            assert a.packet_count() == 4 * per
        w2.begin_pass("again")
        w2.append(decoded=decoded[4])
        w2.append(decoded=decoded[5])
        info = w2.end_pass({})
    assert info["packets"] == 2 * per and info["duplicates"] == 0
    with open_archive(tmp_path / "unit.h5") as a:
        assert a.packet_count() == 6 * per


def test_no_commit_row_is_ahead_of_the_layout_attribute(tmp_path, mission, monkeypatch):
    """Tables that first appear mid-pass (an APID, then the rest) make new datasets: the
    file's layout_gen attribute counts them before any commit row carries the new
    generation, at every commit (a writer stopped in between leaves nothing ahead)."""
    from groundseg.archive import storage
    seen = []
    real = storage.write_commit

    def checked(f, row):
        seen.append((int(row[2]), int(f.attrs["layout_gen"])))
        real(f, row)
    monkeypatch.setattr(storage, "write_commit", checked)
    batches = [mixed_batch(10, t0=1.7e9 + 10 * i, seq0=10 * i, seed=i, rx0=1.8e9 + 10 * i) for i in range(3)]
    decoded = [telemetry.decode(b, mission)[0] for b in batches]
    first_apid = sorted(decoded[0])[0]
    with ArchiveWriter(tmp_path, mission, flush_seconds=1e9, flush_packets=1, buffer_packets=1) as w:
        w.begin_pass("layout")
        w.append(decoded={first_apid: decoded[0][first_apid]})
        w.append(decoded=decoded[1])
        w.append(decoded=decoded[2])
        w.end_pass({})
    assert len(seen) >= 3 and len({g for g, _ in seen}) >= 2      # generations did change
    assert all(gen <= attr for gen, attr in seen), seen


def test_commit_log_ahead_of_the_layout_attribute_is_read(tmp_path, mission):
    """A writer stopped between a commit announcing new datasets and the file attribute
    that counts layout changes (kill -9, Ctrl-C) leaves the commit log ahead of the
    attribute: readers open the file (they reopened forever, 'maximum recursion depth')."""
    batch = mixed_batch(5)
    write_pass(tmp_path, mission, batch)
    path = tmp_path / "unit.h5"
    with h5py.File(path, "r+") as f:
        assert int(f["flushes"][:, 2].max()) >= 1
        f.attrs["layout_gen"] = 0
    with open_archive(path) as a:
        assert a.packet_count() == len(batch)
        a.refresh()
        assert a.packet_count() == len(batch)
    p = subprocess.run([sys.executable, "-m", "groundseg", "inspect", str(path)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr


def test_compressed_fields_keep_their_values_across_flushes(tmp_path, mission):
    """``compression="gzip"`` deflates the decoded fields too, and those written chunk by
    chunk keep ccsdspy's big-endian dtypes: a partial chunk completed by a later flush
    once came back byte-swapped (numpy's concatenate gives native order)."""
    batches = [mixed_batch(7, t0=1.7e9 + 10 * i, seq0=7 * i, seed=i, rx0=1.8e9 + 10 * i) for i in range(5)]
    decoded = [telemetry.decode(b, mission)[0] for b in batches]
    with ArchiveWriter(tmp_path, mission, compression="gzip", buffer_packets=1, flush_packets=10) as w:
        w.begin_pass("gzip fields")
        for d in decoded:
            w.append(decoded=d)
        w.end_pass({})
    big_endian = 0
    with h5py.File(tmp_path / "unit.h5", "r") as f:
        for apid, group in ((10, "hk"), (11, "payload")):
            g = f["packets/" + group]
            for name in decoded[0][apid].fields:
                ds = g["fields/" + name]
                assert ds.compression == "gzip", name
                big_endian += ds.dtype.byteorder == ">"
                # calibrated fields hold their raw counts (schema 2)
                kind = "raw_fields" if ds.attrs.get("values", "") == "raw counts" else "fields"
                want = np.concatenate([getattr(d[apid], kind)[name] for d in decoded])
                np.testing.assert_array_equal(ds[:], want, err_msg=name)
    assert big_endian, "no big-endian field: the case is not covered"
    with open_archive(tmp_path / "unit.h5") as a:
        rows = a.packets("hk")
        for name in decoded[0][10].fields:
            want = np.concatenate([d[10].fields[name] for d in decoded])
            np.testing.assert_array_equal(rows[name], want, err_msg=name)
