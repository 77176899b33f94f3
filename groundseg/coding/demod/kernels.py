"""Numba kernels of the demodulator: whole blocks in, state carried in small arrays.

The chain (see :mod:`groundseg.coding.demod.demodulator`)::

    x (real audio or complex IQ)
      -> front: mix down by the carrier's centre frequency, DC removal (FSK audio),
                FM discriminator (FSK from IQ), matched filter (RRC for PSK, one-symbol
                box for FSK)                                      :func:`front_kernel`
      -> sync:  AGC, carrier NCO (driven by the Costas loop at the symbol rate and set
                by the coarse FFT estimate), Gardner timing recovery with cubic
                interpolation, Es/N0 (M2M4) and lock accumulators per block of
                symbols                                           :func:`sync_kernel`

Each kernel processes its input sample by sample in stream order with every piece of
state that crosses a block in the state arrays, so feeding a stream in any split gives
the same output.
"""
from __future__ import annotations

import math

import numpy as np

from groundseg._numba import kernel, kernel_fastmath

# -- sync_kernel state layout (float64 array) -----------------------------------------------
S_POWER = 0        # AGC power estimate
S_AGC_ALPHA = 1    # AGC update factor per sample
S_NCO_RE = 2       # carrier NCO phasor exp(-j phase), real part
S_NCO_FREQ = 3     # carrier NCO frequency (rad / sample)
S_NCO_IM = 4       # and imaginary part
S_T_NEXT = 5       # next strobe, in samples from the start of the block buffer
S_PERIOD = 6       # nominal samples per symbol
S_T_INTEG = 7      # timing loop integrator (samples)
S_PREV_RE = 8      # previous strobe sample (for Gardner)
S_PREV_IM = 9
S_KP_T = 10        # timing loop gains (samples per unit error)
S_KI_T = 11
S_KP_C = 12        # carrier loop gains (rad per unit error; the integral one per symbol)
S_KI_C = 13
S_MODE = 14        # 0 bpsk, 1 qpsk, 2 fsk (real, no carrier loop), 3 oqpsk (Q half a symbol late)
S_ACC_N = 15       # Es/N0 block accumulators
S_ACC_M2 = 16
S_ACC_M4 = 17
S_ACC_LOCK = 18
S_BLOCK = 19       # symbols per Es/N0 block
S_SYMBOLS = 20     # symbols so far in the stream
S_HAVE_PREV = 21
S_FREQ_MAX = 22    # |NCO frequency| limit (rad / sample)
S_RESIDUAL = 23    # residual-carrier BPSK: 1 = PLL on the carrier, data from the quadrature
S_RES_COS = 24     # residual carrier: cos and sin of the modulation index
S_RES_SIN = 25
S_SAMPLE_BASE = 26 # stream sample index of buf[HISTORY] (the block's first sample)
S_ACC_MEAN = 27    # sum of the symbols' real parts (balance: data, not a constant)
STATE_SIZE = 28

#: columns of a block-statistics row
B_END, B_M2, B_M4, B_LOCK, B_FREQ, B_N, B_SAMPLE, B_MEAN = range(8)
BLOCK_COLS = 8

#: samples of history the sync kernel keeps before each block (cubic interpolation)
HISTORY = 4


@kernel
def _cubic(buf, t):
    """Cubic Lagrange interpolation of ``buf`` at fractional index ``t`` (needs t-1 .. t+2)."""
    k = int(math.floor(t))
    mu = t - k
    a0 = buf[k - 1]
    a1 = buf[k]
    a2 = buf[k + 1]
    a3 = buf[k + 2]
    c0 = -mu * (mu - 1.0) * (mu - 2.0) / 6.0
    c1 = (mu + 1.0) * (mu - 1.0) * (mu - 2.0) / 2.0
    c2 = -(mu + 1.0) * mu * (mu - 2.0) / 2.0
    c3 = (mu + 1.0) * mu * (mu - 1.0) / 6.0
    return c0 * a0 + c1 * a1 + c2 * a2 + c3 * a3


