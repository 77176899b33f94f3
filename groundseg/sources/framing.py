"""How a receiver frames what it sends over a serial line: raw bits, KISS, length-prefixed.

A deframer takes the bytes of one read at a time (``push(data) -> frames``, a flat
uint8 array of whole frames of ``frame_length`` back to back) and carries only the
partial frame across reads. ``end_stream()`` ends a stream (a receiver unplugged):
a frame left incomplete is counted as cut, never delivered. Every frame that is not
delivered is counted in ``counts`` with its reason:

- ``frames``: delivered; ``wrong_length``: a whole frame whose length is not the
  mission's frame length; ``cut``: a frame a stream's end (unplug) cut short;
- ``bad_escape`` (KISS): FESC followed by anything but TFEND / TFESC;
- ``other_command`` (KISS): a frame whose command byte is not a data frame on the
  profile's port (TNC parameters, another port);
- ``garbage_bytes``: bytes outside any frame (before a stream's first FEND, between
  length-prefixed frames while hunting for the next valid length), ``oversize``:
  a KISS frame far longer than any valid frame (no FEND on the line: dropped).

The scans are numba kernels over the whole read (``groundseg._numba.kernel``); slow
pure-Python references live in tests/reference/framing.py.
"""
from __future__ import annotations

import numpy as np

from groundseg._numba import kernel

FEND, FESC, TFEND, TFESC = 0xC0, 0xDB, 0xDC, 0xDD

FRAMINGS = ("raw", "kiss", "length")

COUNT_KEYS = ("frames", "wrong_length", "cut", "bad_escape", "other_command", "garbage_bytes", "oversize")
_FRAMES, _WRONG, _CUT, _BADESC, _OTHER, _GARBAGE, _OVERSIZE = range(len(COUNT_KEYS))


def _zero_counts() -> np.ndarray:
    return np.zeros(len(COUNT_KEYS), np.int64)


# -- KISS ----------------------------------------------------------------------------------------
@kernel
def _kiss_scan(buf, synced, frame_length, port, out, counts):
    """Frames between FENDs in ``buf``. Returns (frames written, bytes consumed, synced).

    ``synced``: a FEND has been seen in this stream (bytes before it are garbage). The
    bytes after the last FEND are not consumed: the caller carries them to the next read.
    """
    n = buf.shape[0]
    nout = 0
    i = 0
    if not synced:
        while i < n and buf[i] != FEND:
            i += 1
        counts[_GARBAGE] += i
        if i == n:
            return 0, n, False
        i += 1
    seg = i
    consumed = i
    for j in range(i, n):
        if buf[j] != FEND:
            continue
        if j > seg:
            # unescape the segment [seg, j): command byte, then the frame
            length = 0
            bad = False
            cmd = -1
            k = seg
            while k < j:
                b = buf[k]
                if b == FESC:
                    if k + 1 < j and buf[k + 1] == TFEND:
                        b = FEND
                    elif k + 1 < j and buf[k + 1] == TFESC:
                        b = FESC
                    else:
                        bad = True
                        break
                    k += 2
                else:
                    k += 1
                if cmd < 0:
                    cmd = b
                    continue
                if length < frame_length:
                    out[nout * frame_length + length] = b
                length += 1
            if bad:
                counts[_BADESC] += 1
            elif (cmd & 0x0F) != 0 or (port >= 0 and (cmd >> 4) != port):
                counts[_OTHER] += 1
            elif length != frame_length:
                counts[_WRONG] += 1
            else:
                nout += 1
                counts[_FRAMES] += 1
        seg = j + 1
        consumed = j + 1
    return nout, consumed, True


