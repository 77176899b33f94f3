"""The simulator's IQ side: symbols -> a modulated, impaired IQ recording (SigMF).

:func:`modulate` turns bits into complex baseband at any (non-integer) samples per
symbol for the mission's modulation (BPSK/QPSK with RRC pulses, 2-FSK/GMSK as
continuous-phase FM); :func:`impair` adds a carrier frequency offset and drift, a
phase and white Gaussian noise at a given Es/N0; :func:`simulate_iq` does both and
:func:`groundseg.sources.sdr.write_sigmf` writes the result. Timing offset and symbol
clock error are parameters of :func:`modulate`.

Power convention: the modulated signal has unit mean power per sample, so a symbol
carries Es = samples per symbol, and complex noise of variance sps / (Es/N0) per
sample gives the requested Es/N0.
"""
from __future__ import annotations

import math

import numpy as np

from groundseg.modulation import ModulationSettings


def _rrc(t: np.ndarray, a: float) -> np.ndarray:
    """Continuous root-raised-cosine pulse at t in symbols (peak 1 - a + 4a/pi)."""
    out = np.empty_like(t, dtype=np.float64)
    small = np.abs(t) < 1e-9
    sing = (np.abs(np.abs(4 * a * t) - 1.0) < 1e-9) & ~small
    reg = ~small & ~sing
    tr = t[reg]
    out[reg] = (np.sin(np.pi * tr * (1 - a)) + 4 * a * tr * np.cos(np.pi * tr * (1 + a))) / (
        np.pi * tr * (1 - (4 * a * tr) ** 2))
    out[small] = 1.0 - a + 4 * a / np.pi
    out[sing] = a / np.sqrt(2) * ((1 + 2 / np.pi) * np.sin(np.pi / (4 * a)) + (1 - 2 / np.pi) * np.cos(np.pi / (4 * a)))
    return out


