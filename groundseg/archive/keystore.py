"""Dedup keys of archived packets, read from the file for ``dedup.Deduplicator``.

Earlier passes' rows are registered as unloaded runs (pieces of ``piece`` rows with the
pass's time spans), and a run's keys are read back only when a batch overlaps it.
"""
from __future__ import annotations

from typing import Iterator

import h5py
import numpy as np

from groundseg.archive.chunks import read_rows
from groundseg.archive.recovery import committed_pass_ranges
from groundseg.archive.schema import PACKETS_GROUP, TIME_FRAME, TIME_NONE

__all__ = ["prior_pass_runs", "read_keys"]


def prior_pass_runs(f: h5py.File, rows: int, tables: list[str], exclude: int,
                    piece: int) -> Iterator[tuple]:
    """(sources, onboard span, reception span, untimed) of every piece of the committed
    packet rows of the passes before ``exclude`` (the first ``rows`` pass rows)."""
    g = f["passes"]
    if rows == 0:
        return
    cols = {n: g[n][:rows] for n in ("pass_id", "reception_start", "reception_end",
                                      "onboard_start", "onboard_end", "untimed_packets",
                                      "packets_archived")}
    ranges = committed_pass_ranges(f, tables)
    for i in range(rows):
        pid = int(cols["pass_id"][i])
        if pid == exclude or cols["packets_archived"][i] == 0:
            continue
        on = (float(cols["onboard_start"][i]), float(cols["onboard_end"][i]))
        rx = (float(cols["reception_start"][i]), float(cols["reception_end"][i]))
        untimed = bool(cols["untimed_packets"][i] > 0)
        for t, (a, b) in ranges.get(pid, {}).items():
            if not t.startswith(PACKETS_GROUP + "/") or b <= a:
                continue
            for s0 in range(a, b, piece):
                yield [(t, s0, min(b, s0 + piece), pid)], on, rx, untimed


def read_keys(f: h5py.File, sources: list, timed: bool, loaded: set[int],
              within: tuple[float, float, bool] | None = None):
    """(keys, times, passes, untimed) of the rows ``sources`` (table, first, end[, pass]);
    ``timed``: the keys matched on reception time (times: reception time, NaN for none;
    passes: pass id), else the exact ones (times: key time; passes None). ``within``
    (lo, hi, untimed): only keys whose time lies in [lo, hi] (or that have none, when
    ``untimed``): a run of one time bucket whose row ranges hold other buckets' rows too.
    Adds the passes read to ``loaded``."""
    keys, times, passes = [], [], []
    untimed = False
    for src in sources:
        t, a, b = src[0], src[1], src[2]
        if len(src) > 3:
            loaded.add(int(src[3]))
        g = f[t]
        ts = read_rows(g["time_source"], a, b)
        sel = ts > TIME_FRAME if timed else ts <= TIME_FRAME
        if not sel.any():
            continue
        if timed:
            tm = np.where(ts == TIME_NONE, np.nan, read_rows(g["reception_time"], a, b))
        else:
            tm = read_rows(g["onboard_time"], a, b)
        if within is not None:
            lo, hi, unt = within
            with np.errstate(invalid="ignore"):
                inside = (tm >= lo) & (tm <= hi)
            if unt:
                inside |= np.isnan(tm)
            sel &= inside
            if not sel.any():
                continue
        sel = np.flatnonzero(sel)
        keys.append(g["dedup_key"][a:b][sel])
        times.append(tm[sel])
        if timed:
            passes.append(read_rows(g["pass_id"], a, b)[sel].astype(np.int64))
            untimed |= bool(np.isnan(times[-1]).any())
    k = np.concatenate(keys) if keys else np.zeros(0, np.uint64)
    tm = np.concatenate(times) if times else np.zeros(0)
    if timed:
        return k, tm, np.concatenate(passes) if passes else np.zeros(0, np.int64), untimed
    return k, tm, None, False
