"""Packet fields per APID through ccsdspy definitions, with onboard time (CCSDS 133.0-B, 301.0-B).

A :class:`~groundseg.link.records.PacketBatch` of mixed APIDs is grouped by APID
once (one counting-sort kernel over the bytes and header rows), then each APID's packets are
decoded by its ccsdspy definition in one call per batch, calibrated
(polynomials from the mission's CSV) and timed: the APID's CUC or CDS time code
(301.0-B, decoded by :mod:`groundseg.link.timecodes`, TAI-UTC removed for the
CCSDS 1958 epoch) or its UTC calendar fields (year, day of year, ...) where the
packet carries them, else the frame's insert-zone time, else NaN. APIDs without a definition come back with no fields (archived raw).
Packets whose length differs from their fixed-length definition are refused
and counted under ``packet_length``, never decoded at a wrong stride.
"""
from __future__ import annotations

import logging
import threading
import weakref
from dataclasses import dataclass, field

import numpy as np

from groundseg import _reuse
from groundseg._numba import kernel
from groundseg.link import timecodes
from groundseg.link.records import PacketBatch
from groundseg.mission import definitions
from groundseg.mission.definitions import import_ccsdspy
from groundseg.mission.model import TimeCode, parse_calibration

import_ccsdspy()


@dataclass
class DecodedApid:
    apid: int
    name: str
    packets: PacketBatch                    # this APID's packets only, in reception order
    onboard_time: np.ndarray                # float64 UNIX seconds UTC, NaN where unknown
    fields: dict[str, np.ndarray] = field(default_factory=dict)   # one array per decoded field
    units: dict[str, str] = field(default_factory=dict)
    calibration: dict[str, str] = field(default_factory=dict)
    #: raw counts of the calibrated fields (``fields`` holds the engineering values)
    raw_fields: dict[str, np.ndarray] = field(default_factory=dict)
    #: packets of this APID refused by telemetry decoding, in reception order
    rejected: PacketBatch = field(default_factory=PacketBatch.empty)
    #: why they were refused: {"packet_length": n}
    rejects: dict[str, int] = field(default_factory=dict)


# -- ccsdspy's own warnings (sequence gaps, ...) are counted by the link layer: keep them quiet
_quiet = threading.local()


class _QuietWhileDecoding(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_quiet, "active", False)


_ccsdspy_log = logging.getLogger("ccsdspy")
if not any(isinstance(f, _QuietWhileDecoding) for f in _ccsdspy_log.filters):
    _ccsdspy_log.addFilter(_QuietWhileDecoding())


class _ArrayFile:
    """A read-only file over a uint8 array, so ccsdspy's ``load`` reads it without a copy."""

    def __init__(self, data: np.ndarray):
        self._data = np.ascontiguousarray(data, dtype=np.uint8)
        self._pos = 0

    def read(self, size: int = -1):
        end = self._data.size if size is None or size < 0 else min(self._data.size, self._pos + size)
        out = self._data[self._pos:end]
        self._pos = end
        return out

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = 0) -> int:
        self._pos = pos if whence == 0 else (self._pos + pos if whence == 1 else self._data.size + pos)
        return self._pos


# -- kernels ----------------------------------------------------------------------------

_U1, _U2, _U3, _U4, _U5, _U6, _U7, _U8 = (np.uint64(k) for k in range(1, 9))
_U16, _U24, _U32, _U40, _U48, _U56 = (np.uint64(k) for k in (16, 24, 32, 40, 48, 56))
_FF = np.uint64(0xFF)

