"""Soft symbols over real sockets on loopback: TCP (groundseg listening, and connecting),
UDP (with and without a sequence header), decoded through the Pipeline against the
simulator's truth; closed connections, lost / reordered / duplicated datagrams, symbols
split across reads, garbage symbols, and the ways a source ends."""
from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

from groundseg.errors import UsageError
from groundseg.mission import load_mission
from groundseg.pipeline import Pipeline
from groundseg.sim.simulate import simulate
from groundseg.sources.network import (
    NetworkError,
    TcpSource,
    UdpSource,
    open_network_source,
    parse_endpoint,
)
from tests.conftest import ROOT

TRISAT = ROOT / "fixtures" / "missions" / "trisat.toml"


@pytest.fixture(scope="module")
def mission():
    return load_mission(TRISAT)


@pytest.fixture(scope="module")
def sim(mission):
    return simulate(mission, frames=200, seed=1, level="soft", ebn0_db=6)


def background(fn, *args):
    t = threading.Thread(target=fn, args=args, daemon=True)
    t.start()
    return t


def send_tcp(address, data: bytes, piece: int = 4093, delay: float = 0.0):
    with socket.create_connection(address, timeout=10) as s:
        for i in range(0, len(data), piece):
            s.sendall(data[i:i + piece])
            if delay:
                time.sleep(delay)


def all_frames(rep, truth):
    assert rep["frames"] == truth["frames"]
    assert rep["virtual_channels"] == truth["virtual_channels"]
    assert rep["rejects"] == truth["rejects"]


# --------------------------------------------------------------------------------- TCP

def test_tcp_listen_delivers_every_frame(mission, sim):
    src = TcpSource("tcp-listen://127.0.0.1:0", dtype="soft-float32", max_streams=1, duration=60)
    src.open()
    t0 = time.time()
    sender = background(send_tcp, src.address, sim.capture)
    rep = Pipeline(mission).run(src).to_dict()
    sender.join()
    all_frames(rep, sim.truth)
    s = rep["source"]
    assert s["bytes_in"] == len(sim.capture) and s["truncated_bytes"] == 0 and s["outages"] == []
    assert s["streams"] == 1 and s["network"]["connections"] == 1
    assert s["first_reception"] is not None and time.time() - 120 < t0
    src.close()
    src.close()


def test_pipeline_network_source_takes_the_missions_format(mission, sim):
    pipe = Pipeline(mission)
    src = pipe.network_source("tcp-listen://127.0.0.1:0", max_streams=1, duration=60)
    assert src.kind == "soft" and src.dtype == np.dtype("<f4") and src.rate == 4883 * 2
    src.open()
    background(send_tcp, src.address, sim.capture, 1 << 16)
    rep = pipe.run(src).to_dict()
    all_frames(rep, sim.truth)
    # stamps: the host clock at arrival, never later than decoding finished (a sender faster
    # than the symbol rate does not push the stamps into the future)
    assert rep["source"]["first_reception"] <= rep["source"]["last_reception"] <= rep["source"]["finished"]
    with pytest.raises(UsageError):
        Pipeline(mission, level="frames").network_source("udp://:0")


def test_tcp_connect_mode_delivers_every_frame(mission, sim):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve():
        conn, _ = server.accept()
        with conn:
            conn.sendall(sim.capture)
        server.close()

    sender = background(serve)
    src = TcpSource(f"tcp://127.0.0.1:{port}", dtype="soft-float32", max_streams=1, duration=60)
    rep = Pipeline(mission).run(src).to_dict()
    sender.join()
    all_frames(rep, sim.truth)
    assert rep["source"]["outages"] == [] and rep["source"]["bytes_in"] == len(sim.capture)


