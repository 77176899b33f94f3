"""Space Packet extraction (133.0-B over 732.0-B/132.0-B M_PDUs): kernel vs a slow reference."""
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from groundseg.link import packets as P
from groundseg.link.records import PacketBatch

NO, IDLE = 0x7FF, 0x7FE


# --- a slow, obviously-correct reference: python bytes, one frame at a time ------------

def _apid(b):
    return ((int(b[0]) & 7) << 8) | int(b[1])


def _bad(b, max_len):
    return (int(b[0]) >> 5) != 0 or ((int(b[4]) << 8) | int(b[5])) + 7 > max_len


def reference_extract(zones, fhps, gaps, max_len=P.DEFAULT_MAX_PACKET_LENGTH):
    """The rules of packets.py on a list of packet zones of one VC, in plain Python.

    Returns (packets as bytes, dropped_incomplete per APID, idle packet count, reject reasons)."""
    out, dropped, rejects = [], Counter(), Counter()
    idle = 0
    buf, in_sync = None, False

    def emit(p):
        nonlocal idle
        if _apid(p) == 0x7FF:
            idle += 1
        else:
            out.append(bytes(p))

    def drop():
        if buf is not None and len(buf) >= 6 and _apid(buf) != 0x7FF:
            dropped[_apid(buf)] += 1

    for z, f, g in zip(zones, fhps, gaps):
        z = bytes(z)
        d = len(z)
        if g:
            drop()
            buf, in_sync = None, False
        if f == IDLE:
            continue
        if f != NO and f >= d:
            drop()
            buf, in_sync = None, False
            rejects["fhp_out_of_range"] += 1
            continue
        if not in_sync:
            if f == NO:
                continue
            in_sync, pos = True, f
        elif buf is not None:
            combined = buf + z[:d if f == NO else f]
            buf = None
            if len(combined) < 6:
                if f == NO:
                    buf = combined
                    continue
                rejects["packet_length"] += 1
            elif _bad(combined, max_len):
                rejects["packet_length"] += 1
                if f == NO:
                    in_sync = False
                    continue
            else:
                total = ((combined[4] << 8) | combined[5]) + 7
                if f == NO:
                    if len(combined) < total:
                        buf = combined
                        continue
                    if len(combined) == total:
                        emit(combined)
                        continue
                    rejects["packet_length"] += 1
                    in_sync = False
                    continue
                if len(combined) == total:
                    emit(combined)
                else:
                    rejects["packet_length"] += 1
            pos = f
        else:
            if f != 0:
                rejects["packet_length"] += 1
                if f == NO:
                    in_sync = False
                    continue
            pos = f
        while pos < d:
            rest = z[pos:]
            if len(rest) < 6:
                buf = rest
                break
            if _bad(rest, max_len):
                rejects["packet_length"] += 1
                in_sync = False
                break
            total = ((rest[4] << 8) | rest[5]) + 7
            if total <= len(rest):
                emit(rest[:total])
                pos += total
            else:
                buf = rest
                break
    return out, dropped, idle, rejects, buf


def reference_sequence(packets):
    """(gaps, missing, repeats) per APID following the 14-bit count: an exact repeat is not a
    gap; backward jumps are gaps with 0 missing."""
    last, gaps, missing, repeats = {}, Counter(), Counter(), Counter()
    for p in packets:
        a, s = _apid(p), ((p[2] & 0x3F) << 8) | p[3]
        if a in last:
            d = (s - last[a]) % 16384
            if d == 0:
                repeats[a] += 1
            elif d != 1:
                gaps[a] += 1
                if d < 8192:
                    missing[a] += d - 1
        last[a] = s
    return gaps, missing, repeats


def batch_packets(pb: PacketBatch):
    return [pb.packet(i) for i in range(len(pb))]


def random_stream(rng, n, max_payload=40, n_apids=5, idle_share=0.0):
    apids = rng.integers(0, n_apids, n) + 100
    if idle_share:
        apids[rng.random(n) < idle_share] = 0x7FF
    lengths = rng.integers(1, max_payload + 1, n)
    flat = rng.integers(0, 256, int(lengths.sum())).astype(np.uint8)
    seq = np.zeros(n, np.int64)
    for a in np.unique(apids):
        seq[apids == a] = np.arange((apids == a).sum())
    return P.build_packets(apids, seq, (flat, lengths))


