"""The demodulator: kernels against the references, chunk-split independence, round trips
through the IQ simulator across impairments, Es/N0 and lock, bad input."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest

from groundseg.coding.demod import Demodulator, demodulate, esn0_from_moments
from groundseg.coding.demod import kernels as K
from groundseg.modulation import ModulationSettings, modulation_from_table
from groundseg.sim_iq import impair, modulate, simulate_iq, to_audio
from tests.reference import demod_reference as ref

NOJIT = os.environ.get("NUMBA_DISABLE_JIT") == "1"


def _erfc(x):
    return math.erfc(x)


def bpsk_ser(esn0_db):
    return 0.5 * _erfc(math.sqrt(10 ** (esn0_db / 10)))


def best_ser(soft, bits, qpsk=False, margin=400, lags=range(-40, 41)):
    """Symbol error rate after the best alignment and constellation ambiguity."""
    if qpsk:
        z = soft[0::2] + 1j * soft[1::2]
        cands = []
        for r in range(4):
            for swap in (False, True):
                zz = z * 1j ** r
                if swap:
                    zz = zz.imag + 1j * zz.real
                c = np.empty(2 * zz.size, np.float32)
                c[0::2], c[1::2] = zz.real, zz.imag
                cands.append(c)
        lags = [lag for lag in lags if lag % 2 == 0]
    else:
        cands = [soft, -soft]
    best = 1.0
    for c in cands:
        h = (c > 0).astype(np.int8)
        for lag in lags:
            a, b = (h[lag:], bits) if lag >= 0 else (h, bits[-lag:])
            n = min(a.size, b.size) - 2 * margin
            if n < 100:
                continue
            best = min(best, float(np.mean(a[margin:margin + n] != b[margin:margin + n])))
    return best


# -- the [modulation] table ---------------------------------------------------------------------
def test_modulation_table_valid_and_defaults():
    m = modulation_from_table({"scheme": "BPSK", "symbol_rate": 9600, "audio_center": 12000}, "m.toml")
    assert m.scheme == "bpsk" and m.symbol_rate == 9600.0 and m.audio_center == 12000.0
    assert m.is_psk and m.bits_per_symbol == 1 and m.max_offset_hz == 960.0
    q = modulation_from_table({"scheme": "qpsk", "symbol_rate": 1e6, "rrc_rolloff": 0.5})
    assert q.bits_per_symbol == 2 and q.rrc_rolloff == 0.5


@pytest.mark.parametrize("table, words", [
    ({"symbol_rate": 9600}, "scheme is required"),
    ({"scheme": "am", "symbol_rate": 9600}, "scheme must be one of"),
    ({"scheme": "bpsk"}, "symbol_rate"),
    ({"scheme": "bpsk", "symbol_rate": -1}, "symbol_rate must be >"),
    ({"scheme": "bpsk", "symbol_rate": "fast"}, "must be a number"),
    ({"scheme": "bpsk", "symbol_rate": 9600, "rrc_rolloff": 1.5}, "rrc_rolloff must be <="),
    ({"scheme": "bpsk", "symbol_rate": 9600, "baud": 1}, "unknown key(s) in [modulation]: baud"),
    ({"scheme": "bpsk", "symbol_rate": 9600, "invert": 1}, "invert must be true or false"),
    ({"scheme": "fsk", "symbol_rate": 9600, "subcarrier": 16000}, "subcarrier applies to PSK"),
    ({"scheme": "bpsk", "symbol_rate": 9600, "rrc_span": 4.5}, "whole number"),
])
def test_modulation_table_errors_name_the_key(table, words):
    with pytest.raises(ValueError) as e:
        modulation_from_table(table, "m.toml")
    assert "m.toml" in str(e.value) and words in str(e.value)


# -- kernels against the references ------------------------------------------------------------
def test_fir_and_front_kernels_match_the_references():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(300) + 1j * rng.standard_normal(300)).astype(np.complex64)
    h = K.rrc_taps(4.0, 0.35, 4)
    out = np.empty(x.size, np.complex64)
    pad = np.zeros(h.size - 1, np.float32)
    K.fir_complex_kernel(np.concatenate((pad, x.real)), np.concatenate((pad, x.imag)), h[::-1].copy(), out)
    assert np.allclose(out, ref.fir(list(x), list(h)), atol=1e-5)
    xr = x.real.copy()
    outr = np.empty(x.size, np.float32)
    K.fir_real_kernel(np.concatenate((pad, xr)), h[::-1].copy(), outr)
    assert np.allclose(outr, ref.fir(list(xr), list(h)), atol=1e-5)
    m = np.empty(x.size, np.complex64)
    K.mix_kernel(x, 0.0, 2 * math.pi * 0.13, m)
    assert np.allclose(m, ref.mix(list(x), 0.13), atol=1e-4)
    d = np.empty(x.size, np.float32)
    K.discriminator_kernel(x, complex(1, 0), d)
    assert np.allclose(d, ref.discriminator(list(x)), atol=1e-5)
    dc = np.empty(x.size, np.float32)
    K.dc_block_kernel(xr + 3, 0.0, 0.05, dc)
    assert np.allclose(dc, ref.dc_block(list(xr + 3), 0.05), atol=1e-5)
    y = rng.standard_normal(10)
    for t in (1.0, 2.25, 5.5, 6.999):
        assert math.isclose(K._cubic(y, t), ref.lagrange(list(y), t), abs_tol=1e-12)


@pytest.mark.parametrize("mode, scheme", [(0, "bpsk"), (1, "qpsk"), (2, "fsk")])
def test_sync_kernel_matches_the_reference_loop(mode, scheme):
    s = ModulationSettings(scheme=scheme, symbol_rate=1000)
    bits = np.random.default_rng(4).integers(0, 2, 240)
    x = impair(modulate(bits, s, 4000 * 1.0, timing_offset=0.3), 4000, 1000, 15.0, frequency_hz=5.0, seed=1)
    if mode == 2:
        x = np.angle(x[1:] * np.conj(x[:-1])).astype(np.complex64)
    sps = 4.0
    st = np.zeros(K.STATE_SIZE)
    power0 = float(np.mean(np.abs(x) ** 2))
    st[K.S_POWER], st[K.S_AGC_ALPHA], st[K.S_PERIOD] = power0, 0.01, sps
    st[K.S_T_NEXT] = K.HISTORY + sps / 2 + 1
    st[K.S_KP_T], st[K.S_KI_T], st[K.S_KP_C], st[K.S_KI_C] = 0.02, 0.0005, 0.05, 0.002
    st[K.S_MODE], st[K.S_BLOCK], st[K.S_FREQ_MAX], st[K.S_NCO_RE] = mode, 64, 0.5, 1.0
    buf = np.concatenate((np.zeros(K.HISTORY, np.complex64), x.astype(np.complex64)))
    sym = np.empty(400, np.complex64)
    blk = np.empty((10, K.BLOCK_COLS))
    ns, nb = K.sync_kernel(buf, K.HISTORY, st, sym, blk)
    want = ref.synchronise(list(x), sps, mode, 0.01, power0, 0.02, 0.0005, 0.05, 0.002, wmax=0.5)
    assert ns == len(want) and nb == ns // 64
    assert np.allclose(sym[:ns], np.array(want), atol=2e-3)


# -- chunk boundaries ---------------------------------------------------------------------------
def _small_case(scheme, n_bits=160):
    s = ModulationSettings(scheme=scheme, symbol_rate=1000, esn0_block=16)
    bits = np.random.default_rng(5).integers(0, 2, n_bits)
    x = simulate_iq(bits, s, 4000, esn0_db=12, frequency_hz=20, timing_offset=0.4, seed=2)
    return s, x


@pytest.mark.parametrize("scheme", ["bpsk", "fsk", "oqpsk"])
def test_output_does_not_depend_on_the_split(scheme):
    s, x = _small_case(scheme)
    d = Demodulator(s, 4000, block_samples=128)
    whole = np.concatenate((d.push(x), d.flush()))
    blocks_whole = d.blocks.copy()
    assert whole.size > 100
    step = 7 if NOJIT else 1
    for cut in range(0, x.size + 1, step):
        d = Demodulator(s, 4000, block_samples=128)
        parts = [d.push(x[:cut]), d.push(x[cut:]), d.flush()]
        assert np.array_equal(np.concatenate(parts), whole), cut
    assert np.array_equal(d.blocks, blocks_whole)
    # three pieces, random cuts, and reset() starts over identically
    rng = np.random.default_rng(0)
    for _ in range(10):
        a, b = sorted(rng.integers(0, x.size, 2))
        d.reset()
        out = np.concatenate([d.push(x[:a]), d.push(x[a:b]), d.push(x[b:]), d.flush()])
        assert np.array_equal(out, whole)


# -- round trips --------------------------------------------------------------------------------
GRID = [  # Es/N0 dB, frequency offset (fraction of the symbol rate), drift Hz/s, timing offset, clock ppm
    (12, 0.0, 0, 0.0, 0),
    (8, 0.03, 0, 0.5, 100),
    (6, 0.08, 500, 0.25, -200),
    (4, -0.05, -300, 0.75, 50),
]


@pytest.mark.parametrize("esn0, foff, drift, tau, ppm", GRID)
def test_bpsk_round_trip_across_impairments(esn0, foff, drift, tau, ppm):
    s = ModulationSettings(scheme="bpsk", symbol_rate=10000, frequency_offset_max=2500)
    bits = np.random.default_rng(7).integers(0, 2, 6000 if NOJIT else 20000).astype(np.uint8)
    x = simulate_iq(bits, s, 40000, esn0_db=esn0, frequency_hz=foff * 10000, drift_hz_s=drift,
                    timing_offset=tau, clock_ppm=ppm, phase=0.7, seed=3)
    soft, d = demodulate(x, s, 40000)
    ser = best_ser(soft, bits, margin=1500)     # after acquisition
    # within about 1 dB of the coherent bound (the loops' implementation loss)
    assert ser <= bpsk_ser(esn0 - 1.0) + 2e-4, (ser, bpsk_ser(esn0))
    last = d.blocks[-1]             # the carrier at the end of the last Es/N0 block
    assert d.stats.locked and abs(last["frequency_hz"] - (foff * 10000 + drift * last["symbol"] / 10000)) < 30
    assert abs(np.median(d.blocks["esn0_db"][1:]) - esn0) < 1.0


@pytest.mark.parametrize("esn0", [12, 7])
def test_qpsk_round_trip(esn0):
    s = ModulationSettings(scheme="qpsk", symbol_rate=10000)
    bits = np.random.default_rng(8).integers(0, 2, 8000 if NOJIT else 30000).astype(np.uint8)
    x = simulate_iq(bits, s, 40000, esn0_db=esn0, frequency_hz=250, timing_offset=0.3, phase=2.0, seed=4)
    soft, d = demodulate(x, s, 40000)
    ber_bound = bpsk_ser(esn0 - 3.0 - 1.0)        # per bit: Eb/N0 = Es/N0 - 3 dB
    assert best_ser(soft, bits, qpsk=True, margin=2000) <= ber_bound + 3e-4
    assert d.stats.locked and abs(np.median(d.blocks["esn0_db"][1:]) - esn0) < 1.0


@pytest.mark.parametrize("index, esn0", [(1.2, 8.0), (0.8, 10.0)])
def test_residual_carrier_bpsk(index, esn0):
    """PM with a residual carrier: the PLL holds the carrier, the data is the quadrature arm."""
    s = ModulationSettings(scheme="bpsk", symbol_rate=10000, residual_carrier=True, modulation_index=index)
    bits = np.random.default_rng(12).integers(0, 2, 6000 if NOJIT else 20000).astype(np.uint8)
    x = simulate_iq(bits, s, 40000, esn0_db=esn0, frequency_hz=300, timing_offset=0.3, phase=1.0, seed=2)
    soft, d = demodulate(x, s, 40000)
    data_esn0 = esn0 + 20 * math.log10(math.sin(index))         # the data arm's share
    assert best_ser(soft, bits, margin=1000) <= bpsk_ser(data_esn0 - 1.0) + 5e-4
    assert d.stats.locked and abs(d.stats.frequency_hz - 300) < 10


@pytest.mark.parametrize("residual", [False, True])
def test_bpsk_on_a_subcarrier(residual):
    """BPSK on a 40 kHz sine subcarrier (with or without a residual carrier): the upper sideband
    demodulated as suppressed-carrier BPSK (3 dB below the data power)."""
    s = ModulationSettings(scheme="bpsk", symbol_rate=10000, subcarrier=40000.0, residual_carrier=residual,
                           modulation_index=1.2, frequency_offset_max=2000)
    bits = np.random.default_rng(13).integers(0, 2, 5000 if NOJIT else 15000).astype(np.uint8)
    x = simulate_iq(bits, s, 200000, esn0_db=12, frequency_hz=300, timing_offset=0.3, phase=1.0, seed=2)
    soft, d = demodulate(x, s, 200000)
    assert best_ser(soft, bits, margin=1000) <= bpsk_ser(12 - 3 - 1.5) + 2e-4
    assert d.stats.locked and abs(d.stats.frequency_hz - 300) < 10


def oqpsk_ser(soft, bits, margin=2000):
    """OQPSK's ambiguities are, on the serial I/Q stream, a shift and a sign per arm."""
    best = 1.0
    for pe in (1, -1):
        for po in (1, -1):
            c = soft.copy()
            c[0::2] *= pe
            c[1::2] *= po
            h = (c > 0).astype(np.int8)
            for lag in range(-60, 60):
                a, b = (h[lag:], bits) if lag >= 0 else (h, bits[-lag:])
                n = min(a.size, b.size) - 2 * margin
                best = min(best, float(np.mean(a[margin:margin + n] != b[margin:margin + n])))
    return best


