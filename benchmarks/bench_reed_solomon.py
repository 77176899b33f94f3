"""Reed-Solomon (CCSDS 131.0-B-4 section 4) encode and decode: Mbit/s of codeblock input, one core.

Stages: encode (Mbit/s of codeblock output), decode clean, decode with 8 and
16 random symbol errors in every codeword; RS(255,223) dual basis at I=4 and
I=5, and RS(255,239) I=5 with 8 errors. Best of 3 (quick) or 5 after a
warm-up call (JIT compile excluded). Times are the calling thread's CPU time
(the kernels run on one core and never wait), so another process sharing the
machine does not inflate them; ``wall_seconds`` is the best wall-clock time. Anchors measured on this machine: libfec decode_rs_ccsds
163 Mbit/s clean, 87 Mbit/s with 16 errors.

    python -m benchmarks.bench_reed_solomon [--quick]
"""
from __future__ import annotations

import sys

import numpy as np

from groundseg.coding import reed_solomon as rs
from benchmarks.timing import best_cpu_and_wall


def _with_errors(codeblocks: np.ndarray, interleave: int, errors: int, rng) -> np.ndarray:
    """``errors`` distinct symbol positions hit per codeword, each with a nonzero error."""
    out = codeblocks.copy()
    if not errors:
        return out
    n, length = out.shape
    per_cw = length // interleave
    keys = rng.random((n, interleave, per_cw))
    pos = np.argpartition(keys, errors, axis=2)[:, :, :errors]  # distinct positions per codeword
    cols = pos * interleave + np.arange(interleave)[None, :, None]
    rows = np.broadcast_to(np.arange(n)[:, None, None], cols.shape)
    out[rows.ravel(), cols.ravel()] ^= rng.integers(1, 256, cols.size, dtype=np.uint8)
    return out


def _row(stage: str, params: str, nbytes: int, times: tuple[float, float]) -> dict:
    cpu, wall = times
    return {"stage": stage, "params": params, "mbit_s": nbytes * 8 / cpu / 1e6,
            "bytes": int(nbytes), "seconds": cpu, "wall_seconds": wall,
            "mbit_s_wall": nbytes * 8 / wall / 1e6}


def run(quick: bool) -> list[dict]:
    rng = np.random.default_rng(2024)
    repeats = 3 if quick else 5
    rows = []
    cases = [  # (interleave, parity, error counts)
        (4, 32, (0, 8, 16)),
        (5, 32, (0, 8, 16)),
        (5, 16, (0, 8)),
    ]
    for interleave, parity, error_counts in cases:
        n = (500 if quick else 5000) * 4 // interleave
        k = 255 - parity
        data = rng.integers(0, 256, (n, k * interleave), dtype=np.uint8)
        rs.encode(data[:2], interleave, parity)  # warm-up (compile)
        codeblocks = rs.encode(data, interleave, parity)
        name = f"255,{k} I={interleave} dual"
        times = best_cpu_and_wall(lambda: rs.encode(data, interleave, parity), repeats)
        rows.append(_row("rs_encode", name, codeblocks.size, times))
        for errors in error_counts:
            received = _with_errors(codeblocks, interleave, errors, rng)
            rs.decode(received[:2], interleave, parity)  # warm-up (compile)
            times = best_cpu_and_wall(lambda: rs.decode(received, interleave, parity), repeats)
            got, corr = rs.decode(received, interleave, parity)
            if not ((corr == errors).all() and np.array_equal(got, data)):
                raise RuntimeError(f"benchmark decode wrong for {name} with {errors} errors")
            stage = "rs_decode_clean" if errors == 0 else f"rs_decode_{errors}err"
            rows.append(_row(stage, name, received.size, times))
    return rows


if __name__ == "__main__":
    for r in run("--quick" in sys.argv):
        print(f"{r['stage']:18s} {r['params']:22s} {r['mbit_s']:9.1f} Mbit/s  "
              f"({r['bytes']} B in {r['seconds'] * 1e3:.2f} ms CPU, {r['wall_seconds'] * 1e3:.2f} ms wall)")
