"""The pass report: one type for the pipeline's summary, the simulator's truth and the
archive's pass rows. Keys and counting rules: docs/report.md.

``PassReport.to_dict()`` is the JSON written by ``--report`` (keys are strings; more keys
may be added, none renamed). Read access by key works on the object too
(``report["frames"]["total"]``), so code written against the JSON reads either.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from groundseg.stage import Stats

#: The reject reasons a report may name (docs/report.md).
REJECT_VOCABULARY = ("rs_uncorrectable", "crc", "version", "scid", "frame_length", "truncated",
                     "fhp_out_of_range", "packet_length", "fhec")


@dataclass(eq=False)
class FrameCounts(Stats):
    total: int = 0
    clean: int = 0
    corrected: int = 0
    uncorrectable: int = 0
    crc_failed: int = 0
    rejected: int = 0
    idle: int = 0

    @property
    def delivered(self) -> int:
        return self.clean + self.corrected - self.rejected - self.crc_failed


@dataclass(eq=False)
class SyncCounts(Stats):
    bits_in: int = 0
    lock_losses: int = 0
    inverted_codeblocks: int = 0
    bits_discarded: int = 0


@dataclass(eq=False)
class PassReport(Stats):
    frames: FrameCounts = field(default_factory=FrameCounts)
    rs_symbols_corrected: int = 0
    sync: SyncCounts = field(default_factory=SyncCounts)
    virtual_channels: dict = field(default_factory=dict)   # "vcid" -> {frames, idle, gaps, ...}
    packets: dict = field(default_factory=dict)            # "apid" -> {count, bytes, ...}
    idle_packets: int = 0
    rejects: dict = field(default_factory=dict)            # reason -> count
    master_channel: dict | None = None                     # TM: {gaps, frames_lost}
    source: dict = field(default_factory=dict)             # files, start, end, duration_s, mbit_s, ...
    extra: dict = field(default_factory=dict)              # later sections (link quality, ...)

    # -- building ----------------------------------------------------------------------------
    def add_reject(self, reason: str, n: int = 1) -> None:
        if n:
            self.rejects[reason] = self.rejects.get(reason, 0) + int(n)

    @property
    def delivered_frames(self) -> int:
        return self.frames.delivered

    @property
    def packet_count(self) -> int:
        return sum(int(v.get("count", 0)) for v in self.packets.values())

    @property
    def decoded_nothing(self) -> bool:
        """No frame delivered and no packet: the capture did not match the mission."""
        return self.delivered_frames <= 0 and self.packet_count == 0

    # -- reading and writing -------------------------------------------------------------------
    def to_dict(self) -> dict:
        out = {"frames": self.frames.to_dict(), "rs_symbols_corrected": self.rs_symbols_corrected,
               "sync": self.sync.to_dict(), "virtual_channels": self.virtual_channels,
               "packets": self.packets, "idle_packets": self.idle_packets, "rejects": self.rejects}
        if self.master_channel is not None:
            out["master_channel"] = self.master_channel
        if self.source:
            out["source"] = self.source
        out.update(self.extra)
        return out

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), default=_json_default, **kwargs)

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)

    def __getitem__(self, key: str) -> Any:
        if key in ("source", "master_channel") or key in self.extra:
            d = self.to_dict()
            if key not in d:
                raise KeyError(key)
            return d[key]
        return super().__getitem__(key)

    def __setitem__(self, key: str, value: Any) -> None:
        """A section set by key: a known one replaces it, any other is added (``receiver``,
        ``archive``, ...)."""
        if key in self.__dataclass_fields__ and key != "extra":
            setattr(self, key, value)
        else:
            self.extra[key] = value

    @classmethod
    def from_dict(cls, d: dict) -> "PassReport":
        known = {"frames", "rs_symbols_corrected", "sync", "virtual_channels", "packets",
                 "idle_packets", "rejects", "master_channel", "source"}
        sync_d = {k: v for k, v in d.get("sync", {}).items() if k in SyncCounts.__dataclass_fields__}
        frames_d = {k: v for k, v in d.get("frames", {}).items() if k in FrameCounts.__dataclass_fields__}
        return cls(frames=FrameCounts(**frames_d), rs_symbols_corrected=int(d.get("rs_symbols_corrected", 0)),
                   sync=SyncCounts(**sync_d), virtual_channels=dict(d.get("virtual_channels", {})),
                   packets=dict(d.get("packets", {})), idle_packets=int(d.get("idle_packets", 0)),
                   rejects=dict(d.get("rejects", {})), master_channel=d.get("master_channel"),
                   source=dict(d.get("source", {})),
                   extra={k: v for k, v in d.items() if k not in known})


def _json_default(o):
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return str(o)          # paths, enums: their text
