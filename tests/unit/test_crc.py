"""CRC-16 FECF (CCSDS 132.0-B / 732.0-B): kernel against a bitwise reference and binascii."""
import binascii

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from groundseg.coding.crc import append_fecf, crc16, fecf_ok

from tests.reference.crc import crc16_reference


def test_published_check_value():
    assert crc16_reference(b"123456789") == 0x29B1
    out = crc16(b"123456789")
    assert out.dtype == np.uint16 and out.shape == (1,)
    assert out[0] == 0x29B1
    assert crc16(np.frombuffer(b"123456789", np.uint8))[0] == 0x29B1


def test_empty_row_is_the_preset():
    assert crc16(np.zeros((3, 0), np.uint8)).tolist() == [0xFFFF] * 3
    assert crc16(np.zeros((0, 10), np.uint8)).shape == (0,)


@pytest.mark.parametrize("length", list(range(0, 20)) + [63, 64, 65, 1115])
@pytest.mark.parametrize("rows", [1, 3, 4, 5, 9])
def test_rows_match_reference(length, rows):
    # Lengths around the 8-byte slice and row counts around the 4-row interleave.
    rng = np.random.default_rng(length * 100 + rows)
    data = rng.integers(0, 256, (rows, length), dtype=np.uint8)
    expected = [crc16_reference(r.tobytes()) for r in data]
    assert crc16(data).tolist() == expected


@settings(deadline=None, max_examples=60)
@given(st.data(), st.integers(1, 6), st.integers(0, 300))
def test_matches_binascii(data, nrows, width):
    rows = [data.draw(st.binary(min_size=width, max_size=width)) for _ in range(nrows)]
    frames = np.frombuffer(b"".join(rows), np.uint8).reshape(nrows, width)
    assert crc16(frames).tolist() == [binascii.crc_hqx(r, 0xFFFF) for r in rows]


def test_non_contiguous_input():
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, (8, 40), dtype=np.uint8)
    view = data[::2, 3:30]
    assert crc16(view).tolist() == [crc16_reference(r.tobytes()) for r in view]


def test_append_then_check():
    rng = np.random.default_rng(2)
    frames = rng.integers(0, 256, (7, 1113), dtype=np.uint8)
    with_fecf = append_fecf(frames)
    assert with_fecf.shape == (7, 1115)
    assert np.array_equal(with_fecf[:, :-2], frames)
    crc = [crc16_reference(r.tobytes()) for r in frames]
    assert with_fecf[:, -2].tolist() == [c >> 8 for c in crc]      # big-endian
    assert with_fecf[:, -1].tolist() == [c & 0xFF for c in crc]
    assert fecf_ok(with_fecf).tolist() == [True] * 7
    # The CRC of a frame with its FECF is 0 (the standard's receiver-side check).
    assert crc16(with_fecf).tolist() == [0] * 7


def test_every_single_bit_error_detected():
    rng = np.random.default_rng(3)
    frame = append_fecf(rng.integers(0, 256, 30, dtype=np.uint8))
    assert frame.ndim == 1 and frame.size == 32
    bits = frame.size * 8
    corrupted = np.repeat(frame[None, :], bits, axis=0)
    for b in range(bits):
        corrupted[b, b // 8] ^= np.uint8(0x80 >> (b % 8))
    ok = fecf_ok(corrupted)
    assert ok.shape == (bits,) and not ok.any()
    assert fecf_ok(frame).tolist() == [True]


def test_fecf_ok_mixed_batch():
    rng = np.random.default_rng(4)
    frames = append_fecf(rng.integers(0, 256, (10, 50), dtype=np.uint8))
    frames[[1, 4, 9], 7] ^= 0x10
    assert fecf_ok(frames).tolist() == [i not in (1, 4, 9) for i in range(10)]


def test_bad_input_raises():
    with pytest.raises(ValueError, match="uint8"):
        crc16(np.zeros((2, 4), np.int32))
    with pytest.raises(ValueError, match="dimensions"):
        crc16(np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="FECF"):
        fecf_ok(np.zeros((2, 1), np.uint8))
