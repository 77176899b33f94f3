"""The channel decoder for one link: sync, de-randomise, Reed-Solomon, FECF (CCSDS 131.0-B-4, 132.0-B-3).

Composes the coding stages for a link described by :class:`ChannelConfig`:
hard bits in (packed bytes, any alignment, either polarity), transfer frames
out as a :class:`~groundseg.coding.frame_batch.FrameBatch` carrying each
frame's quality. :class:`ChannelEncoder` is the mirror image used by the
simulator. :class:`FrameReader` is the entry for captures of frames already
decoded elsewhere (level "frames").
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from groundseg.coding import crc, randomizer, reed_solomon, sync
from groundseg.coding.frame_batch import FRAME_QUALITY_DTYPE, FrameBatch, integrity
from groundseg.stage import Stats

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
    # frame sync (sync.FrameSync): a marker needs the next one a CADU later before lock
    # (``sync_verify``); False for bursts shorter than two CADUs (BY70-1)
    sync_verify: bool = True
    sync_flywheel: int = 3             # missed markers delivered in lock before lock is lost
    sync_spacing_tolerance: int = 1    # bits either side of the predicted marker (2072/2073)

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


@dataclass(eq=False)
class ChannelStats(Stats):
    """The report's channel figures: ``frames`` (total, clean, corrected, uncorrectable),
    ``rs_symbols_corrected`` and ``sync`` (the :class:`~groundseg.coding.sync.SyncStats`)."""
    frames: "FrameCounts" = field(default_factory=lambda: FrameCounts())
    rs_symbols_corrected: int = 0
    sync: sync.SyncStats = field(default_factory=sync.SyncStats)


@dataclass(eq=False)
class FrameCounts(Stats):
    total: int = 0
    clean: int = 0
    corrected: int = 0
    uncorrectable: int = 0


# -- the stages ------------------------------------------------------------------------------
class SyncStage:
    """Packed hard bits -> codeblocks (ASM removed, polarity corrected) with their sync quality."""

    def __init__(self, config: "ChannelConfig"):
        self.config = config
        self.sync = sync.FrameSync(config.codeblock_length, asm=config.asm, asm_bits=config.asm_bits,
                                   max_bit_errors=config.asm_max_bit_errors, verify=config.sync_verify,
                                   flywheel=config.sync_flywheel,
                                   spacing_tolerance=config.sync_spacing_tolerance)

    def push(self, chunk) -> FrameBatch:
        data = np.frombuffer(chunk, dtype=np.uint8) if not isinstance(chunk, np.ndarray) else chunk
        return self._batch(self.sync.push(data))

    def flush(self) -> FrameBatch:
        return self._batch(self.sync.flush())

    def reset(self) -> None:
        self.sync.reset()

    @property
    def stats(self) -> sync.SyncStats:
        return self.sync.stats

    def _batch(self, sb) -> FrameBatch:
        n = len(sb)
        q = np.zeros(n, FRAME_QUALITY_DTYPE)
        meta = sb.meta
        q["bit_position"] = meta["bit_position"]
        q["inverted"] = meta["inverted"]
        q["asm_bit_errors"] = meta["asm_bit_errors"]
        q["sync_state"] = meta["sync_state"]
        q["reception_time"] = np.nan     # the pipeline's clock knows the source's stamps
        q["crc"] = -1
        return FrameBatch(sb.codeblocks, q)


class _BlockStage:
    """A stage over whole codeblocks: nothing crosses a chunk boundary."""

    def flush(self) -> FrameBatch:
        return None

    def reset(self) -> None:
        pass

    @property
    def stats(self) -> Stats:
        return Stats()


class DerandomizeStage(_BlockStage):
    """The CCSDS pseudo-randomiser removed in place (131.0-B-4 section 10)."""

    def push(self, batch: FrameBatch) -> FrameBatch:
        if len(batch):
            frames = np.ascontiguousarray(batch.frames)
            randomizer.randomize_inplace(frames)
            batch.frames = frames
        return batch


class ReedSolomonStage(_BlockStage):
    """Codeblocks -> frames, corrections per frame (131.0-B-4 section 4)."""

    def __init__(self, config: "ChannelConfig"):
        self.config = config

    def push(self, batch: FrameBatch) -> FrameBatch:
        cfg = self.config
        if not len(batch):
            return FrameBatch.empty(cfg.frame_length)
        frames, corrections = reed_solomon.decode(batch.frames, interleave=cfg.interleave,
                                                  parity=cfg.parity, dual_basis=cfg.dual_basis)
        bad = (corrections < 0).any(axis=1)
        batch.quality["rs_corrected"] = np.where(bad, -1, np.clip(corrections, 0, None).sum(axis=1))
        return FrameBatch(np.ascontiguousarray(frames), batch.quality)


class FecfStage(_BlockStage):
    """The FECF (CRC-16, 132.0-B-3 / 732.0-B-4) of frames RS did not refuse, and the
    frame's integrity code from both verdicts."""

    def __init__(self, config: "ChannelConfig"):
        self.config = config

    def push(self, batch: FrameBatch) -> FrameBatch:
        q = batch.quality
        if len(batch) and self.config.fecf:
            q["crc"] = np.where(q["rs_corrected"] < 0, -1, crc.fecf_ok(batch.frames)).astype(np.int8)
        q["integrity"] = integrity(q["rs_corrected"], q["crc"])
        return batch


