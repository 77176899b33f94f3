"""Telemetry decoding: mixed-APID batches equal ccsdspy on the same bytes; calibrations; time codes; rejects - the tests that read or write files (tests/unit opens none)."""
from __future__ import annotations

import io
import struct
import numpy as np
import pytest
from groundseg import telemetry
from tests.unit.test_telemetry import (_mission, apid_of, batch, ccsdspy, ccsdspy_truth, demo, packet, random_packets, same)  # noqa: F401


def test_mixed_batch_equals_ccsdspy_per_apid(demo, tmp_path):
    rng = np.random.default_rng(7)
    pk = random_packets(demo, rng, 300)
    decoded, rejects = telemetry.decode(batch(pk), demo)
    assert rejects == {}
    assert sorted(decoded) == sorted({apid_of(p) for p in pk})
    for apid, dec in decoded.items():
        mine = [p for p in pk if apid_of(p) == apid]
        assert [dec.packets.packet(i) for i in range(len(dec.packets))] == mine
        assert dec.packets.header["reception_time"].tolist() == [float(i) for i, p in enumerate(pk)
                                                                  if apid_of(p) == apid]
        a = demo.apids[apid]
        assert dec.name == a.name
        if a.definition is None:
            assert dec.fields == {}
            continue
        truth = ccsdspy_truth(a.definition, mine, tmp_path)
        assert list(dec.fields) == list(truth)
        for k, v in truth.items():
            assert same(dec.raw_fields.get(k, dec.fields[k]), v), (apid, k)

def test_cds_and_pfield_and_epoch(tmp_path):
    csv = "name,data_type,bit_length\npf,uint,8\nday,uint,16\nms,uint,32\nus,uint,16\nx,uint,8\n"
    m = _mission(tmp_path, 'time = "cds:16,2,pfield"\nepoch = "2000-01-01T00:00:00Z"', csv)
    day, ms, us = 9000, 45_296_789, 321
    body = bytes([0x41]) + day.to_bytes(2, "big") + ms.to_bytes(4, "big") + us.to_bytes(2, "big") + b"\x07"
    dec = telemetry.decode(batch([packet(300, 0, body)]), m)[0][300]
    expected = 946684800.0 + day * 86400 + ms / 1e3 + us / 1e6          # agency epoch: UTC, no leap
    assert dec.onboard_time[0] == pytest.approx(expected, abs=1e-6)
    assert dec.fields["day"][0] == day and dec.fields["x"][0] == 7

def test_variable_length_definition_equals_ccsdspy(tmp_path):
    csv = "name,data_type,bit_length,units\ncount,uint,8,\nsamples,uint(expand),16,counts\n"
    m = _mission(tmp_path, "", csv)
    assert m.apids[300].variable
    pk = [packet(300, i, bytes([i]) + bytes(range(2 * i))) for i in range(1, 6)]
    dec, rejects = telemetry.decode(batch(pk), m)
    truth = ccsdspy.VariableLength.from_file(str(tmp_path / "p.csv")).load(io.BytesIO(b"".join(pk)))
    assert rejects == {}
    assert dec[300].fields["count"].tolist() == truth["count"].tolist() == [1, 2, 3, 4, 5]
    for got, want in zip(dec[300].fields["samples"], truth["samples"]):
        assert same(got, want)

def test_byte_order_column(tmp_path):
    csv = ("name,data_type,bit_length,byte_order\nle16,uint,16,little\nle32,int,32,little\n"
           "be16,uint,16,big\nmid,uint,32,3412\n")
    m = _mission(tmp_path, "", csv)
    body = bytes([0x34, 0x12, 0xFE, 0xFF, 0xFF, 0xFF, 0x12, 0x34, 1, 2, 3, 4])
    f = telemetry.decode(batch([packet(300, 0, body)]), m)[0][300].fields
    assert f["le16"][0] == int.from_bytes(body[0:2], "little") == 0x1234
    assert f["le32"][0] == int.from_bytes(body[2:6], "little", signed=True) == -2
    assert f["be16"][0] == 0x1234
    assert f["mid"][0] == int.from_bytes(bytes([3, 4, 1, 2]), "big")

def test_csv_without_byte_order_equals_ccsdspy_from_file(tmp_path):
    csv = "name,data_type,bit_length,bit_offset\na,uint,3,48\nb,int,13,51\nc,float,32,64\nd,uint(3),8,96\n"
    m = _mission(tmp_path, "", csv)
    rng = np.random.default_rng(3)
    pk = [packet(300, i, rng.integers(0, 256, 9, dtype=np.uint8).tobytes()) for i in range(10)]
    assert m.apids[300].packet_length == 15
    dec = telemetry.decode(batch(pk), m)[0][300]
    truth = ccsdspy_truth(tmp_path / "p.csv", pk, tmp_path)
    assert list(truth) == list(dec.fields)
    for k in truth:
        assert same(dec.fields[k], truth[k]), k

def test_variable_length_bad_packets_are_counted(tmp_path):
    csv = "name,data_type,bit_length\ncount,uint,8\nvalues,uint(count),16\n"
    m = _mission(tmp_path, "", csv)
    good = [packet(300, i, bytes([2]) + bytes(4)) for i in range(3)]
    bad = packet(300, 3, bytes([200]) + bytes(2))        # says 200 values, carries 1
    decoded, rejects = telemetry.decode(batch(good[:2] + [bad] + good[2:]), m)
    d = decoded[300]
    assert len(d.packets) + rejects.get("packet_length", 0) == 4
    if rejects:
        assert d.rejected.packet(0) == bad
    assert d.fields["count"].tolist()[:2] == [2, 2]

def test_calendar_fields_time(tmp_path):
    import datetime
    csv = ("name,data_type,bit_length\nyear,uint,16\ndoy,uint,16\nh,uint,8\nmi,uint,8\ns,uint,8\n"
           "us,uint,32\n")
    m = _mission(tmp_path, '[apids.time_fields]\nyear = "year"\nday = "doy"\nhour = "h"\n'
                           'minute = "mi"\nsecond = "s"\nmicrosecond = "us"', csv)
    stamps = [(2022, 84, 21, 43, 38, 273986), (2024, 366, 23, 59, 59, 999999), (0, 0, 0, 0, 0, 0)]
    pk = [packet(300, i, struct.pack(">HHBBBI", *st_)) for i, st_ in enumerate(stamps)]
    t = telemetry.decode(batch(pk, frame_time=[1.0, 2.0, 3.0]), m)[0][300].onboard_time
    for got, (y, d, h, mi, s, us) in zip(t[:2], stamps[:2]):
        ref = (datetime.datetime(y, 1, 1, tzinfo=datetime.timezone.utc) +
               datetime.timedelta(days=d - 1, hours=h, minutes=mi, seconds=s, microseconds=us)).timestamp()
        assert got == pytest.approx(ref, abs=1e-6)
    assert t[2] == 3.0               # year 0: no stamp, the frame time stays
