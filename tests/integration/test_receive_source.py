"""SerialSource in-process with real transports: socket:// to a local TCP server, a pty with a slow decoder
(the decoder catches up from the journal, nothing dropped)."""
from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

from groundseg.mission import load_mission
from groundseg.pipeline import Pipeline
from groundseg.sources.emulator import Emulator, frame_pieces
from groundseg.sources.framing import kiss_encode
from groundseg.sources.journal import JournalWriter
from groundseg.sources.profile import load_profile
from groundseg.sources.serial import ReceiverError, SerialSource
from groundseg.spacecraft import simulate
from tests.conftest import ROOT

MISSION = ROOT / "fixtures" / "missions" / "demo.toml"


def test_socket_url_to_a_local_tcp_server():
    mission = load_mission(MISSION)
    sim = simulate(mission, frames=80, seed=31, level="frames")
    L = mission.link.frame_length
    payload = kiss_encode(np.frombuffer(sim.capture, np.uint8).reshape(-1, L))
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]

    def serve():
        conn, _ = srv.accept()
        for i in range(0, len(payload), 7000):
            conn.sendall(payload[i:i + 7000])
            time.sleep(0.005)
        conn.close()
        srv.close()

    threading.Thread(target=serve, daemon=True).start()
    src = SerialSource(f"socket://127.0.0.1:{port}", load_profile("kiss-tnc"), frame_length=L, reconnect=False)
    report = Pipeline(mission, level="frames").run(src)
    assert report["packets"] == sim.truth["packets"]
    assert src.stats.bytes_in == len(payload)
    assert src.stats.framing["frames"] == 80 and src.stats.framing["cut"] == 0
    assert len(src.stats.outages) == 1 and "pass ended" in src.stats.outages[0].reason


