"""IQ and audio sources: SigMF read and annotation write-back (checked by the sigmf package's own
validator), raw IQ formats, WAV, the simulator's SigMF, and bad input."""
from __future__ import annotations

import json
import wave

import numpy as np
import pytest

from groundseg.coding.demod import demodulate
from groundseg.modulation import ModulationSettings
from groundseg.sim_iq import simulate_iq
from groundseg.sources import sdr
from groundseg.sources.sdr import (
    IQError,
    IQFile,
    SigMFRecording,
    WavFile,
    annotate_sigmf,
    frame_annotations,
    open_iq,
    write_sigmf,
)
from tests.unit.test_demod import best_ser

sigmf = pytest.importorskip("sigmf")


def _validate(meta_path):
    from sigmf import validate
    validate.validate(json.loads(open(meta_path).read()))


def _iq(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(-0.9, 0.9, n) + 1j * rng.uniform(-0.9, 0.9, n)).astype(np.complex64)


@pytest.mark.parametrize("datatype, tol", [("cf32_le", 0), ("ci16_le", 1 / 32768), ("cu8", 1 / 128),
                                           ("ci8", 1 / 128), ("rf32_le", 0), ("ri16_le", 1 / 32768)])
def test_sigmf_round_trip_every_datatype(tmp_path, datatype, tol):
    x = _iq()
    if datatype.startswith("r"):
        x = x.real.copy()
    meta = write_sigmf(tmp_path / "rec", x, 2.4e6, 437.1e6, datatype=datatype, datetime_utc="2026-01-02T03:04:05Z")
    _validate(meta)
    rec = open_iq(meta, chunk_samples=700)
    assert isinstance(rec, SigMFRecording) and rec.datatype == datatype
    assert rec.sample_rate == 2.4e6 and rec.center_frequency == 437.1e6 and rec.sample_count == x.size
    chunks = list(rec.chunks())
    assert [c.offset for c in chunks] == list(range(0, x.size, 700)) and chunks[0].new_stream
    assert chunks[0].rx_time == pytest.approx(1767323045.0) and chunks[1].rx_time == pytest.approx(1767323045.0 + 700 / 2.4e6)
    y = np.concatenate([c.data for c in chunks])
    assert y.dtype == (np.float32 if datatype.startswith("r") else np.complex64)
    assert np.max(np.abs(y - x)) <= tol * 1.01 + 1e-7
    assert rec.stats.bytes_in == x.size * sdr.sample_size(sdr.SIGMF_DATATYPES[datatype])
    # the data file's path works too
    assert SigMFRecording(str(meta).replace("-meta", "-data")).sample_count == x.size


def test_annotations_written_back_and_valid(tmp_path):
    meta = write_sigmf(tmp_path / "pass", _iq(), 1e6, 0.0)
    ann = frame_annotations([0, 500, 1000], frame_bits=200, symbols_per_bit=2, samples_per_symbol=0.5)
    assert annotate_sigmf(meta, ann) == 3
    assert annotate_sigmf(meta, [{"sample_start": 2990, "sample_count": 100}]) == 0    # beyond the data
    _validate(meta)
    rec = SigMFRecording(meta)
    assert [(a["core:sample_start"], a["core:sample_count"], a["core:label"]) for a in rec.annotations] == [
        (0, 200, "frame"), (500, 200, "frame"), (1000, 200, "frame")]


def test_frame_annotations_from_the_timing_loop():
    s = ModulationSettings(scheme="bpsk", symbol_rate=10000)
    bits = np.random.default_rng(3).integers(0, 2, 20000).astype(np.uint8)
    x = simulate_iq(bits, s, 40000, esn0_db=20, timing_offset=0.25, clock_ppm=300, seed=2)
    soft, d = demodulate(x, s, 40000)
    h = soft > 0
    lag = next(k for k in range(30) if np.mean(h[k:k + 5000] == (bits[:5000] == 1)) > 0.99)
    # bit k of the simulation is centred at (8 lead symbols + 0.25 + k) symbols, clock 300 ppm slow
    for k in (100, 5000, 15000):
        assert abs(d.sample_of_symbol(k + lag) - (8.25 + k) * 4 * (1 + 300e-6)) < 1.0
    ann = frame_annotations([100], frame_bits=1000, symbols_per_bit=1, sample_of_symbol=d.sample_of_symbol,
                            comments=["VC 4"])
    assert abs(ann[0]["sample_start"] - d.sample_of_symbol(100)) <= 1 and ann[0]["comment"] == "VC 4"
    assert abs(ann[0]["sample_count"] - 4000 * (1 + 300e-6)) <= 2


def test_simulated_sigmf_recording_demodulates(tmp_path):
    s = ModulationSettings(scheme="bpsk", symbol_rate=10000)
    bits = np.random.default_rng(1).integers(0, 2, 4000).astype(np.uint8)
    x = simulate_iq(bits, s, 40000, esn0_db=12, frequency_hz=150, seed=1) * 0.25
    meta = write_sigmf(tmp_path / "sim", x, 40000, 437e6, datatype="ci16_le")
    rec = SigMFRecording(meta)
    soft, d = demodulate(rec.read(), s, rec.sample_rate)
    assert d.stats.locked and soft.size > 3900
    assert best_ser(soft, bits, margin=800) < 1e-3


