"""Telemetry decoding: mixed-APID batches equal ccsdspy on the same bytes; calibrations; time codes; rejects."""
from __future__ import annotations

import io
import logging
import math
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from groundseg import telemetry
from groundseg.link.records import PACKET_DTYPE, PacketBatch
from groundseg.mission import import_ccsdspy, load_mission

ccsdspy = import_ccsdspy()
ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "fixtures" / "missions" / "demo.toml"
EPOCH_1958 = -378691200.0
TAI_UTC_NOW = 37          # TAI - UTC since 2017-01-01


# -- slow, obviously-correct references ----------------------------------------------------

def packet(apid: int, seq: int, body: bytes, sec_hdr: int = 1) -> bytes:
    """A Space Packet (133.0-B): version 0, TM, the given secondary-header flag, unsegmented."""
    assert len(body) >= 1
    word0 = (sec_hdr << 11) | apid
    return struct.pack(">HHH", word0, 0xC000 | (seq & 0x3FFF), len(body) - 1) + body


def batch(packets: list[bytes], frame_time: float | list[float] = math.nan) -> PacketBatch:
    """A PacketBatch built packet by packet in Python, header fields read bit by bit."""
    data = np.frombuffer(b"".join(packets), np.uint8).copy()
    offsets = np.zeros(len(packets) + 1, np.int64)
    header = np.zeros(len(packets), PACKET_DTYPE)
    for i, p in enumerate(packets):
        offsets[i + 1] = offsets[i] + len(p)
        word0, word1, _ = struct.unpack(">HHH", p[:6])
        header[i]["apid"] = word0 & 0x7FF
        header[i]["version"] = word0 >> 13
        header[i]["type"] = (word0 >> 12) & 1
        header[i]["sec_hdr"] = (word0 >> 11) & 1
        header[i]["seq_flags"] = word1 >> 14
        header[i]["seq_count"] = word1 & 0x3FFF
        header[i]["length"] = len(p)
        header[i]["frame_time"] = frame_time[i] if isinstance(frame_time, list) else frame_time
        header[i]["reception_time"] = float(i)
    return PacketBatch(data, offsets, header)


def apid_of(p: bytes) -> int:
    return ((p[0] & 7) << 8) | p[1]


def ccsdspy_truth(csv_path: Path, packets: list[bytes], tmp_path: Path) -> dict:
    """ccsdspy's own reading of the CSV, decoding a file of the packets."""
    f = tmp_path / "truth.bin"
    f.write_bytes(b"".join(packets))
    return ccsdspy.FixedLength.from_file(str(csv_path)).load(str(f))


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.fixture(scope="module")
def demo():
    return load_mission(DEMO)


def random_packets(mission, rng, n: int, apids=(100, 101, 102, 103, 200)) -> list[bytes]:
    out = []
    seq = {a: 0 for a in apids}
    for _ in range(n):
        a = int(rng.choice(apids))
        length = mission.apids[a].packet_length or int(rng.integers(7, 80))
        out.append(packet(a, seq[a], rng.integers(0, 256, length - 6, dtype=np.uint8).tobytes()))
        seq[a] += 1
    return out


# -- tests --------------------------------------------------------------------------------


@settings(deadline=None, max_examples=25)
@given(st.lists(st.tuples(st.sampled_from([100, 102, 200, 7]), st.integers(0, 2 ** 32 - 1)),
                max_size=40))
def test_grouping_matches_reference(plan):
    mission = load_mission(DEMO)
    pk = []
    for i, (apid, seed) in enumerate(plan):
        rng = np.random.default_rng(seed)
        length = mission.apids[apid].packet_length if apid in mission.apids and \
            mission.apids[apid].packet_length else int(rng.integers(7, 40))
        pk.append(packet(apid, i, rng.integers(0, 256, length - 6, dtype=np.uint8).tobytes()))
    decoded, rejects = telemetry.decode(batch(pk), mission)
    reference: dict[int, list[bytes]] = {}
    for p in pk:
        reference.setdefault(apid_of(p), []).append(p)
    assert rejects == {}
    assert set(decoded) == set(reference)
    for apid, mine in reference.items():
        dec = decoded[apid]
        assert [dec.packets.packet(i) for i in range(len(dec.packets))] == mine
        assert dec.onboard_time.shape == (len(mine),)
        if apid in (100, 102):
            definition = mission.apids[apid].packet_definition
            truth = definition.load(io.BytesIO(b"".join(mine)))
            for k, v in truth.items():
                assert same(dec.raw_fields.get(k, dec.fields[k]), v)