def test_socket_refused_is_one_line():
    s = socket.create_server(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(ReceiverError, match="refused"):
        SerialSource(f"socket://127.0.0.1:{port}", load_profile("kiss-tnc"), frame_length=10).open()


def test_slow_decoder_catches_up_from_the_journal(tmp_path):
    mission = load_mission(MISSION)
    sim = simulate(mission, frames=150, seed=32, level="bits")
    from groundseg.pipeline import channel_config
    pieces = frame_pieces(sim.capture, "raw", channel_config(mission).cadu_length)
    emu = Emulator(pieces, tmp_path / "dev", rate=8e6, wait_open=20)
    emu.plug()
    profile = load_profile("usb-cdc-raw")
    profile.gather = 0.002          # many small records: the 2-record queue overflows
    journal = JournalWriter(tmp_path / "j", {"framing": "raw", "kind": "bits"}, name="t")
    src = SerialSource(str(tmp_path / "dev"), profile, journal=journal, queue_records=2)
    t = threading.Thread(target=emu.run, daemon=True)
    pipe = Pipeline(mission, level="bits")
    got = 0

    def stop_when_sent():
        t.join()                    # the emulator returns once the receiver has read everything
        src.stop()

    t.start()                       # it sends once the receiver has opened the port
    threading.Thread(target=stop_when_sent, daemon=True).start()
    for chunk in src.chunks():
        if chunk.new_stream:
            pipe.begin_stream()
        pipe.push(chunk)
        got += chunk.data.size
        time.sleep(0.02)            # a decoder far slower than the line
    pipe.end_stream()
    emu.close()
    journal.close()
    assert src.stats.spills >= 1
    assert got == emu.stats.bytes_sent == len(sim.capture)
    report = pipe.report()
    assert report["packets"] == sim.truth["packets"]


def test_wrong_framing_shows_no_lock_not_a_crash(tmp_path):
    """A raw CADU stream read with the KISS profile: nothing decodes, everything is counted."""
    mission = load_mission(MISSION)
    sim = simulate(mission, frames=60, seed=33, level="bits")
    from groundseg.pipeline import channel_config
    emu = Emulator(frame_pieces(sim.capture, "raw", channel_config(mission).cadu_length), tmp_path / "dev",
                   rate=4e6, wait_open=20)
    emu.plug()
    src = SerialSource(str(tmp_path / "dev"), load_profile("kiss-tnc"), frame_length=mission.link.frame_length)
    t = threading.Thread(target=lambda: (emu.run(), src.stop()), daemon=True)
    t.start()
    report = Pipeline(mission, level="frames").run(src)
    t.join(10)
    emu.close()
    assert src.stats.bytes_in == len(sim.capture)
    assert report["packets"] == {} or sum(p["count"] for p in report["packets"].values()) == 0
    f = src.stats.framing
    assert f["frames"] == 0 and f["wrong_length"] + f["garbage_bytes"] + f["other_command"] > 0


def test_usb_port_syntax():
    from groundseg.sources.serial import find_usb, parse_usb_port
    m = parse_usb_port("usb:0483:5740:GS1")
    assert (m.vid, m.pid, m.serial_number) == (0x0483, 0x5740, "GS1")
    assert parse_usb_port("/dev/ttyACM0") is None
    with pytest.raises(ReceiverError, match="usb:VID:PID"):
        parse_usb_port("usb:zz:1")
    from groundseg.sources.profile import UsbMatch
    assert find_usb(UsbMatch(vid=0xFFFF, pid=0xFFFE, serial_number="none")) is None
    with pytest.raises(ReceiverError, match="no such port"):
        SerialSource("usb:ffff:fffe", load_profile("usb-cdc-raw")).open()


@pytest.mark.parametrize("framing", ["kiss", "length"])
def test_frame_cut_by_an_unplug_is_counted_not_delivered(framing, tmp_path):
    mission = load_mission(MISSION)
    sim = simulate(mission, frames=60, seed=34, level="frames")
    L = mission.link.frame_length
    profile = load_profile("kiss-tnc" if framing == "kiss" else "length-modem")
    pieces = frame_pieces(sim.capture, framing, L, length_bytes=profile.length_bytes)
    emu = Emulator(pieces, tmp_path / "dev", rate=2e6, unplug_after=0.1, unplug_for=0.5, cut=True, wait_open=20)
    emu.plug()
    src = SerialSource(str(tmp_path / "dev"), profile, frame_length=L)
    t = threading.Thread(target=lambda: (emu.run(), src.stop()), daemon=True)
    t.start()
    chunks = [c for c in src.chunks() if c.data.size]
    t.join(10)
    emu.close()
    assert emu.stats.pieces_cut == 1 and len(src.stats.outages) == 1
    assert src.stats.framing["cut"] == 1 and src.stats.framing["frames"] == 59
    assert src.stats.bytes_in == emu.stats.bytes_sent
    got = np.concatenate([c.data for c in chunks]).reshape(-1, L)
    want = np.frombuffer(sim.capture, np.uint8).reshape(-1, L)
    cut = [i for i in range(60) if not (want[i] == got).all(axis=1).any()]
    assert len(cut) == 1                       # every other frame arrived intact
    assert sum(c.new_stream for c in chunks) == 2


def test_loop_url_full_disk_while_catching_up_keeps_order(tmp_path):
    """loop:// (pyserial's loopback): the journal fills the disk while the decoder is behind and
    catching up from it; every byte still reaches the decoder, in order."""
    import os
    profile = load_profile("usb-cdc-raw")
    profile.gather, profile.read_max = 0.001, 2048
    journal = JournalWriter(tmp_path / "j", {"framing": "raw", "kind": "bits"}, name="t")
    src = SerialSource("loop://", profile, journal=journal, queue_records=2)
    src.open()
    data = os.urandom(300_000)

    def feed():
        for i in range(0, len(data), 1000):
            if i == 150_000:
                with src._lock:                     # the disk fills
                    journal._f.close()
                    journal._f = open("/dev/full", "wb", buffering=0)  # noqa: SIM115
            src._ser.write(data[i:i + 1000])
            time.sleep(0.001)

    t = threading.Thread(target=feed, daemon=True)
    got = bytearray()
    t.start()                                       # loop:// holds what is written until read
    for chunk in src.chunks():
        got += chunk.data.tobytes()
        time.sleep(0.005)
        if len(got) >= len(data):
            src.stop()
    t.join(5)
    assert journal.failed and "journal stopped" in journal.failed
    assert src.stats.spills >= 1 and src.stats.held_in_memory > 0
    assert bytes(got) == data


@pytest.mark.filterwarnings("ignore:set.*deprecated:DeprecationWarning")  # pyserial 3.5 rfc2217 client
def test_rfc2217_url_to_a_local_server():
    """rfc2217:// against pyserial's own RFC 2217 port manager serving a loop:// device."""
    import serial
    import serial.rfc2217
    data = np.random.default_rng(0).integers(0, 256, 100_000, dtype=np.uint8).tobytes()
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]

    def serve():
        conn, _ = srv.accept()
        dev = serial.serial_for_url("loop://", timeout=0.05)

        class Conn:
            def write(self, blob):
                conn.sendall(blob)

        mgr = serial.rfc2217.PortManager(dev, Conn())

        def from_client():             # option negotiation from the client
            while True:
                try:
                    got = conn.recv(1024)
                except OSError:
                    return
                if not got:
                    return
                dev.write(b"".join(mgr.filter(got)))

        threading.Thread(target=from_client, daemon=True).start()
        time.sleep(0.5)
        for i in range(0, len(data), 1000):
            dev.write(data[i:i + 1000])
            while dev.in_waiting:
                conn.sendall(b"".join(mgr.escape(dev.read(dev.in_waiting))))
        # pyserial's rfc2217 client drops what its reader thread queued once the connection
        # is gone: the server unplugs only after the client has had time to read it all
        time.sleep(2.0)
        conn.shutdown(socket.SHUT_RDWR)
        conn.close()
        srv.close()

    threading.Thread(target=serve, daemon=True).start()
    src = SerialSource(f"rfc2217://127.0.0.1:{port}", load_profile("usb-cdc-raw"), reconnect=False)
    got = b"".join(c.data.tobytes() for c in src.chunks())
    assert len(got) == len(data), (len(got), len(data), src.stats.to_dict())
    assert got == data
    assert src.stats.bytes_in == len(data) and len(src.stats.outages) == 1