def test_tcp_client_waits_for_the_server_and_chunks_carry_the_host_clock(sim):
    # nothing listens yet: the source retries until the server comes up
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    data = sim.capture[:40000]

    def late_server():
        time.sleep(0.4)
        with socket.create_server(("127.0.0.1", port)) as server:
            conn, _ = server.accept()
            with conn:
                conn.sendall(data)

    background(late_server)
    src = TcpSource(f"tcp://127.0.0.1:{port}", dtype="soft-float32", max_streams=1, duration=30, retry=0.1)
    before = time.time()
    chunks = list(src.chunks())
    after = time.time()
    got = np.concatenate([c.data for c in chunks])
    assert got.tobytes() == data
    assert all(c.clock == "host" and before <= c.rx_time <= after for c in chunks)
    assert [c.new_stream for c in chunks] == [True] + [False] * (len(chunks) - 1)
    assert src.stats.outages == []


def test_connection_closed_mid_stream_and_reopened(mission, sim):
    """Two connections: the first closes inside a symbol; everything that arrived is
    delivered, the partial symbol counted truncated, one outage, two streams."""
    cut = len(sim.capture) // 2 + 2                # 2 bytes into a float
    resume = cut + 2                               # the second sender starts on a whole float
    src = TcpSource("tcp-listen://127.0.0.1:0", dtype="soft-float32", max_streams=2, duration=60)
    src.open()

    def two_connections():
        send_tcp(src.address, sim.capture[:cut])
        time.sleep(0.3)
        send_tcp(src.address, sim.capture[resume:])

    sender = background(two_connections)
    chunks = []
    pipe = Pipeline(mission)

    def keep(source):
        for c in source.chunks():
            chunks.append(c)
            yield c

    class Recorder:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def chunks(self):
            return keep(self.inner)

    rep = pipe.run(Recorder(src)).to_dict()
    sender.join()
    s = rep["source"]
    assert s["streams"] == 2 and s["network"]["connections"] == 2
    assert len(s["outages"]) == 1
    o = s["outages"][0]
    assert o["bytes_before"] == cut and o["end"] > o["start"] and "closed" in o["reason"]
    assert s["bytes_in"] == cut + len(sim.capture) - resume
    assert s["truncated_bytes"] == 2
    assert sum(c.new_stream for c in chunks) == 2
    second = [c for c in chunks if c.new_stream][1]
    assert second.offset == 0
    # the frame cut in two is lost; every other one decodes
    assert rep["frames"]["uncorrectable"] == 0
    assert rep["virtual_channels"]["4"]["frames"] >= 198


def test_partial_symbols_across_reads():
    """A float32 split over reads of 1, 3, 5... bytes is carried whole to the next read."""
    x = np.arange(1000, dtype="<f4") - 500.5
    data = x.tobytes() + b"\x01\x02\x03"         # three bytes that never make a symbol
    src = TcpSource("tcp-listen://127.0.0.1:0", dtype="soft-float32", max_streams=1, duration=30)
    src.open()

    def odd_pieces():
        with socket.create_connection(src.address) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            i, k = 0, 1
            while i < len(data):
                s.sendall(data[i:i + k])
                i += k
                k = k % 7 + 2
                time.sleep(0.0005)

    background(odd_pieces)
    chunks = list(src.chunks())
    got = np.concatenate([c.data for c in chunks])
    assert got.dtype == np.dtype("<f4") and np.array_equal(got, x)
    assert src.stats.truncated_bytes == 3 and src.stats.bytes_in == len(data)
    offsets = np.cumsum([0] + [c.elements for c in chunks[:-1]])
    assert [c.offset for c in chunks] == list(offsets)


def test_int8_and_bits_kinds():
    x = np.array([-128, -1, 0, 1, 127] * 100, np.int8)
    for kind, dtype in (("soft", "soft-int8"), ("bits", None)):
        src = TcpSource("tcp-listen://127.0.0.1:0", kind=kind, dtype=dtype, max_streams=1, duration=30)
        src.open()
        background(send_tcp, src.address, x.tobytes(), 7)
        got = np.concatenate([c.data for c in src.chunks()])
        assert got.tobytes() == x.tobytes()
        assert got.dtype == (np.int8 if kind == "soft" else np.uint8)


# --------------------------------------------------------------------------------- UDP