@kernel
def _apid_groups(apids, offsets):
    """A counting sort's plan: per APID value a (first row, first byte) once grouped, the
    groups' bounds and APIDs (ascending)."""
    n = apids.shape[0]
    m = 0
    for i in range(n):
        if apids[i] >= m:
            m = np.int64(apids[i]) + 1
    first_row = np.zeros(m + 1, np.int64)
    first_byte = np.zeros(m + 1, np.int64)
    for i in range(n):
        a = np.int64(apids[i]) + 1
        first_row[a] += 1
        first_byte[a] += offsets[i + 1] - offsets[i]
    n_groups = 0
    for a in range(1, m + 1):
        if first_row[a]:
            n_groups += 1
        first_row[a] += first_row[a - 1]
        first_byte[a] += first_byte[a - 1]
    bounds = np.empty(n_groups + 1, np.int64)
    group_apids = np.empty(n_groups, apids.dtype)
    g = 0
    for a in range(m):
        if first_row[a + 1] > first_row[a]:
            bounds[g] = first_row[a]
            group_apids[g] = a
            g += 1
    bounds[n_groups] = n
    return first_row, first_byte, bounds, group_apids


@kernel
def _group_copy(data, offsets, apids, rows, next_row, next_byte, out, out_offsets, out_rows):
    """Each packet's bytes and header row to its place in ``_apid_groups``' plan (which it
    advances), in one pass; stable: reception order kept within an APID."""
    # Unsigned indices in the copies: numba adds a negative-index check to every signed
    # one, which keeps LLVM from streaming them (7x slower measured).
    n = apids.shape[0]
    width = np.uint64(rows.shape[1])
    flat_in = rows.ravel()
    flat_out = out_rows.ravel()
    for i in range(n):
        a = np.int64(apids[i])
        r = next_row[a]
        next_row[a] = r + 1
        d = next_byte[a]
        length = offsets[i + 1] - offsets[i]
        next_byte[a] = d + length
        out_offsets[r] = d
        src = np.uint64(offsets[i])
        ud = np.uint64(d)
        for k in range(np.uint64(length)):
            out[ud + k] = data[src + k]
        s = np.uint64(i) * width
        t = np.uint64(r) * width
        for k in range(width):
            flat_out[t + k] = flat_in[s + k]
    out_offsets[n] = out.shape[0]


# batches whose sorted packets a consumer may still hold: the archive keeps each batch's
# packet bytes (views) until the flush that writes them is done, about ten batches
_HELD = 12


def _group_by_apid(data, offsets, apids, rows):
    """Packets grouped by APID (a counting sort, stable): (bytes, offsets, header rows,
    group bounds, group APIDs); ``rows``: the header records as (n, itemsize) bytes. The
    outputs are the last batch's when nobody holds them any more (:mod:`groundseg._reuse`):
    a fresh 30 MB batch costs more in page faults than its copy."""
    first_row, first_byte, bounds, group_apids = _apid_groups(apids, offsets)
    n = apids.shape[0]
    out = _reuse.empty("telemetry.data", (int(first_byte[-1]),), np.uint8, keep=_HELD, mapped=True)
    out_offsets = _reuse.empty("telemetry.offsets", (n + 1,), np.int64, keep=_HELD, mapped=True)
    out_rows = _reuse.empty("telemetry.rows", (n, rows.shape[1]), np.uint8, keep=_HELD, mapped=True)
    _group_copy(data, offsets, apids, rows, first_row, first_byte, out, out_offsets, out_rows)
    return out, out_offsets, out_rows, bounds, group_apids


@kernel
def _time_rows(data, offsets, first, width):
    """(n, width) bytes from ``first`` of each packet, and whether the packet holds them."""
    n = offsets.shape[0] - 1
    rows = np.zeros((n, width), np.uint8)
    ok = np.zeros(n, np.bool_)
    for i in range(n):
        start = offsets[i] + first
        if start + width <= offsets[i + 1]:
            ok[i] = True
            for k in range(width):
                rows[i, k] = data[start + k]
    return rows, ok


