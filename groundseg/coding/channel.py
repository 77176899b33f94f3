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

from groundseg import _reuse
from groundseg.coding import crc, randomizer, reed_solomon, sync
from groundseg.coding.frame_batch import FRAME_QUALITY_DTYPE, FrameBatch, integrity
from groundseg.stage import Stats

RS_PARITY = {"none": 0, "255,223": 32, "255,239": 16}
SYMBOLS = ("hard", "soft-int8", "soft-float32")
SYMBOL_AMBIGUITIES = ("none", "bpsk", "qpsk")
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
    # the inner code (131.0-B-4 section 3) and what enters the chain
    convolutional: str = "none"        # "none" | "1/2" | "2/3" | "3/4" | "5/6" | "7/8"
    convolutional_variant: str = "ccsds"
    differential: bool = False         # NRZ-M decoding after the inner code (or of hard bits)
    symbols: str = "hard"              # "hard" (packed bits) | "soft-int8" | "soft-float32"
    symbol_ambiguity: str = "bpsk"     # what the inner decoder resolves: "none" | "bpsk" | "qpsk"

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
        if self.convolutional != "none":
            from groundseg.coding import convolutional as cc
            if self.convolutional not in cc.RATES:
                raise ValueError(f"convolutional must be 'none' or one of {', '.join(cc.RATES)}, "
                                 f"not {self.convolutional!r}")
            if self.convolutional_variant not in cc.VARIANTS:
                raise ValueError(f"convolutional_variant must be one of {', '.join(cc.VARIANTS)}")
            if self.symbols == "hard":
                raise ValueError("a convolutional code is decoded from soft symbols: symbols must be "
                                 "'soft-int8' or 'soft-float32'")
        if self.symbols not in SYMBOLS:
            raise ValueError(f"symbols must be one of {', '.join(SYMBOLS)}, not {self.symbols!r}")
        if self.symbol_ambiguity not in SYMBOL_AMBIGUITIES:
            raise ValueError(f"symbol_ambiguity must be one of {', '.join(SYMBOL_AMBIGUITIES)}")

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

    @property
    def input_units_per_bit(self) -> float:
        """Input elements (channel symbols for soft input, bits for hard) per bit that frame
        sync sees: maps frame positions back to the source's stream positions."""
        if self.convolutional == "none":
            return 1.0
        k, n = (int(x) for x in self.convolutional.split("/"))
        return n / k


@dataclass(eq=False)
class ChannelStats(Stats):
    """The report's channel figures: ``frames`` (total, clean, corrected, uncorrectable),
    ``rs_symbols_corrected`` and ``sync`` (the :class:`~groundseg.coding.sync.SyncStats`)."""
    frames: "FrameCounts" = field(default_factory=lambda: FrameCounts())
    rs_symbols_corrected: int = 0
    sync: sync.SyncStats = field(default_factory=sync.SyncStats)
    inner: "InnerCodeStats | None" = None


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
        q["symbol_error_rate"] = np.nan
        q["esn0_db"] = np.nan
        q["crc"] = -1
        return FrameBatch(sb.codeblocks, q)


@dataclass(eq=False)
class InnerCodeStats(Stats):
    """The inner decoder's figures for the report's ``link_quality``: channel symbol error
    rate (decoded bits re-encoded against the received hard decisions), Es/N0 (dB) from the
    soft symbols' moments, and the symbol alignment / polarity hypotheses used, with where
    each stretch began."""
    symbols_in: int = 0
    bits_out: int = 0
    symbol_error_rate: float = float("nan")
    esn0_db: float = float("nan")
    locks: int = 0
    lock_losses: int = 0
    hypothesis_changes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        d = super().to_dict()
        for k in ("symbol_error_rate", "esn0_db"):
            d[k] = None if not np.isfinite(d[k]) else round(float(d[k]), 6)
        return d