def run_kernel(zones, fhps, gaps, chunks=None, max_len=P.DEFAULT_MAX_PACKET_LENGTH):
    ex = P.PacketExtractor(1, max_len)
    m = len(zones)
    bounds = [0, m] if chunks is None else sorted(set([0, m] + list(chunks)))
    outs = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b > a:
            outs.append(ex.push_data_fields(zones[a:b], fhps[a:b], gaps[a:b]).packets)
    ex.flush()
    return PacketBatch.concatenate(outs), ex.stats.to_dict()


# --- encoders ------------------------------------------------------------------------

def test_build_packets_headers_round_trip():
    stream, starts = P.build_packets([5, 2047, 9], [0, 16383, 16384], [b"a", b"bc" * 100, b"xyz"],
                                     sec_hdr=1, seq_flags=1)
    h = P.decode_primary_headers(stream, starts)
    assert h["apid"].tolist() == [5, 2047, 9]
    assert h["seq_count"].tolist() == [0, 16383, 0]
    assert h["length"].tolist() == [7, 206, 9]
    assert (h["sec_hdr"] == 1).all() and (h["seq_flags"] == 1).all() and (h["version"] == 0).all()
    assert stream[starts[1] + 6:starts[1] + 206].tobytes() == b"bc" * 100


@settings(deadline=None, max_examples=40)
@given(apid=st.integers(0, 2047), seq=st.integers(0, 16383), n=st.integers(1, 300),
       ptype=st.integers(0, 1), sh=st.integers(0, 1), flags=st.integers(0, 3))
def test_primary_header_pack_decode(apid, seq, n, ptype, sh, flags):
    h = P.pack_primary_headers(apid, seq, n - 1, packet_type=ptype, sec_hdr=sh, seq_flags=flags)
    d = P.decode_primary_headers(h.ravel(), np.array([0]))
    assert (d["apid"][0], d["seq_count"][0], d["length"][0], d["type"][0], d["sec_hdr"][0],
            d["seq_flags"][0]) == (apid, seq, n + 6, ptype, sh, flags)


def test_pack_primary_headers_rejects_overflow():
    with pytest.raises(ValueError):
        P.pack_primary_headers(2048, 0, 0)


@pytest.mark.parametrize("length", [7, 13, 50, 64])
def test_pack_mpdu_fhp_and_idle_fill(length):
    rng = np.random.default_rng(length)
    stream, starts = random_stream(rng, 30)
    zones, fhp = P.pack_mpdu(stream, starts, length)
    assert zones.shape[1] == length
    flat = zones.ravel()
    assert flat[:len(stream)].tobytes() == stream.tobytes()
    all_starts = np.append(starts, len(stream)) if len(flat) > len(stream) else starts
    for k in range(len(zones)):
        inside = all_starts[(all_starts >= k * length) & (all_starts < (k + 1) * length)]
        assert fhp[k] == (inside[0] - k * length if len(inside) else NO)
    # the tail is one idle packet reaching exactly the end of the last zone
    tail = flat[len(stream):]
    if len(tail):
        assert _apid(tail) == 0x7FF and ((int(tail[4]) << 8) | int(tail[5])) + 7 == len(tail)


def test_pack_mpdu_rejects_bad_arguments():
    with pytest.raises(ValueError):
        P.pack_mpdu(np.zeros(10, np.uint8), np.array([0]), 3000)
    with pytest.raises(ValueError):
        P.pack_mpdu(np.zeros(10, np.uint8), np.array([5, 2]), 20)


# --- extraction ------------------------------------------------------------------------

def test_round_trip_simple():
    rng = np.random.default_rng(0)
    stream, starts = random_stream(rng, 60)
    zones, fhp = P.pack_mpdu(stream, starts, 32)
    pb, counts = run_kernel(zones, fhp, np.zeros(len(fhp), bool))
    assert pb.data.tobytes() == stream.tobytes()
    assert np.array_equal(pb.offsets, np.append(starts, len(stream)))
    assert counts["idle_packets"] == 1 or len(stream) % 32 == 0
    assert sum(v["count"] for v in counts["packets"].values()) == 60
    assert all(v["sequence_gaps"] == 0 for v in counts["packets"].values())


def _pkt(apid, seq, n):
    return P.build_packets(apid, seq, [bytes(range(n))])[0]


