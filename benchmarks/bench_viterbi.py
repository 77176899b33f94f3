"""Soft-decision Viterbi, k=7 (CCSDS 131.0-B-4 section 3): Mbit/s decoded on one core, and error rates.

Stages
- viterbi_stage: ``ViterbiDecoder`` (no ambiguity search) over int8 soft symbols pushed in
  1 Mi-symbol chunks, Mbit/s of decoded bits; r=1/2 at Eb/N0 4 dB and on full-scale
  (saturated +-127) symbols, r=7/8 at 6 dB. Target 200 Mbit/s for r=1/2.
- viterbi_stage_bpsk_search: the same r=1/2 4 dB stream with ``ambiguity="bpsk"`` (periodic rechecks).
- viterbi_block: ``viterbi()`` on one zero-tailed block, r=1/2 4 dB.
- ber_r1_2 / ber_r7_8 (full run only): bit and frame (223-byte frames) error rates against
  Eb/N0, with uncoded BPSK and, for r=1/2, the soft-decision union bound of the code
  (distance spectrum of the 171/133 code, d = 10..18); plotted to
  benchmarks/results/viterbi_ber.png. Anchors measured on this machine: VOLK's SSE kernel
  (GNU Radio) 139 Mbit/s at 4 dB, 89 on full-scale symbols; libfec portable C 13.7.

Times are the calling thread's CPU time, best of N after a warm-up (JIT excluded).

    python -m benchmarks.bench_viterbi [--quick]
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from benchmarks.timing import best_cpu_and_wall
from groundseg.coding import convolutional as cc
from groundseg.coding import viterbi_decoder as vd

CHUNK = 1 << 20
RATE = {"1/2": 0.5, "7/8": 7 / 8}
# Information-bit weights of the paths at distance d = 10, 12, ..., 18 (K=7 r=1/2, 171/133).
SPECTRUM_R12 = {10: 36, 12: 211, 14: 1404, 16: 11633, 18: 77433}


def _q(x: float) -> float:
    return 0.5 * math.erfc(x / math.sqrt(2))


def union_bound_r12(ebn0_db: float) -> float:
    g = 10 ** (ebn0_db / 10)
    return sum(c * _q(math.sqrt(2 * d * 0.5 * g)) for d, c in SPECTRUM_R12.items())


def uncoded_bpsk(ebn0_db: float) -> float:
    return _q(math.sqrt(2 * 10 ** (ebn0_db / 10)))


def _soft(symbols: np.ndarray, ebn0_db: float | None, rate: str, rng) -> np.ndarray:
    if ebn0_db is None:
        return cc.symbols_to_soft(symbols, 127)
    sigma = math.sqrt(1 / (2 * 10 ** (ebn0_db / 10) * RATE[rate]))
    x = (2.0 * symbols - 1 + rng.normal(0, sigma, symbols.size)).astype(np.float32)
    return cc.quantize(x)


def _decode_stream(soft: np.ndarray, rate: str, ambiguity=None) -> np.ndarray:
    dec = vd.ViterbiDecoder(rate, "ccsds", ambiguity=ambiguity)
    out = [dec.push(soft[i:i + CHUNK]) for i in range(0, soft.size, CHUNK)]
    out.append(dec.flush())
    return np.concatenate(out)


def _row(stage: str, params: str, nbits: int, times, target: str | None = None) -> dict:
    cpu, wall = times
    row = {"stage": stage, "params": params, "mbit_s": nbits / cpu / 1e6, "bits": int(nbits),
           "seconds": cpu, "wall_seconds": wall, "mbit_s_wall": nbits / wall / 1e6}
    if target:
        row["target"] = target
    return row


def _throughput(quick: bool) -> list[dict]:
    rng = np.random.default_rng(2024)
    nbytes = 250_000 if quick else 1_000_000
    repeats = 3 if quick else 5
    rows = []
    for rate, ebn0, label, target in (("1/2", 4.0, "r=1/2 Eb/N0 4 dB", ">= 200"),
                                      ("1/2", None, "r=1/2 full-scale", ">= 200"),
                                      ("7/8", 6.0, "r=7/8 Eb/N0 6 dB", None),
                                      ("7/8", None, "r=7/8 full-scale", None)):
        data = rng.integers(0, 256, nbytes, dtype=np.uint8)
        soft = _soft(cc.encode(data, rate), ebn0, rate, rng)
        _decode_stream(soft[:100_000], rate)                        # warm-up (compile)
        got = _decode_stream(soft, rate)
        ber = np.unpackbits(got[:-1] ^ data[:-1]).mean()
        if ber > 1e-2:
            raise RuntimeError(f"benchmark decode wrong for {label}: BER {ber}")
        row = _row("viterbi_stage", label, data.size * 8, best_cpu_and_wall(lambda: _decode_stream(soft, rate), repeats), target)
        row["ber"] = float(ber)
        rows.append(row)
        if rate == "1/2" and ebn0 is not None:
            _decode_stream(soft[:100_000], rate, "bpsk")
            rows.append(_row("viterbi_stage_bpsk_search", label, data.size * 8,
                             best_cpu_and_wall(lambda: _decode_stream(soft, rate, "bpsk"), repeats)))
            block = soft[: 2 * 8 * 100_000]
            cc.viterbi(block[:20_000], terminated=False)
            rows.append(_row("viterbi_block", label, block.size // 2,
                             best_cpu_and_wall(lambda: cc.viterbi(block, terminated=False), repeats)))
    return rows


def _curve(rate: str, points, nbits: int, rng) -> list[dict]:
    rows = []
    frame_bits = 223 * 8
    for ebn0 in points:
        nbytes = nbits // frame_bits * 223
        # 16 more bytes that are not counted: the stream is not terminated, so its last bits
        # are decoded without the trailing depth
        data = rng.integers(0, 256, nbytes + 16, dtype=np.uint8)
        got = _decode_stream(_soft(cc.encode(data, rate), ebn0, rate, rng), rate)
        wrong = np.unpackbits(got[:nbytes] ^ data[:nbytes])
        ber = float(wrong.mean())
        fer = float(wrong.reshape(-1, frame_bits).any(axis=1).mean())
        rows.append({"stage": f"ber_r{rate.replace('/', '_')}", "params": f"Eb/N0 {ebn0:.1f} dB",
                     "ebn0_db": ebn0, "ber": ber, "fer": fer, "bits": int(wrong.size),
                     "uncoded_ber": uncoded_bpsk(ebn0),
                     "union_bound": union_bound_r12(ebn0) if rate == "1/2" else None})
    return rows


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 5))
    grid = np.linspace(0, 9, 91)
    ax.semilogy(grid, [uncoded_bpsk(e) for e in grid], "k:", label="uncoded BPSK")
    ax.semilogy(grid, [min(0.5, union_bound_r12(e)) for e in grid], "b--", label="r=1/2 soft-decision union bound")
    for stage, colour, name in (("ber_r1_2", "b", "r=1/2"), ("ber_r7_8", "r", "r=7/8")):
        pts = [r for r in rows if r["stage"] == stage]
        e = [r["ebn0_db"] for r in pts]
        ax.semilogy(e, [r["ber"] or np.nan for r in pts], colour + "o-", label=f"{name} BER (8-bit soft)")
        ax.semilogy(e, [r["fer"] or np.nan for r in pts], colour + "s:", label=f"{name} FER (223-byte frames)")
    ax.set_xlabel("Eb/N0 (dB)")
    ax.set_ylabel("error rate")
    ax.set_ylim(1e-7, 1)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("groundseg Viterbi k=7 (CCSDS 131.0-B-4)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def run(quick: bool) -> list[dict]:
    rows = _throughput(quick)
    rng = np.random.default_rng(7)
    if quick:
        rows += _curve("1/2", [4.0], 200_000, rng) + _curve("7/8", [6.5], 200_000, rng)
        return rows
    curve = _curve("1/2", [1.0, 2.0, 3.0, 3.5, 4.0, 4.5, 5.0], 4_000_000, rng)
    curve += _curve("7/8", [3.0, 4.0, 5.0, 6.0, 6.5, 7.0, 7.5], 4_000_000, rng)
    png = Path(__file__).parent / "results" / "viterbi_ber.png"
    _plot(curve, png)
    for r in curve:
        r["plot"] = str(png)
    return rows + curve


if __name__ == "__main__":
    for r in run("--quick" in sys.argv):
        if "mbit_s" in r:
            print(f"{r['stage']:28s} {r['params']:22s} {r['mbit_s']:8.1f} Mbit/s  (wall {r['mbit_s_wall']:.1f})")
        else:
            ub = f" bound {r['union_bound']:.1e}" if r.get("union_bound") else ""
            print(f"{r['stage']:28s} {r['params']:22s} BER {r['ber']:.2e} FER {r['fer']:.2e} "
                  f"(uncoded {r['uncoded_ber']:.1e}{ub}; {r['bits']} bits)")