def test_calibration_and_units(demo):
    # hk: bus_voltage (poly 0 + 0.001 x) at body bytes 8..9, battery_temp int16 (0.01 x) at 14..15
    raws = [(0, -1), (12000, 2500), (65535, -32768)]
    pk = []
    for i, (volts, temp) in enumerate(raws):
        body = bytearray(20)
        body[8:10] = volts.to_bytes(2, "big")
        body[14:16] = temp.to_bytes(2, "big", signed=True)
        pk.append(packet(100, i, bytes(body)))
    dec = telemetry.decode(batch(pk), demo)[0][100]
    for i, (volts, temp) in enumerate(raws):
        assert dec.raw_fields["bus_voltage"][i] == volts
        assert dec.fields["bus_voltage"][i] == pytest.approx(0.0 + 0.001 * volts)
        assert dec.fields["battery_temp"][i] == pytest.approx(0.01 * temp)
    assert dec.units["bus_voltage"] == "V" and dec.units["battery_temp"] == "degC"
    assert dec.calibration["bus_voltage"] == "poly:0.0,0.001"
    assert "mode" not in dec.raw_fields and dec.fields["mode"].dtype.kind == "u"


def test_calibrated_arrays(demo):
    body = bytearray(26)
    for k in range(4):
        body[6 + 2 * k:8 + 2 * k] = (1000 * (k + 1)).to_bytes(2, "big")
    dec = telemetry.decode(batch([packet(101, 0, bytes(body))]), demo)[0][101]
    assert dec.fields["sa_voltage"].shape == (1, 4)
    assert dec.fields["sa_voltage"][0].tolist() == pytest.approx([2.0, 4.0, 6.0, 8.0])


@settings(deadline=None, max_examples=60)
@given(st.sampled_from([">u2", "<i2", "u1", ">f4", "f8", ">u4"]),
       st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=4),
       st.integers(0, 2 ** 31))
def test_polynomial_matches_horner_in_float64(dtype, coeffs, seed):
    """polynomial() against Horner's rule on counts cast to float64 first, value for
    value: a float32 count is not calibrated in float32 (the archive calibrates its
    stored counts on read with it)."""
    rng = np.random.default_rng(seed)
    raw = (rng.random((50, 3)) * 200 - (0 if "u" in dtype else 100)).astype(dtype)
    x = raw.astype(np.float64)
    want = np.full(raw.shape, coeffs[-1])
    for c in coeffs[-2::-1]:
        want = want * x + c
    got = telemetry.polynomial(raw, tuple(coeffs))
    assert got.dtype == np.float64
    # bit for bit: the archive's calibration kernel (archive/calibration.py) is held to
    # polynomial() exactly, and polynomial() to this order of operations
    np.testing.assert_array_equal(got.view(np.uint64), want.view(np.uint64))


def cuc_bytes(seconds: float) -> bytes:
    coarse = int(seconds)
    fine = int((seconds - coarse) * 65536)
    return coarse.to_bytes(4, "big") + fine.to_bytes(2, "big")


def test_cuc_onboard_time(demo):
    since_1958 = [2_155_000_000.5, 2_155_000_001.25, 2_155_003_600.0]
    pk = [packet(100, i, cuc_bytes(s) + bytes(14)) for i, s in enumerate(since_1958)]
    dec = telemetry.decode(batch(pk, frame_time=123.0), demo)[0][100]
    expected = [EPOCH_1958 + s - TAI_UTC_NOW for s in since_1958]   # CUC since 1958 counts TAI
    assert dec.onboard_time.tolist() == pytest.approx(expected, abs=1e-6)


def _mission(tmp_path: Path, apid_lines: str, csv: str) -> object:
    (tmp_path / "p.csv").write_text(csv)
    (tmp_path / "m.toml").write_text(
        f'[mission]\nname = "t"\n[[apids]]\nid = 300\nname = "p"\ndefinition = "p.csv"\n{apid_lines}\n')
    return load_mission(tmp_path / "m.toml")


def test_time_falls_back_to_frame_time(demo):
    # no secondary header: no time code in the packet -> the frame's insert-zone time
    with_code = packet(100, 0, cuc_bytes(2_155_000_000.0) + bytes(14))
    without = packet(100, 1, cuc_bytes(2_155_000_000.0) + bytes(14), sec_hdr=0)
    raw = packet(200, 0, b"abc")
    dec = telemetry.decode(batch([with_code, without, raw], frame_time=[1.0, 2.0, 3.0]), demo)[0]
    assert dec[100].onboard_time[1] == 2.0 and dec[100].onboard_time[0] != 1.0
    assert dec[200].onboard_time.tolist() == [3.0]
    assert math.isnan(telemetry.decode(batch([raw]), demo)[0][200].onboard_time[0])


