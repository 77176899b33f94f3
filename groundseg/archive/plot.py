"""Quicklook plots of archived telemetry fields against onboard time (CCSDS 133.0-B packets).

matplotlib is an optional extra (``groundseg[plot]``), imported only here and only
when a plot is asked for; the figure is drawn with the Agg canvas, never a window.
"""
from __future__ import annotations

import os
from typing import Iterable

import numpy as np

from groundseg.archive.paths import check_output
from groundseg.archive.reader import open_archive

__all__ = ["plot_fields", "plot_link_quality", "gap_breaks"]


def gap_breaks(t: np.ndarray, seq_gap: np.ndarray | None = None, factor: float = 5.0) -> np.ndarray:
    """Indices i where a line must break between sample i-1 and i: a time step over
    ``factor`` times the median step, or a packet sequence discontinuity."""
    t = np.asarray(t, np.float64)
    if len(t) < 2:
        return np.zeros(0, np.int64)
    dt = np.diff(t)
    pos = dt[dt > 0]
    cadence = float(np.median(pos)) if pos.size else 0.0
    brk = dt > factor * cadence if cadence > 0 else np.zeros(len(dt), bool)
    if seq_gap is not None:
        brk |= np.asarray(seq_gap, bool)[1:]
    return np.flatnonzero(brk) + 1


def _with_breaks(x: np.ndarray, y: np.ndarray, breaks: np.ndarray):
    """NaN inserted at each break, so the plotted line stops there."""
    if len(breaks) == 0:
        return x, y
    xb = np.insert(x.astype("datetime64[ns]"), breaks, np.datetime64("NaT"))
    yb = np.insert(y.astype(np.float64), breaks, np.nan, axis=0)
    return xb, yb