def test_sigmf_metadata_that_disagrees_with_its_data(tmp_path):
    meta = write_sigmf(tmp_path / "a", _iq(100), 1e6, 0.0, datatype="cf32_le")
    data = tmp_path / "a.sigmf-data"
    md = json.loads(meta.read_text())
    # length: not a whole number of samples
    with open(data, "ab") as f:
        f.write(b"\x00\x01\x02")
    md["global"].pop("core:sha512", None)
    meta.write_text(json.dumps(md))
    with pytest.raises(IQError, match="not a whole number of cf32_le samples"):
        SigMFRecording(meta)
    # datatype: ci16 data declared as cf32 -> the size still divides, so a declared count catches it
    data.write_bytes(np.zeros(152, "<i2").tobytes())       # 76 ci16 samples = 38 cf32 ones
    md["global"]["core:sample_count"] = 76
    meta.write_text(json.dumps(md))
    with pytest.raises(IQError, match="core:sample_count 76 but the data holds 38 samples"):
        SigMFRecording(meta)
    md["global"].pop("core:sample_count")
    # an annotation beyond the data
    md["annotations"] = [{"core:sample_start": 30, "core:sample_count": 100}]
    meta.write_text(json.dumps(md))
    with pytest.raises(IQError, match="annotation ends at sample 130"):
        SigMFRecording(meta)
    md["annotations"] = []
    # checksum that does not match the data: the sigmf package's complaint, as one line
    md["global"]["core:sha512"] = "0" * 128
    meta.write_text(json.dumps(md))
    with pytest.raises(IQError, match="invalid SigMF"):
        SigMFRecording(meta)


@pytest.mark.parametrize("datatype", ["ci32_le", "cf32_be", "cf64_le", None])
def test_unsupported_sigmf_datatype(tmp_path, datatype):
    write_sigmf(tmp_path / "b", _iq(10), 1e6)
    meta = tmp_path / "b.sigmf-meta"
    md = json.loads(meta.read_text())
    md["global"]["core:datatype"] = datatype
    meta.write_text(json.dumps(md))
    with pytest.raises(IQError, match="unsupported core:datatype"):
        SigMFRecording(meta)


def test_sigmf_missing_files(tmp_path):
    with pytest.raises(IQError, match="no such SigMF metadata"):
        SigMFRecording(tmp_path / "nothing.sigmf-meta")
    write_sigmf(tmp_path / "c", _iq(10), 1e6)
    (tmp_path / "c.sigmf-data").unlink()
    with pytest.raises(IQError, match="data file is missing"):
        SigMFRecording(tmp_path / "c.sigmf-meta")
    (tmp_path / "d.sigmf-meta").write_text("{not json")
    (tmp_path / "d.sigmf-data").write_bytes(b"")
    with pytest.raises(IQError, match="not JSON"):
        SigMFRecording(tmp_path / "d.sigmf-meta")


@pytest.mark.parametrize("fmt", ["cf32", "ci16", "cu8", "ci8"])
def test_raw_iq_formats(tmp_path, fmt):
    x = _iq(1000)
    inter = np.empty(2000)
    inter[0::2], inter[1::2] = x.real, x.imag
    raw = {"cf32": x.astype(np.complex64).tobytes(), "ci16": np.round(inter * 32768).astype("<i2").tobytes(),
           "cu8": np.round(inter * 128 + 127.5).astype("u1").tobytes(),
           "ci8": np.round(inter * 128).astype("i1").tobytes()}[fmt]
    p = tmp_path / f"x.{fmt}"
    p.write_bytes(raw + b"\x07")                                # a partial trailing sample
    src = open_iq(p, fmt=fmt, sample_rate=1e6, chunk_samples=300)
    assert isinstance(src, IQFile)
    y = src.read()
    assert y.size == 1000 and np.max(np.abs(y - x)) < 1 / 100
    assert src.stats.truncated_bytes == 1
    with pytest.raises(IQError, match="unsupported sample format"):
        IQFile(p, "cs16", 1e6)
    with pytest.raises(IQError, match="needs its format"):
        open_iq(p)
    with pytest.raises(IQError, match="sample rate must be positive"):
        IQFile(p, fmt, 0)


def _wav(path, data, rate=48000, channels=1, width=2):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)


def test_wav_mono_16bit(tmp_path):
    pcm = (np.sin(np.arange(5000) * 0.1) * 20000).astype("<i2")
    _wav(tmp_path / "a.wav", pcm.tobytes())
    src = open_iq(tmp_path / "a.wav", sample_rate=48000, chunk_samples=1024)
    assert isinstance(src, WavFile) and src.real and src.sample_rate == 48000
    y = src.read()
    assert y.dtype == np.float32 and np.allclose(y, pcm / 32768)


