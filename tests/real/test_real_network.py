"""TRISAT's real soft symbols (gr-satellites' FSK demodulator, float32) sent the way GNU
Radio's network sinks send them, over loopback: the same 5 frames as the file replay, the
4 reference frames byte for byte (PROVENANCE.md)."""
from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

from groundseg.archive.hdf5 import ArchiveWriter
from groundseg.archive.reader import open_archive
from groundseg.mission import load_mission
from groundseg.pipeline import Pipeline
from tests.conftest import ROOT

MISSION = ROOT / "fixtures" / "missions" / "trisat.toml"


def udp_sink(address, data: bytes, payload: int = 1472):
    """GNU Radio's UDP Sink, header None, payload 1472 (368 floats), send EOF."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for n, i in enumerate(range(0, len(data), payload)):
            s.sendto(data[i:i + payload], address)
            if n % 4 == 3:
                time.sleep(0.001)
        for _ in range(3):
            s.sendto(b"", address)


def tcp_sink(address, data: bytes):
    """GNU Radio's TCP Sink in client mode: connect, send the items' bytes, close."""
    with socket.create_connection(address) as s:
        for i in range(0, len(data), 4093):        # reads that split floats
            s.sendall(data[i:i + 4093])


@pytest.mark.parametrize("scheme,send", [("udp", udp_sink), ("tcp-listen", tcp_sink)])
def test_trisat_over_the_network_into_the_archive(captures, tmp_path, scheme, send):
    data = (captures / "trisat-fsk" / "trisat_softsym_9766baud.f32").read_bytes()
    ref = np.fromfile(captures / "trisat-fsk" / "trisat_frames.gr-satellites.bin", np.uint8).reshape(-1, 223)
    mission = load_mission(MISSION)
    with ArchiveWriter(tmp_path, mission) as w:
        pipe = Pipeline(mission, archive=w)
        src = pipe.network_source(f"{scheme}://127.0.0.1:0", max_streams=1, duration=120)
        src.open()
        w.begin_pass(src.name)
        sender = threading.Thread(target=send, args=(src.address, data))
        sender.start()
        rep = pipe.run(src)
        sender.join()
        w.end_pass(rep)
    f = rep["frames"]
    assert f["total"] == 5 and f["uncorrectable"] == 0 and f["crc_failed"] == 0
    assert rep["virtual_channels"]["4"]["frames"] == 5
    assert rep["source"]["bytes_in"] == len(data) and rep["source"]["outages"] == []
    with open_archive(tmp_path / "trisat.h5") as arc:
        rec, vca, offsets = arc.vca()
        frames = arc.frames()
    assert len(rec) == 5
    for i in range(4):
        assert vca[offsets[i]:offsets[i + 1]].tobytes() == ref[i, 6:223 - 6].tobytes()
    assert list(frames["vcfc"]) == [139, 140, 141, 142, 143]
    assert np.isfinite(frames["reception_time"]).all()
