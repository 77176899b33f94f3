"""The operator's first hour at the edges: a replay that decodes nothing says what the capture
looks like; outputs in directories that do not exist are refused; global flags anywhere."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT

DEMO = ROOT / "fixtures" / "missions" / "demo.toml"
SNPP = ROOT / "fixtures" / "missions" / "snpp.toml"
CADU = ROOT / "fixtures" / "demo" / "demo.cadu"


def run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "groundseg", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def test_wrong_mission_says_the_marker_spacing():
    p = run("-q", "replay", CADU, "--mission", SNPP, "--no-archive")
    assert p.returncode == 0
    line = p.stderr.strip().splitlines()[-1]
    assert "nothing decoded" in line and "10232 bits apart" in line and "8192 bits apart" in line


def test_random_bytes_say_nothing_recognised(tmp_path):
    cap = tmp_path / "noise.bin"
    np.random.default_rng(3).integers(0, 256, 100_000, dtype=np.uint8).tofile(cap)
    p = run("replay", cap, "--mission", DEMO, "--no-archive", "-q")
    assert p.returncode == 0 and "nothing decoded" in p.stderr and "nothing recognised" in p.stderr


def test_empty_capture(tmp_path):
    cap = tmp_path / "empty.cadu"
    cap.write_bytes(b"")
    p = run("replay", cap, "--mission", DEMO, "--no-archive", "-q")
    assert p.returncode == 0 and "the capture is empty" in p.stderr


def test_packet_stream_with_a_frame_mission(tmp_path):
    from groundseg.link.packets import build_packets
    cap = tmp_path / "pkts.bin"
    data, _ = build_packets(np.full(20, 100), np.arange(20), np.zeros((20, 40), np.uint8))
    cap.write_bytes(np.asarray(data, np.uint8).tobytes())
    p = run("replay", cap, "--mission", DEMO, "--no-archive", "-q")
    assert p.returncode == 0 and "Space Packet stream" in p.stderr and 'level "packets"' in p.stderr


def test_a_good_replay_warns_nothing():
    p = run("replay", CADU, "--mission", DEMO, "--no-archive", "-q")
    assert p.returncode == 0 and p.stderr == "" and p.stdout == ""


@pytest.mark.parametrize("flag", ["--report"])
def test_output_in_a_missing_directory_is_refused(tmp_path, flag):
    target = tmp_path / "no" / "such" / "dir" / "r.json"
    p = run("replay", CADU, "--mission", DEMO, "--no-archive", flag, target)
    assert p.returncode == 2 and "does not exist" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("where", ["before", "after"])
def test_global_flags_either_side_of_the_command(where):
    args = ["replay", CADU, "--mission", DEMO, "--no-archive"]
    p = run(*(["-q", *args] if where == "before" else [*args, "-q"]))
    assert p.returncode == 0 and p.stdout == ""


def test_a_level_not_built_is_refused_before_any_pass(tmp_path):
    p = run("replay", CADU, "--mission", DEMO, "--archive", tmp_path / "arc", "--level", "iq")
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "arc").exists() or not any((tmp_path / "arc").iterdir())


@pytest.fixture(scope="module")
def long_capture(tmp_path_factory):
    """The demo capture 200 times over (510 MB): a replay of it lasts several seconds
    however fast the chain gets (40 times over, one finished before a signal sent 1.1 s
    in), and the signal cuts it short, so its length costs only the writing."""
    cap = tmp_path_factory.mktemp("long") / "long.cadu"
    data = CADU.read_bytes()
    with open(cap, "wb") as fh:
        for _ in range(200):
            fh.write(data)
    return cap


@pytest.mark.parametrize("delay", [0.0, 0.25, 0.5, 0.8, 1.1])
def test_sigint_during_a_replay_exits_cleanly(tmp_path, long_capture, delay):
    """Ctrl-C mid-pass, at several instants: exit 130, one line, the pass aborted and the
    archive still readable (a KeyboardInterrupt raised inside an archive write once left a
    commit log ahead of the file, about one run in ten)."""
    import signal
    import time
    cap = long_capture
    arc = tmp_path / "arc"
    proc = subprocess.Popen([sys.executable, "-m", "groundseg", "replay", str(cap), "--mission", str(DEMO),
                             "--archive", str(arc)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    deadline = time.monotonic() + 60
    while not (arc / "demo.h5").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the replay finished before the signal arrived")
    assert proc.returncode == 130 and "interrupted" in err
    assert "Traceback" not in err
    p = run("inspect", arc / "demo.h5")
    assert p.returncode == 0, p.stderr
