"""The live path with real parts: emulator -> real pty -> `groundseg receive` (a subprocess) -> archive.

No mock anywhere: the emulator writes into a pseudo-terminal's master, `groundseg receive`
opens the slave through pyserial, journals, decodes and archives; the archive is compared
with the simulator's truth, byte for byte.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from groundseg.archive.reader import open_archive
from groundseg.mission import load_mission
from groundseg.pipeline import Pipeline, channel_config
from groundseg.sources.emulator import Emulator, frame_pieces
from groundseg.sources.journal import JournalCursor, JournalSource
from groundseg.sources.profile import load_profile
from groundseg.spacecraft import simulate
from tests.conftest import ROOT

MISSION = ROOT / "fixtures" / "missions" / "demo.toml"
PROFILES = {"raw": "usb-cdc-raw", "kiss": "kiss-tnc", "length": "length-modem"}


@pytest.fixture(scope="module")
def mission():
    return load_mission(MISSION)


@pytest.fixture(scope="module")
def sims(mission):
    return {"bits": simulate(mission, frames=120, seed=21, level="bits"),
            "frames": simulate(mission, frames=120, seed=21, level="frames")}


def pieces_for(mission, sim, framing):
    profile = load_profile(PROFILES[framing])
    unit = channel_config(mission).cadu_length if framing == "raw" else mission.link.frame_length
    return frame_pieces(sim.capture, framing, unit, port=0, length_bytes=profile.length_bytes)


def env():
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def start_receive(tmp_path, link, framing, *extra):
    cmd = [sys.executable, "-m", "groundseg", "receive", "--port", str(link), "--mission", str(MISSION),
           "--profile", PROFILES[framing], "--archive", str(tmp_path / "arc"), "--report",
           str(tmp_path / "report.json"), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(), text=True)


def run_emulator(emu, hold=0.0):
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("stats", emu.run(hold=hold)), daemon=True)
    t.start()
    return t, box


def stop_receive(proc, timeout=60):
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def archive_md5(path):
    with open_archive(path) as arc:
        return {str(a): hashlib.md5(arc.raw_packets(a).data.tobytes()).hexdigest()
                for a in (100, 101, 102, 103, 200)}, arc.frames()


def receive_capture(tmp_path, mission, sim, framing, **emu_kw):
    link = tmp_path / "dev"
    emu = Emulator(pieces_for(mission, sim, framing), link, rate=emu_kw.pop("rate", 4e6), wait_open=30, **emu_kw)
    emu.plug()
    proc = start_receive(tmp_path, link, framing)
    t, box = run_emulator(emu)
    t.join(timeout=90)
    assert not t.is_alive(), "emulator did not finish"
    time.sleep(0.3)
    rc, out, err = stop_receive(proc)
    emu.close()
    assert rc == 0, err
    report = json.loads((tmp_path / "report.json").read_text())
    return report, box["stats"], out, err


@pytest.mark.parametrize("framing", ["raw", "kiss", "length"])
def test_receive_equals_truth_and_journal_replays(framing, mission, sims, tmp_path):
    sim = sims["bits" if framing == "raw" else "frames"]
    report, stats, out, err = receive_capture(tmp_path, mission, sim, framing)
    assert stats.bytes_sent == sum(map(len, pieces_for(mission, sim, framing)))
    assert report["frames"]["total"] == sim.truth["frames"]["total"]
    assert report["packets"] == sim.truth["packets"]
    assert report["receiver"]["ended_by"] == "SIGTERM"
    assert report["source"]["bytes_in"] == stats.bytes_sent
    md5, frames = archive_md5(tmp_path / "arc" / "demo.h5")
    assert md5 == sim.truth["packet_md5"]
    assert np.isfinite(frames["reception_time"]).all()
    # the journal replays to the same archive content, reception times included
    journals = sorted((tmp_path / "arc" / "journal").glob("*.gsj"))
    assert journals
    r = subprocess.run([sys.executable, "-m", "groundseg", "replay", *map(str, journals), "--mission",
                        str(MISSION), "--archive", str(tmp_path / "arc2"), "-q"], env=env(),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    md5b, frames_b = archive_md5(tmp_path / "arc2" / "demo.h5")
    assert md5b == md5
    assert (frames_b["reception_time"] == frames["reception_time"]).all()


@pytest.mark.parametrize("framing", ["raw", "kiss"])
def test_unplug_replug_loses_nothing_sent_while_connected(framing, mission, sims, tmp_path):
    sim = sims["bits" if framing == "raw" else "frames"]
    report, stats, out, err = receive_capture(tmp_path, mission, sim, framing, rate=1e6, unplug_after=0.4,
                                              unplug_for=0.8)
    assert stats.unplugs >= 1 and len(stats.sent_per_connection) == 2
    outages = report["source"]["outages"]
    assert len(outages) == 1, outages
    o = outages[0]
    assert o["end"] > o["start"] and o["bytes_before"] == stats.sent_per_connection[0]
    assert report["source"]["streams"] == 2
    assert report["source"]["bytes_in"] == stats.bytes_sent
    # every frame sent while connected was decoded; only packets spanning the unplug are lost
    assert report["frames"]["total"] == sim.truth["frames"]["total"]
    assert report["frames"]["rejected"] == 0
    got = sum(p["count"] for p in report["packets"].values())
    want = sum(p["count"] for p in sim.truth["packets"].values())
    assert want - 6 <= got <= want
    assert "outage" in out


def test_stalled_receiver_keeps_the_pass_open(mission, sims, tmp_path):
    sim = sims["frames"]
    report, stats, out, err = receive_capture(tmp_path, mission, sim, "kiss", rate=1e6, stall=3.0, stall_after=0.3)
    assert stats.stalls == 1
    assert report["packets"] == sim.truth["packets"]
    assert report["source"]["outages"] == []
    assert "NO SIGNAL" in err      # the periodic log line said the receiver was silent


def test_sigterm_mid_pass_leaves_consistent_archive_and_journal(mission, sims, tmp_path):
    sim = sims["frames"]
    link = tmp_path / "dev"
    emu = Emulator(pieces_for(mission, sim, "length") * 3, link, rate=2e5, wait_open=30)
    emu.plug()
    proc = start_receive(tmp_path, link, "length")
    t, box = run_emulator(emu)
    time.sleep(5.0)      # start-up, then a few seconds of a pass at 200 kbit/s
    rc, out, err = stop_receive(proc)
    emu.stop()
    t.join(timeout=30)
    emu.close()
    assert rc == 0, err
    report = json.loads((tmp_path / "report.json").read_text())
    assert 0 < report["frames"]["total"] < 3 * sim.truth["frames"]["total"]
    with open_archive(tmp_path / "arc" / "demo.h5") as arc:
        passes = arc.passes
        assert len(passes) == 1
        n_hk = arc.packet_count(100)
    assert n_hk == report["packets"]["100"]["count"]
    journals = sorted((tmp_path / "arc" / "journal").glob("*.gsj"))
    cur = JournalCursor(journals)
    kinds = []
    while (rec := cur.next()) is not None:
        kinds.append(rec[0])
    assert cur.truncated_bytes == 0 and kinds[0] == b"S" and kinds[-1] == b"E"
    src = JournalSource(journals)
    rep2 = Pipeline(mission, level=src.kind).run(src)
    assert rep2["packets"] == report["packets"] and rep2["frames"] == report["frames"]


def test_port_errors_are_one_line_exit_2(tmp_path):
    r = subprocess.run([sys.executable, "-m", "groundseg", "receive", "--port", str(tmp_path / "nope"),
                        "--mission", str(MISSION)], env=env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "no such port" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    # busy: another program holds the port (pyserial's exclusive lock)
    import serial
    emu = Emulator([b"x"], tmp_path / "dev", wait_open=0)
    emu.plug()
    holder = serial.Serial(str(tmp_path / "dev"), exclusive=True)
    try:
        r = subprocess.run([sys.executable, "-m", "groundseg", "receive", "--port", str(tmp_path / "dev"),
                            "--mission", str(MISSION), "--archive", str(tmp_path / "arc")],
                           env=env(), capture_output=True, text=True, timeout=60)
    finally:
        holder.close()
        emu.close()
    assert r.returncode == 2 and "busy" in r.stderr, r.stderr
    assert not (tmp_path / "arc").exists()
    # a journal directory that cannot be written
    emu = Emulator([b"x"], tmp_path / "dev", wait_open=0)
    emu.plug()
    try:
        (tmp_path / "file").write_text("x")
        r = subprocess.run([sys.executable, "-m", "groundseg", "receive", "--port", str(tmp_path / "dev"),
                            "--mission", str(MISSION), "--journal", str(tmp_path / "file" / "j"),
                            "--archive", str(tmp_path / "arc")],
                           env=env(), capture_output=True, text=True, timeout=60)
    finally:
        emu.close()
    assert r.returncode == 2 and "journal" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_packets_readable_by_another_process_within_2_s(mission, sims, tmp_path):
    """SWMR: while the pass goes on, open_archive in another process sees what was received
    within 2 s: the pass's first packets, and packets arriving later in the pass."""
    sim = sims["frames"]
    link = tmp_path / "dev"
    pieces = pieces_for(mission, sim, "kiss")
    sent = []
    emu = Emulator(pieces[:40], link, rate=2e6, wait_open=30,
                   on_event=lambda text: sent.append(time.time()) if text.startswith("sent") else None)
    emu.plug()
    proc = start_receive(tmp_path, link, "kiss")
    code = ("import sys, time\nfrom groundseg.archive.reader import open_archive\n"
            "end, last = time.time() + 40, 0\n"
            "while time.time() < end:\n"
            "    try:\n"
            "        with open_archive(sys.argv[1]) as a:\n"
            "            n = a.packet_count(100)\n"
            "        if n != last:\n"
            "            print(time.time(), n, flush=True); last = n\n"
            "        if n >= int(sys.argv[2]): break\n"
            "    except Exception:\n"
            "        pass\n"
            "    time.sleep(0.05)\n")
    want = sim.truth["packets"]["100"]["count"]
    watcher = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "arc" / "demo.h5"), str(want)],
                               env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        emu.run(hold=3.0)                      # 40 frames, then silence
        emu.pieces, emu.wait_open_s = pieces[40:], 0
        emu.run(hold=0.0)                      # the rest of the pass
        out, _ = watcher.communicate(timeout=60)
        seen = [(float(t), int(n)) for t, n in (line.split() for line in out.splitlines() if line.strip())]
        first = next(t for t, n in seen if n > 0)
        last = next(t for t, n in seen if n >= want)
        print(f"visible after {first - sent[0]:.2f} s (first packets), {last - sent[1]:.2f} s (later)")
        assert first - sent[0] < 2.0 and last - sent[1] < 2.0
        assert proc.poll() is None        # the pass is still going on
    finally:
        if watcher.poll() is None:
            watcher.kill()
        rc, out, err = stop_receive(proc)
        emu.stop()
        emu.close()
    assert rc == 0, err
