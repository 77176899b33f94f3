"""Reed-Solomon codec (CCSDS 131.0-B-4 section 4) against a slow textbook reference.

The reference (tests/reference/reed_solomon.py) does its own GF(256) arithmetic (shift-and-add modulo
x^8+x^7+x^2+x+1), builds g(x) from its roots beta^(128-E+j), beta = alpha^11,
encodes by polynomial division and decodes by syndromes (Horner),
Berlekamp-Massey, a brute-force Chien search and Forney, then re-checks the
syndromes of the corrected word. Published vector: the CCSDS pseudo-random
sequence over a whole codeblock is a valid dual-basis codeblock for I=1,2,4,8.
"""
from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from groundseg.coding import reed_solomon as rs

from tests.reference.reed_solomon import (  # noqa: F401
    ALPHA_POW,
    BETA_POW,
    _REF_FROM_DUAL,
    _T_ROWS,
    add_errors,
    gf_inv,
    gf_mul,
    gf_pow,
    pn_sequence,
    poly_eval,
    ref_decode,
    ref_decode_cw,
    ref_encode,
    ref_encode_cw,
    ref_generator,
    ref_syndromes,
    ref_to_dual)

DEPTHS = (1, 2, 3, 4, 5, 8)


def test_reference_generator_roots_and_degree():
    for parity in (16, 32):
        g = ref_generator(parity)
        assert len(g) == parity + 1 and g[0] == 1
        fcr = 128 - parity // 2
        assert all(poly_eval(g, BETA_POW[fcr + j]) == 0 for j in range(parity))
        assert poly_eval(g, BETA_POW[fcr - 1]) != 0
        assert list(rs.generator_polynomial(parity)) == g


def test_ccsds_generator_is_self_reciprocal():
    # 131.0-B: the roots 128-E..127+E are symmetric about 127.5, so g(x) is palindromic.
    for parity in (16, 32):
        g = list(rs.generator_polynomial(parity))
        assert g == g[::-1]


def test_dual_basis_tables_match_annex_matrix():
    assert [int(rs.TO_DUAL[x]) for x in range(256)] == [ref_to_dual(x) for x in range(256)]
    assert np.array_equal(rs.FROM_DUAL[rs.TO_DUAL], np.arange(256))
    assert rs.TO_DUAL[0] == 0


def test_pn_sequence_reference_first_bytes():
    assert pn_sequence(8).tobytes() == bytes.fromhex("FF480EC09A0D70BC")


@pytest.mark.parametrize("interleave", [1, 2, 4, 8])
def test_pn_sequence_is_a_dual_basis_codeblock(interleave):
    block = pn_sequence(255 * interleave)
    data, corr = rs.decode(block[None, :], interleave)
    assert corr.tolist() == [[0] * interleave]
    assert np.array_equal(data[0], block[: 223 * interleave])
    assert np.array_equal(rs.encode(data, interleave)[0], block)


@pytest.mark.parametrize("parity", [32, 16])
@pytest.mark.parametrize("dual", [True, False])
def test_pn_sequence_codeword_in_both_bases_agrees_with_reference(parity, dual):
    # Observed (and confirmed by the reference's own syndromes): the 255-byte PN
    # block is a codeword of both codes in both bases.
    block = pn_sequence(255)
    symbols = [int(v) for v in block]
    if dual:
        symbols = [_REF_FROM_DUAL[v] for v in symbols]
    assert not any(ref_syndromes(symbols, parity))
    _, corr = rs.decode(block, 1, parity, dual)
    assert corr.tolist() == [0]
    # one flipped bit is one corrected symbol
    hit = block.copy()
    hit[100] ^= 0x10
    got, corr = rs.decode(hit, 1, parity, dual)
    assert corr.tolist() == [1] and np.array_equal(got, block[: 255 - parity])


# --- encoder ---------------------------------------------------------------------------

