"""The network sources' pure parts: UDP sequence numbers put back in order (losses,
reordering, duplicates, wrap, restarts), partial symbols carried, addresses."""
from __future__ import annotations

import numpy as np
import pytest

from groundseg.errors import UsageError
from groundseg.sources.network import (
    NetworkStats,
    SequenceReorder,
    _Assembler,
    parse_endpoint,
    receive_address,
)


def reorder(counter=8, window=4, **kw):
    st = NetworkStats()
    return SequenceReorder(counter, st, window, **kw), st


def run(r, seqs):
    out = []
    for s in seqs:
        out += r.push(s, f"p{s}".encode())
    return out + r.flush()


def test_in_order():
    r, st = reorder()
    assert run(r, [1, 2, 3]) == [b"p1", b"p2", b"p3"]
    assert (st.datagrams_lost, st.datagrams_reordered, st.datagrams_late) == (0, 0, 0)


def test_swapped_pair_put_back():
    r, st = reorder()
    assert r.push(1, b"a") == [b"a"]
    assert r.push(3, b"c") == []
    assert r.push(2, b"b") == [b"b", b"c"]
    assert st.datagrams_reordered == 1 and st.datagrams_lost == 0


def test_loss_given_up_when_the_window_fills():
    r, st = reorder(window=2)
    out = run(r, [1, 3, 4, 5, 6])
    assert out == [b"p1", 1, b"p3", b"p4", b"p5", b"p6"] and st.datagrams_lost == 1


def test_late_after_given_up_and_duplicates_are_dropped():
    r, st = reorder(window=1)
    out = run(r, [1, 3, 4, 2, 4, 4, 5])
    assert out == [b"p1", 1, b"p3", b"p4", b"p5"]
    assert st.datagrams_lost == 1 and st.datagrams_late == 3


def test_flush_counts_the_gaps():
    r, st = reorder(window=10)
    assert r.push(1, b"a") == [b"a"]
    r.push(4, b"d")
    r.push(7, b"g")
    assert r.flush() == [2, b"d", 2, b"g"] and st.datagrams_lost == 4


@pytest.mark.parametrize("counter", [4, 8])
def test_counter_wraps(counter):
    top = 1 << (8 * counter)
    r, st = reorder(counter)
    seqs = [(top - 3 + i) % top for i in range(8)]
    seqs[3], seqs[4] = seqs[4], seqs[3]
    out = run(r, seqs)
    assert len(out) == 8 and all(isinstance(x, bytes) for x in out)
    assert st.datagrams_reordered == 1 and st.datagrams_lost == 0 and st.sequence_restarts == 0


def test_sender_restarting_its_counter_is_a_new_stream():
    r, st = reorder(restart_after=3)
    out = run(r, [10, 11, 12, 1, 2, 3, 4])
    assert out == [b"p10", b"p11", b"p12", None, b"p1", b"p2", b"p3", b"p4"]
    assert st.sequence_restarts == 1 and st.datagrams_late == 0


def test_far_jump_is_a_restart_not_a_loss():
    r, st = reorder(max_jump=1000)
    out = run(r, [1, 2, 50_000, 50_001])
    assert out == [b"p1", b"p2", None, b"p50000", b"p50001"]
    assert st.sequence_restarts == 1 and st.datagrams_lost == 0


def test_random_streams_never_crash_and_deliver_each_datagram_once():
    rng = np.random.default_rng(3)
    for _ in range(50):
        r, st = reorder(4, window=int(rng.integers(0, 8)))
        seqs = list(rng.integers(0, 1 << 32, 5)) + list(rng.integers(0, 40, 60))
        out = run(r, [int(s) for s in seqs])
        got = [x for x in out if isinstance(x, bytes)]
        assert len(got) == len(set(got)) or st.sequence_restarts


def test_assembler_carries_partial_symbols():
    x = np.arange(100, dtype="<f4")
    raw = x.tobytes()
    a = _Assembler(np.dtype("<f4"))
    parts, i, k = [], 0, 1
    while i < len(raw):
        parts.append(a.feed(raw[i:i + k]))
        i += k
        k = k % 9 + 1
    assert np.array_equal(np.concatenate(parts), x) and a.end() == 0
    a.feed(b"\x00\x01\x02")
    assert a.end() == 3 and a.end() == 0


@pytest.mark.parametrize("spec,scheme,host,port", [
    ("tcp-listen://:5000", None, "127.0.0.1", 5000),
    ("tcp-listen://0.0.0.0:5000", None, "0.0.0.0", 5000),
    ("tcp://example.org:1234", None, "example.org", 1234),
    ("udp://[::1]:9", None, "::1", 9),
    (":7000", "udp", "127.0.0.1", 7000),
    ("host:1", "tcp", "host", 1)])
def test_parse_endpoint(spec, scheme, host, port):
    ep = parse_endpoint(spec, scheme)
    assert (ep.host, ep.port) == (host, port)


@pytest.mark.parametrize("spec", ["udp://", "udp://:", "tcp://:1", "tcp://h:0", "tcp://h:65536", "x://h:1",
                                  "udp://[::1:5", "tcp-listen://h:p"])
def test_parse_endpoint_errors(spec):
    with pytest.raises(UsageError):
        parse_endpoint(spec)


@pytest.mark.parametrize("value,proto,expect", [
    ("5000", "tcp", "tcp-listen://127.0.0.1:5000"),
    (":5000", "udp", "udp://127.0.0.1:5000"),
    ("0.0.0.0:5000", "tcp", "tcp-listen://0.0.0.0:5000"),
    ("tcp://sdr-host:2000", "tcp", "tcp://sdr-host:2000"),
    ("udp://[::1]:9", "udp", "udp://[::1]:9")])
def test_receive_address(value, proto, expect):
    assert str(receive_address(value, proto)) == expect


@pytest.mark.parametrize("value,proto", [("udp://h:1", "tcp"), ("tcp://h:1", "udp"), ("h", "tcp"), ("", "udp")])
def test_receive_address_errors(value, proto):
    with pytest.raises(UsageError):
        receive_address(value, proto)
