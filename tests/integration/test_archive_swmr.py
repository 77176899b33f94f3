"""The archive across processes: a SWMR reader during writing, and kill -9 of a real writer."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from groundseg.archive import hdf5
from groundseg.archive.export import repair
from groundseg.archive.hdf5 import ArchiveWriter, read_superblock
from groundseg.archive.reader import open_archive
from groundseg.mission import load_mission
from tests.integration.test_archive_support import mixed_batch, write_mission

ROOT = Path(__file__).resolve().parents[2]

# A writer process: batches of 20 rounds (hk + payload + APID 99), a flush every
# `flush` seconds; after each completed flush it prints the packets committed so far.
WRITER = r"""
import sys, time
sys.path.insert(0, {root!r})
from groundseg import telemetry
from groundseg.archive.hdf5 import ArchiveWriter
from groundseg.mission import load_mission
from tests.integration.test_archive_support import mixed_batch
import numpy as np
from groundseg.archive.hdf5 import Deduplicator, packet_keys
mission = load_mission({mission!r})
# load the compiled kernels before the clock starts
warm = mixed_batch(2)
telemetry.decode(warm, mission)
k = packet_keys(warm.data, warm.offsets, warm.header["apid"], warm.header["seq_count"],
                np.zeros(len(warm)), np.zeros(len(warm), bool))
Deduplicator().check(k, np.full(len(warm), 2, np.uint8), np.zeros(len(warm)), 1)
w = ArchiveWriter({archive!r}, mission, flush_seconds=1e9)
w.begin_pass("writer process")
print("started", flush=True)
committed = 0
pending = 0
last = time.monotonic()
for i in range({first}, {first} + {batches}):
    b = mixed_batch(20, t0=1.7e9 + 20 * i, seq0=20 * i, seed=i, rx0=1.8e9 + 20 * i)
    decoded, _ = telemetry.decode(b, mission)
    w.append(decoded=decoded)
    pending += len(b)
    if time.monotonic() - last >= {flush}:
        w.flush()
        committed += pending
        pending = 0
        last = time.monotonic()
        print("committed", committed, flush=True)
    time.sleep({sleep})
