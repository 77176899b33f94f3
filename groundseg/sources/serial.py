"""A receiver on a serial port (pyserial) as a :class:`~groundseg.sources.base.Source`.

A reader thread reads the port in large pieces (whatever is waiting, gathered for at most
``profile.gather`` seconds or ``profile.read_max`` bytes: one *record*), stamps each
record with the host clock, appends it to the pass's journal, and queues it for the
decoder. ``chunks()`` (the decoder's side) turns records into chunks through the
profile's deframer (:class:`~groundseg.sources.journal.RecordChunker`, shared with
journal replay, so a replay gives the very same chunks).

Never dropping input: the queue between reader and decoder is bounded; when it is full
the reader goes on writing the journal only, and the decoder, once it has emptied the
queue, reads the records it missed back from the journal until it has caught up.
Without a journal the reader waits for the decoder (the OS and the receiver buffer).

Unplug and replug: a read error, a hung-up line or the device path vanishing closes
the port and opens an :class:`~groundseg.sources.base.Outage`; the reader reopens the
same receiver with backoff (by its path or udev name, or by USB VID:PID / serial number
through ``serial.tools.list_ports``), records the outage, and a new stream starts
(decoder state restarts as at a new file). Everything read before the error is
journalled and decoded.

Ports: a device path, a udev symlink, ``usb:VID:PID[:SERIAL]``, or any pyserial URL
(``socket://host:port``, ``rfc2217://host:port``, ``loop://``).
"""
from __future__ import annotations

import collections
import errno
import json
import os
import queue
import select
import threading
import time
from collections.abc import Iterator

import numpy as np

from groundseg.errors import UsageError
from groundseg.sources.base import Chunk, Outage, Source
from groundseg.sources.framing import kind_of
from groundseg.sources.journal import DATA, OUTAGE, STREAM, JournalCursor, JournalWriter, ReceiverStats, RecordChunker
from groundseg.sources.profile import Profile, UsbMatch


class ReceiverError(UsageError):
    """A port that cannot be opened at the start of a pass (missing, busy, not permitted)."""


def _is_url(port: str) -> bool:
    return "://" in port


def parse_usb_port(port: str) -> UsbMatch | None:
    """``usb:0483:5740[:SERIAL]`` -> UsbMatch; None for anything else."""
    if not port.startswith("usb:"):
        return None
    parts = port[4:].split(":")
    try:
        m = UsbMatch(vid=int(parts[0], 16) if parts[0] else None,
                     pid=int(parts[1], 16) if len(parts) > 1 and parts[1] else None,
                     serial_number=parts[2] if len(parts) > 2 and parts[2] else None)
    except ValueError:
        raise ReceiverError(f"{port}: expected usb:VID:PID[:SERIAL] in hexadecimal (e.g. usb:0483:5740)") from None
    return m


def find_usb(match: UsbMatch) -> str | None:
    """The device path of the first connected USB serial port matching ``match``."""
    from serial.tools import list_ports
    for info in list_ports.comports():
        if match.vid is not None and info.vid != match.vid:
            continue
        if match.pid is not None and info.pid != match.pid:
            continue
        if match.serial_number is not None and info.serial_number != match.serial_number:
            continue
        if match.location is not None and info.location != match.location:
            continue
        return info.device
    return None


def open_error(port: str, exc: BaseException) -> ReceiverError:
    """One line saying why ``port`` cannot be opened."""
    code = getattr(exc, "errno", None)
    text = str(exc)
    if code == errno.ENOENT or "No such file" in text:
        why = "no such port (is the receiver plugged in? `python -m serial.tools.list_ports -v` lists ports)"
    elif code in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        why = ("permission denied (add yourself to the dialout group: sudo usermod -aG dialout $USER, "
               "then log in again; see hardware/README.md)")
    elif code == errno.EBUSY or "exclusively lock" in text or "busy" in text.lower():
        why = "busy (another program has the port open)"
    elif code == errno.ECONNREFUSED or "refused" in text:
        why = "connection refused (is the serial-to-TCP server running?)"
    else:
        why = text.splitlines()[0] if text else type(exc).__name__
    return ReceiverError(f"{port}: {why}")