@pytest.mark.parametrize("fhp_case", ["zero", "last_byte", "no_packet", "idle", "out_of_range"])
def test_fhp_cases(fhp_case):
    if fhp_case == "zero":
        pk = [_pkt(1, 0, 14), _pkt(1, 1, 14), _pkt(2, 0, 7)]        # 20, 20, 13 bytes
        stream = np.concatenate(pk)
        zones, fhp = P.pack_mpdu(stream, np.array([0, 20, 40]), 20)
        assert fhp.tolist() == [0, 0, 0]
        expect = [p.tobytes() for p in pk]
    elif fhp_case == "last_byte":
        pk = [_pkt(3, 0, 33), _pkt(4, 0, 14)]                        # 39 and 20 bytes
        stream = np.concatenate(pk)
        zones, fhp = P.pack_mpdu(stream, np.array([0, 39]), 20)
        assert fhp[1] == 19                                          # the zone's last byte
        expect = [p.tobytes() for p in pk]
    elif fhp_case == "no_packet":
        stream = _pkt(7, 0, 54)                                      # 60 bytes over 3 zones
        zones, fhp = P.pack_mpdu(stream, np.array([0]), 20)
        assert fhp.tolist() == [0, NO, NO]
        expect = [stream.tobytes()]
    elif fhp_case == "idle":
        stream = _pkt(8, 0, 34)
        zones = np.concatenate([stream[:20], np.full(20, 0x55, np.uint8), stream[20:]]).reshape(3, 20)
        fhp = np.array([0, IDLE, NO])
        expect = [stream.tobytes()]
    else:
        pk = [_pkt(9, 0, 34), _pkt(9, 1, 14)]                        # 40 + 20
        zones, fhp = P.pack_mpdu(np.concatenate(pk), np.array([0, 40]), 20)
        fhp[1] = 25
        expect = [pk[1].tobytes()]
    gaps = np.zeros(len(fhp), bool)
    pb, counts = run_kernel(zones, fhp, gaps)
    ref = reference_extract(zones, fhp, gaps)
    assert batch_packets(pb) == ref[0] == expect
    if fhp_case == "out_of_range":
        assert counts["rejects"] == {"fhp_out_of_range": 1}
        assert counts["packets"]["9"]["dropped_incomplete"] == 1
    else:
        assert counts["rejects"] == {}


