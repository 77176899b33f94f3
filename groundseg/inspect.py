"""What a capture contains, without a mission file (CCSDS 131.0-B, 132.0-B, 732.0-B, 133.0-B).

`groundseg inspect CAPTURE` reads the first few megabytes and reports:
whether the ASM is there (at which bit offset, which polarity, how far apart:
the CADU length), the coding that makes the frame headers consistent
(Reed-Solomon interleave and check symbols, de-randomised or not), or, with no
marker, whether the file is frames back to back (a constant header repeating
at a fixed period) or a Space Packet stream; then the frame type, SCIDs and
VCIDs seen and the first frame headers.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from groundseg.coding import randomizer, reed_solomon, sync
from groundseg.link import aos, tm

SAMPLE_BYTES = 4 << 20
MAX_CODEBLOCKS = 64


def _header_summary(frames: np.ndarray) -> dict:
    """Decide TM vs AOS from the version field and describe the headers."""
    if frames.shape[0] == 0:
        return {}
    version = frames[:, 0] >> 6
    kind = Counter(version.tolist()).most_common(1)[0][0]
    out: dict = {"frames_examined": int(frames.shape[0])}
    if kind == 0:
        h = tm.decode_primary_header(frames)
        out["frame_type"] = "TM (132.0-B)"
        keys = ("scid", "vcid", "mcfc", "vcfc", "fhp")
    elif kind == 1:
        h = aos.decode_primary_header(frames)
        out["frame_type"] = "AOS (732.0-B)"
        keys = ("scid", "vcid", "vcfc")
    else:
        out["frame_type"] = f"unknown (version field {kind})"
        return out
    good = version == kind
    out["consistent_version"] = f"{int(good.sum())} of {len(good)}"
    out["spacecraft_ids"] = dict(Counter(h["scid"][good].tolist()).most_common(8))
    out["virtual_channels"] = dict(sorted(Counter(h["vcid"][good].tolist()).items()))
    out["first_headers"] = [{k: int(h[k][i]) for k in keys if k in h} for i in range(min(5, len(frames)))]
    return out


def _score(frames: np.ndarray) -> float:
    """How much the frames look like one spacecraft's transfer frames: a shared version and SCID."""
    if frames.shape[0] == 0:
        return 0.0
    first = frames[:, 0].astype(np.int32) << 8 | frames[:, 1]
    version = frames[:, 0] >> 6
    if not np.isin(version, (0, 1)).all() and (np.isin(version, (0, 1)).mean() < 0.8):
        return 0.0
    scid_bits = np.where(version == 0, first >> 4 & 0x3FF, first >> 6 & 0xFF)
    return float(Counter(scid_bits.tolist()).most_common(1)[0][1]) / len(frames)


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


def _packet_stream(data: np.ndarray) -> dict | None:
    """Walk the bytes as back-to-back Space Packets; a stream is one that the walk consumes."""
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
    return None


def _frame_period(data: np.ndarray) -> int | None:
    """Smallest period at which the first two header bytes repeat (frames back to back)."""
    head = data[:2].tobytes()
    for period in range(64, min(2048, data.size // 4) + 1):
        rows = data.size // period
        if rows < 4:
            break
        firsts = data[: rows * period].reshape(rows, period)[:, :2]
        if (firsts[:, 0] == data[0]).mean() > 0.9 and (firsts == np.frombuffer(head, np.uint8)).all(1).mean() > 0.9:
            return period
    return None


def inspect_capture(path: str | Path, sample_bytes: int = SAMPLE_BYTES) -> dict:
    path = Path(path)
    with open(path, "rb") as f:
        data = np.frombuffer(f.read(sample_bytes), np.uint8)
    info: dict = {"capture": str(path), "size_bytes": path.stat().st_size, "examined_bytes": int(data.size)}
    if data.size == 0:
        info["contents"] = "empty"
        return info
    pos, inv, err = sync.find_asm(data, max_bit_errors=2)
    if pos.size >= 2:
        spacing = Counter(np.diff(pos).tolist()).most_common(1)[0][0]
        cadu_bits = int(spacing)
        info["sync_marker"] = {"asm": "1ACFFC1D", "found": int(pos.size), "first_bit": int(pos[0]),
                               "bit_offset": int(pos[0] % 8), "inverted": f"{int(inv.sum())} of {pos.size}",
                               "spacing_bits": cadu_bits}
        if cadu_bits % 8 == 0 and cadu_bits > 32:
            info["contents"] = "CADUs (hard bits)"
            info["cadu_length"] = cadu_bits // 8
            cb_len = cadu_bits // 8 - 4
            fs = sync.FrameSync(cb_len, max_bit_errors=2)
            sb = fs.push(data)
            blocks = sb.codeblocks[:MAX_CODEBLOCKS]
            if blocks.shape[0]:
                g = _guess_coding(blocks)
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
    stream = _packet_stream(data)
    if stream is not None:
        info["contents"] = "Space Packet stream (133.0-B)"
        info.update(stream)
        return info
    period = _frame_period(data)
    if period is not None:
        info["contents"] = "transfer frames back to back (no marker)"
        info["frame_length"] = period
        rows = data.size // period
        info.update(_header_summary(data[: rows * period].reshape(rows, period)))
        return info
    info["contents"] = "unrecognised: no sync marker, no packet stream, no repeating frame header"
    return info