def test_wav_bad_input(tmp_path):
    pcm = np.zeros(200, "<i2").tobytes()
    _wav(tmp_path / "stereo.wav", pcm, channels=2)
    with pytest.raises(IQError, match="2 audio channels; a mono recording is needed"):
        WavFile(tmp_path / "stereo.wav")
    _wav(tmp_path / "r.wav", pcm, rate=44100)
    with pytest.raises(IQError, match="sample rate 44100 Hz, but 48000 Hz was expected"):
        WavFile(tmp_path / "r.wav", sample_rate=48000)
    assert WavFile(tmp_path / "r.wav").sample_rate == 44100
    _wav(tmp_path / "8.wav", pcm[:100], width=1)
    with pytest.raises(IQError, match="8-bit samples"):
        WavFile(tmp_path / "8.wav")
    (tmp_path / "junk.wav").write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(IQError, match="not a PCM WAV"):
        WavFile(tmp_path / "junk.wav")
    with pytest.raises(IQError, match="no such WAV"):
        WavFile(tmp_path / "none.wav")


def test_soapysdr_absent_is_one_clear_line():
    try:
        import SoapySDR  # noqa: F401
    except ImportError:
        with pytest.raises(IQError, match="live SDR input needs SoapySDR"):
            sdr.SoapySource("driver=rtlsdr", 2.4e6, 437e6)
    else:
        with pytest.raises(IQError, match="cannot open"):
            sdr.SoapySource("driver=no-such-driver", 2.4e6, 437e6)


def test_quicklook_png(tmp_path):
    pytest.importorskip("matplotlib")
    from groundseg.coding.demod.quicklook import quicklook, spectrum
    s = ModulationSettings(scheme="bpsk", symbol_rate=10000)
    bits = np.random.default_rng(2).integers(0, 2, 6000).astype(np.uint8)
    x = simulate_iq(bits, s, 40000, esn0_db=10, frequency_hz=500, seed=2)
    f, p = spectrum(x, 40000)
    assert abs(f[np.argmax(p)] - 500) < 5000 and f.size == 4096
    summary = quicklook(x, 40000, tmp_path / "ql.png", s, center_frequency=437e6, title="sim")
    png = (tmp_path / "ql.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and summary["symbols"] > 5900 and summary["locked_fraction"] > 0.8
    quicklook(np.zeros(100, np.float32), 48000, tmp_path / "none.png")          # no modulation, no signal
    assert (tmp_path / "none.png").stat().st_size > 0


def test_demodulated_source_gives_soft_chunks_with_times(tmp_path):
    from groundseg.coding.demod.source import DemodulatedSource
    s = ModulationSettings(scheme="bpsk", symbol_rate=10000)
    bits = np.random.default_rng(4).integers(0, 2, 6000).astype(np.uint8)
    recs = []
    for i in range(2):
        x = simulate_iq(bits, s, 40000, esn0_db=12, frequency_hz=200 * i, seed=i) * 0.25
        meta = write_sigmf(tmp_path / f"p{i}", x, 40000, 437e6, datetime_utc=f"2026-01-02T03:04:{5 + 5 * i:02d}Z")
        recs.append(SigMFRecording(meta, chunk_samples=5000))
    src = DemodulatedSource(sdr.IQFiles([r.meta_path for r in recs], chunk_samples=5000), s)
    chunks = list(src.chunks())
    assert all(c.kind == "soft" and c.data.dtype == np.float32 and c.rate == 10000 for c in chunks)
    starts = [i for i, c in enumerate(chunks) if c.new_stream]
    assert len(starts) == 2 and starts[0] == 0
    for a, b in ((0, starts[1]), (starts[1], len(chunks))):
        part = chunks[a:b]
        assert [c.offset for c in part] == list(np.cumsum([0] + [c.data.size for c in part[:-1]]))
        soft = np.concatenate([c.data for c in part])
        assert best_ser(soft, bits, margin=800) < 1e-3
    # the first soft symbol of each stream: its capture's datetime (the filter's first output is a
    # few samples before the first input sample: the symbol is taken from the filter's history)
    t0 = 1767323045.0
    assert abs(chunks[0].rx_time - t0) < 1e-3 and abs(chunks[starts[1]].rx_time - t0 - 5) < 1e-3
    # a later chunk's time follows its offset at the symbol rate (within a few symbols)
    c = chunks[1]
    assert abs(c.rx_time - (chunks[0].rx_time + c.offset / 10000)) < 5e-4
    assert src.stats.bytes_in == 2 * 8 * recs[0].sample_count and src.stats.streams == 2
    assert len(src.demods) == 2 and src.names == [str(r.path) for r in recs]
    q = src.quality
    assert q.size >= 8 and set(q["stream"]) == {0, 1} and q["locked"].all()
    assert np.all(np.diff(q["time"][q["stream"] == 0]) > 0.09)