@kernel
def _load8(data, b0):
    """Eight bytes from ``b0`` as a big-endian uint64 (one load and a byte swap)."""
    ub = np.uint64(b0)
    return ((np.uint64(data[ub]) << _U56) | (np.uint64(data[ub + _U1]) << _U48)
            | (np.uint64(data[ub + _U2]) << _U40) | (np.uint64(data[ub + _U3]) << _U32)
            | (np.uint64(data[ub + _U4]) << _U24) | (np.uint64(data[ub + _U5]) << _U16)
            | (np.uint64(data[ub + _U6]) << _U8) | np.uint64(data[ub + _U7]))


@kernel
def _field_bits(v, length, mask, signed, sbit):
    """A field's bits (right-aligned in ``v``) masked, sign-extended when ``signed``."""
    if length < 64:
        v &= mask
        if signed and (v >> sbit) & _U1:
            v |= ~mask
    return v


@kernel
def _extract_fields(data, starts, bit_off, bit_len, kind, nbytes, little, base, stride, out):
    """Every field of every packet, laid out as ccsdspy's arrays lay them out.

    Element e of packet p goes to ``out[base[e] + p * stride[e]:][:nbytes[e]]``: integers
    as big-endian ``nbytes``-byte words (sign-extended), little-endian ones byte-reversed,
    floats copied verbatim (the big-endian path with no sign: the same bytes). ``kind``:
    0 uint, 1 int, 2 float.
    """
    # Element by element, every packet in the inner loop: the element's layout is loop
    # invariant, so each width gets a branch-free loop of one 8-byte load and sequential
    # stores (2-4x the packet-major loop measured). Packets before ``cut`` have 8 bytes to
    # load at every element; the rest (the buffer's last bytes) read only the bytes the
    # field spans. A check per packet in the fast loop cost 4x: it is kept out of it.
    # Unsigned indices (no negative-index checks) let LLVM turn the eight byte loads
    # into one load and a byte swap.
    n = starts.shape[0]
    m = bit_off.shape[0]
    size = data.shape[0]
    top = 0
    for e in range(m):
        top = max(top, bit_off[e] >> 3)
    cut = 0
    while cut < n and starts[cut] + top + 8 <= size:
        cut += 1
    for e in range(m):
        o = bit_off[e]
        length = bit_len[e]
        nb = nbytes[e]
        byte = o >> 3
        o7 = o & 7
        shift = np.uint64(max(0, 64 - o7 - length))
        mask = (np.uint64(1) << np.uint64(length if length < 64 else 0)) - _U1
        signed = kind[e] == 1
        sbit = np.uint64(max(0, length - 1))
        lit = little[e]
        up = np.uint64(base[e])
        st = np.uint64(stride[e])
        if not lit and nb == 1:
            for p in range(cut):
                v = _field_bits(_load8(data, starts[p] + byte) >> shift, length, mask, signed, sbit)
                out[up] = np.uint8(v & _FF)
                up += st
        elif not lit and nb == 2:
            for p in range(cut):
                v = _field_bits(_load8(data, starts[p] + byte) >> shift, length, mask, signed, sbit)
                out[up] = np.uint8((v >> _U8) & _FF)
                out[up + _U1] = np.uint8(v & _FF)
                up += st
        elif not lit and nb == 4:
            for p in range(cut):
                v = _field_bits(_load8(data, starts[p] + byte) >> shift, length, mask, signed, sbit)
                out[up] = np.uint8((v >> _U24) & _FF)
                out[up + _U1] = np.uint8((v >> _U16) & _FF)
                out[up + _U2] = np.uint8((v >> _U8) & _FF)
                out[up + _U3] = np.uint8(v & _FF)
                up += st
        else:
            for p in range(cut):
                v = _field_bits(_load8(data, starts[p] + byte) >> shift, length, mask, signed, sbit)
                _store_field(out, up, v, nb, lit)
                up += st
        nfile = ((o + length - 1) >> 3) - byte + 1
        for p in range(cut, n):
            b0 = starts[p] + byte
            if b0 + 8 <= size:
                v = _load8(data, b0) >> shift
            else:  # the last bytes of the buffer: only those the field spans
                v = np.uint64(0)
                for k in range(nfile):
                    v = (v << _U8) | np.uint64(data[b0 + k])
                v >>= np.uint64(nfile * 8 - o7 - length)
            _store_field(out, up, _field_bits(v, length, mask, signed, sbit), nb, lit)
            up += st