@kernel
def mix_kernel(x, phase, step, out):
    """out = x * exp(-j (phase + n step)); returns the phase after the block (wrapped)."""
    p = phase
    for i in range(x.shape[0]):
        out[i] = x[i] * complex(math.cos(p), -math.sin(p))
        p += step
        if p > math.pi:
            p -= 2.0 * math.pi
        elif p < -math.pi:
            p += 2.0 * math.pi
    return p


@kernel
def dc_block_kernel(x, dc, alpha, out):
    """One-pole DC tracker removed from a real signal; returns the tracker's state."""
    d = dc
    for i in range(x.shape[0]):
        v = x[i]
        d += alpha * (v - d)
        out[i] = v - d
    return d


@kernel
def discriminator_kernel(x, last, out):
    """FM discriminator: out[n] = arg(x[n] conj(x[n-1])); ``last`` the sample before the block."""
    p = last
    for i in range(x.shape[0]):
        v = x[i]
        d = v * p.conjugate()
        out[i] = math.atan2(d.imag, d.real)
        p = v
    return p


@kernel_fastmath
def fir_real_kernel(buf, taps, out):
    """out[i] = sum_k taps[k] buf[i + k] over a real float32 buffer (``taps`` reversed)."""
    n = taps.shape[0]
    for i in range(out.shape[0]):
        acc = np.float32(0.0)
        for k in range(n):
            acc += taps[k] * buf[i + k]
        out[i] = acc


@kernel_fastmath
def fir_complex_kernel(re, im, taps, out):
    """out[i] = sum_k taps[k] (re + j im)[i + k] (real taps, reversed)."""
    n = taps.shape[0]
    for i in range(out.shape[0]):
        ar = np.float32(0.0)
        ai = np.float32(0.0)
        for k in range(n):
            t = taps[k]
            ar += t * re[i + k]
            ai += t * im[i + k]
        out[i] = complex(ar, ai)


@kernel
def _rotation(a):
    """exp(-j a) for a small angle (|a| < 0.5): Taylor to the fifth order, error < 3e-5 a^7."""
    a2 = a * a
    return complex(1.0 - a2 * (0.5 - a2 / 24.0), -a * (1.0 - a2 * (1.0 / 6.0 - a2 / 120.0)))


