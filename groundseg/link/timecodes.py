"""CCSDS time codes (CCSDS 301.0-B-4): CUC (unsegmented) and CDS (day segmented), decoded
and encoded vectorised over a 2-D array of time-code bytes, plus the insert-zone time
stamps some AOS missions use.

Decoders return float64 seconds since the code's epoch; :func:`to_unix` turns them into
UNIX seconds (UTC). The CCSDS level-1 epoch is 1958-01-01T00:00:00 TAI and such a code
counts TAI seconds; by default (``scale="tai"`` for the CCSDS epoch) :func:`to_unix`
subtracts TAI-UTC from the leap-second table below (10 s before 1972, the value at the
start of the UTC leap-second era, then the IERS table up to 37 s from 2017-01-01; later
announcements need a new line). Agency-defined epochs given as ISO strings are taken as
UTC and no leap seconds are applied (UNIX time ignores them too); pass ``scale`` to choose.

Spec strings: ``"cuc:C,F"`` (C coarse octets 1..7, F fine octets 0..10, no P-field),
``"cuc"`` (the P-field precedes the T-field and says C and F), ``"cds:D"`` or
``"cds:D,S"`` (D = 16 or 24 bit day segment, S = 0, 2 (µs) or 4 (ps) sub-millisecond
octets), ``"cds"`` (= ``"cds:16"``).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

CCSDS_EPOCH = "1958-01-01T00:00:00Z"
_EPOCH_1958_UNIX = -378691200.0

#: (UTC date of introduction, TAI - UTC from then on)
LEAP_SECONDS = (
    ("1972-01-01", 10), ("1972-07-01", 11), ("1973-01-01", 12), ("1974-01-01", 13),
    ("1975-01-01", 14), ("1976-01-01", 15), ("1977-01-01", 16), ("1978-01-01", 17),
    ("1979-01-01", 18), ("1980-01-01", 19), ("1981-07-01", 20), ("1982-07-01", 21),
    ("1983-07-01", 22), ("1985-07-01", 23), ("1988-01-01", 24), ("1990-01-01", 25),
    ("1991-01-01", 26), ("1992-07-01", 27), ("1993-07-01", 28), ("1994-07-01", 29),
    ("1996-01-01", 30), ("1997-07-01", 31), ("1999-01-01", 32), ("2006-01-01", 33),
    ("2009-01-01", 34), ("2012-07-01", 35), ("2015-07-01", 36), ("2017-01-01", 37),
)


def iso_to_unix(iso: str) -> float:
    """ISO 8601 date-time (UTC if no zone is given) -> UNIX seconds."""
    try:
        t = datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    except ValueError as e:
        raise ValueError(f"not an ISO 8601 date-time: {iso!r}") from e
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.timestamp()


_LEAP_UTC = np.array([iso_to_unix(d) for d, _ in LEAP_SECONDS])
_LEAP_DAT = np.array([s for _, s in LEAP_SECONDS], np.float64)
_LEAP_TAI = _LEAP_UTC + _LEAP_DAT


def tai_minus_utc(tai_unix: np.ndarray) -> np.ndarray:
    """TAI - UTC (s) at instants given as TAI seconds counted from 1970-01-01T00:00:00 UTC."""
    t = np.asarray(tai_unix, np.float64)
    if t.size > 1:
        # a batch of packets nearly always lies between two leap seconds: one lookup
        lo, hi = np.searchsorted(_LEAP_TAI, [t.min(), t.max()], side="right") - 1
        if lo == hi and np.isfinite(t.min()) and np.isfinite(t.max()):
            return np.full(t.shape, _LEAP_DAT[max(int(lo), 0)])
    i = np.searchsorted(_LEAP_TAI, t, side="right") - 1
    return np.where(i >= 0, _LEAP_DAT[np.maximum(i, 0)], _LEAP_DAT[0])


def to_unix(seconds, epoch_iso: str = CCSDS_EPOCH, scale: str | None = None) -> np.ndarray:
    """Seconds since ``epoch_iso`` -> UNIX seconds (UTC).

    ``scale``: "tai" (the count includes leap seconds: TAI-UTC is subtracted) or "utc";
    default "tai" for the CCSDS epoch 1958-01-01 and "utc" for any other epoch.
    """
    s = np.asarray(seconds, np.float64)
    epoch = iso_to_unix(epoch_iso)
    if scale is None:
        scale = "tai" if epoch == _EPOCH_1958_UNIX else "utc"
    if scale == "utc":
        return epoch + s
    if scale != "tai":
        raise ValueError(f"scale must be 'tai' or 'utc', got {scale!r}")
    tai = epoch + s
    return tai - tai_minus_utc(tai)


def _be_int(b: np.ndarray) -> np.ndarray:
    """(n, k) big-endian bytes -> (n,) int64 (k <= 8; k = 8 must not overflow)."""
    v = np.zeros(b.shape[0], np.int64)
    for k in range(b.shape[1]):
        v = (v << 8) | b[:, k].astype(np.int64)
    return v


def _bytes2d(codes) -> np.ndarray:
    a = np.asarray(codes)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.dtype != np.uint8:
        raise ValueError("time codes must be a 2-D uint8 array, one code per row")
    return a


def parse_spec(spec: str) -> tuple[str, tuple[int, ...]]:
    """"cuc:4,2" -> ("cuc", (4, 2)); "cuc" -> ("cuc", ()); "cds:24,2" -> ("cds", (24, 2))."""
    kind, _, args = str(spec).strip().lower().partition(":")
    try:
        nums = tuple(int(x) for x in args.split(",")) if args else ()
    except ValueError as e:
        raise ValueError(f"bad time code spec {spec!r}") from e
    if kind == "cuc":
        if nums and (len(nums) != 2 or not 1 <= nums[0] <= 7 or not 0 <= nums[1] <= 10):
            raise ValueError(f"bad CUC spec {spec!r}: want 'cuc:C,F' with C in 1..7, F in 0..10")
    elif kind == "cds":
        nums = nums or (16,)
        if len(nums) == 1:
            nums = (nums[0], 0)
        if len(nums) != 2 or nums[0] not in (16, 24) or nums[1] not in (0, 2, 4):
            raise ValueError(f"bad CDS spec {spec!r}: want 'cds:16|24[,0|2|4]'")
    else:
        raise ValueError(f"unknown time code {spec!r}: 'cuc...' or 'cds...'")
    return kind, nums


def spec_length(spec: str) -> int | None:
    """Bytes of a code of this spec, None when a P-field decides."""
    kind, nums = parse_spec(spec)
    if kind == "cuc":
        return sum(nums) if nums else None
    return nums[0] // 8 + 4 + nums[1]


def decode_cuc(codes, coarse: int, fine: int) -> np.ndarray:
    """T-field only: (n, coarse + fine) bytes -> seconds (coarse + fine / 256^fine)."""
    b = _bytes2d(codes)
    if b.shape[1] < coarse + fine:
        raise ValueError(f"CUC with {coarse}+{fine} octets needs {coarse + fine} bytes, got {b.shape[1]}")
    c = _be_int(b[:, :coarse]).astype(np.float64)
    if fine == 0:
        return c
    # fine octets beyond 6 are below float64 resolution; keep the first 6 exact
    f = _be_int(b[:, coarse:coarse + min(fine, 6)]).astype(np.float64) / float(256 ** min(fine, 6))
    return c + f


def decode_cuc_pfield(codes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """P-field + T-field. Returns (seconds, coarse octets, fine octets, time code id) per row;
    rows whose P-field is not CUC (id 001 or 010) or whose code overruns the row give NaN."""
    b = _bytes2d(codes)
    n, width = b.shape
    p1 = b[:, 0].astype(np.int64)
    ext = (p1 >> 7) & 1
    code_id = (p1 >> 4) & 7
    coarse = ((p1 >> 2) & 3) + 1
    fine = p1 & 3
    if width > 1:
        p2 = np.where(ext == 1, b[:, 1].astype(np.int64), 0)
        coarse = coarse + ((p2 >> 5) & 3)
        fine = fine + ((p2 >> 2) & 7)
    plen = 1 + ext
    out = np.full(n, np.nan)
    valid = np.isin(code_id, (1, 2)) & (plen + coarse + fine <= width)
    for c, f, p in set(zip(coarse[valid].tolist(), fine[valid].tolist(), plen[valid].tolist())):
        rows = valid & (coarse == c) & (fine == f) & (plen == p)
        out[rows] = decode_cuc(b[rows, p:p + c + f], c, f)
    return out, coarse.astype(np.int8), fine.astype(np.int8), code_id.astype(np.int8)


def decode_cds(codes, day_bits: int = 16, submilli_bytes: int = 0) -> np.ndarray:
    """T-field: days (16/24 b), ms of day (32 b), optional µs (2 bytes) or ps (4 bytes) -> s."""
    b = _bytes2d(codes)
    d = day_bits // 8
    need = d + 4 + submilli_bytes
    if day_bits not in (16, 24) or submilli_bytes not in (0, 2, 4):
        raise ValueError("CDS: day_bits 16 or 24, submilli_bytes 0, 2 or 4")
    if b.shape[1] < need:
        raise ValueError(f"CDS code needs {need} bytes, got {b.shape[1]}")
    days = _be_int(b[:, :d]).astype(np.float64)
    ms = _be_int(b[:, d:d + 4]).astype(np.float64)
    t = days * 86400.0 + ms / 1e3
    if submilli_bytes == 2:
        t = t + _be_int(b[:, d + 4:d + 6]).astype(np.float64) / 1e6
    elif submilli_bytes == 4:
        t = t + _be_int(b[:, d + 4:d + 8]).astype(np.float64) / 1e12
    return t


def decode(codes, spec: str) -> np.ndarray:
    """Seconds since the code's epoch for every row, by spec string (see module docstring)."""
    kind, nums = parse_spec(spec)
    if kind == "cuc":
        return decode_cuc(codes, *nums) if nums else decode_cuc_pfield(codes)[0]
    return decode_cds(codes, *nums)


