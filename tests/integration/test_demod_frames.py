"""Frames -> RS -> ASM -> convolutional code -> modulated, impaired IQ (SigMF) -> demodulator ->
Viterbi -> sync -> RS -> the same frames: the frame error rate across impairments."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from groundseg.coding import viterbi_decoder as vd
from groundseg.coding.channel import ChannelConfig, ChannelDecoder, ChannelEncoder
from groundseg.coding.demod import Demodulator
from groundseg.coding.differential import DifferentialDecoder as differential_decoder
from groundseg.coding.frame_batch import FrameBatch
from groundseg.modulation import ModulationSettings
from groundseg.sim_iq import channel_symbols, simulate_sigmf

pytest.importorskip("sigmf")
from groundseg.sources.sdr import SigMFRecording, annotate_sigmf, frame_annotations

NOJIT = os.environ.get("NUMBA_DISABLE_JIT") == "1"
# through the Viterbi decoder as well: minutes without the JIT
pytestmark = pytest.mark.slow


def _round_trip(tmp_path, settings, fs, nframes, differential=False, **imp):
    cfg = ChannelConfig(frame_length=223, fecf=False)
    frames = np.random.default_rng(imp.get("seed", 0)).integers(0, 256, (nframes, 223), dtype=np.uint8)
    cadus = ChannelEncoder(cfg).encode(frames)
    symbols = channel_symbols(cadus, "1/2", "ccsds", differential=differential)
    meta = simulate_sigmf(tmp_path / "pass", symbols, settings, fs, center_frequency=437e6, datatype="ci16_le", **imp)
    rec = SigMFRecording(meta, chunk_samples=40_000)
    demod = Demodulator(settings, rec.sample_rate)
    vit = vd.ViterbiDecoder("1/2", "ccsds", ambiguity="bpsk")
    nrzm = differential_decoder() if differential else None

    def inner(soft, last=False):
        bits = vit.push(soft) if not last else np.concatenate([vit.push(soft), vit.flush()])
        return nrzm.push(bits) if nrzm else bits

    chan = ChannelDecoder(cfg)
    out = [chan.push(inner(demod.push(c.data))) for c in rec.chunks()]
    out += [chan.push(inner(demod.flush(), last=True)), chan.flush()]
    fb = FrameBatch.concatenate(out, 223)
    got = {f.tobytes() for f, q in zip(fb.frames, fb.quality) if q["rs_corrected"] >= 0}
    lost = [i for i, f in enumerate(frames) if f.tobytes() not in got]
    # decoded frames written back into the recording as SigMF annotations
    ok = fb.quality["rs_corrected"] >= 0
    ann = frame_annotations(fb.quality["bit_position"][ok], frame_bits=8 * cfg.cadu_length, symbols_per_bit=2,
                            sample_of_symbol=demod.sample_of_symbol)
    assert annotate_sigmf(meta, ann) == len(ann)
    from sigmf import validate
    validate.validate(json.loads(open(meta).read()))
    starts = np.array([a["core:sample_start"] for a in SigMFRecording(meta).annotations])
    sps = fs / settings.symbol_rate
    index = [next(i for i, f in enumerate(frames) if f.tobytes() == g.tobytes()) for g in fb.frames[ok]]
    # frame i's CADU starts at encoded bit 8 * cadu_length * i: symbol 2x that after 8 lead symbols
    expect = (8 + 2 * 8 * cfg.cadu_length * np.array(index)) * sps * (1 + imp.get("clock_ppm", 0) * 1e-6)
    assert np.all(np.abs(starts - expect) < 2.5 * sps), (starts - expect) / sps     # within 2.5 symbols
    return len(lost) / nframes, demod, lost


@pytest.mark.parametrize("esn0, foff, drift, tau, ppm, max_fer", [
    (8.0, 0.0, 0, 0.0, 0, 0.0),
    (3.0, 300.0, 200, 0.4, 100, 0.0),       # Eb/N0 6 dB after the rate-1/2 code: no frame lost
    (1.0, -700.0, -300, 0.8, -150, 0.1),    # Eb/N0 4 dB: the odd frame (acquisition)
])
def test_bpsk_frames_through_iq(tmp_path, esn0, foff, drift, tau, ppm, max_fer):
    s = ModulationSettings(scheme="bpsk", symbol_rate=20000)
    fer, demod, lost = _round_trip(tmp_path, s, 80000, 6 if NOJIT else 20, esn0_db=esn0, frequency_hz=foff,
                             drift_hz_s=drift, timing_offset=tau, clock_ppm=ppm, phase=1.1, seed=3)
    assert fer <= max_fer, lost
    assert demod.stats.locked_blocks >= 0.9 * demod.stats.blocks


def test_differential_bpsk_frames_through_iq(tmp_path):
    """BY70-1's scheme: NRZ-M before the convolutional code, undone after the Viterbi decoder."""
    s = ModulationSettings(scheme="bpsk", symbol_rate=20000)
    fer, demod, lost = _round_trip(tmp_path, s, 80000, 10, differential=True, esn0_db=4.0, frequency_hz=-400,
                                   timing_offset=0.5, phase=2.5, seed=5)
    assert fer == 0.0, lost


@pytest.mark.parametrize("esn0, max_fer", [(14.0, 0.1), (11.0, 0.1)])
def test_fsk_frames_through_iq(tmp_path, esn0, max_fer):
    s = ModulationSettings(scheme="fsk", symbol_rate=9600)
    fer, demod, lost = _round_trip(tmp_path, s, 48000, 4 if NOJIT else 12, esn0_db=esn0, frequency_hz=500,
                             timing_offset=0.3, clock_ppm=200, seed=4)
    # at most the first frame, which starts 8 symbols into the recording: the timing loop
    # is still pulling in the 200 ppm clock error (a real pass has a preamble)
    assert fer <= max_fer and set(lost) <= {0} and demod.stats.locked, lost