def send_udp(address, data: bytes, payload: int, header: str = "none", drop=(), swap=(), dup=(),
             eof: bool = True, start: int = 1):
    """GNU Radio's UDP Sink: ``payload`` data bytes per datagram, a counter header from
    ``start``; the datagrams numbered in ``drop`` are not sent, each pair in ``swap`` is
    sent in the other order, those in ``dup`` twice; then three zero-length datagrams."""
    pieces = [data[i:i + payload] for i in range(0, len(data), payload)]
    seqs = [(start + i) % (1 << 32 if header.startswith("seq32") else 1 << 64) for i in range(len(pieces))]

    def head(seq):
        if header == "none":
            return b""
        if header == "gnuradio-seq-size":
            return seq.to_bytes(8, "little") + payload.to_bytes(2, "little") + bytes(6)
        n = 4 if "32" in header else 8
        return seq.to_bytes(n, "little" if header.endswith("le") or header == "gnuradio-seq" else "big")

    order = list(range(len(pieces)))
    for a in swap:
        order[a], order[a + 1] = order[a + 1], order[a]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for n, i in enumerate(order):
            if i in drop:
                continue
            for _ in range(2 if i in dup else 1):
                s.sendto(head(seqs[i]) + pieces[i], address)
            if n % 4 == 3:
                time.sleep(0.001)        # paced (~5 MB/s): the kernel's receive buffer never overflows
        if eof:
            for _ in range(3):
                s.sendto(b"", address)
    return len(pieces)


@pytest.mark.parametrize("header,payload", [("none", 1472), ("gnuradio-seq", 1464),
                                            ("gnuradio-seq-size", 1456), ("seq32le", 1470)])