@pytest.mark.parametrize("parity", [32, 16])
@pytest.mark.parametrize("dual", [True, False])
@pytest.mark.parametrize("interleave,q", [(1, 0), (1, 3), (2, 0), (3, 7), (4, 0), (5, 0), (5, 1), (8, 0), (8, 100)])
def test_encode_matches_reference(parity, dual, interleave, q):
    rng = np.random.default_rng(parity * 100 + interleave * 10 + q + dual)
    data = rng.integers(0, 256, (2, (255 - parity - q) * interleave), dtype=np.uint8)
    got = rs.encode(data, interleave, parity, dual)
    assert got.shape == (2, (255 - q) * interleave)
    assert np.array_equal(got[:, : data.shape[1]], data)
    assert np.array_equal(got, ref_encode(data, interleave, parity, dual))


def test_encode_differs_between_bases():
    data = np.arange(223, dtype=np.uint8)
    assert not np.array_equal(rs.encode(data, dual_basis=True), rs.encode(data, dual_basis=False))


# --- decoder: round trips and correctable errors ---------------------------------------

@pytest.mark.parametrize("parity", [32, 16])
@pytest.mark.parametrize("dual", [True, False])
@pytest.mark.parametrize("interleave", DEPTHS)
@pytest.mark.parametrize("q", [0, 3, 33])
def test_clean_round_trip(parity, dual, interleave, q):
    rng = np.random.default_rng(interleave + q)
    data = rng.integers(0, 256, (3, (255 - parity - q) * interleave), dtype=np.uint8)
    blocks = rs.encode(data, interleave, parity, dual)
    got, corr = rs.decode(blocks, interleave, parity, dual)
    assert corr.shape == (3, interleave) and corr.dtype == np.int16
    assert (corr == 0).all()
    assert np.array_equal(got, data)


@pytest.mark.parametrize("parity", [32, 16])
@pytest.mark.parametrize("dual", [True, False])
@pytest.mark.parametrize("interleave", DEPTHS)
def test_up_to_t_errors_corrected(parity, dual, interleave):
    t = parity // 2
    rng = np.random.default_rng(7 * interleave + parity)
    q = 3 if interleave == 1 else 0
    data = rng.integers(0, 256, (t + 1, (255 - parity - q) * interleave), dtype=np.uint8)
    blocks = rs.encode(data, interleave, parity, dual)
    received = np.concatenate([add_errors(blocks[e:e + 1], interleave, e, rng) for e in range(t + 1)])
    before = received.copy()
    got, corr = rs.decode(received, interleave, parity, dual)
    assert np.array_equal(received, before), "input must not be modified"
    assert np.array_equal(got, data)
    assert corr.tolist() == [[e] * interleave for e in range(t + 1)]


