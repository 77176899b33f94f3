"""The raw journal of a live pass: every byte read from a receiver, with its host reception time.

A receiver's bytes are appended to the journal *before* they are decoded, so any pass
can be replayed (``groundseg replay JOURNAL... --mission M``) to the same archive
content, reception times included, and decoding that falls behind catches up from it.

Format (version 1), little-endian; one pass is one or more part files
``<name>-<UTC start>-<part>.gsj`` (rotation by size):

- header: ``MAGIC`` (8 bytes ``b"GSJRNL01"``), header length (uint32), the header as
  UTF-8 JSON: ``format`` 1, ``framing`` (raw / kiss / length), ``kind`` (bits / frames),
  ``frame_length``, ``line_rate`` (bit/s, 0 unknown), ``profile`` (its summary and
  TOML text), ``port``, ``pass`` (the pass's name), ``part`` (1, 2, ...), ``created``;
- records, back to back: type (1 byte), time (float64, UNIX s, host clock), payload
  length (uint32), payload:

  - ``D`` data: the bytes of one read record as received (the time is the host's
    estimate of when its first byte arrived);
  - ``S`` a stream starts (port opened, or reopened after an unplug): decoder state
    restarts; payload JSON ``{"port": ..., "reconnect": n}``;
  - ``O`` an outage ended (or the pass ended during one): payload JSON
    ``{"start", "end", "bytes_before", "reason"}``;
  - ``E`` the journal ends: payload JSON ``{"reason": ..., "bytes": n}``.

A record is written with one ``write``; a part cut short (a crash, a full disk) ends at
its last whole record: readers stop there and count the rest as ``truncated_bytes``.
When the disk fills the journal stops, says where in :attr:`JournalWriter.failed`, and
the pass goes on (the report carries it).
"""
from __future__ import annotations

import errno
import json
import os
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from groundseg.errors import UsageError
from groundseg.sources.base import Chunk, Outage, Source, SourceStats
from groundseg.sources.framing import counts_dict, kind_of, make_deframer

MAGIC = b"GSJRNL01"
SUFFIX = ".gsj"
RECORD = struct.Struct("<cdI")
DATA, STREAM, OUTAGE, END = b"D", b"S", b"O", b"E"
DEFAULT_ROTATE = 1 << 30


class JournalError(UsageError):
    """A journal that cannot be written (directory not writable) or read (not a journal)."""