def test_udp_delivers_every_frame(mission, sim, header, payload):
    src = UdpSource("udp://127.0.0.1:0", header=header, dtype="soft-float32", max_streams=1, duration=60)
    src.open()
    sender = background(send_udp, src.address, sim.capture, payload, header)
    rep = Pipeline(mission).run(src).to_dict()
    sender.join()
    all_frames(rep, sim.truth)
    net = rep["source"]["network"]
    assert net["datagrams"] == -(-len(sim.capture) // payload) and net["eof_markers"] >= 1
    assert net["datagrams_lost"] == net["datagrams_reordered"] == net["datagrams_late"] == 0
    assert rep["source"]["bytes_in"] == len(sim.capture) and rep["source"]["outages"] == []


def test_udp_lost_reordered_and_duplicated_datagrams_are_counted(mission, sim):
    """1470-byte payloads (floats split between datagrams), a big-endian 64-bit counter;
    two datagrams dropped, two pairs swapped, one duplicated. Lost ones are filled with
    erasures so the symbols after keep their alignment: only the frames they fell in can
    fail, and frame sync never loses its place."""
    payload = 1470
    src = UdpSource("udp://127.0.0.1:0", header="seq64be", dtype="soft-float32", max_streams=1, duration=60)
    src.open()
    sent = {}
    sender = background(lambda: sent.setdefault("n", send_udp(src.address, sim.capture, payload, "seq64be",
                                                               drop=(100, 1500), swap=(200, 1000), dup=(300,))))
    rep = Pipeline(mission).run(src).to_dict()
    sender.join()
    net = rep["source"]["network"]
    assert net["datagrams_lost"] == 2
    assert net["datagrams_reordered"] == 2
    assert net["datagrams_late"] == 1
    assert net["datagrams"] == sent["n"] - 2 + 1
    assert net["fill_bytes"] == 2 * payload
    assert rep["source"]["bytes_in"] == len(sim.capture) - 2 * payload + 2 * payload   # fill included
    assert rep["source"]["streams"] == 1
    f = rep["frames"]
    assert f["total"] == 200 and f["uncorrectable"] <= 2
    assert rep["virtual_channels"]["4"]["frames"] >= 198


def test_udp_eof_then_a_new_stream_is_an_outage():
    x = np.arange(3000, dtype="<f4")
    src = UdpSource("udp://127.0.0.1:0", header="gnuradio-seq", max_streams=2, duration=30)
    src.open()

    def twice():
        send_udp(src.address, x.tobytes(), 1464, "gnuradio-seq")
        time.sleep(0.3)
        send_udp(src.address, x.tobytes(), 1464, "gnuradio-seq")     # counter restarts at 1

    background(twice)
    chunks = list(src.chunks())
    assert sum(c.new_stream for c in chunks) == 2
    got = np.concatenate([c.data for c in chunks])
    assert np.array_equal(got, np.concatenate([x, x]))
    assert src.stats.streams == 2 and len(src.stats.outages) == 1
    assert src.stats.sequence_restarts == 0 and src.stats.datagrams_lost == 0


def test_udp_counter_wraps_and_restarts_without_eof():
    x = np.arange(5000, dtype=np.int8)
    src = UdpSource("udp://127.0.0.1:0", header="seq32be", dtype="soft-int8", idle_timeout=1.0, duration=30)
    src.open()

    def run():
        send_udp(src.address, x.tobytes(), 100, "seq32be", start=(1 << 32) - 10, eof=False)  # wraps
        send_udp(src.address, x.tobytes(), 100, "seq32be", start=7, eof=False)   # sender restarted

    background(run)
    chunks = list(src.chunks())
    s = src.stats
    assert s.datagrams == 100 and s.datagrams_lost == 0 and s.sequence_restarts == 1
    assert sum(c.new_stream for c in chunks) == 2
    assert np.concatenate([c.data for c in chunks]).tobytes() == x.tobytes() * 2


def test_udp_garbage_symbols_are_passed_on(mission):
    """All zero, saturated, NaN and inf float32: passed on, the decoder's quantiser copes."""
    n = 40000
    junk = np.concatenate([np.zeros(n, "<f4"), np.full(n, 3e38, "<f4"), np.full(n, np.nan, "<f4"),
                           np.full(n, -np.inf, "<f4"), np.float32(1e6) * np.sign(np.sin(np.arange(n))).astype("<f4")])
    src = UdpSource("udp://127.0.0.1:0", dtype="soft-float32", max_streams=1, duration=60)
    src.open()
    background(send_udp, src.address, junk.tobytes() + b"\x00", 1472)    # and a trailing partial byte
    rep = Pipeline(mission).run(src).to_dict()
    assert rep["source"]["bytes_in"] == junk.nbytes + 1 and rep["source"]["truncated_bytes"] == 1
    assert rep["virtual_channels"].get("4", {}).get("frames", 0) == 0


def test_short_datagrams_are_counted_not_fatal():
    src = UdpSource("udp://127.0.0.1:0", header="seq64be", dtype="soft-int8", idle_timeout=0.6, duration=30)
    src.open()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"\x00\x01", src.address)                                   # shorter than the header
        s.sendto((1).to_bytes(8, "big") + b"\x05\x06", src.address)
    got = list(src.chunks())
    assert src.stats.header_short == 1 and src.stats.datagrams == 1
    assert np.concatenate([c.data for c in got]).tolist() == [5, 6]


# ------------------------------------------------------------------- ending, addresses

def test_duration_stop_event_and_close_twice():
    src = TcpSource("tcp-listen://127.0.0.1:0", duration=0.3)
    t = time.monotonic()
    assert list(src.chunks()) == [] and time.monotonic() - t < 5
    assert src.stats.outages == [] and src.stats.streams == 0
    src.close()
    src.close()

    stop = threading.Event()
    src = UdpSource("udp://127.0.0.1:0", stop_event=stop, heartbeat=0.1)
    threading.Timer(0.4, stop.set).start()
    beats = list(src.chunks())
    assert beats and all(c.data.size == 0 for c in beats)
    src.close()
    src.close()


def test_stop_while_disconnected_keeps_the_outage():
    src = TcpSource("tcp-listen://127.0.0.1:0", dtype="soft-int8")
    src.open()
    background(send_tcp, src.address, bytes(100))
    seen = {}

    def look_then_stop():
        seen.update(src.status())
        src.stop()

    for _ in src.chunks():
        threading.Timer(0.5, look_then_stop).start()   # the connection has closed by then
    assert seen["connected"] is False and seen["unplugged_s"] > 0 and "closed" in seen["unplug_reason"]
    assert seen["bytes_read"] == 100 and seen["connections"] == 1 and seen["outages"] == 1
    assert len(src.stats.outages) == 1 and "pass ended" in src.stats.outages[0].reason
    assert src.stats.outages[0].end >= src.stats.outages[0].start


