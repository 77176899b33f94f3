"""The archive file as the writer stores into it: open, layout, flush and commit.

``ArchiveFile`` owns the HDF5 handle and SWMR mode, knows which groups and datasets exist
and creates the missing ones (outside SWMR: it commits, reopens the file normally, and
bumps the layout generation), buffers rows per table (``tables``) and flushes them, in
the caller's thread or a thread of its own, ending each flush with a commit row
(``commitlog``). What a pass is belongs to the writer, which it asks through three
callbacks: the open pass's id, its row as of a flush, and what was written.
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from groundseg import _page_cache
from groundseg.archive.chunks import rows_in_file
from groundseg.archive.commitlog import commit_row, write_commit
from groundseg.archive.errors import ArchiveError, ArchiveMismatchError, write_error
from groundseg.archive.recovery import CommittedState, committed_state, recover
from groundseg.archive.schema import (
    ALL_PASS_COLUMNS, FLUSH_HEAD, LIBVER, PACKETS_GROUP, SCHEMA_VERSION, SPACE_MARGIN, UNDECLARED,
    frame_specs, hdf5_name, packet_specs, reject_specs,
)
from groundseg.archive.superblock import check_file, clear_status_flags
from groundseg.archive.tables import Flight, Table, create_column, dataset_options
from groundseg.archive.timeindex import INDEX_BLOCK, block_spans, finish, index_path
from groundseg.link.records import REJECT_REASONS

__all__ = ["ArchiveFile"]

#: HDF5 chunk cache per open dataset: room for one chunk (256 KiB uncompressed at most), so
#: a flush of a few rows (a live pass) does not decompress and recompress the tail chunk of
#: every column; a pass keeps ~200 datasets open, and at 512 KiB (two chunks) the caches held
#: ~80 MB on a 307 MB demo replay
CHUNK_CACHE_BYTES = 288 << 10
#: Deflated columns written chunk by chunk (archive/chunks.py, 1.17 -> 0.68 CPU s on a 307 MB
#: replay). False: HDF5's own filter pipeline deflates them (with the system zlib).
DIRECT_CHUNKS = True


class ArchiveFile:
    """One mission's archive file, open for writing (the caller holds the writer lock).

    ``current_pass() -> int``: the open pass's id (0 if none), for commit rows.
    ``on_flush(pass_rows) -> (row, {column: value}) | None``: the open pass's row to write
    with a flush (``pass_rows``: rows /passes will have).
    ``on_written(rows)``: these row counts are in the file (committed or not: the writer's
    own handle reads them back, which is all dedup needs to drop keys from memory).
    """

    def __init__(self, path: Path, mission_name: str, spacecraft_id: int | None, compression: dict,
                 clock: Callable[[], float], current_pass: Callable[[], int],
                 on_flush: Callable[[int], tuple | None], on_written: Callable[[dict], None]):
        self.path = path
        self.mission_name = mission_name
        self.spacecraft_id = spacecraft_id
        self.compression = compression
        self.clock = clock
        self.current_pass = current_pass
        self.on_flush = on_flush
        self.on_written = on_written
        self.file: h5py.File | None = None
        self.schema = SCHEMA_VERSION      # the open archive's schema_version
        self.swmr = False
        self.tables: dict[str, Table] = {}
        self.known: set[str] = set()              # datasets and groups known to exist
        self.dtypes: dict[tuple[str, str], np.dtype] = {}   # field columns' dtypes
        self.flight: Flight | None = None
        self.unc_rows = 0            # packet rows written since the last commit
        self.unc_bytes = 0           # and their bytes (all tables)
        self.broken = False          # a write failed inside HDF5: close quietly
        self.in_append = False       # SWMR resumes once per append(), not per dataset
        self.layout_changed = False  # datasets created since SWMR last started
        # the committed state (recovery.CommittedState), set by load_state
        self.table_names: list[str] = []
        self.layout_gen = 0
        self.flush_id = 0
        self.committed_size = 0      # the file's size at the last commit (see _drop_cached)
        self.rows: dict[str, int] = {}
        self.heap_len: dict[str, int] = {}
        self.apid_groups: dict[int, str] = {}
        # packet tables' time index (``timeindex``): the partial last block per table
        self.tindex: dict[str, tuple | None] = {}

    def open(self, mode: str) -> h5py.File:
        try:
            # the chunk cache is per open dataset and a pass keeps ~200 open: 2 MiB each
            # held ~400 MB at its fullest; appends need little more than the tail chunk
            return h5py.File(self.path, mode, libver=LIBVER, locking=False,
                             rdcc_nbytes=CHUNK_CACHE_BYTES, rdcc_nslots=1009)
        except OSError as exc:
            raise ArchiveError(f"{self.path}: cannot open the archive: {str(exc).splitlines()[0]}") from None

    def close(self) -> None:
        if self.flight is not None:
            flight, self.flight = self.flight, None
            if flight.wait() is not None:
                self.broken = True
        for t in self.tables.values():
            t.datasets = None
        if self.file is not None:
            hook = sys.unraisablehook
            if self.broken:
                sys.unraisablehook = lambda *_: None  # h5py would print every failed release
            try:
                self.file.close()
            except Exception:
                pass
            finally:
                sys.unraisablehook = hook
            self.file = None
            self.swmr = False

    def create(self) -> None:
        # built under a temporary name and renamed: a crash never leaves half an archive
        tmp = self.path.with_name(self.path.name + ".new")
        try:
            with h5py.File(tmp, "w", libver=LIBVER, locking=False) as f:
                f.attrs["mission_name"] = self.mission_name
                f.attrs["spacecraft_id"] = -1 if self.spacecraft_id is None else int(self.spacecraft_id)
                from groundseg import __version__
                f.attrs["groundseg_version"] = __version__
                f.attrs["schema_version"] = SCHEMA_VERSION
                f.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock()))
                f.attrs["layout_gen"] = 0
                fl = f.create_dataset("flushes", shape=(0, len(FLUSH_HEAD)), maxshape=(None, None),
                                      chunks=(256, 16), dtype="<i8")
                fl.attrs["columns"] = json.dumps(list(FLUSH_HEAD))
                fl.attrs["tables"] = json.dumps([])
                f.create_group(PACKETS_GROUP)
            os.replace(tmp, self.path)
        except OSError as exc:
            raise write_error(self.path, exc, "cannot create the archive") from None
        self.schema = SCHEMA_VERSION
        self.file = self.open("a")
        self.load_state()

    def open_existing(self) -> dict:
        recovered: dict = {}
        sb = check_file(self.path)
        if sb["flags"]:
            # we hold the lock, so the writer that set these flags is dead
            try:
                recovered["cleared_flags"] = clear_status_flags(self.path)
            except OSError as exc:
                raise ArchiveError(f"{self.path}: cannot clear the stale flags of a crashed writer: "
                                   f"{exc.strerror or exc}") from None
        self.file = self.open("a")
        f = self.file
        if "schema_version" not in f.attrs or "flushes" not in f:
            raise ArchiveError(f"{self.path}: not a groundseg archive (no schema_version)")
        if int(f.attrs["schema_version"]) > SCHEMA_VERSION:
            raise ArchiveError(f"{self.path}: archive schema {int(f.attrs['schema_version'])} is newer "
                               f"than this groundseg understands ({SCHEMA_VERSION})")
        self.schema = int(f.attrs["schema_version"])
        name = str(f.attrs.get("mission_name", ""))
        scid = int(f.attrs.get("spacecraft_id", -1))
        want = -1 if self.spacecraft_id is None else int(self.spacecraft_id)
        if name != self.mission_name or scid != want:
            raise ArchiveMismatchError(
                f"{self.path} is the archive of mission '{name}' (spacecraft {scid}), "
                f"not '{self.mission_name}' (spacecraft {want}); use another --archive directory")
        self.load_state()
        state = CommittedState(self.table_names, self.flush_id, self.rows, self.heap_len)
        recovered.update(recover(f, state))
        return recovered

    def load_state(self) -> None:
        f = self.file
        state = committed_state(f)
        self.table_names = state.tables
        self.layout_gen = int(f.attrs.get("layout_gen", 0))
        self.flush_id = state.flush_id
        self.rows = state.rows
        self.heap_len = state.heap_len
        self.tindex = {}
        self.apid_groups = {}
        if PACKETS_GROUP in f:
            for name, g in f[PACKETS_GROUP].items():
                if name != UNDECLARED and "apid" in g.attrs:
                    self.apid_groups[int(g.attrs["apid"])] = f"{PACKETS_GROUP}/{name}"

    def structural(self) -> None:
        """Leave SWMR mode so groups and datasets can be created."""
        self.join()
        if self.swmr:
            self.flush(commit=True)
            self.close()
            self.file = self.open("a")
        self.layout_changed = True

    def need_dataset(self, group_path: str, name: str, dtype, tail: tuple, category: str,
                      table: str | None = None, attrs: dict | None = None, heap: bool = False) -> None:
        """Create ``group_path/name`` unless it exists; a new column gets the table's
        committed row count, filled (NaN for floats) where no value was ever written."""
        key = group_path + "/" + name
        if key in self.known:
            return
        f = self.file
        if group_path in f and name in f[group_path]:
            self.known.add(key)
            return
        self.structural()
        rows = 0 if (heap or table is None) else self.rows.get(table, 0)
        create_column(self.file.require_group(group_path), name, dtype, tail, rows,
                      dataset_options(self.compression, category, dtype, tail), attrs, heap)
        for t in self.tables.values():
            if group_path == t.path or group_path.startswith(t.path + "/"):
                t.datasets = None  # handles looked up again: the table has a new column
        self.known.add(key)

    def register_table(self, path: str, heap: str | None) -> Table:
        if path not in self.tables:
            # packet tables and /frames are only ever appended to: their deflated columns
            # may be written chunk by chunk (archive/chunks.py); /passes is updated in place
            direct = DIRECT_CHUNKS and (path.startswith(PACKETS_GROUP + "/") or path == "frames")
            self.tables[path] = Table(path, heap, direct)
        if path not in self.table_names:
            self.structural()
            self.table_names.append(path)
            self.rows[path] = 0
            self.heap_len[path] = 0
            fl = self.file["flushes"]
            fl.resize((fl.shape[0], len(FLUSH_HEAD) + len(self.table_names)))
            fl.attrs["tables"] = json.dumps(self.table_names)
        return self.tables[path]

    def ensure_table_columns(self, path: str, specs: dict[str, tuple], category: str,
                              heap: str | None = None, group_attrs: dict | None = None) -> Table:
        """specs: name -> (dtype, tail shape[, attrs]); missing ones are created."""
        table = self.register_table(path, heap)
        if path not in self.known:
            if path not in self.file:
                self.structural()
                self.file.require_group(path)
            g = self.file[path]
            for k, v in (group_attrs or {}).items():
                if k not in g.attrs:
                    self.structural()
                    self.file[path].attrs[k] = v
            self.known.add(path)
        for name, spec in specs.items():
            dtype, tail = spec[0], spec[1]
            attrs = spec[2] if len(spec) > 2 else None
            cat = "fields" if name.startswith("fields/") else category
            gp, _, leaf = (path + "/" + name).rpartition("/")
            self.need_dataset(gp, leaf, dtype, tail, cat, table=path, attrs=attrs)
        if heap is not None:
            self.need_dataset(path, heap, np.uint8, (), "raw" if heap == "raw" else "text", heap=True)
        return table

    def ensure_passes(self) -> Table:
        specs = {n: (np.dtype(t), ()) for n, t in ALL_PASS_COLUMNS}
        t = self.ensure_table_columns("passes", specs, "header")
        # source, mission and report texts: a heap written directly, outside the row buffer
        self.need_dataset("passes", "text", np.uint8, (), "text", heap=True)
        return t

    def ensure_packet_table(self, apid: int | None, name: str | None = None) -> str:
        if apid is None or apid not in self.apid_groups and name is None:
            path = f"{PACKETS_GROUP}/{UNDECLARED}"
            self.ensure_table_columns(path, packet_specs(), "header", heap="raw",
                                       group_attrs={"description": "packets of APIDs the mission "
                                                    "file did not declare (raw)"})
            self.ensure_time_index(path)
            return path
        path = self.apid_groups.get(apid)
        if path is None:
            base = hdf5_name(name)
            path = f"{PACKETS_GROUP}/{base}"
            existing = self.file.get(path)
            if base == UNDECLARED or (existing is not None and int(existing.attrs.get("apid", -1)) != apid):
                path = f"{PACKETS_GROUP}/{base}_{apid}"
            self.apid_groups[apid] = path
        self.ensure_table_columns(path, packet_specs(), "header", heap="raw",
                                   group_attrs={"apid": int(apid), "name": str(name or path)})
        self.ensure_time_index(path)
        return path

    def ensure_time_index(self, path: str) -> None:
        """The table's time index exists and covers its committed rows (an archive from
        before the index, or a salvaged one, gets it rebuilt here, block by block)."""
        if path in self.tindex:
            return
        key = index_path(path)
        if key not in self.file:
            self.structural()
            g = self.file.require_group(key.rpartition("/")[0])
            ds = g.create_dataset(key.rpartition("/")[2], shape=(0, 4), maxshape=(None, 4),
                                  chunks=(1024, 4), dtype="<f8", fillvalue=np.nan)
            ds.attrs["block_rows"] = INDEX_BLOCK
            ds.attrs["columns"] = json.dumps(["onboard_min", "onboard_max", "reception_min",
                                              "reception_max"])
        ds = self.file[key]
        rows = self.rows.get(path, 0)
        k = min(ds.shape[0], rows // INDEX_BLOCK)   # complete blocks already indexed
        carry = None
        g = self.file[path]
        for a in range(k * INDEX_BLOCK, rows, 32 * INDEX_BLOCK):
            b = min(rows, a + 32 * INDEX_BLOCK)
            k0, vals, carry = block_spans(g["onboard_time"][a:b], g["reception_time"][a:b], a, carry)
            if ds.shape[0] < k0 + len(vals):
                ds.resize((k0 + len(vals), 4))
            ds[k0:k0 + len(vals)] = finish(vals)
        self.tindex[path] = carry

    def ensure_frames(self, dtype: np.dtype) -> Table:
        return self.ensure_table_columns("frames", frame_specs(dtype), "header")

    def ensure_rejects(self, dtype: np.dtype) -> Table:
        t = self.ensure_table_columns("rejects", reject_specs(dtype), "header", heap="raw")
        g = self.file["rejects"]
        if "reasons" not in g.attrs:
            self.structural()
            self.file["rejects"].attrs["reasons"] = json.dumps(list(REJECT_REASONS))
        return t

    def enter_swmr(self) -> None:
        if self.swmr or self.in_append:
            return
        f = self.file
        self._stamp_layout()
        try:
            f.swmr_mode = True
        except (OSError, ValueError) as exc:
            raise ArchiveError(f"{self.path}: cannot start SWMR writing: {exc}") from None
        self.swmr = True

    def check_space(self) -> None:
        """Refuse a flush the disk (or RLIMIT_FSIZE) cannot hold, before HDF5 writes a byte:
        a write failing inside HDF5 leaves its caches in a state it cannot close cleanly."""
        need = sum(t.pending_bytes for t in self.tables.values()) + SPACE_MARGIN
        try:
            st = os.statvfs(self.path.parent)
            free = st.f_bavail * st.f_frsize
        except OSError:
            return
        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if soft != resource.RLIM_INFINITY:
            try:
                free = min(free, soft - os.path.getsize(self.path))
            except OSError:
                pass
        if free < need:
            raise ArchiveError(f"{self.path}: disk full: {max(free, 0) / 1e6:.1f} MB free, the next "
                               f"flush needs {need / 1e6:.1f} MB; packets of earlier flushes are safe")

    def join(self) -> None:
        """Wait for the flush in flight; its failure is raised here (the file is then left
        for the next writer to recover); the rows it wrote are reported (``on_written``)."""
        flight = self.flight
        if flight is None:
            return
        self.flight = None
        exc = flight.wait()
        if exc is not None:
            self.broken = True
            if isinstance(exc, (OSError, RuntimeError)):
                raise write_error(self.path, exc, "cannot write the archive") from None
            raise exc
        self.on_written(flight.written)

    def flush(self, commit: bool, background: bool = False, write_only: bool = False) -> None:
        """Write the buffered rows (and commit them). Everything the write needs is decided
        here: row counts, the pass row, the commit row; with ``background`` a thread of its
        own writes it while the caller goes on (one flush in flight at a time).
        ``write_only``: the rows alone, no pass row and no commit (readers and recovery see
        them from the next commit on)."""
        commit = commit and not write_only
        self.join()
        f = self.file
        if any(t.pending for t in self.tables.values()):
            self.check_space()
        jobs = []
        index_rows = []
        for path, table in self.tables.items():
            if table.pending:
                rows, heap_len = self.rows[path], self.heap_len.get(path, 0)
                snap = table.detach(f)
                jobs.append((path, snap, rows, heap_len))
                self.rows[path] = rows + snap.pending_rows
                if path.startswith(PACKETS_GROUP):
                    self.unc_rows += snap.pending_rows
                self.unc_bytes += snap.pending_bytes
                self.heap_len[path] = heap_len + snap.heap_bytes()
                if path in self.tindex:
                    index_rows.append(self.index_update(path, snap, rows))
        # the open pass's row as of this flush (its counts and time spans)
        pass_row = None if write_only else self.on_flush(self.rows.get("passes", 0))
        commit_row = self.commit_row() if commit else None
        if commit:
            self.unc_rows = self.unc_bytes = 0

        # a commit counts every row: partial chunks kept back by uncommitted writes go in too
        tails = [] if write_only else self._tables_with_tails()

        def work():
            for path, snap, rows, heap_len in jobs:
                snap.write(f, rows, heap_len, partial=not write_only)
            for table in tails:
                table.write_tails(f)
            for key, k0, vals in index_rows:
                ds = f[key]
                if ds.shape[0] < k0 + len(vals):
                    ds.resize((k0 + len(vals), 4))
                ds[k0:k0 + len(vals)] = vals
            if pass_row is not None:
                g = f["passes"]
                for name, v in pass_row[1].items():
                    g[name][pass_row[0]] = v
            if commit_row is not None:
                write_commit(self.file, commit_row)
                self._drop_cached()
        written = dict(self.rows)
        if write_only:
            # columns written chunk by chunk hold whole chunks only until the next commit
            for path, table in self.tables.items():
                if table.direct and path in written:
                    written[path] = rows_in_file(written[path], partial=False)
        if background and jobs:
            self.flight = Flight(work, written)
            return
        work()
        self.on_written(written)

    def index_update(self, path: str, snap: Table, rows: int) -> tuple[str, int, np.ndarray]:
        """(index dataset, first block, rows) of the time index for a flush of ``snap``'s
        pending rows after ``rows``."""
        def col(name):
            parts = [p.columns[name] if name in p.columns else np.full(p.rows, np.nan)
                     for p in snap.pending]
            return parts[0] if len(parts) == 1 else np.concatenate(parts)
        k0, vals, self.tindex[path] = block_spans(col("onboard_time"), col("reception_time"),
                                                  rows, self.tindex[path])
        return index_path(path), k0, finish(vals)

    def commit_row(self) -> np.ndarray:
        """The /flushes row that commits the row counts as they will be once written."""
        self.flush_id += 1
        pass_id = self.current_pass()
        self._stamp_layout()
        return commit_row(self.flush_id, pass_id, self.layout_gen, int(self.clock() * 1e3),
                          self.table_names, self.rows)

    def _stamp_layout(self) -> None:
        """Datasets were created since the last stamp: count a new layout generation in the
        file's attribute before any commit row carries it, so that no reader (nor a writer
        stopped at any instant) meets a commit log ahead of the attribute. Called out of
        SWMR mode only (creating datasets leaves it), where attributes may be written."""
        if self.layout_changed and not self.swmr:
            self.layout_gen += 1
            self.file.attrs["layout_gen"] = self.layout_gen
            self.layout_changed = False

    def _tables_with_tails(self) -> list[Table]:
        """Tables holding partial chunks that uncommitted writes kept back from the file."""
        return [t for t in self.tables.values() if t.direct and t.unwritten_tails()]

    def commit(self) -> None:
        """Commit what is written (nothing may be in flight: the commit counts it)."""
        self.join()
        for table in self._tables_with_tails():   # the rows it counts are all in the file
            table.write_tails(self.file)
        self.unc_rows = self.unc_bytes = 0
        write_commit(self.file, self.commit_row())
        self._drop_cached()
        self.on_written(dict(self.rows))

    def _drop_cached(self) -> None:
        """The pages written before the last commit leave the page cache, whatever the
        archive's size (groundseg._page_cache); the newest stay, for the writes and
        dedup reads that follow."""
        if not _page_cache.available():
            return
        try:
            fd = self.file.id.get_vfd_handle()
            size = os.fstat(fd).st_size
        except (OSError, ValueError, TypeError, AttributeError):
            return   # not a plain file (another HDF5 driver)
        _page_cache.drop(fd, 0, self.committed_size)
        self.committed_size = size

    def append_text(self, data: np.ndarray) -> int:
        """Append to the passes text heap (sources, mission files, reports), written at
        once outside the row buffers (the pass row pointing at it is committed after);
        returns where it starts."""
        text = self.file["passes/text"]
        off = self.heap_len["passes"]
        text.resize((off + len(data),))
        if len(data):
            text[off:off + len(data)] = data
        self.heap_len["passes"] = off + len(data)
        return off

    def pending(self) -> tuple[int, int]:
        """(packet rows, bytes) buffered and not yet written."""
        rows = sum(t.pending_rows for t in self.tables.values() if t.path.startswith(PACKETS_GROUP))
        return rows, sum(t.pending_bytes for t in self.tables.values())

    def uncommitted(self) -> tuple[int, int]:
        """(packet rows, bytes) buffered or written since the last commit."""
        rows, nbytes = self.pending()
        return rows + self.unc_rows, nbytes + self.unc_bytes
