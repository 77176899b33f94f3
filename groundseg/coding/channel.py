"""The channel decoder for one link: sync, de-randomise, Reed-Solomon, FECF (CCSDS 131.0-B-4, 132.0-B-3).

Composes the coding stages for a link described by :class:`ChannelConfig`:
hard bits in (packed bytes, any alignment, either polarity), transfer frames
out as a :class:`~groundseg.coding.frame_batch.FrameBatch` carrying each
frame's quality. :class:`ChannelEncoder` is the mirror image used by the
simulator. :class:`FrameReader` is the entry for captures of frames already
decoded elsewhere (level "frames").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from groundseg.coding import crc, randomizer, reed_solomon, sync
from groundseg.coding.frame_batch import FRAME_QUALITY_DTYPE, FrameBatch, integrity

RS_PARITY = {"none": 0, "255,223": 32, "255,239": 16}
INTERLEAVES = (1, 2, 3, 4, 5, 8)


@dataclass(frozen=True)
class ChannelConfig:
    frame_length: int
    asm: int = 0x1ACFFC1D
    asm_bits: int = 32
    asm_max_bit_errors: int = 4
    randomized: bool = True
    derandomize: str = "before_rs"     # "before_rs" (131.0-B) | "after_rs"
    reed_solomon: str = "255,223"      # "none" | "255,223" | "255,239"
    interleave: int = 1
    dual_basis: bool = True
    fecf: bool = False
    bit_rate: float = 0.0              # bit/s; 0 = unknown

    def __post_init__(self):
        if self.reed_solomon not in RS_PARITY:
            raise ValueError(f"reed_solomon must be one of {', '.join(RS_PARITY)}, not {self.reed_solomon!r}")
        if self.derandomize not in ("before_rs", "after_rs"):
            raise ValueError(f"derandomize must be 'before_rs' or 'after_rs', not {self.derandomize!r}")
        if self.frame_length < 8:
            raise ValueError(f"frame_length {self.frame_length} is too short for a transfer frame")
        if self.parity:
            if self.interleave not in INTERLEAVES:
                raise ValueError(f"interleave must be one of {INTERLEAVES}, not {self.interleave}")
            k = 255 - self.parity
            if self.frame_length % self.interleave or self.frame_length // self.interleave > k:
                raise ValueError(
                    f"frame_length {self.frame_length} does not fit RS({255},{k}) with interleave "
                    f"{self.interleave}: it must be a multiple of {self.interleave} and at most "
                    f"{k * self.interleave} (virtual fill makes up the rest)")
        if not 0 <= self.asm_max_bit_errors < self.asm_bits // 2:
            raise ValueError(f"asm_max_bit_errors must be 0..{self.asm_bits // 2 - 1}")

    @property
    def parity(self) -> int:
        return RS_PARITY[self.reed_solomon]

    @property
    def codeblock_length(self) -> int:
        return self.frame_length + self.parity * (self.interleave if self.parity else 0)

    @property
    def virtual_fill(self) -> int:
        return (255 - self.parity) - self.frame_length // self.interleave if self.parity else 0

    @property
    def cadu_length(self) -> int:
        return self.codeblock_length + self.asm_bits // 8


def _empty_stats() -> dict:
    return {"frames": {"total": 0, "clean": 0, "corrected": 0, "uncorrectable": 0},
            "rs_symbols_corrected": 0,
            "sync": {"bits_in": 0, "lock_losses": 0, "inverted_codeblocks": 0, "truncated": 0}}


class ChannelDecoder:
    """Packed hard bits in, frames with quality out. Carries only the sync state across chunks."""

    def __init__(self, config: ChannelConfig):
        self.config = config
        self.sync = sync.FrameSync(config.codeblock_length, asm=config.asm, asm_bits=config.asm_bits,
                                   max_bit_errors=config.asm_max_bit_errors)
        self.stats = _empty_stats()
        self._bits_before = 0   # bits of earlier streams, so stats survive reset()
        self._lock_losses_before = 0
        self._inverted_before = 0
        self._truncated_before = 0

    def reset(self) -> None:
        """A new stream (next capture file): forget sync state, keep the statistics."""
        self._fold_sync_stats()
        self.sync = sync.FrameSync(self.config.codeblock_length, asm=self.config.asm,
                                   asm_bits=self.config.asm_bits,
                                   max_bit_errors=self.config.asm_max_bit_errors)

    def _fold_sync_stats(self) -> None:
        s = self.sync.stats
        self._bits_before += int(s.get("bits_in", 0))
        self._lock_losses_before += int(s.get("lock_losses", 0))
        self._inverted_before += int(s.get("inverted_codeblocks", 0))
        self._truncated_before += int(s.get("truncated", 0))

    def _update_sync_stats(self) -> None:
        s = self.sync.stats
        st = self.stats["sync"]
        st["bits_in"] = self._bits_before + int(s.get("bits_in", 0))
        st["lock_losses"] = self._lock_losses_before + int(s.get("lock_losses", 0))
        st["inverted_codeblocks"] = self._inverted_before + int(s.get("inverted_codeblocks", 0))
        st["truncated"] = self._truncated_before + int(s.get("truncated", 0))

    def push(self, chunk) -> FrameBatch:
        data = np.frombuffer(chunk, dtype=np.uint8) if not isinstance(chunk, np.ndarray) else chunk
        return self._decode(self.sync.push(data))

    def flush(self) -> FrameBatch:
        return self._decode(self.sync.flush())

    def _decode(self, sb) -> FrameBatch:
        cfg = self.config
        self._update_sync_stats()
        blocks = sb.codeblocks
        n = blocks.shape[0]
        if n == 0:
            return FrameBatch.empty(cfg.frame_length)
        if cfg.randomized and cfg.derandomize == "before_rs":
            randomizer.randomize_inplace(blocks)
        if cfg.parity:
            frames, corrections = reed_solomon.decode(blocks, interleave=cfg.interleave,
                                                      parity=cfg.parity, dual_basis=cfg.dual_basis)
        else:
            frames = blocks
            corrections = np.zeros((n, 1), np.int16)
        if cfg.randomized and cfg.derandomize == "after_rs":
            frames = np.ascontiguousarray(frames)
            randomizer.randomize_inplace(frames)
        q = np.zeros(n, FRAME_QUALITY_DTYPE)
        meta = sb.meta
        q["bit_position"] = meta["bit_position"]
        q["inverted"] = meta["inverted"]
        q["asm_bit_errors"] = meta["asm_bit_errors"]
        q["sync_state"] = meta["sync_state"]
        bad = (corrections < 0).any(axis=1)
        q["rs_corrected"] = np.where(bad, -1, np.clip(corrections, 0, None).sum(axis=1))
        if cfg.fecf:
            q["crc"] = np.where(bad, -1, crc.fecf_ok(frames)).astype(np.int8)
        else:
            q["crc"] = -1
        q["integrity"] = integrity(q["rs_corrected"], q["crc"])
        q["reception_time"] = np.nan     # the pipeline's clock knows the source's stamps
        st = self.stats
        corrected = int(((q["rs_corrected"] > 0) & ~bad).sum())
        st["frames"]["total"] += n
        st["frames"]["uncorrectable"] += int(bad.sum())
        st["frames"]["corrected"] += corrected
        st["frames"]["clean"] += n - int(bad.sum()) - corrected
        st["rs_symbols_corrected"] += int(q["rs_corrected"][~bad].sum())
        return FrameBatch(np.ascontiguousarray(frames), q)


class ChannelEncoder:
    """Frames (FECF already in place) to a CADU byte stream: the mirror image of :class:`ChannelDecoder`."""

    def __init__(self, config: ChannelConfig):
        self.config = config

    def codeblocks(self, frames: np.ndarray) -> np.ndarray:
        cfg = self.config
        frames = np.ascontiguousarray(frames, dtype=np.uint8)
        if frames.ndim != 2 or frames.shape[1] != cfg.frame_length:
            raise ValueError(f"frames must be (n, {cfg.frame_length}) uint8, got {frames.shape}")
        blocks = frames.copy()
        if cfg.randomized and cfg.derandomize == "after_rs":
            randomizer.randomize_inplace(blocks)
        if cfg.parity:
            blocks = reed_solomon.encode(blocks, interleave=cfg.interleave, parity=cfg.parity,
                                         dual_basis=cfg.dual_basis)
        if cfg.randomized and cfg.derandomize == "before_rs":
            blocks = np.ascontiguousarray(blocks)
            randomizer.randomize_inplace(blocks)
        return blocks

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """CADUs back to back (ASM + codeblock), as a 1-D uint8 array."""
        cfg = self.config
        return sync.attach_asm(self.codeblocks(frames), asm=cfg.asm, asm_bits=cfg.asm_bits)


class FrameReader:
    """Level "frames": fixed-length frame records back to back; carries a partial record across chunks."""

    def __init__(self, frame_length: int, fecf: bool = False):
        self.frame_length = frame_length
        self.fecf = fecf
        self._tail = np.zeros(0, np.uint8)
        self._bytes = 0          # bytes consumed in this stream
        self.stats = {"frames": {"total": 0, "clean": 0, "corrected": 0, "uncorrectable": 0},
                      "rs_symbols_corrected": 0,
                      "sync": {"bits_in": 0, "lock_losses": 0, "inverted_codeblocks": 0, "truncated": 0}}

    def reset(self) -> None:
        self._tail = np.zeros(0, np.uint8)
        self._bytes = 0

    def push(self, chunk) -> FrameBatch:
        data = np.frombuffer(chunk, dtype=np.uint8) if not isinstance(chunk, np.ndarray) else chunk
        self.stats["sync"]["bits_in"] += data.size * 8
        if self._tail.size:
            data = np.concatenate([self._tail, data])
        n = data.size // self.frame_length
        frames = data[: n * self.frame_length].reshape(n, self.frame_length)
        self._tail = data[n * self.frame_length:].copy()
        crc_flags = crc.fecf_ok(frames).astype(np.int8) if (self.fecf and n) else None
        batch = FrameBatch.from_frames(frames, first_byte=self._bytes, crc=crc_flags)
        self._bytes += n * self.frame_length
        self.stats["frames"]["total"] += n
        self.stats["frames"]["clean"] += n
        return batch

    def flush(self) -> FrameBatch:
        if self._tail.size:
            self.stats["sync"]["truncated"] += 1
            self._tail = np.zeros(0, np.uint8)
        return FrameBatch.empty(self.frame_length)