w.end_pass({{}})
w.close()
print("done", committed + pending, flush=True)
"""


def rounds_per_batch() -> int:
    return len(mixed_batch(20))


def start_writer(tmp_path: Path, mission_path: Path, batches: int, flush: float, sleep: float,
                 first: int = 0):
    code = WRITER.format(root=str(ROOT), mission=str(mission_path), archive=str(tmp_path / "arch"),
                         batches=batches, flush=flush, sleep=sleep, first=first)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)


def wait_line(proc, prefix: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"writer ended early: {proc.stderr.read()}")
        if line.startswith(prefix):
            return line
    raise AssertionError(f"no {prefix!r} line from the writer")


def check_prefix(arc_path: Path, at_least: int) -> int:
    """Every committed packet present, in order, with the bytes the generator made."""
    with open_archive(arc_path) as a:
        hk = a.packets("hk")
        n = len(hk)
        assert hk["seq_count"].tolist() == [i & 0x3FFF for i in range(n)]  # 14-bit count
        total = a.packet_count()
        assert total >= at_least
        raw = a.raw_packets("payload")
        nb = len(raw) // 20
        if nb:
            for i in (0, nb - 1):
                want = mixed_batch(20, t0=1.7e9 + 20 * i, seq0=20 * i, seed=i, rx0=1.8e9 + 20 * i)
                want = want.select(want.header["apid"] == 11)
                assert [raw.packet(20 * i + k) for k in range(20)] == [want.packet(k) for k in range(20)]
        return total


@pytest.fixture
def mission_path(tmp_path):
    return write_mission(tmp_path / "m")


def test_swmr_reader_sees_new_packets_while_writing(tmp_path, mission_path):
    proc = start_writer(tmp_path, mission_path, batches=60, flush=0.3, sleep=0.05)
    try:
        wait_line(proc, "committed")
        arc_path = tmp_path / "arch" / "unit.h5"
        with open_archive(arc_path) as a:
            seen = [a.packet_count()]
            t0 = time.monotonic()
            while time.monotonic() - t0 < 20 and proc.poll() is None:
                time.sleep(0.2)
                seen.append(a.packet_count())
                if seen[-1] > seen[0] + 3 * rounds_per_batch():
                    break
            assert seen[-1] > seen[0], "the reader never saw new packets"
            # new packets appeared within seconds, and what is visible is consistent
            assert time.monotonic() - t0 < 20
            hk = a.packets("hk")
            assert hk["seq_count"].tolist() == list(range(len(hk)))
    finally:
        proc.wait(timeout=120)
    assert proc.returncode == 0, proc.stderr.read()
    with open_archive(tmp_path / "arch" / "unit.h5") as a:
        assert a.packet_count() == 60 * rounds_per_batch()
        assert a.passes["status"].tolist() == [hdf5.PASS_COMPLETE]


@pytest.mark.slow
def test_kill9_at_random_instants(tmp_path, mission_path):
    """kill -9 a real writer at random instants: the reader finds every packet of every
    completed flush; the next writer clears the flags, marks the pass interrupted, appends."""
    rng = random.Random(20261125)
    mission = load_mission(mission_path)
    arc_path = tmp_path / "arch" / "unit.h5"
    committed_total = 0
    reported = []
    trials = 5
    for trial in range(trials):
        # resume two batches before the end of what is archived: new data and duplicates
        first = max(0, committed_total // rounds_per_batch() - 2)
        proc = start_writer(tmp_path, mission_path, batches=100_000, flush=0.15, sleep=0.0, first=first)
        wait_line(proc, "started")
        last = 0
        deadline = time.monotonic() + rng.uniform(0.1, 2.0)
        # read progress lines until the random instant, then kill
        os.set_blocking(proc.stdout.fileno(), False)
        while time.monotonic() < deadline and proc.poll() is None:
            for line in proc.stdout.readlines():
                if line.startswith("committed"):
                    last = int(line.split()[1])
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for line in proc.stdout.readlines():
            if line.startswith("committed"):
                last = int(line.split()[1])
        if proc.returncode != -signal.SIGKILL:
            pytest.fail(f"writer ended before the kill: {proc.returncode} {proc.stderr.read()}")
        # the SWMR reader opens the killed writer's file and sees every completed flush
        with open_archive(arc_path) as a:
            passes = a.passes
            assert passes["status"][-1] == hdf5.PASS_OPEN
            assert passes["status"][:-1].tolist() == [hdf5.PASS_INTERRUPTED] * trial
            total = int(a.packet_count())
        reported.append((last, total))
        # what this writer reported committed is archived (its first two batches were
        # already there), and nothing committed earlier was lost
        assert total >= max(committed_total, first * rounds_per_batch() + last)
        assert total >= committed_total
        committed_total = total
        check_prefix(arc_path, committed_total)
    # the kills landed mid-pass, after some flushes had completed
    assert sum(last > 0 for last, _ in reported) >= 2, reported
    print("kill -9 trials (packets reported committed, packets in archive):", reported)
    # the next writer recovers and appends
    assert read_superblock(arc_path)["flags"] != 0
    w = ArchiveWriter(tmp_path / "arch", mission)
    assert w.recovered.get("cleared_flags")
    assert w.recovered["interrupted_passes"] == [trials]
    w.close()
    with open_archive(arc_path) as a:
        st = a.passes["status"].tolist()
        assert st == [hdf5.PASS_INTERRUPTED] * trials
        assert a.packet_count() == committed_total
        assert int(a.passes["packets_archived"].sum()) == committed_total
    assert repair(arc_path)["interrupted_passes"] == []
    check_prefix(arc_path, committed_total)


def test_reader_follows_a_layout_change_mid_pass(tmp_path):
    """A field first seen mid-pass makes the writer leave SWMR to create its dataset;
    a reader kept open meanwhile sees the new field and every packet."""
    from groundseg import telemetry
    from tests.integration.test_archive_support import HK2_CSV
    m1 = load_mission(write_mission(tmp_path / "m1"))
    with ArchiveWriter(tmp_path, m1) as w:
        w.begin_pass("a")
        w.append(decoded=telemetry.decode(mixed_batch(5), m1)[0])
        w.end_pass({})
    m2 = write_mission(tmp_path / "m2", hk_csv=HK2_CSV)
    code = f"""
