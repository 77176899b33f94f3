"""Soft symbols (or packed hard bits) from the network: TCP and UDP sources.

How demodulators hand symbols to other programs, and what this module follows:

- GNU Radio's TCP Sink (gr-network, client or server mode) and the older TCP Server
  Sink send the raw bytes of the items (float32 or int8/char), no framing, no header.
  ``tcp-listen://[HOST]:PORT`` waits for a sender that connects (TCP Sink in client
  mode); ``tcp://HOST:PORT`` connects to a sender that listens (TCP Sink in server mode,
  TCP Server Sink). One connection at a time; a closed connection is an
  :class:`~groundseg.sources.base.Outage` and the next connection a new stream (decoder
  state restarts). Everything that arrived before the close is delivered.
- GNU Radio's UDP Sink sends datagrams of ``payload size`` bytes (default 1472), the
  header included, items not aligned to datagrams (a float may be split between two
  datagrams: the remainder is carried), optionally a header: "Sequence Number" (a
  64-bit counter from 1, host byte order, little-endian on x86) or "Seq + Size" (the
  counter, a 16-bit size and padding: 16 bytes); with "send EOF" it ends with
  zero-length datagrams. ``udp://[HOST]:PORT`` listens; ``header`` says what precedes
  each payload (:data:`HEADERS`: GNU Radio's, or a 4- or 8-byte big- or little-endian
  counter). With a counter, lost datagrams are counted and filled with erasures (zero
  bytes, so the symbols after keep their alignment), reordered ones are put back in
  order within ``reorder_window`` datagrams, duplicates and late ones dropped and
  counted. A zero-length datagram ends the stream (the next datagram starts a new one).
- SatDump and gr-satellites write soft symbols to files (int8 / float32) and can feed a
  GNU Radio network sink; the formats are the same.

Listening sockets bind to loopback unless an address is given. Each chunk is stamped
with the host clock at arrival (``clock = "host"``). A reader thread owns the socket, so
the decoder being slow for a moment (JIT warm-up, a disk flush) loses no datagram: TCP
waits for the decoder (the sender is held back by TCP itself), UDP queues up to
``queue_bytes`` and beyond that drops and counts (``bytes_overflow``), then starts a
new stream. The source ends at ``duration`` seconds, at :meth:`stop` (or
``stop_event``), after ``max_streams`` streams have ended, or after ``idle_timeout``
seconds without data; ``close()`` is safe twice.
"""
from __future__ import annotations

import json
import queue
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from groundseg.errors import UsageError
from groundseg.sources.base import KINDS, Chunk, Outage, Source, SourceStats

#: header name -> (header bytes, counter bytes, byte order) before each UDP payload
HEADERS = {
    "none": (0, 0, "big"),
    "seq32be": (4, 4, "big"),
    "seq64be": (8, 8, "big"),
    "seq32le": (4, 4, "little"),
    "seq64le": (8, 8, "little"),
    "gnuradio-seq": (8, 8, "little"),        # gr-network UDP Sink header "Sequence Number" (x86)
    "gnuradio-seq-size": (16, 8, "little"),  # "Seq + Size": uint64 seq, int16 size, padding
}

SCHEMES = ("tcp", "tcp-listen", "udp")
SOFT_DTYPES = {"soft-int8": np.dtype(np.int8), "soft-float32": np.dtype("<f4")}

_POLL = 0.1            # seconds between checks of stop / duration in the reader thread
_RECV = 1 << 20        # bytes per TCP read
_MAX_FILL = 16 << 20   # lost datagrams beyond this many bytes start a new stream instead


class NetworkError(UsageError):
    """An address that cannot be used (malformed, unresolvable, in use, not permitted)."""