def symbols_from_bits(bits: np.ndarray, scheme: str) -> np.ndarray:
    """Bits (0/1) -> complex constellation points (bit 1 -> +1, QPSK I then Q, Gray)."""
    b = np.asarray(bits, np.int8)
    if scheme in ("qpsk", "oqpsk"):
        b = b[: b.shape[0] // 2 * 2]
        return ((2 * b[0::2] - 1) + 1j * (2 * b[1::2] - 1)) / np.sqrt(2)
    return (2 * b - 1).astype(np.complex128)


def modulate(bits, settings: ModulationSettings, sample_rate: float, timing_offset: float = 0.0,
             clock_ppm: float = 0.0, lead_symbols: int = 8) -> np.ndarray:
    """Bits -> complex64 baseband at ``sample_rate``, unit mean power.

    ``timing_offset``: the first symbol's delay in symbols; ``clock_ppm``: the symbol clock's
    error; ``lead_symbols`` of silence-free pulses padding the start and end (random data)."""
    s = settings
    sps = sample_rate / s.symbol_rate * (1 + clock_ppm * 1e-6)
    syms = symbols_from_bits(bits, s.scheme)
    nsym = syms.shape[0]
    n = int(math.ceil((nsym + 2 * lead_symbols) * sps))
    t = np.arange(n) / sps - lead_symbols - timing_offset         # in symbols, 0 = first symbol
    if s.is_psk:
        span = s.rrc_span // 2 + 1
        x = np.zeros(n, np.complex128)
        # OQPSK: the Q arm half a symbol after the I arm
        arms = ((syms.real, 0.0, 1.0), (syms.imag, 0.5, 1j)) if s.scheme == "oqpsk" else ((syms, 0.0, 1.0),)
        for a, delay, unit in arms:
            ta = t - delay
            k0 = np.floor(ta).astype(np.int64)
            for d in range(-span, span + 1):
                k = k0 + d
                ok = (k >= 0) & (k < nsym)
                x[ok] += unit * a[k[ok]] * _rrc(ta[ok] - k[ok], s.rrc_rolloff)
        mid = slice(int(lead_symbols * sps), n - int(lead_symbols * sps))
        if s.subcarrier:
            # BPSK on a sine-wave subcarrier
            x = x.real * np.sqrt(2) * np.sin(2 * np.pi * s.subcarrier / sample_rate * np.arange(n))
        if s.residual_carrier or s.subcarrier:
            # phase modulation: a residual carrier cos(b), the data sin(b) on the quadrature
            d = x.real / np.sqrt(np.mean(x.real[mid] ** 2))
            b = s.modulation_index if s.residual_carrier else np.pi / 2
            x = np.cos(b) + 1j * np.sin(b) * d
        p = np.mean(np.abs(x[mid]) ** 2)
        return (x / np.sqrt(p)).astype(np.complex64)
    # continuous-phase FSK: instantaneous frequency +-h/2 symbol rate (h = 1 for 2-FSK, 0.5 GMSK)
    dev = s.fsk_deviation or (s.symbol_rate / 4 if s.scheme == "gmsk" else s.symbol_rate / 2)
    k = np.clip(np.floor(t).astype(np.int64), 0, nsym - 1)
    nrz = syms.real[k]
    nrz[(t < 0) | (t >= nsym)] = 0.0
    if s.scheme == "gmsk":
        # Gaussian frequency pulse of bandwidth-time product BT
        bt = s.gmsk_bt
        sigma = math.sqrt(math.log(2)) / (2 * math.pi * bt) * sps
        half = int(math.ceil(3 * sigma))
        g = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
        nrz = np.convolve(nrz, g / g.sum(), mode="same")
    phase = 2 * np.pi * dev / sample_rate * np.cumsum(nrz)
    return np.exp(1j * phase).astype(np.complex64)


def impair(x: np.ndarray, sample_rate: float, symbol_rate: float, esn0_db: float | None = None,
           frequency_hz: float = 0.0, drift_hz_s: float = 0.0, phase: float = 0.0, seed: int = 0) -> np.ndarray:
    """Carrier offset (with linear drift), phase and complex white noise at ``esn0_db``."""
    n = x.shape[0]
    t = np.arange(n) / sample_rate
    y = x.astype(np.complex128) * np.exp(1j * (2 * np.pi * (frequency_hz * t + 0.5 * drift_hz_s * t * t) + phase))
    if esn0_db is not None:
        sps = sample_rate / symbol_rate
        var = sps / 10 ** (esn0_db / 10)
        rng = np.random.default_rng(seed)
        y += math.sqrt(var / 2) * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
    return y.astype(np.complex64)


def simulate_iq(bits, settings: ModulationSettings, sample_rate: float, esn0_db: float | None = None,
                frequency_hz: float = 0.0, drift_hz_s: float = 0.0, timing_offset: float = 0.0,
                clock_ppm: float = 0.0, phase: float = 0.0, seed: int = 0) -> np.ndarray:
    """Bits -> an impaired IQ recording (complex64) with the mission's modulation."""
    x = modulate(bits, settings, sample_rate, timing_offset=timing_offset, clock_ppm=clock_ppm)
    return impair(x, sample_rate, settings.symbol_rate, esn0_db, frequency_hz,
                  drift_hz_s, phase, seed)


def to_audio(iq: np.ndarray, sample_rate: float, center_hz: float) -> np.ndarray:
    """Complex baseband -> a real audio signal with the carrier at ``center_hz`` (SSB audio)."""
    t = np.arange(iq.shape[0]) / sample_rate
    return np.real(iq * np.exp(2j * np.pi * center_hz * t)).astype(np.float32)


def channel_symbols(stream: np.ndarray, convolutional: str = "none", variant: str = "ccsds",
                    differential: bool = False) -> np.ndarray:
    """The simulator's CADU byte stream -> channel symbols (uint8 0/1) for :func:`simulate_sigmf`:
    NRZ-M first when ``differential`` (the receiver undoes it after the Viterbi decoder), then
    the convolutional code (``convolutional`` a rate such as "1/2", or "none"; a zero tail byte
    is appended so the code terminates)."""
    data = np.ascontiguousarray(stream, dtype=np.uint8).reshape(-1)
    if differential:
        from groundseg.coding.differential import nrzm_encode
        data = nrzm_encode(data)
    if convolutional in (None, "none"):
        return np.unpackbits(data)
    from groundseg.coding import convolutional as cc
    return cc.encode(np.concatenate([data, np.zeros(1, np.uint8)]), convolutional, variant)


def simulate_sigmf(path, symbols, settings: ModulationSettings, sample_rate: float, center_frequency: float = 0.0,
                   datatype: str = "cf32_le", scale: float = 0.25, **impairments):
    """Channel symbols (uint8 0/1: the convolutional encoder's output, or the CADU bits when
    there is no inner code) -> an impaired SigMF recording with the mission's modulation;
    returns the metadata path. ``impairments``: the keywords of :func:`simulate_iq`
    (esn0_db, frequency_hz, drift_hz_s, timing_offset, clock_ppm, phase, seed). ``scale``
    keeps integer datatypes from clipping. The impairments go into the description."""
    from groundseg.sources.sdr import write_sigmf
    iq = simulate_iq(np.asarray(symbols, np.uint8), settings, sample_rate, **impairments) * np.float32(scale)
    desc = "groundseg simulator: " + settings.scheme + f" {settings.symbol_rate:g} Bd, " + ", ".join(
        f"{k}={v}" for k, v in sorted(impairments.items()))
    return write_sigmf(path, iq, sample_rate, center_frequency, datatype=datatype, description=desc)


__all__ = ["channel_symbols", "impair", "modulate", "simulate_iq", "simulate_sigmf", "symbols_from_bits", "to_audio"]
