"""Recovery of an archive whose writer died, as the next writer (or ``repair``) does it.

Holding the writer lock proves the writer is dead (``lock``); then: the consistency flags
are cleared (``superblock.clear_status_flags``), every table is cut back to the row
counts of the last valid commit (``commitlog``), and a pass left open is marked
interrupted with its counts recomputed from what was committed.
"""
from __future__ import annotations

import json

import h5py
import numpy as np

from groundseg.archive.commitlog import last_commit, pass_ranges
from groundseg.archive.schema import (
    FLUSH_HEAD, PACKETS_GROUP, PASS_INTERRUPTED, PASS_OPEN, TIME_FRAME, TIME_NONE,
)
from groundseg.archive.tables import columns

__all__ = ["CommittedState", "committed_state", "recover", "heap_end"]


class CommittedState:
    """What the last valid commit of ``/flushes`` says: the tables, their row counts and
    heap lengths, and the number of valid commits."""

    def __init__(self, tables: list[str], flush_id: int, rows: dict[str, int], heap_len: dict[str, int]):
        self.tables = tables
        self.flush_id = flush_id
        self.rows = rows
        self.heap_len = heap_len


def heap_end(g: h5py.Group, rows: int) -> int:
    """Bytes of ``g``'s heap used by its first ``rows`` rows (the passes text heap is
    written directly, outside commits, and never cut back)."""
    if "raw" in g and rows:
        off = int(g["raw_offset"][rows - 1])
        ln = int(g["length"][rows - 1])
        return off + ln
    if "text" in g:
        return int(g["text"].shape[0])
    return 0


def committed_state(f: h5py.File) -> CommittedState:
    """Row counts and heap lengths of every table as of the last valid commit."""
    fl = f["flushes"]
    tables: list[str] = json.loads(fl.attrs["tables"])
    n = last_commit(fl[:]) + 1
    last = fl[n - 1] if n else np.zeros(len(FLUSH_HEAD) + len(tables), np.int64)
    rows = {t: int(last[len(FLUSH_HEAD) + i]) if len(FLUSH_HEAD) + i < len(last) else 0
            for i, t in enumerate(tables)}
    heaps = {t: heap_end(f[t], rows[t]) for t in tables}
    return CommittedState(tables, n, rows, heaps)


def recover(f: h5py.File, state: CommittedState) -> dict:
    """Truncate tables to the last commit; mark a pass left open as interrupted. Returns
    ``{"truncated": {dataset: rows cut}, "interrupted_passes": [ids]}`` (keys only if any)."""
    info: dict = {"truncated": {}, "interrupted_passes": []}
    fl = f["flushes"]
    if fl.shape[0] != state.flush_id:
        info["truncated"]["flushes"] = int(fl.shape[0] - state.flush_id)
        fl.resize((state.flush_id, fl.shape[1]))
    for t in state.tables:
        g = f[t]
        rows = state.rows[t]
        for name, ds in columns(g).items():
            if ds.shape[0] != rows:
                info["truncated"][f"{t}/{name}"] = int(ds.shape[0] - rows)
                ds.resize((rows,) + ds.shape[1:])
        if "raw" in g and g["raw"].shape[0] > state.heap_len[t]:
            g["raw"].resize((state.heap_len[t],))
    if "passes" in f:
        g = f["passes"]
        status = g["status"][:]
        for row in np.flatnonzero(status == PASS_OPEN):
            _recompute_pass(f, int(row), state.tables)
            g["status"][row] = PASS_INTERRUPTED
            info["interrupted_passes"].append(int(g["pass_id"][row]))
    if not info["truncated"]:
        del info["truncated"]
    if not info["interrupted_passes"]:
        del info["interrupted_passes"]
    if info:
        f.flush()
    return info


def committed_pass_ranges(f: h5py.File, tables: list[str]) -> dict[int, dict[str, tuple[int, int]]]:
    """Rows of each table written by each pass, by the valid commits."""
    fl = f["flushes"]
    n = last_commit(fl[:]) + 1
    return pass_ranges(fl[:n], tables)


def _recompute_pass(f: h5py.File, row: int, tables: list[str]) -> None:
    """Stats of an interrupted pass from what was committed."""
    g = f["passes"]
    pid = int(g["pass_id"][row])
    ranges = committed_pass_ranges(f, tables).get(pid, {})
    packets = untimed = 0
    rt = [np.nan, np.nan]
    kt = [np.nan, np.nan]
    for t, (a, b) in ranges.items():
        if not t.startswith(PACKETS_GROUP + "/") or b <= a:
            continue
        tg = f[t]
        packets += b - a
        src = tg["time_source"][a:b]
        r = tg["reception_time"][a:b]
        o = tg["onboard_time"][a:b]
        untimed += int(np.count_nonzero(src == TIME_NONE))
        if np.isfinite(r).any():
            rt = [np.nanmin([rt[0], np.nanmin(r)]), np.nanmax([rt[1], np.nanmax(r)])]
        ex = src <= TIME_FRAME
        if ex.any():
            kt = [np.nanmin([kt[0], o[ex].min()]), np.nanmax([kt[1], o[ex].max()])]
    g["packets_archived"][row] = packets
    g["untimed_packets"][row] = untimed
    g["reception_start"][row], g["reception_end"][row] = rt
    g["onboard_start"][row], g["onboard_end"][row] = kt
    for t, col in (("frames", "frames_archived"), ("rejects", "rejects_archived")):
        a, b = ranges.get(t, (0, 0))
        g[col][row] = b - a
    fl = f["flushes"]
    if fl.shape[0]:
        g["ended_at"][row] = float(fl[fl.shape[0] - 1, 3]) / 1e3
