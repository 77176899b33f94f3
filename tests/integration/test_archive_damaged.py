"""Damaged archives (issue 8): every command that opens one answers within seconds.

Truncations and flipped bits in the superblock, a v2 B-tree node and a fractal heap block
(HDF5's link storage) of a real archive. ``inspect``, ``export``, ``plot`` and ``archive
repair`` run as subprocesses with a 10 s timeout, so a hang fails the test instead of CI.
"""
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from groundseg import telemetry
from groundseg.archive.hdf5 import ArchiveWriter
from groundseg.archive.reader import open_archive
from groundseg.mission import load_mission
from tests.conftest import ROOT
from tests.integration.test_archive_support import mixed_batch, write_mission

PASSES = 3
HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def run(*args, timeout=10):
    return subprocess.run([sys.executable, "-m", "groundseg", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout)


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    """An archive of three passes, each of several commits."""
    d = tmp_path_factory.mktemp("healthy")
    mission = load_mission(write_mission(d / "m"))
    for p in range(PASSES):
        with ArchiveWriter(d, mission, flush_seconds=1e9) as w:
            w.begin_pass(f"pass {p}")
            for i in range(4):
                b = mixed_batch(50, t0=1.7e9 + 1000 * p + 50 * i, seq0=50 * i, seed=10 * p + i,
                                rx0=1.8e9 + 1000 * p + 50 * i)
                decoded, _ = telemetry.decode(b, mission)
                w.append(decoded=decoded)
                w.flush()
            w.end_pass({"frames": {"total": 0}})
    return d / "unit.h5"


def _flip(data: bytes, offset: int) -> bytes:
    b = bytearray(data)
    b[offset] ^= 0x10
    return bytes(b)


def _at(data: bytes, signature: bytes) -> int:
    pos = [m.start() for m in re.finditer(re.escape(signature), data)]
    assert pos, signature  # the archive has this kind of HDF5 structure
    return pos[len(pos) // 2] + 10  # past the signature, version and type: inside the node


def damaged_cases(data: bytes) -> dict[str, bytes]:
    n = len(data)
    rng = np.random.default_rng(0)
    flips = bytearray(data)
    for pos in rng.integers(0, n * 8, 100).tolist():
        flips[pos // 8] ^= 1 << (pos % 8)
    return {
        "truncated_100_bytes": data[:100],
        "truncated_10pc": data[:n // 10],
        "truncated_50pc": data[:n // 2],
        "truncated_90pc": data[:n * 9 // 10],
        "100_flipped_bits": bytes(flips),
        "flip_superblock": _flip(data, 28),
        "flip_btree": _flip(data, _at(data, b"BTLF")),
        "flip_heap": _flip(data, _at(data, b"FHDB")),
    }


CASES = ["truncated_100_bytes", "truncated_10pc", "truncated_50pc", "truncated_90pc",
         "100_flipped_bits", "flip_superblock", "flip_btree", "flip_heap"]


@pytest.mark.parametrize("case", CASES)
def test_damaged_archive_answered_within_seconds(healthy, tmp_path, case):
    data = damaged_cases(healthy.read_bytes())[case]
    arc = tmp_path / "unit.h5"
    arc.write_bytes(data)
    commands = [["inspect", arc], ["export", arc, "--apid", "hk", "--out", tmp_path / "hk.bin"]]
    if HAVE_MATPLOTLIB:
        commands.append(["plot", arc, "--apid", "hk", "--field", "temp", "--out", tmp_path / "q.png"])
    for cmd in commands:
        proc = run(*cmd)
        assert "Traceback" not in proc.stderr
        if proc.returncode:
            lines = proc.stderr.strip().splitlines()
            assert proc.returncode == 1 and len(lines) == 1, (cmd[0], proc.stderr)
            assert "damaged archive" in lines[0] and "archive repair" in lines[0], lines[0]
    proc = run("archive", "repair", arc)
    assert "Traceback" not in proc.stderr
    if proc.returncode:
        # nothing intact: said in one line, the file left as it was
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 1 and len(lines) == 1 and "nothing can be recovered" in lines[0], proc.stderr
        assert arc.read_bytes() == data
        return
    # recovered: a whole archive again, every pass it holds a prefix of the healthy one
    assert "salvaged" in proc.stdout
    assert (tmp_path / "unit.h5.damaged").read_bytes() == data
    with open_archive(arc) as a, open_archive(healthy) as h:
        # a table whose metadata was lost with no committed row is left for the next writer
        has_hk = 10 in a.apids
        if has_hk and case != "100_flipped_bits":  # flips in uncompressed packet bytes go unseen
            n = a.packet_count("hk")
            assert a.packets("hk").tobytes() == h.packets("hk")[:n].tobytes()
        assert set(a.passes["status"].tolist()) <= {1, 2}  # complete, or interrupted
    assert run("inspect", arc).returncode == 0
    if has_hk:
        assert run("export", arc, "--apid", "hk", "--out", tmp_path / "hk.bin").returncode == 0


def test_truncated_archive_hint_names_last_intact_commit(healthy, tmp_path):
    arc = tmp_path / "unit.h5"
    arc.write_bytes(healthy.read_bytes()[:healthy.stat().st_size * 9 // 10])
    proc = run("inspect", arc)
    assert proc.returncode == 1
    assert re.search(r"truncated to [\d,]+ bytes of [\d,]+", proc.stderr), proc.stderr
    assert re.search(r"recovers \d+ pass\(es\), [\d,]+ packets \(commit \d+ of \d+", proc.stderr), proc.stderr


def test_repair_of_healthy_archive_copies_nothing(healthy, tmp_path):
    arc = tmp_path / "unit.h5"
    shutil.copy(healthy, arc)
    proc = run("archive", "repair", arc)
    assert proc.returncode == 0 and "salvaged" not in proc.stdout, proc.stderr
    assert not (tmp_path / "unit.h5.damaged").exists()
    with h5py.File(arc, "r") as f:
        assert f["passes/status"][:].tolist() == [1] * PASSES