@pytest.mark.parametrize("parity", [32, 16])
def test_errors_only_in_parity_bytes(parity):
    rng = np.random.default_rng(3)
    interleave = 4
    data = rng.integers(0, 256, (4, (255 - parity) * interleave), dtype=np.uint8)
    blocks = rs.encode(data, interleave, parity)
    parity_positions = np.arange(255 - parity, 255)
    received = add_errors(blocks, interleave, parity // 2, rng, positions=parity_positions)
    assert not np.array_equal(received, blocks)
    got, corr = rs.decode(received, interleave, parity)
    assert (corr == parity // 2).all()
    assert np.array_equal(got, data)


def test_errors_at_first_and_last_symbols_of_shortened_codeword():
    rng = np.random.default_rng(11)
    data = rng.integers(0, 256, (1, 220), dtype=np.uint8)
    block = rs.encode(data)  # (252,220), q = 3
    received = block.copy()
    received[0, 0] ^= 0x5A
    received[0, -1] ^= 0xA5
    got, corr = rs.decode(received)
    assert corr.tolist() == [[2]]
    assert np.array_equal(got, data)


@pytest.mark.parametrize("parity", [32, 16])
@pytest.mark.parametrize("dual", [True, False])
def test_decode_matches_reference_decoder(parity, dual):
    t = parity // 2
    rng = np.random.default_rng(parity + 5 * dual)
    for interleave, q in ((1, 3), (2, 0), (5, 50)):
        data = rng.integers(0, 256, (1, (255 - parity - q) * interleave), dtype=np.uint8)
        block = rs.encode(data, interleave, parity, dual)
        for count in (0, 1, t // 2, t, t + 1, t + 4, 2 * t):
            received = add_errors(block, interleave, count, rng)
            got, corr = rs.decode(received, interleave, parity, dual)
            want, want_corr = ref_decode(received, interleave, parity, dual)
            assert np.array_equal(corr, want_corr), (interleave, q, count)
            assert np.array_equal(got, want), (interleave, q, count)


# --- decoder: uncorrectable words ---------------------------------------------------------

@pytest.mark.parametrize("parity", [32, 16])
def test_t_plus_one_errors_are_flagged(parity):
    t = parity // 2
    rng = np.random.default_rng(parity)
    n = 60
    data = rng.integers(0, 256, (n, 255 - parity), dtype=np.uint8)
    blocks = rs.encode(data, 1, parity)
    received = add_errors(blocks, 1, t + 1, rng)
    got, corr = rs.decode(received, 1, parity)
    bad = corr[:, 0] == -1
    # A miscorrection needs a codeword within t of the received word: about 1/t!
    # of such words for these codes, never seen at this sample size.
    assert bad.sum() >= n - 1
    assert np.array_equal(got[bad], received[bad][:, : 255 - parity])
    # what was "corrected" anyway must be a codeword t symbols or fewer away
    for r in np.flatnonzero(~bad):
        fixed = rs.encode(got[r], 1, parity)
        assert 0 < (fixed != received[r]).sum() <= t
        assert corr[r, 0] == (fixed != received[r]).sum()


def test_uncorrectable_codeword_leaves_other_codewords_corrected():
    rng = np.random.default_rng(21)
    interleave = 5
    data = rng.integers(0, 256, (1, 223 * interleave), dtype=np.uint8)
    block = rs.encode(data, interleave)
    received = block.copy()
    # codeword 2 gets 25 errors, codeword 0 gets 3, the rest none
    for c, count in ((2, 25), (0, 3)):
        pos = rng.choice(255, count, replace=False)
        received[0, pos * interleave + c] ^= rng.integers(1, 256, count, dtype=np.uint8)
    got, corr = rs.decode(received, interleave)
    assert corr.tolist() == [[3, 0, -1, 0, 0]]
    cw = np.arange(223 * interleave) % interleave
    assert np.array_equal(got[0, cw != 2], data[0, cw != 2])
    assert np.array_equal(got[0, cw == 2], received[0, : 223 * interleave][cw == 2])


@pytest.mark.parametrize("q,extra", [(3, 0), (3, 1), (10, 2), (1, 0)])
def test_root_in_virtual_fill_is_refused(q, extra):
    # A full-length codeword whose first q symbols are nonzero, sent as a code
    # shortened by q: to the shortened decoder the fill itself is in error; an
    # unshortened decoder would "correct" q (+extra) symbols, we must refuse.
    rng = np.random.default_rng(q * 10 + extra)
    for _ in range(5):
        full_data = rng.integers(1, 256, (1, 223), dtype=np.uint8)
        full = rs.encode(full_data)
        received = full[:, q:].copy()
        if extra:
            pos = rng.choice(received.shape[1], extra, replace=False)
            received[0, pos] ^= rng.integers(1, 256, extra, dtype=np.uint8)
        got, corr = rs.decode(received)
        assert corr.tolist() == [[-1]]
        assert np.array_equal(got[0], received[0, : 223 - q])
        # the reference agrees, and without shortening the same word is correctable
        assert ref_decode(received, 1, 32, True)[1].tolist() == [[-1]]
        _, corr_full = rs.decode(np.concatenate([np.zeros((1, q), np.uint8), received], axis=1))
        assert corr_full.tolist() == [[q + extra]]


def test_garbage_rows_are_refused_or_truly_decoded():
    rng = np.random.default_rng(99)
    for parity in (32, 16):
        received = rng.integers(0, 256, (40, 255 * 2), dtype=np.uint8)
        got, corr = rs.decode(received, 2, parity)
        assert (corr == -1).mean() > 0.95
        for r, c in zip(*np.nonzero(corr >= 0)):
            fixed = rs.encode(got[r:r + 1], 2, parity)[0, c::2]
            assert (fixed != received[r, c::2]).sum() == corr[r, c] <= parity // 2


# --- property tests ------------------------------------------------------------------------

@st.composite
def codes(draw):
    interleave = draw(st.sampled_from(DEPTHS))
    parity = draw(st.sampled_from((16, 32)))
    dual = draw(st.booleans())
    q = draw(st.integers(0, 255 - parity - 1))
    return interleave, parity, dual, q


@settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(codes(), st.integers(0, 2**32 - 1), st.data())
def test_property_correctable_patterns(code, seed, draw):
    interleave, parity, dual, q = code
    t = parity // 2
    n_cw = 255 - q
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (1, (n_cw - parity) * interleave), dtype=np.uint8)
    block = rs.encode(data, interleave, parity, dual)
    received = block.copy()
    counts = []
    for c in range(interleave):
        count = draw.draw(st.integers(0, min(t, n_cw)))
        pos = rng.choice(n_cw, count, replace=False)
        received[0, pos * interleave + c] ^= rng.integers(1, 256, count, dtype=np.uint8)
        counts.append(count)
    got, corr = rs.decode(received, interleave, parity, dual)
    assert corr.tolist() == [counts]
    assert np.array_equal(got, data)


@settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(codes(), st.integers(0, 2**32 - 1), st.integers(0, 60))
def test_property_output_is_codeword_or_refused(code, seed, count):
    interleave, parity, dual, q = code
    n_cw = 255 - q
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (1, (n_cw - parity) * interleave), dtype=np.uint8)
    received = add_errors(rs.encode(data, interleave, parity, dual), interleave, min(count, n_cw), rng)
    got, corr = rs.decode(received, interleave, parity, dual)
    fixed = rs.encode(got, interleave, parity, dual)
    for c in range(interleave):
        distance = int((fixed[0, c::interleave] != received[0, c::interleave]).sum())
        if corr[0, c] == -1:
            assert np.array_equal(got[0, c::interleave], received[0, : got.shape[1]][c::interleave])
        else:
            assert corr[0, c] == distance <= parity // 2


# --- API: shapes, layout, validation ---------------------------------------------------------

def test_one_dimensional_rows():
    data = np.arange(220 * 2, dtype=np.uint8)
    block = rs.encode(data, 2)
    assert block.shape == (255 * 2 - 6,)
    got, corr = rs.decode(block, 2)
    assert got.shape == data.shape and corr.shape == (2,)
    assert np.array_equal(got, data) and corr.tolist() == [0, 0]


def test_decode_into_a_callers_array():
    rng = np.random.default_rng(3)
    data = rng.integers(0, 256, (4, 223 * 5), dtype=np.uint8)
    blocks = rs.encode(data, 5)
    blocks[1, 10] ^= 0x5A                                   # one to correct
    want, want_corr = rs.decode(blocks, 5)
    out = np.full((4, 223 * 5), 0xEE, np.uint8)
    got, corr = rs.decode(blocks, 5, out=out)
    assert got is out and np.array_equal(out, want) and np.array_equal(corr, want_corr)
    assert np.array_equal(out, data)
    one = np.zeros(223 * 5, np.uint8)
    row, _ = rs.decode(blocks[2], 5, out=one)
    assert np.shares_memory(row, one) and np.array_equal(one, data[2])
    for bad in (np.zeros((4, 223 * 5 - 1), np.uint8), np.zeros((4, 223 * 5), np.int16),
                np.zeros((223 * 5, 4), np.uint8).T):
        with pytest.raises(ValueError, match="out must be"):
            rs.decode(blocks, 5, out=bad)


def test_empty_batch_and_non_contiguous_input():
    got, corr = rs.decode(np.zeros((0, 1020), np.uint8), 4)
    assert got.shape == (0, 892) and corr.shape == (0, 4)
    assert rs.encode(np.zeros((0, 892), np.uint8), 4).shape == (0, 1020)
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (6, 223), dtype=np.uint8)
    wide = np.zeros((3, 2 * 255), np.uint8)
    wide[:, ::2] = rs.encode(data[::2])
    got, corr = rs.decode(wide[:, ::2])
    assert np.array_equal(got, data[::2]) and (corr == 0).all()


