"""ASM sync, pseudo-randomiser and CRC-16 FECF (CCSDS 131.0-B-4 sections 9-10, 132.0-B): one core.

Stages
- sync_locked_unaligned / _aligned / _inverted: FrameSync over a stream of
  1024-byte CADUs (ASM + 1020-byte codeblock) shifted by 3 bits (0 for aligned),
  pushed in 1 MiB chunks; Mbit/s of input bits.
- sync_search_noise: FrameSync over random bits (search the whole way).
- sync_garbage_laced: groups of 20 CADUs separated by random garbage.
- find_asm: every marker position in a CADU stream.
- crc16 / fecf_ok: 1115-byte frames in one batch; binascii.crc_hqx row by row as anchor.
- randomize / randomize_inplace: 1020-byte codeblocks, a cache-sized batch and a
  large one; numpy broadcasting XOR as anchor. ``gbyte_s`` too.
Best of N after a warm-up call (JIT compile excluded).

    python -m benchmarks.bench_sync [--quick]
"""
from __future__ import annotations

import binascii
import sys

import numpy as np

from benchmarks.timing import best_of

from groundseg.coding import crc, randomizer, sync

CHUNK = 1 << 20


def _row(stage: str, params: str, nbytes: int, seconds: float, target: str | None = None, **extra) -> dict:
    row = {"stage": stage, "params": params, "mbit_s": nbytes * 8 / seconds / 1e6,
           "bytes": int(nbytes), "seconds": seconds}
    if target:
        row["target"] = target
    row.update(extra)
    return row


def _shift(data: np.ndarray, bits: int) -> np.ndarray:
    """The stream delayed by ``bits`` (random leading bits), still packed MSB first."""
    if bits == 0:
        return data
    out = np.empty(data.size + 1, np.uint8)
    s = np.uint16(bits)
    wide = np.concatenate([np.zeros(1, np.uint8), data, np.zeros(1, np.uint8)]).astype(np.uint16)
    out[:] = ((wide[:-1] << np.uint16(8) | wide[1:]) >> s).astype(np.uint8)
    out[0] |= np.uint8(0xA5 & (0xFF << (8 - bits)) & 0xFF)
    return out


def _sync_all(data: np.ndarray, expected: int | None = None) -> int:
    fs = sync.FrameSync(1020)
    n = 0
    for i in range(0, data.size, CHUNK):
        n += len(fs.push(data[i:i + CHUNK]))
    n += len(fs.flush())
    if expected is not None and n != expected:
        raise RuntimeError(f"benchmark sync found {n} codeblocks, expected {expected}")
    return n


def run(quick: bool) -> list[dict]:
    rng = np.random.default_rng(2026)
    rows: list[dict] = []
    repeats = 3 if quick else 5

    # ---- sync
    n_cadus = 2000 if quick else 20000
    codeblocks = rng.integers(0, 256, (n_cadus, 1020), dtype=np.uint8)
    stream = sync.attach_asm(codeblocks)
    _sync_all(stream[:50000])                      # warm-up (compile)
    for stage, offset, invert in (("sync_locked_unaligned", 3, False), ("sync_locked_aligned", 0, False),
                                  ("sync_locked_inverted", 5, True)):
        data = _shift(stream, offset)
        if invert:
            data = ~data
        sec = best_of(lambda: _sync_all(data, n_cadus), repeats)
        rows.append(_row(stage, f"1024-byte CADUs, offset {offset} bits, 1 MiB pushes", data.size, sec,
                         target=">= 2000 Mbit/s"))

    noise = rng.integers(0, 256, (1 << 20) if quick else (8 << 20), dtype=np.uint8)
    sec = best_of(lambda: _sync_all(noise), repeats)
    rows.append(_row("sync_search_noise", f"{noise.size >> 20} MiB random bits", noise.size, sec))

    parts = []
    for g in range(n_cadus // 20):
        parts.append(rng.integers(0, 256, int(rng.integers(1, 3000)), dtype=np.uint8))
        parts.append(stream[g * 20 * 1024:(g + 1) * 20 * 1024])
    laced = _shift(np.concatenate(parts), 6)
    sec = best_of(lambda: _sync_all(laced), repeats)
    rows.append(_row("sync_garbage_laced", "groups of 20 CADUs, 1..3000 garbage bytes between",
                     laced.size, sec))

    sync.find_asm(stream[:10000])
    data = _shift(stream, 3)
    sec = best_of(lambda: sync.find_asm(data, max_bit_errors=4), repeats)
    rows.append(_row("find_asm", "1024-byte CADUs, offset 3 bits, max 4 errors", data.size, sec))

    # ---- CRC-16
    n_frames = 2000 if quick else 20000
    frames = rng.integers(0, 256, (n_frames, 1115), dtype=np.uint8)
    crc.crc16(frames[:4])
    crc.fecf_ok(frames[:4])
    sec = best_of(lambda: crc.crc16(frames), repeats)
    rows.append(_row("crc16", f"{n_frames} x 1115-byte frames", frames.size, sec, target=">= 15000 Mbit/s"))
    sec = best_of(lambda: crc.fecf_ok(frames), repeats)
    rows.append(_row("fecf_ok", f"{n_frames} x 1115-byte frames", frames.size, sec))
    few = [r.tobytes() for r in frames[:min(n_frames, 2000)]]
    sec = best_of(lambda: [binascii.crc_hqx(r, 0xFFFF) for r in few], repeats)
    rows.append(_row("crc16_binascii_anchor", f"{len(few)} x 1115-byte frames, crc_hqx per row",
                     len(few) * 1115, sec))

    # ---- randomiser
    sizes = [("cache-sized", 2000)] + ([] if quick else [("large", 20000)])
    for label, n in sizes:
        blocks = rng.integers(0, 256, (n, 1020), dtype=np.uint8)
        randomizer.randomize(blocks[:2])
        randomizer.randomize_inplace(blocks[:2].copy())
        pn = randomizer.pn_sequence(1020)
        params = f"{n} x 1020-byte codeblocks ({label}, {blocks.nbytes / 1e6:.0f} MB)"
        for stage, fn, target in (
                ("randomize", lambda: randomizer.randomize(blocks), ">= 10 GB/s"),
                ("randomize_inplace", lambda: randomizer.randomize_inplace(blocks), ">= 10 GB/s"),
                ("randomize_numpy_anchor", lambda: np.bitwise_xor(blocks, pn[None, :]), None)):
            sec = best_of(fn, repeats + 2)
            rows.append(_row(stage, params, blocks.nbytes, sec, target=target,
                             gbyte_s=blocks.nbytes / sec / 1e9))
    return rows


def main(argv=None) -> int:
    quick = "--quick" in (argv if argv is not None else sys.argv[1:])
    for row in run(quick):
        extra = f"  {row['gbyte_s']:.1f} GB/s" if "gbyte_s" in row else ""
        print(f"{row['stage']:<26s} {row['params']:<56s} {row['mbit_s']:>10.0f} Mbit/s{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