@kernel
def _store_field(out, up, v, nb, little):
    """``v``'s low ``nb`` bytes at ``out[up:]``: big-endian, or little-endian if ``little``."""
    if little:
        for k in range(nb):
            out[up + np.uint64(k)] = np.uint8((v >> np.uint64(8 * k)) & _FF)
    else:
        for k in range(nb):
            out[up + np.uint64(k)] = np.uint8((v >> np.uint64(8 * (nb - 1 - k))) & _FF)


class _Layout:
    """A ccsdspy FixedLength definition compiled for :func:`_extract_fields`.

    Offsets follow ccsdspy's placement (primary header first, fields without
    ``bit_offset`` following the previous one) and dtypes are ccsdspy's, so the
    arrays equal ``FixedLength.load``'s. Definitions outside what the kernel
    reproduces exactly (str/fill fields, custom byte orders, little-endian fields
    that are not whole aligned 1/2/4/8-byte words, unaligned floats, Fortran-order
    arrays, converters) raise ``ValueError``: ccsdspy decodes those.
    """

    def __init__(self, definition):
        if definitions.converters_of(definition):
            raise ValueError("converters")
        lay = definitions.layout(definition)      # ValueError for variable arrays
        fields = []                      # (name, data_type, shape or None, byte_order)
        for f in lay.fields:
            if f.shape is not None and f.array_order != "C" and len(f.shape) > 1:
                raise ValueError("Fortran-order array")
            if f.data_type not in ("uint", "int", "float") or f.byte_order not in ("big", "little"):
                raise ValueError("type or byte order")
            fields.append((f.name, f.data_type, f.shape, f.byte_order))
        elements = [(e.field, e.index, e.bit_offset, e.bit_length) for e in lay.elements]
        counter = lay.end_bits
        self.end_bits = counter
        n_el = len(elements)
        self.bit_off = np.zeros(n_el, np.int64)
        self.bit_len = np.zeros(n_el, np.int64)
        self.kind = np.zeros(n_el, np.int64)
        self.nbytes = np.zeros(n_el, np.int64)
        self.little = np.zeros(n_el, np.bool_)
        self.field_of = np.zeros(n_el, np.int64)
        self.index_in = np.zeros(n_el, np.int64)
        dtypes: list = [None] * len(fields)
        for e, (fi, i, off, length) in enumerate(elements):
            name, dtype, shape, order = fields[fi]
            nfile = (off + length - 1) // 8 - off // 8 + 1
            if nfile > 8:
                raise ValueError("field spans more than 8 bytes")
            nb = {3: 4, 5: 8, 6: 8, 7: 8}.get(nfile, nfile)
            little = order == "little"
            if dtype == "float" and (off % 8 or length not in (16, 32, 64)):
                raise ValueError("unaligned float")
            if little and dtype != "float" and (off % 8 or length != 8 * nfile or nfile not in (1, 2, 4, 8)):
                raise ValueError("little-endian bit field")
            kind = {"uint": 0, "int": 1, "float": 2}[dtype]
            char = {"uint": "u", "int": "i", "float": "f"}[dtype]
            end = "<" if (little and dtype == "float") else ">"
            if dtypes[fi] is None:
                # ccsdspy gives an array its first element's dtype; every element's value fits it
                dtypes[fi] = np.dtype(f"{end}{char}{nb}")
            nb = dtypes[fi].itemsize
            self.bit_off[e], self.bit_len[e], self.kind[e], self.nbytes[e] = off, length, kind, nb
            self.little[e] = little and dtype != "float"
            self.field_of[e], self.index_in[e] = fi, i
        self.fields = fields
        self.dtypes = dtypes
        self.counts = [1 if shape is None else int(np.prod(shape)) for _, _, shape, _ in fields]

    def decode(self, data: np.ndarray, starts: np.ndarray) -> dict[str, np.ndarray]:
        n = starts.shape[0]
        sizes = np.array([self.dtypes[i].itemsize * self.counts[i] * n for i in range(len(self.fields))],
                         np.int64)
        seg = np.zeros(len(self.fields) + 1, np.int64)
        np.cumsum(sizes, out=seg[1:])
        itemsize = self.nbytes
        counts = np.asarray(self.counts, np.int64)[self.field_of]
        base = seg[:-1][self.field_of] + self.index_in * itemsize
        stride = counts * itemsize
        out = _reuse.empty("telemetry.fields", (int(seg[-1]),), np.uint8, keep=16)  # one per APID
        _extract_fields(data, starts.astype(np.int64), self.bit_off, self.bit_len, self.kind,
                        self.nbytes, self.little, base, stride, out)
        result = {}
        for i, (name, _, shape, _) in enumerate(self.fields):
            arr = out[seg[i]:seg[i + 1]].view(self.dtypes[i])
            result[name] = arr if shape is None else arr.reshape((n,) + tuple(shape))
        return result


