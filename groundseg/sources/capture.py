"""Recorded captures as sources: files read in bounded chunks.

A capture is never read whole: :class:`CaptureFile` yields chunks of a fixed size,
so memory stays bounded for any capture size. A recording carries no clock: the
reception time of its first element is taken as the file's modification time less
its duration at the stream's rate (the recording ended when the file was last
written), and each chunk's time is that origin plus its position / rate
(``clock = "estimated"``). :class:`CaptureFiles` is several files as one pass, each
its own stream.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from groundseg import _page_cache, _reuse
from groundseg.errors import GroundsegError
from groundseg.sources.base import KINDS, Chunk, Source

#: bytes read at a time: every stage's arrays for a chunk are alive together (codeblocks,
#: frames, packets, fields, archive rows: about 6x the chunk), so this sets most of a
#: replay's memory beyond the libraries' (8 MiB: 370 MB peak on the demo, 4 MiB: 320 MB)
DEFAULT_CHUNK = 4 << 20

#: sample / symbol formats a capture may hold, by kind
SOFT_DTYPES = {"soft-int8": np.dtype(np.int8), "soft-float32": np.dtype("<f4")}


class CaptureError(GroundsegError, OSError):
    """A capture that cannot be read (missing, a directory, unreadable)."""


class CaptureFile(Source):
    """One recorded file as a stream of ``kind`` elements of ``dtype``.

    ``rate``: elements per second (bit rate for ``bits``, symbol rate for ``soft``, byte
    rate for ``frames``); 0 = unknown, then every chunk carries the origin time.
    ``time_origin``: UNIX time of the first element; default: estimated as above.
    """

    def __init__(self, path, kind: str = "bits", dtype=None, chunk_bytes: int = DEFAULT_CHUNK,
                 rate: float = 0.0, time_origin: float | None = None):
        super().__init__()
        self.path = Path(path)
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        self.kind = kind
        self.dtype = np.dtype(dtype) if dtype is not None else (KINDS[kind] or np.dtype(np.uint8))
        self.name = str(self.path)
        if not self.path.exists():
            raise CaptureError(f"{self.path}: no such capture")
        if self.path.is_dir():
            raise CaptureError(f"{self.path}: is a directory, not a capture")
        if not os.access(self.path, os.R_OK):
            raise CaptureError(f"{self.path}: not readable")
        if chunk_bytes <= 0:
            raise ValueError("chunk_bytes must be positive")
        # whole elements per chunk, so a chunk never splits a soft symbol or a sample
        self.chunk_bytes = max(self.dtype.itemsize, chunk_bytes - chunk_bytes % self.dtype.itemsize)
        self.rate = float(rate or 0.0)
        self._origin = time_origin

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    @property
    def total_bytes(self) -> int:
        return self.size

    def _units_per_byte(self) -> float:
        return 8.0 if self.kind == "bits" else 1.0 / self.dtype.itemsize

    def time_origin(self) -> float:
        """UNIX time of the capture's first element (see the module docstring)."""
        if self._origin is not None:
            return float(self._origin)
        mtime = self.path.stat().st_mtime
        return mtime - (self.size * self._units_per_byte() / self.rate if self.rate > 0 else 0.0)

    def chunks(self) -> Iterator[Chunk]:
        origin = self.time_origin()
        per_byte = self._units_per_byte()
        done = 0
        first = True
        self.stats.streams += 1
        try:
            with open(self.path, "rb", buffering=0) as f:
                # a capture too large to stay cached is not left in the page cache behind us
                drop_behind = _page_cache.large(os.fstat(f.fileno()).st_size)
                while True:
                    # the last read buffer again once the chain has let go of its chunk
                    buf = _reuse.empty("capture.read", (self.chunk_bytes,), np.uint8, mapped=True)
                    n = f.readinto(buf)
                    if not n:
                        break
                    if drop_behind:   # its bytes are in buf now (from 0: pages readahead left)
                        _page_cache.drop(f.fileno(), 0, done + n)
                    whole = n - n % self.dtype.itemsize
                    if whole != n:
                        # only the file's last read can end inside an element
                        self.stats.truncated_bytes += n - whole
                    self.stats.bytes_in += n
                    self.stats.chunks += 1
                    data = buf[:whole].view(self.dtype)
                    del buf
                    offset = int(done * per_byte)
                    t = origin + offset / self.rate if self.rate > 0 else origin
                    yield Chunk(data, self.kind, rx_time=t, offset=offset, rate=self.rate,
                                new_stream=first, stream=self.name, clock="estimated")
                    first = False
                    done += whole
        except OSError as exc:
            raise CaptureError(f"{self.path}: {exc.strerror or exc}") from exc
        if first:
            # an empty file is still a stream: the chain restarts and sees it end
            yield Chunk(np.zeros(0, self.dtype), self.kind, rx_time=origin, rate=self.rate,
                        new_stream=True, stream=self.name, clock="estimated")


class CaptureFiles(Source):
    """Several recordings as one pass, each file its own stream (in the order given)."""

    def __init__(self, paths: Iterable, **kwargs):
        super().__init__()
        self.captures = [CaptureFile(p, **kwargs) for p in paths]
        self.kind = self.captures[0].kind if self.captures else kwargs.get("kind", "bits")
        self.name = ", ".join(c.name for c in self.captures)

    @property
    def total_bytes(self) -> int:
        return sum(c.size for c in self.captures)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.captures]

    def chunks(self) -> Iterator[Chunk]:
        for cap in self.captures:
            yield from cap.chunks()
            s = cap.stats
            self.stats.bytes_in += s.bytes_in
            self.stats.chunks += s.chunks
            self.stats.streams += s.streams
            self.stats.truncated_bytes += s.truncated_bytes
            cap.stats = type(s)()
