"""Channel decoder as a whole (sync + de-randomise + RS + FECF): Mbit/s of CADU input.

Clean, 8 and 16 symbol errors per codeword, on an unaligned stream (3-bit offset),
RS(255,223) I=5 with 1115-byte TM frames (the demo link).
"""
from __future__ import annotations

import time

import numpy as np

from groundseg.coding import crc
from groundseg.coding.channel import ChannelConfig, ChannelDecoder, ChannelEncoder


def _shift_bits(stream: np.ndarray, offset: int) -> np.ndarray:
    bits = np.unpackbits(stream)
    return np.packbits(np.concatenate([np.zeros(offset, np.uint8), bits]))


def _stream(cfg: ChannelConfig, n: int, errors: int, rng) -> np.ndarray:
    frames = crc.append_fecf(rng.integers(0, 256, (n, cfg.frame_length - 2), dtype=np.uint8))
    blocks = ChannelEncoder(cfg).codeblocks(frames)
    if errors:
        I = cfg.interleave
        ncw = blocks.shape[1] // I
        for cw in range(I):
            pos = np.stack([rng.choice(ncw, errors, replace=False) for _ in range(n)]) * I + cw
            rows = np.repeat(np.arange(n), errors)
            blocks[rows, pos.ravel()] ^= rng.integers(1, 256, rows.size, dtype=np.uint8)
    from groundseg.coding.sync import attach_asm
    return _shift_bits(attach_asm(blocks, asm=cfg.asm), 3)


def run(quick: bool) -> list[dict]:
    rng = np.random.default_rng(7)
    cfg = ChannelConfig(frame_length=1115, interleave=5, fecf=True)
    n = 400 if quick else 4000
    rows = []
    for errors in (0, 8, 16):
        stream = _stream(cfg, n, errors, rng)
        ChannelDecoder(cfg).push(stream[: cfg.cadu_length * 20])  # warm-up (compile)
        best = np.inf
        for _ in range(3):
            dec = ChannelDecoder(cfg)
            t0 = time.perf_counter()
            b = dec.push(stream)
            b2 = dec.flush()
            best = min(best, time.perf_counter() - t0)
        got = len(b) + len(b2)
        ok = int((b.quality["crc"] == 1).sum()) + int((b2.quality["crc"] == 1).sum())
        rows.append({"stage": "channel_decode", "params": f"RS(255,223) I=5 TM 1115 B, {errors} err/cw, unaligned",
                     "mbit_s": stream.size * 8 / best / 1e6, "seconds": best, "bytes": int(stream.size),
                     "frames": got, "frames_crc_ok": ok})
    return rows