@kernel
def _cuc_seconds(data, offsets, first, coarse, fine):
    """Seconds of a CUC T-field (``coarse`` + ``fine`` octets, from byte ``first`` of each
    packet) and whether the packet holds it: one pass, no copy of the code bytes."""
    n = offsets.shape[0] - 1
    out = np.empty(n, np.float64)
    ok = np.zeros(n, np.bool_)
    fk = min(fine, 6)   # fine octets beyond 6 are below float64 resolution
    scale = 1.0 / 256.0 ** fk   # a power of two: exact, as timecodes.decode_cuc divides
    for i in range(n):
        start = offsets[i] + first
        if start + coarse + fine > offsets[i + 1]:
            out[i] = 0.0   # no code: the caller keeps the frame's time here
            continue
        c = np.int64(0)
        for k in range(coarse):
            c = (c << 8) | np.int64(data[start + k])
        f = np.int64(0)
        for k in range(fk):
            f = (f << 8) | np.int64(data[start + coarse + k])
        out[i] = np.float64(c) + np.float64(f) * scale
        ok[i] = True
    return out, ok


def time_code_seconds(rows: np.ndarray, code: TimeCode) -> np.ndarray:
    """Seconds since the time code's epoch for each row of code bytes (a P-field is skipped)."""
    rows = np.ascontiguousarray(rows[:, 1:] if code.pfield else rows, dtype=np.uint8)
    return timecodes.decode(rows, code.spec)


# -- decoding ---------------------------------------------------------------------------

def _group(packets: PacketBatch):
    """Packets sorted by APID (stable: reception order within an APID) and the group bounds."""
    header = packets.header
    apids = header["apid"]
    n = apids.shape[0]
    if n and (apids == apids[0]).all():
        return packets, np.array([0, n]), apids[:1]
    # rows as bytes: numpy's structured fancy indexing copies field by field
    rows = np.ascontiguousarray(header).view(np.uint8).reshape(n, header.dtype.itemsize)
    data, offsets, sorted_rows, bounds, group_apids = _group_by_apid(packets.data, packets.offsets,
                                                                    apids, rows)
    return PacketBatch(data, offsets, sorted_rows.view(header.dtype).reshape(n)), bounds, group_apids


def _slice(batch: PacketBatch, i0: int, i1: int) -> PacketBatch:
    o0, o1 = batch.offsets[i0], batch.offsets[i1]
    return PacketBatch(batch.data[o0:o1], batch.offsets[i0:i1 + 1] - o0, batch.header[i0:i1])


