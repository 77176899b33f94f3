"""The spacecraft simulator: determinism, structure of what it sends, truth consistency,
each impairment doing what it says, and its kernels against slow pure-Python references."""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from groundseg import spacecraft as sc
from groundseg.link import packets as pk
from groundseg.mission import definitions
from groundseg.mission.configs import channel_config
from groundseg.sim import kernels, packets as sim_packets
from groundseg.coding import crc
from groundseg.coding.channel import ChannelDecoder, ChannelEncoder
from groundseg.link import clcw, timecodes, tm
from groundseg.mission import import_ccsdspy, load_mission

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "fixtures" / "missions" / "demo.toml"
N = 48            # frames per simulation: small, so NUMBA_DISABLE_JIT=1 stays quick


@pytest.fixture(scope="module")
def demo():
    return load_mission(DEMO)


@pytest.fixture(scope="module")
def clean(demo):
    return sc.simulate(demo, frames=N, seed=7)


def _sim(demo, level="bits", **imp):
    return sc.simulate(demo, frames=N, seed=7, level=level, impairments=sc.Impairments(**imp))


# --------------------------------------------------------------------------- references

def ref_mpdu_packets(zones: list[bytes], fhps: list[int]) -> list[bytes]:
    """Slow M_PDU walker: packets of consecutive packet zones, starting at the first FHP,
    asserting every later FHP points at a packet start."""
    stream = b"".join(zones)
    zone = len(zones[0])
    first = next(j * zone + f for j, f in enumerate(fhps) if f < 0x7FE)
    out, p, starts = [], first, set()
    while p + 6 <= len(stream):
        length = ((stream[p + 4] << 8) | stream[p + 5]) + 7
        if p + length > len(stream):
            break
        out.append(stream[p:p + length])
        starts.add(p)
        p += length
    for j, f in enumerate(fhps):
        later = [s for s in starts if j * zone <= s < (j + 1) * zone]
        if f == 0x7FF:
            assert not later or j * zone < first, f"zone {j}: FHP 0x7FF but a packet starts in it"
        elif j * zone >= first:
            assert f == min(later) - j * zone, f"zone {j}: FHP {f} is not the first packet start"
    return out


def ref_scatter(src, src_off, lengths, dst, dst_off):
    for s, n, d in zip(src_off, lengths, dst_off):
        dst[d:d + n] = src[s:s + n]


def ref_put_bits(body, values, off, bits):
    width = body.shape[1] * 8
    for i in range(body.shape[0]):
        word = int.from_bytes(body[i].tobytes(), "big") | (int(values[i]) << (width - off - bits))
        body[i] = np.frombuffer(word.to_bytes(body.shape[1], "big"), np.uint8)


