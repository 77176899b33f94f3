"""The commit log ``/flushes``: one row per completed flush, the row counts readers trust.

Row: flush id, pass id, layout generation, time (ms), then the row count of every table
(their order in the dataset's ``tables`` attribute). A row is valid when its flush id is
its index + 1, so a row a crash left resized but unwritten (zeros) is never trusted.
"""
from __future__ import annotations

import h5py
import numpy as np

from groundseg.archive.schema import FLUSH_HEAD

__all__ = ["last_commit", "pass_ranges", "commit_row", "write_commit"]


def last_commit(fl: np.ndarray) -> int:
    """Index of the last valid /flushes row (its flush_id is its index + 1), -1 if none.
    A row a crash left resized but unwritten reads as zeros and is skipped."""
    for i in range(len(fl) - 1, -1, -1):
        if int(fl[i, 0]) == i + 1:
            return i
    return -1


def pass_ranges(fl: np.ndarray, tables: list[str]) -> dict[int, dict[str, tuple[int, int]]]:
    """Rows of each table written by each pass: from the counts before its first commit
    to those of its last one. Linear in the commits (a pass's commits are contiguous)."""
    out: dict[int, dict[str, tuple[int, int]]] = {}
    if len(fl) == 0:
        return out
    pids = fl[:, 1]
    width = fl.shape[1]
    k = min(width - len(FLUSH_HEAD), len(tables))
    starts = np.concatenate([[0], np.flatnonzero(np.diff(pids)) + 1])
    ends = np.concatenate([starts[1:], [len(pids)]]) - 1
    firsts: dict[int, int] = {}
    lasts: dict[int, int] = {}
    for a, b in zip(starts.tolist(), ends.tolist()):
        p = int(pids[a])
        firsts.setdefault(p, a)
        lasts[p] = b
    zero = np.zeros(width, np.int64)
    for p, a in firsts.items():
        before = fl[a - 1] if a > 0 else zero
        last = fl[lasts[p]]
        out[p] = {t: (int(before[len(FLUSH_HEAD) + i]) if i < k else 0,
                      int(last[len(FLUSH_HEAD) + i]) if i < k else 0)
                  for i, t in enumerate(tables)}
    return out


# -- writer ---------------------------------------------------------------------------------


def commit_row(flush_id: int, pass_id: int, layout_gen: int, time_ms: int, tables: list[str],
               rows: dict[str, int]) -> np.ndarray:
    """The /flushes row committing ``rows`` (row count per table)."""
    row = np.zeros(len(FLUSH_HEAD) + len(tables), np.int64)
    row[:len(FLUSH_HEAD)] = (flush_id, pass_id, layout_gen, time_ms)
    for i, t in enumerate(tables):
        row[len(FLUSH_HEAD) + i] = rows.get(t, 0)
    return row


def write_commit(f: h5py.File, row: np.ndarray) -> None:
    """Make the data durable first, then record the row counts that readers trust."""
    f.flush()
    fl = f["flushes"]
    n = fl.shape[0]
    if fl.shape[1] < len(row):
        fl.resize((n, len(row)))
    fl.resize((n + 1, fl.shape[1]))
    fl[n, :len(row)] = row
    f.flush()