@pytest.mark.parametrize("esn0", [12, 8])
def test_oqpsk_round_trip(esn0):
    s = ModulationSettings(scheme="oqpsk", symbol_rate=10000)
    bits = np.random.default_rng(11).integers(0, 2, 8000 if NOJIT else 30000).astype(np.uint8)
    x = simulate_iq(bits, s, 40000, esn0_db=esn0, frequency_hz=-350, timing_offset=0.7, phase=0.4, seed=6)
    soft, d = demodulate(x, s, 40000)
    assert oqpsk_ser(soft, bits) <= bpsk_ser(esn0 - 3.0 - 1.5) + 3e-4
    assert d.stats.locked and abs(np.median(d.blocks["esn0_db"][1:]) - esn0) < 1.0


@pytest.mark.parametrize("scheme, esn0, limit", [("fsk", 14, 1e-3), ("fsk", 10, 0.02), ("gmsk", 14, 0.01)])
def test_fsk_round_trip_from_iq(scheme, esn0, limit):
    s = ModulationSettings(scheme=scheme, symbol_rate=9600)
    bits = np.random.default_rng(9).integers(0, 2, 6000 if NOJIT else 20000).astype(np.uint8)
    x = simulate_iq(bits, s, 48000, esn0_db=esn0, frequency_hz=400, timing_offset=0.6, clock_ppm=100, seed=5)
    soft, d = demodulate(x, s, 48000)
    assert best_ser(soft, bits) <= limit
    assert d.stats.locked


