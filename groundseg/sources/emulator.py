"""A receiver emulator on a real pseudo-terminal: what tests and the live demo plug into.

:class:`Emulator` opens a pty pair (``os.openpty``), sets it raw with termios as a
USB-CDC device is, points a symlink (``link``) at the slave, and writes a capture
into the master at a line rate, in a profile's framing:

- ``raw``: the capture's bytes (a hard-bit CADU stream) as they are;
- ``kiss`` / ``length``: the capture cut into frames of the mission's frame length
  (a level "frames" capture, ``groundseg simulate --level frames``), each framed.

Faults on request: ``unplug_after`` seconds of streaming, the device goes away (the
pty is closed and the symlink removed) for ``unplug_for`` seconds, then comes back as
a new pty behind the same symlink, and streaming goes on from the next frame (with
``cut``, the unplug cuts a frame in two: its first half is sent, the rest is lost); a
``stall`` (silence) at ``stall_after``; ``burst`` (bursts of ``burst_s`` of data at
full speed, then silence, the same average rate); ``noise`` (with this probability,
random bytes between two frames). Before an unplug the emulator waits until the
receiver has read everything written (the slave's input queue is empty), and after
plugging in it waits until a receiver opens the port (pyserial flushes the input
queue on open, as a real driver discards what came before: the master, in packet
mode, sees that flush), so "sent while connected" is exactly what the receiver read.
"""
from __future__ import annotations

import fcntl
import os
import select
import struct
import termios
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from groundseg.sources.framing import kiss_encode, length_encode

TIOCPKT_FLUSHREAD = 1


def _inq(fd: int) -> int:
    """Bytes waiting in the input queue of the tty ``fd`` (TIOCINQ / FIONREAD)."""
    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]


def frame_pieces(capture: bytes, framing: str, unit: int, port: int = 0, length_bytes: int = 2,
                 includes_header: bool = False) -> list[bytes]:
    """The capture as the receiver would send it, one piece per frame (or per CADU, ``unit``
    bytes, for raw). A trailing partial unit is sent as it is (raw) or dropped (framed)."""
    data = np.frombuffer(capture, np.uint8)
    n = data.size // unit
    rows = data[: n * unit].reshape(n, unit)
    if framing == "raw":
        pieces = [r.tobytes() for r in rows]
        if data.size > n * unit:
            pieces.append(data[n * unit:].tobytes())
        return pieces
    if framing == "kiss":
        # FEND cmd ... FEND per frame (the shared FEND between frames written once per frame)
        return [kiss_encode(r[None], port=port) for r in rows]
    if framing == "length":
        return [length_encode(r[None], length_bytes, includes_header) for r in rows]
    raise ValueError(f"unknown framing {framing!r}")


