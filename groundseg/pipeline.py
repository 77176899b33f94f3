"""The decoding chain for a mission: capture or receiver -> channel -> link -> telemetry -> archive.

Live receive and replay share :class:`Pipeline`. It is fed chunks of bytes
(`push`), told where a stream ends (`end_stream`: the next file restarts
decoder state and no counter gap is counted across the boundary), and keeps
the pass report whose keys and counting rules are those of DESIGN.md.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from groundseg import telemetry
from groundseg.coding.channel import ChannelConfig, ChannelDecoder, FrameReader
from groundseg.coding.frame_batch import FrameBatch
from groundseg.link.decoder import LinkConfig, LinkDecoder
from groundseg.link.packets import PacketStreamSplitter
from groundseg.link.records import PacketBatch
from groundseg.mission.configs import channel_config, link_config  # noqa: F401  (one copy, shared with the simulator)
from groundseg.sources.base import LEVEL_KIND, Source, StreamClock, Chunk
from groundseg.sources.capture import CaptureFiles

LEVELS = ("iq", "soft", "bits", "frames", "packets")


@dataclass
class Progress:
    """What a progress callback is told, once per chunk."""
    bytes_done: int
    bytes_total: int
    seconds: float
    frames: int
    packets: int

    @property
    def mbit_s(self) -> float:
        return self.bytes_done * 8 / 1e6 / self.seconds if self.seconds > 0 else 0.0


def empty_report() -> dict:
    return {"frames": {"total": 0, "clean": 0, "corrected": 0, "uncorrectable": 0, "crc_failed": 0,
                       "rejected": 0, "idle": 0},
            "rs_symbols_corrected": 0,
            "sync": {"bits_in": 0, "lock_losses": 0, "inverted_codeblocks": 0},
            "virtual_channels": {},
            "packets": {},
            "idle_packets": 0,
            "rejects": {}}


class Pipeline:
    """One pass of one mission. ``archive`` is an open ArchiveWriter pass or None."""

    def __init__(self, mission, level: str | None = None, archive=None,
                 on_progress: Callable[[Progress], None] | None = None):
        self.mission = mission
        self.level = level or getattr(mission.link, "level", None) or "packets"
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {self.level!r}")
        if self.level in ("iq", "soft"):
            raise NotImplementedError(
                f"level {self.level!r} needs the soft-symbol front end (convolutional decoding), "
                "which this version does not have yet")
        self.archive = archive
        self.on_progress = on_progress
        self.channel = None
        self.link = None
        self.splitter = None
        if self.level == "bits":
            self.channel = ChannelDecoder(channel_config(mission))
        elif self.level == "frames":
            self.channel = FrameReader(mission.link.frame_length, fecf=mission.link.fecf)
        if self.level in ("bits", "frames"):
            self.link = LinkDecoder(link_config(mission))
        else:
            self.splitter = PacketStreamSplitter()
        self.telemetry_rejects: dict[str, int] = {}
        self.packets_decoded = 0
        self.frames_seen = 0
        self.clock = StreamClock()
        self._stream_time = np.nan

    # -- streaming interface (live and replay) --------------------------------------------
    def begin_stream(self) -> None:
        """A new stream (next file, a receiver reconnected): decoder state restarts."""
        if self.channel is not None:
            self.channel.reset()
        if self.link is not None:
            self.link.reset_stream()
        if self.splitter is not None:
            self._splitter_output(self.splitter.flush())
            self.splitter.reset_stream()
        self.clock.reset()
        self._stream_time = np.nan

    def push(self, chunk: Chunk) -> None:
        """One chunk of the current stream (``chunk.new_stream`` is the caller's business:
        :meth:`run` calls :meth:`begin_stream` for it)."""
        self.clock.mark(chunk)
        if not np.isfinite(self._stream_time):
            self._stream_time = chunk.rx_time
        if self.channel is not None:
            self._frames(self.channel.push(chunk.data))
        else:
            self._splitter_output(self.splitter.push(chunk.data), chunk.rx_time)

    def end_stream(self) -> None:
        if self.channel is not None:
            self._frames(self.channel.flush())
            self._link_output(self.link.flush())
        else:
            self._splitter_output(self.splitter.flush())

    def _splitter_output(self, packets: PacketBatch, reception_time: float = np.nan) -> None:
        if len(packets):
            # a packet stream carries no reception time: the chunk's, else the stream's origin
            packets.header["reception_time"] = (reception_time if np.isfinite(reception_time)
                                                else self._stream_time)
        rejects = self.splitter.last_rejects
        if len(rejects) and self.archive is not None:
            self.archive.append(rejects=rejects)
        self._packets(packets)

    def _frames(self, batch: FrameBatch) -> None:
        if len(batch) == 0:
            return
        # reception time from the source's stamps, at each frame's own first bit
        pos = batch.quality["bit_position"]
        if self.level == "frames":
            pos = pos // 8
        batch.quality["reception_time"] = self.clock.times(pos)
        self.frames_seen += len(batch)
        self._link_output(self.link.push(batch))

    def _link_output(self, out) -> None:
        if self.archive is not None and len(out.frames):
            self.archive.append(frames=out.frames)
        if len(out.rejects) and self.archive is not None:
            self.archive.append(rejects=out.rejects)
        if len(out.vca) and self.archive is not None:
            self.archive.append_vca(out.vca)
        self._packets(out.packets)

    def _packets(self, packets: PacketBatch) -> None:
        if len(packets) == 0:
            return
        decoded, rejects = telemetry.decode(packets, self.mission)
        for k, v in rejects.items():
            self.telemetry_rejects[k] = self.telemetry_rejects.get(k, 0) + v
        self.packets_decoded += len(packets)
        if self.archive is not None:
            self.archive.append(decoded=decoded)

    # -- any source ------------------------------------------------------------------------
    def run(self, source: Source) -> dict:
        """Decode everything ``source`` delivers (one pass); returns the report."""
        total = source.total_bytes or 0
        done = 0
        t0 = time.perf_counter()
        open_stream = False
        for chunk in source.chunks():
            if chunk.new_stream or not open_stream:
                if open_stream:
                    self.end_stream()
                self.begin_stream()
                open_stream = True
            self.push(chunk)
            done += chunk.data.nbytes
            if self.on_progress is not None:
                self.on_progress(Progress(done, total, time.perf_counter() - t0,
                                          self.frames_seen, self.packets_decoded))
        if open_stream:
            self.end_stream()
        return self.report()

    def source_for(self, paths: Iterable[str | Path], chunk_bytes: int | None = None) -> CaptureFiles:
        """Capture files read at this pipeline's level, with the mission's rate."""
        kind = LEVEL_KIND[self.level]
        bit_rate = float(getattr(self.mission.link, "bit_rate", 0) or 0) if self.mission.link else 0.0
        rate = bit_rate / 8 if kind in ("frames", "packets") else bit_rate
        kwargs = {"kind": kind, "rate": rate}
        if chunk_bytes is not None:
            kwargs["chunk_bytes"] = chunk_bytes
        return CaptureFiles(paths, **kwargs)

    def replay(self, paths: Iterable[str | Path], chunk_bytes: int | None = None) -> dict:
        """Recorded captures as one pass, each file its own stream."""
        return self.run(self.source_for(paths, chunk_bytes))

    def report(self) -> dict:
        rep = empty_report()
        if self.channel is not None:
            st = self.channel.stats
            for k in ("total", "clean", "corrected", "uncorrectable"):
                rep["frames"][k] = int(st["frames"][k])
            rep["rs_symbols_corrected"] = int(st["rs_symbols_corrected"])
            for k in ("bits_in", "lock_losses", "inverted_codeblocks"):
                rep["sync"][k] = int(st["sync"][k])
            truncated = int(st["sync"].get("truncated", 0))
            if truncated:
                # a truncated last CADU/record is a frame that reached no RS decoder: counted
                # in total (as clean: zero corrections) and rejected as truncated
                rep["frames"]["total"] += truncated
                rep["frames"]["clean"] += truncated
                rep["frames"]["rejected"] += truncated
                rep["rejects"]["truncated"] = rep["rejects"].get("truncated", 0) + truncated
        if self.link is not None:
            counts = self.link.counts()
            for k in ("rejected", "crc_failed", "idle"):
                rep["frames"][k] += int(counts["frames"].get(k, 0))
            rep["virtual_channels"] = counts["virtual_channels"]
            rep["packets"] = counts["packets"]
            rep["idle_packets"] = int(counts["idle_packets"])
            for k, v in counts["rejects"].items():
                rep["rejects"][k] = rep["rejects"].get(k, 0) + int(v)
            for k, v in counts.items():
                if k not in rep:
                    rep[k] = v
        else:
            counts = self.splitter.counts()
            rep["packets"] = counts["packets"]
            rep["idle_packets"] = int(counts.get("idle_packets", 0))
            for k, v in counts.get("rejects", {}).items():
                rep["rejects"][k] = rep["rejects"].get(k, 0) + int(v)
            rep["sync"]["bits_in"] = int(counts.get("bytes_in", 0)) * 8
        for k, v in self.telemetry_rejects.items():
            rep["rejects"][k] = rep["rejects"].get(k, 0) + int(v)
        return rep