def test_fsk_audio_and_bpsk_in_ssb_audio():
    """Real-valued inputs: FM-discriminator audio (FSK) and BPSK on a 12 kHz audio carrier."""
    bits = np.random.default_rng(10).integers(0, 2, 5000 if NOJIT else 12000).astype(np.uint8)
    s = ModulationSettings(scheme="fsk", symbol_rate=9600)
    iq = simulate_iq(bits, s, 48000, esn0_db=15, seed=6)
    audio = np.angle(iq[1:] * np.conj(iq[:-1])).astype(np.float32) * 0.3 + 0.05    # with a DC offset
    soft, _ = demodulate(audio, s, 48000)
    assert best_ser(soft, bits) < 2e-3
    b = ModulationSettings(scheme="bpsk", symbol_rate=9600, audio_center=12000)
    iq = simulate_iq(bits, b, 48000, esn0_db=12, frequency_hz=-600, seed=7)
    audio = to_audio(iq, 48000, 12000)
    soft, d = demodulate(audio, b, 48000)
    assert best_ser(soft, bits) < 1e-3 and abs(d.stats.frequency_hz + 600) < 20


# -- Es/N0, lock, no signal, bad input -------------------------------------------------------
def test_m2m4_estimator():
    rng = np.random.default_rng(0)
    for esn0 in (0.0, 5.0, 10.0, 20.0):
        n = 200000
        a = rng.choice([-1.0, 1.0], n)
        nv = 10 ** (-esn0 / 10)
        z = a + math.sqrt(nv / 2) * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
        m2, m4 = np.mean(np.abs(z) ** 2), np.mean(np.abs(z) ** 4)
        assert abs(esn0_from_moments(m2, m4, real=False) - esn0) < 0.3
        r = a + math.sqrt(nv / 2) * rng.standard_normal(n)
        m2, m4 = np.mean(r ** 2), np.mean(r ** 4)
        assert abs(esn0_from_moments(m2, m4, real=True) - esn0) < 0.3


