"""The decoding chain for a mission: capture or receiver -> channel -> link -> telemetry -> archive.

Live receive and replay share :class:`Pipeline`. It is fed chunks of bytes
(`push`), told where a stream ends (`end_stream`: the next file restarts
decoder state and no counter gap is counted across the boundary), and keeps
the pass report (groundseg.report.PassReport; keys and counting rules in docs/report.md).
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from groundseg import telemetry
from groundseg.coding.channel import ChannelDecoder, FrameReader
from groundseg.coding.frame_batch import FrameBatch
from groundseg.link.decoder import LinkDecoder
from groundseg.link.packets import PacketStreamSplitter
from groundseg.link.records import PacketBatch
from groundseg.errors import UsageError
from groundseg.mission.configs import channel_config, link_config  # noqa: F401  (one copy, shared with the simulator)
from groundseg.report import PassReport
from groundseg.sources.base import LEVEL_KIND, Source, StreamClock, Chunk
from groundseg.sources.capture import SOFT_DTYPES, CaptureFiles

LEVELS = tuple(LEVEL_KIND)


def _iso(t: float) -> str | None:
    """UTC ISO 8601 with microseconds, None for an unknown time."""
    if not np.isfinite(t):
        return None
    return datetime.fromtimestamp(t, timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class Progress:
    """What a progress callback is told, once per chunk."""
    bytes_done: int
    bytes_total: int
    seconds: float
    frames: int
    packets: int
    rs_symbols_corrected: int = 0
    crc_failed: int = 0
    gaps: int = 0

    @property
    def mbit_s(self) -> float:
        return self.bytes_done * 8 / 1e6 / self.seconds if self.seconds > 0 else 0.0


class Pipeline:
    """One pass of one mission. ``archive`` is an open ArchiveWriter pass or None."""

    def __init__(self, mission, level: str | None = None, archive=None,
                 on_progress: Callable[[Progress], None] | None = None,
                 on_frames: Callable[[int, np.ndarray], None] | None = None):
        self.mission = mission
        self.level = level or getattr(mission.link, "level", None) or "packets"
        if self.level not in LEVELS:
            raise UsageError(f"level must be one of {', '.join(LEVELS)}, not {self.level!r}")
        if self.level == "iq" and getattr(mission, "modulation", None) is None:
            raise UsageError("level 'iq' needs a [modulation] table in the mission file (scheme, "
                             "symbol_rate; docs/sdr.md)")
        if self.level in ("iq", "soft", "bits", "frames") and mission.link is None:
            raise UsageError(f"level {self.level!r} needs a [link] table in the mission file")
        self.archive = archive
        self.on_progress = on_progress
        self.channel = None
        self.link = None
        self.splitter = None
        if self.level in ("bits", "soft", "iq"):
            self.channel = ChannelDecoder(channel_config(mission, self.level))
        elif self.level == "frames":
            self.channel = FrameReader(mission.link.frame_length, fecf=mission.link.fecf)
        if self.level in ("iq", "soft", "bits", "frames"):
            self.link = LinkDecoder(link_config(mission))
        else:
            self.splitter = PacketStreamSplitter()
        self.telemetry_rejects: dict[str, int] = {}
        self.packets_decoded = 0
        self.frames_seen = 0
        self.clock = StreamClock()
        self.source_info: dict = {}
        #: called with (stream index, frame records) for every batch of frames (SigMF annotations)
        self.on_frames = on_frames
        self.stream_index = -1
        self.source_sections: dict = {}      # what a source adds to the report (demodulator)
        self._stream_time = np.nan

    # -- streaming interface (live and replay) --------------------------------------------
    def begin_stream(self) -> None:
        """A new stream (next file, a receiver reconnected): decoder state restarts."""
        self.stream_index += 1
        if self.channel is not None:
            self.channel.reset()
        if self.link is not None:
            self.link.reset()
        if self.splitter is not None:
            self._splitter_output(self.splitter.flush())
            self.splitter.reset()
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

    def _splitter_output(self, out, reception_time: float = np.nan) -> None:
        packets = out.packets
        if len(packets):
            # a packet stream carries no reception time: the chunk's, else the stream's origin
            packets.header["reception_time"] = (reception_time if np.isfinite(reception_time)
                                                else self._stream_time)
        rejects = out.rejects
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
        else:
            pos = self.channel.input_positions(pos)
        batch.quality["reception_time"] = self.clock.times(pos)
        self.frames_seen += len(batch)
        self._link_output(self.link.push(batch))

    def _link_output(self, out) -> None:
        if self.on_frames is not None and len(out.frames):
            self.on_frames(self.stream_index, out.frames)
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
    def run(self, source: Source, on_chunk: Callable[[Chunk], None] | None = None) -> PassReport:
        """Decode everything ``source`` delivers (one pass); returns the report.
        ``on_chunk`` is called after each chunk (a live receiver's status line, flushes;
        a silent receiver's empty chunks reach it too)."""
        total = source.total_bytes or 0
        done = 0
        t0 = time.perf_counter()
        started = time.time()
        first_rx = last_rx = float("nan")
        stream_seconds = 0.0      # the input's own duration at its rate (x real time)
        open_stream = False
        for chunk in source.chunks():
            if np.isfinite(chunk.rx_time):
                last_rx = chunk.rx_time
                if not np.isfinite(first_rx):
                    first_rx = chunk.rx_time
            if chunk.new_stream or not open_stream:
                if open_stream:
                    self.end_stream()
                self.begin_stream()
                open_stream = True
            if chunk.data.size or chunk.new_stream:
                self.push(chunk)
            done += chunk.data.nbytes
            if chunk.rate > 0:
                stream_seconds += chunk.elements / chunk.rate
            if on_chunk is not None:
                on_chunk(chunk)
            if self.on_progress is not None:
                self.on_progress(self._progress(done, total, time.perf_counter() - t0))
        if open_stream:
            self.end_stream()
        seconds = time.perf_counter() - t0
        self.source_sections = source.report_sections()
        self.source_info = {
            "files": source.names, "kind": source.kind, "bytes_in": int(source.stats.bytes_in),
            "truncated_bytes": int(source.stats.truncated_bytes),
            "outages": [o.to_dict() for o in source.stats.outages],
            "first_reception": _iso(first_rx), "last_reception": _iso(last_rx),
            "started": _iso(started), "finished": _iso(time.time()),
            "decode_seconds": round(seconds, 6),
            "stream_seconds": round(stream_seconds, 6),
            "mbit_s": round(done * 8 / 1e6 / seconds, 3) if seconds > 0 else 0.0}
        extra = getattr(source.stats, "report_extra", None)
        if extra is not None:
            self.source_info.update(extra())     # a live source's own counts (network: datagrams)
        return self.report()

    def _progress(self, done: int, total: int, seconds: float) -> Progress:
        p = Progress(done, total, seconds, self.frames_seen, self.packets_decoded)
        if isinstance(self.channel, ChannelDecoder):
            p.rs_symbols_corrected = self.channel.stats.rs_symbols_corrected
        if self.link is not None:
            c = self.link.stats.to_dict()
            p.crc_failed = int(c["frames"].get("crc_failed", 0))
            p.gaps = sum(int(v.get("gaps", 0)) for v in c["virtual_channels"].values())
        return p

    def source_for(self, paths: Iterable[str | Path], chunk_bytes: int | None = None,
                   iq_format: str | None = None, sample_rate: float | None = None) -> Source:
        """Capture files read at this pipeline's level, with the mission's rate. Level "iq":
        recordings (SigMF, WAV, raw IQ with ``iq_format`` and ``sample_rate``) seen through
        the mission's demodulator as soft symbols."""
        if self.level == "iq":
            from groundseg.coding.demod.source import DemodulatedSource
            from groundseg.sources.sdr import IQFiles
            return DemodulatedSource(IQFiles(list(paths), fmt=iq_format, sample_rate=sample_rate),
                                     self.mission.modulation)
        kind = LEVEL_KIND[self.level]
        bit_rate = float(getattr(self.mission.link, "bit_rate", 0) or 0) if self.mission.link else 0.0
        rate = bit_rate / 8 if kind in ("frames", "packets") else bit_rate
        kwargs = {"kind": kind, "rate": rate}
        if kind == "soft":
            kwargs["dtype"] = SOFT_DTYPES[self.mission.link.symbols]
            kwargs["rate"] = bit_rate * self.channel.config.input_units_per_bit
        if chunk_bytes is not None:
            kwargs["chunk_bytes"] = chunk_bytes
        return CaptureFiles(paths, **kwargs)

    def network_source(self, address: str, **kwargs):
        """A TCP or UDP source (``tcp://``, ``tcp-listen://``, ``udp://``) of this pipeline's
        level (soft symbols in the mission's format, or packed bits) at the mission's rate;
        ``kwargs`` go to :class:`~groundseg.sources.network.TcpSource` / ``UdpSource``."""
        from groundseg.sources.network import open_network_source
        kind = LEVEL_KIND[self.level]
        if kind not in ("soft", "bits"):
            raise UsageError(f"a network source carries soft symbols or bits: level {self.level!r} "
                             "cannot be received over TCP or UDP")
        bit_rate = float(getattr(self.mission.link, "bit_rate", 0) or 0)
        kwargs.setdefault("kind", kind)
        if kind == "soft":
            kwargs.setdefault("dtype", SOFT_DTYPES[self.mission.link.symbols])
            kwargs.setdefault("rate", bit_rate * self.channel.config.input_units_per_bit)
        else:
            kwargs.setdefault("rate", bit_rate)
        return open_network_source(address, **kwargs)

    def replay(self, paths: Iterable[str | Path], chunk_bytes: int | None = None) -> dict:
        """Recorded captures as one pass, each file its own stream."""
        return self.run(self.source_for(paths, chunk_bytes))

    def report(self) -> PassReport:
        rep = PassReport()
        if self.channel is not None:
            st = self.channel.stats
            for k in ("total", "clean", "corrected", "uncorrectable"):
                setattr(rep.frames, k, int(getattr(st.frames, k)))
            rep.rs_symbols_corrected = int(st.rs_symbols_corrected)
            for k in ("bits_in", "lock_losses", "inverted_codeblocks", "bits_discarded"):
                setattr(rep.sync, k, int(getattr(st.sync, k)))
            truncated = int(st.sync.truncated)
            if truncated:
                # a truncated last CADU/record is a frame that reached no RS decoder: counted
                # in total (as clean: zero corrections) and rejected as truncated
                rep.frames.total += truncated
                rep.frames.clean += truncated
                rep.frames.rejected += truncated
                rep.add_reject("truncated", truncated)
        if self.link is not None:
            counts = self.link.stats.to_dict()
            rep.frames.rejected += int(counts["frames"].get("rejected", 0))
            rep.frames.crc_failed += int(counts["frames"].get("crc_failed", 0))
            rep.frames.idle += int(counts["frames"].get("idle", 0))
            rep.virtual_channels = counts["virtual_channels"]
            rep.packets = counts["packets"]
            rep.idle_packets = int(counts["idle_packets"])
            for k, v in counts["rejects"].items():
                rep.add_reject(k, v)
            rep.master_channel = counts.get("master_channel")
        else:
            counts = self.splitter.stats.to_dict()
            rep.packets = counts["packets"]
            rep.idle_packets = int(counts.get("idle_packets", 0))
            for k, v in counts.get("rejects", {}).items():
                rep.add_reject(k, v)
            rep.sync.bits_in = int(counts.get("bytes_in", 0)) * 8
        if self.channel is not None and getattr(self.channel.stats, "inner", None) is not None:
            rep.extra["link_quality"] = self.channel.stats.inner.to_dict()
        rep.extra.update(self.source_sections)
        for k, v in self.telemetry_rejects.items():
            rep.add_reject(k, v)
        rep.source = dict(self.source_info)
        return rep