@dataclass(frozen=True)
class Endpoint:
    scheme: str      # "tcp" (connect), "tcp-listen", "udp" (listen)
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_endpoint(spec: str, scheme: str | None = None) -> Endpoint:
    """``tcp://HOST:PORT``, ``tcp-listen://[HOST]:PORT``, ``udp://[HOST]:PORT``, or a bare
    ``[HOST]:PORT`` with ``scheme`` given. Listening defaults to 127.0.0.1; IPv6 as
    ``[::1]:PORT``. A malformed address is a :class:`NetworkError` (a UsageError)."""
    text = str(spec).strip()
    if "://" in text:
        scheme, _, text = text.partition("://")
    if scheme not in SCHEMES:
        raise NetworkError(f"{spec}: the address must start with one of "
                           f"{', '.join(s + '://' for s in SCHEMES)}")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise NetworkError(f"{spec}: expected [IPV6]:PORT")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise NetworkError(f"{spec}: expected HOST:PORT (e.g. {scheme}://127.0.0.1:5000)")
    try:
        port = int(port_text)
    except ValueError:
        raise NetworkError(f"{spec}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535 or (port == 0 and scheme == "tcp"):
        raise NetworkError(f"{spec}: port must be in 1..65535, not {port}")
    if not host:
        if scheme == "tcp":
            raise NetworkError(f"{spec}: connecting needs a host (tcp://HOST:PORT)")
        host = "127.0.0.1"
    return Endpoint(scheme, host, port)


def receive_address(value: str, proto: str) -> Endpoint:
    """``groundseg receive --tcp VALUE`` / ``--udp VALUE``: ``[HOST:]PORT`` listens (GNU Radio's
    TCP Sink connects by default: mode Client; its UDP Sink sends to us), loopback unless a
    host is given; a URL (``tcp://HOST:PORT`` to connect to a sender that listens) as is."""
    text = str(value).strip()
    if "://" in text:
        ep = parse_endpoint(text)
        if (proto == "udp") != (ep.scheme == "udp"):
            raise NetworkError(f"--{proto} {value}: a {ep.scheme}:// address")
        return ep
    if text.isdigit():
        text = ":" + text
    return parse_endpoint(text, "udp" if proto == "udp" else "tcp-listen")


def _resolve(ep: Endpoint, kind: int) -> tuple:
    try:
        infos = socket.getaddrinfo(ep.host, ep.port, type=kind)
    except socket.gaierror as exc:
        raise NetworkError(f"{ep}: cannot resolve {ep.host!r} ({exc.strerror})") from None
    return infos[0]


class NetworkStats(SourceStats):
    """A network source's counts: the base ones and what a socket adds."""

    def __init__(self):
        super().__init__()
        self.connections = 0            # TCP connections accepted or made
        self.datagrams = 0              # UDP datagrams with data (EOF markers not included)
        self.datagrams_lost = 0         # missing sequence numbers (filled with erasures)
        self.datagrams_reordered = 0    # arrived after a later one, put back in order
        self.datagrams_late = 0         # duplicates, or arrived after being counted lost: dropped
        self.sequence_restarts = 0      # the sender's counter jumped back or far ahead: new stream
        self.eof_markers = 0            # zero-length datagrams (GNU Radio's "send EOF")
        self.header_short = 0           # datagrams shorter than the header: dropped
        self.fill_bytes = 0             # zero bytes put in for lost datagrams
        self.bytes_overflow = 0         # UDP bytes dropped because the decoder fell too far behind
        self.framing: dict = {}         # the serial receiver's deframer counts (none here: raw items)
        self.journal: dict | None = None  # the journal's summary, when the pass kept one

    def network(self) -> dict:
        return {k: int(getattr(self, k)) for k in (
            "connections", "datagrams", "datagrams_lost", "datagrams_reordered", "datagrams_late",
            "sequence_restarts", "eof_markers", "header_short", "fill_bytes", "bytes_overflow")}

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["network"] = self.network()
        if self.journal is not None:
            d["journal"] = self.journal
        return d

    def report_extra(self) -> dict:
        """What the pass report's ``source`` section carries besides the base counts."""
        return {"streams": int(self.streams), "network": self.network()}


class SequenceReorder:
    """UDP sequence numbers -> payloads in order, with losses and reordering counted.

    ``push(seq, payload)`` returns a list of events in stream order: ``bytes`` (a
    payload), ``int`` n (n datagrams lost here), or None (the sender restarted: a new
    stream starts). Datagrams ahead of the next expected one wait, up to ``window`` of
    them; then the missing ones are given up as lost. A datagram behind the expected
    one by at most ``late_limit`` is a duplicate or late (dropped, counted); further
    behind, more than ``max_jump`` ahead, or ``restart_after`` consecutive datagrams behind
    (a sender restarted with a counter from 1), the sender restarted: a new stream."""

    def __init__(self, counter_bytes: int, stats: NetworkStats, window: int = 16,
                 late_limit: int = 1024, max_jump: int = 1 << 16, restart_after: int = 4):
        self.modulus = 1 << (8 * counter_bytes)
        self.stats = stats
        self.window = max(0, int(window))
        self.late_limit = late_limit
        self.max_jump = max_jump
        self.restart_after = restart_after
        self.expected: int | None = None
        self.pending: dict[int, bytes] = {}
        self.late_run: list[tuple[int, bytes]] = []   # consecutive datagrams behind the expected one

    def reset(self) -> None:
        self.expected = None
        self.pending.clear()
        self.late_run.clear()

    def _dist(self, seq: int) -> int:
        return (seq - self.expected) % self.modulus

    def _drain(self, out: list) -> None:
        while self.expected in self.pending:
            out.append(self.pending.pop(self.expected))
            self.expected = (self.expected + 1) % self.modulus

    def push(self, seq: int, payload: bytes) -> list:
        out: list = []
        if self.expected is None:
            self.expected = seq
        d = self._dist(seq)
        half = self.modulus // 2
        if d >= half:
            if self.modulus - d <= self.late_limit:
                run = self.late_run
                if run and seq != (run[-1][0] + 1) % self.modulus:
                    run.clear()
                run.append((seq, payload))
                if len(run) < self.restart_after:
                    self.stats.datagrams_late += 1
                    return out
                # consecutive datagrams behind: the sender restarted its counter
                self.stats.datagrams_late -= len(run) - 1
                self.stats.sequence_restarts += 1
                out.extend(self.flush())
                out.append(None)
                self.expected = run[0][0]
                for s, p in run:
                    self.pending[s] = p
                run.clear()
                self._drain(out)
                return out
            d = self.max_jump + 1          # far behind: a restart
        self.late_run.clear()
        if d > self.max_jump:
            out.extend(self.flush())
            out.append(None)
            self.stats.sequence_restarts += 1
            self.expected = seq
            d = 0
        if seq in self.pending:
            self.stats.datagrams_late += 1
            return out
        if self.pending and d < max(self._dist(s) for s in self.pending):
            self.stats.datagrams_reordered += 1
        if d == 0:
            out.append(payload)
            self.expected = (seq + 1) % self.modulus
            self._drain(out)
            return out
        self.pending[seq] = payload
        while len(self.pending) > self.window:
            first = min(self.pending, key=self._dist)
            lost = self._dist(first)
            self.stats.datagrams_lost += lost
            out.append(lost)
            self.expected = first
            self._drain(out)
        return out

    def flush(self) -> list:
        """Everything waiting, in order, the gaps counted lost (the stream ends or stalls)."""
        out: list = []
        while self.pending:
            first = min(self.pending, key=self._dist)
            lost = self._dist(first)
            if lost:
                self.stats.datagrams_lost += lost
                out.append(lost)
            self.expected = first
            self._drain(out)
        return out


class _Assembler:
    """Bytes -> whole elements of ``dtype``; a partial element is carried to the next read."""

    def __init__(self, dtype: np.dtype):
        self.dtype = dtype
        self.carry = b""

    def feed(self, data: bytes) -> np.ndarray:
        if self.carry:
            data = self.carry + data
        size = self.dtype.itemsize
        whole = len(data) - len(data) % size
        self.carry = bytes(data[whole:]) if whole != len(data) else b""
        return np.frombuffer(data, dtype=self.dtype, count=whole // size)

    def end(self) -> int:
        n = len(self.carry)
        self.carry = b""
        return n


# queue events
_START, _DATA, _END = 0, 1, 2


class NetworkSource(Source):
    """What TCP and UDP share: the reader thread, the queue, chunks, end conditions.

    ``kind``: "soft" (``dtype`` int8 or float32, default float32) or "bits" (packed hard
    bits). ``rate``: elements per second (symbol rate for soft), 0 unknown. ``heartbeat``:
    yield an empty chunk after that many seconds without data (for a live status)."""

    def __init__(self, address: str | Endpoint, *, kind: str = "soft", dtype=None, rate: float = 0.0,
                 duration: float | None = None, stop_event: threading.Event | None = None,
                 max_streams: int | None = None, idle_timeout: float | None = None,
                 heartbeat: float | None = None, queue_bytes: int = 256 << 20):
        super().__init__()
        if kind not in ("soft", "bits"):
            raise UsageError(f"a network source carries soft symbols or bits, not {kind!r}")
        self.kind = kind
        if kind == "soft":
            dt = np.dtype(SOFT_DTYPES.get(dtype, dtype) if dtype is not None else "<f4")
            if dt not in (np.dtype(np.int8), np.dtype("<f4")):
                raise UsageError(f"soft symbols are int8 or float32, not {dt}")
            self.dtype = dt
        else:
            self.dtype = KINDS["bits"]
        self.endpoint = address if isinstance(address, Endpoint) else parse_endpoint(address, self._scheme)
        self.name = str(self.endpoint)
        self.rate = float(rate or 0.0)
        self.duration = duration
        self.max_streams = max_streams
        self.idle_timeout = idle_timeout
        self.heartbeat = heartbeat
        self.queue_bytes = int(queue_bytes)
        self.stats = NetworkStats()
        self._stop = threading.Event()
        self._stop_event = stop_event           # a caller's event: read, never set
        self._queue: queue.Queue = queue.Queue()
        self._queued = 0
        self._space = threading.Condition()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._opened = False
        self._closed = False
        self.connected = False
        self.bytes_read = 0
        self.last_data = time.time()
        self.outage: Outage | None = None       # the outage in progress
        self._streams_ended = 0
        self._t0 = time.monotonic()
        self.ended_by = ""                      # stop, duration, max_streams, idle_timeout, eof
        self.journal = None                     # a JournalWriter (append(kind, t, payload)) or None
        self._last_end = float("nan")
        self._starts = 0

    _scheme = "tcp"

    # -- control ------------------------------------------------------------------------
    def open(self) -> None:
        """Bind (listening) now, so a bad or busy address fails before the pass starts."""
        if not self._opened:
            self._open()
            self._opened = True

    def _open(self) -> None:
        pass

    def stop(self) -> None:
        self._stop.set()
        with self._space:
            self._space.notify_all()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set() or (self._stop_event is not None and self._stop_event.is_set())

    def _wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``, less when asked to stop."""
        end = time.monotonic() + seconds
        while not self.stopped and time.monotonic() < end:
            self._stop.wait(min(_POLL, max(0.0, end - time.monotonic())))

    @property
    def address(self) -> tuple:
        """(host, port) actually bound or connected to (port 0 -> the one chosen)."""
        return (self.endpoint.host, self.endpoint.port)

    def close(self) -> None:
        self.stop()
        if self._thread is not None and self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if not self._closed:
            self._closed = True
            self._close_sockets()

    def _close_sockets(self) -> None:
        pass

    def status(self) -> dict:
        now = time.time()
        out = {"connected": self.connected, "endpoint": self.name, "peer": getattr(self, "peer", None),
               "bytes_read": self.bytes_read,
               "silent_s": now - self.last_data, "streams": self.stats.streams,
               "outages": len(self.stats.outages) + (self.outage is not None),
               "ended": self._done.is_set()}
        out.update(self.stats.network())
        out["catching_up"] = False              # the same keys as the serial receiver's status
        if self.outage is not None:
            out["outage_s"] = out["unplugged_s"] = now - self.outage.start
            out["outage_reason"] = out["unplug_reason"] = self.outage.reason
        return out

    @property
    def port(self) -> str:
        """The address, for a live status (the serial receiver's name for it)."""
        return self.name

    @property
    def device(self) -> str | None:
        """The peer connected or last heard from (None before any)."""
        return getattr(self, "peer", None)

    # -- reader side --------------------------------------------------------------------
    def _put(self, event: tuple, nbytes: int = 0, block: bool = True) -> bool:
        with self._space:
            while block and nbytes and self._queued + nbytes > self.queue_bytes and self._queued:
                if self.stopped:
                    break
                self._space.wait(_POLL)
            if not block and nbytes and self._queued + nbytes > self.queue_bytes:
                return False
            self._queued += nbytes
        self._journal(event)
        self._queue.put(event)
        return True

    def _first_time(self, now: float, nbytes: int) -> float:
        """Host time of the first byte of a read of ``nbytes`` that ended at ``now``: with a
        rate, the read's length earlier, never before the previous read ended, never after now."""
        if self.rate <= 0:
            return now
        seconds = nbytes / self.dtype.itemsize * (8 if self.kind == "bits" else 1) / self.rate
        first = now - seconds
        if np.isfinite(self._last_end):
            first = min(max(first, self._last_end), now)
        self._last_end = first + seconds
        return first

    def _journal(self, event: tuple) -> None:
        """The raw journal (groundseg.sources.journal's record types): what is queued for the
        decoder, written first (a JournalWriter records its own failures and never raises)."""
        j = self.journal
        if j is None:
            return
        what, t, payload = event
        if what == _DATA:
            j.append(b"D", t, payload)
        elif what == _START:
            self._starts += 1
            j.append(b"S", t, json.dumps({"port": self.name, "peer": getattr(self, "peer", None),
                                          "reconnect": self._starts - 1}, sort_keys=True).encode())

    def _should_end(self) -> bool:
        if self.stopped:
            self.ended_by = self.ended_by or "stop"
        elif self.duration is not None and time.monotonic() - self._t0 >= self.duration:
            self.ended_by = "duration"
        elif self.max_streams is not None and self._streams_ended >= self.max_streams:
            self.ended_by = "max_streams"
        elif self.idle_timeout is not None and time.time() - self.last_data >= self.idle_timeout:
            self.ended_by = "idle_timeout"
        return bool(self.ended_by)

    def _begin_outage(self, reason: str) -> None:
        self.outage = Outage(start=time.time(), bytes_before=self.bytes_read, reason=reason)

    def _end_outage(self, t: float, finished: bool = False) -> None:
        if self.outage is None:
            return
        if finished:
            # the sender ended the last stream the pass waited for: not an outage
            self.outage = None
            return
        self.outage.end = t
        self.stats.outages.append(self.outage)
        if self.journal is not None:
            self.journal.append(b"O", t, json.dumps(self.outage.to_dict(), sort_keys=True).encode())
        self.outage = None

    def _run(self) -> None:
        try:
            self._read()
        except BaseException as exc:  # noqa: BLE001 - raised again by chunks()
            self._error = exc
        finally:
            # the sender finished (the last stream awaited, or silence asked to end the pass)
            finished = self.ended_by in ("max_streams", "idle_timeout", "eof")
            if self.outage is not None and not finished:
                self.outage.reason += " (pass ended during the outage)"
            self._end_outage(time.time(), finished)
            self._close_sockets()
            self._closed = True
            self._done.set()
            self._queue.put(None)

    def _read(self) -> None:
        raise NotImplementedError

    # -- decoder side -------------------------------------------------------------------
    def _chunk(self, data: np.ndarray, t: float, offset: int, new: bool) -> Chunk:
        return Chunk(data, self.kind, rx_time=t, offset=offset, rate=self.rate, new_stream=new,
                     stream=self.name, clock="host")

    def chunks(self) -> Iterator[Chunk]:
        self.open()
        self._t0 = time.monotonic()
        self.last_data = time.time()
        self._thread = threading.Thread(target=self._run, name=f"groundseg-{self.endpoint.scheme}-reader",
                                        daemon=True)
        self._thread.start()
        asm = _Assembler(self.dtype)
        per_byte = 8 if self.kind == "bits" else 1
        offset = 0
        new = False
        wait = min(self.heartbeat or _POLL, _POLL)
        silent_since = time.monotonic()
        try:
            while True:
                try:
                    ev = self._queue.get(timeout=wait)
                except queue.Empty:
                    if self.heartbeat is not None and time.monotonic() - silent_since >= self.heartbeat:
                        silent_since = time.monotonic()
                        yield self._chunk(np.zeros(0, self.dtype), time.time(), offset, False)
                    continue
                if ev is None:
                    break
                what, t, payload = ev
                if what == _START:
                    self.stats.truncated_bytes += asm.end()
                    self.stats.streams += 1
                    offset, new = 0, True
                elif what == _END:
                    self.stats.truncated_bytes += asm.end()
                else:
                    with self._space:
                        self._queued -= len(payload)
                        self._space.notify_all()
                    arr = asm.feed(payload)
                    self.stats.bytes_in += len(payload)
                    if not arr.size:
                        continue
                    elements = arr.size * per_byte
                    self.stats.chunks += 1
                    silent_since = time.monotonic()
                    yield self._chunk(arr, t, offset, new)
                    offset += elements
                    new = False
            self.stats.truncated_bytes += asm.end()
        finally:
            self.stop()
            if self._thread is not None:
                self._thread.join()
        if self._error is not None:
            raise self._error


class TcpSource(NetworkSource):
    """Soft symbols over TCP: ``tcp-listen://[HOST]:PORT`` (wait for the sender; loopback
    unless a host is given) or ``tcp://HOST:PORT`` (connect to it, retrying every
    ``retry`` seconds). One connection at a time; each connection is a stream."""

    _scheme = "tcp"

    def __init__(self, address: str | Endpoint, *, retry: float = 1.0, **kwargs):
        super().__init__(address, **kwargs)
        if self.endpoint.scheme not in ("tcp", "tcp-listen"):
            raise NetworkError(f"{self.endpoint}: a TCP source needs tcp:// or tcp-listen://")
        self.retry = float(retry)
        self._listener: socket.socket | None = None
        self._conn: socket.socket | None = None
        self._bound: tuple | None = None
        self.peer: str | None = None
        self._heard = False          # data since the last end-of-stream datagram

    @property
    def listening(self) -> bool:
        return self.endpoint.scheme == "tcp-listen"

    def _open(self) -> None:
        if not self.listening:
            _resolve(self.endpoint, socket.SOCK_STREAM)     # an unknown host fails now
            return
        family, stype, proto, _, addr = _resolve(self.endpoint, socket.SOCK_STREAM)
        sock = socket.socket(family, stype, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
            sock.listen(1)
        except OSError as exc:
            sock.close()
            raise NetworkError(f"{self.endpoint}: cannot listen ({exc.strerror or exc})") from None
        sock.settimeout(_POLL)
        self._listener = sock
        self._bound = sock.getsockname()[:2]

    @property
    def address(self) -> tuple:
        return self._bound or (self.endpoint.host, self.endpoint.port)

    def _close_sockets(self) -> None:
        for s in (self._conn, self._listener):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
        self._conn = self._listener = None
        self.connected = False

    def _connect(self) -> socket.socket | None:
        if self.listening:
            try:
                conn, peer = self._listener.accept()
            except (TimeoutError, BlockingIOError):
                return None
            self.peer = f"{peer[0]}:{peer[1]}"
            return conn
        family, stype, proto, _, addr = _resolve(self.endpoint, socket.SOCK_STREAM)
        conn = socket.socket(family, stype, proto)
        conn.settimeout(max(_POLL, 1.0))
        try:
            conn.connect(addr)
        except OSError:
            conn.close()
            self._wait(self.retry)
            return None
        self.peer = f"{addr[0]}:{addr[1]}"
        return conn

    def _read(self) -> None:
        buf = bytearray(_RECV)
        view = memoryview(buf)
        while not self._should_end():
            if self._conn is None:
                conn = self._connect()
                if conn is None:
                    continue
                conn.settimeout(_POLL)
                self._conn = conn
                self.connected = True
                self.stats.connections += 1
                now = time.time()
                self.last_data = now
                self._end_outage(now)
                self._last_end = float("nan")
                self._put((_START, now, None))
            reason = ""
            try:
                n = self._conn.recv_into(view)
            except TimeoutError:
                continue
            except OSError as exc:
                n, reason = 0, f"connection lost ({exc.strerror or exc})"
            now = time.time()
            if n:
                self.bytes_read += n
                self.last_data = now
                self._put((_DATA, self._first_time(now, n), bytes(view[:n])), n)
                continue
            # closed by the peer (or lost): what arrived is queued; the stream ends here
            try:
                self._conn.close()
            except OSError:
                pass
            self._conn = None
            self.connected = False
            self._put((_END, now, None))
            self._streams_ended += 1
            self._begin_outage(reason or f"connection closed by {self.peer}")


class UdpSource(NetworkSource):
    """Soft symbols in UDP datagrams: ``udp://[HOST]:PORT`` (loopback unless a host is
    given). ``header``: what precedes each payload (:data:`HEADERS`); with a counter,
    ``reorder_window`` datagrams may wait for a missing one; ``fill_lost`` puts zero bytes
    (erasures) of the last payload's size in for each lost datagram. ``gather``: seconds
    of datagrams per chunk (at most ``gather_bytes``)."""

    _scheme = "udp"

    def __init__(self, address: str | Endpoint, *, header: str = "none", reorder_window: int = 16,
                 fill_lost: bool = True, stop_on_eof: bool = False, gather: float = 0.05,
                 gather_bytes: int = 1 << 20, recv_buffer: int = 8 << 20, **kwargs):
        super().__init__(address, **kwargs)
        if self.endpoint.scheme != "udp":
            raise NetworkError(f"{self.endpoint}: a UDP source needs udp://")
        if header not in HEADERS:
            raise UsageError(f"UDP header must be one of {', '.join(HEADERS)}, not {header!r}")
        self.header = header
        self.header_bytes, counter, self._order = HEADERS[header]
        self.reorder = SequenceReorder(counter, self.stats, reorder_window) if counter else None
        self._counter = counter
        self.fill_lost = fill_lost
        self.stop_on_eof = stop_on_eof
        self.gather = float(gather)
        self.gather_bytes = int(gather_bytes)
        self.recv_buffer = int(recv_buffer)
        self._sock: socket.socket | None = None
        self._bound: tuple | None = None
        self._in_stream = False
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._pending_t = float("nan")
        self._last_payload = 0
        self.peer: str | None = None

    def _open(self) -> None:
        family, stype, proto, _, addr = _resolve(self.endpoint, socket.SOCK_DGRAM)
        sock = socket.socket(family, stype, proto)
        try:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.recv_buffer)
            except OSError:
                pass
            sock.bind(addr)
        except OSError as exc:
            sock.close()
            raise NetworkError(f"{self.endpoint}: cannot listen ({exc.strerror or exc})") from None
        sock.settimeout(_POLL)
        self._sock = sock
        self._bound = sock.getsockname()[:2]

    @property
    def address(self) -> tuple:
        return self._bound or (self.endpoint.host, self.endpoint.port)

    def _close_sockets(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock = None
        self.connected = False

    # -- the stream being assembled in the reader ------------------------------------------
    def _flush_pending(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        if not self._put((_DATA, self._pending_t, data), len(data), block=False):
            # the decoder is too far behind: these bytes (and any waiting for reordering) are
            # dropped, and the stream restarts (the symbols after would not line up)
            self.stats.bytes_overflow += len(data)
            if self.reorder is not None:
                self.stats.bytes_overflow += sum(len(v) for v in self.reorder.pending.values())
                self.reorder.reset()
            self._break_stream(self._pending_t)

    def _append(self, t: float, payload: bytes) -> None:
        if not self._in_stream:
            self._in_stream = True
            self.connected = True
            self._end_outage(t)
            self._put((_START, t, None))
        if not self._pending:
            self._pending_t = t
        self._pending.append(payload)
        self._pending_bytes += len(payload)
        if self._pending_bytes >= self.gather_bytes:
            self._flush_pending()

    def _break_stream(self, t: float) -> None:
        """The stream ends here (what is gathered is not delivered by this call)."""
        self._pending.clear()
        self._pending_bytes = 0
        if self._in_stream:
            self._put((_END, t, None))
            self._in_stream = False

    def _end_stream(self, t: float, by_sender: bool = True) -> None:
        """The sender ended the stream (EOF, a restarted counter) or the source ends."""
        if self.reorder is not None:
            self._deliver(t, self.reorder.flush())
            self.reorder.reset()
        self._flush_pending()
        if self._in_stream:
            self._break_stream(t)
            if by_sender:
                self._streams_ended += 1

    def _deliver(self, t: float, events: list) -> None:
        for ev in events:
            if ev is None:
                # the sender restarted its counter (what waited was flushed just before)
                self._flush_pending()
                if self._in_stream:
                    self._break_stream(t)
                    self._streams_ended += 1
            elif isinstance(ev, int):
                fill = ev * self._last_payload
                if not self.fill_lost or not self._in_stream:
                    continue
                if fill > _MAX_FILL:
                    # too much missing to keep the alignment meaningful: a new stream
                    self._flush_pending()
                    self._break_stream(t)
                    continue
                self.stats.fill_bytes += fill
                self._append(t, bytes(fill))
            else:
                self._last_payload = len(ev)
                self._append(t, ev)

    def _read(self) -> None:
        buf = bytearray(65536)
        view = memoryview(buf)
        h = self.header_bytes
        while not self._should_end():
            try:
                n, sender = self._sock.recvfrom_into(view)
            except TimeoutError:
                n = -1
            now = time.time()
            if n < 0:
                # a quiet moment: what waits is delivered (a missing datagram is given up)
                self._flush_or_wait(now)
                continue
            if n == 0:
                self.stats.eof_markers += 1
                if self._heard:
                    # the sender's stream ends (even if ours was broken by an overflow)
                    self._heard = False
                    self._end_stream(now, by_sender=False)
                    self._streams_ended += 1
                    self._begin_outage("the sender ended the stream (zero-length datagram)")
                if self.stop_on_eof:
                    self.ended_by = "eof"
                    break
                continue
            if n < h or (n == h and h):
                self.stats.header_short += 1
                continue
            self.stats.datagrams += 1
            self._heard = True
            self.peer = f"{sender[0]}:{sender[1]}"
            self.bytes_read += n - h
            self.last_data = now
            payload = bytes(view[h:n])
            if self.reorder is None:
                self._append(now, payload)
            else:
                seq = int.from_bytes(view[:self._counter], self._order)
                self._deliver(now, self.reorder.push(seq, payload))
            if self._pending and now - self._pending_t >= self.gather:
                self._flush_pending()
        self._end_stream(time.time(), by_sender=False)

    def _flush_or_wait(self, now: float) -> None:
        if self.reorder is not None and self.reorder.pending and now - self.last_data >= 2 * _POLL:
            self._deliver(now, self.reorder.flush())
        self._flush_pending()


def open_network_source(spec: str, **kwargs) -> NetworkSource:
    """A source for ``tcp://``, ``tcp-listen://`` or ``udp://`` addresses."""
    ep = parse_endpoint(spec)
    if ep.scheme == "udp":
        return UdpSource(ep, **kwargs)
    kwargs = {k: v for k, v in kwargs.items()
              if k not in ("header", "reorder_window", "fill_lost", "stop_on_eof", "gather", "gather_bytes",
                           "recv_buffer")}
    return TcpSource(ep, **kwargs)