# --- encoders --------------------------------------------------------------------------

def _int_be(v: np.ndarray, k: int) -> np.ndarray:
    v = np.asarray(v, np.int64)
    out = np.empty((v.shape[0], k), np.uint8)
    for j in range(k):
        out[:, k - 1 - j] = (v >> (8 * j)) & 0xFF
    return out


def encode_cuc(seconds, coarse: int = 4, fine: int = 2, pfield: bool = False, code_id: int = 1) -> np.ndarray:
    """(n, [P +] coarse + fine) uint8; fine part rounded down. ``code_id`` 1: CCSDS epoch, 2: agency."""
    s = np.atleast_1d(np.asarray(seconds, np.float64))
    if not 1 <= coarse <= 7 or not 0 <= fine <= 10:
        raise ValueError("CUC: coarse 1..7, fine 0..10 octets")
    if (s < 0).any() or (s >= 256.0 ** coarse).any():
        raise ValueError(f"seconds outside what {coarse} coarse octets hold")
    c = np.floor(s).astype(np.int64)
    fk = min(fine, 6)
    f = np.floor((s - c) * 256.0 ** fk).astype(np.int64)
    t = np.concatenate([_int_be(c, coarse), _int_be(f, fk), np.zeros((len(s), fine - fk), np.uint8)], axis=1)
    if not pfield:
        return t
    c1, f1 = min(coarse, 4), min(fine, 3)
    ext = coarse > 4 or fine > 3
    p = [(int(ext) << 7) | (code_id << 4) | ((c1 - 1) << 2) | f1]
    if ext:
        p.append(((coarse - c1) << 5) | ((fine - f1) << 2))
    return np.concatenate([np.tile(np.array(p, np.uint8), (len(s), 1)), t], axis=1)


