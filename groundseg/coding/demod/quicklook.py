"""Quicklook of an IQ or audio recording: the pictures an operator looks at first when a pass failed.

:func:`quicklook` draws, to one PNG: the averaged power spectrum of the recording, the
constellation of the demodulated symbols (or of the raw samples without a modulation),
and Es/N0 over time with the demodulator's lock and carrier frequency. matplotlib is
imported here (``pip install 'groundseg[plot]'``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from groundseg.modulation import ModulationSettings


def spectrum(x: np.ndarray, sample_rate: float, nfft: int = 4096, max_segments: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(frequency Hz, power dB) averaged over up to ``max_segments`` Hann-windowed segments."""
    x = np.asarray(x)
    nfft = int(min(nfft, max(16, 1 << int(np.log2(max(x.size, 16))))))
    nseg = max(1, min(max_segments, x.size // nfft))
    starts = np.linspace(0, max(0, x.size - nfft), nseg).astype(np.int64)
    w = np.hanning(nfft)
    acc = np.zeros(nfft)
    for s in starts:
        seg = x[s:s + nfft]
        if seg.size < nfft:
            seg = np.pad(seg, (0, nfft - seg.size))
        acc += np.abs(np.fft.fft(seg * w)) ** 2
    p = 10 * np.log10(acc / nseg / np.sum(w ** 2) + 1e-20)
    f = np.fft.fftfreq(nfft, 1.0 / sample_rate)
    order = np.argsort(f)
    if not np.iscomplexobj(x):
        order = order[f[order] >= 0]
    return f[order], p[order]


def quicklook(samples, sample_rate: float, out, settings: ModulationSettings | None = None,
              center_frequency: float = 0.0, title: str = "", max_points: int = 4000) -> dict:
    """Draw the quicklook of ``samples`` to ``out`` (PNG); returns a summary dict
    (path, symbols, locked_fraction, esn0_db_mean)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("the quicklook needs matplotlib: pip install 'groundseg[plot]'") from None
    from groundseg.coding.demod.demodulator import Demodulator

    x = np.asarray(samples)
    summary = {"path": str(out), "symbols": 0, "locked_fraction": None, "esn0_db_mean": None}
    blocks, sym = None, None
    if settings is not None and x.size:
        d = Demodulator(settings, sample_rate)
        parts = []
        step = 1 << 18
        for i in range(0, x.size, step):
            d.push(x[i:i + step])
            parts.append(d.last_symbols)
        d.flush()
        parts.append(d.last_symbols)
        sym = np.concatenate(parts)
        blocks = d.blocks
        summary["symbols"] = int(sym.size)
        if blocks.size:
            summary["locked_fraction"] = float(np.mean(blocks["locked"]))
        summary["esn0_db_mean"] = d.stats.to_dict()["esn0_db_mean"]

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    f, p = spectrum(x, sample_rate)
    ax = axes[0]
    ax.plot((f + center_frequency) / 1e3 if center_frequency else f / 1e3, p, lw=0.7)
    ax.set_xlabel("frequency (kHz)" + (" (RF)" if center_frequency else ""))
    ax.set_ylabel("power (dB)")
    ax.set_title("spectrum")
    ax.grid(alpha=0.3)

    ax = axes[1]
    if sym is not None and sym.size:
        # symbols from the locked blocks when there are some, else the last ones
        pts = sym
        if blocks is not None and blocks.size and blocks["locked"].any():
            keep = np.zeros(sym.size, bool)
            start = 0
            for b in blocks:
                end = min(int(b["symbol"]), sym.size)
                if b["locked"]:
                    keep[start:end] = True
                start = end
            pts = sym[keep] if keep.any() else sym
        pts = pts[-max_points:]
        ax.set_title(f"constellation ({settings.scheme}, {pts.size} symbols)")
    else:
        pts = x[:: max(1, x.size // max_points)][:max_points].astype(np.complex64)
        ax.set_title("samples (no modulation given)")
    ax.plot(pts.real, pts.imag, ".", ms=2, alpha=0.5)
    lim = (float(np.percentile(np.abs(pts), 99.5)) * 1.2 if pts.size else 0.0) or 1.0
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.axhline(0, color="k", lw=0.5)
    ax.axvline(0, color="k", lw=0.5)

    ax = axes[2]
    if blocks is not None and blocks.size:
        t = blocks["symbol"] / settings.symbol_rate
        e = np.maximum(blocks["esn0_db"], -10)
        ax.plot(t, e, "-", lw=1, label="Es/N0")
        ax.plot(t[blocks["locked"]], e[blocks["locked"]], "o", ms=3, color="tab:green", label="locked")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("Es/N0 (dB)")
        ax.set_title("Es/N0 and lock")
        ax.grid(alpha=0.3)
        if settings.is_psk:
            ax2 = ax.twinx()
            ax2.plot(t, blocks["frequency_hz"], color="tab:red", lw=0.8, alpha=0.7)
            ax2.set_ylabel("carrier offset (Hz)", color="tab:red")
        ax.legend(loc="lower left", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no modulation given: no demodulation", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return summary
