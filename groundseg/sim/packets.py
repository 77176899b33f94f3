"""Space Packets (CCSDS 133.0-B) of every APID at once: primary headers, CUC/CDS time codes
(301.0-B), and plausible housekeeping in each field of the mission's definition, written
where the decoder reads it (the one placement rule of :mod:`groundseg.mission.definitions`)."""
from __future__ import annotations

import numpy as np

from groundseg.link import packets as pk, timecodes
from groundseg.sim.kernels import put_bits, put_rows
from groundseg.sim.plan import CLOCK_START, SEQ_MODULUS, Apid


def seconds_since_epoch(t: np.ndarray, epoch_iso: str, scale: str | None) -> np.ndarray:
    """UNIX seconds -> the count a time code holds: the inverse of ``timecodes.to_unix``
    (a TAI count from the CCSDS epoch includes the leap seconds)."""
    t = np.asarray(t, np.float64)
    epoch = timecodes.iso_to_unix(epoch_iso)
    if scale is None:
        scale = "tai" if epoch == timecodes.iso_to_unix(timecodes.CCSDS_EPOCH) else "utc"
    if scale == "tai":
        i = np.searchsorted(timecodes._LEAP_UTC, t, side="right") - 1
        t = t + np.where(i >= 0, timecodes._LEAP_DAT[np.maximum(i, 0)], timecodes._LEAP_DAT[0])
    return t - epoch