import sys, time
sys.path.insert(0, {str(ROOT)!r})
from groundseg import telemetry
from groundseg.archive.hdf5 import ArchiveWriter
from groundseg.mission import load_mission
from tests.integration.test_archive_support import mixed_batch
m = load_mission({str(m2)!r})
w = ArchiveWriter({str(tmp_path)!r}, m, flush_seconds=0)
w.begin_pass("b")
d = telemetry.decode(mixed_batch(5, t0=2e9, seq0=100, rx0=2.1e9, hk2=True), m)[0]
w.append(decoded={{11: d[11]}})
print("swmr", flush=True)
sys.stdin.readline()
w.append(decoded={{10: d[10]}})
print("new field", flush=True)
sys.stdin.readline()
w.end_pass({{}})
w.close()
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == "swmr", proc.stderr.read()
        with open_archive(tmp_path / "unit.h5") as a:
            assert a.packet_count() == len(mixed_batch(5)) + 5
            assert "current" not in a.fields("hk")
            proc.stdin.write("\n")
            proc.stdin.flush()
            assert proc.stdout.readline().strip() == "new field", proc.stderr.read()
            assert "current" in a.fields("hk")
            hk = a.packets("hk")
            assert hk["current"][5:].tolist() == list(range(5))
            proc.stdin.write("\n")
            proc.stdin.flush()
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == 0, proc.stderr.read()


def test_file_size_limit_is_a_clear_error_and_loses_nothing(tmp_path):
    """A real write limit (RLIMIT_FSIZE, as a full disk): one clear ArchiveError, the pass
    ends incomplete, every earlier flush readable."""
    mission_path = write_mission(tmp_path / "m")
    code = f"""
import resource, signal, sys, os
sys.path.insert(0, {str(ROOT)!r})
from groundseg import telemetry
from groundseg.archive.hdf5 import ArchiveError, ArchiveWriter
from groundseg.mission import load_mission
from tests.integration.test_archive_support import mixed_batch
m = load_mission({str(mission_path)!r})
w = ArchiveWriter({str(tmp_path)!r}, m, flush_seconds=0)
w.begin_pass("x")
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = os.path.getsize({str(tmp_path / "unit.h5")!r}) + 20_000_000
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
done = 0
try:
    for i in range(1000):
        b = mixed_batch(3000, t0=1.7e9 + 3000 * i, seq0=3000 * i, seed=i, rx0=1.8e9 + 3000 * i)
        w.append(decoded=telemetry.decode(b, m)[0])
        done += len(b)
except ArchiveError as e:
    print("error:", e)
w.abort_pass()
print(done)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith("error:") and "disk full" in lines[0] and "safe" in lines[0]
    done = int(lines[-1])
    assert done > 0 and r.stderr == ""
    assert read_superblock(tmp_path / "unit.h5")["flags"] == 0
    with open_archive(tmp_path / "unit.h5") as a:
        assert a.packet_count() == done
        assert a.passes["status"].tolist() == [hdf5.PASS_INCOMPLETE]
        hk = a.packets("hk")
        assert hk["seq_count"].tolist() == [i & 0x3FFF for i in range(len(hk))]
