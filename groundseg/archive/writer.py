"""The archive writer: passes of one mission appended to its HDF5 file.

One file per mission, ``<archive dir>/<mission name>.h5``; every replay or receive
is a pass appended to it. The layout is in ``docs/archive.md`` (``schema``). What shapes it:

* HDF5 SWMR (single writer, multiple readers): nothing can be created in SWMR
  mode, so the writer creates every group and dataset a pass needs while the
  file is open normally, then starts SWMR and only appends. Should a pass bring
  something unforeseen (a new decoded field), the writer commits, reopens the
  file normally for the few milliseconds the creation takes, and resumes SWMR.
* ``storage.ArchiveFile`` holds the file: SWMR mode, layout, flush, commit; this
  module decides what a pass is and what goes in.
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
import time

import h5py
import numpy as np

from groundseg.archive.calibration import RAW_COUNTS, history, is_raw_counts, stored_dtype, with_pass
from groundseg.archive.dedup import Deduplicator, merge_span, packet_keys, span
from groundseg.archive.errors import (
    ArchiveDamagedError, ArchiveError, ArchiveLockedError, write_error,
)
from groundseg.archive.h5access import OverlayFile
from groundseg.archive.keystore import prior_pass_runs, read_keys
from groundseg.archive.lock import WriterLock, writer_alive
from groundseg.archive.rows import (
    packet_reject_records, packet_rows, packet_times, reject_rows, vca_rows,
)
from groundseg.archive.schema import (
    ALL_PASS_COLUMNS, PASS_COMPLETE, PASS_INCOMPLETE, PASS_OPEN, PASS_STATUS,
    REPORT_COLUMNS, REPORT_SUMS, TIME_FRAME, TIME_NONE, archive_path, compression_settings,
    hdf5_name, mission_apids, report_dict, report_is_empty, report_sum, report_value,
)
from groundseg.archive.storage import ArchiveFile
from groundseg.archive.superblock import check_file
from groundseg.link.records import FRAME_RECORD_DTYPE, REJECT_DTYPE, PacketBatch

__all__ = ["ArchiveWriter"]


class ArchiveWriter:
    """Append passes of one mission to its archive.

    ``archive``: a directory (the file is ``<dir>/<mission.name>.h5``) or a ``.h5`` path.
    Raises :class:`ArchiveMismatchError` if the file belongs to another mission name or
    spacecraft ID, :class:`ArchiveLockedError` if another writer has it, and
    :class:`ArchiveError` if it is unreadable. Opening it recovers from a crashed writer.
    """

    def __init__(self, archive: str | os.PathLike, mission, *, flush_seconds: float = 2.0,
                 flush_packets: int = 2_000_000, flush_bytes: int = 256 << 20,
                 buffer_packets: int = 200_000, buffer_bytes: int = 16 << 20,
                 dedup_window: float = 10.0, dedup_memory: int = 32 << 20, dedup_piece: int = 1 << 19,
                 dedup_bucket: float = 60.0,
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
        self.buffer_packets = min(int(buffer_packets), self.flush_packets)
        self.buffer_bytes = min(int(buffer_bytes), self.flush_bytes)
        self.dedup_window = float(dedup_window)
        self.dedup_budget = int(dedup_memory)
        self.dedup_piece = int(dedup_piece)
        self.dedup_bucket = float(dedup_bucket)
        self._clock = clock
        self._lock: WriterLock | None = None
        self._pass: dict | None = None
        self._dedup: Deduplicator | None = None       # the open pass's
        self._loaded: set[int] = set()  # earlier passes whose dedup keys this pass read back
        self._raw_state: dict[str, list] = {}   # calibrated field columns (_raw_counts)
        self._store = ArchiveFile(self.path, self.mission_name, self.spacecraft_id,
                                  compression_settings(compression), clock, self._pass_id,
                                  self._pass_row, self._written)
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
                self.recovered = self._store.open_existing()
            else:
                self._store.create()
        except BaseException:
            self._store.close()
            self._lock.release()
            raise

    # -- what the store asks of the open pass
    def _pass_id(self) -> int:
        return self._pass["pass_id"] if self._pass is not None else 0

    def _pass_row(self, pass_rows: int) -> tuple | None:
        """The open pass's row as of a flush (None if its row is not among ``pass_rows``)."""
        p = self._pass
        if p is None:
            return None
        p["flushed_packets"] = p["packets"]
        if p["row"] >= pass_rows:
            return None
        p["last_flush"] = self._clock()
        return (p["row"], {"packets_archived": p["packets"], "duplicates_skipped": p["duplicates"],
                           "untimed_packets": p["untimed"], "frames_archived": p["frames"],
                           "rejects_archived": p["rejects"],
                           "reception_start": p["rt"][0], "reception_end": p["rt"][1],
                           "onboard_start": p["kt"][0], "onboard_end": p["kt"][1]})

    def _written(self, rows: dict[str, int]) -> None:
        # rows in the file can be read back (committed or not): their keys may leave memory.
        # Waiting for a commit let dedup outgrow its budget by every key since the last one
        # (+130 MB over 2 million packets in one commit interval)
        if self._pass is not None and self._dedup is not None:
            self._dedup.evict(rows)

    # -- target
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

    # -- layout (only while not in SWMR mode)
    # -- passes
    def begin_pass(self, source: str, frame_dtype: np.dtype | None = None,
                   reject_dtype: np.dtype | None = None) -> int:
        """Start a pass; create everything it may write; return its pass id."""
        if self._store.file is None:
            raise ArchiveError(f"{self.path}: the writer is closed")
        if self._pass is not None:
            raise ArchiveError(f"{self.path}: pass {self._pass['pass_id']} is still open")
        frame_dtype = np.dtype(frame_dtype if frame_dtype is not None else FRAME_RECORD_DTYPE)
        reject_dtype = np.dtype(reject_dtype if reject_dtype is not None else REJECT_DTYPE)
        try:
            self._store.ensure_passes()
            self._store.ensure_frames(frame_dtype)
            self._store.ensure_rejects(reject_dtype)
            self._store.ensure_packet_table(None)
            for apid, name in sorted(mission_apids(self.mission).items()):
                self._store.ensure_packet_table(apid, name)
            g = self._store.file["passes"]
            rows = self._store.rows["passes"]
            pass_id = int(g["pass_id"][rows - 1]) + 1 if rows else 1
            now = self._clock()
            text = self._store.file["passes/text"]
            heap = [np.frombuffer(str(source).encode(), np.uint8)]
            src_off = self._store.heap_len["passes"]
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
            self._store.append_text(np.concatenate(heap))  # begin_pass is committed at once
            self._store.tables["passes"].add(row, 1)
            self._pass = {"pass_id": pass_id, "row": rows, "packets": 0, "duplicates": 0,
                          "untimed": 0, "frames": 0, "rejects": 0,
                          "rt": [np.nan, np.nan], "kt": [np.nan, np.nan],
                          "last_flush": self._clock(), "frame_dtype": frame_dtype,
                          "reject_dtype": reject_dtype}
            self._store.flush(commit=True)
            self._store.enter_swmr()
            self._dedup = Deduplicator(self.dedup_window, self.dedup_budget, self.dedup_piece,
                                       loader=self._load_run, bucket=self.dedup_bucket)
            self._dedup.written = dict(self._store.rows)
            self._loaded = set()
            store = self._store
            for sources, onboard, reception, untimed in prior_pass_runs(
                    store.file, store.rows["passes"], store.table_names, pass_id, self.dedup_piece):
                self._dedup.add_unloaded(sources, onboard, reception, untimed)
        except (OSError, RuntimeError) as exc:
            raise write_error(self.path, exc, "cannot start a pass") from None
        return pass_id

    def _load_run(self, run, timed: bool):
        """Read an evicted or never-loaded dedup run back from the archive (nothing may be
        in flight: its rows may be among those read)."""
        self._store.join()
        within = (run.lo, run.hi, run.untimed) if run.bucket is not None else None
        return read_keys(self._store.file, run.sources, timed, self._loaded, within)

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
            self._store.flush(commit=False)
            g = self._store.file["passes"]
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
                off = self._store.append_text(js)
                g["report_offset"][row] = off
                g["report_length"][row] = len(js)
            self._store.commit()
        except (OSError, RuntimeError) as exc:
            self._pass = None
            self._store.broken = True
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
                    self._store.join()
                    self.end_pass(None, complete=False)
                except ArchiveError:
                    if self._store.broken:
                        raise
                    # the buffered batch cannot be written (disk full): drop it, keep the rest
                    for t in self._store.tables.values():
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
            if self._pass is not None and self._store.file is not None:
                self.end_pass(None, complete=False)
        finally:
            self._store.close()
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
            self._store.in_append = True
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
                self._store.in_append = False
            self._store.enter_swmr()
            self.poll()
        except (OSError, RuntimeError) as exc:
            raise write_error(self.path, exc, "cannot write the archive") from None

    def poll(self) -> None:
        """Flush if due; a live receiver may call this when no data arrive."""
        if self._pass is None:
            return
        if self._store.flight is not None and self._store.flight.done():
            self._store.join()
        pend_rows, pend_bytes = self._store.pending()
        unc_rows, unc_bytes = self._store.uncommitted()
        time_due = self._clock() - self._pass["last_flush"] >= self.flush_seconds
        try:
            if time_due or unc_rows >= self.flush_packets or unc_bytes >= self.flush_bytes:
                # flush_seconds bounds how stale a reader's view is: a flush due by time is
                # committed before this returns; one due by size (bulk replay) is written by
                # a background thread while decoding goes on, committed before the next one
                self._store.flush(commit=True, background=not time_due)
            elif pend_rows >= self.buffer_packets or pend_bytes >= self.buffer_bytes:
                # buffered rows go to HDF5 (its chunk cache, then the file) uncommitted: memory
                # stays bounded, and the tail chunk of every column is not written out (and
                # compressed) again as a commit's H5Fflush does: 40 % of a replay's writing
                self._store.flush(commit=False, background=True, write_only=True)
        except (OSError, RuntimeError) as exc:
            self._store.broken = True
            raise write_error(self.path, exc, "cannot write the archive") from None

    def flush(self) -> None:
        """Write what is buffered and commit it (readers see it; it survives kill -9)."""
        try:
            self._store.flush(commit=True)
        except (OSError, RuntimeError) as exc:
            self._store.broken = True
            raise write_error(self.path, exc, "cannot write the archive") from None

    def _append_frames(self, frames: np.ndarray) -> None:
        if frames.dtype.names is None:
            raise ValueError("frames must be a structured array of frame records")
        table = self._store.ensure_frames(frames.dtype)
        cols = {n: np.ascontiguousarray(frames[n]) for n in frames.dtype.names}
        cols["pass_id"] = np.full(len(frames), self._pass["pass_id"], np.uint32)
        table.add(cols, len(frames))
        self._pass["frames"] += len(frames)
        self._store.enter_swmr()

    def _append_rejects(self, rejects, data, offsets) -> None:
        records, cols, n, heap = reject_rows(rejects, data, offsets)
        table = self._store.ensure_rejects(records.dtype)
        cols["pass_id"] = np.full(n, self._pass["pass_id"], np.uint32)
        table.add(cols, n, heap)
        self._pass["rejects"] += n
        self._store.enter_swmr()

    def append_vca(self, vca) -> None:
        """Frames of VCs whose data is "vca": their data fields, archived per frame in /vca."""
        if self._pass is None:
            raise ArchiveError(f"{self.path}: append outside a pass (call begin_pass first)")
        if vca is None or len(vca) == 0:
            return
        try:
            specs, cols, n, heap = vca_rows(np.asarray(vca.records), np.asarray(vca.data, np.uint8))
            table = self._store.ensure_table_columns("vca", specs, "header", heap="raw")
            cols["pass_id"] = np.full(n, self._pass["pass_id"], np.uint32)
            table.add(cols, n, heap)
            self._store.enter_swmr()
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
                mine = a == apid
                self._archive_packets(int(a), declared.get(int(a)), d.packets.select(m), onboard[m],
                                      {k: np.asarray(v)[m] for k, v in d.fields.items()} if mine else {},
                                      d.units, d.calibration,
                                      {k: np.asarray(v)[m] for k, v in d.raw_fields.items()} if mine else {})
            return
        self._archive_packets(apid, declared.get(apid), d.packets, onboard,
                              d.fields or {}, d.units or {}, d.calibration or {}, d.raw_fields or {})

    def _archive_packets(self, apid: int, name: str | None, batch: PacketBatch, onboard: np.ndarray,
                         fields: dict, units: dict, calibration: dict, raw_fields: dict | None = None) -> None:
        n = len(batch)
        h = batch.header
        p = self._pass
        if len(onboard) != n:
            raise ValueError(f"APID {apid}: {len(onboard)} onboard times for {n} packets")
        src, ktime, rt = packet_times(h, onboard)
        exact = src <= TIME_FRAME
        keys = packet_keys(batch.data, batch.offsets, h["apid"], h["seq_count"], ktime, exact)
        path = self._store.ensure_packet_table(apid if name is not None else None, name)
        # fields checked and their datasets made before dedup remembers these packets
        specs = {}
        fields = dict(fields)
        for position, fname in enumerate(list(fields)):
            cal = str(calibration.get(fname, "") or "")
            # HDF5 lists a group's members by name: the definition's order is kept apart
            attrs = {"units": str(units.get(fname, "") or ""), "calibration": cal, "position": position}
            raw = (raw_fields or {}).get(fname) if cal else None
            arr = self._raw_counts(path, "fields/" + hdf5_name(fname), raw, cal, attrs) \
                if raw is not None else None
            if arr is None:
                arr = np.asarray(fields[fname])
                if arr.dtype.kind in "OU":
                    arr = arr.astype("S")
            fields[fname] = arr
            specs["fields/" + hdf5_name(fname)] = (arr.dtype, arr.shape[1:], attrs)
        table = self._store.ensure_table_columns(path, specs, "header", heap="raw") if specs else self._store.tables[path]
        fcols = {}
        for fname, arr in fields.items():
            col = "fields/" + hdf5_name(fname)
            dt = self._store.dtypes.get((path, col))
            if dt is None:
                dt = self._store.dtypes[(path, col)] = self._store.file[path][col].dtype
            if arr.dtype != dt:
                if not np.can_cast(arr.dtype, dt, "same_kind") and not (
                        arr.dtype.kind in "iub" and dt.kind == "f"):
                    raise ArchiveError(f"{self.path}: field {fname!r} of APID {apid} is {dt} in "
                                       f"this archive but {arr.dtype} now; rename the field")
                arr = arr.astype(dt)
            if len(arr) != n:
                raise ValueError(f"APID {apid}: field {fname!r} has {len(arr)} values for {n} packets")
            fcols[col] = arr
        first = self._store.rows[path] + table.pending_rows  # where these rows will land
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
        self._store.enter_swmr()

    def _raw_counts(self, path: str, col: str, raw, cal: str, attrs: dict):
        """A calibrated field's raw counts as its column stores them (archive/calibration.py),
        ``attrs`` completed for a new column; None: the column keeps engineering values
        (a schema 1 archive, a column written so before, a count with no wider type)."""
        key = path + "/" + col
        state = self._raw_state.get(key)  # [raw counts?, calibration history, stored dtype]
        if state is None:
            f = self._store.file
            if key not in f:
                # a new column, made from these attrs; what it holds is learnt from the
                # file once it exists (a creation that failed leaves nothing behind here)
                raw = np.asarray(raw)
                kind = stored_dtype(raw.dtype) if self._store.schema >= 2 else None
                if kind is None:
                    return None
                attrs.update({"values": RAW_COUNTS, "missing": kind[1], "raw_dtype": raw.dtype.str,
                              "calibrations": json.dumps([[self._pass["pass_id"], cal]])})
                return raw.astype(kind[0])
            ds = f[key]
            counts = is_raw_counts(ds)
            state = self._raw_state[key] = [counts, history(ds) if counts else None, ds.dtype]
        if not state[0]:
            return None
        try:
            newer = with_pass(state[1], self._pass["pass_id"], cal)
        except ValueError as exc:
            raise ArchiveError(f"{self.path}: {col}: {exc}") from None
        if newer is not None:
            # the mission's calibration changed: this pass's rows take the new one
            self._store.structural()
            ds = self._store.file[key]
            ds.attrs["calibrations"] = json.dumps(newer)
            ds.attrs["calibration"] = cal
            state[1] = newer
        return np.asarray(raw).astype(state[2])

    # -- flush and commit


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
