"""The archive writer: passes of one mission appended to its HDF5 file.

One file per mission, ``<archive dir>/<mission name>.h5``; every replay or receive
is a pass appended to it. The layout is in ``docs/archive.md`` (``schema``). What shapes it:

* HDF5 SWMR (single writer, multiple readers): nothing can be created in SWMR
  mode, so the writer creates every group and dataset a pass needs while the
  file is open normally, then starts SWMR and only appends. Should a pass bring
  something unforeseen (a new decoded field), the writer commits, reopens the
  file normally for the few milliseconds the creation takes, and resumes SWMR.
* Crash safety: data are buffered (``tables``) and flushed every few seconds or N
  packets; each flush ends by appending a row to ``/flushes`` (``commitlog``), written
  only after the data it counts. A reader trusts that row and nothing beyond it, so
  after kill -9 it sees every packet of every completed flush. The next writer holds
  the lock (``lock``), clears the stale flags (``superblock``), truncates the tables to
  the last commit and marks the interrupted pass so (``recovery``).
* Idempotent: packets are deduplicated (``dedup``).
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time

import h5py
import numpy as np

from groundseg.archive.commitlog import commit_row, write_commit
from groundseg.archive.dedup import Deduplicator, merge_span, packet_keys, span
from groundseg.archive.errors import (
    ArchiveDamagedError, ArchiveError, ArchiveLockedError, ArchiveMismatchError, write_error,
)
from groundseg.archive.h5access import OverlayFile
from groundseg.archive.keystore import prior_pass_runs, read_keys
from groundseg.archive.lock import WriterLock, writer_alive
from groundseg.archive.recovery import CommittedState, committed_state, recover
from groundseg.archive.rows import (
    packet_reject_records, packet_rows, packet_times, reject_rows, vca_rows,
)
from groundseg.archive.schema import (
    ALL_PASS_COLUMNS, FLUSH_HEAD, LIBVER, PACKETS_GROUP, PASS_COMPLETE, PASS_INCOMPLETE, PASS_OPEN,
    PASS_STATUS, REPORT_COLUMNS, REPORT_SUMS, SCHEMA_VERSION, SPACE_MARGIN, TIME_FRAME, TIME_NONE,
    UNDECLARED, archive_path, compression_settings, frame_specs, hdf5_name, mission_apids,
    packet_specs, reject_specs, report_dict, report_is_empty, report_sum, report_value,
)
from groundseg.archive.superblock import check_file, clear_status_flags
from groundseg.archive.tables import Flight, Table, create_column, dataset_options
from groundseg.link.records import FRAME_RECORD_DTYPE, REJECT_DTYPE, REJECT_REASONS, PacketBatch

__all__ = ["ArchiveWriter"]


class ArchiveWriter:
    """Append passes of one mission to its archive.

    ``archive``: a directory (the file is ``<dir>/<mission.name>.h5``) or a ``.h5`` path.
    Raises :class:`ArchiveMismatchError` if the file belongs to another mission name or
    spacecraft ID, :class:`ArchiveLockedError` if another writer has it, and
    :class:`ArchiveError` if it is unreadable. Opening it recovers from a crashed writer.
    """

    def __init__(self, archive: str | os.PathLike, mission, *, flush_seconds: float = 2.0,
                 flush_packets: int = 100_000, flush_bytes: int = 64 << 20,
                 dedup_window: float = 10.0, dedup_memory: int = 64 << 20, dedup_piece: int = 1 << 19,
                 compression: dict | str | None = "default",
                 clock=time.time):
        self.mission = mission
        self.mission_name = str(mission.name)
        self.spacecraft_id = getattr(mission, "spacecraft_id", None)
        self.path = archive_path(archive, self.mission_name)
        existing = self._check_target()
        self.flush_seconds = float(flush_seconds)
        self.flush_packets = int(flush_packets)
        self.flush_bytes = int(flush_bytes)
        self.dedup_window = float(dedup_window)
        self.dedup_budget = int(dedup_memory)
        self.dedup_piece = int(dedup_piece)
        self.compression = compression_settings(compression)
        self._clock = clock
        self._file: h5py.File | None = None
        self._swmr = False
        self._lock: WriterLock | None = None
        self._pass: dict | None = None
        self._tables: dict[str, Table] = {}
        self._known: set[str] = set()                  # datasets and groups known to exist
        self._dtypes: dict[tuple[str, str], np.dtype] = {}
        self._flight: Flight | None = None
        self._dedup: Deduplicator | None = None       # the open pass's
        self._loaded: set[int] = set()  # earlier passes whose dedup keys this pass read back
        self._broken = False          # a write failed inside HDF5: close quietly
        self._in_append = False       # SWMR resumes once per append(), not per dataset
        self._layout_changed = False  # datasets created since SWMR last started
        # the committed state (recovery.CommittedState), set by _load_state
        self._table_names: list[str] = []
        self._layout_gen = 0
        self._flush_id = 0
        self._rows: dict[str, int] = {}
        self._heap_len: dict[str, int] = {}
        self._apid_groups: dict[int, str] = {}
        self.recovered: dict = {}
        if not existing:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ArchiveError(f"{self.path.parent}: cannot create the archive directory: "
                                   f"{exc.strerror or exc}") from None
        self._lock = WriterLock(self.path)
        try:
            if existing:
                self.recovered = self._open_existing()
            else:
                self._create()
        except BaseException:
            self._close_file()
            self._lock.release()
            raise

    # -- file handling
    def _check_target(self) -> bool:
        """True when the archive file exists and is an HDF5 file with a sound superblock;
        False when it is to be created. Refuses anything else before a file is created
        (no lock file beside a path that is not an archive)."""
        p = self.path
        if p.is_dir():
            raise ArchiveError(f"{p}: is a directory, not an archive file")
        if p.exists():
            try:
                check_file(p)
            except ArchiveDamagedError as exc:
                raise ArchiveDamagedError(f"{exc}; run groundseg archive repair {p}") from None
            except ArchiveError as exc:
                raise ArchiveError(f"{exc}; nothing was written") from None
            if not _is_groundseg_archive(p):
                raise ArchiveError(f"{p}: not a groundseg archive (no schema_version); nothing was written")
            return True
        if p.parent.exists() and not p.parent.is_dir():
            raise ArchiveError(f"{p.parent}: is not a directory")
        return False

    def _h5open(self, mode: str) -> h5py.File:
        try:
            # the chunk cache is per open dataset and a pass keeps ~200 open: 2 MiB each
            # held ~400 MB at its fullest; appends need little more than the tail chunk
            return h5py.File(self.path, mode, libver=LIBVER, locking=False,
                             rdcc_nbytes=512 << 10, rdcc_nslots=1009)
        except OSError as exc:
            raise ArchiveError(f"{self.path}: cannot open the archive: {str(exc).splitlines()[0]}") from None

    def _close_file(self) -> None:
        if self._flight is not None:
            flight, self._flight = self._flight, None
            if flight.wait() is not None:
                self._broken = True
        for t in self._tables.values():
            t.datasets = None
        if self._file is not None:
            hook = sys.unraisablehook
            if self._broken:
                sys.unraisablehook = lambda *_: None  # h5py would print every failed release
            try:
                self._file.close()
            except Exception:
                pass
            finally:
                sys.unraisablehook = hook
            self._file = None
            self._swmr = False

    def _create(self) -> None:
        # built under a temporary name and renamed: a crash never leaves half an archive
        tmp = self.path.with_name(self.path.name + ".new")
        try:
            with h5py.File(tmp, "w", libver=LIBVER, locking=False) as f:
                f.attrs["mission_name"] = self.mission_name
                f.attrs["spacecraft_id"] = -1 if self.spacecraft_id is None else int(self.spacecraft_id)
                from groundseg import __version__
                f.attrs["groundseg_version"] = __version__
                f.attrs["schema_version"] = SCHEMA_VERSION
                f.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock()))
                f.attrs["layout_gen"] = 0
                fl = f.create_dataset("flushes", shape=(0, len(FLUSH_HEAD)), maxshape=(None, None),
                                      chunks=(256, 16), dtype="<i8")
                fl.attrs["columns"] = json.dumps(list(FLUSH_HEAD))
                fl.attrs["tables"] = json.dumps([])
                f.create_group(PACKETS_GROUP)
            os.replace(tmp, self.path)
        except OSError as exc:
            raise write_error(self.path, exc, "cannot create the archive") from None
        self._file = self._h5open("a")
        self._load_state()

    def _open_existing(self) -> dict:
        recovered: dict = {}
        sb = check_file(self.path)
        if sb["flags"]:
            # we hold the lock, so the writer that set these flags is dead
            try:
                recovered["cleared_flags"] = clear_status_flags(self.path)
            except OSError as exc:
                raise ArchiveError(f"{self.path}: cannot clear the stale flags of a crashed writer: "
                                   f"{exc.strerror or exc}") from None
        self._file = self._h5open("a")
        f = self._file
        if "schema_version" not in f.attrs or "flushes" not in f:
            raise ArchiveError(f"{self.path}: not a groundseg archive (no schema_version)")
        if int(f.attrs["schema_version"]) > SCHEMA_VERSION:
            raise ArchiveError(f"{self.path}: archive schema {int(f.attrs['schema_version'])} is newer "
                               f"than this groundseg understands ({SCHEMA_VERSION})")
        name = str(f.attrs.get("mission_name", ""))
        scid = int(f.attrs.get("spacecraft_id", -1))
        want = -1 if self.spacecraft_id is None else int(self.spacecraft_id)
        if name != self.mission_name or scid != want:
            raise ArchiveMismatchError(
                f"{self.path} is the archive of mission '{name}' (spacecraft {scid}), "
                f"not '{self.mission_name}' (spacecraft {want}); use another --archive directory")
        self._load_state()
        state = CommittedState(self._table_names, self._flush_id, self._rows, self._heap_len)
        recovered.update(recover(f, state))
        return recovered

    def _load_state(self) -> None:
        f = self._file
        state = committed_state(f)
        self._table_names = state.tables
        self._layout_gen = int(f.attrs.get("layout_gen", 0))
        self._flush_id = state.flush_id
        self._rows = state.rows
        self._heap_len = state.heap_len
        self._apid_groups = {}
        if PACKETS_GROUP in f:
            for name, g in f[PACKETS_GROUP].items():
                if name != UNDECLARED and "apid" in g.attrs:
                    self._apid_groups[int(g.attrs["apid"])] = f"{PACKETS_GROUP}/{name}"

    # -- layout (only while not in SWMR mode)
    def _structural(self) -> None:
        """Leave SWMR mode so groups and datasets can be created."""
        self._join()
        if self._swmr:
            self._flush(commit=True)
            self._close_file()
            self._file = self._h5open("a")
        self._layout_changed = True

    def _need_dataset(self, group_path: str, name: str, dtype, tail: tuple, category: str,
                      table: str | None = None, attrs: dict | None = None, heap: bool = False) -> None:
        """Create ``group_path/name`` unless it exists; a new column gets the table's
        committed row count, filled (NaN for floats) where no value was ever written."""
        key = group_path + "/" + name
        if key in self._known:
            return
        f = self._file
        if group_path in f and name in f[group_path]:
            self._known.add(key)
            return
        self._structural()
        rows = 0 if (heap or table is None) else self._rows.get(table, 0)
        create_column(self._file.require_group(group_path), name, dtype, tail, rows,
                      dataset_options(self.compression, category, dtype, tail), attrs, heap)
        for t in self._tables.values():
            if group_path == t.path or group_path.startswith(t.path + "/"):
                t.datasets = None  # handles looked up again: the table has a new column
        self._known.add(key)

    def _register_table(self, path: str, heap: str | None) -> Table:
        if path not in self._tables:
            self._tables[path] = Table(path, heap)
        if path not in self._table_names:
            self._structural()
            self._table_names.append(path)
            self._rows[path] = 0
            self._heap_len[path] = 0
            fl = self._file["flushes"]
            fl.resize((fl.shape[0], len(FLUSH_HEAD) + len(self._table_names)))
            fl.attrs["tables"] = json.dumps(self._table_names)
        return self._tables[path]

    def _ensure_table_columns(self, path: str, specs: dict[str, tuple], category: str,
                              heap: str | None = None, group_attrs: dict | None = None) -> Table:
        """specs: name -> (dtype, tail shape[, attrs]); missing ones are created."""
        table = self._register_table(path, heap)
        if path not in self._known:
            if path not in self._file:
                self._structural()
                self._file.require_group(path)
            g = self._file[path]
            for k, v in (group_attrs or {}).items():
                if k not in g.attrs:
                    self._structural()
                    self._file[path].attrs[k] = v
            self._known.add(path)
        for name, spec in specs.items():
            dtype, tail = spec[0], spec[1]
            attrs = spec[2] if len(spec) > 2 else None
            cat = "fields" if name.startswith("fields/") else category
            gp, _, leaf = (path + "/" + name).rpartition("/")
            self._need_dataset(gp, leaf, dtype, tail, cat, table=path, attrs=attrs)
        if heap is not None:
            self._need_dataset(path, heap, np.uint8, (), "raw" if heap == "raw" else "text", heap=True)
        return table

    def _ensure_passes(self) -> Table:
        specs = {n: (np.dtype(t), ()) for n, t in ALL_PASS_COLUMNS}
        t = self._ensure_table_columns("passes", specs, "header")
        # source, mission and report texts: a heap written directly, outside the row buffer
        self._need_dataset("passes", "text", np.uint8, (), "text", heap=True)
        return t

    def _ensure_packet_table(self, apid: int | None, name: str | None = None) -> str:
        if apid is None or apid not in self._apid_groups and name is None:
            path = f"{PACKETS_GROUP}/{UNDECLARED}"
            self._ensure_table_columns(path, packet_specs(), "header", heap="raw",
                                       group_attrs={"description": "packets of APIDs the mission "
                                                    "file did not declare (raw)"})
            return path
        path = self._apid_groups.get(apid)
        if path is None:
            base = hdf5_name(name)
            path = f"{PACKETS_GROUP}/{base}"
            existing = self._file.get(path)
            if base == UNDECLARED or (existing is not None and int(existing.attrs.get("apid", -1)) != apid):
                path = f"{PACKETS_GROUP}/{base}_{apid}"
            self._apid_groups[apid] = path
        self._ensure_table_columns(path, packet_specs(), "header", heap="raw",
                                   group_attrs={"apid": int(apid), "name": str(name or path)})
        return path

    def _ensure_frames(self, dtype: np.dtype) -> Table:
        return self._ensure_table_columns("frames", frame_specs(dtype), "header")

    def _ensure_rejects(self, dtype: np.dtype) -> Table:
        t = self._ensure_table_columns("rejects", reject_specs(dtype), "header", heap="raw")
        g = self._file["rejects"]
        if "reasons" not in g.attrs:
            self._structural()
            self._file["rejects"].attrs["reasons"] = json.dumps(list(REJECT_REASONS))
        return t

    def _enter_swmr(self) -> None:
        if self._swmr or self._in_append:
            return
        f = self._file
        if self._layout_changed:
            self._layout_gen += 1
            f.attrs["layout_gen"] = self._layout_gen
            self._layout_changed = False
        try:
            f.swmr_mode = True
        except (OSError, ValueError) as exc:
            raise ArchiveError(f"{self.path}: cannot start SWMR writing: {exc}") from None
        self._swmr = True

    # -- passes
    def begin_pass(self, source: str, frame_dtype: np.dtype | None = None,
                   reject_dtype: np.dtype | None = None) -> int:
        """Start a pass; create everything it may write; return its pass id."""
        if self._file is None:
            raise ArchiveError(f"{self.path}: the writer is closed")
        if self._pass is not None:
            raise ArchiveError(f"{self.path}: pass {self._pass['pass_id']} is still open")
        frame_dtype = np.dtype(frame_dtype if frame_dtype is not None else FRAME_RECORD_DTYPE)
        reject_dtype = np.dtype(reject_dtype if reject_dtype is not None else REJECT_DTYPE)
        try:
            self._ensure_passes()
            self._ensure_frames(frame_dtype)
            self._ensure_rejects(reject_dtype)
            self._ensure_packet_table(None)
            for apid, name in sorted(mission_apids(self.mission).items()):
                self._ensure_packet_table(apid, name)
            g = self._file["passes"]
            rows = self._rows["passes"]
            pass_id = int(g["pass_id"][rows - 1]) + 1 if rows else 1
            now = self._clock()
            text = self._file["passes/text"]
            heap = [np.frombuffer(str(source).encode(), np.uint8)]
            src_off = self._heap_len["passes"]
            mtext = str(getattr(self.mission, "source_text", "") or "")
            m_off = src_off + len(heap[0])
            m_len = len(mtext.encode())
            if rows and int(g["mission_length"][rows - 1]) == m_len:
                prev_off = int(g["mission_offset"][rows - 1])
                if bytes(text[prev_off:prev_off + m_len]) == mtext.encode():
                    m_off = prev_off  # same mission file as last pass: share its text
                else:
                    heap.append(np.frombuffer(mtext.encode(), np.uint8))
            else:
                heap.append(np.frombuffer(mtext.encode(), np.uint8))
            row = {n: np.zeros(1, t) for n, t in ALL_PASS_COLUMNS}
            for n, _ in REPORT_COLUMNS:
                row[n][:] = -1
            for n, _, _ in REPORT_SUMS:
                row[n][:] = -1
            for n in ("ended_at", "reception_start", "reception_end", "onboard_start", "onboard_end"):
                row[n][:] = np.nan
            row["pass_id"][:] = pass_id
            row["status"][:] = PASS_OPEN
            row["started_at"][:] = now
            row["source_offset"][:] = src_off
            row["source_length"][:] = len(heap[0])
            row["mission_offset"][:] = m_off
            row["mission_length"][:] = m_len
            row["report_offset"][:] = -1
            hb = np.concatenate(heap)
            # the text heap is appended here directly: begin_pass is committed at once
            text.resize((src_off + len(hb),))
            if len(hb):
                text[src_off:src_off + len(hb)] = hb
            self._heap_len["passes"] = src_off + len(hb)
            self._tables["passes"].add(row, 1)
            self._pass = {"pass_id": pass_id, "row": rows, "packets": 0, "duplicates": 0,
                          "untimed": 0, "frames": 0, "rejects": 0,
                          "rt": [np.nan, np.nan], "kt": [np.nan, np.nan],
                          "last_flush": self._clock(), "frame_dtype": frame_dtype,
                          "reject_dtype": reject_dtype}
            self._flush(commit=True)
            self._enter_swmr()
            self._dedup = Deduplicator(self.dedup_window, self.dedup_budget, self.dedup_piece,
                                       loader=self._load_run)
            self._dedup.committed = dict(self._rows)
            self._loaded = set()
            for sources, onboard, reception, untimed in prior_pass_runs(
                    self._file, self._rows["passes"], self._table_names, pass_id, self.dedup_piece):
                self._dedup.add_unloaded(sources, onboard, reception, untimed)
        except (OSError, RuntimeError) as exc:
            raise write_error(self.path, exc, "cannot start a pass") from None
        return pass_id

    def _load_run(self, run, timed: bool):
        """Read an evicted or never-loaded dedup run back from the archive (nothing may be
        in flight: its rows may be among those read)."""
        self._join()
        return read_keys(self._file, run.sources, timed, self._loaded)

    def end_pass(self, report=None, complete: bool = True) -> dict:
        """Flush, then close the pass row: status, end time, the report's counts and JSON,
        and ``empty`` when the report shows no frame delivered and no packet.

        ``report``: the pass report as a dict, or an object whose ``to_dict()`` gives it."""
        if self._pass is None:
            raise ArchiveError(f"{self.path}: no pass is open")
        report = report_dict(report)
        p = self._pass
        # what the pipeline delivered, as its report counts it; packets this pass archived
        # (or found archived already) prove something was decoded whatever the report says
        empty = report is not None and report_is_empty(report) and p["packets"] + p["duplicates"] == 0
        try:
            self._flush(commit=False)
            g = self._file["passes"]
            row = p["row"]
            g["status"][row] = PASS_COMPLETE if complete else PASS_INCOMPLETE
            g["ended_at"][row] = self._clock()
            if report is not None:
                for n, path in REPORT_COLUMNS:
                    g[n][row] = report_value(report, path)
                for n, key, sub in REPORT_SUMS:
                    g[n][row] = report_sum(report, key, sub)
                g["empty"][row] = empty
                js = np.frombuffer(json.dumps(report, sort_keys=True, default=_json_default).encode(),
                                   np.uint8)
                text = self._file["passes/text"]
                off = self._heap_len["passes"]
                text.resize((off + len(js),))
                text[off:off + len(js)] = js
                self._heap_len["passes"] = off + len(js)
                g["report_offset"][row] = off
                g["report_length"][row] = len(js)
            self._commit()
        except (OSError, RuntimeError) as exc:
            self._pass = None
            self._broken = True
            raise write_error(self.path, exc, "cannot end the pass") from None
        info = {"pass_id": p["pass_id"], "path": str(self.path), "packets": p["packets"],
                "duplicates": p["duplicates"], "frames": p["frames"], "rejects": p["rejects"],
                "status": PASS_STATUS[PASS_COMPLETE if complete else PASS_INCOMPLETE], "empty": empty}
        if self.recovered.get("interrupted_passes"):
            info["recovered_passes"] = ",".join(map(str, self.recovered["interrupted_passes"]))
        self._pass = None
        return info

    def abort_pass(self) -> None:
        """End the open pass as incomplete (keeping what was flushed) and close the writer.
        Never raises: it runs while another exception propagates."""
        try:
            if self._pass is not None:
                try:
                    self._join()
                    self.end_pass(None, complete=False)
                except ArchiveError:
                    if self._broken:
                        raise
                    # the buffered batch cannot be written (disk full): drop it, keep the rest
                    for t in self._tables.values():
                        t.pending.clear()
                        t.pending_rows = t.pending_bytes = 0
                    self._pass["packets"] = self._pass.get("flushed_packets", 0)
                    self.end_pass(None, complete=False)
        except Exception:
            self._pass = None
        finally:
            self.close()

    def close(self) -> None:
        """End an open pass as incomplete, close the file, release the lock."""
        try:
            if self._pass is not None and self._file is not None:
                self.end_pass(None, complete=False)
        finally:
            self._close_file()
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def __enter__(self) -> "ArchiveWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort_pass()
        else:
            self.close()

    # -- appending
    def append(self, frames: np.ndarray | None = None, decoded: dict | None = None,
               rejects=None, reject_data: np.ndarray | None = None,
               reject_offsets: np.ndarray | None = None,
               packets: PacketBatch | None = None) -> None:
        """Buffer a batch; flush when ``flush_seconds`` passed or the buffer is full.

        ``frames``: frame records (one structured row per frame, any dtype).
        ``decoded``: ``{apid: DecodedApid}`` from ``telemetry.decode``.
        ``packets``: a ``PacketBatch`` archived without decoded fields.
        ``rejects``: a ``RejectBatch``, or structured records with ``reject_data`` and either
        ``offset``/``length`` fields or ``reject_offsets`` (n + 1).
        """
        if self._pass is None:
            raise ArchiveError(f"{self.path}: append outside a pass (call begin_pass first)")
        try:
            # SWMR resumes once per call: datasets that several APIDs of one batch bring
            # (their first decoded fields) are created in one non-SWMR session, not one each
            self._in_append = True
            try:
                if frames is not None and len(frames):
                    self._append_frames(np.asarray(frames))
                if rejects is not None and len(rejects):
                    self._append_rejects(rejects, reject_data, reject_offsets)
                if decoded:
                    items = decoded.values() if isinstance(decoded, dict) else decoded
                    for d in items:
                        if len(d.packets):
                            self._append_decoded(d)
                if packets is not None and len(packets):
                    self._append_packets(packets)
            finally:
                self._in_append = False
            self._enter_swmr()
            self.poll()
        except (OSError, RuntimeError) as exc:
            raise write_error(self.path, exc, "cannot write the archive") from None

    def poll(self) -> None:
        """Flush if due; a live receiver may call this when no data arrive."""
        if self._pass is None:
            return
        pend_rows = sum(t.pending_rows for t in self._tables.values() if t.path.startswith(PACKETS_GROUP))
        pend_bytes = sum(t.pending_bytes for t in self._tables.values())
        if self._flight is not None and self._flight.done():
            self._join()
        time_due = self._clock() - self._pass["last_flush"] >= self.flush_seconds
        if time_due or pend_rows >= self.flush_packets or pend_bytes >= self.flush_bytes:
            # flush_seconds bounds how stale a reader's view is: a flush due by time is
            # committed before this returns; one due by size (bulk replay) is written by a
            # background thread while decoding goes on, committed before the next flush
            try:
                self._flush(commit=True, background=not time_due)
            except (OSError, RuntimeError) as exc:
                self._broken = True
                raise write_error(self.path, exc, "cannot write the archive") from None

    def flush(self) -> None:
        """Write what is buffered and commit it (readers see it; it survives kill -9)."""
        try:
            self._flush(commit=True)
        except (OSError, RuntimeError) as exc:
            self._broken = True
            raise write_error(self.path, exc, "cannot write the archive") from None

    def _append_frames(self, frames: np.ndarray) -> None:
        if frames.dtype.names is None:
            raise ValueError("frames must be a structured array of frame records")
        table = self._ensure_frames(frames.dtype)
        cols = {n: np.ascontiguousarray(frames[n]) for n in frames.dtype.names}
        cols["pass_id"] = np.full(len(frames), self._pass["pass_id"], np.uint32)
        table.add(cols, len(frames))
        self._pass["frames"] += len(frames)
        self._enter_swmr()

    def _append_rejects(self, rejects, data, offsets) -> None:
        records, cols, n, heap = reject_rows(rejects, data, offsets)
        table = self._ensure_rejects(records.dtype)
        cols["pass_id"] = np.full(n, self._pass["pass_id"], np.uint32)
        table.add(cols, n, heap)
        self._pass["rejects"] += n
        self._enter_swmr()

    def append_vca(self, vca) -> None:
        """Frames of VCs whose data is "vca": their data fields, archived per frame in /vca."""
        if self._pass is None:
            raise ArchiveError(f"{self.path}: append outside a pass (call begin_pass first)")
        if vca is None or len(vca) == 0:
            return
        try:
            specs, cols, n, heap = vca_rows(np.asarray(vca.records), np.asarray(vca.data, np.uint8))
            table = self._ensure_table_columns("vca", specs, "header", heap="raw")
            cols["pass_id"] = np.full(n, self._pass["pass_id"], np.uint32)
            table.add(cols, n, heap)
            self._enter_swmr()
            self.poll()
        except (OSError, RuntimeError) as exc:
            raise write_error(self.path, exc, "cannot write the archive") from None

    def _append_packets(self, packets: PacketBatch) -> None:
        apids = packets.header["apid"]
        declared = mission_apids(self.mission)
        for a in np.unique(apids):
            sel = packets.select(apids == a) if len(np.unique(apids)) > 1 else packets
            self._archive_packets(int(a), declared.get(int(a)), sel,
                                  np.full(len(sel), np.nan), {}, {}, {})

    def _append_decoded(self, d) -> None:
        refused = getattr(d, "rejected", None)
        if refused is not None and len(refused):
            # packets telemetry could not decode (length off its definition): /rejects
            self._append_rejects(*packet_reject_records(refused, "packet_length"), None)
        declared = mission_apids(self.mission)
        apid = int(d.apid)
        onboard = np.asarray(d.onboard_time, np.float64) if d.onboard_time is not None else \
            np.full(len(d.packets), np.nan)
        if np.any(d.packets.header["apid"] != apid):
            # a DecodedApid carries one APID; anything else is routed by its own header
            for a in np.unique(d.packets.header["apid"]):
                m = d.packets.header["apid"] == a
                self._archive_packets(int(a), declared.get(int(a)), d.packets.select(m), onboard[m],
                                      {k: np.asarray(v)[m] for k, v in d.fields.items()} if a == apid else {},
                                      d.units, d.calibration)
            return
        self._archive_packets(apid, declared.get(apid), d.packets, onboard,
                              d.fields or {}, d.units or {}, d.calibration or {})

    def _archive_packets(self, apid: int, name: str | None, batch: PacketBatch, onboard: np.ndarray,
                         fields: dict, units: dict, calibration: dict) -> None:
        n = len(batch)
        h = batch.header
        p = self._pass
        if len(onboard) != n:
            raise ValueError(f"APID {apid}: {len(onboard)} onboard times for {n} packets")
        src, ktime, rt = packet_times(h, onboard)
        exact = src <= TIME_FRAME
        keys = packet_keys(batch.data, batch.offsets, h["apid"], h["seq_count"], ktime, exact)
        path = self._ensure_packet_table(apid if name is not None else None, name)
        # fields checked and their datasets made before dedup remembers these packets
        specs = {}
        for fname in list(fields):
            arr = np.asarray(fields[fname])
            if arr.dtype.kind in "OU":
                arr = arr.astype("S")
            fields[fname] = arr
            attrs = {"units": str(units.get(fname, "") or ""),
                     "calibration": str(calibration.get(fname, "") or "")}
            specs["fields/" + hdf5_name(fname)] = (arr.dtype, arr.shape[1:], attrs)
        table = self._ensure_table_columns(path, specs, "header", heap="raw") if specs else self._tables[path]
        fcols = {}
        for fname, arr in fields.items():
            col = "fields/" + hdf5_name(fname)
            dt = self._dtypes.get((path, col))
            if dt is None:
                dt = self._dtypes[(path, col)] = self._file[path][col].dtype
            if arr.dtype != dt:
                if not np.can_cast(arr.dtype, dt, "same_kind") and not (
                        arr.dtype.kind in "iub" and dt.kind == "f"):
                    raise ArchiveError(f"{self.path}: field {fname!r} of APID {apid} is {dt} in "
                                       f"this archive but {arr.dtype} now; rename the field")
                arr = arr.astype(dt)
            if len(arr) != n:
                raise ValueError(f"APID {apid}: field {fname!r} has {len(arr)} values for {n} packets")
            fcols[col] = arr
        first = self._rows[path] + table.pending_rows  # where these rows will land
        dup = self._dedup.check(keys, src, rt, p["pass_id"], key_time=ktime, rows=(path, first))
        nd = int(dup.sum())
        p["duplicates"] += nd
        if nd == n:
            return
        if nd:
            keep = ~dup
            batch = batch.select(keep)
            onboard, src, keys, ktime, rt = onboard[keep], src[keep], keys[keep], ktime[keep], rt[keep]
            fcols = {k: v[keep] for k, v in fcols.items()}
            exact = src <= TIME_FRAME
        m = len(batch)
        cols, heap = packet_rows(batch, onboard, ktime, src, keys)
        cols["pass_id"] = np.full(m, p["pass_id"], np.uint32)
        cols.update(fcols)
        table.add(cols, m, heap)
        p["packets"] += m
        p["untimed"] += int(np.count_nonzero(src == TIME_NONE))
        p["rt"] = merge_span(p["rt"], span(rt))
        p["kt"] = merge_span(p["kt"], span(ktime[exact]))
        self._enter_swmr()

    # -- flush and commit
    def _check_space(self) -> None:
        """Refuse a flush the disk (or RLIMIT_FSIZE) cannot hold, before HDF5 writes a byte:
        a write failing inside HDF5 leaves its caches in a state it cannot close cleanly."""
        need = sum(t.pending_bytes for t in self._tables.values()) + SPACE_MARGIN
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

    def _join(self) -> None:
        """Wait for the flush in flight; its failure is raised here (the file is then left
        for the next writer to recover); its committed rows let dedup drop their keys."""
        flight = self._flight
        if flight is None:
            return
        self._flight = None
        exc = flight.wait()
        if exc is not None:
            self._broken = True
            if isinstance(exc, (OSError, RuntimeError)):
                raise write_error(self.path, exc, "cannot write the archive") from None
            raise exc
        if flight.committed is not None and self._pass is not None and self._dedup is not None:
            self._dedup.evict(flight.committed)  # committed rows can be read back: their keys may go

    def _flush(self, commit: bool, background: bool = False) -> None:
        """Write the buffered rows (and commit them). Everything the write needs is decided
        here: row counts, the pass row, the commit row; with ``background`` a thread of its
        own writes it while the caller goes on (one flush in flight at a time)."""
        self._join()
        f = self._file
        if any(t.pending for t in self._tables.values()):
            self._check_space()
        jobs = []
        for path, table in self._tables.items():
            if table.pending:
                rows, heap_len = self._rows[path], self._heap_len.get(path, 0)
                snap = table.detach(f[path])
                jobs.append((path, snap, rows, heap_len))
                self._rows[path] = rows + snap.pending_rows
                self._heap_len[path] = heap_len + snap.heap_bytes()
        pass_row = None
        if self._pass is not None and "passes" in self._rows:
            row = self._pass["row"]
            if row < self._rows["passes"]:
                p = self._pass
                pass_row = (row, {"packets_archived": p["packets"], "duplicates_skipped": p["duplicates"],
                                  "untimed_packets": p["untimed"], "frames_archived": p["frames"],
                                  "rejects_archived": p["rejects"],
                                  "reception_start": p["rt"][0], "reception_end": p["rt"][1],
                                  "onboard_start": p["kt"][0], "onboard_end": p["kt"][1]})
                p["last_flush"] = self._clock()
        commit_row = self._commit_row() if commit else None
        if self._pass is not None:
            self._pass["flushed_packets"] = self._pass["packets"]

        def work():
            for path, snap, rows, heap_len in jobs:
                snap.write(f[path], rows, heap_len)
            if pass_row is not None:
                g = f["passes"]
                for name, v in pass_row[1].items():
                    g[name][pass_row[0]] = v
            if commit_row is not None:
                write_commit(self._file, commit_row)
        committed = dict(self._rows) if commit else None
        if background and jobs:
            self._flight = Flight(work, committed)
            return
        work()
        if committed is not None and self._pass is not None and self._dedup is not None:
            self._dedup.evict(committed)  # committed rows can be read back: their keys may go

    def _commit_row(self) -> np.ndarray:
        """The /flushes row that commits the row counts as they will be once written."""
        self._flush_id += 1
        pass_id = self._pass["pass_id"] if self._pass is not None else 0
        gen = self._layout_gen + (1 if self._layout_changed else 0)
        return commit_row(self._flush_id, pass_id, gen, int(self._clock() * 1e3), self._table_names,
                          self._rows)

    def _commit(self) -> None:
        """Commit what is written (nothing may be in flight: the commit counts it)."""
        self._join()
        write_commit(self._file, self._commit_row())
        if self._pass is not None and self._dedup is not None:
            self._dedup.evict(self._rows)  # committed rows can be read back: their keys may go


def _is_groundseg_archive(path) -> bool:
    """Root attributes of a groundseg archive, read without taking the lock (a file that
    is not one gets no lock file beside it) and whatever flags a crash left."""
    try:
        overlay = OverlayFile(path)
    except (OSError, ArchiveError):
        return False
    try:
        with h5py.File(overlay, "r") as f:
            return "schema_version" in f.attrs and "flushes" in f
    except (OSError, RuntimeError, KeyError) as exc:
        if writer_alive(path):
            raise ArchiveLockedError(f"{path}: the archive is in use by another writer") from None
        raise ArchiveDamagedError(f"{path}: damaged archive: {str(exc).splitlines()[0]}; "
                                  f"run groundseg archive repair {path}") from None
    finally:
        overlay.close()


def _json_default(o):
    """numpy scalars and arrays in the report JSON."""
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