class KissDeframer:
    """KISS (FEND 0xC0, FESC 0xDB, TFEND 0xDC, TFESC 0xDD): data frames of one port.

    ``port``: the TNC port whose data frames are taken (command byte ``port << 4``),
    -1 any port."""

    framing = "kiss"

    def __init__(self, frame_length: int, port: int = 0):
        if frame_length <= 0:
            raise ValueError("frame_length must be positive")
        self.frame_length = int(frame_length)
        self.port = int(port)
        self.counts = _zero_counts()
        self._tail = np.zeros(0, np.uint8)
        self._synced = False
        # an escaped frame is at most 2 x (1 + frame_length) bytes; longer without a FEND is noise
        self._max_tail = 2 * (self.frame_length + 1) + 2

    def push(self, data) -> np.ndarray:
        data = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data
        buf = np.concatenate([self._tail, data]) if self._tail.size else data
        out = np.empty((buf.size // (self.frame_length + 2) + 1) * self.frame_length, np.uint8)
        nout, consumed, self._synced = _kiss_scan(buf, self._synced, self.frame_length, self.port,
                                                  out, self.counts)
        tail = buf[consumed:]
        if tail.size > self._max_tail:
            # no FEND for longer than any frame: drop it and wait for the next FEND
            self.counts[_OVERSIZE] += 1
            self.counts[_GARBAGE] += tail.size
            tail = tail[:0]
            self._synced = False
        self._tail = tail.copy()
        return out[: nout * self.frame_length]

    def end_stream(self) -> None:
        """The stream ended (unplug): a frame begun and not closed is cut."""
        if self._synced and self._tail.size:
            self.counts[_CUT] += 1
        elif self._tail.size:
            self.counts[_GARBAGE] += self._tail.size
        self._tail = np.zeros(0, np.uint8)
        self._synced = False


def kiss_encode(frames: np.ndarray, port: int = 0) -> bytes:
    """Frames (n, L) -> FEND cmd escaped-frame FEND ... (the emulator's side; whole array)."""
    frames = np.ascontiguousarray(frames, np.uint8)
    n, length = frames.shape
    body = np.empty((n, length + 1), np.uint8)
    body[:, 0] = (port & 0x0F) << 4
    body[:, 1:] = frames
    flat = body.reshape(-1)
    special = (flat == FEND) | (flat == FESC)
    # each byte becomes 1 or 2 bytes; each frame gains a FEND after it (and one before the first)
    sizes = 1 + special.astype(np.int64)
    per_frame = sizes.reshape(n, length + 1).sum(axis=1) + 1
    out = np.empty(int(per_frame.sum()) + 1, np.uint8)
    out[0] = FEND
    # position of every body byte in out
    frame_start = 1 + np.concatenate([[0], np.cumsum(per_frame)[:-1]])
    within = np.cumsum(sizes.reshape(n, length + 1), axis=1) - sizes.reshape(n, length + 1)
    pos = (frame_start[:, None] + within).reshape(-1)
    out[pos] = np.where(special, FESC, flat)
    esc = pos[special] + 1
    out[esc] = np.where(flat[special] == FEND, TFEND, TFESC)
    out[frame_start + per_frame - 1] = FEND
    return out.tobytes()


# -- length-prefixed -----------------------------------------------------------------------------
@kernel
def _length_scan(buf, locked, header, includes_header, min_len, max_len, frame_length, out, counts):
    """Length-prefixed frames in ``buf``. Returns (frames written, bytes consumed, locked).

    In lock every header within [min_len, max_len] is taken. Out of lock (stream start,
    after garbage) a header announcing exactly ``frame_length`` is taken; one announcing
    another length in the range only when the header right after its frame is valid
    too (or the frame ends the data at hand: then wait); otherwise one byte is skipped
    as garbage (hunting)."""
    n = buf.shape[0]
    nout = 0
    i = 0
    while i + header <= n:
        length = 0
        for h in range(header):
            length = (length << 8) | int(buf[i + h])
        if includes_header:
            length -= header
        if length < min_len or length > max_len:
            counts[_GARBAGE] += 1
            i += 1
            locked = False
            continue
        end = i + header + length
        if end > n:
            break
        if not locked and length != frame_length:
            if end + header > n:
                break          # cannot verify yet: wait for the next read
            nxt = 0
            for h in range(header):
                nxt = (nxt << 8) | int(buf[end + h])
            if includes_header:
                nxt -= header
            if nxt < min_len or nxt > max_len:
                counts[_GARBAGE] += 1
                i += 1
                continue
        locked = True
        if length == frame_length:
            for k in range(length):
                out[nout * frame_length + k] = buf[i + header + k]
            nout += 1
            counts[_FRAMES] += 1
        else:
            counts[_WRONG] += 1
        i = end
    return nout, i, locked


class LengthDeframer:
    """A 2- or 4-byte big-endian length before each frame.

    Lengths outside [min_length, max_length] (default: exactly the frame length) are
    not frame headers: the deframer hunts byte by byte, and takes a header again when
    it announces exactly the frame length (a false match in line noise: one chance in
    2^16 per byte with a 2-byte length, 2^32 with 4), or another length in the range
    followed by another valid header."""

    framing = "length"

    def __init__(self, frame_length: int, length_bytes: int = 2, min_length: int | None = None,
                 max_length: int | None = None, includes_header: bool = False):
        if length_bytes not in (2, 4):
            raise ValueError("length_bytes must be 2 or 4")
        self.frame_length = int(frame_length)
        self.header = int(length_bytes)
        self.min_length = int(min_length if min_length is not None else frame_length)
        self.max_length = int(max_length if max_length is not None else frame_length)
        if not 1 <= self.min_length <= self.max_length:
            raise ValueError("need 1 <= min_length <= max_length")
        self.includes_header = bool(includes_header)
        self.counts = _zero_counts()
        self._tail = np.zeros(0, np.uint8)
        self._locked = False

    def push(self, data) -> np.ndarray:
        data = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data
        buf = np.concatenate([self._tail, data]) if self._tail.size else data
        out = np.empty((buf.size // (self.frame_length + self.header) + 1) * self.frame_length, np.uint8)
        nout, consumed, self._locked = _length_scan(buf, self._locked, self.header, self.includes_header,
                                                    self.min_length, self.max_length, self.frame_length,
                                                    out, self.counts)
        self._tail = buf[consumed:].copy()
        return out[: nout * self.frame_length]

    def end_stream(self) -> None:
        if self._tail.size:
            if self._locked and self._tail.size >= self.header:
                self.counts[_CUT] += 1
            else:
                self.counts[_GARBAGE] += self._tail.size
        self._tail = np.zeros(0, np.uint8)
        self._locked = False


def length_encode(frames: np.ndarray, length_bytes: int = 2, includes_header: bool = False) -> bytes:
    frames = np.ascontiguousarray(frames, np.uint8)
    n, length = frames.shape
    value = length + (length_bytes if includes_header else 0)
    head = np.array([(value >> (8 * (length_bytes - 1 - k))) & 0xFF for k in range(length_bytes)], np.uint8)
    out = np.empty((n, length_bytes + length), np.uint8)
    out[:, :length_bytes] = head
    out[:, length_bytes:] = frames
    return out.tobytes()


# -- raw -----------------------------------------------------------------------------------------
class RawDeframer:
    """A hard-bit CADU stream: bytes pass through (the core finds sync)."""

    framing = "raw"

    def __init__(self, *args, **kwargs):
        self.counts = _zero_counts()

    def push(self, data) -> np.ndarray:
        return np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data

    def end_stream(self) -> None:
        pass


def counts_dict(counts: np.ndarray) -> dict:
    return {k: int(v) for k, v in zip(COUNT_KEYS, counts)}


def make_deframer(framing: str, frame_length: int | None = None, **options):
    """The deframer a profile's ``framing`` names."""
    if framing == "raw":
        return RawDeframer()
    if frame_length is None:
        raise ValueError(f"framing {framing!r} needs the mission's frame length")
    if framing == "kiss":
        return KissDeframer(frame_length, port=options.get("kiss_port", 0))
    if framing == "length":
        return LengthDeframer(frame_length, length_bytes=options.get("length_bytes", 2),
                              min_length=options.get("min_length"), max_length=options.get("max_length"),
                              includes_header=options.get("length_includes_header", False))
    raise ValueError(f"framing must be one of {', '.join(FRAMINGS)}, not {framing!r}")


def kind_of(framing: str) -> str:
    """The chunk kind a framing delivers."""
    return "bits" if framing == "raw" else "frames"
