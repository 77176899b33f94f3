"""What of a damaged archive the commit log proves intact, and its recovery into a new file.

A damaged file (truncated, or metadata corrupted) cannot be repaired in place: HDF5 has
no tool for that. But every commit of ``/flushes`` names the row count of every table,
so the last commit whose rows are all readable can be copied into a fresh archive.
:func:`survey` finds that commit reading only metadata (chunk indexes), :func:`salvage`
copies it, reading the data, and falls back to an earlier commit if a chunk it needs
turns out unreadable. The damaged file is kept beside the new one, never deleted.

The file is read through ``h5access.OverlayFile`` (superblock flags masked, end of
allocation at least the file size) without SWMR: HDF5 then reads each metadata block
once, so a checksum mismatch is an error at once.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
from groundseg.archive.commitlog import last_commit
from groundseg.archive.errors import ArchiveDamagedError, ArchiveError
from groundseg.archive.h5access import OverlayFile
from groundseg.archive.schema import (
    ALL_PASS_COLUMNS, FLUSH_HEAD, LIBVER, PACKET_EXTRA_COLUMNS, PACKETS_GROUP, PASS_COLUMNS, PASS_OPEN,
    REPORT_COLUMNS, REPORT_SUMS,
)
from groundseg.link.records import PACKET_DTYPE

__all__ = ["Survey", "survey", "salvage", "damage_hint", "check_intact"]

#: h5py's exceptions for unreadable metadata or data.
H5_ERRORS = (OSError, RuntimeError, KeyError, ValueError)


class Survey:
    """The last intact commit of an archive: ``commit`` (index into /flushes, -1 if none),
    ``commits`` (valid rows in /flushes), ``rows`` (row count per table at ``commit``),
    ``passes`` and ``packets`` it holds, and ``problem`` (why nothing is intact)."""

    def __init__(self):
        self.commit = -1
        self.commits = 0
        self.tables: list[str] = []
        self.rows: dict[str, int] = {}
        self.passes = 0
        self.packets = 0
        self.continued = False  # the pass of ``commit`` went on after it
        self.readable = True    # the file and its commit log could be read
        self.rebuild_passes = False  # pass rows lost: rebuilt from the commit log
        self.problem = ""


def _open(path: Path) -> tuple[h5py.File, OverlayFile]:
    overlay = OverlayFile(path)
    try:
        return h5py.File(overlay, "r"), overlay
    except BaseException:
        overlay.close()
        raise


def _intact_rows(ds: h5py.Dataset, size: int) -> int:
    """Leading rows of ``ds`` whose chunks lie wholly inside the file (metadata only:
    the chunk index is walked, no data read)."""
    n = ds.shape[0]
    if n == 0:
        return 0
    bad = [n]

    def visit(info):
        if info.byte_offset + info.size > size:
            bad[0] = min(bad[0], info.chunk_offset[0])
    ds.id.chunk_iter(visit)
    return bad[0]


def _required(table: str) -> set[str]:
    """Datasets a table cannot be read without (a corrupt link heap can hide names from a
    listing without an error, so their presence is checked)."""
    if table.startswith(PACKETS_GROUP + "/"):
        return set(PACKET_DTYPE.names) | {n for n, _ in PACKET_EXTRA_COLUMNS} | {"raw"}
    if table == "passes":
        return {n for n, _ in PASS_COLUMNS if n != "empty"} | {"text"}
    if table == "rejects":
        return {"pass_id", "raw_offset", "length", "raw"}
    return {"pass_id"}


def _table_intact(f: h5py.File, table: str, size: int) -> tuple[int, int]:
    """(rows, heap bytes) of ``table`` that are intact; (0, 0) if its metadata is not."""
    try:
        g = f[table]
        if not _required(table) <= set(g.keys()):
            return 0, 0
        rows = None
        heap = None
        for name, ds in _datasets(g):
            n = _intact_rows(ds, size)
            if ds.attrs.get("heap", False):
                heap = n if heap is None else min(heap, n)
            else:
                rows = n if rows is None else min(rows, n)
        return (rows or 0), (heap or 0)
    except H5_ERRORS:
        return 0, 0


def _datasets(g: h5py.Group, prefix: str = ""):
    """(relative name, dataset) of a table group, its fields/ subgroup included."""
    for name in list(g.keys()):
        obj = g[name]
        if isinstance(obj, h5py.Group):
            yield from _datasets(obj, prefix + name + "/")
        else:
            yield prefix + name, obj


def _heap_need(f: h5py.File, table: str, rows: int) -> int:
    """Heap bytes the first ``rows`` rows of ``table`` use."""
    g = f[table]
    names = set(g.keys())  # listed, not looked up: a lookup of an absent name can hit damage
    if "raw" in names and rows:
        return int(g["raw_offset"][rows - 1]) + int(g["length"][rows - 1])
    if table == "passes" and rows and "text" in names:
        ends = [int(g[o][:rows].max()) + int(g[n][:rows].max()) for o, n in
                (("source_offset", "source_length"), ("mission_offset", "mission_length"),
                 ("report_offset", "report_length"))]
        return max(0, *ends)
    return 0


def survey(path: str | os.PathLike, limit: dict[str, int] | None = None,
           heap_limit: dict[str, int] | None = None) -> Survey:
    """The last commit whose rows are all intact (``limit``/``heap_limit``: the row or heap
    byte from which a table was found unreadable by :func:`salvage` while copying)."""
    limit = limit or {}
    heap_limit = heap_limit or {}
    p = Path(path)
    out = Survey()
    try:
        f, overlay = _open(p)
    except (OSError, ArchiveError) as exc:
        out.problem = f"the file does not open ({str(exc).splitlines()[0]})"
        out.readable = False
        return out
    try:
        try:
            fl_ds = f["flushes"]
            tables = json.loads(fl_ds.attrs["tables"])
            fl = fl_ds[:]
        except H5_ERRORS as exc:
            out.problem = f"the commit log is unreadable ({str(exc).splitlines()[0]})"
            out.readable = False
            return out
        n = last_commit(fl) + 1
        fl = fl[:n]
        out.commits = n
        out.tables = tables
        size = p.stat().st_size
        intact = {t: _table_intact(f, t, size) for t in tables}
        for k in range(n - 1, -1, -1):
            row = fl[k]
            rows = {t: int(row[len(FLUSH_HEAD) + i]) if len(FLUSH_HEAD) + i < len(row) else 0
                    for i, t in enumerate(tables)}
            ok = True
            for t, r in rows.items():
                if t == "passes":
                    continue  # rebuilt from the commit log when lost (``_rebuild_passes``)
                if r > min(intact[t][0], limit.get(t, r)):
                    ok = False
                    break
                try:
                    if r and _heap_need(f, t, r) > min(intact[t][1], heap_limit.get(t, 1 << 62)):
                        ok = False
                        break
                except H5_ERRORS:
                    ok = False
                    break
            if ok:
                out.commit, out.rows = k, rows
                try:
                    r = rows.get("passes", 0)
                    out.rebuild_passes = r > min(intact["passes"][0], limit.get("passes", r)) or \
                        (r and _heap_need(f, "passes", r) > intact["passes"][1])
                except (H5_ERRORS + (KeyError,)):
                    out.rebuild_passes = True
                out.continued = bool(k + 1 < n and int(fl[k + 1, 1]) == int(row[1]) and row[1])
                out.passes = len({int(x) for x in fl[:k + 1, 1] if x})
                out.packets = sum(r for t, r in rows.items() if t.startswith(PACKETS_GROUP + "/"))
                return out
        out.problem = "no commit has all its rows intact" if n else "the commit log is empty"
        return out
    finally:
        f.close()
        overlay.close()


def check_intact(path: str | os.PathLike) -> None:
    """Raise ArchiveDamagedError when a committed row of ``path`` is not intact (the
    file must not be being written: a reader sees a live writer's file as it moves)."""
    s = survey(path)
    if not s.readable:
        raise ArchiveDamagedError(f"{path}: damaged archive: {s.problem}; {_hint(path, s)}")
    if s.commit < s.commits - 1:
        raise ArchiveDamagedError(f"{path}: damaged archive: {s.commits - 1 - s.commit} of {s.commits} "
                                  f"commits are not intact; {_hint(path, s)}")


def damage_hint(path: str | os.PathLike) -> str:
    """What ``groundseg archive repair`` can recover from a damaged archive, in words."""
    return _hint(path, survey(path))


def _hint(path, s: Survey) -> str:
    if s.commit < 0:
        return f"groundseg archive repair cannot recover it: {s.problem}"
    return (f"groundseg archive repair {path} recovers {s.passes} pass(es), {s.packets:,} packets "
            f"(commit {s.commit + 1} of {s.commits}, the last intact one)")


def _copy(src: h5py.File, dst: h5py.File, s: Survey) -> None:
    """Commits up to ``s.commit`` of ``src`` into the new file ``dst``. A table with no
    committed row whose structure is unreadable is left out (the commit log's column
    for it too): the next writer creates it again."""
    for k, v in src.attrs.items():
        dst.attrs[k] = v
    dst.require_group(PACKETS_GROUP)
    kept = []
    fl = src["flushes"]
    commits = fl[:s.commit + 1]
    for t in s.tables:
        try:
            if t == "passes" and s.rebuild_passes:
                _rebuild_passes(dst, commits)
            else:
                _copy_table(src, dst, t, s.rows[t])
            kept.append(t)
        except (H5_ERRORS + (_Unreadable,)) as exc:
            if t == "passes":
                # the pass rows are rewritten at every flush, so the last copy of their
                # chunks sits near the end of the file: rebuilt from the commit log
                if t in dst:
                    del dst[t]
                _rebuild_passes(dst, commits)
                s.rebuild_passes = True
                kept.append(t)
                continue
            if isinstance(exc, _Unreadable):
                raise
            if s.rows[t]:
                raise _Unreadable(t, 0, False) from None
            if t in dst:
                del dst[t]
    cols = list(range(len(FLUSH_HEAD))) + [len(FLUSH_HEAD) + s.tables.index(t) for t in kept]
    rows = commits[:, [c for c in cols if c < commits.shape[1]]]
    new = dst.create_dataset("flushes", data=rows, maxshape=(None, None), chunks=fl.chunks)
    for k, v in fl.attrs.items():
        new.attrs[k] = v
    new.attrs["tables"] = json.dumps(kept)
    if "passes" in kept and s.rows.get("passes") and not s.rebuild_passes:
        _reopen_passes(dst, s)


def _copy_table(src: h5py.File, dst: h5py.File, t: str, rows: int) -> None:
    g = src[t]
    out = dst.require_group(t)
    for k, v in g.attrs.items():
        out.attrs[k] = v
    heap = _heap_need(src, t, rows)
    for name, ds in _datasets(g):
        is_heap = bool(ds.attrs.get("heap", False))
        n = heap if is_heap else rows
        parent, _, leaf = name.rpartition("/")
        og = out.require_group(parent) if parent else out
        d = og.create_dataset(leaf, shape=(n,) + ds.shape[1:], dtype=ds.dtype, chunks=ds.chunks,
                              maxshape=ds.maxshape, compression=ds.compression,
                              compression_opts=ds.compression_opts, shuffle=ds.shuffle,
                              fillvalue=ds.fillvalue)
        for k, v in ds.attrs.items():
            d.attrs[k] = v
        step = max(1, ds.chunks[0]) * 16
        for a in range(0, n, step):
            try:
                d[a:min(n, a + step)] = ds[a:min(n, a + step)]
            except H5_ERRORS:
                raise _Unreadable(t, a, is_heap) from None


def _rebuild_passes(dst: h5py.File, commits) -> None:
    """Pass rows from the commit log alone: id and start time (its first commit); open,
    so the writer's recovery marks them interrupted and recounts them from their rows.
    Sources, mission texts and reports are lost with the rows."""
    ids: list[int] = []
    started: dict[int, float] = {}
    for row in commits:
        pid = int(row[1])
        if pid and pid not in started:
            ids.append(pid)
            started[pid] = float(row[3]) / 1e3
    g = dst.require_group("passes")
    n = len(ids)
    for name, dtype in ALL_PASS_COLUMNS:
        dt = np.dtype(dtype)
        if name == "status":
            v = np.full(n, PASS_OPEN, dt)
        elif name == "pass_id":
            v = np.array(ids, dt)
        elif name == "started_at":
            v = np.array([started[p] for p in ids], dt)
        elif dt.kind == "f":
            v = np.full(n, np.nan, dt)
        elif name in ("report_offset", "source_offset", "mission_offset") or \
                name in {c for c, _ in REPORT_COLUMNS} | {c for c, _, _ in REPORT_SUMS}:
            v = np.full(n, -1, dt)
        else:
            v = np.zeros(n, dt)
        g.create_dataset(name, data=v, maxshape=(None,), chunks=(256,))
    text = g.create_dataset("text", shape=(0,), dtype=np.uint8, maxshape=(None,), chunks=(1 << 18,))
    text.attrs["heap"] = True


def _reopen_passes(dst: h5py.File, s: Survey) -> None:
    """A pass that went on after the recovered commit is reopened, so the writer's
    recovery marks it interrupted and recounts it from what was recovered; its report
    (written when it ended, after that commit) no longer applies."""
    fl = dst["flushes"][:]
    g = dst["passes"]
    last = int(fl[-1, 1]) if len(fl) else 0
    for row, pid in enumerate(g["pass_id"][:].tolist()):
        if pid == last and s.continued:
            g["status"][row] = PASS_OPEN
            for n, _ in REPORT_COLUMNS:
                g[n][row] = -1
            for n, _, _ in REPORT_SUMS:
                g[n][row] = -1
            g["report_offset"][row] = -1
            g["report_length"][row] = 0


class _Unreadable(Exception):
    """Data of ``table`` unreadable from ``row`` (a heap byte offset when ``heap``)."""

    def __init__(self, table: str, row: int, heap: bool):
        super().__init__(table, row, heap)
        self.table = table
        self.row = row
        self.heap = heap


def salvage(path: str | os.PathLike) -> dict:
    """Copy the last intact commit of the damaged archive ``path`` into a new file that
    takes its place; the damaged file is renamed ``<path>.damaged``. Every object is
    written anew, so damage the survey could not see (a name lookup failing in a corrupt
    link heap) is left behind with the old file. Returns
    ``{commit, commits, passes, packets, damaged}``. Raises ArchiveDamagedError when no
    commit is intact. The caller holds the writer lock."""
    p = Path(path)
    limit: dict[str, int] = {}
    heap_limit: dict[str, int] = {}
    tmp = p.with_name(p.name + ".salvage")
    while True:
        s = survey(p, limit, heap_limit)
        if s.commit < 0:
            raise ArchiveDamagedError(f"{p}: damaged archive, nothing can be recovered: {s.problem}")
        src, overlay = _open(p)
        try:
            with h5py.File(tmp, "w", libver=LIBVER, locking=False) as dst:
                _copy(src, dst, s)
        except _Unreadable as exc:
            tmp.unlink(missing_ok=True)
            # data read back failed there: an earlier commit, without that row or byte
            (heap_limit if exc.heap else limit)[exc.table] = exc.row
            continue
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            src.close()
            overlay.close()
        break
    damaged = p.with_name(p.name + ".damaged")
    i = 1
    while damaged.exists():
        i += 1
        damaged = p.with_name(f"{p.name}.damaged{i}")
    # the damaged file keeps a second name first, then the new one takes its place in one
    # atomic rename: an interruption never leaves the path without an archive
    try:
        os.link(p, damaged)
    except OSError:
        shutil.copy2(p, damaged)
    os.replace(tmp, p)
    return {"commit": s.commit + 1, "commits": s.commits, "passes": s.passes, "packets": s.packets,
            "damaged": str(damaged)}
