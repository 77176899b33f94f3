"""Recorded captures read in bounded chunks (hard bits / CADUs, frames, packet streams).

A capture is never read whole: :class:`CaptureFile` yields numpy chunks of a
fixed size, so memory stays bounded for any capture size. Reception time of a
recording is not in the file; the origin is given by the caller or taken as
the file's modification time less its duration at the channel bit rate
(the recording ended when the file was last written).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

DEFAULT_CHUNK = 8 << 20


class CaptureError(OSError):
    """A capture that cannot be read (missing, a directory, unreadable)."""


@dataclass
class CaptureFile:
    path: Path
    chunk_bytes: int = DEFAULT_CHUNK

    def __post_init__(self):
        self.path = Path(self.path)
        if not self.path.exists():
            raise CaptureError(f"{self.path}: no such capture")
        if self.path.is_dir():
            raise CaptureError(f"{self.path}: is a directory, not a capture")
        if not os.access(self.path, os.R_OK):
            raise CaptureError(f"{self.path}: not readable")
        if self.chunk_bytes <= 0:
            raise ValueError("chunk_bytes must be positive")

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    def time_origin(self, bit_rate: float = 0.0) -> float:
        """UNIX time of the capture's first bit, estimated as described above."""
        mtime = self.path.stat().st_mtime
        return mtime - (self.size * 8 / bit_rate if bit_rate > 0 else 0.0)

    def chunks(self) -> Iterator[np.ndarray]:
        try:
            with open(self.path, "rb", buffering=0) as f:
                while True:
                    buf = bytearray(self.chunk_bytes)
                    n = f.readinto(buf)
                    if not n:
                        return
                    yield np.frombuffer(buf, dtype=np.uint8, count=n)
        except OSError as exc:
            raise CaptureError(f"{self.path}: {exc.strerror or exc}") from exc
