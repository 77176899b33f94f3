"""What a capture contains, without a mission file (CCSDS 131.0-B, 132.0-B, 732.0-B, 133.0-B).

`groundseg inspect CAPTURE` reads the first few megabytes and reports:
whether the ASM is there (at which bit offset, which polarity, how far apart:
the CADU length), the coding that makes the frame headers consistent
(Reed-Solomon interleave and check symbols, de-randomised or not), or, with no
marker, whether the file is frames back to back (the version number and SCID of
one frame type repeating at a fixed period, whatever the virtual channel) or a
Space Packet stream; then the frame type, SCIDs and VCIDs seen and the first
frame headers. Something that is not a capture (a WAV recording, text, an HDF5
file) is named as such. Marker matches count as CADUs only when several are
evenly spaced or a codeblock between two of them is Reed-Solomon valid: in a few
megabytes of anything, two chance near-matches of a 32-bit marker are expected.

:func:`describe_failure` puts what was found in one line, for a replay that
decoded nothing.
"""
from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path

import numpy as np

from groundseg.coding import randomizer, reed_solomon, sync
from groundseg.link.frame_types import FRAME_TYPES

SAMPLE_BYTES = 4 << 20
MAX_CODEBLOCKS = 64
#: shortest and longest frame a capture of frames back to back is searched for (bytes)
MIN_FRAME, MAX_FRAME = 64, 2048
#: markers at one spacing that make a capture CADUs without an RS-valid codeblock
MIN_EVEN_MARKERS = 3
ASM_BITS = 32
_ROWS_EXAMINED = 256


def _frame_type_of(frames: np.ndarray):
    """The frame type whose version number field most rows carry, and the share of rows."""
    best, share = None, 0.0
    for ft in FRAME_TYPES.values():
        s = float(ft.versions_match(frames).mean()) if len(frames) else 0.0
        if s > share:
            best, share = ft, s
    return best, share


def _header_summary(frames: np.ndarray) -> dict:
    """Decide the frame type from the version field and describe the headers."""
    if frames.shape[0] == 0:
        return {}
    out: dict = {"frames_examined": int(frames.shape[0])}
    ft, share = _frame_type_of(frames)
    if ft is None:
        version = Counter((frames[:, 0] >> 6).tolist()).most_common(1)[0][0]
        out["frame_type"] = f"unknown (version field {version})"
        return out
    h = ft.decode_header(frames)
    out["frame_type"] = f"{ft.name} ({ft.standard.removeprefix('CCSDS ')})"
    good = ft.versions_match(frames)
    out["consistent_version"] = f"{int(good.sum())} of {len(good)}"
    out["spacecraft_ids"] = dict(Counter(h["scid"][good].tolist()).most_common(8))
    out["virtual_channels"] = dict(sorted(Counter(h["vcid"][good].tolist()).items()))
    out["first_headers"] = [{k: int(h[k][i]) for k in ft.summary_fields if k in h}
                            for i in range(min(5, len(frames)))]
    return out


def _score(frames: np.ndarray) -> float:
    """How much the frames look like one spacecraft's transfer frames: the share of rows with
    one frame type's version number and the same SCID."""
    if frames.shape[0] == 0:
        return 0.0
    best = 0.0
    for ft in FRAME_TYPES.values():
        ok = ft.versions_match(frames)
        if not ok.any():
            continue
        ids = ft.master_channel_ids(frames)[ok]
        best = max(best, Counter(ids.tolist()).most_common(1)[0][1] / len(frames))
    return best


def _coding_candidates(codeblock_length: int):
    for parity in (32, 16):
        for interleave in (1, 2, 3, 4, 5, 8):
            n = codeblock_length // interleave
            if codeblock_length % interleave == 0 and parity < n <= 255:
                yield parity, interleave
    yield 0, 1


def _guess_coding(blocks: np.ndarray) -> dict:
    """Try every RS layout, both bases, randomised or not; keep the one whose frames look right."""
    best = {"score": -1.0}
    for parity, interleave in _coding_candidates(blocks.shape[1]):
        for randomized in (True, False):
            src = randomizer.randomize(blocks) if randomized else blocks
            for dual in ((True, False) if parity else (True,)):
                if parity:
                    frames, corr = reed_solomon.decode(src, interleave=interleave, parity=parity,
                                                       dual_basis=dual)
                    ok = float((corr >= 0).all(axis=1).mean())
                else:
                    frames, ok = src, 0.0
                score = _score(frames) + ok
                if score > best["score"] + 1e-9:
                    best = {"score": score, "parity": parity, "interleave": interleave,
                            "randomized": randomized, "dual_basis": dual, "rs_ok": ok, "frames": frames}
    return best