@kernel
def sync_kernel(buf, start, st, sym_out, blk_out):
    """AGC, carrier NCO, Gardner timing and Costas loop over ``buf[start:]``.

    ``buf[:start]`` are the last ``HISTORY`` samples of the previous block, already
    processed (AGC and NCO applied); ``buf[start:]`` the matched-filter output of this
    block, processed in place. The carrier loop acts on the NCO phasor itself (phase:
    the proportional path, frequency: the integral path), so its only delay is the
    interpolator's two samples of look-ahead, and no trigonometric function is evaluated
    per symbol (phasors rotated by small angles, renormalised). The AGC gain is updated
    once per symbol from a per-sample power estimate. Symbols go to ``sym_out``; a row per
    completed Es/N0 block to ``blk_out``. Returns (symbols written, block rows written).
    ``st[S_T_NEXT]`` is left relative to the next block's buffer.
    """
    n = buf.shape[0]
    mode = int(st[S_MODE])
    residual = st[S_RESIDUAL] > 0.5
    carrier = mode != 2
    oqpsk = mode == 3
    power = st[S_POWER]
    alpha = st[S_AGC_ALPHA]
    w = st[S_NCO_FREQ]
    wmax = st[S_FREQ_MAX]
    t_next = st[S_T_NEXT]
    period = st[S_PERIOD]
    integ = st[S_T_INTEG]
    prev = complex(st[S_PREV_RE], st[S_PREV_IM])
    have_prev = st[S_HAVE_PREV] > 0.5
    kp_t = st[S_KP_T]
    ki_t = st[S_KI_T]
    kp_c = st[S_KP_C]
    ki_c = st[S_KI_C]
    acc_n = st[S_ACC_N]
    acc_m2 = st[S_ACC_M2]
    acc_m4 = st[S_ACC_M4]
    acc_lock = st[S_ACC_LOCK]
    acc_mean = st[S_ACC_MEAN]
    block = st[S_BLOCK]
    symbols = st[S_SYMBOLS]
    rot = complex(math.cos(w), -math.sin(w))
    ph = complex(st[S_NCO_RE], st[S_NCO_IM])
    g = 1.0 / math.sqrt(power + 1e-30)
    lim = 0.02 * period
    ns = 0
    nb = 0
    half = 0.5 * period
    ahead = 2.0 + (half if oqpsk else 0.0)     # OQPSK: Q is read half a symbol after I
    cap = sym_out.shape[0]
    for i in range(start, n):
        v = buf[i]
        power += alpha * ((v.real * v.real + v.imag * v.imag) - power)
        if carrier:
            v = v * ph
            ph = ph * rot
        buf[i] = v * g
        # strobes whose interpolation points are all available (t + 2 <= i)
        while t_next + ahead <= i and ns < cap:
            y = _cubic(buf, t_next)
            mid_q = y.imag                     # OQPSK: Q's mid-point is I's strobe
            if oqpsk:
                y = complex(y.real, _cubic(buf, t_next + half).imag)
            e = 0.0
            if have_prev:
                m = _cubic(buf, t_next - half)
                e = (prev.real - y.real) * m.real + (prev.imag - y.imag) * (mid_q if oqpsk else m.imag)
                if e > 1.0:
                    e = 1.0
                elif e < -1.0:
                    e = -1.0
            prev = y
            have_prev = True
            integ += ki_t * e
            if integ > lim:
                integ = lim
            elif integ < -lim:
                integ = -lim
            t_next += period + integ + kp_t * e
            g = 1.0 / math.sqrt(power + 1e-30)
            z = y
            if carrier:
                if residual:
                    # a PLL on the residual carrier, the data removed by decision:
                    # Im(z conj(cos b + j sin b d)), zero when z sits on its point
                    d = 1.0 if z.imag >= 0.0 else -1.0
                    ec = z.imag * st[S_RES_COS] - z.real * st[S_RES_SIN] * d
                elif mode == 0:
                    ec = z.imag if z.real >= 0.0 else -z.imag
                else:
                    ec = (z.imag if z.real >= 0.0 else -z.imag) - (z.real if z.imag >= 0.0 else -z.real)
                if ec > 2.0:
                    ec = 2.0
                elif ec < -2.0:
                    ec = -2.0
                ph = ph * _rotation(kp_c * ec)
                dw = ki_c * ec / period
                if w + dw > wmax:
                    dw = wmax - w
                elif w + dw < -wmax:
                    dw = -wmax - w
                w += dw
                rot = rot * _rotation(dw)
                # renormalise both phasors (one Newton step towards |x| = 1)
                ph = ph * (1.5 - 0.5 * (ph.real * ph.real + ph.imag * ph.imag))
                rot = rot * (1.5 - 0.5 * (rot.real * rot.real + rot.imag * rot.imag))
                if residual:
                    z = complex(z.imag, z.real)   # data on the quadrature arm
            else:
                z = complex(y.real, 0.0)
            sym_out[ns] = z
            t_sym = t_next - (period + integ + kp_t * e)     # this symbol's strobe
            ns += 1
            symbols += 1.0
            a2 = z.real * z.real + z.imag * z.imag
            if not carrier or residual:
                a2 = z.real * z.real
                acc_lock += 1.0
            elif mode == 0:
                acc_lock += (z.real * z.real - z.imag * z.imag) / (a2 + 1e-30)
            else:
                z2 = z * z
                z4 = z2 * z2
                acc_lock += -z4.real / (a2 * a2 + 1e-30)
            acc_m2 += a2
            acc_m4 += a2 * a2
            acc_mean += z.real
            acc_n += 1.0
            if acc_n >= block and nb < blk_out.shape[0]:
                blk_out[nb, B_END] = symbols
                blk_out[nb, B_M2] = acc_m2 / acc_n
                blk_out[nb, B_M4] = acc_m4 / acc_n
                blk_out[nb, B_LOCK] = acc_lock / acc_n
                blk_out[nb, B_FREQ] = w
                blk_out[nb, B_N] = acc_n
                blk_out[nb, B_SAMPLE] = st[S_SAMPLE_BASE] + t_sym - HISTORY
                blk_out[nb, B_MEAN] = acc_mean / acc_n
                acc_mean = 0.0
                nb += 1
                acc_n = 0.0
                acc_m2 = 0.0
                acc_m4 = 0.0
                acc_lock = 0.0
    st[S_POWER] = power
    st[S_NCO_RE] = ph.real
    st[S_NCO_IM] = ph.imag
    st[S_NCO_FREQ] = w
    st[S_T_NEXT] = t_next - (n - HISTORY)
    st[S_T_INTEG] = integ
    st[S_PREV_RE] = prev.real
    st[S_PREV_IM] = prev.imag
    st[S_HAVE_PREV] = 1.0 if have_prev else 0.0
    st[S_ACC_N] = acc_n
    st[S_ACC_M2] = acc_m2
    st[S_ACC_M4] = acc_m4
    st[S_ACC_LOCK] = acc_lock
    st[S_ACC_MEAN] = acc_mean
    st[S_SYMBOLS] = symbols
    return ns, nb


