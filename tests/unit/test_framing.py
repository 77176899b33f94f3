"""KISS and length-prefixed deframers against the pure-Python references: every chunk boundary, garbage, cuts."""
from __future__ import annotations

import numpy as np
import pytest

from groundseg.sources.framing import (
    FEND,
    FESC,
    KissDeframer,
    LengthDeframer,
    counts_dict,
    kiss_encode,
    length_encode,
    make_deframer,
)
from tests.reference.framing import kiss_reference, length_reference

L = 40


def frames_with_specials(n, seed=0):
    rng = np.random.default_rng(seed)
    f = rng.integers(0, 256, (n, L), dtype=np.uint8)
    f[::3, 5] = FEND          # bytes that need escaping
    f[1::3, 0] = FESC
    f[2::4, -1] = FEND
    return f


def run(deframer, stream: bytes, cuts):
    out = []
    prev = 0
    for c in list(cuts) + [len(stream)]:
        out.append(deframer.push(np.frombuffer(stream[prev:c], np.uint8)))
        prev = c
    deframer.end_stream()
    got = np.concatenate(out) if out else np.zeros(0, np.uint8)
    return got.reshape(-1, L), counts_dict(deframer.counts)


def test_kiss_encode_roundtrip_whole():
    f = frames_with_specials(30)
    got, counts = run(KissDeframer(L), kiss_encode(f), [])
    assert (got == f).all() and counts["frames"] == 30 and sum(counts.values()) == 30


def test_kiss_every_chunk_boundary():
    f = frames_with_specials(3, seed=1)
    stream = b"\x11\x22" + kiss_encode(f) + b"\x00\x01" + kiss_encode(f[:1])
    ref_frames, ref_counts = kiss_reference(stream, L)
    for a in range(len(stream) + 1):
        for b in (a, min(len(stream), a + 1), min(len(stream), a + 47)):
            got, counts = run(KissDeframer(L), stream, sorted({a, b}))
            assert counts == ref_counts, (a, b)
            assert [bytes(r) for r in got] == ref_frames


def test_kiss_garbage_other_commands_bad_escapes_cut():
    f = frames_with_specials(6, seed=2)
    rng = np.random.default_rng(3)
    parts = [b"junk-before-first-fend"]
    for i, row in enumerate(f):
        parts.append(kiss_encode(row[None], port=0))
        parts.append(bytes(rng.integers(0, 256, 17, dtype=np.uint8)))   # line noise, FENDs and all
    parts.append(kiss_encode(f[:1], port=1))                            # another port
    parts.append(bytes([FEND, 0x01, 1, 2, 3, FEND]))                     # a TNC parameter command
    parts.append(bytes([FEND, 0x00, FESC, 0x41, FEND]))                  # bad escape
    parts.append(bytes([FEND, 0x00]) + bytes(10))                        # cut by the stream's end
    stream = b"".join(parts)
    ref_frames, ref_counts = kiss_reference(stream, L)
    assert ref_counts["cut"] == 1 and ref_counts["bad_escape"] >= 1 and ref_counts["other_command"] >= 2
    rng = np.random.default_rng(4)
    for trial in range(40):
        cuts = sorted(rng.integers(0, len(stream), rng.integers(0, 12)).tolist())
        got, counts = run(KissDeframer(L), stream, cuts)
        assert counts == ref_counts
        assert [bytes(r) for r in got] == ref_frames
    # every true frame survives the noise (noise only adds rejected pseudo-frames)
    assert set(bytes(r) for r in f) <= set(ref_frames)


def test_kiss_any_port_and_oversize():
    f = frames_with_specials(2, seed=5)
    d = KissDeframer(L, port=-1)
    got = d.push(np.frombuffer(kiss_encode(f, port=3), np.uint8))
    assert got.size == 2 * L
    d = KissDeframer(L)
    d.push(np.frombuffer(bytes([FEND, 0]) + bytes(500), np.uint8))    # no FEND for far too long
    assert d.counts[6] == 1
    got = d.push(np.frombuffer(kiss_encode(f), np.uint8))
    assert (got.reshape(-1, L) == f).all()


@pytest.mark.parametrize("header,includes", [(2, False), (4, False), (2, True)])
def test_length_every_chunk_boundary(header, includes):
    f = frames_with_specials(3, seed=6)
    stream = length_encode(f, header, includes)
    ref_frames, ref_counts = length_reference(stream, L, header, includes_header=includes)
    assert ref_counts["frames"] == 3
    for a in range(len(stream) + 1):
        got, counts = run(LengthDeframer(L, header, includes_header=includes), stream, [a])
        assert counts == ref_counts and [bytes(r) for r in got] == ref_frames, a


def test_length_garbage_wrong_length_cut():
    f = frames_with_specials(8, seed=7)
    rng = np.random.default_rng(8)
    parts = [b"\x00\x05abc"]
    for row in f:
        parts.append(length_encode(row[None], 2))
        parts.append(bytes(rng.integers(0, 256, 13, dtype=np.uint8)))
    parts.append(length_encode(np.zeros((1, L - 4), np.uint8), 2))   # wrong length (inside the range below)
    parts.append(length_encode(f[:2], 2))
    parts.append(length_encode(f[:1], 2)[:-5])                       # cut
    stream = b"".join(parts)
    kw = dict(min_len=L - 8, max_len=L)
    ref_frames, ref_counts = length_reference(stream, L, 2, **kw)
    assert ref_counts["wrong_length"] >= 1 and ref_counts["cut"] == 1
    for trial in range(40):
        cuts = sorted(rng.integers(0, len(stream), rng.integers(0, 12)).tolist())
        got, counts = run(LengthDeframer(L, 2, min_length=L - 8, max_length=L), stream, cuts)
        assert counts == ref_counts and [bytes(r) for r in got] == ref_frames
    assert set(bytes(r) for r in f) <= set(ref_frames)


def test_make_deframer_errors():
    assert make_deframer("raw").push(b"ab").tobytes() == b"ab"
    with pytest.raises(ValueError):
        make_deframer("kiss")
    with pytest.raises(ValueError):
        make_deframer("hdlc", 10)