def ref_concat_bits(rows, row_bits, ins, ins_off, ins_bits) -> tuple[bytes, list[int]]:
    text, starts = "", []
    for i in range(rows.shape[0]):
        text += "".join(f"{b:08b}" for b in ins[ins_off[i]:ins_off[i] + (ins_bits[i] + 7) // 8])[:ins_bits[i]]
        starts.append(len(text))
        text += "".join(f"{b:08b}" for b in rows[i])[:row_bits[i]]
    text += "0" * (-len(text) % 8)
    return bytes(int(text[k:k + 8], 2) for k in range(0, len(text), 8)), starts


# --------------------------------------------------------------------------- kernels vs references

@settings(deadline=None, max_examples=40)
@given(st.lists(st.integers(0, 20), min_size=1, max_size=12), st.integers(0, 2**32 - 1))
def test_scatter_matches_reference(lengths, seed):
    rng = np.random.default_rng(seed)
    lengths = np.array(lengths, np.int64)
    src = rng.integers(0, 256, int(lengths.sum()) + 5, dtype=np.uint8)
    src_off = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    order = rng.permutation(len(lengths))
    dst_off = np.concatenate([[0], np.cumsum(lengths[order])[:-1]]).astype(np.int64)[np.argsort(order)]
    a = np.zeros(int(lengths.sum()), np.uint8)
    b = a.copy()
    kernels.scatter(src, src_off, lengths, a, dst_off)
    ref_scatter(src, src_off, lengths, b, dst_off)
    assert np.array_equal(a, b)


@settings(deadline=None, max_examples=60)
@given(st.integers(1, 64), st.integers(0, 40), st.integers(0, 2**32 - 1))
def test_put_bits_matches_reference(bits, off, seed):
    rng = np.random.default_rng(seed)
    width = (off + bits + 7) // 8 + int(rng.integers(0, 3))
    body = rng.integers(0, 256, (5, width), dtype=np.uint8)
    # keep the field's own bits clear so OR-ing is writing
    for i in range(5):
        word = int.from_bytes(body[i].tobytes(), "big") & ~(((1 << bits) - 1) << (width * 8 - off - bits))
        body[i] = np.frombuffer(word.to_bytes(width, "big"), np.uint8)
    values = rng.integers(0, 2**63, 5, dtype=np.uint64) & np.uint64((1 << bits) - 1 if bits < 64 else 2**64 - 1)
    a, b = body.copy(), body.copy()
    kernels.put_bits(a, values, np.int64(off), np.int64(bits))
    ref_put_bits(b, values, off, bits)
    assert np.array_equal(a, b)


@settings(deadline=None, max_examples=40)
@given(st.integers(1, 5), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_concat_bits_matches_reference(n, width, seed):
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 256, (n, width), dtype=np.uint8)
    row_bits = rng.integers(1, width * 8 + 1, n).astype(np.int64)
    ins_bits = rng.integers(0, 20, n).astype(np.int64)
    ins_bytes = [(int(b) + 7) // 8 for b in ins_bits]
    ins_off = np.concatenate([[0], np.cumsum(ins_bytes)[:-1]]).astype(np.int64)
    ins = rng.integers(0, 256, sum(ins_bytes) + 8, dtype=np.uint8)
    total = int(row_bits.sum() + ins_bits.sum())
    out = np.zeros((total + 7) // 8 + 8, np.uint8)
    starts = kernels.concat_bits(rows, row_bits, ins, ins_off, ins_bits, out)
    ref, ref_starts = ref_concat_bits(rows, row_bits, ins, ins_off, ins_bits)
    assert out[:(total + 7) // 8].tobytes() == ref
    assert list(starts) == ref_starts


# --------------------------------------------------------------------------- determinism

def test_same_seed_same_bytes(demo, clean):
    again = sc.simulate(demo, frames=N, seed=7)
    assert again.capture == clean.capture
    assert json.dumps(again.truth, sort_keys=True) == json.dumps(clean.truth, sort_keys=True)
    other = sc.simulate(demo, frames=N, seed=8)
    assert other.capture != clean.capture


def test_same_seed_same_bytes_with_impairments(demo):
    imp = dict(bit_error_rate=1e-3, lost_frames=2, garbage_bytes=1, bit_slips=1, bit_offset=3,
               polarity_flips=1, truncate_last=True)
    a, b = _sim(demo, **imp), _sim(demo, **imp)
    assert a.capture == b.capture and a.truth == b.truth


def test_mission_path_or_object(demo, clean):
    assert sc.simulate(DEMO, frames=N, seed=7).capture == clean.capture


# --------------------------------------------------------------------------- what is sent

def test_capture_is_the_channel_encoding_of_the_frames(demo, clean):
    enc = ChannelEncoder(channel_config(demo))
    assert bytes(enc.encode(clean.frames)) == clean.capture
    assert len(clean.capture) == N * (4 + 1115 + 160)


def test_frame_headers_counters_and_trailers(demo, clean):
    f = clean.frames
    h = tm.decode_primary_header(f)
    assert (h["version"] == 0).all() and (h["scid"] == 42).all()
    assert (np.diff(h["mcfc"].astype(int)) % 256 == 1).all()
    for v in np.unique(h["vcid"]):
        c = h["vcfc"][h["vcid"] == v].astype(int)
        assert (np.diff(c) % 256 == 1).all(), f"VC {v} counter not consecutive"
    assert set(np.unique(h["vcid"])) <= {0, 1, 7}
    # idle frames: FHP 0x7FE, on VC 7 only
    assert ((h["fhp"] == 0x7FE) == (h["vcid"] == 7)).all()
    assert h["ocf_flag"].all()
    assert crc.fecf_ok(f).all()
    words = clcw.decode(f[:, -6:-2])
    assert (words["control_word_type"] == 0).all() and (words["cop_in_effect"] == 1).all()


def test_packet_zones_walk_to_the_generated_packets(demo, clean):
    """A slow reference M_PDU walk over each VC finds exactly the packets the truth lists."""
    f = clean.frames
    h = tm.decode_primary_header(f)
    walked = {}
    for v in (0, 1):
        rows = np.flatnonzero(h["vcid"] == v)
        zones = [f[r, 6:1115 - 6].tobytes() for r in rows]
        for p in ref_mpdu_packets(zones, list(h["fhp"][rows])):
            apid = ((p[0] & 7) << 8) | p[1]
            walked.setdefault(apid, []).append(p)
    idle = walked.pop(0x7FF)
    assert len(idle) == clean.truth["idle_packets"]
    assert all(p[6:] == b"\x55" * (len(p) - 6) for p in idle)
    truth = clean.truth["packets"]
    assert sorted(map(int, truth)) == sorted(walked)
    for apid, pkts in walked.items():
        t = truth[str(apid)]
        assert t["count"] == len(pkts) and t["bytes"] == sum(map(len, pkts))
        assert hashlib.md5(b"".join(pkts)).hexdigest() == clean.truth["packet_md5"][str(apid)]
        seq = np.array([((p[2] & 0x3F) << 8) | p[3] for p in pkts])
        assert (np.diff(seq) % 2**14 == 1).all()
        assert all(p[0] >> 5 == 0b000 and p[2] >> 6 == 3 for p in pkts)   # version 0, unsegmented
        # the generated packets, in order, are what was sent (the tail that did not fit is not)
        flat, lengths = clean.packets[apid]
        assert b"".join(pkts) == flat[:sum(map(len, pkts))].tobytes()
    assert len(clean.truth["delivered_packets"]) == sum(len(p) for p in walked.values())


def test_housekeeping_fields_decode_with_ccsdspy(demo, clean):
    """Fields written by the simulator read back through ccsdspy (the definition's own reader)."""
    ccsdspy = import_ccsdspy()
    for apid in (100, 101, 102, 103):
        flat, lengths = clean.packets[apid]
        d = demo.apids[apid].packet_definition.load(io.BytesIO(flat.tobytes()))
        n = len(lengths)
        assert all(len(v) == n for v in d.values())
        if apid == 100:
            assert set(np.unique(d["heater_on"])) <= {0, 1}
            assert d["bus_voltage"].std() > 0 or n < 3
            assert (d["spare"] < 64).all()
    assert ccsdspy is not None


def test_time_codes_follow_the_onboard_clock(demo, clean):
    flat, lengths = clean.packets[100]
    rows = flat.reshape(-1, int(lengths[0]))
    a = demo.apids[100]
    t = timecodes.to_unix(timecodes.decode(rows[:, 6:12], "cuc:4,2"), a.epoch)
    assert (np.diff(t) > 0).all()
    assert sc.CLOCK_START <= t[0] <= sc.CLOCK_START + 86400 + 60
    # 2026: TAI - UTC = 37 s is inside the coarse count; decoding takes it out again
    raw = timecodes.decode(rows[:1, 6:12], "cuc:4,2")[0]
    assert abs(raw - (t[0] - timecodes.iso_to_unix(timecodes.CCSDS_EPOCH)) - 37) < 1e-3


def test_clock_start_sets_the_onboard_clock_and_nothing_else(demo, clean):
    start = 1800000000.0   # 2027-01-15: after no leap second beyond 2017's, so TAI-UTC is 37
    sim = sc.simulate(demo, frames=N, seed=7, clock_start=start)
    flat, lengths = sim.packets[100]
    t = timecodes.to_unix(timecodes.decode(flat.reshape(-1, int(lengths[0]))[:, 6:12], "cuc:4,2"),
                          demo.apids[100].epoch)
    frame_seconds = len(clean.capture) / N * 8 / demo.link.bit_rate if demo.link.bit_rate else 1.0
    assert start <= t[0] <= start + 2 * frame_seconds
    assert (np.diff(t) > 0).all()
    # the same seed draws the same packets: only the time codes (and what hashes them) move
    assert sim.truth["packets"] == clean.truth["packets"]
    assert len(sim.capture) == len(clean.capture)
    with pytest.raises(ValueError, match="clock_start"):
        sc.simulate(demo, frames=N, seed=7, clock_start=float("nan"))


def test_field_bits_against_ccsdspy_unaligned_little_endian_arrays():
    ccsdspy = import_ccsdspy()
    from ccsdspy import PacketArray, PacketField
    # little-endian fields byte-aligned (ccsdspy reorders whole bytes); the rest anywhere
    fields = [PacketField("t", "uint", 32), PacketField("le", "uint", 16, byte_order="little"),
              PacketField("f", "float", 32), PacketField("flag", "uint", 1), PacketField("mode", "uint", 3),
              PacketField("odd", "int", 13), PacketArray("arr", "int", 12, array_shape=3),
              PacketField("pad", "uint", 11), PacketField("big", "uint", 64)]
    definition = ccsdspy.FixedLength(fields)
    length = 6 + sum(f._bit_length * (3 if f._name == "arr" else 1) for f in fields) // 8
    rng = np.random.default_rng(1)
    lay = definitions.layout(definition)
    assert lay.length == length
    body = np.zeros((30, length), np.uint8)
    t = sc.CLOCK_START + np.arange(30) * 10.0
    written = sim_packets.fill_fields(rng, body, lay, t, np.arange(30))
    body[:, :6] = pk.pack_primary_headers(300, np.arange(30), length - 7)
    got = definition.load(io.BytesIO(body.tobytes()))
    for e in lay.elements:
        name, dtype, bits = e.label(lay.fields), lay.fields[e.field].data_type, e.bit_length
        raw = written[name]
        if dtype == "int":
            want = np.where(raw >= 2 ** (bits - 1), raw.astype(np.int64) - 2 ** bits, raw.astype(np.int64))
        elif dtype == "float":
            want = raw.astype(np.uint32).view(np.float32)
        else:
            want = raw
        key, idx = (name.split("[")[0], int(name[-2])) if "[" in name else (name, None)
        have = got[key] if idx is None else got[key][:, idx]
        assert np.array_equal(np.asarray(have).astype(want.dtype), want), name


def test_frames_and_packets_levels(demo, clean):
    fr = sc.simulate(demo, frames=N, seed=7, level="frames")
    assert fr.capture == clean.frames.tobytes()
    assert fr.truth["packets"] == clean.truth["packets"]
    assert fr.truth["frames"]["total"] == N and fr.truth["sync"]["bits_in"] == len(fr.capture) * 8
    pkt = sc.simulate(demo, frames=N, seed=7, level="packets")
    assert pkt.truth["frames"]["total"] == 0 and pkt.truth["idle_packets"] == 0
    # the packet stream is the delivered packets, no idle ones
    data = pkt.capture
    p, count = 0, {}
    while p < len(data):
        apid = ((data[p] & 7) << 8) | data[p + 1]
        count[apid] = count.get(apid, 0) + 1
        p += ((data[p + 4] << 8) | data[p + 5]) + 7
    assert p == len(data)
    assert {str(k): v for k, v in count.items()} == {k: v["count"] for k, v in pkt.truth["packets"].items()}


# --------------------------------------------------------------------------- truth consistency

def _consistent(truth):
    f = truth["frames"]
    assert f["clean"] + f["corrected"] + f["uncorrectable"] == f["total"]
    delivered = f["clean"] + f["corrected"] - f["rejected"] - f["crc_failed"]
    assert delivered == sum(v["frames"] for v in truth["virtual_channels"].values())
    assert f["idle"] == sum(v["idle"] for v in truth["virtual_channels"].values())
    assert truth["rejects"].get("rs_uncorrectable", 0) == f["uncorrectable"]
    assert truth["rejects"].get("crc", 0) == f["crc_failed"]
    assert sum(v for k, v in truth["rejects"].items() if k not in ("crc", "rs_uncorrectable")) == f["rejected"]
    for p in truth["packets"].values():
        assert p["sequence_missing"] >= p["sequence_gaps"] * 0 and p["bytes"] >= 7 * p["count"]
    assert set(truth["packet_md5"]) == {k for k, v in truth["packets"].items() if v["count"]}


@pytest.mark.parametrize("imp", [
    {}, {"lost_frames": 3}, {"byte_errors_per_codeword": 16}, {"byte_errors_per_codeword": 17},
    {"byte_errors_per_codeword": 17, "byte_error_fraction": 0.3}, {"bit_error_rate": 3e-3},
    {"garbage_bytes": 2}, {"bit_slips": 3, "slip_bits": 9}, {"truncate_last": True},
    {"inverted": True, "polarity_flips": 2, "bit_offset": 5},
])
def test_truth_adds_up(demo, imp):
    s = _sim(demo, **imp)
    _consistent(s.truth)
    assert s.truth["exact"] is True
    assert s.truth["sync"]["bits_in"] == 8 * len(s.capture)


def test_clean_truth(clean):
    t = clean.truth
    assert t["frames"]["total"] == t["frames"]["clean"] == N
    assert t["frames"]["idle"] == t["virtual_channels"].get("7", {}).get("idle", 0)
    assert all(v["gaps"] == 0 for v in t["virtual_channels"].values())
    assert all(p["sequence_gaps"] == 0 and p["dropped_incomplete"] == 0 for p in t["packets"].values())
    assert t["rejects"] == {}


# --------------------------------------------------------------------------- impairments

def test_lost_frames_make_counters_jump(demo, clean):
    s = sc.simulate(demo, frames=N, seed=7, level="frames", impairments=sc.Impairments(lost_frames=4))
    f = np.frombuffer(s.capture, np.uint8).reshape(-1, 1115)
    assert f.shape[0] == N - 4
    h = tm.decode_primary_header(f)
    assert int(((np.diff(h["mcfc"].astype(int)) - 1) % 256).sum()) <= 4
    jumps = sum(int(((np.diff(h["vcfc"][h["vcid"] == v].astype(int)) - 1) % 256).sum()) for v in (0, 1, 7))
    lost_in_truth = sum(v["frames_lost"] for v in s.truth["virtual_channels"].values())
    assert jumps == lost_in_truth and 0 < lost_in_truth <= 4
    assert sum(v["gaps"] for v in s.truth["virtual_channels"].values()) > 0
    mc = s.truth["master_channel"]
    assert mc["frames_lost"] == int(((np.diff(h["mcfc"].astype(int)) - 1) % 256).sum()) and mc["gaps"] >= 1
    assert sum(v["frames"] for v in s.truth["virtual_channels"].values()) == N - 4


@pytest.mark.parametrize("k", [0, 1, 16, 17])
def test_byte_errors_per_codeword_exact(demo, clean, k):
    s = _sim(demo, byte_errors_per_codeword=k)
    cb = len(clean.capture) // N
    a = np.frombuffer(clean.capture, np.uint8).reshape(N, cb)[:, 4:]
    b = np.frombuffer(s.capture, np.uint8).reshape(N, cb)[:, 4:]
    per_codeword = (a != b).reshape(N, -1, 5).sum(axis=1)
    assert (per_codeword == k).all()
    f = s.truth["frames"]
    if k <= 16:
        assert f["uncorrectable"] == 0 and s.truth["rs_symbols_corrected"] == k * 5 * N
        assert f["corrected"] == (N if k else 0)
        assert s.truth["packets"] == clean.truth["packets"]
    else:
        assert f["uncorrectable"] == N and s.truth["rs_symbols_corrected"] == 0
        assert s.truth["packets"] == {} and s.truth["virtual_channels"] == {}


def test_inverted_is_the_complement(demo, clean):
    s = _sim(demo, inverted=True)
    assert bytes(b ^ 0xFF for b in s.capture) == clean.capture
    assert s.truth["sync"]["inverted_codeblocks"] == N
    assert s.truth["packets"] == clean.truth["packets"]


def test_polarity_flips_at_cadu_boundaries(demo, clean):
    s = _sim(demo, polarity_flips=3)
    cadu = len(clean.capture) // N
    x = (np.frombuffer(s.capture, np.uint8) ^ np.frombuffer(clean.capture, np.uint8)).reshape(N, cadu)
    assert ((x == 0).all(axis=1) | (x == 0xFF).all(axis=1)).all()
    inverted = (x == 0xFF).all(axis=1)
    assert int(np.count_nonzero(np.diff(inverted.astype(int)))) == 3
    assert s.truth["sync"]["inverted_codeblocks"] == int(inverted.sum())


def test_bit_offset_shifts_the_stream(demo, clean):
    s = _sim(demo, bit_offset=11)
    bits = np.unpackbits(np.frombuffer(s.capture, np.uint8))
    ref = np.unpackbits(np.frombuffer(clean.capture, np.uint8))
    assert np.array_equal(bits[11:11 + ref.size], ref)
    assert len(s.capture) == (ref.size + 11 + 7) // 8
    assert s.truth["packets"] == clean.truth["packets"]


def test_truncated_last_cadu(demo, clean):
    s = _sim(demo, truncate_last=True)
    assert len(s.capture) < len(clean.capture) and clean.capture.startswith(s.capture)
    cadu = len(clean.capture) // N
    assert len(s.capture) > (N - 1) * cadu + 4
    assert s.truth["rejects"]["truncated"] == 1 and s.truth["frames"]["total"] == N


def test_garbage_between_cadus(demo, clean):
    s = _sim(demo, garbage_bytes=2, garbage_length=30)
    extra = len(s.capture) - len(clean.capture)
    assert 2 <= extra <= 60
    # each CADU is still there, whole, after the inserted bytes
    cadu = len(clean.capture) // N
    for r in range(N):
        assert clean.capture[r * cadu:(r + 1) * cadu] in s.capture
    assert s.truth["sync"]["lock_losses"] == 2
    assert s.truth["frames"]["total"] == N


def test_bit_slips_change_length_by_the_slipped_bits(demo, clean):
    s = _sim(demo, bit_slips=4, slip_bits=3)
    bits = len(s.capture) * 8
    assert bits != len(clean.capture) * 8 or s.capture != clean.capture
    assert abs(bits - len(clean.capture) * 8) <= 4 * 3 + 7
    _consistent(s.truth)


def test_bit_errors(demo, clean):
    s = _sim(demo, bit_error_rate=2e-3)
    x = np.unpackbits(np.frombuffer(s.capture, np.uint8) ^ np.frombuffer(clean.capture, np.uint8))
    expect = 2e-3 * x.size
    assert 0.7 * expect < x.sum() < 1.3 * expect
    f = s.truth["frames"]
    assert f["corrected"] + f["uncorrectable"] > 0


def test_channel_decoder_agrees_with_truth(demo):
    """The real synchroniser and RS decoder count what the truth says (channel half of replay)."""
    s = _sim(demo, bit_error_rate=1e-3, garbage_bytes=1, bit_slips=2, slip_bits=4, bit_offset=3,
             polarity_flips=1, byte_errors_per_codeword=17, byte_error_fraction=0.1, truncate_last=True)
    dec = ChannelDecoder(channel_config(demo))
    dec.push(np.frombuffer(s.capture, np.uint8))
    dec.flush()
    st_ = dec.stats
    f = s.truth["frames"]
    truncated = st_["sync"]["truncated"]
    assert st_["frames"]["total"] + truncated == f["total"]
    assert st_["frames"]["uncorrectable"] == f["uncorrectable"]
    assert st_["frames"]["corrected"] == f["corrected"]
    assert st_["rs_symbols_corrected"] == s.truth["rs_symbols_corrected"]
    for k in ("bits_in", "lock_losses", "inverted_codeblocks"):
        assert st_["sync"][k] == s.truth["sync"][k], k


# --------------------------------------------------------------------------- AOS

AOS_TOML = """
[mission]
name = "aos-test"
spacecraft_id = 200
[link]
frame_type = "AOS"
frame_length = 446
reed_solomon = "255,223"
interleave = 2
fecf = true
fhec = true
insert_zone = 6
ocf = false
[link.insert_zone_time]
offset = 0
length = 6
byteorder = "little"
unit = 1.52587890625e-05
epoch = "2020-01-01T00:00:00Z"
[[virtual_channels]]
id = 3
name = "hk"
data = "packets"
ocf = true
[[virtual_channels]]
id = 9
name = "raw"
data = "vca"
[[apids]]
id = 5
name = "a5"
time = "cds:16,16"
[[apids]]
id = 6
name = "a6"
"""


# --------------------------------------------------------------------------- files, errors


@pytest.mark.parametrize("kwargs,match", [
    ({"level": "iq"}, "level"),
    ({"frames": 0}, "frames"),
    ({"level": "frames", "impairments": sc.Impairments(inverted=True)}, "only at level"),
    ({"level": "packets", "impairments": sc.Impairments(lost_frames=1)}, "packets"),
    ({"impairments": sc.Impairments(lost_frames=10_000)}, "lose"),
    ({"impairments": sc.Impairments(byte_errors_per_codeword=300)}, "exceeds"),
])
def test_bad_arguments_raise_value_error(demo, kwargs, match):
    kwargs = {"frames": 20, **kwargs}
    with pytest.raises(ValueError, match=match):
        sc.simulate(demo, seed=1, **kwargs)


@pytest.mark.parametrize("field,value", [("bit_error_rate", -1), ("bit_error_rate", 0.5), ("lost_frames", -1),
                                         ("slip_bits", 0), ("byte_error_fraction", 2.0)])
def test_bad_impairments(field, value):
    with pytest.raises(ValueError, match=field):
        sc.Impairments(**{field: value})


@pytest.mark.slow
def test_demo_fixture_is_up_to_date():
    import subprocess
    import sys
    r = subprocess.run([sys.executable, str(ROOT / "fixtures" / "make_fixtures.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_flywheel_codeblock_that_rs_corrects():
    """Garbage before the last CADU: the receiver cannot verify a resync, delivers the
    codeblock at the predicted position, and (I = 4, full-length RS) that shifted block is
    a few symbols from a codeword: RS 'corrects' it and the frame checks refuse it."""
    m = load_mission(ROOT / "fixtures" / "missions" / "snpp.toml")
    s = sc.simulate(m, frames=3, seed=2, impairments=sc.Impairments(garbage_bytes=1, garbage_length=12))
    f = s.truth["frames"]
    assert f["total"] == 3 and f["corrected"] == 1 and f["rejected"] == 1 and s.truth["rejects"] == {"version": 1}
    dec = ChannelDecoder(channel_config(m))
    batch = dec.push(np.frombuffer(s.capture, np.uint8))
    rest = dec.flush()
    q = np.concatenate([batch.quality, rest.quality])
    assert list(q["sync_state"]) == [0, 1, 2]          # search, lock, flywheel
    assert dec.stats["frames"]["corrected"] == 1 and dec.stats["rs_symbols_corrected"] == s.truth["rs_symbols_corrected"]


NO_RS_TOML = """
[mission]
name = "plain"
spacecraft_id = 700
[link]
frame_type = "TM"
frame_length = 256
reed_solomon = "none"
fecf = {fecf}
tm_secondary_header = 5
[[virtual_channels]]
id = 2
name = "a"
[[apids]]
id = 77
name = "x"
time = "cuc:4,3"
"""


def ref_tm_check(frame: bytes, scid: int, sec_len: int, ocf: bool, fecf: bool) -> str:
    """Slow reference of the TM frame checks, in the decoder's order, then the FECF."""
    import binascii
    if frame[0] >> 6 != 0:
        return "version"
    if ((frame[0] & 0x3F) << 4 | frame[1] >> 4) != scid:
        return "scid"
    has_sec = frame[4] >> 7
    if (has_sec != (sec_len > 0)) or (sec_len and (frame[6] & 0x3F) + 1 != sec_len) or (frame[1] & 1) != ocf:
        return "frame_length"
    if fecf and binascii.crc_hqx(frame[:-2], 0xFFFF) != int.from_bytes(frame[-2:], "big"):
        return "crc"
    return ""


def test_calibrated_fields_sit_in_their_units_range(demo):
    s = sc.simulate(demo, frames=200, seed=4, level="packets")
    ranges = {"V": (0, 40), "A": (0, 5), "degC": (-20, 45), "%": (0, 100), "rpm": (-3000, 3000)}
    checked = 0
    for apid in (100, 101, 102, 103):
        a = demo.apids[apid]
        flat, _ = s.packets[apid]
        d = a.packet_definition.load(io.BytesIO(flat.tobytes()))
        for name, meta in a.fields.items():
            if meta.units in ranges and meta.calibration:
                a0, a1 = (float(x) for x in meta.calibration[5:].split(","))
                eng = a0 + a1 * np.asarray(d[name], np.float64)
                lo, hi = ranges[meta.units]
                slack = 0.05 * (hi - lo) + abs(a1)
                assert lo - slack <= eng.min() and eng.max() <= hi + slack, (name, eng.min(), eng.max())
                checked += 1
    assert checked >= 8