def _onboard_time(batch: PacketBatch, apid_def) -> np.ndarray:
    frame_time = batch.header["frame_time"].astype(np.float64)
    code = getattr(apid_def, "time_code", None) if apid_def is not None else None
    if code is None or len(batch) == 0:
        return frame_time.copy()
    if code.kind == "cuc":   # the common case, in one kernel pass over the packets
        seconds, ok = _cuc_seconds(batch.data, batch.offsets, np.int64(code.offset + (1 if code.pfield else 0)),
                                   np.int64(code.coarse), np.int64(code.fine))
    else:
        rows, ok = _time_rows(batch.data, batch.offsets, np.int64(code.offset), np.int64(code.length))
        seconds = time_code_seconds(rows, code)
    # a packet without a secondary header (e.g. a continuation segment) carries no time code
    ok &= batch.header["sec_hdr"] == 1
    t = timecodes.to_unix(seconds, apid_def.epoch, getattr(apid_def, "time_scale", None))
    return np.where(ok, t, frame_time)


def polynomial(raw: np.ndarray, coeffs: tuple) -> np.ndarray:
    """a0 + a1*x + ... by Horner's rule, in place on one float64 array."""
    x = raw.astype(np.float64)
    if len(coeffs) == 1:
        x[...] = coeffs[0]
        return x
    if len(coeffs) == 2:  # linear, the common case: in place, one array
        x *= coeffs[1]
        x += coeffs[0]
        return x
    y = x * coeffs[-1]
    y += coeffs[-2]
    for c in coeffs[-3::-1]:
        y *= x
        y += c
    return y


_LAYOUTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _layout(definition) -> _Layout | None:
    """The compiled layout of a definition, None when ccsdspy must decode it."""
    try:
        return _LAYOUTS[definition]
    except KeyError:
        pass
    try:
        layout = _Layout(definition)
    except ValueError:
        layout = None
    _LAYOUTS[definition] = layout
    return layout


def _load(definition, data: np.ndarray, variable: bool) -> dict:
    """ccsdspy's decoding of packets back to back, primary header fields dropped.

    Fixed length: one pass of :func:`_extract_fields` over the packets when the
    definition's layout allows (arrays equal to ccsdspy's, dtype included: the tests
    compare them), else ccsdspy's own ``_load`` (what ``FixedLength.load`` runs)
    without the sequence-count inspection that ``load`` adds: gaps are the link
    layer's to count, and that check costs more than the decoding on large batches.
    """
    if not variable:
        layout = _layout(definition)
        if layout is not None:
            length = (layout.end_bits + 7) // 8
            if length and data.size:
                packet_length = int(data[4]) * 256 + int(data[5]) + 7
                if packet_length >= length and data.size % packet_length == 0:
                    starts = np.arange(0, data.size, packet_length, dtype=np.int64)
                    return layout.decode(data, starts)
        return definitions.load_fixed(definition, _ArrayFile(data))
    return definition.load(_ArrayFile(data))


def calendar_seconds(year, day, hour=0, minute=0, second=0, millisecond=0, microsecond=0) -> np.ndarray:
    """UNIX seconds (UTC) of calendar fields: year, day of year (1 = 1 January), time of day."""
    year = np.asarray(year, np.int64)
    jan1 = (year - 1970).astype("timedelta64[Y]") + np.datetime64("1970", "Y")
    days = jan1.astype("datetime64[D]").astype(np.int64) + np.asarray(day, np.int64) - 1
    return (days * 86400.0 + np.asarray(hour, np.float64) * 3600.0 + np.asarray(minute, np.float64) * 60.0
            + np.asarray(second, np.float64) + np.asarray(millisecond, np.float64) * 1e-3
            + np.asarray(microsecond, np.float64) * 1e-6)


