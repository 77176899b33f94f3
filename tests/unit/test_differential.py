"""NRZ-M differential coding (CCSDS 131.0-B-4 3.3.3) against a bit-by-bit reference."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from groundseg.coding import differential as diff


def ref_decode(bits: list[int], prev: int = 0) -> list[int]:
    out = []
    for e in bits:
        out.append(e ^ prev)
        prev = e
    return out


def ref_encode(bits: list[int], prev: int = 0) -> list[int]:
    out = []
    for b in bits:
        prev ^= b
        out.append(prev)
    return out


def test_known_vector():
    # NRZ-L 1 0 1 1 0 0 0 1 -> NRZ-M (level before = 0) 1 1 0 1 1 1 1 0
    assert diff.nrzm_encode(bytes([0b10110001])).tolist() == [0b11011110]
    assert diff.nrzm_decode(bytes([0b11011110])).tolist() == [0b10110001]


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=0, max_size=300), st.integers(0, 1))
def test_matches_reference_and_round_trips(data, initial):
    bits = np.unpackbits(np.frombuffer(data, np.uint8)).tolist()
    enc = diff.nrzm_encode(data, initial)
    assert np.unpackbits(enc).tolist() == ref_encode(bits, initial)
    dec = diff.nrzm_decode(enc, initial)
    assert dec.tobytes() == data
    assert np.unpackbits(diff.nrzm_decode(data)).tolist() == ref_decode(bits)


def test_streaming_at_every_split():
    data = np.random.default_rng(1).integers(0, 256, 64, dtype=np.uint8)
    whole = diff.nrzm_decode(data)
    for cut in range(data.size + 1):
        d = diff.DifferentialDecoder()
        out = np.concatenate([d.push(data[:cut]), d.push(data[cut:]), d.flush()])
        assert np.array_equal(out, whole)
        e = diff.DifferentialEncoder()
        enc = np.concatenate([e.push(data[:cut]), e.push(data[cut:]), e.flush()])
        assert np.array_equal(enc, diff.nrzm_encode(data))


def test_polarity_inversion_only_touches_the_first_bit():
    data = np.random.default_rng(2).integers(0, 256, 100, dtype=np.uint8)
    enc = diff.nrzm_encode(data)
    flipped = diff.nrzm_decode(enc ^ 0xFF)
    assert np.array_equal(flipped[1:], data[1:]) and flipped[0] == data[0] ^ 0x80


def test_reset_starts_a_new_stream():
    d = diff.DifferentialDecoder()
    d.push(bytes([0x01]))
    assert d.push(bytes([0x80])).tolist() == [0x40]     # the carried 1 meets the leading 1
    d.push(bytes([0x01]))
    d.reset()
    assert d.push(bytes([0x80])).tolist() == [0xC0]     # a new stream starts from 0
