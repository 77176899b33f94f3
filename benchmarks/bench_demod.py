"""Demodulation (IQ or audio -> soft symbols), one core.

Stages
- demod_bpsk: simulated BPSK at 4 samples per symbol (Es/N0 10 dB, 300 Hz offset), complex64
  pushed in 1 Msample chunks; Msamples/s (target >= 10).
- demod_qpsk / demod_fsk_iq: the same for QPSK (4 sps) and 2-FSK from IQ (5 sps, with the
  channel filter and discriminator).
- demod_trisat_audio / demod_by70_1_audio: the real WAV recordings (48 kHz), when present;
  x real time.
Best of N after a warm-up call (JIT compile excluded); the rows also carry the figure per
CPU second of the benchmark thread (``msamples_s_cpu``), steadier on a shared machine.

    python -m benchmarks.bench_demod [--quick]
"""
from __future__ import annotations

import os
import sys
import wave
from pathlib import Path

import numpy as np

from benchmarks.timing import best_cpu_and_wall, best_of
from groundseg.coding.demod import Demodulator
from groundseg.modulation import ModulationSettings
from groundseg.sim_iq import simulate_iq

CHUNK = 1 << 20


def _run(settings, fs, x):
    d = Demodulator(settings, fs)
    n = 0
    for i in range(0, x.size, CHUNK):
        n += d.push(x[i:i + CHUNK]).size
    n += d.flush().size
    return n


def _row(stage, params, nsamples, seconds, fs, target=None, cpu_seconds=None):
    row = {"stage": stage, "params": params, "msamples_s": nsamples / seconds / 1e6,
           "x_real_time": nsamples / fs / seconds, "samples": int(nsamples), "seconds": seconds}
    if cpu_seconds:
        row["msamples_s_cpu"] = nsamples / cpu_seconds / 1e6
        row["params"] += f", {row['msamples_s_cpu']:.1f} Msps per CPU second"
    if target:
        row["target"] = target
    return row


def _captures() -> Path:
    root = Path(__file__).resolve().parents[1]
    return Path(os.environ.get("GROUNDSEG_CAPTURES", root.parent / "shared" / "captures" / "real"))


def run(quick: bool = False) -> list[dict]:
    rows = []
    nsym = 250_000 if quick else 2_500_000
    repeats = 2 if quick else 3
    rng = np.random.default_rng(0)
    cases = [("demod_bpsk", ModulationSettings(scheme="bpsk", symbol_rate=250_000), 4, ">= 10 Msamples/s"),
             ("demod_qpsk", ModulationSettings(scheme="qpsk", symbol_rate=250_000), 4, None),
             ("demod_fsk_iq", ModulationSettings(scheme="fsk", symbol_rate=200_000), 5, None)]
    for stage, s, sps, target in cases:
        n = nsym if stage == "demod_bpsk" else nsym // 4
        fs = s.symbol_rate * sps
        # a tenth of the signal simulated and repeated (the simulator's float64 intermediates
        # would otherwise dominate the benchmark's memory)
        bits = rng.integers(0, 2, n // 10 * s.bits_per_symbol).astype(np.uint8)
        x = np.tile(simulate_iq(bits, s, fs, esn0_db=10, frequency_hz=0.001 * fs, seed=1), 10)
        _run(s, fs, x[:100_000])                                  # warm-up (JIT)
        t = best_of(lambda: _run(s, fs, x), repeats)
        c = best_cpu_and_wall(lambda: _run(s, fs, x), repeats)[0]
        rows.append(_row(stage, f"{sps} sps, {x.size / 1e6:.1f} Msamples", x.size, t, fs, target, c))
    real = {"demod_trisat_audio": ("trisat-fsk/trisat.wav", ModulationSettings(scheme="fsk", symbol_rate=9766)),
            "demod_by70_1_audio": ("by70-1-bpsk/by701.wav",
                                   ModulationSettings(scheme="bpsk", symbol_rate=9600, audio_center=12000,
                                                      frequency_offset_max=2000))}
    for stage, (rel, s) in real.items():
        path = _captures() / rel
        if not path.is_file():
            rows.append({"stage": stage, "params": "recording absent"})
            continue
        with wave.open(str(path)) as w:
            x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
            fs = w.getframerate()
        _run(s, fs, x[:50_000])
        t = best_of(lambda: _run(s, fs, x), repeats + 2)
        c = best_cpu_and_wall(lambda: _run(s, fs, x), repeats + 2)[0]
        rows.append(_row(stage, f"48 kHz audio, {x.size / fs:.1f} s", x.size, t, fs, None, c))
    return rows


if __name__ == "__main__":
    from benchmarks.run import fmt_row
    for r in run("--quick" in sys.argv):
        print(fmt_row(r))
