"""Soft-decision Viterbi on real soft symbols; see each capture's PROVENANCE.md.

TRISAT: NASA-DSN convention, ASMs 2073 bits apart, RS(255,223) dual basis, TM frames with
FECF. BY70-1: CCSDS convention, NRZ-M after the Viterbi decoder, RS conventional basis
shortened to (146,114), the pair alignment changes between bursts and the ASMs are 1200
or 1920 bits apart (so the synchroniser takes a marker without the one-CADU-later check).
"""
from __future__ import annotations

import numpy as np
import pytest

from groundseg.coding import differential
from groundseg.coding import viterbi_decoder as vd
from groundseg.coding.channel import ChannelConfig, ChannelDecoder
from groundseg.coding.frame_batch import INTEGRITY_CORRECTED, INTEGRITY_UNCORRECTABLE, FrameBatch

pytestmark = pytest.mark.real


def _load(captures, folder, name, ref_name, frame_length):
    path = captures / folder / name
    ref = captures / folder / ref_name
    if not path.is_file() or not ref.is_file():
        pytest.skip(f"{path} or {ref} absent")
    return np.fromfile(path, np.float32), np.fromfile(ref, np.uint8).reshape(-1, frame_length)


def _chunks(x, size):
    return [x[p:p + size] for p in range(0, x.size, size)]


def test_trisat_soft_symbols_give_the_reference_frames(captures):
    x, ref = _load(captures, "trisat-fsk", "trisat_softsym_9766baud.f32", "trisat_frames.gr-satellites.bin", 223)
    assert ref.shape == (4, 223)
    vit = vd.ViterbiDecoder("1/2", "nasa-dsn", ambiguity="bpsk")
    chan = ChannelDecoder(ChannelConfig(frame_length=223, fecf=True))     # spacing tolerance 1: 2073 bits
    batches = [chan.push(vit.push(c)) for c in _chunks(x, 5000)]
    batches += [chan.push(vit.flush()), chan.flush()]
    fb = FrameBatch.concatenate(batches, 223)
    ok = fb.frames[fb.quality["integrity"] <= INTEGRITY_CORRECTED]
    assert len(ok) >= 5, "4 reference frames and the 5th valid one (PROVENANCE.md)"
    assert np.array_equal(ok[:4], ref)
    assert ok[4][:6].tobytes().hex() == "00094c8f401a"          # MCFC 76, VCFC 143
    assert [c[2] for c in vit.stats.changes] == [0]               # one alignment for the pass
    assert vit.stats.ser < 0.1 and np.isfinite(vit.stats.esn0_db)


def test_by70_1_soft_symbols_give_the_reference_frames(captures):
    x, ref = _load(captures, "by70-1-bpsk", "by70-1_softsym_9600baud.f32", "by70-1_frames.gr-satellites.bin", 114)
    assert ref.shape == (18, 114)
    vit = vd.ViterbiDecoder("1/2", "ccsds", ambiguity="bpsk", block_bits=512)   # short bursts: decide often
    nrzm = differential.DifferentialDecoder()
    # markers 1200 or 1920 bits apart: accept a marker without the check one CADU later
    cfg = ChannelConfig(frame_length=114, fecf=False, dual_basis=False, sync_verify=False,
                        asm_max_bit_errors=3, sync_flywheel=0)
    chan = ChannelDecoder(cfg)
    batches = [chan.push(nrzm.push(vit.push(c))) for c in _chunks(x, 8192)]
    batches += [chan.push(nrzm.push(vit.flush())), chan.flush()]
    fb = FrameBatch.concatenate(batches, 114)
    good = {f.tobytes() for f, q in zip(fb.frames, fb.quality) if q["integrity"] != INTEGRITY_UNCORRECTABLE}
    assert {r.tobytes() for r in ref} <= good, "all 18 gr-satellites frames"
    assert len(good) == 19, "19 are recoverable (PROVENANCE.md)"
    offsets = [c[2] for c in vit.stats.changes]
    assert set(offsets) == {0, 1} and vit.stats.switches >= 2      # the alignment changes between bursts
    assert all(g[:3] == b"\xc0\xb8\x64" for g in good)                 # KISS stream (PROVENANCE.md)