def _field_time(out: DecodedApid, apid_def) -> None:
    spec = getattr(apid_def, "time_fields", None)
    if not spec or not len(out.packets):
        return
    values = {k: out.raw_fields.get(name, out.fields.get(name)) for k, name in spec.items()}
    if any(v is None for v in values.values()):
        return
    t = calendar_seconds(**values)
    # a year of 0 or a day out of range is no time stamp: keep the frame's time there
    ok = (values["year"] > 0) & (values["day"] >= 1) & (values["day"] <= 366)
    out.onboard_time = np.where(ok, t, out.onboard_time)


def _calibrate(fields: dict, apid_def, out: DecodedApid, cache: dict) -> None:
    for name, meta in apid_def.fields.items():
        if meta.units:
            out.units[name] = meta.units
        if meta.calibration is None or name not in fields:
            continue
        coeffs = cache.get(meta.calibration)
        if coeffs is None:
            coeffs = cache[meta.calibration] = parse_calibration(meta.calibration)
        raw = fields[name]
        out.raw_fields[name] = raw
        fields[name] = polynomial(raw, coeffs)
        out.calibration[name] = meta.calibration


def _load_variable(definition, batch: PacketBatch):
    """VariableLength over the whole group; if ccsdspy fails, packet by packet, keeping the good ones."""
    try:
        return _load(definition, batch.data, True), np.ones(len(batch), bool)
    except Exception:
        pass
    ok = np.zeros(len(batch), bool)
    parts = []
    for i in range(len(batch)):
        try:
            parts.append(_load(definition, batch.data[batch.offsets[i]:batch.offsets[i + 1]], True))
            ok[i] = True
        except Exception:       # ccsdspy raises several types on a malformed packet
            pass
    if not parts:
        return {}, ok
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}, ok


def _decode_group(batch: PacketBatch, apid: int, apid_def, name: str, cache: dict) -> DecodedApid:
    definition = getattr(apid_def, "packet_definition", None) if apid_def is not None else None
    if definition is None:
        return DecodedApid(apid, name, batch, _onboard_time(batch, apid_def))
    if apid_def.variable:
        fields, ok = _load_variable(definition, batch)
    else:
        lengths = np.diff(batch.offsets)
        ok = lengths == apid_def.packet_length
        fields = None
    rejected = PacketBatch.empty()
    if not ok.all():
        rejected = batch.select(~ok)
        batch = batch.select(ok)
    if fields is None:
        fields = _load(definition, batch.data, False) if len(batch) else {}
    out = DecodedApid(apid, name, batch, _onboard_time(batch, apid_def), rejected=rejected)
    if len(rejected):
        out.rejects["packet_length"] = len(rejected)
    _calibrate(fields, apid_def, out, cache)
    out.fields = fields
    _field_time(out, apid_def)
    return out


def decode(packets: PacketBatch, mission) -> tuple[dict[int, DecodedApid], dict[str, int]]:
    """Decode a batch of mixed APIDs: ``({apid: DecodedApid}, {"packet_length": n})``.

    ``DecodedApid.packets`` holds the APID's decoded packets in reception order;
    its refused packets are in ``.rejected`` and counted in the returned rejects.
    """
    rejects: dict[str, int] = {}
    if len(packets) == 0:
        return {}, rejects
    apids = getattr(mission, "apids", {}) if mission is not None else {}
    cache = getattr(mission, "_cache", None)
    if cache is None:
        cache = {}
    cache = cache.setdefault("telemetry.calibration", {})
    sorted_batch, bounds, group_apids = _group(packets)
    out: dict[int, DecodedApid] = {}
    _quiet.active = True
    try:
        for g, apid in enumerate(group_apids.tolist()):
            apid_def = apids.get(apid)
            name = apid_def.name if apid_def is not None else f"apid{apid}"
            sub = _slice(sorted_batch, int(bounds[g]), int(bounds[g + 1]))
            dec = _decode_group(sub, apid, apid_def, name, cache)
            for k, v in dec.rejects.items():
                rejects[k] = rejects.get(k, 0) + v
            out[apid] = dec
    finally:
        _quiet.active = False
    return out, rejects
