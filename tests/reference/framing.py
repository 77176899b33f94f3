"""Slow, obviously-correct pure-Python deframers: the references the numba kernels are tested against."""
from __future__ import annotations

FEND, FESC, TFEND, TFESC = 0xC0, 0xDB, 0xDC, 0xDD


def kiss_reference(stream: bytes, frame_length: int, port: int = 0, stream_ends: bool = True):
    """Whole stream at once -> (frames, counts) with the same counting rules as KissDeframer."""
    counts = dict(frames=0, wrong_length=0, cut=0, bad_escape=0, other_command=0, garbage_bytes=0, oversize=0)
    frames = []
    first = stream.find(bytes([FEND]))
    if first < 0:
        counts["garbage_bytes"] += len(stream)
        return frames, counts
    counts["garbage_bytes"] += first
    parts = stream[first + 1:].split(bytes([FEND]))
    tail = parts.pop()            # after the last FEND: not a closed frame
    for seg in parts:
        if not seg:
            continue
        out = bytearray()
        bad = False
        k = 0
        while k < len(seg):
            b = seg[k]
            if b == FESC:
                nxt = seg[k + 1] if k + 1 < len(seg) else None
                if nxt == TFEND:
                    out.append(FEND)
                elif nxt == TFESC:
                    out.append(FESC)
                else:
                    bad = True
                    break
                k += 2
            else:
                out.append(b)
                k += 1
        if bad:
            counts["bad_escape"] += 1
            continue
        cmd, body = out[0], bytes(out[1:])
        if cmd & 0x0F or (port >= 0 and cmd >> 4 != port):
            counts["other_command"] += 1
        elif len(body) != frame_length:
            counts["wrong_length"] += 1
        else:
            frames.append(body)
            counts["frames"] += 1
    if stream_ends and tail:
        counts["cut"] += 1
    return frames, counts


def length_reference(stream: bytes, frame_length: int, header: int = 2, min_len=None, max_len=None,
                     includes_header: bool = False, stream_ends: bool = True):
    min_len = frame_length if min_len is None else min_len
    max_len = frame_length if max_len is None else max_len
    counts = dict(frames=0, wrong_length=0, cut=0, bad_escape=0, other_command=0, garbage_bytes=0, oversize=0)
    frames = []

    def length_at(p):
        v = int.from_bytes(stream[p:p + header], "big")
        return v - header if includes_header else v

    i, locked, n = 0, False, len(stream)
    while i + header <= n:
        length = length_at(i)
        if not min_len <= length <= max_len:
            counts["garbage_bytes"] += 1
            i += 1
            locked = False
            continue
        end = i + header + length
        if end > n:
            break
        if not locked and length != frame_length:
            if end + header > n:
                break
            if not min_len <= length_at(end) <= max_len:
                counts["garbage_bytes"] += 1
                i += 1
                continue
        locked = True
        if length == frame_length:
            frames.append(stream[i + header:end])
            counts["frames"] += 1
        else:
            counts["wrong_length"] += 1
        i = end
    rest = n - i
    if stream_ends and rest:
        if locked and rest >= header:
            counts["cut"] += 1
        else:
            counts["garbage_bytes"] += rest
    return frames, counts