def time_code_bytes(tc, apid_def, t: np.ndarray) -> np.ndarray:
    """(n, tc.length) uint8: the APID's CUC or CDS time code (301.0-B) of UNIX times ``t``."""
    epoch = getattr(apid_def, "epoch", timecodes.CCSDS_EPOCH) if apid_def is not None else timecodes.CCSDS_EPOCH
    s = seconds_since_epoch(t, epoch, getattr(apid_def, "time_scale", None))
    ccsds = timecodes.iso_to_unix(epoch) == timecodes.iso_to_unix(timecodes.CCSDS_EPOCH)
    if tc.kind == "cuc":
        s = np.mod(s, 256.0 ** tc.coarse)      # short coarse fields wrap, as on board
        return timecodes.encode_cuc(s, tc.coarse, tc.fine, pfield=tc.pfield, code_id=1 if ccsds else 2)
    code = timecodes.encode_cds(s, tc.day_bytes * 8, tc.subms_bytes)
    if tc.pfield:
        # P-field: CDS id 100, epoch (0: 1958, 1: agency), day segment, sub-ms resolution
        p = (0b100 << 4) | ((0 if ccsds else 1) << 3) | ((tc.day_bytes == 3) << 2) | (tc.subms_bytes // 2)
        code = np.concatenate([np.full((code.shape[0], 1), p, np.uint8), code], axis=1)
    return code


def be_bytes(values: np.ndarray, nbytes: int) -> np.ndarray:
    """(n,) unsigned -> (n, nbytes) big-endian (low bytes kept)."""
    b = np.asarray(values, np.uint64).astype(">u8").view(np.uint8).reshape(-1, 8)
    if nbytes <= 8:
        return b[:, 8 - nbytes:]
    return np.concatenate([np.zeros((b.shape[0], nbytes - 8), np.uint8), b], axis=1)


def noise(rng, n: int, scale: float) -> np.ndarray:
    """Cheap zero-mean noise (uniform, standard deviation ``scale``)."""
    return (rng.random(n, dtype=np.float32) - np.float32(0.5)) * np.float32(scale * 3.4641)


#: engineering ranges by unit, so calibrated housekeeping looks like housekeeping
UNIT_RANGES = {"v": (0.0, 40.0), "mv": (0.0, 5000.0), "a": (0.0, 5.0), "ma": (0.0, 2000.0),
               "degc": (-20.0, 45.0), "c": (-20.0, 45.0), "k": (250.0, 320.0), "%": (0.0, 100.0),
               "rpm": (-3000.0, 3000.0), "rad/s": (-0.05, 0.05), "deg/s": (-3.0, 3.0),
               "deg": (-180.0, 180.0), "w": (0.0, 60.0), "pa": (0.0, 2.0e6), "bar": (0.0, 20.0)}


def waveform(rng, kind: str, bits: int, t: np.ndarray, i: np.ndarray, meta=None) -> np.ndarray:
    """Plausible housekeeping values for one field, as raw unsigned ``bits``-bit words.

    ``meta`` (the mission's FieldMeta: units, calibration "poly:a0,a1"): a field with a
    known unit gets a sine within that unit's usual range, mapped back through a linear
    calibration to raw counts; other fields get sines, ramps, counters, modes or flags
    spanning their bit width."""
    n = t.shape[0]
    mask = (1 << bits) - 1 if bits < 64 else (1 << 64) - 1
    shape = rng.integers(4)
    period = rng.uniform(60.0, 5400.0)
    phase = rng.uniform(0, 2 * np.pi)
    # float32 is plenty for a waveform and twice as fast as float64
    wave = np.sin(((t - CLOCK_START) * (2 * np.pi / period) + phase).astype(np.float32))
    units = (getattr(meta, "units", "") or "").strip().lower()
    eng = UNIT_RANGES.get(units)
    if kind == "float":
        lo, hi = eng if eng else (-1.0, 1.0)
        level, amp = lo + (hi - lo) * rng.uniform(0.3, 0.7), (hi - lo) * rng.uniform(0.05, 0.25)
        x = (level + amp * wave + noise(rng, n, amp * 0.01)).astype(np.float64)
        if bits == 16:
            return x.astype(">f2").view(">u2").astype(np.uint64)
        if bits == 32:
            return x.astype(">f4").view(">u4").astype(np.uint64)
        return x.astype(">f8").view(">u8").astype(np.uint64)
    if bits == 1:
        return ((i // int(rng.integers(5, 200))) & 1).astype(np.uint64)
    signed = kind == "int"
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, mask)
    poly = linear_calibration(meta)
    if eng and poly and bits <= 52:
        # a sine in engineering units, turned into counts through the calibration
        a0, a1 = poly
        e_lo, e_hi = eng
        level, amp = e_lo + (e_hi - e_lo) * rng.uniform(0.3, 0.7), (e_hi - e_lo) * rng.uniform(0.05, 0.25)
        x = (level + amp * wave.astype(np.float64) + noise(rng, n, amp * 0.02) - a0) / a1
        v = np.clip(np.rint(x), lo, hi).astype(np.int64)
        return (v.astype(np.uint64) & np.uint64(mask))
    if bits > 52 or shape == 1:      # counters and ramps wrap within the field
        step = int(rng.integers(1, 4))
        start = int(rng.integers(0, 1 << min(bits, 62)))
        return ((start + step * i.astype(np.uint64)) & np.uint64(mask)).astype(np.uint64)
    if shape == 2 and bits <= 8:     # a mode / enum: slowly changing small values
        v = (i // int(rng.integers(20, 500))) % int(rng.integers(2, min(8, 1 << bits) + 1))
        return v.astype(np.uint64)
    mid = (lo + hi) / 2 if not signed else rng.uniform(lo, hi) * 0.2
    amp = (hi - lo) * rng.uniform(0.05, 0.35)
    x = mid + amp * wave.astype(np.float64) + noise(rng, n, amp * 0.02 + 0.3)
    v = np.clip(np.rint(x), lo, hi).astype(np.int64)
    return (v.astype(np.uint64) & np.uint64(mask)) if bits < 64 else v.astype(np.uint64)


def linear_calibration(meta) -> tuple[float, float] | None:
    """(a0, a1) of a "poly:a0,a1" calibration with a1 != 0, else None."""
    cal = getattr(meta, "calibration", None)
    if not cal or not str(cal).lower().startswith("poly:"):
        return None
    try:
        c = [float(x) for x in str(cal)[5:].split(",")]
    except ValueError:
        return None
    if len(c) == 1:
        return None
    if len(c) > 2 and any(c[2:]):
        return None
    return (c[0], c[1]) if c[1] else None


def fill_fields(rng, body: np.ndarray, layout, t, i, meta: dict | None = None) -> dict:
    """Write every field of a fixed-length layout (:func:`groundseg.mission.definitions.layout`)
    into rows of ``body`` (the whole packet), each element where the decoder reads it.

    Returns {element label ("name" or "name[i]"): raw unsigned words written} (str fields: their bytes)."""
    n = body.shape[0]
    written = {}
    for e in layout.elements:
        f = layout.fields[e.field]
        name, dtype, bits, off, order = e.label(layout.fields), f.data_type, e.bit_length, e.bit_offset, f.byte_order
        if off < 48 or off + bits > body.shape[1] * 8 or dtype == "fill":
            continue                 # primary header fields, or beyond the packet: not ours
        if dtype == "str":
            nb = bits // 8
            text = np.frombuffer((name.upper().encode() * (nb // max(len(name), 1) + 1))[:nb], np.uint8)
            vals = np.zeros((n, nb), np.uint8)
            vals[:] = text
            if off % 8 == 0:
                body[:, off // 8: off // 8 + nb] = vals
                written[name] = vals
            continue
        v = waveform(rng, dtype, bits, t, i, (meta or {}).get(f.name))
        written[name] = v
        if off % 8 == 0 and bits % 8 == 0:
            nb = bits // 8
            be = be_bytes(v, nb)
            if order == "little":
                be = be[:, ::-1]
            elif order not in ("big", None) and order.isdigit():
                be = be[:, [int(d) - 1 for d in order]]
            body[:, off // 8: off // 8 + nb] = be
        else:
            put_bits(body, np.ascontiguousarray(v, np.uint64), np.int64(off), np.int64(bits))
    return written


def make_packets(rng, a: Apid, n: int, times: np.ndarray, seq0: int):
    """All ``n`` packets of one APID: (flat uint8, lengths int64)."""
    tc = a.time_code
    sec_hdr = 1 if tc is not None or a.definition is not None else 0
    if a.length is not None:
        lengths = np.full(n, a.length, np.int64)
        body = np.zeros((n, a.length), np.uint8)
        if a.layout is not None:
            fill_fields(rng, body, a.layout, times, np.arange(n), getattr(a.apid_def, "fields", None))
        flat = body.reshape(-1)
    else:
        lo = max(7 if tc is None else tc.offset + tc.length + 1, a.mean_length // 2)
        hi = max(lo + 1, a.mean_length * 3 // 2)
        lengths = rng.integers(lo, hi + 1, n).astype(np.int64)
        flat = rng.integers(0, 256, int(lengths.sum()), dtype=np.uint8)
    starts = np.zeros(n, np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    hdr = pk.pack_primary_headers(a.apid, (seq0 + np.arange(n)) % SEQ_MODULUS, lengths - 7, sec_hdr=sec_hdr)
    put_rows(flat, starts, hdr)
    if tc is not None:
        code = time_code_bytes(tc, a.apid_def, times)
        put_rows(flat, starts + tc.offset, np.ascontiguousarray(code))
    return flat, lengths
