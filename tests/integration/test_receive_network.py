"""`groundseg receive --tcp / --udp` (a subprocess) fed soft symbols over real loopback
sockets the way GNU Radio's sinks send them: the archive, the report and the journal."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from groundseg.mission import load_mission
from groundseg.sim.simulate import simulate
from tests.conftest import ROOT

MISSION = ROOT / "fixtures" / "missions" / "trisat.toml"


@pytest.fixture(scope="module")
def sim():
    return simulate(load_mission(MISSION), frames=200, seed=1, level="soft", ebn0_db=6)


def env():
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def receive(tmp_path, *args):
    cmd = [sys.executable, "-m", "groundseg", "receive", "--mission", str(MISSION), "--archive",
           str(tmp_path / "arc"), "--report", str(tmp_path / "report.json"), *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(), text=True)


def tcp_client_sink(port, data, connections=1):
    """GNU Radio's TCP Sink in Client mode: connects (retrying until groundseg listens)."""
    cut = len(data) // 2 if connections == 2 else len(data)
    for part in ([data[:cut], data[cut:]] if connections == 2 else [data]):
        deadline = time.time() + 120
        while True:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        with s:
            s.sendall(part)
        time.sleep(0.3)


def test_receive_tcp_archives_every_frame(tmp_path, sim):
    port = free_port()
    proc = receive(tmp_path, "--tcp", f"127.0.0.1:{port}", "--streams", "2", "--duration", "200")
    sender = threading.Thread(target=tcp_client_sink, args=(port, sim.capture, 2))
    sender.start()
    out, err = proc.communicate(timeout=300)
    sender.join()
    assert proc.returncode == 0, err
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["source"]["bytes_in"] == len(sim.capture)
    assert rep["source"]["streams"] == 2 and len(rep["source"]["outages"]) == 1
    assert rep["frames"]["uncorrectable"] == 0 and rep["virtual_channels"]["4"]["frames"] >= 199
    assert rep["receiver"]["level"] == "soft" and rep["receiver"]["ended_by"] == "max_streams"
    assert (tmp_path / "arc" / "trisat.h5").exists()
    assert "outage" in out and "receiving from tcp-listen://127.0.0.1" in out
    journals = sorted((tmp_path / "arc" / "journal").glob("*.gsj"))
    assert journals and sum(p.stat().st_size for p in journals) > len(sim.capture)
    # the journal replays to the same frames and link quality
    r = subprocess.run([sys.executable, "-m", "groundseg", "replay", *map(str, journals), "--mission", str(MISSION),
                        "--no-archive", "--report", str(tmp_path / "replay.json")], check=False, capture_output=True,
                       text=True,
                       env=env(), timeout=300)
    assert r.returncode == 0, r.stderr
    again = json.loads((tmp_path / "replay.json").read_text())
    for key in ("frames", "virtual_channels", "rejects", "link_quality"):
        assert again[key] == rep[key], key
    assert again["source"]["kind"] == "soft" and again["source"]["bytes_in"] == len(sim.capture)
    assert again["source"]["first_reception"] is not None       # the journal's host stamps


def test_receive_udp_with_sequence_header(tmp_path, sim):
    port = free_port(socket.SOCK_DGRAM)
    proc = receive(tmp_path, "--udp", str(port), "--udp-header", "gnuradio-seq", "--streams", "1",
                   "--duration", "200", "--no-journal")
    # wait for the receiver to listen: its first line says so
    line = proc.stdout.readline()
    assert "receiving from udp://127.0.0.1" in line, proc.stderr.read() if proc.poll() is not None else line
    payload = 1464
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        pieces = [sim.capture[i:i + payload] for i in range(0, len(sim.capture), payload)]
        order = list(range(len(pieces)))
        order[500], order[501] = order[501], order[500]
        for n, i in enumerate(order):
            if i == 900:
                continue                                   # lost
            s.sendto((i + 1).to_bytes(8, "little") + pieces[i], ("127.0.0.1", port))
            if n % 4 == 3:
                time.sleep(0.001)
        for _ in range(3):
            s.sendto(b"", ("127.0.0.1", port))
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    rep = json.loads((tmp_path / "report.json").read_text())
    net = rep["source"]["network"]
    assert net["datagrams_lost"] == 1 and net["datagrams_reordered"] == 1 and net["eof_markers"] >= 1
    assert rep["frames"]["total"] == 200 and rep["virtual_channels"]["4"]["frames"] >= 199
    assert "datagrams_lost 1" in out


@pytest.mark.parametrize("args", [["--tcp", "localhost:notaport"], ["--udp", "tcp://h:1"],
                                  ["--tcp", "1", "--udp", "2"]])
def test_receive_bad_address_exits_2(tmp_path, args):
    proc = receive(tmp_path, *args)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "arc").exists()
