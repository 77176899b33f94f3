"""AOS headers (732.0-B): pack/decode, 28-bit counts, M_PDU header, FHEC RS(10,6)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from groundseg.link import aos


def reference_aos_header(h: bytes) -> dict:
    bits = "".join(f"{b:08b}" for b in h)
    widths = [("version", 2), ("scid", 8), ("vcid", 6), ("count", 24), ("replay", 1),
              ("vc_count_usage", 1), ("spare", 2), ("vc_cycle", 4)]
    out, pos = {}, 0
    for name, w in widths:
        out[name] = int(bits[pos:pos + w], 2)
        pos += w
    return out


@settings(deadline=None, max_examples=60)
@given(scid=st.integers(0, 255), vcid=st.integers(0, 63), count=st.integers(0, 2 ** 28 - 1),
       replay=st.booleans(), usage=st.booleans())
def test_pack_decode_round_trip(scid, vcid, count, replay, usage):
    h = aos.pack_primary_header(scid, vcid, count, replay=replay, vc_count_usage=usage)
    d = aos.decode_primary_header(h)
    ref = reference_aos_header(h[0].tobytes())
    assert (ref["version"], ref["scid"], ref["vcid"], ref["replay"]) == (1, scid, vcid, int(replay))
    assert ref["count"] == count % 2 ** 24
    assert (d["scid"][0], d["vcid"][0], bool(d["replay"][0]), bool(d["vc_count_usage"][0])) == \
        (scid, vcid, replay, usage)
    if usage:
        assert d["vcfc"][0] == count and d["vcfc_modulus"][0] == 2 ** 28
        assert d["vc_cycle"][0] == count >> 24
    else:
        assert d["vcfc"][0] == count % 2 ** 24 and d["vcfc_modulus"][0] == 2 ** 24


def test_known_bytes_snpp():
    # Suomi-NPP VCDU header: version 1, SCID 157, VCID 16
    h = aos.pack_primary_header(157, 16, 9842876)
    assert h[0, :2].tolist() == [0x67, 0x50]
    d = aos.decode_primary_header(h)
    assert (d["version"][0], d["scid"][0], d["vcid"][0], d["vcfc"][0]) == (1, 157, 16, 9842876)


def test_mpdu_header():
    m = aos.pack_mpdu_header([0, 0x7FF, 1234])
    frames = np.concatenate([np.zeros((3, 4), np.uint8), m], axis=1)
    frames[:, 4] |= 0xF8  # spare bits must be ignored
    assert aos.decode_mpdu_header(frames, 4).tolist() == [0, 0x7FF, 1234]
    with pytest.raises(ValueError):
        aos.pack_mpdu_header([0x800])


def test_fhec_generator_polynomial():
    # (x+a^6)(x+a^7)(x+a^8)(x+a^9) over GF(16)/x^4+x+1 = x^4 + a^3 x^3 + a x^2 + a^3 x + 1
    assert aos._fhec_generator() == [1, 8, 2, 8, 1]


def _gf16_poly_eval(nibbles, x, exp, log):
    acc = 0
    for c in nibbles:
        acc = (0 if acc == 0 or x == 0 else int(exp[(log[acc] + log[x]) % 15])) ^ c
    return acc


def test_fhec_codewords_have_the_generator_roots():
    exp, log = aos._gf16_tables()
    rng = np.random.default_rng(0)
    h = aos.pack_primary_header(rng.integers(0, 256, 50), rng.integers(0, 64, 50),
                                rng.integers(0, 2 ** 24, 50), vc_cycle=rng.integers(0, 16, 50),
                                vc_count_usage=True)
    p = aos.fhec_encode(h)
    for row, par in zip(h, p):
        word = [row[0] >> 4, row[0] & 15, row[1] >> 4, row[1] & 15, row[5] >> 4, row[5] & 15,
                par[0] >> 4, par[0] & 15, par[1] >> 4, par[1] & 15]
        for root in (6, 7, 8, 9):
            assert _gf16_poly_eval([int(v) for v in word], int(exp[root]), exp, log) == 0


@pytest.mark.parametrize("n_errors", [0, 1, 2])
def test_fhec_corrects_up_to_two_nibbles(n_errors):
    rng = np.random.default_rng(n_errors)
    n = 200
    h = aos.pack_primary_header(rng.integers(0, 256, n), rng.integers(0, 64, n), rng.integers(0, 2 ** 24, n))
    clean = np.concatenate([h, aos.fhec_encode(h), rng.integers(0, 256, (n, 4)).astype(np.uint8)], axis=1)
    bad = clean.copy()
    protected = [(0, 4), (0, 0), (1, 4), (1, 0), (5, 4), (5, 0), (6, 4), (6, 0), (7, 4), (7, 0)]
    for r in range(n):
        for k in rng.choice(10, n_errors, replace=False):
            byte, shift = protected[k]
            bad[r, byte] ^= np.uint8(rng.integers(1, 16) << shift)
    ok, nib = aos.fhec_decode(bad)
    assert ok.all() and (nib == n_errors).all()
    assert np.array_equal(bad, clean)


def test_fhec_detects_three_errors_mostly():
    rng = np.random.default_rng(7)
    n = 300
    h = aos.pack_primary_header(5, 3, np.arange(n))
    clean = np.concatenate([h, aos.fhec_encode(h)], axis=1)
    bad = clean.copy()
    bad[:, 0] ^= 0x11
    bad[:, 1] ^= 0x10
    ok, nib = aos.fhec_decode(bad.copy(), correct=False)
    # a 3-nibble error is beyond the code: never silently turned back into the sent header
    assert not np.any(ok & (nib == 0))
    assert (~ok).sum() > 0
