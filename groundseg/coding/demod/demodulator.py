"""The demodulator stage: IQ (or audio) chunks in, soft symbols out.

:class:`Demodulator` is a thin wrapper over the kernels of
:mod:`groundseg.coding.demod.kernels`. The input is cut into blocks of a fixed number
of samples counted from the start of the stream (``block_samples``), each processed by
the front end (mixing, DC removal, discriminator, matched filter) and the sync kernel
(AGC, carrier and timing recovery). Before a block is demodulated while the loops are
not locked, the coarse frequency estimate (FFT of the matched-filter output raised to
the modulation order) sets the carrier NCO. Because the blocks are fixed in the
stream, the soft symbols do not depend on how the input was split into chunks; the
price is a latency of at most one block (``flush`` returns the rest).

Soft symbols are float32, positive = bit 1 (BPSK: the in-phase arm; QPSK: I, Q
interleaved; FSK: the filtered discriminator output, positive = the upper tone),
scaled so that a clean symbol is about +-1. Per block of ``esn0_block`` symbols the
stats carry an Es/N0 estimate (M2M4), a lock indicator and the carrier frequency.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from groundseg.coding.demod import kernels as K
from groundseg.modulation import ModulationSettings
from groundseg.stage import Stats

#: structured rows of the per-block link quality
#: ``symbol``: symbols in the stream at the block's end; ``sample``: where the last one was
#: taken, in input samples (matched-filter delay removed)
BLOCK_DTYPE = np.dtype([("symbol", "<i8"), ("sample", "<f8"), ("esn0_db", "<f4"), ("lock", "<f4"), ("locked", "?"),
                        ("frequency_hz", "<f4")])


@dataclass(eq=False)
class DemodStats(Stats):
    """What the demodulator counted over every stream."""
    samples_in: int = 0
    symbols_out: int = 0
    blocks: int = 0                    # Es/N0 blocks completed
    locked_blocks: int = 0
    lock_acquisitions: int = 0
    lock_losses: int = 0
    coarse_estimates: int = 0          # times the FFT estimate set the carrier NCO
    nonfinite_samples: int = 0         # NaN or infinite input samples, taken as 0
    locked: bool = False               # lock state after the last block
    esn0_db: float = float("nan")      # last block's estimate
    esn0_db_mean: float = float("nan") # mean over the locked blocks (of Es/N0 in linear units)
    frequency_hz: float = float("nan")  # carrier offset after the last block (from the centre)

    def to_dict(self) -> dict:
        d = super().to_dict()
        for k in ("esn0_db", "esn0_db_mean", "frequency_hz"):
            if isinstance(d[k], float) and not math.isfinite(d[k]):
                d[k] = None
        return d


def esn0_from_moments(m2: np.ndarray, m4: np.ndarray, real: bool) -> np.ndarray:
    """Es/N0 (dB) from the second and fourth moments of the symbols (M2M4).

    ``real``: one-dimensional symbols (FSK, the data arm of a residual carrier) with real
    noise: Es/N0 = S / (2 N) (the antipodal equivalent); otherwise complex PSK symbols."""
    m2 = np.asarray(m2, np.float64)
    m4 = np.asarray(m4, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        if real:
            s = np.sqrt(np.clip((3.0 * m2 * m2 - m4) / 2.0, 0.0, None))
            n = np.clip(m2 - s, 1e-12, None)
            return 10 * np.log10(np.where(s > 0, s / (2 * n), 1e-6))
        s = np.sqrt(np.clip(2.0 * m2 * m2 - m4, 0.0, None))
        n = np.clip(m2 - s, 1e-12, None)
        return 10 * np.log10(np.where(s > 0, s / n, 1e-6))


class Demodulator:
    """IQ chunk in (complex64; or float32 real audio), soft symbols out (float32).

    ``sample_rate`` in samples/s; real or complex input is decided by the first chunk's
    dtype. ``block_samples``: the fixed processing block (the latency; the coarse frequency
    estimate's length).
    """

    def __init__(self, settings: ModulationSettings, sample_rate: float, block_samples: int = 1 << 14):
        if settings.symbol_rate <= 0:
            raise ValueError("the modulation's symbol_rate must be positive")
        if sample_rate <= 0:
            raise ValueError("sample_rate must be positive")
        self.settings = settings
        self.sample_rate = float(sample_rate)
        self.sps = self.sample_rate / settings.symbol_rate
        if self.sps < 2.0:
            raise ValueError(f"{self.sps:.2f} samples per symbol: at least 2 are needed "
                             f"(sample rate {sample_rate:g}, symbol rate {settings.symbol_rate:g})")
        self.block_samples = int(block_samples)
        self.fsk = not settings.is_psk
        self.mode = 2 if self.fsk else {"bpsk": 0, "qpsk": 1, "oqpsk": 3}[settings.scheme]
        self.taps = (K.box_taps(self.sps) if self.fsk else
                     K.rrc_taps(self.sps, settings.rrc_rolloff, settings.rrc_span))[::-1].copy()
        self.mix_hz = settings.audio_center + settings.subcarrier
        # FSK from IQ: a channel filter before the discriminator (Carson's bandwidth)
        dev = settings.fsk_deviation or (settings.symbol_rate / 4 if settings.scheme == "gmsk"
                                         else settings.symbol_rate / 2)
        cutoff = min(0.45, (dev + 0.75 * settings.symbol_rate) / self.sample_rate)
        self.channel_taps = K.lowpass_taps(cutoff, int(4 * self.sps) | 1)
        self.stats = DemodStats()
        #: per-block link quality of the last push/flush (BLOCK_DTYPE), and all of the stream
        self.last_blocks = np.zeros(0, BLOCK_DTYPE)
        self.history = []
        #: complex symbols of the last push/flush (for the quicklook constellation)
        self.last_symbols = np.zeros(0, np.complex64)
        self._esn0_lin_sum = 0.0
        self.reset()

    # -- stage interface ----------------------------------------------------------------
    def reset(self) -> None:
        s = self.settings
        self._pending = []
        self._pending_n = 0
        self._processed = 0
        self._real = None
        self._mix_phase = 0.0
        self._dc = 0.0
        self._disc_last = complex(1.0, 0.0)
        ntaps = self.taps.shape[0]
        self._fir_re = np.zeros(ntaps - 1, np.float32)
        self._fir_im = np.zeros(ntaps - 1, np.float32)
        self._hist = np.zeros(K.HISTORY, np.complex64)
        self._ch_re = np.zeros(self.channel_taps.shape[0] - 1, np.float32)
        self._ch_im = np.zeros(self.channel_taps.shape[0] - 1, np.float32)
        st = np.zeros(K.STATE_SIZE, np.float64)
        st[K.S_POWER] = -1.0   # set from the first block
        st[K.S_NCO_RE] = 1.0
        st[K.S_AGC_ALPHA] = 1.0 / (s.agc_time_constant * self.sps)
        st[K.S_PERIOD] = self.sps
        st[K.S_T_NEXT] = K.HISTORY + 0.5 * self.sps + 1.0
        # Gardner's slope on unit-power matched-filter output, measured per symbol of timing
        # error: about 1.0 for RRC PSK, 1.7 for the box-filtered FSK discriminator output
        kp_t, ki_t = K.loop_gains(s.timing_loop_bandwidth, detector_gain=1.7 if self.fsk else 1.0)
        st[K.S_KP_T] = kp_t * self.sps
        st[K.S_KI_T] = ki_t * self.sps
        kp_c, ki_c = K.loop_gains(s.carrier_loop_bandwidth, detector_gain=1.0)
        st[K.S_KP_C] = kp_c
        st[K.S_KI_C] = ki_c
        st[K.S_MODE] = self.mode
        st[K.S_BLOCK] = s.esn0_block
        st[K.S_FREQ_MAX] = 2 * math.pi * s.max_offset_hz * 1.5 / self.sample_rate
        # a PLL on the residual carrier when the data is on the carrier itself; with a
        # subcarrier the NCO sits on the subcarrier's upper sideband, a suppressed-carrier BPSK
        self.pll = s.residual_carrier and not s.subcarrier
        st[K.S_RESIDUAL] = 1.0 if self.pll else 0.0
        st[K.S_RES_COS] = math.cos(s.modulation_index)
        st[K.S_RES_SIN] = math.sin(s.modulation_index)
        self._st = st
        self._locked = False
        self.history = []

    def push(self, x) -> np.ndarray:
        x = self._check(x)
        self.stats.samples_in += x.shape[0]
        if x.shape[0]:
            self._pending.append(x)
            self._pending_n += x.shape[0]
        out_s, out_b = [], []
        if self._pending_n >= self.block_samples:
            data = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
            nblocks = data.shape[0] // self.block_samples
            for b in range(nblocks):
                s, q = self._block(data[b * self.block_samples:(b + 1) * self.block_samples])
                out_s.append(s)
                out_b.append(q)
            rest = data[nblocks * self.block_samples:]
            self._pending = [rest.copy()] if rest.shape[0] else []
            self._pending_n = rest.shape[0]
        return self._emit(out_s, out_b)

    def flush(self) -> np.ndarray:
        out_s, out_b = [], []
        if self._pending_n:
            data = np.concatenate(self._pending)
            s, q = self._block(data)
            out_s.append(s)
            out_b.append(q)
            self._pending, self._pending_n = [], 0
        return self._emit(out_s, out_b)

    # -- internals ----------------------------------------------------------------------
    def _check(self, x) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 1:
            raise ValueError(f"demodulator input must be one-dimensional samples, not shape {x.shape}")
        if np.iscomplexobj(x):
            real = False
            x = x.astype(np.complex64, copy=False)
        elif x.dtype.kind in "fiu":
            real = True
            x = x.astype(np.float32, copy=False)
        else:
            raise ValueError(f"demodulator input must be complex or real samples, not {x.dtype}")
        if x.shape[0] and not np.isfinite(np.sum(x, dtype=np.complex128 if not real else np.float64)):
            bad = ~np.isfinite(x)
            self.stats.nonfinite_samples += int(bad.sum())
            x = np.where(bad, 0, x).astype(x.dtype)
        if self._real is None:
            self._real = real
        elif self._real != real:
            raise ValueError("demodulator input switched between real and complex samples mid-stream")
        return x

    def _front(self, x: np.ndarray) -> np.ndarray:
        """Mixing, DC removal, discriminator, matched filter: one block -> complex64."""
        fs = self.sample_rate
        if self.fsk:
            if not self._real:
                if self.mix_hz:
                    y = np.empty(x.shape[0], np.complex64)
                    self._mix_phase = K.mix_kernel(x, self._mix_phase, 2 * math.pi * self.mix_hz / fs, y)
                    x = y
                re = np.concatenate((self._ch_re, x.real))
                im = np.concatenate((self._ch_im, x.imag))
                y = np.empty(x.shape[0], np.complex64)
                K.fir_complex_kernel(re, im, self.channel_taps, y)
                keep = self.channel_taps.shape[0] - 1
                self._ch_re = re[re.shape[0] - keep:].copy()
                self._ch_im = im[im.shape[0] - keep:].copy()
                x = y
                d = np.empty(x.shape[0], np.float32)
                self._disc_last = K.discriminator_kernel(x, self._disc_last, d)
                x = d
            v = np.empty(x.shape[0], np.float32)
            alpha = 1.0 / (self.settings.agc_time_constant * 4 * self.sps)
            self._dc = K.dc_block_kernel(x, self._dc, alpha, v)
            re = np.concatenate((self._fir_re, v))
            out = np.empty(x.shape[0], np.float32)
            K.fir_real_kernel(re, self.taps, out)
            self._fir_re = re[-(self.taps.shape[0] - 1):].copy()
            return out.astype(np.complex64)
        if self._real or self.mix_hz:
            y = np.empty(x.shape[0], np.complex64)
            self._mix_phase = K.mix_kernel(x, self._mix_phase, 2 * math.pi * self.mix_hz / fs, y)
            x = y
        re = np.concatenate((self._fir_re, x.real))
        im = np.concatenate((self._fir_im, x.imag))
        out = np.empty(x.shape[0], np.complex64)
        K.fir_complex_kernel(re, im, self.taps, out)
        keep = self.taps.shape[0] - 1
        self._fir_re = re[re.shape[0] - keep:].copy()
        self._fir_im = im[im.shape[0] - keep:].copy()
        return out

    def _coarse(self, y: np.ndarray) -> None:
        """Set the carrier NCO from the FFT of y^M when the loops are not locked."""
        s = self.settings
        order = 1 if self.pll else (2 if self.mode == 0 else 4)   # OQPSK: z^4 has the line too
        n = y.shape[0]
        if n < 256:
            return
        z = y.astype(np.complex128) ** order
        spec = np.abs(np.fft.fft(z)) ** 2
        f = np.fft.fftfreq(n, 1.0 / self.sample_rate)
        band = np.abs(f) <= order * s.max_offset_hz
        if band.sum() < 8:
            return
        sb = np.where(band, spec, 0.0)
        k = int(np.argmax(sb))
        mean = spec[band].mean()
        if sb[k] < 12.0 * mean:
            return
        # parabolic refinement of the peak
        a, b, c = spec[(k - 1) % n], spec[k], spec[(k + 1) % n]
        den = a - 2 * b + c
        delta = 0.5 * (a - c) / den if den != 0 else 0.0
        f_est = (f[k] + delta * self.sample_rate / n) / order
        self._st[K.S_NCO_FREQ] = 2 * math.pi * f_est / self.sample_rate
        self.stats.coarse_estimates += 1

    def _block(self, x: np.ndarray):
        y = self._front(x)
        st = self._st
        if st[K.S_POWER] < 0:
            st[K.S_POWER] = float(np.mean(np.abs(y) ** 2)) or 1.0
        if not self.fsk and not self._locked:
            self._coarse(y)
        st[K.S_SAMPLE_BASE] = self._processed
        self._processed += x.shape[0]
        buf = np.concatenate((self._hist, y))
        nmax = int(x.shape[0] / (0.97 * self.sps)) + 8   # the timing loop runs at most 2 % fast
        sym = np.empty(nmax, np.complex64)
        blk = np.empty((nmax // max(1, self.settings.esn0_block) + 2, K.BLOCK_COLS), np.float64)
        ns, nb = K.sync_kernel(buf, K.HISTORY, st, sym, blk)
        self._hist = buf[buf.shape[0] - K.HISTORY:].copy()
        return sym[:ns], self._quality(blk[:nb])

    def _quality(self, rows: np.ndarray) -> np.ndarray:
        s = self.settings
        q = np.zeros(rows.shape[0], BLOCK_DTYPE)
        if not rows.shape[0]:
            return q
        real = self.fsk or self.pll
        q["symbol"] = rows[:, K.B_END].astype(np.int64)
        q["esn0_db"] = esn0_from_moments(rows[:, K.B_M2], rows[:, K.B_M4], real)
        q["lock"] = rows[:, K.B_LOCK]
        q["frequency_hz"] = rows[:, K.B_FREQ] * self.sample_rate / (2 * math.pi)
        q["sample"] = rows[:, K.B_SAMPLE] - self.delay
        ok = q["esn0_db"] > s.lock_threshold_db
        # data, not a constant (an unmodulated carrier, a DC input): the symbols' real parts
        # must be balanced (scrambled CCSDS data is: |mean| well below the RMS)
        rms = np.sqrt(np.maximum(rows[:, K.B_M2], 1e-30))
        ok &= np.abs(rows[:, K.B_MEAN]) < 0.5 * rms
        if not real:
            # the carrier-phase metric: about 0 when the loop does not hold the constellation
            ok &= q["lock"] > (0.25 if self.mode == 0 else 0.12)
        q["locked"] = ok
        for locked in ok:
            if locked and not self._locked:
                self.stats.lock_acquisitions += 1
            elif self._locked and not locked:
                self.stats.lock_losses += 1
            self._locked = bool(locked)
        st = self.stats
        st.blocks += q.shape[0]
        st.locked_blocks += int(ok.sum())
        st.locked = self._locked
        st.esn0_db = float(q["esn0_db"][-1])
        st.frequency_hz = float(q["frequency_hz"][-1]) if not self.fsk else float("nan")
        if ok.any():
            self._esn0_lin_sum += float(np.sum(10 ** (q["esn0_db"][ok] / 10)))
            st.esn0_db_mean = 10 * math.log10(self._esn0_lin_sum / st.locked_blocks)
        return q

    def _emit(self, out_s, out_b) -> np.ndarray:
        sym = np.concatenate(out_s) if out_s else np.zeros(0, np.complex64)
        self.last_symbols = sym
        self.last_blocks = np.concatenate(out_b) if out_b else np.zeros(0, BLOCK_DTYPE)
        if self.last_blocks.shape[0]:
            self.history.append(self.last_blocks)
        soft = soft_from_symbols(sym, self.mode)
        if self.settings.invert:
            soft = -soft
        self.stats.symbols_out += sym.shape[0]
        return soft

    @property
    def delay(self) -> float:
        """Samples between an input sample and the filtered sample it becomes (the filters'
        group delay; the discriminator's half sample for FSK from IQ)."""
        d = (self.taps.shape[0] - 1) / 2
        if self.fsk and self._real is False:
            d += (self.channel_taps.shape[0] - 1) / 2 + 0.5
        return d

    def sample_of_symbol(self, symbols) -> np.ndarray:
        """Input sample positions of stream symbol indices (0 = the first symbol out), from the
        timing loop's strobes at the Es/N0 block ends (nominal rate before the first and
        after the last)."""
        symbols = np.asarray(symbols, np.float64)
        b = self.blocks
        if not b.size:
            return symbols * self.sps + self.sps / 2 + 1
        k = b["symbol"].astype(np.float64) - 1             # the block's last symbol
        if b.size == 1:
            return b["sample"][0] + (symbols - k[0]) * self.sps
        out = np.interp(symbols, k, b["sample"])
        out = np.where(symbols < k[0], b["sample"][0] + (symbols - k[0]) * self.sps, out)
        return np.where(symbols > k[-1], b["sample"][-1] + (symbols - k[-1]) * self.sps, out)

    @property
    def blocks(self) -> np.ndarray:
        """Every Es/N0 block of the stream so far (BLOCK_DTYPE)."""
        return np.concatenate(self.history) if self.history else np.zeros(0, BLOCK_DTYPE)


def soft_from_symbols(sym: np.ndarray, mode: int) -> np.ndarray:
    """Complex symbols -> float32 soft symbols (QPSK: I, Q interleaved)."""
    if mode in (1, 3):
        out = np.empty(2 * sym.shape[0], np.float32)
        out[0::2] = sym.real
        out[1::2] = sym.imag
        return out
    return np.ascontiguousarray(sym.real, dtype=np.float32)


def demodulate(x, settings: ModulationSettings, sample_rate: float, **kw) -> tuple[np.ndarray, Demodulator]:
    """A whole recording at once: (soft symbols, the demodulator with its stats)."""
    d = Demodulator(settings, sample_rate, **kw)
    soft = np.concatenate((d.push(x), d.flush()))
    return soft, d
