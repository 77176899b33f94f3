"""TM primary/secondary headers (132.0-B) and the CLCW (232.0-B): pack/decode round trips."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from groundseg.link import clcw, tm


def reference_tm_header(h: bytes) -> dict:
    """Bit by bit from the standard's field table."""
    bits = "".join(f"{b:08b}" for b in h)
    widths = [("version", 2), ("scid", 10), ("vcid", 3), ("ocf_flag", 1), ("mcfc", 8), ("vcfc", 8),
              ("sec_hdr_flag", 1), ("sync_flag", 1), ("packet_order", 1), ("seg_len_id", 2), ("fhp", 11)]
    out, pos = {}, 0
    for name, w in widths:
        out[name] = int(bits[pos:pos + w], 2)
        pos += w
    return out


header_fields = st.fixed_dictionaries({
    "scid": st.integers(0, 1023), "vcid": st.integers(0, 7), "mcfc": st.integers(0, 255),
    "vcfc": st.integers(0, 255), "fhp": st.integers(0, 2047), "ocf_flag": st.booleans(),
    "sec_hdr_flag": st.booleans(), "sync_flag": st.booleans(), "packet_order": st.booleans(),
    "seg_len_id": st.integers(0, 3)})


@settings(deadline=None, max_examples=60)
@given(header_fields)
def test_pack_decode_round_trip(f):
    h = tm.pack_primary_header(**f)
    assert h.shape == (1, 6)
    d = {k: int(v[0]) for k, v in tm.decode_primary_header(h).items()}
    ref = reference_tm_header(h[0].tobytes())
    assert d == ref
    for k, v in f.items():
        assert d[k] == int(v)
    assert d["version"] == 0


def test_vectorised_over_a_batch():
    n = 300
    rng = np.random.default_rng(1)
    scid, vcid, mc, vc, fhp = (rng.integers(0, m, n) for m in (1024, 8, 256, 256, 2048))
    h = tm.pack_primary_header(scid, vcid, mc, vc, fhp, ocf_flag=True)
    d = tm.decode_primary_header(np.concatenate([h, np.zeros((n, 10), np.uint8)], axis=1))
    assert (d["scid"] == scid).all() and (d["vcid"] == vcid).all() and (d["fhp"] == fhp).all()
    assert (d["mcfc"] == mc).all() and (d["vcfc"] == vc).all() and d["ocf_flag"].all()


def test_counters_wrap_and_fields_checked():
    h = tm.pack_primary_header(1, 0, 256 + 3, 511, 0)
    d = tm.decode_primary_header(h)
    assert d["mcfc"][0] == 3 and d["vcfc"][0] == 255
    with pytest.raises(ValueError):
        tm.pack_primary_header(1024, 0, 0, 0, 0)
    with pytest.raises(ValueError):
        tm.pack_primary_header(1, 8, 0, 0, 0)
    with pytest.raises(ValueError):
        tm.decode_primary_header(np.zeros((2, 5), np.uint8))


def test_known_bytes():
    # version 0, SCID 0x2AB, VCID 5, OCF 1 / MC 0x12 / VC 0x34 / sec 0 sync 0 order 0 seg 11 FHP 0x7FE
    h = np.array([[0x2A, 0xBB, 0x12, 0x34, 0x1F, 0xFE]], np.uint8)
    d = tm.decode_primary_header(h)
    assert (d["scid"][0], d["vcid"][0], d["ocf_flag"][0], d["fhp"][0], d["seg_len_id"][0]) == \
        (0x2AB, 5, True, tm.FHP_IDLE, 3)
    assert np.array_equal(tm.pack_primary_header(0x2AB, 5, 0x12, 0x34, 0x7FE, ocf_flag=True), h)


def test_secondary_header_length_is_total_minus_one():
    s = tm.pack_secondary_header(np.arange(12, dtype=np.uint8).reshape(2, 6))
    assert s.shape == (2, 7) and s[0, 0] == 6
    frames = np.concatenate([tm.pack_primary_header(1, 0, 0, 0, 0, sec_hdr_flag=True, n=2), s], axis=1)
    d = tm.decode_secondary_header(frames)
    assert (d["length"] == 7).all() and (d["version"] == 0).all()
    with pytest.raises(ValueError):
        tm.pack_secondary_header(np.zeros((1, 64), np.uint8))


clcw_fields = st.fixed_dictionaries({
    "status": st.integers(0, 7), "cop_in_effect": st.integers(0, 3), "vcid": st.integers(0, 63),
    "no_rf_available": st.booleans(), "no_bitlock": st.booleans(), "lockout": st.booleans(),
    "wait": st.booleans(), "retransmit": st.booleans(), "farm_b_counter": st.integers(0, 3),
    "report_value": st.integers(0, 255)})


@settings(deadline=None, max_examples=60)
@given(clcw_fields)
def test_clcw_round_trip(f):
    w = clcw.encode(**f)
    b = clcw.to_bytes(w)
    for src in (w, b):
        d = clcw.decode(src)
        for k, v in f.items():
            assert int(d[k][0]) == int(v), k
        assert d["control_word_type"][0] == 0 and d["version"][0] == 0
    # reference: bit positions from the standard, MSB first
    bits = f"{int(w[0]):032b}"
    assert int(bits[8:14], 2) == f["vcid"] and int(bits[24:32], 2) == f["report_value"]
    assert bits[16] == str(int(f["no_rf_available"])) and bits[20] == str(int(f["retransmit"]))
    assert int(bits[21:23], 2) == f["farm_b_counter"] and int(bits[3:6], 2) == f["status"]


def test_clcw_known_word():
    # type 0, version 0, status 0, COP 1, VCID 7, no RF 0, no bitlock 1, lockout 0, wait 1,
    # retransmit 0, FARM-B 2, report 0x5A
    w = (1 << 24) | (7 << 18) | (1 << 14) | (1 << 12) | (2 << 9) | 0x5A
    d = clcw.decode(np.array([w], np.uint32))
    assert d["cop_in_effect"][0] == 1 and d["vcid"][0] == 7 and d["no_bitlock"][0]
    assert d["wait"][0] and not d["lockout"][0] and d["farm_b_counter"][0] == 2
    assert d["report_value"][0] == 0x5A
    with pytest.raises(ValueError):
        clcw.encode(vcid=64)