@pytest.mark.parametrize("split", [1, 2, 3, 4, 5])
def test_header_split_across_frames(split):
    length = 24
    first = P.build_packets(1, 0, [bytes(length - split - 6)])[0]      # leaves `split` bytes
    second = P.build_packets(2, 0, [bytes(range(30))])[0]               # 36 bytes
    stream = np.concatenate([first, second])
    short = (-len(stream)) % length
    stream = np.concatenate([stream, P.idle_packet(short if short >= 7 else short + length)])
    zones = stream.reshape(-1, length)
    fhp = np.full(len(zones), NO)
    fhp[0] = 0
    nxt = len(first) + len(second)
    if nxt // length < len(zones) and fhp[nxt // length] == NO:
        fhp[nxt // length] = nxt % length
    pb, counts = run_kernel(zones, fhp, np.zeros(len(zones), bool))
    assert batch_packets(pb) == [first.tobytes(), second.tobytes()]
    assert counts["rejects"] == {}


def test_gap_in_the_middle_of_a_spanning_packet():
    length = 20
    a = P.build_packets(1, 0, [bytes(60)])[0]        # 66 bytes: frames 0..3
    b = P.build_packets(1, 1, [bytes(range(7))])[0]  # 13 bytes
    zones, fhp = P.pack_mpdu(np.concatenate([a, b]), np.array([0, 66]), length)
    gaps = np.zeros(len(zones), bool)
    keep = np.ones(len(zones), bool)
    keep[1] = False          # frame 1 lost
    gaps[2] = True           # the counter gap is seen on frame 2
    z, f, g = zones[keep], fhp[keep], gaps[keep]
    pb, counts = run_kernel(z, f, g)
    ref = reference_extract(z, f, g)
    assert batch_packets(pb) == ref[0] == [b.tobytes()]
    assert counts["packets"]["1"]["dropped_incomplete"] == 1
    # the packet after the gap follows seq 0, which was never delivered: no sequence gap yet
    assert counts["packets"]["1"]["sequence_gaps"] == 0


def test_fhp_mismatch_trusts_the_fhp():
    length = 20
    a = P.build_packets(1, 0, [bytes(24)])[0]   # 30 bytes
    b = P.build_packets(2, 0, [bytes(3)])[0]    # 9 bytes
    stream = np.concatenate([a, b, P.idle_packet(40 - 39 + 20)])
    zones = stream[:60].reshape(3, 20).copy()
    fhp = np.array([0, 12, NO])                 # true next start is 10; FHP claims 12
    pb, counts = run_kernel(zones, fhp, np.zeros(3, bool))
    ref = reference_extract(zones, fhp, np.zeros(3, bool))
    assert batch_packets(pb) == ref[0]
    assert a.tobytes() not in batch_packets(pb)
    assert counts["rejects"]["packet_length"] >= 1


def test_bad_packet_length_resyncs_at_next_fhp():
    ex = P.PacketExtractor(1, max_packet_length=100)
    a = P.build_packets(1, 0, [bytes(200)])[0]   # 206 > 100
    b = P.build_packets(1, 1, [bytes(10)])[0]
    zones = np.zeros((3, 20), np.uint8)
    zones[0] = a[:20]
    zones[1] = a[20:40]
    zones[2, :16] = b
    zones[2, 16:] = 0
    out = ex.push_data_fields(zones, np.array([0, NO, 0]))
    pb, rj = out.packets, out.rejects
    assert batch_packets(pb) == [b.tobytes()]   # a refused, b found at frame 2's FHP
    assert ex.stats.to_dict()["rejects"]["packet_length"] == 1
    assert rj.records["reason"][0] == P.REJECT_CODE["packet_length"]
    assert rj.raw(0) == a[:20].tobytes()


def test_idle_packets_counted_and_dropped():
    rng = np.random.default_rng(5)
    stream, starts = random_stream(rng, 80, idle_share=0.3)
    zones, fhp = P.pack_mpdu(stream, starts, 40)
    pb, counts = run_kernel(zones, fhp, np.zeros(len(fhp), bool))
    h = P.decode_primary_headers(stream, starts)
    n_idle = int((h["apid"] == 0x7FF).sum()) + (1 if len(stream) % 40 else 0)
    assert counts["idle_packets"] == n_idle
    assert len(pb) == 80 - int((h["apid"] == 0x7FF).sum())
    assert (pb.header["apid"] != 0x7FF).all()


def test_sequence_gaps_missing_and_repeats():
    seq = [0, 1, 2, 5, 6, 6, 16383 + 6, 0]  # +2 missing, repeat, backward, forward wrap
    seq = [s % 16384 for s in seq]
    stream, starts = P.build_packets(7, np.array(seq), [b"x"] * len(seq))
    zones, fhp = P.pack_mpdu(stream, starts, 30)
    pb, counts = run_kernel(zones, fhp, np.zeros(len(fhp), bool))
    gaps, missing, repeats = reference_sequence(batch_packets(pb))
    c = counts["packets"]["7"]
    assert (c["sequence_gaps"], c["sequence_missing"], c["sequence_repeats"]) == (gaps[7], missing[7], repeats[7])
    # 2->5 (gap, 2 missing), 6->6 (a repeat, not a gap), 6->5 backward (gap, 0), 5->0 (16378: backward, 0)
    assert pb.header["gap_before"].tolist() == [False, False, False, True, False, False, True, True]
    assert c["sequence_gaps"] == 3 and c["sequence_missing"] == 2 and c["sequence_repeats"] == 1


def test_sequence_count_left_at_zero_is_repeats_not_gaps():
    """A spacecraft that does not use the sequence count: every packet repeats 0."""
    stream, starts = P.build_packets(9, np.zeros(40, np.int64), [b"abc"] * 40)
    zones, fhp = P.pack_mpdu(stream, starts, 25)
    pb, counts = run_kernel(zones, fhp, np.zeros(len(fhp), bool))
    assert len(pb) == 40 and not pb.header["gap_before"].any()
    c = counts["packets"]["9"]
    assert (c["sequence_gaps"], c["sequence_missing"], c["sequence_repeats"]) == (0, 0, 39)


def test_segmented_packets_delivered_with_flags():
    stream, starts = P.build_packets(9, [0, 1, 2], [b"ab", b"cd", b"ef"], seq_flags=np.array([1, 0, 2]))
    zones, fhp = P.pack_mpdu(stream, starts, 30)
    pb, _ = run_kernel(zones, fhp, np.zeros(len(fhp), bool))
    assert pb.header["seq_flags"].tolist() == [1, 0, 2]


def _impair(rng, zones, fhp):
    """Drop frames (gap flag on the next kept one), corrupt FHPs and length fields."""
    m = len(zones)
    zones = zones.copy()
    fhp = fhp.copy()
    keep = rng.random(m) > 0.1
    gaps = np.zeros(m, bool)
    lost = np.flatnonzero(~keep)
    for k in lost:
        if k + 1 < m:
            gaps[k + 1] = True
    for k in rng.choice(m, size=max(1, m // 15), replace=False):
        r = rng.random()
        if r < 0.3:
            fhp[k] = rng.integers(zones.shape[1], 0x7FE)     # out of range
        elif r < 0.6:
            fhp[k] = rng.integers(0, zones.shape[1])         # wrong but in range
        elif r < 0.8:
            fhp[k] = NO
        else:
            zones[k, rng.integers(0, zones.shape[1])] ^= 0xFF  # random byte flip
    return zones[keep], fhp[keep], gaps[keep]


@pytest.mark.parametrize("seed", range(12))
def test_kernel_matches_reference_on_random_streams(seed):
    rng = np.random.default_rng(seed)
    length = int(rng.integers(7, 70))
    stream, starts = random_stream(rng, 120, max_payload=int(rng.integers(1, 120)), idle_share=0.1)
    zones, fhp = P.pack_mpdu(stream, starts, length)
    zones, fhp, gaps = _impair(rng, zones, fhp)
    max_len = int(rng.choice([60, 200, P.DEFAULT_MAX_PACKET_LENGTH]))
    ref_packets, ref_dropped, ref_idle, ref_rejects, ref_buf = reference_extract(zones, fhp, gaps, max_len)
    pb, counts = run_kernel(zones, fhp, gaps, max_len=max_len)
    assert batch_packets(pb) == ref_packets
    assert counts["idle_packets"] == ref_idle
    assert counts["rejects"] == dict(ref_rejects)
    if ref_buf is not None and len(ref_buf) >= 6 and _apid(ref_buf) != 0x7FF:
        ref_dropped[_apid(ref_buf)] += 1   # the flush at the end of the stream
    got_dropped = {int(k): v["dropped_incomplete"] for k, v in counts["packets"].items()
                   if v["dropped_incomplete"]}
    assert got_dropped == dict(ref_dropped)
    gaps_ref, missing_ref, repeats_ref = reference_sequence(ref_packets)
    for k, v in counts["packets"].items():
        assert v["sequence_gaps"] == gaps_ref[int(k)]
        assert v["sequence_missing"] == missing_ref[int(k)]
        assert v["sequence_repeats"] == repeats_ref[int(k)]
        assert v["count"] == sum(1 for p in ref_packets if _apid(p) == int(k))
    # chunk boundaries anywhere give the same packets
    cuts = rng.choice(np.arange(1, max(2, len(zones))), size=min(5, max(1, len(zones) - 1)), replace=False)
    pb2, counts2 = run_kernel(zones, fhp, gaps, chunks=cuts, max_len=max_len)
    assert batch_packets(pb2) == ref_packets
    assert counts2 == counts


def test_every_chunk_boundary_gives_identical_results():
    rng = np.random.default_rng(42)
    stream, starts = random_stream(rng, 40, max_payload=60)
    zones, fhp = P.pack_mpdu(stream, starts, 25)
    zones, fhp, gaps = _impair(rng, zones, fhp)
    whole, counts = run_kernel(zones, fhp, gaps)
    for cut in range(1, len(zones)):
        pb, c = run_kernel(zones, fhp, gaps, chunks=[cut])
        assert pb.data.tobytes() == whole.data.tobytes()
        assert np.array_equal(pb.offsets, whole.offsets)
        assert c == counts


def test_multi_slot_equals_separate_vcs():
    rng = np.random.default_rng(3)
    zs, fs, gs = [], [], []
    for vc in range(3):
        stream, starts = random_stream(rng, 30, max_payload=50)
        z, f = P.pack_mpdu(stream, starts, 30)
        z, f, g = _impair(rng, z, f)
        zs.append(z), fs.append(f), gs.append(g)
    # interleave the three VCs frame by frame
    order = np.concatenate([np.full(len(z), vc) for vc, z in enumerate(zs)])
    rng.shuffle(order)
    frames, fhp, gap = [], [], []
    idx = [0, 0, 0]
    for vc in order:
        frames.append(zs[vc][idx[vc]]), fhp.append(fs[vc][idx[vc]]), gap.append(gs[vc][idx[vc]])
        idx[vc] += 1
    frames = np.array(frames)
    ex = P.PacketExtractor(3)
    pb = ex.push(frames, np.arange(len(frames)), 0, 30, np.array(fhp), np.array(gap), order, order).packets
    for vc in range(3):
        alone, _ = run_kernel(zs[vc], fs[vc], gs[vc])
        mine = pb.select(pb.header["vcid"] == vc)
        assert batch_packets(mine) == batch_packets(alone)


def test_reset_counts_dropped_and_forgets_sequence():
    a = P.build_packets(4, 10, [bytes(30)])[0]
    ex = P.PacketExtractor()
    ex.push_data_fields(a[:20][None, :], np.array([0]))
    ex.reset()
    assert ex.stats.to_dict()["packets"]["4"]["dropped_incomplete"] == 1
    b = P.build_packets(4, 500, [bytes(14)])[0]
    pb = ex.push_data_fields(b[None, :], np.array([0])).packets
    assert len(pb) == 1 and not pb.header["gap_before"][0]


def test_bad_arguments_raise_value_error():
    ex = P.PacketExtractor()
    with pytest.raises(ValueError):
        ex.push_data_fields(np.zeros((2, 10), np.uint8), np.array([0, 0x800]))
    with pytest.raises(ValueError):
        ex.push(np.zeros((2, 10), np.uint8), np.array([0]), 0, 11, 0, False)
    with pytest.raises(ValueError):
        P.PacketExtractor(max_packet_length=3)


# --- raw packet streams ------------------------------------------------------------------

def test_stream_splitter_any_chunking():
    rng = np.random.default_rng(9)
    stream, starts = random_stream(rng, 50, max_payload=30, idle_share=0.1)
    h = P.decode_primary_headers(stream, starts)
    want = [stream[s:s + n].tobytes() for s, n, a in zip(starts, h["length"], h["apid"]) if a != 0x7FF]
    for step in (1, 5, 64, len(stream)):
        sp = P.PacketStreamSplitter()
        got = []
        for k in range(0, len(stream), step):
            got += batch_packets(sp.push(stream[k:k + step]).packets)
        sp.flush()
        assert got == want
        assert sp.stats.to_dict()["idle_packets"] == int((h["apid"] == 0x7FF).sum())
        assert sp.stats.to_dict()["rejects"] == {}


def test_stream_splitter_truncated_tail():
    stream, _ = P.build_packets([1, 2], [0, 0], [bytes(10), bytes(10)])
    sp = P.PacketStreamSplitter()
    out = sp.push(stream[:-3])
    assert len(out.packets) == 1 and len(out.rejects) == 0
    out = sp.flush()
    c = sp.stats.to_dict()
    assert c["packets"]["2"]["dropped_incomplete"] == 1
    assert c["rejects"] == {"truncated": 1}
    assert len(out.packets) == 0 and out.rejects.raw(0) == stream[16:-3].tobytes()


def test_stream_splitter_bad_header_refuses_rest():
    stream, _ = P.build_packets([1, 2], [0, 0], [bytes(10), bytes(10)])
    bad = stream.copy()
    bad[16] |= 0xE0  # version 7
    sp = P.PacketStreamSplitter()
    out = sp.push(bad)
    assert len(out.packets) == 1
    assert sp.stats.to_dict()["rejects"] == {"packet_length": 1}
    assert len(out.rejects) == 1 and out.rejects.raw(0) == bad[16:].tobytes()


def test_stream_splitter_reset():
    a, _ = P.build_packets([1, 1], [0, 1], [bytes(4), bytes(4)])
    b, _ = P.build_packets([1], [100], [bytes(4)])
    sp = P.PacketStreamSplitter()
    out = sp.push(np.concatenate([a, b[:3]]))
    assert len(out.packets) == 2 and len(out.rejects) == 0
    sp.reset()
    assert sp.stats.to_dict()["rejects"] == {"truncated": 1}
    pb = sp.push(b).packets
    assert len(pb) == 1 and not pb.header["gap_before"][0]
    assert sp.stats.to_dict()["packets"]["1"]["sequence_gaps"] == 0


def test_build_packets_matches_a_struct_reference():
    import struct
    rng = np.random.default_rng(21)
    n = 40
    apid = rng.integers(0, 2048, n)
    seq = rng.integers(0, 1 << 16, n)
    payloads = [bytes(rng.integers(0, 256, int(k)).astype(np.uint8)) for k in rng.integers(1, 50, n)]
    stream, starts = P.build_packets(apid, seq, payloads, sec_hdr=1, seq_flags=2)
    ref = b"".join(struct.pack(">HHH", (1 << 11) | int(a), (2 << 14) | (int(s) % 16384), len(p) - 1) + p
                   for a, s, p in zip(apid, seq, payloads))
    assert stream.tobytes() == ref
    assert starts.tolist() == list(np.cumsum([0] + [len(p) + 6 for p in payloads[:-1]]))
