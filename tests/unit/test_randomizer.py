"""CCSDS pseudo-randomiser (131.0-B-4 section 10) against the polynomial's recurrence."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from groundseg.coding.randomizer import pn_sequence, randomize, randomize_inplace

from tests.reference.randomizer import pn_reference


def test_first_bytes():
    assert pn_sequence(8).tobytes() == bytes.fromhex("FF480EC09A0D70BC")
    assert pn_reference(8) == bytes.fromhex("FF480EC09A0D70BC")


@pytest.mark.parametrize("n", [0, 1, 7, 254, 255, 256, 1020, 1279])
def test_matches_reference(n):
    seq = pn_sequence(n)
    assert seq.dtype == np.uint8 and seq.shape == (n,)
    assert seq.tobytes() == pn_reference(n)


def test_period():
    seq = pn_sequence(255 * 3)
    assert np.array_equal(seq[255:510], seq[:255])
    assert np.array_equal(seq[510:], seq[:255])
    bits = np.unpackbits(seq)
    # Maximal-length register: bit period exactly 255, so no shorter byte period either.
    assert np.array_equal(bits[255:510], bits[:255])
    for p in (3, 5, 15, 17, 51, 85):
        assert not np.array_equal(bits[p:p + 255], bits[:255])


def test_pn_sequence_is_a_fresh_array():
    a = pn_sequence(10)
    a[0] = 0
    assert pn_sequence(10)[0] == 0xFF


def test_negative_length_raises():
    with pytest.raises(ValueError, match="length"):
        pn_sequence(-1)


@settings(deadline=None, max_examples=40)
@given(st.integers(0, 6), st.integers(0, 600), st.integers(0, 2**32 - 1))
def test_randomize_rows(rows, width, seed):
    data = np.random.default_rng(seed).integers(0, 256, (rows, width), dtype=np.uint8)
    before = data.copy()
    out = randomize(data)
    pn = np.frombuffer(pn_reference(width), np.uint8)
    assert out.shape == data.shape and out.dtype == np.uint8
    assert np.array_equal(out, data ^ pn[None, :])    # sequence restarts at every row
    assert np.array_equal(data, before)                # input untouched
    assert np.array_equal(randomize(out), data)        # its own inverse
    inplace = data.copy()
    randomize_inplace(inplace)
    assert np.array_equal(inplace, out)


def test_one_dimensional_and_bytes():
    block = np.arange(300, dtype=np.uint16).astype(np.uint8)
    out = randomize(block)
    assert out.shape == (300,)
    assert np.array_equal(out, block ^ pn_sequence(300))
    assert np.array_equal(randomize(block.tobytes()), out)
    randomize_inplace(block)
    assert np.array_equal(block, out)


def test_non_contiguous_rows():
    data = np.random.default_rng(5).integers(0, 256, (6, 100), dtype=np.uint8)
    view = data[::2, 10:90]
    assert np.array_equal(randomize(view), view ^ pn_sequence(80)[None, :])
    expected = view ^ pn_sequence(80)[None, :]
    randomize_inplace(view)
    assert np.array_equal(data[::2, 10:90], expected)


def test_zeros_give_the_sequence():
    assert np.array_equal(randomize(np.zeros((2, 511), np.uint8)), np.tile(pn_sequence(511), (2, 1)))


def test_bad_input_raises():
    with pytest.raises(ValueError, match="uint8"):
        randomize(np.zeros(4, np.int16))
    with pytest.raises(ValueError, match="dimensions"):
        randomize(np.zeros((2, 2, 2), np.uint8))
    ro = np.zeros((2, 4), np.uint8)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        randomize_inplace(ro)
    with pytest.raises(ValueError, match="writable"):
        randomize_inplace(b"abc")