def test_codeword_layout():
    lay = rs.codeword_layout(252)
    assert (lay.virtual_fill, lay.codeword_length, lay.data_per_codeword, lay.data_length) == (3, 252, 220, 220)
    lay = rs.codeword_layout(1020, 4)
    assert (lay.virtual_fill, lay.codeblock_length, lay.data_length) == (0, 1020, 892)
    lay = rs.codeword_layout(1115, 5, codeblock=False)
    assert (lay.virtual_fill, lay.codeblock_length) == (0, 1275)
    lay = rs.codeword_layout(1000, 5, 16, codeblock=False)
    assert (lay.virtual_fill, lay.codeblock_length) == (39, 1080)
    with pytest.raises(ValueError, match="multiple of interleave"):
        rs.codeword_layout(1021, 4)
    with pytest.raises(ValueError, match="bytes per codeword"):
        rs.codeword_layout(256)
    with pytest.raises(ValueError, match="bytes per codeword"):
        rs.codeword_layout(32)


@pytest.mark.parametrize("kwargs,match", [
    ({"interleave": 0}, "interleave"), ({"interleave": 6}, "interleave"),
    ({"interleave": 16}, "interleave"), ({"interleave": True}, "interleave"),
    ({"interleave": 2.0}, "interleave"), ({"parity": 30}, "parity"), ({"parity": "32"}, "parity"),
    ({"parity": 32.0}, "parity"), ({"interleave": np.int64(3), "parity": 15}, "parity"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rs.decode(np.zeros((1, 1020), np.uint8), **kwargs)
    with pytest.raises(ValueError, match=match):
        rs.encode(np.zeros((1, 892), np.uint8), **kwargs)


def test_bad_arrays():
    with pytest.raises(ValueError, match="dtype uint8"):
        rs.decode(np.zeros((1, 255), np.int64))
    with pytest.raises(ValueError, match="dtype uint8"):
        rs.encode(np.zeros((1, 223), np.float32))
    with pytest.raises(ValueError, match="1-D"):
        rs.decode(np.zeros((1, 1, 255), np.uint8))
    with pytest.raises(ValueError, match="numpy uint8 array"):
        rs.decode([0] * 255)
    with pytest.raises(ValueError, match="bytes per codeword"):
        rs.decode(np.zeros((1, 1024), np.uint8), 4)
    with pytest.raises(ValueError, match="bytes per codeword"):
        rs.encode(np.zeros((1, 224), np.uint8))
    with pytest.raises(ValueError, match="multiple of interleave"):
        rs.encode(np.zeros((1, 223 * 3 + 1), np.uint8), 3)
    assert rs.decode(bytes(255))[1].tolist() == [0]


# --- miscorrection rate beyond t (measured; slow) -------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("parity,count", [(32, 17), (32, 20), (32, 30), (16, 9), (16, 12)])
def test_miscorrection_rate_beyond_t(parity, count):
    rng = np.random.default_rng(count)
    n = 5000
    data = rng.integers(0, 256, (n, 255 - parity), dtype=np.uint8)
    received = add_errors(rs.encode(data, 1, parity), 1, count, rng)
    got, corr = rs.decode(received, 1, parity)
    accepted = corr[:, 0] >= 0
    # anything accepted is a miscorrection (never the sent data)
    assert not any(np.array_equal(got[r], data[r]) for r in np.flatnonzero(accepted))
    # RS(255,223): about 1/16! of the words; RS(255,239): about 1/8! (~2.5e-5)
    assert accepted.sum() <= (0 if parity == 32 else 3)