def plot_fields(archive_path: str | os.PathLike, apid: int | str, fields: Iterable[str] | str,
                out_png: str | os.PathLike, *, start=None, stop=None, passes=None,
                time: str = "onboard", gap_factor: float = 5.0, title: str | None = None,
                dpi: int = 100) -> dict:
    """One subplot per field against ``time`` (onboard by default), lines broken at gaps
    (sequence discontinuities, steps over ``gap_factor`` x the median step), units in the
    axis labels. Returns ``{"path", "points", "gaps", "fields"}``.

    ``archive_path`` may be the archive directory; field names match ignoring case.
    Raises ImportError without matplotlib, UnknownNameError (a UsageError and a KeyError)
    for an APID the archive does not hold or an unknown field, UsageError when the
    output's directory does not exist, ValueError when no packet of the APID has that
    time in the range.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plot needs matplotlib: pip install 'groundseg[plot]'") from None
    fields = [fields] if isinstance(fields, str) else list(fields)
    if not fields:
        raise ValueError("name at least one field to plot")
    out = check_output(out_png)
    with open_archive(archive_path) as arc:
        number = arc.resolve_apid(apid, must_exist=True)
        arc.check_passes(passes)
        name = arc.apids.get(number)
        meta = arc.fields(number)
        fields = arc.resolve_fields(number, fields)
        rows = arc.packets(number, start, stop, time, passes, fields)
        mission = arc.mission_name
    tcol = f"{time}_time"
    t = rows[tcol]
    ok = np.isfinite(t)
    if not ok.any():
        raise ValueError(f"no packet of APID {number} has a{'n' if time == 'onboard' else ''} "
                         f"{time} time in the selection")
    rows = rows[ok]
    order = np.argsort(rows[tcol], kind="stable")
    rows = rows[order]
    t = rows[tcol]
    breaks = gap_breaks(t, rows["gap_before"], gap_factor)
    x = (t * 1e9).astype("datetime64[ns]")
    fig = Figure(figsize=(10, 2.2 * len(fields) + 0.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(fields), 1, sharex=True, squeeze=False)[:, 0]
    for ax, field in zip(axes, fields):
        y = rows[field]
        y2 = y.reshape(len(y), -1).astype(np.float64)
        xb, yb = _with_breaks(x, y2, breaks)
        for i in range(yb.shape[1]):
            label = field if yb.shape[1] == 1 else f"{field}[{i}]"
            ax.plot(xb, yb[:, i], lw=1, marker=".", ms=2, label=label)
        for b in breaks:
            ax.axvspan(x[b - 1], x[b], color="0.9", lw=0)
        units = meta[field].get("units") or ""
        ax.set_ylabel(f"{field} [{units}]" if units else field)
        if yb.shape[1] > 1:
            ax.legend(fontsize="small", ncols=min(4, yb.shape[1]))
        ax.grid(True, lw=0.3)
    axes[-1].set_xlabel(f"{time} time (UTC)")
    fig.suptitle(title or f"{mission}: APID {number}" + (f" ({name})" if name else ""))
    fig.savefig(out, dpi=dpi)
    return {"path": str(out), "points": int(len(rows)), "gaps": int(len(breaks)), "fields": fields}


def plot_link_quality(archive_path: str | os.PathLike, out_png: str | os.PathLike, *, start=None,
                      stop=None, passes=None, title: str | None = None, dpi: int = 100) -> dict:
    """The link over a pass, per frame against reception time: Es/N0 and the channel symbol
    error rate of the inner code (where the link has one), the Reed-Solomon symbols corrected
    (uncorrectable frames marked), and the frames refused (CRC and header checks). Returns
    ``{"path", "frames", "uncorrectable", "refused"}``. ``start``/``stop`` select by
    reception time; ``archive_path`` may be the archive directory."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plot needs matplotlib: pip install 'groundseg[plot]'") from None
    out = check_output(out_png)
    with open_archive(archive_path) as arc:
        arc.check_passes(passes)
        rec = arc.frames(passes, start, stop)
        mission = arc.mission_name
    t = rec["reception_time"] if len(rec) else np.zeros(0)
    ok = np.isfinite(t)
    if not ok.any():
        raise ValueError("no frame with a reception time in the selection")
    rec = rec[ok][np.argsort(t[ok], kind="stable")]
    x = (rec["reception_time"] * 1e9).astype("datetime64[ns]")
    names = rec.dtype.names
    inner = "esn0_db" in names and np.isfinite(rec["esn0_db"]).any()
    panels = (["esn0", "ser"] if inner else []) + ["rs", "refused"]
    fig = Figure(figsize=(10, 1.9 * len(panels) + 0.9), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    rs = rec["rs_corrected"].astype(np.float64)
    bad = rs < 0
    refused = (rec["status"] != 0) & ~bad
    for ax, panel in zip(axes, panels):
        if panel == "esn0":
            ax.plot(x, rec["esn0_db"], ".", ms=2)
            ax.set_ylabel("Es/N0 [dB]")
        elif panel == "ser":
            ax.plot(x, rec["symbol_error_rate"], ".", ms=2)
            ax.set_ylabel("symbol error rate")
        elif panel == "rs":
            ax.plot(x[~bad], rs[~bad], ".", ms=2, label="corrected symbols")
            if bad.any():
                top = max(float(rs[~bad].max()) if (~bad).any() else 0.0, 1.0)
                ax.plot(x[bad], np.full(int(bad.sum()), top * 1.1), "x", color="tab:red", ms=4,
                        label=f"uncorrectable ({int(bad.sum())})")
            ax.set_ylabel("RS symbols")
            ax.legend(fontsize="small", loc="upper right")
        else:
            ax.plot(x, refused.astype(np.int8), drawstyle="steps-post", lw=0.8)
            ax.set_yticks([0, 1], ["ok", "refused"])
            ax.set_ylabel("frame")
        ax.grid(True, lw=0.3)
    locator = AutoDateLocator()
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(ConciseDateFormatter(locator))   # carries the date
    axes[-1].set_xlabel("reception time (UTC)")
    fig.suptitle(title or f"{mission}: link quality, {len(rec):,} frames")
    fig.savefig(out, dpi=dpi)
    return {"path": str(out), "frames": int(len(rec)), "uncorrectable": int(bad.sum()),
            "refused": int(refused.sum())}