def _packet_stream(data: np.ndarray, whole_file: bool) -> dict | None:
    """Walk the bytes as back-to-back Space Packets; a stream is one that the walk consumes
    (a single packet counts only when it is the whole file)."""
    pos, n, apids = 0, 0, Counter()
    while pos + 6 <= data.size and n < 100_000:
        if data[pos] >> 5 != 0:
            break
        length = (int(data[pos + 4]) << 8 | int(data[pos + 5])) + 7
        apids[(int(data[pos]) & 7) << 8 | int(data[pos + 1])] += 1
        pos += length
        n += 1
    if n >= 2 and pos >= min(data.size, SAMPLE_BYTES) - 65542 and pos <= data.size + 65542:
        return {"packets": n, "apids": dict(sorted(apids.items()))}
    if n == 1 and whole_file and pos == data.size:
        return {"packets": 1, "apids": dict(apids)}
    return None


def _rows(data: np.ndarray, period: int) -> np.ndarray:
    rows = min(data.size // period, _ROWS_EXAMINED)
    return data[: rows * period].reshape(rows, period)


def _period_matches(data: np.ndarray, period: int, whole_file: bool, ft) -> bool:
    """Rows of ``period`` bytes share one master channel (version + SCID) of ``ft``: 90 % of
    them with four rows or more; with two or three, all of them and the file is a whole
    number of rows (so a chance match of a dozen bits needs a divisor of the file size)."""
    rows = _rows(data, period)
    n = len(rows)
    if n < 2:
        return False
    if n < 4 and not (whole_file and data.size % period == 0 and data.size // period == n):
        return False
    ok = ft.versions_match(rows)
    if not ok.any():
        return False
    if (rows[:, :6] == rows[0, :6]).all():
        return False                 # no counter moves: zero padding, not headers
    dominant = Counter(ft.master_channel_ids(rows)[ok].tolist()).most_common(1)[0][1]
    return dominant == n if n < 4 else dominant >= 0.9 * n


def _frame_period(data: np.ndarray, whole_file: bool = True):
    """Smallest period at which one frame type's version number and SCID repeat (frames back to
    back): (period, frame type), or (period, None) for records whose first 16 bits repeat but
    are no frame type's, or (None, None). A file read whole is first tried at the periods that
    divide its size (a recording of frames is a whole number of them)."""
    if data.size and (data == data[0]).all():
        return None, None            # a constant file repeats at every period
    periods = range(MIN_FRAME, min(MAX_FRAME, data.size // 2) + 1)
    if whole_file:
        periods = [p for p in periods if data.size % p == 0] + [p for p in periods if data.size % p]
    for period in periods:
        for ft in FRAME_TYPES.values():
            if _period_matches(data, period, whole_file, ft):
                return period, ft
    for period in range(MIN_FRAME, min(MAX_FRAME, data.size // 4) + 1):
        rows = _rows(data, period)
        if len(rows) >= 4 and (rows[:, :2] == data[:2]).all(1).mean() > 0.9:
            return period, None
    return None, None


# --- what a file is, when it is not a capture ------------------------------------------------

def _wav(head: bytes) -> dict | None:
    """The RIFF/WAVE header's format (sample rate, channels, bits per sample), or None."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    out: dict = {}
    pos = 12
    while pos + 8 <= len(head):
        cid, size = head[pos:pos + 4], struct.unpack("<I", head[pos + 4:pos + 8])[0]
        if cid == b"fmt " and pos + 24 <= len(head):
            fmt, channels, rate, _, _, bits = struct.unpack("<HHIIHH", head[pos + 8:pos + 24])
            out.update({"sample_rate": rate, "channels": channels, "bits_per_sample": bits,
                        "format": {1: "PCM", 3: "IEEE float", 0xFFFE: "extensible"}.get(fmt, f"code {fmt}")})
        elif cid == b"data":
            out["data_bytes"] = size
            break
        pos += 8 + size + (size & 1)
    return out


def _is_text(data: np.ndarray) -> bool:
    if data.size == 0:
        return False
    sample = data[:65536]
    printable = (sample >= 0x20) & (sample < 0x7F) | np.isin(sample, (0x09, 0x0A, 0x0D))
    if printable.mean() < 0.98:
        try:
            sample.tobytes().decode("utf-8")
        except UnicodeDecodeError:
            return False
        return bool(((sample >= 0x20) | np.isin(sample, (0x09, 0x0A, 0x0D))).mean() > 0.98)
    return True


def _file_kind(data: np.ndarray) -> dict | None:
    """A file that is not a capture, named from its header (None: could be one)."""
    head = data[:4096].tobytes()
    wav = _wav(head)
    if wav is not None:
        return {"contents": "WAV audio (not a capture of bits, frames or packets)", "wav": wav}
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return {"contents": "HDF5 file (an archive? `groundseg inspect` describes one)"}
    return None


def _text(data: np.ndarray) -> dict | None:
    if not _is_text(data):
        return None
    first = data[:200].tobytes().decode("utf-8", "replace").splitlines()
    return {"contents": "text (not a capture)", "first_line": first[0][:80] if first else ""}


# --- sync markers -------------------------------------------------------------------------------

def _codeblocks(data: np.ndarray, pos: np.ndarray, inverted: np.ndarray, length: int,
                asm_bits: int = ASM_BITS) -> np.ndarray:
    """The ``length``-byte codeblocks after the markers at bit positions ``pos`` (complete ones
    only), polarity corrected: bytes gathered and bit-shifted for the whole set at once."""
    start = pos + asm_bits
    keep = start + 8 * length <= data.size * 8
    start, inverted = start[keep], inverted[keep]
    if not len(start):
        return np.zeros((0, length), np.uint8)
    padded = np.concatenate([data, np.zeros(1, np.uint8)])
    idx = (start // 8)[:, None] + np.arange(length + 1)
    w = padded[idx].astype(np.uint16)
    shift = (start % 8).astype(np.uint16)[:, None]
    blocks = (((w[:, :-1] << 8) | w[:, 1:]) >> (8 - shift)).astype(np.uint8)
    blocks[inverted] ^= 0xFF
    return blocks


def _sync(data: np.ndarray, asm: int = sync.CCSDS_ASM, asm_bits: int = ASM_BITS):
    """(what the markers found say: count, offset, polarity, dominant spacing and how many
    are at it; or None without any), bit positions, inverted flags."""
    pos, inv, _ = sync.find_asm(data, asm=asm, max_bit_errors=2, asm_bits=asm_bits)
    if pos.size == 0:
        return None, pos, inv
    info = {"asm": f"{asm:0{asm_bits // 4}X}", "found": int(pos.size), "first_bit": int(pos[0]),
            "bit_offset": int(pos[0] % 8), "inverted": f"{int(inv.sum())} of {pos.size}"}
    if pos.size < 2:
        return info, pos, inv
    diffs = np.diff(pos)
    spacing = int(Counter(diffs.tolist()).most_common(1)[0][0])
    even = int((diffs == spacing).sum()) + 1          # markers in runs at that spacing
    info.update({"spacing_bits": spacing, "at_that_spacing": even})
    return info, pos, inv


def inspect_capture(source: str | Path | bytes | np.ndarray, sample_bytes: int = SAMPLE_BYTES,
                    asm: int = sync.CCSDS_ASM, asm_bits: int = ASM_BITS) -> dict:
    """What ``source`` (a path, or the bytes themselves) holds: a dict for ``groundseg inspect``.
    ``asm``/``asm_bits``: the attached sync marker searched for (CCSDS 131.0-B's by default)."""
    if isinstance(source, (bytes, bytearray, memoryview, np.ndarray)):
        raw = np.frombuffer(bytes(source), np.uint8) if not isinstance(source, np.ndarray) \
            else np.ascontiguousarray(source, np.uint8).ravel()
        size = raw.size
        data = raw[:sample_bytes]
        info: dict = {"capture": "<bytes>", "size_bytes": int(size), "examined_bytes": int(data.size)}
    else:
        path = Path(source)
        with open(path, "rb") as f:
            data = np.frombuffer(f.read(sample_bytes), np.uint8)
        size = path.stat().st_size
        info = {"capture": str(path), "size_bytes": int(size), "examined_bytes": int(data.size)}
    whole_file = data.size == size
    if data.size == 0:
        info["contents"] = "empty"
        return info
    kind = _file_kind(data)
    if kind is not None:
        info.update(kind)
        return info
    if (data == data[0]).all():
        info["contents"] = "unrecognised: " + _unrecognised_reason(data, None)
        return info
    markers, pos, inv = _sync(data, asm, asm_bits) if not _is_text(data) else (None, None, None)
    if markers is not None:
        info["sync_marker"] = markers
        cadu_bits = markers.get("spacing_bits", 0)
        if cadu_bits % 8 == 0 and cadu_bits > asm_bits:
            cb_len = cadu_bits // 8 - asm_bits // 8
            diffs = np.diff(pos)
            on = np.zeros(pos.size, bool)            # markers followed or preceded at the spacing
            on[:-1] |= diffs == cadu_bits
            on[1:] |= diffs == cadu_bits
            blocks = _codeblocks(data, pos[on], inv[on], cb_len, asm_bits)[:MAX_CODEBLOCKS]
            g = _guess_coding(blocks) if len(blocks) else None
            rs_valid = g is not None and g["parity"] and g["rs_ok"] > 0
            if g is not None and (rs_valid or markers["at_that_spacing"] >= MIN_EVEN_MARKERS):
                info["contents"] = "CADUs (hard bits)"
                info["cadu_length"] = cadu_bits // 8
                frames = g.pop("frames")
                g.pop("score")
                if g["parity"]:
                    k = 255 - g["parity"]
                    g["reed_solomon"] = f"255,{k}"
                    g["virtual_fill"] = k - cb_len // g["interleave"] + g["parity"]
                    g["frame_length"] = cb_len - g["parity"] * g["interleave"]
                else:
                    g["reed_solomon"] = "none"
                    g["frame_length"] = cb_len
                g.pop("parity")
                info["coding"] = g
                info.update(_header_summary(frames))
                return info
    stream = _packet_stream(data, whole_file)
    if stream is not None:
        info["contents"] = "Space Packet stream (133.0-B)"
        info.update(stream)
        return info
    text = _text(data)
    if text is not None:
        info.update(text)
        return info
    period, ft = _frame_period(data, whole_file)
    if period is not None:
        rows = data.size // period
        info["frame_length"] = period
        if ft is not None:
            info["contents"] = "transfer frames back to back (no marker)"
            info.update(_header_summary(data[: rows * period].reshape(rows, period)))
        else:
            info["contents"] = "fixed-length records with a repeating header, no TM or AOS version field"
            info.update(_header_summary(data[: rows * period].reshape(rows, period)))
        return info
    info["contents"] = "unrecognised: " + _unrecognised_reason(data, markers)
    return info


def _unrecognised_reason(data: np.ndarray, markers: dict | None) -> str:
    if data.size and (data == data[0]).all():
        return f"every byte is 0x{int(data[0]):02X}"
    if markers is None:
        what = "no sync marker at any bit offset"
    elif "spacing_bits" not in markers:
        what = "one sync marker match (by chance: no second one)"
    else:
        what = (f"{markers['found']} sync marker matches but no CADUs: at most {markers['at_that_spacing']} "
                f"of them {markers['spacing_bits']} bits apart and no Reed-Solomon valid codeblock "
                f"(chance matches)")
    return what + ", no packet stream, no repeating frame header"


def describe_failure(source: str | Path | bytes | np.ndarray, expected_codeblock_length: int | None = None,
                     asm_bits: int = ASM_BITS, asm: int = sync.CCSDS_ASM) -> str:
    """One line on what a capture that decoded nothing looks like, for the operator: what it
    is instead (WAV, text, a packet stream, frames without markers), or the sync marker
    spacing seen against the one ``expected_codeblock_length`` (bytes after the marker)
    implies, or that no marker was found at any bit offset."""
    info = inspect_capture(source, asm=asm, asm_bits=asm_bits)
    contents = info.get("contents", "")
    expected = (f"{expected_codeblock_length * 8 + asm_bits} bits apart ({expected_codeblock_length}-byte "
                f"codeblocks)" if expected_codeblock_length else None)
    if contents == "empty":
        return "the capture is empty"
    if "wav" in info:
        w = info["wav"]
        return (f"a WAV audio file ({w.get('sample_rate', '?')} Hz, {w.get('channels', '?')} channel(s), "
                f"{w.get('bits_per_sample', '?')}-bit {w.get('format', '')}), not a capture of bits, "
                f"frames or packets: demodulate it first")
    if contents.startswith("text"):
        return f"a text file, not a capture (first line: {info.get('first_line', '')!r})"
    if contents.startswith("HDF5"):
        return "an HDF5 file, not a capture (an archive? `groundseg inspect` describes one)"
    if contents.startswith("CADUs"):
        seen = info["sync_marker"]["spacing_bits"]
        line = f"sync markers {seen} bits apart ({info['cadu_length'] - asm_bits // 8}-byte codeblocks)"
        if expected and seen != expected_codeblock_length * 8 + asm_bits:
            return line + f", but the mission expects them {expected}"
        c = info.get("coding", {})
        return (line + f" as the mission expects; the coding that fits is RS {c.get('reed_solomon')} "
                f"I={c.get('interleave')}, {'randomised' if c.get('randomized') else 'not randomised'}, "
                f"{info.get('frame_type', 'no frame type')}, SCIDs {list(info.get('spacecraft_ids', {}))}")
    if contents.startswith("Space Packet"):
        return (f"a Space Packet stream ({info['packets']} packets, APIDs {list(info['apids'])}) with no sync "
                f"marker: replay it at level \"packets\"")
    if contents.startswith("transfer frames"):
        return (f"{info.get('frame_type', '')} transfer frames of {info['frame_length']} bytes back to back, "
                f"no sync marker (SCIDs {list(info.get('spacecraft_ids', {}))}): replay it at level \"frames\"")
    if contents.startswith("fixed-length"):
        return f"{info['frame_length']}-byte records with a repeating header but no TM or AOS version field"
    line = contents.removeprefix("unrecognised: ")
    m = info.get("sync_marker")
    if expected and m and "spacing_bits" in m:
        line += f"; the mission expects markers {expected}"
    return "nothing recognised: " + line
