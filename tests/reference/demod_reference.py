"""Slow, obviously-correct references for the demodulator kernels (plain Python, whole signals).

Written from the textbook definitions rather than from the kernels: convolution as a sum,
mixing with the phase computed from the sample index, the discriminator as the angle of
x[n] x*[n-1], Lagrange interpolation from its formula, and the symbol synchroniser as one
loop over the whole signal with Python complex numbers (no blocks, no carried state).
"""
from __future__ import annotations

import cmath
import math


def fir(x, h):
    """y[n] = sum_k h[k] x[n - k], zero before the start."""
    return [sum(h[k] * x[n - k] for k in range(len(h)) if n - k >= 0) for n in range(len(x))]


def mix(x, freq_per_sample):
    return [complex(v) * cmath.exp(-2j * math.pi * freq_per_sample * n) for n, v in enumerate(x)]


def discriminator(x):
    out, prev = [], 1 + 0j
    for v in x:
        out.append(cmath.phase(complex(v) * prev.conjugate()))
        prev = complex(v)
    return out


def dc_block(x, alpha):
    out, d = [], 0.0
    for v in x:
        d += alpha * (v - d)
        out.append(v - d)
    return out


def lagrange(y, t):
    """Cubic Lagrange interpolation through y[k-1..k+2], k = floor(t)."""
    k = math.floor(t)
    xs = [k - 1, k, k + 1, k + 2]
    total = 0
    for i, xi in enumerate(xs):
        w = 1.0
        for j, xj in enumerate(xs):
            if j != i:
                w *= (t - xj) / (xi - xj)
        total += w * y[xi]
    return total


def synchronise(y, sps, mode, agc_alpha, power0, kp_t, ki_t, kp_c, ki_c, freq0=0.0, wmax=1.0, t0=None):
    """AGC, carrier NCO, Gardner timing and the Costas loop over the whole filtered signal ``y``.

    mode 0 BPSK, 1 QPSK, 2 real (no carrier loop). The Costas error at each symbol moves the
    NCO's phase (proportional) and frequency (integral); the AGC gain follows the power
    estimate at each symbol. Returns the symbols (complex)."""
    n = len(y)
    z = [0j] * n
    power, w, nco = power0, freq0, 0.0
    gain = 1 / math.sqrt(power + 1e-30)
    t = sps / 2 + 1.0 if t0 is None else t0
    integ, prev, have_prev = 0.0, 0j, False
    out = []
    for i in range(n):
        v = complex(y[i])
        power += agc_alpha * (abs(v) ** 2 - power)
        if mode != 2:
            v *= cmath.exp(-1j * nco)
            nco += w
        z[i] = v * gain
        while t + 2 <= i:
            s = lagrange(z, t)
            e = 0.0
            if have_prev:
                m = lagrange(z, t - sps / 2)
                e = max(-1.0, min(1.0, ((prev - s) * m.conjugate()).real))
            prev, have_prev = s, True
            integ = max(-0.02 * sps, min(0.02 * sps, integ + ki_t * e))
            t += sps + integ + kp_t * e
            gain = 1 / math.sqrt(power + 1e-30)
            if mode == 2:
                out.append(complex(s.real, 0))
                continue
            sgn = lambda a: 1.0 if a >= 0 else -1.0
            ec = sgn(s.real) * s.imag if mode == 0 else sgn(s.real) * s.imag - sgn(s.imag) * s.real
            ec = max(-2.0, min(2.0, ec))
            nco += kp_c * ec
            w = max(-wmax, min(wmax, w + ki_c * ec / sps))
            out.append(s)
    return out