def rrc_taps(sps: float, rolloff: float, span: int) -> np.ndarray:
    """Root-raised-cosine taps at ``sps`` samples per symbol over ``span`` symbols, unit energy."""
    n = int(round(span * sps)) | 1
    t = (np.arange(n) - (n - 1) / 2) / sps
    a = rolloff
    h = np.empty(n)
    for i, ti in enumerate(t):
        if abs(ti) < 1e-9:
            h[i] = 1.0 - a + 4 * a / np.pi
        elif a > 0 and abs(abs(4 * a * ti) - 1.0) < 1e-9:
            h[i] = a / np.sqrt(2) * ((1 + 2 / np.pi) * np.sin(np.pi / (4 * a)) + (1 - 2 / np.pi) * np.cos(np.pi / (4 * a)))
        else:
            h[i] = (np.sin(np.pi * ti * (1 - a)) + 4 * a * ti * np.cos(np.pi * ti * (1 + a))) / (
                np.pi * ti * (1 - (4 * a * ti) ** 2))
    return (h / np.sqrt(np.sum(h * h))).astype(np.float32)


def box_taps(sps: float) -> np.ndarray:
    """A one-symbol moving average (integrate and dump for NRZ), fractional ends weighted."""
    n = int(np.ceil(sps)) | 1
    h = np.ones(n)
    excess = (n - sps) / 2
    h[0] -= excess
    h[-1] -= excess
    return (h / h.sum()).astype(np.float32)


def lowpass_taps(cutoff: float, ntaps: int) -> np.ndarray:
    """Windowed-sinc (Blackman) low-pass, ``cutoff`` in cycles per sample, unit DC gain."""
    n = np.arange(ntaps) - (ntaps - 1) / 2
    h = np.sinc(2 * cutoff * n) * np.blackman(ntaps)
    return (h / h.sum()).astype(np.float32)


def loop_gains(bandwidth: float, damping: float = 0.7071, detector_gain: float = 1.0) -> tuple[float, float]:
    """Proportional and integral gains of a second-order loop of noise bandwidth ``bandwidth``
    (normalised to the update rate)."""
    theta = bandwidth / (damping + 1.0 / (4.0 * damping))
    d = 1.0 + 2.0 * damping * theta + theta * theta
    return 4.0 * damping * theta / d / detector_gain, 4.0 * theta * theta / d / detector_gain