def test_undeclared_apid_is_raw(demo):
    dec, rejects = telemetry.decode(batch([packet(1234, 0, b"xyz"), packet(1234, 1, b"uv")]), demo)
    assert rejects == {} and dec[1234].fields == {} and dec[1234].name == "apid1234"
    assert len(dec[1234].packets) == 2


def test_wrong_length_is_counted_not_decoded(demo):
    good = [packet(100, i, bytes(range(i, i + 20))) for i in range(3)]
    short = packet(100, 3, bytes(10))
    long = packet(100, 4, bytes(30))
    dec, rejects = telemetry.decode(batch([good[0], short, good[1], long, good[2]]), demo)
    assert rejects == {"packet_length": 2}
    hk = dec[100]
    assert hk.rejects == {"packet_length": 2}
    assert [hk.rejected.packet(i) for i in range(2)] == [short, long]
    assert [hk.packets.packet(i) for i in range(3)] == good
    assert hk.fields["mode"].tolist() == [6, 7, 8]
    only_bad = telemetry.decode(batch([short]), demo)
    assert only_bad[1] == {"packet_length": 1} and len(only_bad[0][100].packets) == 0


def test_empty_batch(demo):
    assert telemetry.decode(PacketBatch.empty(), demo) == ({}, {})


def test_ccsdspy_stays_quiet(demo, capfd, caplog):
    # sequence gaps and out-of-order counts make ccsdspy log warnings: the library must not print
    pk = [packet(100, s, bytes(20)) for s in (5, 1, 9)]
    with caplog.at_level(logging.DEBUG):
        telemetry.decode(batch(pk), demo)
    assert not [r for r in caplog.records if r.name.startswith("ccsdspy")]
    out, err = capfd.readouterr()
    assert out == "" and "ccsdspy" not in err


@settings(deadline=None, max_examples=200)
@given(st.lists(st.tuples(st.sampled_from([0, 1, 7, 200, 2047, 9000]), st.integers(0, 40)),
                max_size=60), st.integers(0, 2 ** 32 - 1))