@pytest.mark.parametrize("scheme", ["bpsk", "qpsk", "fsk"])
def test_noise_only_reports_no_lock(scheme):
    s = ModulationSettings(scheme=scheme, symbol_rate=10000)
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(80000) + 1j * rng.standard_normal(80000)).astype(np.complex64)
    soft, d = demodulate(x, s, 40000)
    assert np.isfinite(soft).all()
    assert d.stats.locked_blocks <= d.stats.blocks // 10 and not d.stats.locked
    for flat in (np.zeros(5000, np.complex64), np.zeros(5000, np.float32), np.ones(50000, np.complex64),
                 np.full(50000, 0.3, np.float32)):
        soft, d = demodulate(flat, s, 40000)
        assert np.isfinite(soft).all() and not d.stats.locked and d.stats.locked_blocks == 0


def test_nan_and_inf_samples_are_zeroed_and_counted():
    s, x = _small_case("bpsk", 400)
    x = x.copy()
    x[100:110] = np.nan
    x[500] = np.inf
    soft, d = demodulate(x, s, 4000)
    assert np.isfinite(soft).all() and d.stats.nonfinite_samples == 11
    f = ModulationSettings(scheme="fsk", symbol_rate=1000)
    soft, d = demodulate(np.where(np.arange(x.size) % 97 == 0, np.nan, x.real).astype(np.float32), f, 4000)
    assert np.isfinite(soft).all() and d.stats.nonfinite_samples > 0


def test_bad_input():
    s = ModulationSettings(scheme="bpsk", symbol_rate=10000)
    d = Demodulator(s, 40000)
    with pytest.raises(ValueError, match="one-dimensional"):
        d.push(np.zeros((4, 2), np.complex64))
    d.push(np.zeros(10, np.complex64))
    with pytest.raises(ValueError, match="switched between real and complex"):
        d.push(np.zeros(10, np.float32))
    with pytest.raises(ValueError, match="samples per symbol"):
        Demodulator(s, 15000)
    with pytest.raises(ValueError, match="not <U"):
        Demodulator(s, 40000).push(np.array(["a"]))
    assert d.stats.to_dict()["samples_in"] == 10
