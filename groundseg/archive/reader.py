"""Read API of the per-mission HDF5 archive (CCSDS 133.0-B Space Packets and their decoded fields).

``open_archive(path)`` opens the file as an HDF5 SWMR reader, so it works while a
writer appends; every query first re-reads the commit log (``/flushes``) and
returns rows up to the last completed flush only, never a half-written batch.
An archive left by a crashed writer is opened too: its stale consistency flags
are masked in memory (the file itself is not modified).
"""
from __future__ import annotations

import datetime as _dt
import functools
import inspect
import json
import os
import time
from pathlib import Path
from typing import Iterable, Iterator

import h5py
import numpy as np

from groundseg.archive.calibration import engineering, history, is_raw_counts
from groundseg.archive.chunks import chunk_spec, read_rows
from groundseg.archive.commitlog import pass_ranges
from groundseg.archive.errors import ArchiveDamagedError, ArchiveError, ArchiveLockedError
from groundseg.archive.h5access import OverlayFile, open_swmr_reader
from groundseg.archive.lock import writer_alive
from groundseg.archive.paths import resolve_archive
from groundseg.archive.schema import (
    ALL_PASS_COLUMNS, FLUSH_HEAD, PACKETS_GROUP, PASS_STATUS, UNDECLARED,
)
from groundseg.archive.superblock import check_file
from groundseg.archive.timeindex import INDEX_BLOCK, candidate_spans, index_path
from groundseg.archive.salvage import damage_hint
from groundseg.errors import GroundsegError, InvalidValueError, UnknownNameError
from groundseg.link.records import PACKET_DTYPE, REJECT_REASONS, PacketBatch

__all__ = ["open_archive", "Archive"]

#: Columns of a packet table that the read API returns (besides the decoded fields).
PACKET_COLUMNS = ["pass_id", "apid", "seq_count", "seq_flags", "length", "version", "type", "sec_hdr",
                  "vcid", "reception_time", "onboard_time", "frame_time", "time_source", "gap_before"]


def _open_h5(path: Path, timeout: float) -> tuple[h5py.File, bool, object | None]:
    """(file, swmr, overlay) for reading. The superblock and the file's length are checked
    first, and the SWMR open bounds HDF5's metadata read retries (``h5access``): a damaged
    file is an error within a second, never a hang."""
    if not path.exists():
        raise ArchiveError(f"{path}: no such archive")
    if path.is_dir():
        raise ArchiveError(f"{path}: is a directory, not an archive file")
    check_file(path)
    deadline = time.monotonic() + timeout
    while True:
        try:
            return open_swmr_reader(path), True, None
        except OSError as exc:
            msg = str(exc)
            if "already open for" not in msg and "not already open for SWMR" not in msg:
                raise ArchiveDamagedError(f"{path}: damaged archive: {msg.splitlines()[0]}") from None
        if not writer_alive(path):
            # flags left by a dead writer outside SWMR: mask them
            try:
                overlay = OverlayFile(path)
                return h5py.File(overlay, "r"), False, overlay
            except (OSError, ArchiveError) as exc:
                raise ArchiveDamagedError(f"{path}: damaged archive: {str(exc).splitlines()[0]}") from None
        if time.monotonic() > deadline:
            raise ArchiveLockedError(f"{path}: a writer is changing the archive's layout; try again")
        time.sleep(0.05)


def _apid_list(known: dict) -> str:
    return ", ".join(f"{a} {n}" if n else str(a) for a, n in known.items()) or "none"


def _guarded(method):
    """h5py errors from a damaged file -> ArchiveDamagedError saying what repair recovers.
    (A generator method is wrapped as a generator.)"""
    if inspect.isgeneratorfunction(method):
        @functools.wraps(method)
        def gen(self, *args, **kwargs):
            try:
                yield from method(self, *args, **kwargs)
            except (OSError, RuntimeError, KeyError) as exc:
                raise _damaged(self.path, exc) from None
        return gen

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (OSError, RuntimeError, KeyError) as exc:
            raise _damaged(self.path, exc) from None
    return wrapper


def _damaged(path: Path, exc: BaseException) -> BaseException:
    if isinstance(exc, GroundsegError):
        return exc  # ours already: an unknown name, a locked or damaged archive
    reason = (str(exc.args[0]) if exc.args else type(exc).__name__).splitlines()[0]
    return ArchiveDamagedError(f"{path}: damaged archive: {reason}; {damage_hint(path)}")


