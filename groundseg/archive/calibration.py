"""Calibrated fields kept as raw counts, calibrated on read.

A field with a calibration (the mission file's ``poly:a0,a1,...``) decodes to a raw count
and an engineering value (XTCE's raw and engineering values, CCSDS 660.0-B). Archive
schema 2 stores the raw count and applies the calibration when the archive is read, as
mission control archives do: a 16-bit count stored as float64 was 8 bytes per value and
half of what the demo mission's archive wrote.

The count is stored one integer size wider than it decodes (``uint16`` -> ``int32``), so
a value outside its range is free to mean "no value" (``missing``): rows archived
without a decoded value (a field first declared in a later pass, packets archived raw)
read back NaN, as the float64 columns of schema 1 did. Counts of 64-bit fields have no
wider type and stay engineering values.

A mission file may change a calibration between passes; each pass keeps the one it was
decoded with: ``calibrations`` lists ``[first pass_id, calibration]`` in order, and a row
takes the last entry at or before its own pass.
"""
from __future__ import annotations

import json

import numpy as np

from groundseg._numba import kernel
from groundseg.mission.model import parse_calibration

__all__ = ["RAW_COUNTS", "engineering", "history", "is_raw_counts", "stored_dtype", "with_pass"]

#: the ``values`` attribute of a field dataset that holds raw counts
RAW_COUNTS = "raw counts"

# a count of this type is stored in the next: a value outside the count's range is free
_WIDER = {np.dtype(k): np.dtype(v) for k, v in
          (("u1", "<i2"), ("i1", "<i2"), ("u2", "<i4"), ("i2", "<i4"), ("u4", "<i8"), ("i4", "<i8"))}


def stored_dtype(raw: np.dtype) -> tuple[np.dtype, int | float] | None:
    """(stored dtype, missing value) for raw counts of ``raw``'s type; None: no room
    (64-bit counts, text), keep engineering values."""
    raw = np.dtype(raw)
    if raw.kind == "f":
        return raw.newbyteorder("<"), float("nan")
    wide = _WIDER.get(raw.newbyteorder("=") if raw.byteorder in "<>" else raw)
    if wide is None:
        return None
    return wide, int(np.iinfo(wide).min) if raw.kind == "i" else -1


def is_raw_counts(ds) -> bool:
    return ds.attrs.get("values", "") == RAW_COUNTS


def history(ds) -> list[list]:
    """``[[first pass_id, calibration], ...]`` of a raw-count dataset."""
    return json.loads(ds.attrs["calibrations"])


def with_pass(hist: list[list], pass_id: int, calibration: str) -> list[list] | None:
    """The history with ``pass_id``'s calibration added, or None if it is already the
    calibration in force. A pass has one calibration per field: ValueError if ``pass_id``
    already has another (its rows could not tell which they were decoded with)."""
    if hist and hist[-1][1] == calibration:
        return None
    if hist and int(hist[-1][0]) >= int(pass_id):
        raise ValueError(f"pass {pass_id} already archived this field with calibration {hist[-1][1]!r}, "
                         f"now {calibration!r}; one pass takes one calibration")
    return hist + [[int(pass_id), calibration]]


def engineering(stored: np.ndarray, hist: list[list], pass_id: np.ndarray, missing,
                out: np.ndarray | None = None) -> np.ndarray:
    """Engineering values (float64) of raw counts ``stored`` whose rows belong to passes
    ``pass_id``; NaN where the count is ``missing``. Bit for bit what
    ``telemetry.polynomial`` gives the same counts (the values ``telemetry.decode`` gave).
    ``out``: a float64 array of ``stored``'s shape to write them into, which may be a
    field of a structured array (a reader's rows, not another copy)."""
    stored = np.asarray(stored)
    if stored.dtype.byteorder == ">":
        stored = stored.astype(stored.dtype.newbyteorder("="))
    if out is None:
        out = np.empty(stored.shape, np.float64)
    elif out.shape != stored.shape or out.dtype != np.float64:
        raise ValueError(f"out is {out.dtype} {out.shape}, counts are {stored.shape}")
    if stored.size == 0:
        return out
    coeffs = [parse_calibration(cal) for _, cal in hist]
    table = np.zeros((len(coeffs), max(len(c) for c in coeffs)), np.float64)
    for k, c in enumerate(coeffs):
        table[k, :len(c)] = c
    ncoeffs = np.array([len(c) for c in coeffs], np.int64)
    if len(hist) == 1:
        which = np.zeros(len(stored), np.int64)
    else:
        firsts = np.array([h[0] for h in hist], np.int64)
        # rows of passes before the first entry (the column did not exist yet) hold the
        # missing count and read NaN whichever calibration they take
        which = np.maximum(np.searchsorted(firsts, np.asarray(pass_id, np.int64), side="right") - 1, 0)
    is_int = stored.dtype.kind in "iu"
    rows = out.reshape(len(stored), -1)   # a view: one more axis, or the same shape
    if not np.may_share_memory(rows, out):
        raise ValueError("out cannot be seen as rows of values without a copy")
    _calibrate(stored.reshape(len(stored), -1), which, table, ncoeffs,
               np.int64(missing) if is_int else np.int64(0), is_int, rows)
    return out


@kernel
def _calibrate(stored, which, table, ncoeffs, missing, is_int, out):
    """Horner's rule in telemetry.polynomial's order of operations (no fused multiply-add:
    the kernel is not fastmath), so the values match it exactly."""
    nan = np.nan
    for i in range(stored.shape[0]):
        k = which[i]
        nc = ncoeffs[k]
        for j in range(stored.shape[1]):
            v = stored[i, j]
            if is_int:
                if v == missing:
                    out[i, j] = nan
                    continue
            elif v != v:
                out[i, j] = nan
                continue
            x = np.float64(v)
            if nc == 1:
                y = table[k, 0]
            elif nc == 2:
                y = x * table[k, 1]
                y += table[k, 0]
            else:
                y = x * table[k, nc - 1]
                y += table[k, nc - 2]
                for c in range(nc - 3, -1, -1):
                    y *= x
                    y += table[k, c]
            out[i, j] = y