def build_stages(config: "ChannelConfig") -> list:
    """The decoding stages of a link, in order (hard bits in, frames with integrity out)."""
    stages = [SyncStage(config)]
    if config.randomized and config.derandomize == "before_rs":
        stages.append(DerandomizeStage())
    if config.parity:
        stages.append(ReedSolomonStage(config))
    if config.randomized and config.derandomize == "after_rs":
        stages.append(DerandomizeStage())
    stages.append(FecfStage(config))
    return stages


class ChannelDecoder:
    """Packed hard bits in, frames with quality out: the stages of :func:`build_stages`
    run in order over each chunk. Only the sync stage carries state across chunks."""

    def __init__(self, config: ChannelConfig, stages: list | None = None):
        self.config = config
        self.stages = build_stages(config) if stages is None else list(stages)
        self._counts = FrameCounts()
        self._rs_symbols = 0

    def reset(self) -> None:
        """A new stream (next capture file): stage state forgotten, statistics kept."""
        for s in self.stages:
            s.reset()

    def push(self, chunk) -> FrameBatch:
        x = chunk
        for s in self.stages:
            x = s.push(x)
        return self._count(x)

    def flush(self) -> FrameBatch:
        outs = []
        for i, s in enumerate(self.stages):
            y = s.flush()
            if y is None:
                continue
            for t in self.stages[i + 1:]:
                y = t.push(y)
            outs.append(self._count(y))
        return FrameBatch.concatenate(outs, self.config.frame_length)

    @property
    def sync(self) -> sync.FrameSync | None:
        """The frame synchroniser (its settings are the ones this decoder uses)."""
        return next((s.sync for s in self.stages if isinstance(s, SyncStage)), None)

    @property
    def stats(self) -> ChannelStats:
        sync_stats = next((s.stats for s in self.stages if isinstance(s, SyncStage)), sync.SyncStats())
        return ChannelStats(frames=FrameCounts(**self._counts.to_dict()),
                            rs_symbols_corrected=self._rs_symbols, sync=sync_stats)

    def _count(self, batch: FrameBatch) -> FrameBatch:
        n = len(batch)
        if n:
            rs = batch.quality["rs_corrected"]
            bad = int((rs < 0).sum())
            corrected = int((rs > 0).sum())
            c = self._counts
            c.total += n
            c.uncorrectable += bad
            c.corrected += corrected
            c.clean += n - bad - corrected
            self._rs_symbols += int(rs[rs > 0].sum())
        return batch


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
        self.stats = ChannelStats()

    def reset(self) -> None:
        self._tail = np.zeros(0, np.uint8)
        self._bytes = 0

    def push(self, chunk) -> FrameBatch:
        data = np.frombuffer(chunk, dtype=np.uint8) if not isinstance(chunk, np.ndarray) else chunk
        self.stats.sync.bits_in += data.size * 8
        if self._tail.size:
            data = np.concatenate([self._tail, data])
        n = data.size // self.frame_length
        frames = data[: n * self.frame_length].reshape(n, self.frame_length)
        self._tail = data[n * self.frame_length:].copy()
        crc_flags = crc.fecf_ok(frames).astype(np.int8) if (self.fecf and n) else None
        batch = FrameBatch.from_frames(frames, first_byte=self._bytes, crc=crc_flags)
        self._bytes += n * self.frame_length
        self.stats.frames.total += n
        self.stats.frames.clean += n
        return batch

    def flush(self) -> FrameBatch:
        if self._tail.size:
            self.stats.sync.truncated += 1
            self._tail = np.zeros(0, np.uint8)
        return FrameBatch.empty(self.frame_length)