@pytest.mark.parametrize("spec", ["tcp://:5000", "tcp://host", "udp://127.0.0.1:x", "udp://1.2.3.4:70000",
                                  "ftp://a:1", "[::1]5000", "tcp://bad host name.invalid:5"])
def test_bad_addresses_are_usage_errors(spec):
    with pytest.raises(UsageError):
        open_network_source(spec).open()


def test_listening_defaults_to_loopback_and_a_busy_port_is_an_error():
    assert parse_endpoint("udp://:5000") == parse_endpoint("udp://127.0.0.1:5000")
    assert parse_endpoint("tcp-listen://:5000").host == "127.0.0.1"
    assert parse_endpoint("[::1]:7", "udp").host == "::1"
    a = UdpSource("udp://:0")
    a.open()
    b = UdpSource(f"udp://127.0.0.1:{a.address[1]}")
    with pytest.raises(NetworkError, match="cannot listen"):
        b.open()
    a.close()


def test_connection_reset_is_an_outage_not_a_crash():
    """A sender that dies (RST instead of FIN): the stream ends, an outage, the next
    connection goes on."""
    import struct
    src = TcpSource("tcp-listen://127.0.0.1:0", dtype="soft-int8", max_streams=2, duration=30)
    src.open()

    def reset_then_normal():
        s = socket.create_connection(src.address)
        s.sendall(bytes(range(100)))
        time.sleep(0.3)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()                                       # RST
        time.sleep(0.2)
        send_tcp(src.address, bytes(50))

    background(reset_then_normal)
    chunks = list(src.chunks())
    assert src.stats.streams == 2 and len(src.stats.outages) == 1
    assert sum(c.new_stream for c in chunks) == 2
    assert src.stats.bytes_in == 150


def test_journal_records_what_is_decoded_first():
    """A journal (the serial receiver's record types: S stream, D data, O outage) gets every
    read before the decoder does, with the same stamps."""
    class Journal:
        def __init__(self):
            self.records = []

        def append(self, kind, t, payload=b""):
            self.records.append((kind, t, bytes(payload)))

    src = TcpSource("tcp-listen://127.0.0.1:0", dtype="soft-int8", max_streams=2, duration=30)
    src.journal = Journal()
    src.open()

    def twice():
        send_tcp(src.address, bytes(range(10)))
        time.sleep(0.2)
        send_tcp(src.address, bytes(range(10, 30)))

    background(twice)
    chunks = list(src.chunks())
    kinds = [k for k, _, _ in src.journal.records]
    assert kinds[0] == b"S" and kinds.count(b"S") == 2 and kinds.count(b"O") == 1
    data = b"".join(p for k, _, p in src.journal.records if k == b"D")
    assert data == bytes(range(30)) == b"".join(c.data.tobytes() for c in chunks)
    d_times = [t for k, t, _ in src.journal.records if k == b"D"]
    assert sorted(c.rx_time for c in chunks) == sorted(d_times)


def test_udp_decoder_far_behind_drops_counts_and_restarts():
    """A decoder that cannot keep up: beyond ``queue_bytes`` waiting, UDP data is dropped
    and counted (never a crash, never unbounded memory), and the stream restarts."""
    src = UdpSource("udp://127.0.0.1:0", dtype="soft-int8", queue_bytes=20_000, gather=0.0, max_streams=1,
                    duration=60)
    src.open()
    sent = 400 * 1000
    background(send_udp, src.address, bytes(sent), 1000)
    got = 0
    for c in src.chunks():
        got += c.data.size
        time.sleep(0.02)                   # a slow decoder
    s = src.stats
    assert s.bytes_overflow > 0 and s.streams >= 2
    assert got == s.bytes_in and s.bytes_in + s.bytes_overflow == sent