class SerialSource(Source):
    """A live receiver. ``frame_length``: the mission's (KISS and length-prefixed framing).

    ``journal``: a :class:`JournalWriter` (or None); ``queue_records``: the bound of the
    reader -> decoder queue; ``heartbeat``: when set, ``chunks()`` yields an empty chunk
    after that many seconds without data (so a caller can show a silent receiver);
    ``reconnect``: reopen after an unplug (else the pass ends there)."""

    def __init__(self, port: str | None, profile: Profile, frame_length: int | None = None,
                 journal: JournalWriter | None = None, queue_records: int = 64, heartbeat: float | None = None,
                 reconnect: bool = True):
        super().__init__()
        self.profile = profile
        self.port = port or profile.port
        if not self.port:
            if profile.usb.any:
                self.port = "usb:" + f"{profile.usb.vid or 0:04x}:{profile.usb.pid or 0:04x}"
            else:
                raise ReceiverError("no port: give --port or a port in the profile's [receiver]")
        self.usb = parse_usb_port(self.port) or (profile.usb if profile.usb.any else None)
        self.framing = profile.framing
        self.kind = kind_of(self.framing)
        if self.kind == "frames" and not frame_length:
            raise ReceiverError(f"framing {self.framing!r} needs the mission's frame length")
        self.frame_length = frame_length
        self.name = self.port
        self.journal = journal
        self.heartbeat = heartbeat
        self.reconnect = reconnect
        self.stats = ReceiverStats()
        line_rate = profile.line_rate
        self.line_rate = float(line_rate)
        self.chunker = RecordChunker(self.framing, frame_length, profile.deframer_options(), self.line_rate,
                                     self.port, self.stats)
        self._queue: queue.Queue = queue.Queue(maxsize=max(2, queue_records))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._spill: tuple[int, int] | None = None
        self._after_spill: collections.deque = collections.deque()
        self._pending: collections.deque = collections.deque()
        self._catchup: JournalCursor | None = None
        self._thread: threading.Thread | None = None
        self._ser = None
        self._error: BaseException | None = None
        self.device: str | None = None        # what the port resolved to
        self.bytes_read = 0                   # by the reader (the decoder's count is stats.bytes_in)
        self.connected = False
        self.outage: Outage | None = None     # the outage in progress
        self.last_data = time.time()          # host time of the last byte read
        self.opened_at = float("nan")
        self.reconnects = 0

    # -- the port ------------------------------------------------------------------------------
    def _resolve(self) -> str:
        if _is_url(self.port):
            return self.port
        if not self.port.startswith("usb:") and os.path.exists(self.port):
            return self.port
        if self.usb is not None and self.usb.any:
            dev = find_usb(self.usb)
            if dev is not None:
                return dev
            if self.port.startswith("usb:"):
                raise FileNotFoundError(errno.ENOENT, f"no connected {self.usb.describe()}")
        return self.port

    def _open_port(self):
        import serial
        dev = self._resolve()
        kwargs = self.profile.serial_kwargs()
        if not _is_url(dev):
            kwargs["exclusive"] = True
            ser = serial.serial_for_url(dev, **kwargs)
        else:
            # pyserial "flushes" input on open; for a tty that is what the kernel held before
            # we opened, but for a socket it is the first bytes of a fresh connection: keep them
            ser = serial.serial_for_url(dev, do_not_open=True, **kwargs)
            ser.reset_input_buffer = lambda: None
            try:
                ser.open()
            finally:
                del ser.reset_input_buffer
        self.device = dev
        return ser

    def open(self) -> None:
        """Open the port now (the first time): a missing, busy or forbidden port raises
        :class:`ReceiverError` at once instead of waiting for a receiver."""
        if self._ser is not None:
            return
        try:
            self._ser = self._open_port()
        except ReceiverError:
            raise
        except (OSError, ValueError) as exc:   # serial.SerialException is an OSError
            raise open_error(self.port, exc) from None
        self.connected = True
        self.opened_at = time.time()

    def stop(self) -> None:
        """End the pass: the reader stops after its current read; chunks() delivers what was
        read and returns. Safe from a signal handler."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # -- reader thread --------------------------------------------------------------------------
    def _emit(self, kind: bytes, t: float, payload: bytes) -> None:
        rec = (kind, t, payload)
        block = False
        with self._lock:
            pos = self.journal.append(kind, t, payload) if self.journal is not None else None
            if self._spill is None:
                try:
                    self._queue.put_nowait(rec)
                except queue.Full:
                    if pos is not None:
                        self._spill = pos           # decoder catches up from the journal from here
                        self.stats.spills += 1
                    else:
                        block = True
            elif pos is None:
                # the journal failed (disk full) while the decoder was catching up from it: keep
                # the record in memory, after what the journal holds
                self._after_spill.append(rec)
                self.stats.held_in_memory += 1
        if block:
            # no journal to fall back on: wait for the decoder (the OS and the receiver buffer)
            while not self._queue_put(rec) and not self._stop.is_set():
                pass

    def _queue_put(self, rec) -> bool:
        try:
            self._queue.put(rec, timeout=0.5)
            return True
        except queue.Full:
            return False

    def _emit_json(self, kind: bytes, t: float, obj: dict) -> None:
        self._emit(kind, t, json.dumps(obj, sort_keys=True).encode())

    def _gather(self):
        """One record: (data, host time of its first byte, error or None). Everything read
        before an error is returned with it (nothing read is lost)."""
        ser = self._ser
        p = self.profile
        if type(ser).__module__ == "serial.serialposix" and getattr(ser, "fd", None) is not None:
            return self._gather_fd(ser.fd)
        buf = bytearray()
        t_first = 0.0
        try:
            first = ser.read(1)            # waits up to read_timeout
            if not first:
                return buf, 0.0, None
            t_first = time.time()
            buf += first
            deadline = time.monotonic() + p.gather
            while len(buf) < p.read_max:
                w = ser.in_waiting
                if w:
                    buf += ser.read(min(w, p.read_max - len(buf)))
                    continue
                if time.monotonic() >= deadline or self._stop.is_set():
                    break
                b = ser.read(1)            # the line quiet for read_timeout: the record ends
                if not b:
                    break
                buf += b
        except Exception as exc:  # noqa: BLE001 - any read failure is an unplug
            return buf, t_first, exc
        return buf, t_first, None

    def _gather_fd(self, fd: int):
        """:meth:`_gather` for a POSIX tty: select + one ``os.read`` of everything waiting
        (pyserial's read adds an ioctl, a timeout object and a copy per call)."""
        p = self.profile
        buf = bytearray()
        t_first = 0.0
        deadline = 0.0                     # set when the record's first bytes arrive
        try:
            while len(buf) < p.read_max:
                if buf:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._stop.is_set():
                        break
                    wait = min(left, p.read_timeout)
                else:
                    wait = p.read_timeout
                ready, _, _ = select.select([fd], [], [], wait)
                if not ready:
                    break                  # nothing for read_timeout: the record ends (or none began)
                try:
                    piece = os.read(fd, p.read_max - len(buf))
                except BlockingIOError:
                    continue
                if not piece:
                    raise OSError(errno.EIO, "device reports readiness to read but returned no data "
                                  "(device disconnected?)")
                if not buf:
                    t_first = time.time()
                    deadline = time.monotonic() + p.gather
                buf += piece
        except Exception as exc:  # noqa: BLE001 - any read failure is an unplug
            return buf, t_first, exc
        return buf, t_first, None

    def _close_port(self) -> None:
        ser, self._ser = self._ser, None
        self.connected = False
        if ser is not None:
            try:
                ser.close()
            except Exception:  # noqa: BLE001 - a vanished device may fail to close
                pass

    def _unplugged(self, reason: str) -> None:
        self._close_port()
        self.outage = Outage(start=time.time(), bytes_before=self.bytes_read, reason=reason)

    def _vanished(self) -> bool:
        return not _is_url(self.port) and not self.port.startswith("usb:") and not os.path.exists(self.port) \
            and self.device == self.port

    def _try_reconnect(self, delay: float) -> float:
        try:
            self._ser = self._open_port()
        except Exception:  # noqa: BLE001 - not back yet
            self._stop.wait(delay)
            return min(delay * 2, self.profile.reconnect_max)
        now = time.time()
        self.reconnects += 1
        o = self.outage
        if o is not None:
            o.end = now
            self._emit_json(OUTAGE, now, o.to_dict())
            self.outage = None
        self.connected = True
        self._emit_json(STREAM, now, {"port": self.port, "device": self.device, "reconnect": self.reconnects})
        return self.profile.reconnect_initial

    def _run(self) -> None:
        delay = self.profile.reconnect_initial
        try:
            while not self._stop.is_set():
                if self._ser is None:
                    if not self.reconnect:
                        break
                    delay = self._try_reconnect(delay)
                    continue
                data, t_first, exc = self._gather()
                if data:
                    n = len(data)
                    if self.line_rate > 0:
                        # the first byte arrived about n bytes' line time before the last
                        t_first = max(t_first, time.time() - n * 8 / self.line_rate)
                    self.bytes_read += n
                    self.last_data = time.time()
                    self._emit(DATA, t_first, bytes(data))
                if exc is not None:
                    self._unplugged(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                elif not data and self._vanished():
                    self._unplugged("device vanished")
        except BaseException as exc:  # noqa: BLE001 - reported by chunks()
            self._error = exc
        finally:
            now = time.time()
            if self.outage is not None:
                self.outage.end = now
                self.outage.reason += " (pass ended during the outage)"
                try:
                    self._emit_json(OUTAGE, now, self.outage.to_dict())
                except Exception:  # noqa: BLE001
                    pass
                self.outage = None
            self._close_port()
            self._done.set()

    # -- decoder side ---------------------------------------------------------------------------
    def _next_record(self, timeout: float):
        while True:
            if self._catchup is not None:
                rec = self._catchup.next()
                if rec is not None:
                    return rec
                with self._lock:
                    end = self.journal.position()
                    if (self._catchup.part, self._catchup.offset) >= end:
                        self._catchup.close()
                        self._catchup = None
                        self._pending.extend(self._after_spill)   # decoded before anything queued later
                        self._after_spill.clear()
                        self._spill = None
                    else:
                        self._catchup.end = end
                continue
            if self._pending:
                return self._pending.popleft()
            try:
                if self._spill is not None:
                    return self._queue.get_nowait()     # what was queued before the spill, then the journal
                return self._queue.get(timeout=timeout)
            except queue.Empty:
                pass
            with self._lock:
                if self._spill is not None and self._queue.empty():
                    self._catchup = JournalCursor(self.journal.paths, self._spill, end=self.journal.position())
                    continue
            return None

    def _heartbeat(self) -> Chunk:
        """An empty chunk at the stream's current position: nothing arrived."""
        return Chunk(np.zeros(0, np.uint8), self.kind, rx_time=time.time(), offset=self.chunker.position,
                     stream=self.port, clock="host")

    def chunks(self) -> Iterator[Chunk]:
        self.open()
        # the stream's start goes to the journal (attached after open()) before any data
        self._emit_json(STREAM, self.opened_at, {"port": self.port, "device": self.device, "reconnect": 0})
        self._thread = threading.Thread(target=self._run, name="groundseg-serial-reader", daemon=True)
        self._thread.start()
        wait = min(self.heartbeat or 0.25, 0.25)
        last_yield = time.monotonic()
        try:
            while True:
                rec = self._next_record(wait)
                if rec is None:
                    if self._done.is_set() and self._queue.empty() and self._spill is None and not self._pending:
                        break
                    if self.heartbeat is not None and time.monotonic() - last_yield >= self.heartbeat:
                        last_yield = time.monotonic()
                        yield self._heartbeat()
                    continue
                chunk = self.chunker.feed(*rec)
                if chunk is not None:
                    last_yield = time.monotonic()
                    yield chunk
                elif self.heartbeat is not None and time.monotonic() - last_yield >= self.heartbeat:
                    last_yield = time.monotonic()
                    yield self._heartbeat()
        finally:
            self.stop()
            if self._thread is not None:
                self._thread.join()
            # whatever the reader queued after we stopped looking: decode it too
            self.chunker.end_stream()
        if self._error is not None:
            raise self._error

    def drain(self) -> Iterator[Chunk]:
        """Records still queued or journalled after ``chunks()`` was abandoned (rarely needed)."""
        while True:
            rec = self._next_record(0)
            if rec is None:
                return
            chunk = self.chunker.feed(*rec)
            if chunk is not None:
                yield chunk

    def close(self) -> None:
        self.stop()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=5)
        self._close_port()

    def status(self) -> dict:
        """What the receiver is doing now (for a status line)."""
        now = time.time()
        out = {"connected": self.connected, "device": self.device, "bytes_read": self.bytes_read,
               "silent_s": now - self.last_data, "reconnects": self.reconnects,
               "outages": len(self.stats.outages) + (self.outage is not None),
               "queued": self._queue.qsize(), "catching_up": self._spill is not None,
               "ended": self._done.is_set()}
        if self.outage is not None:
            out["unplugged_s"] = now - self.outage.start
            out["unplug_reason"] = self.outage.reason
        return out