def test_group_kernel_equals_a_stable_argsort(packets, seed):
    """The counting-sort kernel groups bytes, offsets and header rows as a stable argsort
    by APID and two gathers would (empty packets and a lone APID included)."""
    rng = np.random.default_rng(seed)
    apids = np.array([a for a, _ in packets], np.uint16)
    lengths = np.array([k for _, k in packets], np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    data = rng.integers(0, 256, offsets[-1], dtype=np.uint8)
    rows = rng.integers(0, 256, (len(packets), 30), dtype=np.uint8)
    out, new_offsets, new_rows, bounds, group_apids = telemetry._group_by_apid(data, offsets, apids, rows)
    order = np.argsort(apids, kind="stable")
    assert out.tobytes() == b"".join(data[offsets[j]:offsets[j + 1]].tobytes() for j in order)
    assert new_offsets.tolist() == [0] + np.cumsum(lengths[order]).tolist()
    assert np.array_equal(new_rows, rows[order])
    present = sorted(set(apids.tolist()))
    assert group_apids.tolist() == present
    assert np.diff(bounds).tolist() == [int((apids == a).sum()) for a in present]
    assert bounds[-1] == len(packets)


@st.composite
def definitions(draw):
    """Random fixed-length layouts within what the one-pass kernel claims to reproduce."""
    explicit = draw(st.booleans())
    cursor, fields = 48, []
    for i in range(draw(st.integers(1, 7))):
        dtype = draw(st.sampled_from(["uint", "int", "float"]))
        if dtype == "float":
            bits, order = draw(st.sampled_from([32, 64])), draw(st.sampled_from(["big", "little"]))
        else:
            order = draw(st.sampled_from(["big", "big", "little"]))
            bits = draw(st.sampled_from([16, 32, 64])) if order == "little" else draw(st.integers(1, 57))
        count = draw(st.sampled_from([None, None, 2, 3]))
        aligned = dtype == "float" or order == "little"
        if aligned and cursor % 8:
            pad = 8 - cursor % 8
            if explicit:
                cursor += pad                         # a gap: explicit offsets skip it
            else:
                fields.append(ccsdspy.PacketField(name=f"pad{i}", data_type="uint", bit_length=pad))
                cursor += pad
        kw = dict(name=f"f{i}", data_type=dtype, bit_length=bits, byte_order=order)
        if explicit:
            kw["bit_offset"] = cursor
        fields.append(ccsdspy.PacketArray(array_shape=count, **kw) if count else ccsdspy.PacketField(**kw))
        cursor += bits * (count or 1)
        if explicit:
            cursor += draw(st.integers(0, 9))
    return ccsdspy.FixedLength(fields), (cursor + 7) // 8


@settings(deadline=None, max_examples=60)
@given(definitions(), st.integers(0, 3), st.integers(1, 40), st.integers(0, 2 ** 32 - 1))
def test_one_pass_kernel_equals_ccsdspy(defn_and_length, extra, n, seed):
    definition, length = defn_and_length
    layout = telemetry._layout(definition)
    assert layout is not None
    length += extra
    rng = np.random.default_rng(seed)
    pk = [packet(300, i, rng.integers(0, 256, length - 6, dtype=np.uint8).tobytes()) for i in range(n)]
    data = np.frombuffer(b"".join(pk), np.uint8)
    mine = layout.decode(data, np.arange(n, dtype=np.int64) * length)
    truth = definition.load(io.BytesIO(data.tobytes()))
    assert list(mine) == list(truth)
    for k in truth:
        assert same(mine[k], truth[k]), k


def test_kernel_declines_what_it_cannot_reproduce():
    mixed = ccsdspy.FixedLength([ccsdspy.PacketField(name="a", data_type="uint", bit_length=16,
                                                     byte_order="3412")])
    assert telemetry._layout(mixed) is None
    odd_le = ccsdspy.FixedLength([ccsdspy.PacketField(name="a", data_type="uint", bit_length=24,
                                                      byte_order="little")])
    assert telemetry._layout(odd_le) is None
    text = ccsdspy.FixedLength([ccsdspy.PacketField(name="a", data_type="str", bit_length=16)])
    assert telemetry._layout(text) is None


@settings(deadline=None, max_examples=40)
@given(st.lists(st.tuples(st.sampled_from([100, 101, 103, 200, 5]), st.integers(7, 70)), max_size=30))
def test_any_lengths_are_decoded_or_counted(plan):
    """Junk of any length never crashes: every packet is delivered or counted as rejected."""
    mission = load_mission(DEMO)
    pk = [packet(apid, i, bytes((i * 7 + k) & 0xFF for k in range(length - 6)))
          for i, (apid, length) in enumerate(plan)]
    decoded, rejects = telemetry.decode(batch(pk), mission)
    delivered = sum(len(d.packets) for d in decoded.values())
    assert delivered + rejects.get("packet_length", 0) == len(pk)
    for apid, d in decoded.items():
        expected = mission.apids[apid].packet_length if apid in mission.apids else None
        if expected:
            assert np.all(np.diff(d.packets.offsets) == expected)
            assert all(len(v) == len(d.packets) for v in d.fields.values())
        assert len(d.rejected) == d.rejects.get("packet_length", 0)


def test_grouped_headers_follow_their_packets(demo):
    rng = np.random.default_rng(13)
    pk = [packet(int(a), i, rng.integers(0, 256, 30, dtype=np.uint8).tobytes())
          for i, a in enumerate(rng.choice([7, 200, 201], 60))]
    b = batch(pk)
    b.header["reception_time"] = np.arange(len(pk), dtype=np.float64)
    decoded, _ = telemetry.decode(b, demo)
    for apid, dec in decoded.items():
        idx = np.flatnonzero(b.header["apid"] == apid)
        assert dec.packets.header.tobytes() == b.header[idx].tobytes()


@settings(deadline=None, max_examples=200)
@given(st.integers(1, 7), st.integers(0, 10), st.booleans(), st.integers(0, 12),
       st.lists(st.integers(0, 40), min_size=1, max_size=8), st.integers(0, 2 ** 32 - 1))
def test_cuc_kernel_equals_time_code_decoding(coarse, fine, pfield, offset, lengths, seed):
    """The one-pass CUC kernel gives what the code bytes decoded by timecodes give, bit for
    bit, and refuses the packets too short to hold the code."""
    from groundseg.mission.model import TimeCode
    code = TimeCode("cuc", offset=offset, pfield=pfield, coarse=coarse, fine=fine)
    rng = np.random.default_rng(seed)
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = rng.integers(0, 256, int(offsets[-1]), dtype=np.uint8)
    got, ok = telemetry._cuc_seconds(data, offsets, np.int64(offset + pfield), np.int64(coarse), np.int64(fine))
    rows, want_ok = telemetry._time_rows(data, offsets, np.int64(code.offset), np.int64(code.length))
    want = telemetry.time_code_seconds(rows, code)
    assert ok.tolist() == want_ok.tolist()
    assert got[ok].tobytes() == want[ok].tobytes()