@dataclass
class EmulatorStats:
    bytes_sent: int = 0
    pieces_sent: int = 0
    noise_bytes: int = 0
    unplugs: int = 0
    stalls: int = 0
    cut_bytes: int = 0
    pieces_cut: int = 0
    seconds: float = 0.0
    sent_per_connection: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class Emulator:
    def __init__(self, pieces: list[bytes], link, rate: float = 1e6, unplug_after: float | None = None,
                 unplug_for: float = 1.0, unplugs: int = 1, stall: float = 0.0, stall_after: float | None = None,
                 burst: bool = False, burst_s: float = 0.2, noise: float = 0.0, seed: int = 0,
                 on_event: Callable[[str], None] | None = None, drain_timeout: float = 10.0,
                 wait_open: float | None = 30.0, cut: bool = False):
        self.pieces = pieces
        self.link = Path(link)
        self.rate = float(rate)
        if self.rate <= 0:
            raise ValueError("rate must be positive (bit/s)")
        self.unplug_after = unplug_after
        self.unplug_for = unplug_for
        self.unplugs_left = unplugs if unplug_after else 0
        self.stall = stall
        self.stall_after = stall_after
        self.burst = burst
        self.burst_s = burst_s
        self.noise = noise
        self.rng = np.random.default_rng(seed)
        self.on_event = on_event or (lambda text: None)
        self.drain_timeout = drain_timeout
        self.wait_open_s = wait_open
        self.cut = cut
        self.stats = EmulatorStats()
        self.master = self.slave = -1
        self.slave_name = ""
        self._stop = False

    # -- the device ---------------------------------------------------------------------------
    def plug(self) -> None:
        self.master, self.slave = os.openpty()
        for fd in (self.master, self.slave):
            tty.setraw(fd, termios.TCSANOW)     # no echo, no line discipline: a USB-CDC device
        # packet mode: the master hears the slave's flushes, i.e. a receiver opening the port
        fcntl.ioctl(self.master, termios.TIOCPKT, struct.pack("i", 1))
        self.slave_name = os.ttyname(self.slave)
        tmp = self.link.with_name(self.link.name + ".new")
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        os.symlink(self.slave_name, tmp)
        os.replace(tmp, self.link)
        self.on_event(f"plugged: {self.link} -> {self.slave_name}")

    def wait_open(self, timeout: float | None) -> bool:
        """Wait until a receiver opens the port (pyserial flushes the input queue when it
        opens a port: packet mode reports the flush); True if it did within ``timeout``."""
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        while not self._stop:
            left = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
            if left <= 0:
                return False
            r, _, _ = select.select([self.master], [], [], left)
            if not r:
                continue
            try:
                pkt = os.read(self.master, 4096)
            except OSError:
                return False
            if pkt and pkt[0] & TIOCPKT_FLUSHREAD:
                self.on_event("receiver opened the port")
                return True
        return False

    def drain(self) -> bool:
        """Wait until the receiver has read everything written (True), or time out.

        A pty write reaches the slave's input queue through the kernel's flip buffer, a
        little later: the queue must stay empty over several looks, not just one."""
        deadline = time.monotonic() + self.drain_timeout
        empty = 0
        while time.monotonic() < deadline:
            time.sleep(0.01)
            try:
                empty = empty + 1 if _inq(self.slave) == 0 else 0
            except OSError:
                return False
            if empty >= 5:
                return True
        return False

    def unplug(self) -> None:
        if not self._stop:
            self.drain()
        try:
            self.link.unlink()
        except FileNotFoundError:
            pass
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1
        self.stats.unplugs += 1
        self.on_event("unplugged")

    def close(self) -> None:
        if self.master >= 0:
            self.unplug()

    def stop(self) -> None:
        self._stop = True

    # -- streaming ----------------------------------------------------------------------------
    def _write(self, blob: bytes) -> int:
        """Write all of ``blob`` (waiting while the receiver does not read), unless stopped;
        returns the bytes written."""
        view = memoryview(blob)
        done = 0
        while done < len(blob) and not self._stop:
            _, w, _ = select.select([], [self.master], [], 0.1)
            if w:
                done += os.write(self.master, view[done:])
        return done

    def run(self, hold: float = 0.0) -> EmulatorStats:
        """Stream every piece, then keep the device plugged for ``hold`` seconds (until
        stopped if negative). Returns the stats."""
        if self.master < 0:
            self.plug()
        if self.wait_open_s != 0:
            self.wait_open(self.wait_open_s)
        t_start = time.monotonic()
        t0 = t_start                       # pacing origin of this connection
        sent0 = 0                          # bytes sent on this connection
        conn_sent = 0
        connected_at = t_start
        stalled = False
        block_bytes = max(64, int(self.rate / 8 * (self.burst_s if self.burst else 0.005)))
        pending: list[bytes] = []
        pending_n = 0
        stall_at = self.stall_after if self.stall_after is not None else None

        def flush():
            nonlocal pending, pending_n, sent0
            if not pending:
                return
            blob = b"".join(pending)
            pending, pending_n = [], 0
            # pace: this block may start when the previous ones have had their line time
            due = t0 + sent0 * 8 / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            n = self._write(blob)
            sent0 += n
            self.stats.bytes_sent += n

        for i, piece in enumerate(self.pieces):
            if self._stop:
                break
            now = time.monotonic()
            if self.unplugs_left and now - connected_at >= self.unplug_after:
                flush()
                if self.cut:
                    # the unplug cuts this frame: its first half goes out, the rest never does
                    half = piece[: len(piece) // 2]
                    self.stats.bytes_sent += self._write(half)
                    self.stats.cut_bytes += len(half)
                    conn_sent += len(half)
                self.stats.sent_per_connection.append(conn_sent)
                conn_sent = 0
                self.unplug()
                time.sleep(self.unplug_for)
                self.plug()
                if self.wait_open_s != 0:
                    self.wait_open(self.wait_open_s)
                self.unplugs_left -= 1
                connected_at = t0 = time.monotonic()
                sent0 = 0
                if self.cut:
                    self.stats.pieces_cut += 1
                    continue          # the cut frame is lost with the unplug
            if self.stall and not stalled and stall_at is not None and now - t_start >= stall_at:
                flush()
                self.on_event(f"stalled for {self.stall:g} s")
                time.sleep(self.stall)
                stalled = True
                self.stats.stalls += 1
                t0 = time.monotonic() - sent0 * 8 / self.rate
            if self.noise and i and self.rng.random() < self.noise:
                junk = self.rng.integers(0, 256, int(self.rng.integers(1, 65)), dtype=np.uint8).tobytes()
                pending.append(junk)
                pending_n += len(junk)
                self.stats.noise_bytes += len(junk)
                conn_sent += len(junk)
            pending.append(piece)
            pending_n += len(piece)
            conn_sent += len(piece)
            self.stats.pieces_sent += 1
            if pending_n >= block_bytes:
                flush()
        flush()
        self.stats.sent_per_connection.append(conn_sent)
        if not self._stop:
            self.drain()
        self.stats.seconds = time.monotonic() - t_start
        self.on_event(f"sent {self.stats.bytes_sent:,} bytes in {self.stats.seconds:.1f} s")
        end = time.monotonic() + hold
        while not self._stop and (hold < 0 or time.monotonic() < end):
            time.sleep(0.05)
        return self.stats

