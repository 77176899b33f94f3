"""The one interface every input implements: a :class:`Source` yields :class:`Chunk` s.

A chunk is a numpy array of what the source delivers (``kind``: packed hard bits,
soft symbols, decoded frames, a Space Packet stream, or IQ samples), stamped with the
reception time of its first element and its position in the stream. ``new_stream``
tells the chain that decoder state restarts before this chunk (a new file, a
receiver reconnected): no counter gap is counted across that boundary.

Reception time comes from the source: a receiver stamps each chunk with the host
clock when it was read; a recording has no clock, so its chunks carry an estimate
(file origin + position / rate) and say so (``clock = "estimated"``).
:class:`StreamClock` maps positions inside a stream back to those stamps, so a frame
found anywhere in a chunk gets the time of its own first bit.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

#: What a chunk holds, and the dtype of its data.
KINDS = {
    "bits": np.dtype(np.uint8),       # packed hard bits, MSB first, any alignment
    "soft": None,                     # int8 or float32 soft symbols, positive = bit 1
    "frames": np.dtype(np.uint8),     # decoded transfer frames (or codeblocks) back to back
    "packets": np.dtype(np.uint8),    # a Space Packet stream
    "iq": None,                       # complex64 samples (or interleaved integers)
}

#: The kind of chunk each decoding level takes.
LEVEL_KIND = {"iq": "iq", "soft": "soft", "bits": "bits", "frames": "frames", "packets": "packets"}

CLOCKS = ("host", "estimated", "none")


@dataclass
class Chunk:
    """One piece of one stream.

    ``offset`` and ``rate`` are in the stream's elements: bits for ``bits``, symbols for
    ``soft``, bytes for ``frames`` and ``packets``, samples for ``iq``. ``rx_time`` is the
    UNIX time of the chunk's first element (NaN: unknown); with ``rate`` > 0 the time of
    element ``offset + k`` is ``rx_time + k / rate``.
    """
    data: np.ndarray
    kind: str
    rx_time: float = float("nan")
    offset: int = 0
    rate: float = 0.0
    new_stream: bool = False
    stream: str = ""
    clock: str = "estimated"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"chunk kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.clock not in CLOCKS:
            raise ValueError(f"chunk clock must be one of {', '.join(CLOCKS)}, not {self.clock!r}")

    @property
    def elements(self) -> int:
        """Length in the stream's elements (bits for packed hard bits)."""
        n = int(self.data.shape[0]) if self.data.ndim else 0
        return n * 8 if self.kind == "bits" else n


@dataclass
class Outage:
    """A time the source could not deliver (a receiver unplugged, a socket closed)."""
    start: float
    end: float = float("nan")
    bytes_before: int = 0
    reason: str = ""

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "bytes_before": self.bytes_before,
                "reason": self.reason}


@dataclass
class SourceStats:
    """What a source counted; the pass report carries it under ``source``."""
    bytes_in: int = 0
    chunks: int = 0
    streams: int = 0
    truncated_bytes: int = 0          # trailing bytes that do not make a whole element
    outages: list[Outage] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"bytes_in": self.bytes_in, "chunks": self.chunks, "streams": self.streams,
                "truncated_bytes": self.truncated_bytes,
                "outages": [o.to_dict() for o in self.outages]}


class Source:
    """The interface. ``chunks()`` yields until the input ends (a file's end, a duration,
    a stop request); ``close()`` releases what it holds and may be called twice."""

    kind: str = "bits"
    #: what the input is called in reports (file paths, a port)
    name: str = ""

    def __init__(self) -> None:
        self.stats = SourceStats()

    def chunks(self) -> Iterator[Chunk]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    @property
    def total_bytes(self) -> int | None:
        """Bytes the source will deliver, when known (progress); None for live input."""
        return None

    @property
    def names(self) -> list[str]:
        """The streams' names (file paths, ports) for the report."""
        return [self.name] if self.name else []

    def report_sections(self) -> dict:
        """Sections this source adds to the pass report (a demodulator's lock and Es/N0)."""
        return {}

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class StreamClock:
    """Positions of one stream -> reception times, from the chunks' stamps.

    Keeps the stamps of the last ``keep`` chunks (a frame is found at most a few chunks
    after its first bit arrived). A position before every kept stamp takes the oldest."""

    def __init__(self, keep: int = 64):
        self.keep = keep
        self._offset = np.zeros(0, np.int64)
        self._time = np.zeros(0, np.float64)
        self._rate = np.zeros(0, np.float64)

    def reset(self) -> None:
        self._offset = self._offset[:0]
        self._time = self._time[:0]
        self._rate = self._rate[:0]

    def mark(self, chunk: Chunk) -> None:
        self._offset = np.append(self._offset[-self.keep + 1:], np.int64(chunk.offset))
        self._time = np.append(self._time[-self.keep + 1:], float(chunk.rx_time))
        self._rate = np.append(self._rate[-self.keep + 1:], float(chunk.rate))

    def times(self, positions: np.ndarray) -> np.ndarray:
        """UNIX times of stream ``positions`` (NaN where no chunk carried a time)."""
        positions = np.asarray(positions, np.int64)
        if not self._offset.size:
            return np.full(positions.shape, np.nan)
        i = np.clip(np.searchsorted(self._offset, positions, side="right") - 1, 0, None)
        rate = self._rate[i]
        since = np.maximum(positions - self._offset[i], 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(rate > 0, since / np.where(rate > 0, rate, 1.0), 0.0)
        return self._time[i] + step