def encode_cds(seconds, day_bits: int = 16, submilli_bytes: int = 0) -> np.ndarray:
    """(n, day_bits/8 + 4 + submilli_bytes) uint8 CDS T-fields."""
    s = np.atleast_1d(np.asarray(seconds, np.float64))
    if day_bits not in (16, 24) or submilli_bytes not in (0, 2, 4):
        raise ValueError("CDS: day_bits 16 or 24, submilli_bytes 0, 2 or 4")
    # round once at the finest resolution, then split (avoids 3723.004 s -> 3723003 ms)
    per_ms = {0: 1, 2: 1000, 4: 1_000_000_000}[submilli_bytes]
    per_day = 86_400_000 * per_ms
    days = np.floor(s / 86400.0).astype(np.int64)
    units = np.round((s - days * 86400.0) * 1e3 * per_ms).astype(np.int64)
    carry = units >= per_day
    days = days + carry
    units = units - carry * per_day
    if (days < 0).any() or (days >= (1 << day_bits)).any():
        raise ValueError(f"seconds outside what a {day_bits}-bit day segment holds")
    parts = [_int_be(days, day_bits // 8), _int_be(units // per_ms, 4)]
    if submilli_bytes:
        parts.append(_int_be(units % per_ms, submilli_bytes))
    return np.concatenate(parts, axis=1)


@dataclass
class InsertZoneTime:
    """A time stamp read from each frame's insert zone -> UNIX seconds (UTC).

    Either a plain counter (``length`` bytes at ``offset``, ``byteorder``, value * ``unit``
    seconds since ``epoch``) or a CCSDS code (``code`` = a spec string of this module,
    e.g. "cuc:4,2", since ``epoch``, default the CCSDS epoch).
    """
    offset: int = 0
    length: int | None = None
    byteorder: str = "big"
    unit: float = 1.0
    epoch: str | None = None
    code: str | None = None
    scale: str | None = None

    def __post_init__(self):
        if self.offset < 0:
            raise ValueError("insert_zone_time offset must be >= 0")
        if self.code is not None:
            n = spec_length(self.code)
            if n is None:
                raise ValueError("insert_zone_time code needs a fixed length (no P-field)")
            if self.length is not None and self.length != n:
                raise ValueError(f"insert_zone_time length {self.length} != {n} bytes of {self.code}")
            self.length = n
            if self.epoch is None:
                self.epoch = CCSDS_EPOCH
        else:
            if self.length is None or not 1 <= self.length <= 8:
                raise ValueError("insert_zone_time length must be 1..8 bytes")
            if self.byteorder not in ("big", "little"):
                raise ValueError("insert_zone_time byteorder is 'big' or 'little'")
            if self.epoch is None:
                self.epoch = "1970-01-01T00:00:00Z"
        iso_to_unix(self.epoch)

    @property
    def end(self) -> int:
        return self.offset + self.length

    def decode(self, zones: np.ndarray) -> np.ndarray:
        z = _bytes2d(zones)
        b = z[:, self.offset:self.end]
        if self.code is not None:
            return to_unix(decode(b, self.code), self.epoch, self.scale)
        if self.byteorder == "little":
            b = b[:, ::-1]
        raw = _be_int(b)
        if self.length == 8:
            raw = raw.view(np.uint64)
        return to_unix(raw.astype(np.float64) * self.unit, self.epoch, self.scale or "utc")