def is_journal(path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def read_header(f) -> tuple[dict, int]:
    """(header dict, offset of the first record) of an open part file."""
    head = f.read(len(MAGIC) + 4)
    if len(head) < len(MAGIC) + 4 or head[:len(MAGIC)] != MAGIC:
        raise JournalError(f"{getattr(f, 'name', '?')}: not a groundseg journal")
    (n,) = struct.unpack("<I", head[len(MAGIC):])
    try:
        header = json.loads(f.read(n).decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JournalError(f"{getattr(f, 'name', '?')}: journal header unreadable: {exc}") from None
    return header, len(MAGIC) + 4 + n


class JournalWriter:
    """Appends records to a pass's journal in ``directory``; rotates parts at ``rotate_bytes``.

    ``keep_days``: at start, journals (``*.gsj``) in the directory older than this are
    deleted (0 keeps everything)."""

    def __init__(self, directory, header: dict, name: str = "pass", rotate_bytes: int = DEFAULT_ROTATE,
                 keep_days: float = 0.0):
        self.directory = Path(directory)
        self.header = dict(header)
        self.rotate_bytes = max(int(rotate_bytes), 4096)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.base = f"{name}-{stamp}"
        k = 1
        while any(Path(directory).glob(f"{self.base}-*{SUFFIX}")):   # two passes in one second
            k += 1
            self.base = f"{name}-{stamp}.{k}"
        self.header.setdefault("pass", self.base)
        self.paths: list[Path] = []
        self.bytes = 0            # payload bytes of D records written
        self.records = 0
        self.failed: str | None = None
        self._f = None
        self._size = 0
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JournalError(f"{self.directory}: cannot create the journal directory: "
                               f"{exc.strerror or exc}") from None
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise JournalError(f"{self.directory}: journal directory not writable")
        self.deleted = self._retention(keep_days) if keep_days > 0 else []
        self._open_part()

    def _retention(self, keep_days: float) -> list[str]:
        cutoff = time.time() - keep_days * 86400
        gone = []
        for p in self.directory.glob(f"*{SUFFIX}"):
            try:
                if p.stat().st_mtime < cutoff and is_journal(p):
                    p.unlink()
                    gone.append(str(p))
            except OSError:
                pass
        return gone

    def _open_part(self) -> None:
        part = len(self.paths) + 1
        path = self.directory / f"{self.base}-{part:03d}{SUFFIX}"
        hdr = dict(self.header, part=part, created=time.time())
        body = json.dumps(hdr, sort_keys=True).encode()
        try:
            f = open(path, "xb", buffering=0)
        except OSError as exc:
            raise JournalError(f"{path}: cannot create the journal: {exc.strerror or exc}") from None
        self.paths.append(path)
        self._f = f
        self._size = 0
        self._write(MAGIC + struct.pack("<I", len(body)) + body)

    def _write(self, blob: bytes) -> None:
        start = self._size
        try:
            n = self._f.write(blob)
            if n != len(blob):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as exc:
            try:
                os.ftruncate(self._f.fileno(), start)   # keep the part ending at a whole record
            except OSError:
                pass
            self.failed = (f"{self.paths[-1]}: journal stopped at byte {start} after {self.records} records "
                           f"({self.bytes} bytes): {exc.strerror or exc}")
            raise
        self._size += n

    def append(self, kind: bytes, t: float, payload: bytes = b"") -> tuple[int, int] | None:
        """Write one record; returns (part, offset) of the record, None once the journal failed."""
        if self.failed is not None or self._f is None:
            return None
        try:
            if self._size + RECORD.size + len(payload) > self.rotate_bytes and self._size > 4096 and kind == DATA:
                self._f.close()
                self._open_part()
            pos = (len(self.paths), self._size)
            self._write(RECORD.pack(kind, t, len(payload)) + bytes(payload))
        except OSError:
            return None
        self.records += 1
        if kind == DATA:
            self.bytes += len(payload)
        return pos

    def append_json(self, kind: bytes, t: float, obj: dict):
        return self.append(kind, t, json.dumps(obj, sort_keys=True).encode())

    def position(self) -> tuple[int, int]:
        """(part, size): where the next record goes."""
        return len(self.paths), self._size

    def close(self, reason: str = "pass ended") -> None:
        if self._f is None:
            return
        if self.failed is None:
            self.append_json(END, time.time(), {"reason": reason, "bytes": self.bytes})
        try:
            os.fsync(self._f.fileno())     # the pass's journal is on disk when the pass ends
        except OSError:
            pass
        try:
            self._f.close()
        except OSError:
            pass
        self._f = None

    def summary(self) -> dict:
        out = {"files": [str(p) for p in self.paths], "bytes": self.bytes, "records": self.records}
        if self.failed:
            out["stopped"] = self.failed
        if self.deleted:
            out["deleted_by_retention"] = len(self.deleted)
        return out


class JournalCursor:
    """Reads records of a journal's parts from a position up to a given end (live catch-up)
    or to the end of the files (replay)."""

    def __init__(self, paths, start: tuple[int, int] | None = None, end: tuple[int, int] | None = None):
        self.paths = paths            # may grow while we read (the writer rotates)
        self.part, self.offset = start if start is not None else (1, 0)
        self.end = end
        self.truncated_bytes = 0
        self.header: dict | None = None
        self._f = None

    def _open(self) -> bool:
        if self.part > len(self.paths):
            return False
        self._f = open(self.paths[self.part - 1], "rb")
        header, first = read_header(self._f)
        if self.header is None:
            self.header = header
        self.offset = max(self.offset, first)
        self._f.seek(self.offset)
        return True

    def next(self):
        """The next record (kind, time, payload), or None at the end."""
        while True:
            if self._f is None and not self._open():
                return None
            if self.end is not None and (self.part, self.offset) >= self.end:
                return None
            head = self._f.read(RECORD.size)
            if len(head) == RECORD.size:
                kind, t, n = RECORD.unpack(head)
                payload = self._f.read(n)
                if len(payload) == n and kind in (DATA, STREAM, OUTAGE, END):
                    self.offset += RECORD.size + n
                    return kind, t, payload
                head += payload
            if head:
                # a record cut short (crash or full disk): the part ends at its last whole record
                self.truncated_bytes += len(head)
            self._f.close()
            self._f = None
            if self.end is not None and self.part >= self.end[0]:
                return None
            self.part += 1
            self.offset = 0

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


class ReceiverStats(SourceStats):
    """A receiver's counts: the base ones, the deframer's, the journal's."""

    def __init__(self):
        super().__init__()
        self.framing: dict = {}
        self.reads = 0
        self.spills = 0          # times the decoder fell behind and caught up from the journal
        self.held_in_memory = 0  # records kept in memory: the journal failed while the decoder was behind
        self.journal: dict | None = None

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["framing"] = dict(self.framing)
        d["reads"] = self.reads
        d["decoder_caught_up_from_journal"] = self.spills
        if self.held_in_memory:
            d["records_held_in_memory"] = self.held_in_memory
        if self.journal is not None:
            d["journal"] = self.journal
        return d


class RecordChunker:
    """Journal records -> chunks: the one place a live receiver and a journal replay share,
    so both give the same chunks (bytes, boundaries, reception times)."""

    def __init__(self, framing: str, frame_length: int | None, options: dict | None, line_rate: float,
                 stream: str, stats: ReceiverStats, dtype: str | None = None):
        self.framing = framing
        self.kind = kind_of(framing)
        self.deframer = make_deframer(framing, frame_length, **(options or {}))
        self.rate = float(line_rate or 0.0) / (8.0 if self.kind == "frames" else 1.0)
        # soft symbols (a network receiver's journal: header kind "soft", dtype "<f4" or "|i1",
        # line_rate the symbol rate): whole symbols per chunk, a split one carried to the next read
        self.dtype = np.dtype(dtype) if dtype and framing == "raw" else None
        if self.dtype is not None and self.dtype.kind in "fi" and self.dtype.itemsize <= 4 and \
                self.dtype != np.dtype(np.uint8):
            self.kind = "soft"
        else:
            self.dtype = None
        self._carry = b""
        self.stream = stream
        self.stats = stats
        self._offset = 0
        self._new = True
        self._open = False

    def feed(self, kind: bytes, t: float, payload: bytes) -> Chunk | None:
        if kind == STREAM:
            self.end_stream()
            self._open = True
            self._new = True
            self._offset = 0
            self.stats.streams += 1
            return None
        if kind == OUTAGE:
            o = json.loads(payload.decode())
            self.stats.outages.append(Outage(o["start"], o["end"], o["bytes_before"], o.get("reason", "")))
            return None
        if kind != DATA:
            return None
        if not self._open:        # data before any S record: a stream all the same
            self._open = True
            self.stats.streams += 1
        self.stats.bytes_in += len(payload)
        self.stats.reads += 1
        if self.dtype is not None:
            data = self._carry + payload if self._carry else payload
            whole = len(data) - len(data) % self.dtype.itemsize
            self._carry = bytes(data[whole:])
            out = np.frombuffer(data, self.dtype, count=whole // self.dtype.itemsize)
            if out.size == 0:
                return None
        else:
            out = self.deframer.push(np.frombuffer(payload, np.uint8))
        self.stats.framing = counts_dict(self.deframer.counts)
        if self.kind == "frames" and out.size == 0:
            return None
        chunk = Chunk(out, self.kind, rx_time=t, offset=self._offset, rate=self.rate, new_stream=self._new,
                      stream=self.stream, clock="host")
        self._new = False
        self._offset += out.size * (8 if self.kind == "bits" else 1)
        self.stats.chunks += 1
        return chunk

    @property
    def position(self) -> int:
        """Where the next chunk starts in the current stream (bits or bytes)."""
        return self._offset

    def end_stream(self) -> None:
        if self._carry:
            self.stats.truncated_bytes += len(self._carry)
            self._carry = b""
        if self._open:
            self.deframer.end_stream()
            self.stats.framing = counts_dict(self.deframer.counts)
        self._open = False


class JournalSource(Source):
    """Journal part files as a pass: records replayed through the same deframer as live.

    Parts of one journal continue one another; a stream restarts only where the journal
    says (``S`` records: the receiver opened or reconnected). Several journals (of several
    passes) each start their own stream."""

    def __init__(self, paths, frame_length: int | None = None):
        super().__init__()
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise JournalError("no journal given")
        self.headers = []
        for p in self.paths:
            try:
                with open(p, "rb") as f:
                    self.headers.append(read_header(f)[0])
            except OSError as exc:
                raise JournalError(f"{p}: {exc.strerror or exc}") from None
        first = self.headers[0]
        self.framing = first.get("framing", "raw")
        self.kind = kind_of(self.framing)
        self.dtype = first.get("dtype") if first.get("kind") == "soft" else None
        if self.dtype is not None:
            self.kind = "soft"
        for p, h in zip(self.paths, self.headers):
            if h.get("framing", "raw") != self.framing:
                raise JournalError(f"{p}: framing {h.get('framing')!r} differs from {self.framing!r} "
                                   f"of {self.paths[0]}")
        self.frame_length = frame_length or first.get("frame_length")
        self.stats = ReceiverStats()
        self.name = ", ".join(str(p) for p in self.paths)

    @property
    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.paths)

    @property
    def names(self) -> list[str]:
        return [str(p) for p in self.paths]

    def _groups(self):
        """Consecutive parts of the same pass, in the order given."""
        groups = []
        for p, h in zip(self.paths, self.headers):
            if groups and groups[-1][1].get("pass") == h.get("pass") and h.get("part", 1) > 1:
                groups[-1][0].append(p)
            else:
                groups.append(([p], h))
        return groups

    def chunks(self) -> Iterator[Chunk]:
        for paths, h in self._groups():
            chunker = RecordChunker(self.framing, self.frame_length, h.get("options"),
                                    h.get("line_rate", 0.0), str(paths[0]), self.stats,
                                    dtype=h.get("dtype") if h.get("kind") == "soft" else None)
            cur = JournalCursor(paths)
            try:
                while True:
                    rec = cur.next()
                    if rec is None:
                        break
                    chunk = chunker.feed(*rec)
                    if chunk is not None:
                        yield chunk
            finally:
                cur.close()
            chunker.end_stream()
            self.stats.truncated_bytes += cur.truncated_bytes
