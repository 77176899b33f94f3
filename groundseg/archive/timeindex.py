"""The time index of packet tables: min and max time per block of rows (numpy only).

``/time_index/<table>`` (e.g. ``/time_index/packets/hk``) holds one row per block of
``INDEX_BLOCK`` table rows: onboard time min, max, reception time min, max (UNIX s; NaN
when the block has no such time). The writer extends it at every flush, before the
commit row, so the committed rows are always covered; a block may also cover rows a
crash cut off (its span is then wider than needed, never narrower), so a reader takes
the index as "these blocks may hold times in [min, max]" and filters the rows it reads.
An archive without the index (older, or salvaged) is read by a full scan, and the next
writer rebuilds the index. A query reads only the blocks whose span meets its window.
"""
from __future__ import annotations

import numpy as np

from groundseg.archive.schema import CHUNK_ROWS

__all__ = ["INDEX_GROUP", "INDEX_BLOCK", "INDEX_COLUMNS", "index_path", "block_spans",
           "finish", "candidate_spans"]

INDEX_GROUP = "time_index"
#: rows per index block: one chunk of the time columns
INDEX_BLOCK = CHUNK_ROWS
#: index columns: (time, min or max)
INDEX_COLUMNS = ("onboard_min", "onboard_max", "reception_min", "reception_max")


def index_path(table: str) -> str:
    return f"{INDEX_GROUP}/{table}"


def block_spans(onboard: np.ndarray, reception: np.ndarray, first_row: int, carry,
                block: int = INDEX_BLOCK):
    """Index rows for table rows ``first_row`` .. ``first_row + n`` with these times.
    ``carry``: (block, values) of the partial block the rows continue, or None. Returns
    (first block, values (m, 4) with +-inf where no time, the new carry)."""
    n = len(onboard)
    if n == 0:
        return first_row // block, np.zeros((0, 4)), carry
    off = first_row % block
    starts = np.arange((block - off) if off else block, n, block)
    starts = np.concatenate([[0], starts]).astype(np.intp)
    vals = np.empty((len(starts), 4))
    for j, t in enumerate((onboard, reception)):
        t = np.asarray(t, np.float64)
        nan = np.isnan(t)
        vals[:, 2 * j] = np.minimum.reduceat(np.where(nan, np.inf, t), starts)
        vals[:, 2 * j + 1] = np.maximum.reduceat(np.where(nan, -np.inf, t), starts)
    k0 = first_row // block
    if off and carry is not None and carry[0] == k0:
        c = carry[1]
        vals[0, 0::2] = np.minimum(vals[0, 0::2], c[0::2])
        vals[0, 1::2] = np.maximum(vals[0, 1::2], c[1::2])
    end = first_row + n
    new_carry = (end // block, vals[-1].copy()) if end % block else None
    return k0, vals, new_carry


def finish(vals: np.ndarray) -> np.ndarray:
    """Values as stored: NaN where a block has no such time."""
    return np.where(np.isfinite(vals), vals, np.nan)


def candidate_spans(index: np.ndarray | None, a: int, b: int, column: int, t0: float | None,
                    t1: float | None, block: int = INDEX_BLOCK) -> list[tuple[int, int]]:
    """Row spans within [a, b) that may hold times ``t0 <= t < t1`` of ``column`` (0
    onboard, 1 reception): blocks the index says cannot are left out; blocks past the
    index's end are kept (read and filtered)."""
    if b <= a:
        return []
    if index is None or (t0 is None and t1 is None):
        return [(a, b)]
    k0, k1 = a // block, (b - 1) // block + 1
    keep = np.ones(k1 - k0, bool)
    have = max(0, min(k1, len(index)) - k0)
    if have:
        lo = index[k0:k0 + have, 2 * column]
        hi = index[k0:k0 + have, 2 * column + 1]
        m = ~np.isnan(lo)
        if t0 is not None:
            m &= hi >= t0
        if t1 is not None:
            m &= lo < t1
        keep[:have] = m
    out = []
    idx = np.flatnonzero(keep)
    if not len(idx):
        return out
    cuts = np.flatnonzero(np.diff(idx) != 1) + 1
    for s, e in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [len(idx)]])):
        lo_row = max(a, (k0 + int(idx[s])) * block)
        hi_row = min(b, (k0 + int(idx[e - 1]) + 1) * block)
        if hi_row > lo_row:
            out.append((lo_row, hi_row))
    return out