def _to_unix(t) -> float | None:
    if t is None:
        return None
    if isinstance(t, (int, float, np.integer, np.floating)):
        return float(t)
    if isinstance(t, np.datetime64):
        return float(t.astype("datetime64[ns]").astype(np.int64)) / 1e9
    if isinstance(t, _dt.datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=_dt.timezone.utc)
        return t.timestamp()
    if isinstance(t, str):
        try:
            return _to_unix(np.datetime64(t.strip().rstrip("Zz")))
        except ValueError:
            raise InvalidValueError(f"{t!r} is not a UTC time in ISO 8601 form "
                                    f"(e.g. 2026-01-01T04:29:43)") from None
    if hasattr(t, "timestamp"):
        return float(t.timestamp())
    raise ValueError(f"a time must be UNIX seconds, datetime or ISO 8601 text, not {t!r}")


def iso(t: float) -> str | None:
    """UNIX seconds -> ISO 8601 UTC text (None for NaN)."""
    if t is None or not np.isfinite(t):
        return None
    return _dt.datetime.fromtimestamp(float(t), _dt.timezone.utc).isoformat().replace("+00:00", "Z")


class Archive:
    """A per-mission archive opened for reading (see :func:`open_archive`)."""

    def __init__(self, path: str | os.PathLike, timeout: float = 10.0):
        self.path = resolve_archive(path)
        self._timeout = timeout
        self._f = None
        self._swmr = False
        self._overlay = None
        self._handles: dict[str, tuple] = {}
        self._specs: dict[str, object] = {}   # dataset -> chunks.ChunkSpec (or None)
        self._gen_sync = 0
        self.mission_name = ""
        self.spacecraft_id = -1
        self.schema_version = 0
        self.groundseg_version = ""
        self._tables: list[str] = []
        self._gen = 0
        self._fresh = False     # inside the first _sync of a handle just opened
        self._fl = np.zeros((0, len(FLUSH_HEAD)), np.int64)
        self._fl_valid = 0
        self._ranges: dict = {}
        self._rows: dict[str, int] = {}
        try:
            self._open()
        except ArchiveDamagedError as exc:
            self.close()
            if "archive repair" in str(exc):
                raise
            raise ArchiveDamagedError(f"{exc}; {damage_hint(self.path)}") from None
        except BaseException:
            self.close()
            raise

    # -- file
    @_guarded
    def _open(self) -> None:
        self._handles = {}
        self._specs = {}
        self._gen_sync = 0
        self._f, self._swmr, self._overlay = _open_h5(self.path, self._timeout)
        f = self._f
        if "flushes" not in f or "schema_version" not in f.attrs:
            raise ArchiveError(f"{self.path}: not a groundseg archive")
        self.mission_name = str(f.attrs.get("mission_name", ""))
        self.spacecraft_id = int(f.attrs.get("spacecraft_id", -1))
        self.schema_version = int(f.attrs["schema_version"])
        self.groundseg_version = str(f.attrs.get("groundseg_version", ""))
        self._tables = json.loads(f["flushes"].attrs["tables"])
        self._gen = int(f.attrs.get("layout_gen", 0))
        self._fl = np.zeros((0, len(FLUSH_HEAD)), np.int64)
        self._fl_valid = 0
        self._ranges = {}
        self._fresh = True
        try:
            self._sync()
        finally:
            self._fresh = False

    def close(self) -> None:
        self._handles = {}
        self._specs = {}
        if self._f is not None:
            try:
                self._f.close()
            except Exception:
                pass
            self._f = None
        if self._overlay is not None:
            self._overlay.close()
            self._overlay = None

    def __enter__(self) -> "Archive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _ds(self, name: str) -> h5py.Dataset:
        """One handle per dataset, refreshed once per query: HDF5 refuses to refresh a
        dataset while a second handle on it is open ("can't insert duplicate key")."""
        got = self._handles.get(name)
        if got is not None and got[1] == self._gen_sync:
            return got[0]
        ds = got[0] if got is not None else self._f[name]
        if self._swmr:
            ds.refresh()
        self._handles[name] = (ds, self._gen_sync)
        return ds

    def _sync(self) -> None:
        """Re-read the commit log: committed row counts and pass row ranges. Only rows
        after the last valid commit already seen are read again."""
        self._gen_sync += 1
        for attempt in range(3):
            try:
                fl_ds = self._ds("flushes")
                n_all = fl_ds.shape[0]
                known = self._fl_valid
                tail = fl_ds[known:n_all] if n_all > known else np.zeros((0, fl_ds.shape[1]), np.int64)
                break
            except (OSError, KeyError, RuntimeError):
                if attempt == 2:
                    raise
                time.sleep(0.05)
                self.close()
                self._f, self._swmr, self._overlay = _open_h5(self.path, self._timeout)
                self._gen_sync += 1
        # valid rows continue the sequence: flush_id == index + 1
        ids = tail[:, 0] if len(tail) else np.zeros(0, np.int64)
        ok = ids == np.arange(known + 1, known + 1 + len(tail))
        m = int(np.argmin(ok)) if not ok.all() else len(tail)
        tail = tail[:m]
        if len(tail) and int(tail[:, 2].max()) > self._gen:
            if not self._fresh:
                # the writer created datasets since we opened: see them
                self.close()
                self._open()
                return
            # a handle just opened sees every dataset there is: the file's layout_gen is
            # behind its commit log when a writer stopped between a commit and the attribute
            # (kill -9, Ctrl-C); reopening again would never catch up
            self._gen = int(tail[:, 2].max())
        if len(tail):
            width = max(self._fl.shape[1], tail.shape[1])
            fl = np.zeros((known + len(tail), width), np.int64)
            fl[:known, :self._fl.shape[1]] = self._fl
            fl[known:, :tail.shape[1]] = tail
            self._fl = fl
            self._fl_valid = len(fl)
            self._ranges = pass_ranges(fl, self._tables)
        fl = self._fl
        n = len(fl)
        width = fl.shape[1] if n else len(FLUSH_HEAD)
        self._rows = {t: (int(fl[-1, len(FLUSH_HEAD) + i]) if n and len(FLUSH_HEAD) + i < width else 0)
                      for i, t in enumerate(self._tables)}

    @_guarded
    def refresh(self) -> None:
        """See what the writer committed since the last query (queries do this themselves)."""
        self._sync()

    # -- passes
    @property
    @_guarded
    def passes(self) -> np.ndarray:
        """One row per pass: id, status (0 open, 1 complete, 2 interrupted, 3 incomplete),
        times (UNIX s), counts, the report's scalar counts (-1 when it has none)."""
        self._sync()
        n = self._rows.get("passes", 0)
        if "passes" not in self._f or n == 0:
            return np.zeros(0, [("pass_id", "<u4")])
        g = self._f["passes"]
        order = {name: i for i, (name, _) in enumerate(ALL_PASS_COLUMNS)}
        names = sorted((k for k in g if not g[k].attrs.get("heap", False)),
                       key=lambda k: (order.get(k, len(order)), k))
        cols = {k: self._ds(f"passes/{k}")[:n] for k in names}
        dt = [(k, cols[k].dtype.str) for k in names]
        out = np.zeros(n, dt)
        for k in names:
            out[k] = cols[k]
        return out

    def _text(self, off: int, length: int) -> str:
        if off < 0 or length <= 0:
            return ""
        return bytes(self._ds("passes/text")[off:off + length]).decode("utf-8", "replace")

    @_guarded
    def pass_info(self, pass_id: int) -> dict:
        """A pass's row as a dict, with its source, mission file text and report (dict or None)."""
        rows = self.passes
        sel = np.flatnonzero(rows["pass_id"] == int(pass_id))
        if not len(sel):
            raise UnknownNameError(f"no pass {pass_id} in {self.path} (passes: "
                                   f"{', '.join(map(str, rows['pass_id'].tolist())) or 'none'})")
        r = rows[sel[0]]
        out = {k: r[k].item() for k in rows.dtype.names}
        out["status_name"] = PASS_STATUS[out["status"]] if out["status"] < len(PASS_STATUS) else "?"
        out["source"] = self._text(out["source_offset"], out["source_length"])
        out["mission_text"] = self._text(out["mission_offset"], out["mission_length"])
        rep = self._text(out["report_offset"], out["report_length"])
        out["report"] = json.loads(rep) if rep else None
        return out

    # -- APIDs
    def _apid_groups(self) -> dict[int, str]:
        out = {}
        if PACKETS_GROUP in self._f:
            for name, g in self._f[PACKETS_GROUP].items():
                if name != UNDECLARED and "apid" in g.attrs:
                    out[int(g.attrs["apid"])] = f"{PACKETS_GROUP}/{name}"
        return out

    @property
    @_guarded
    def apids(self) -> dict[int, str | None]:
        """APIDs in the archive: id -> mission-file name (None for APIDs never declared)."""
        self._sync()
        out: dict[int, str | None] = {}
        for apid, path in self._apid_groups().items():
            out[apid] = str(self._f[path].attrs.get("name", path.rsplit("/", 1)[-1]))
        upath = f"{PACKETS_GROUP}/{UNDECLARED}"
        n = self._rows.get(upath, 0)
        if n:
            for a in np.unique(self._ds(upath + "/apid")[:n]):
                out.setdefault(int(a), None)
        return dict(sorted(out.items()))

    @_guarded
    def resolve_apid(self, apid: int | str, must_exist: bool = False) -> int:
        """An APID number or its mission-file name (any case) -> the number. With
        ``must_exist``, a number the archive has never seen is refused too. Raises
        UnknownNameError naming the APIDs that exist."""
        known = self.apids
        if isinstance(apid, (int, np.integer)):
            number = int(apid)
        elif str(apid).strip().isdigit():
            number = int(str(apid).strip())
        else:
            s = str(apid).strip()
            for a, name in known.items():
                if name is not None and name.lower() == s.lower():
                    return a
            raise UnknownNameError(f"no APID named {s!r} in {self.path} (APIDs: {_apid_list(known)})")
        if must_exist and number not in known:
            raise UnknownNameError(f"no APID {number} in {self.path} (APIDs: {_apid_list(known)})")
        return number

    def resolve_fields(self, apid: int | str, names: Iterable[str]) -> list[str]:
        """Field names (any case) -> their names in the archive. Raises UnknownNameError
        naming the fields the APID has."""
        number = self.resolve_apid(apid)
        have = self.fields(number)
        lower = {k.lower(): k for k in have}
        out, missing = [], []
        for n in names:
            got = n if n in have else lower.get(str(n).lower())
            (out if got is not None else missing).append(got if got is not None else n)
        if missing:
            raise UnknownNameError(f"APID {number} has no field {', '.join(missing)} in {self.path} "
                                   f"(fields: {', '.join(have) or 'none, raw packets only'})")
        return out

    # -- row selection
    def _pass_list(self, passes) -> list[int] | None:
        if passes is None:
            return None
        if isinstance(passes, (int, np.integer)):
            return [int(passes)]
        return [int(p) for p in passes]

    @_guarded
    def check_passes(self, passes) -> None:
        """Raise UnknownNameError for a pass id (or ids) the archive does not hold."""
        want = self._pass_list(passes)
        if want is None:
            return
        have = self.passes["pass_id"].tolist()
        missing = [p for p in want if p not in have]
        if missing:
            raise UnknownNameError(f"no pass {', '.join(map(str, missing))} in {self.path} "
                                   f"(passes: {', '.join(map(str, have)) or 'none'})")

    def _row_ranges(self, table: str, passes) -> list[tuple[int, int]]:
        n = self._rows.get(table, 0)
        plist = self._pass_list(passes)
        if plist is None:
            return [(0, n)] if n else []
        out = []
        for p in sorted(plist):
            a, b = self._ranges.get(p, {}).get(table, (0, 0))
            b = min(b, n)
            if b > a:
                out.append((a, b))
        return out

    def _time_index(self, table: str) -> np.ndarray | None:
        """The table's time index (``timeindex``), None when the archive has none."""
        key = index_path(table)
        if not table.startswith(PACKETS_GROUP + "/") or key not in self._f:
            return None
        return self._ds(key)[:]

    def _select(self, table: str, passes, tcol: str | None, start, stop,
                apid: int | None = None) -> list[tuple[int, np.ndarray]]:
        """[(range start, local row indices)] of the rows matching pass, time and APID.
        With a time window, only the blocks the time index allows are read."""
        t0, t1 = _to_unix(start), _to_unix(stop)
        timed = tcol is not None and (t0 is not None or t1 is not None)
        index = self._time_index(table) if timed and tcol in ("onboard_time", "reception_time") else None
        column = 0 if tcol == "onboard_time" else 1
        out = []
        for a0, b0 in self._row_ranges(table, passes):
            for a, b in candidate_spans(index, a0, b0, column, t0, t1):
                mask = np.ones(b - a, bool)
                if apid is not None:
                    mask &= self._span(table, "apid", a, b) == apid
                if timed:
                    t = self._span(table, tcol, a, b)
                    if t0 is not None:
                        mask &= t >= t0
                    if t1 is not None:
                        mask &= t < t1
                idx = np.flatnonzero(mask)
                if len(idx):
                    out.append((a, idx))
        return out

    def _spec(self, name: str, ds):
        return self._specs[name] if name in self._specs else self._specs.setdefault(name, chunk_spec(ds))

    def _span(self, table: str, column: str, a: int, b: int) -> np.ndarray:
        """Rows a:b of a column, a compressed one inflated by ISA-L (chunks.read_rows)."""
        name = f"{table}/{column}"
        ds = self._ds(name)
        spec = self._spec(name, ds)
        return read_rows(ds, a, b, spec) if spec is not None else ds[a:b]

    def _read(self, table: str, column: str, sel: list[tuple[int, np.ndarray]], ds=None) -> np.ndarray:
        # one handle per dataset at a time: H5Drefresh with a second open handle on the
        # same dataset fails ("can't insert duplicate key")
        ds = self._ds(f"{table}/{column}") if ds is None else ds
        parts = []
        name = f"{table}/{column}"
        spec = self._spec(name, ds)
        for a, idx in sel:
            lo, hi = a + int(idx[0]), a + int(idx[-1]) + 1
            # a compressed column inflated by ISA-L chunk by chunk (chunks.read_rows), not
            # by HDF5's system zlib at ~300 MB/s
            block = read_rows(ds, lo, hi, spec) if spec is not None else ds[lo:hi]
            # every row of the span selected (a time window's inner blocks): no gather
            parts.append(block if hi - lo == len(idx) else block[idx - idx[0]])
        if not parts:
            return np.zeros((0,) + ds.shape[1:], ds.dtype)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _packet_tables(self, apid: int) -> list[tuple[str, int | None]]:
        tables = []
        path = self._apid_groups().get(apid)
        if path is not None and path in self._rows:
            tables.append((path, None))
        upath = f"{PACKETS_GROUP}/{UNDECLARED}"
        if upath in self._rows:
            tables.append((upath, apid))
        return tables

    @staticmethod
    def _time_column(time: str) -> str:
        if time not in ("onboard", "reception"):
            raise ValueError(f"time must be 'onboard' or 'reception', not {time!r}")
        return f"{time}_time"

    # -- packets
    @_guarded
    def packets(self, apid: int | str, start=None, stop=None, time: str = "onboard",
                passes=None, fields: Iterable[str] | None = None) -> np.ndarray:
        """One structured row per archived packet of ``apid`` (number or name), in reception
        order: header columns, reception/onboard/frame time (UNIX s, NaN unknown),
        ``time_source`` (0 onboard, 1 frame insert zone, 2 reception, 3 none) and the decoded
        fields. ``start <= t < stop`` on ``time`` ("onboard" or "reception"); ``passes`` an id
        or a list of ids."""
        self._sync()
        apid = self.resolve_apid(apid)
        tcol = self._time_column(time)
        want = None if fields is None else self.resolve_fields(apid, fields)
        pieces = []
        field_dtypes: dict[str, tuple] = {}
        for table, filt in self._packet_tables(apid):
            sel = self._select(table, passes, tcol, start, stop, filt)
            cols = {c: self._read(table, c, sel) for c in PACKET_COLUMNS if c in self._f[table]}
            fcols = {}
            counts = {}   # raw-count fields: calibrated straight into the output below
            if "fields" in self._f[table]:
                for fname in self._field_order(self._f[table]["fields"]):
                    if want is not None and fname not in want:
                        continue
                    ds = self._ds(f"{table}/fields/{fname}")
                    vals = self._read(table, f"fields/{fname}", sel, ds)
                    if is_raw_counts(ds):
                        counts[fname] = (history(ds), ds.attrs["missing"])
                        fdt, fill = np.dtype(np.float64), np.nan
                    else:
                        # native byte order out (ccsdspy fields are often stored big-endian)
                        fdt = ds.dtype.newbyteorder("=") if ds.dtype.byteorder == ">" else ds.dtype
                        fill = ds.fillvalue
                    fcols[fname] = vals
                    field_dtypes.setdefault(fname, (fdt, ds.shape[1:], fill))
                    del ds
            pieces.append((cols, fcols, counts))
        dt = [(c, PACKET_DTYPE[c].str if c in PACKET_DTYPE.names else None) for c in PACKET_COLUMNS]
        extra = {"pass_id": "<u4", "onboard_time": "<f8", "time_source": "u1"}
        dt = [(c, t or extra[c]) for c, t in dt]
        names = set(PACKET_COLUMNS)
        fmap = {}
        for fname, (fdt, shape, _) in field_dtypes.items():
            col = fname if fname not in names else f"field_{fname}"
            fmap[fname] = col
            dt.append((col, fdt.str if fdt.kind != "V" else fdt, shape) if shape else (col, fdt.str))
        n = sum(len(next(iter(c.values()))) if c else 0 for c, _, _ in pieces)
        out = np.zeros(n, dt)
        row = 0
        filled = 0
        step = 8192  # rows at a time, every column: the output's rows stay in cache
        for cols, fcols, counts in pieces:
            m = len(next(iter(cols.values()))) if cols else 0
            if m == 0:
                continue
            filled += 1
            srcs = [(out[c], v) for c, v in cols.items()]
            consts = []
            for fname, (fdt, shape, fill) in field_dtypes.items():
                if fname in counts:
                    hist, missing = counts[fname]
                    engineering(fcols[fname], hist, cols["pass_id"], missing, out=out[fmap[fname]][row:row + m])
                elif fname in fcols:
                    srcs.append((out[fmap[fname]], fcols[fname]))
                else:
                    consts.append((out[fmap[fname]], fill if fill is not None else 0))
            for r in range(0, m, step):
                e = min(m, r + step)
                for dst, v in srcs:
                    dst[row + r:row + e] = v[r:e]
                for dst, v in consts:
                    dst[row + r:row + e] = v
            row += m
        if filled > 1:
            out = out[np.argsort(out["pass_id"], kind="stable")]
        return out

    @_guarded
    def fields(self, apid: int | str) -> dict[str, dict]:
        """Decoded fields of an APID: name -> {dtype, units, calibration}."""
        self._sync()
        apid = self.resolve_apid(apid)
        path = self._apid_groups().get(apid)
        out = {}
        if path is not None and "fields" in self._f[path]:
            g = self._f[path]["fields"]
            for name in self._field_order(g):
                ds = g[name]  # not items(): h5py gives None for an object it cannot open
                counts = is_raw_counts(ds)
                out[name] = {"dtype": "float64" if counts else str(ds.dtype),
                             "units": str(ds.attrs.get("units", "")),
                             "calibration": str(ds.attrs.get("calibration", ""))}
                if counts:  # stored as raw counts, calibrated as they are read
                    out[name]["raw_dtype"] = str(np.dtype(str(ds.attrs["raw_dtype"])))
                    out[name]["calibrations"] = history(ds)
        return out

    @staticmethod
    def _field_order(group) -> list[str]:
        """Field names in the definition's order (the ``position`` each was written with;
        archives written before it had one list by name)."""
        names = list(group.keys())
        pos = {n: group[n].attrs.get("position", len(names) + i) for i, n in enumerate(names)}
        return sorted(names, key=lambda n: int(pos[n]))

    def dataframe(self, apid: int | str, start=None, stop=None, time: str = "onboard",
                  passes=None, fields: Iterable[str] | None = None):
        """:meth:`packets` as a pandas DataFrame (needs pandas), with ``onboard_utc`` and
        ``reception_utc`` datetime columns; multi-valued fields become ``name[i]`` columns."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("dataframe() needs pandas: pip install 'groundseg[pandas]'") from None
        arr = self.packets(apid, start, stop, time, passes, fields)
        data = {}
        for name in arr.dtype.names:
            col = arr[name]
            if col.ndim > 1:
                flat = col.reshape(len(col), -1)
                for i in range(flat.shape[1]):
                    data[f"{name}[{i}]"] = flat[:, i]
            else:
                data[name] = col
        df = pd.DataFrame(data)
        for t in ("onboard", "reception"):
            df[f"{t}_utc"] = pd.to_datetime(arr[f"{t}_time"], unit="s", utc=True, errors="coerce")
        return df

    @_guarded
    def iter_raw_packets(self, apid: int | str, start=None, stop=None, time: str = "onboard",
                         passes=None, max_bytes: int = 32 << 20) -> Iterator[PacketBatch]:
        """The APID's raw packets in reception order (passes in archive order, packets in
        order within a pass), as PacketBatch pieces of about ``max_bytes``: bounded memory."""
        self._sync()
        apid = self.resolve_apid(apid)
        tcol = self._time_column(time)
        pieces = []
        for table, filt in self._packet_tables(apid):
            for a, idx in self._select(table, passes, tcol, start, stop, filt):
                pid = int(self._ds(f"{table}/pass_id")[a + idx[0]])
                pieces.append((pid, table, a, idx))
        pieces.sort(key=lambda p: p[0])
        for _, table, a, idx in pieces:
            length = self._ds(f"{table}/length")
            off = self._ds(f"{table}/raw_offset")
            lo, hi = a + int(idx[0]), a + int(idx[-1]) + 1
            lens = length[lo:hi][idx - idx[0]].astype(np.int64)
            offs = off[lo:hi][idx - idx[0]].astype(np.int64)
            ends = np.cumsum(lens)
            i = 0
            while i < len(idx):
                j = int(np.searchsorted(ends, (ends[i - 1] if i else 0) + max_bytes, "right"))
                j = max(j, i + 1)
                yield self._gather(table, idx[i:j] + a, offs[i:j], lens[i:j])
                i = j

    def _gather(self, table: str, rows: np.ndarray, offs: np.ndarray, lens: np.ndarray) -> PacketBatch:
        raw = self._ds(f"{table}/raw")
        base = int(offs.min())
        top = int((offs + lens).max())
        blob = raw[base:top]
        out_off = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(lens, out=out_off[1:])
        pos = np.repeat(offs - base - out_off[:-1], lens) + np.arange(int(out_off[-1]), dtype=np.int64)
        header = np.zeros(len(rows), PACKET_DTYPE)
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        for c in PACKET_DTYPE.names:
            if c in self._f[table]:
                header[c] = self._ds(f"{table}/{c}")[lo:hi][rows - lo]
        return PacketBatch(blob[pos], out_off, header)

    def raw_packets(self, apid: int | str, start=None, stop=None, time: str = "onboard",
                    passes=None) -> PacketBatch:
        """All of :meth:`iter_raw_packets` in one PacketBatch."""
        return PacketBatch.concatenate(list(self.iter_raw_packets(apid, start, stop, time, passes)))

    @_guarded
    def apid_time_span(self, apid: int | str, time: str = "onboard", passes=None) -> tuple[float, float]:
        """(first, last) time of an APID's packets (UNIX s, NaN if none). Whole blocks of
        rows are answered by the time index; only the rows of blocks at the edges of a
        range (and tables without an index, or shared by several APIDs) are read, a
        million rows at a time."""
        self._sync()
        apid = self.resolve_apid(apid)
        tcol = self._time_column(time)
        column = 0 if tcol == "onboard_time" else 1
        lo, hi = np.inf, -np.inf
        for table, filt in self._packet_tables(apid):
            ds = self._ds(f"{table}/{tcol}")
            index = self._time_index(table) if filt is None else None
            for a, b in self._row_ranges(table, passes):
                spans = [(a, b)]
                if index is not None:
                    k0 = -(-a // INDEX_BLOCK)            # first whole block
                    k1 = min(b // INDEX_BLOCK, len(index))   # end of whole, indexed blocks
                    if k1 > k0:
                        v = index[k0:k1, 2 * column:2 * column + 2]
                        if np.isfinite(v[:, 0]).any():
                            lo = min(lo, float(np.nanmin(v[:, 0])))
                            hi = max(hi, float(np.nanmax(v[:, 1])))
                        spans = [(a, k0 * INDEX_BLOCK), (k1 * INDEX_BLOCK, b)]
                for s0, e0 in spans:
                    for s in range(s0, e0, 1 << 20):
                        e = min(e0, s + (1 << 20))
                        t = ds[s:e]
                        if filt is not None:
                            t = t[self._ds(f"{table}/apid")[s:e] == filt]
                        t = t[np.isfinite(t)]
                        if t.size:
                            lo, hi = min(lo, float(t.min())), max(hi, float(t.max()))
        return (lo, hi) if np.isfinite(lo) else (np.nan, np.nan)

    @_guarded
    def packet_count(self, apid: int | str | None = None, passes=None) -> int:
        """Packets archived (of one APID, or all), from the committed rows."""
        self._sync()
        total = 0
        if apid is None:
            for t in self._rows:
                if t.startswith(PACKETS_GROUP + "/"):
                    total += sum(b - a for a, b in self._row_ranges(t, passes))
            return total
        apid = self.resolve_apid(apid)
        for table, filt in self._packet_tables(apid):
            if filt is None:
                total += sum(b - a for a, b in self._row_ranges(table, passes))
            else:
                total += sum(len(idx) for _, idx in self._select(table, passes, None, None, None, filt))
        return total

    # -- frames, rejects, VCA
    @_guarded
    def _table(self, table: str, passes, start, stop, tcol="reception_time") -> np.ndarray:
        self._sync()
        if table not in self._f or table not in self._rows:
            return np.zeros(0, [("pass_id", "<u4")])
        g = self._f[table]
        names = [k for k in list(g.keys()) if g.get(k, getclass=True) is h5py.Dataset
                 and not self._ds(f"{table}/{k}").attrs.get("heap", False)]
        sel = self._select(table, passes, tcol if tcol in g else None, start, stop)
        cols = {k: self._read(table, k, sel) for k in names}
        dt = [(k, cols[k].dtype.str, cols[k].shape[1:]) if cols[k].ndim > 1 else (k, cols[k].dtype.str)
              for k in names]
        out = np.zeros(len(cols[names[0]]) if names else 0, dt)
        for k in names:
            out[k] = cols[k]
        return out

    def frames(self, passes=None, start=None, stop=None) -> np.ndarray:
        """Per-frame quality records (the link layer's frame records + pass_id);
        ``start <= reception_time < stop``."""
        return self._table("frames", passes, start, stop)

    def rejects(self, passes=None, start=None, stop=None, with_data: bool = False):
        """Refused frames and packets: records with ``reason`` (index into REJECT_REASONS),
        ``reason_name``, vcid, apid, reception time, pass_id. ``with_data``: also return
        ``(data, offsets)`` of their raw bytes."""
        rec = self._table("rejects", passes, start, stop)
        if "reason" in (rec.dtype.names or ()):
            names = np.array(REJECT_REASONS + ("?",))
            codes = np.minimum(rec["reason"].astype(np.int64), len(REJECT_REASONS))
            dt = rec.dtype.descr + [("reason_name", "U20")]
            out = np.zeros(len(rec), dt)
            for k in rec.dtype.names:
                out[k] = rec[k]
            out["reason_name"] = names[codes]
            rec = out
        if not with_data:
            return rec
        return (rec,) + self._heap_bytes("rejects", rec)

    def _heap_bytes(self, table: str, rec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(rec) == 0:
            return np.zeros(0, np.uint8), np.zeros(1, np.int64)
        offs = rec["raw_offset"].astype(np.int64)
        lens = rec["length"].astype(np.int64)
        raw = self._ds(f"{table}/raw")
        base, top = int(offs.min()), int((offs + lens).max())
        blob = raw[base:top] if top > base else np.zeros(0, np.uint8)
        out_off = np.zeros(len(rec) + 1, np.int64)
        np.cumsum(lens, out=out_off[1:])
        pos = np.repeat(offs - base - out_off[:-1], lens) + np.arange(int(out_off[-1]), dtype=np.int64)
        return blob[pos], out_off

    def vca(self, passes=None, start=None, stop=None):
        """Frames of "vca" virtual channels: (records, data, offsets) of their data fields."""
        rec = self._table("vca", passes, start, stop)
        return (rec,) + self._heap_bytes("vca", rec)

    def time_span(self, time: str = "onboard") -> tuple[float, float]:
        """(first, last) time over all passes (UNIX s; NaN if unknown)."""
        p = self.passes
        if time == "onboard":
            a, b = p["onboard_start"] if len(p) else [], p["onboard_end"] if len(p) else []
        else:
            a, b = p["reception_start"] if len(p) else [], p["reception_end"] if len(p) else []
        a, b = np.asarray(a, float), np.asarray(b, float)
        lo = float(np.nanmin(a)) if np.isfinite(a).any() else np.nan
        hi = float(np.nanmax(b)) if np.isfinite(b).any() else np.nan
        return lo, hi


def open_archive(path: str | os.PathLike, timeout: float = 10.0) -> Archive:
    """Open a per-mission archive for reading (HDF5 SWMR reader: works while a writer appends).

    Raises :class:`~groundseg.archive.hdf5.ArchiveError` if the file is missing, not an
    archive or unreadable, :class:`~groundseg.archive.hdf5.ArchiveLockedError` if a writer
    keeps changing its layout for ``timeout`` seconds.
    """
    return Archive(path, timeout)

