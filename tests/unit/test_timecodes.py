"""CCSDS time codes (301.0-B): CUC with/without P-field, CDS, epochs and leap seconds."""
from datetime import datetime, timezone

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from groundseg.link import timecodes as T


def reference_cuc(b: bytes, coarse: int, fine: int) -> float:
    c = int.from_bytes(b[:coarse], "big")
    f = int.from_bytes(b[coarse:coarse + fine], "big")
    return c + f / 256 ** fine


@settings(deadline=None, max_examples=60)
@given(coarse=st.integers(1, 4), fine=st.integers(0, 3), value=st.floats(0, 1, exclude_max=True))
def test_cuc_round_trip(coarse, fine, value):
    s = value * (256.0 ** coarse)
    b = T.encode_cuc([s], coarse, fine)
    assert b.shape == (1, coarse + fine)
    got = T.decode_cuc(b, coarse, fine)[0]
    assert got == reference_cuc(b[0].tobytes(), coarse, fine)
    assert s - 256.0 ** -fine <= got <= s + 1e-9
    assert T.decode(b, f"cuc:{coarse},{fine}")[0] == got


@settings(deadline=None, max_examples=40)
@given(coarse=st.integers(1, 7), fine=st.integers(0, 6), secs=st.integers(0, 2 ** 31))
def test_cuc_pfield_round_trip(coarse, fine, secs):
    secs = secs % (256 ** coarse)
    b = T.encode_cuc([secs + 0.5], coarse, fine, pfield=True)
    t, c, f, code_id = T.decode_cuc_pfield(b)
    assert (c[0], f[0], code_id[0]) == (coarse, fine, 1)
    assert t[0] == secs + (0.5 if fine else 0.0)
    assert T.decode(b, "cuc")[0] == t[0]


def test_cuc_known_bytes_and_bad_pfield():
    # P-field 0x2E: no extension, id 010 (agency epoch), 4 coarse, 2 fine
    b = np.array([[0x2E, 0x00, 0x00, 0x01, 0x00, 0x80, 0x00]], np.uint8)
    t, c, f, code = T.decode_cuc_pfield(b)
    assert (t[0], c[0], f[0], code[0]) == (256.5, 4, 2, 2)
    bad = np.array([[0x4E, 0, 0, 0, 0, 0, 0]], np.uint8)   # id 100 is CDS, not CUC
    assert np.isnan(T.decode_cuc_pfield(bad)[0][0])
    short = np.array([[0x2E, 0, 0]], np.uint8)
    assert np.isnan(T.decode_cuc_pfield(short)[0][0])


@pytest.mark.parametrize("day_bits,sub", [(16, 0), (16, 2), (24, 0), (24, 4)])
def test_cds_round_trip(day_bits, sub):
    s = np.array([0.0, 86399.999, 12345 * 86400 + 3723.004, 40000 * 86400 + 0.5])
    b = T.encode_cds(s, day_bits, sub)
    assert b.shape == (4, day_bits // 8 + 4 + sub)
    got = T.decode_cds(b, day_bits, sub)
    assert np.allclose(got, s, atol=1e-6)
    # reference: integer fields
    days = int.from_bytes(b[2].tobytes()[:day_bits // 8], "big")
    ms = int.from_bytes(b[2].tobytes()[day_bits // 8:day_bits // 8 + 4], "big")
    assert days == 12345
    if sub < 4:   # at picosecond resolution the float 3723.004 really is 3723.003999...
        assert ms == 3723004
    assert np.array_equal(T.decode(b, f"cds:{day_bits},{sub}"), got)


def test_spec_parsing():
    assert T.parse_spec("cuc:4,2") == ("cuc", (4, 2))
    assert T.parse_spec("CDS") == ("cds", (16, 0))
    assert T.spec_length("cds:24,2") == 9 and T.spec_length("cuc") is None
    for bad in ("cuc:9,1", "cds:20", "gps", "cuc:a,b"):
        with pytest.raises(ValueError):
            T.parse_spec(bad)


def test_to_unix_tai_epoch_applies_leap_seconds():
    # 2020-01-01T00:00:00 UTC is 37 s later in TAI; seconds since 1958-01-01 TAI
    utc = datetime(2020, 1, 1, tzinfo=timezone.utc).timestamp()
    tai_seconds = utc - (-378691200.0) + 37
    assert T.to_unix(tai_seconds) == utc
    assert T.to_unix(tai_seconds, scale="utc") == utc + 37
    # before 1972 the table gives 10 s
    assert T.to_unix(10.0) == -378691200.0
    # across the 2016-12-31 leap second
    before = datetime(2016, 12, 31, 23, 59, 59, tzinfo=timezone.utc).timestamp()
    s = before + 378691200.0 + 36
    assert T.to_unix(s) == before
    assert T.to_unix(s + 2) == before + 1   # 2017-01-01T00:00:00, TAI-UTC now 37


def test_to_unix_agency_epoch_is_utc():
    assert T.to_unix(3600.0, "2019-12-31T16:00:00Z") == 1577808000.0 + 3600
    assert T.iso_to_unix("1970-01-01T00:00:00") == 0.0
    with pytest.raises(ValueError):
        T.iso_to_unix("yesterday")


def test_insert_zone_time_counter_and_code():
    z = np.zeros((1, 8), np.uint8)
    z[0, :6] = [0x00, 0x80, 0x01, 0, 0, 0]   # little-endian 0x018000 = 98304 ticks
    izt = T.InsertZoneTime(offset=0, length=6, byteorder="little", unit=2 ** -16, epoch="2019-12-31T16:00:00Z")
    assert izt.decode(z)[0] == 1577808000.0 + 1.5
    code = T.InsertZoneTime(offset=2, code="cuc:4,2", epoch="2000-01-01T00:00:00Z")
    z2 = np.zeros((1, 8), np.uint8)
    z2[0, 2:8] = T.encode_cuc([10.25], 4, 2)[0]
    assert code.decode(z2)[0] == 946684800.0 + 10.25
    with pytest.raises(ValueError):
        T.InsertZoneTime(offset=0, length=9)
    with pytest.raises(ValueError):
        T.InsertZoneTime(offset=0, code="cuc")


def test_encoders_refuse_out_of_range():
    with pytest.raises(ValueError):
        T.encode_cuc([256.0], 1, 0)
    with pytest.raises(ValueError):
        T.encode_cds([-1.0])
    with pytest.raises(ValueError):
        T.decode_cds(np.zeros((1, 5), np.uint8))


def test_tai_minus_utc_batch_equals_one_by_one_across_leap_seconds():
    """The batch fast path (one lookup when a batch lies between two leap seconds) gives
    what each instant alone gives, for batches inside one interval and across boundaries."""
    from groundseg.link.timecodes import _LEAP_TAI, tai_minus_utc
    rng = np.random.default_rng(5)
    for edge in _LEAP_TAI[[0, 5, -1]]:
        for t in (edge + rng.uniform(1, 1000, 50), edge + rng.uniform(-500, 500, 50),
                  edge - rng.uniform(1, 1000, 50), np.array([edge - 1e-3, edge, edge + 1e-3])):
            one = np.array([tai_minus_utc(np.array([x]))[0] for x in t])
            assert np.array_equal(tai_minus_utc(t), one)
    # a NaN in the batch takes the elementwise path
    t = np.array([_LEAP_TAI[-1] + 10, np.nan])
    assert tai_minus_utc(t)[0] == tai_minus_utc(t[:1])[0]