class ViterbiStage:
    """Soft symbols -> packed decoded bits (131.0-B-4 section 3): the streaming Viterbi
    decoder, which resolves the symbol alignment and polarity itself. Keeps the link
    quality of its recent windows so frames found later can be given theirs."""

    KEEP_WINDOWS = 4096

    def __init__(self, config: "ChannelConfig"):
        from groundseg.coding import viterbi_decoder as vd
        self.config = config
        self.decoder = vd.ViterbiDecoder(
            config.convolutional, config.convolutional_variant,
            ambiguity=None if config.symbol_ambiguity == "none" else config.symbol_ambiguity,
            dtype="float32" if config.symbols == "soft-float32" else "int8",
            block_bits=self.window_bits(config))
        self._windows = np.zeros(0, vd.WINDOW_DTYPE)
        self._before = None            # stats of earlier streams

    @staticmethod
    def window_bits(config: "ChannelConfig") -> int:
        """Bits per decoding window: alignment and polarity are decided per window, so a
        window no longer than half a CADU lets a burst of one or two codeblocks (BY70-1)
        be decided on its own; 2048 at most (long windows cost less per bit)."""
        half = config.cadu_length * 8 // 2
        bits = 256
        while bits * 2 <= min(half, 2048):
            bits *= 2
        return bits

    def push(self, soft) -> np.ndarray:
        return self._keep(self.decoder.push(soft))

    def flush(self) -> np.ndarray:
        return self._keep(self.decoder.flush())

    def reset(self) -> None:
        self._fold()
        self.decoder.reset()
        self._windows = self._windows[:0]

    def _fold(self) -> None:
        s = self.decoder.stats
        if self._before is None:
            self._before = type(s)()
        b = self._before
        for f in ("symbols_in", "bits_out", "windows", "symbols_compared", "symbol_errors", "sum_y",
                  "sum_y2", "locks", "lock_losses", "switches", "searches"):
            setattr(b, f, getattr(b, f) + getattr(s, f))
        b.changes = list(b.changes) + list(s.changes)

    def _keep(self, out: np.ndarray) -> np.ndarray:
        w = self.decoder.last_windows
        if len(w):
            self._windows = np.concatenate([self._windows, w])[-self.KEEP_WINDOWS:]
        return out

    def quality_at(self, bit_positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(symbol error rate, Es/N0 dB) of the windows holding ``bit_positions`` (NaN: unknown)."""
        w = self._windows
        ser = np.full(len(bit_positions), np.nan, np.float32)
        esn0 = np.full(len(bit_positions), np.nan, np.float32)
        if len(w) and len(bit_positions):
            i = np.clip(np.searchsorted(w["bit_position"], bit_positions, side="right") - 1, 0, len(w) - 1)
            inside = (bit_positions >= w["bit_position"][i]) & (bit_positions < w["bit_position"][i] + w["bits"][i])
            ser[inside] = w["ser"][i[inside]]
            esn0[inside] = w["esn0_db"][i[inside]]
        return ser, esn0

    @property
    def stats(self) -> InnerCodeStats:
        from groundseg.coding.viterbi_decoder import ViterbiStats
        s = self.decoder.stats
        b = self._before or ViterbiStats()
        compared = b.symbols_compared + s.symbols_compared
        errors = b.symbol_errors + s.symbol_errors
        n = compared
        sum_y, sum_y2 = b.sum_y + s.sum_y, b.sum_y2 + s.sum_y2
        esn0 = float("nan")
        if n:
            mean, var = sum_y / n, sum_y2 / n - (sum_y / n) ** 2
            if mean > 0 and var > 0:
                esn0 = float(10 * np.log10(mean * mean / (2 * var)))
        changes = [dict(zip(("symbol_position", "bit_position", "offset", "swap", "negate"),
                            (int(v) if not isinstance(v, bool) else v for v in c)))
                   for c in list(b.changes) + list(s.changes)]
        return InnerCodeStats(symbols_in=b.symbols_in + s.symbols_in, bits_out=b.bits_out + s.bits_out,
                              symbol_error_rate=errors / compared if compared else float("nan"),
                              esn0_db=esn0, locks=b.locks + s.locks, lock_losses=b.lock_losses + s.lock_losses,
                              hypothesis_changes=changes)


class DifferentialStage:
    """NRZ-M decoding (b[n] xor b[n-1]) of packed bits; one bit crosses chunk boundaries."""

    def __init__(self):
        from groundseg.coding.differential import DifferentialDecoder
        self.decoder = DifferentialDecoder()

    def push(self, bits) -> np.ndarray:
        return self.decoder.push(bits)

    def flush(self) -> np.ndarray:
        return self.decoder.flush()

    def reset(self) -> None:
        self.decoder.reset()

    @property
    def stats(self) -> Stats:
        return Stats()


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
        # the last batch's frames again once the chain has let go of them
        out = _reuse.empty("rs.frames", (len(batch), cfg.frame_length), np.uint8, mapped=True)
        frames, corrections = reed_solomon.decode(batch.frames, interleave=cfg.interleave,
                                                  parity=cfg.parity, dual_basis=cfg.dual_basis, out=out)
        del out
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
    """The decoding stages of a link, in order (channel symbols or hard bits in, frames with
    integrity out): [Viterbi] [NRZ-M] sync [derandomise] [RS] [derandomise] FECF."""
    stages = []
    if config.convolutional != "none":
        stages.append(ViterbiStage(config))
    if config.differential:
        stages.append(DifferentialStage())
    stages.append(SyncStage(config))
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
        self._inner = next((s for s in self.stages if isinstance(s, ViterbiStage)), None)

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
        inner = self._inner.stats if self._inner is not None else None
        return ChannelStats(frames=FrameCounts(**self._counts.to_dict()),
                            rs_symbols_corrected=self._rs_symbols, sync=sync_stats, inner=inner)

    def input_positions(self, bit_positions: np.ndarray) -> np.ndarray:
        """Stream positions in the input's own elements (symbols for soft input) of frames
        found at ``bit_positions`` of the bits frame sync saw."""
        scale = self.config.input_units_per_bit
        if scale == 1.0:
            return bit_positions
        return np.round(np.asarray(bit_positions, np.float64) * scale).astype(np.int64)

    def _count(self, batch: FrameBatch) -> FrameBatch:
        n = len(batch)
        if n and self._inner is not None:
            q = batch.quality
            q["symbol_error_rate"], q["esn0_db"] = self._inner.quality_at(q["bit_position"])
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
