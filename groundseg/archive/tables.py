"""Appendable tables and the background flush.

A table is a group of equal-length 1-D column datasets (chunked, resizable) plus an
optional flat ``uint8`` heap whose rows are addressed by ``raw_offset``/``length``.
Rows are buffered as they come and written column by column at a flush, one HDF5
call per column; a flush due by size can be written by a thread of its own.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import h5py
import numpy as np

from groundseg.archive.chunks import chunk_spec, write_chunks, write_tail
from groundseg.archive.schema import CHUNK_BYTES, CHUNK_BYTES_COMPRESSED, CHUNK_ROWS, TIME_COLUMNS
from groundseg.link.records import REJECT_REASONS

__all__ = ["Table", "Flight", "columns", "dataset_options", "create_column", "write_rows"]


def _fill_for(dtype: np.dtype):
    """Fill value of a new column for rows written before it existed: NaN for floats."""
    if dtype.kind == "f":
        return np.nan
    if dtype.kind == "c":
        return complex(np.nan, np.nan)
    return None


def _enum_reasons(dtype) -> np.dtype:
    """Reject and frame status codes as an HDF5 enum (h5dump shows the names)."""
    return h5py.enum_dtype({name: i for i, name in enumerate(REJECT_REASONS)}, basetype=np.dtype(dtype))


def create_column(g: h5py.Group, name: str, dtype, tail: tuple, rows: int, options: dict,
                  attrs: dict | None = None, heap: bool = False) -> h5py.Dataset:
    """A new column (or heap) ``name`` of ``rows`` rows in table group ``g``: filled (NaN
    for floats) where no value was ever written; reject reasons and frame statuses as an
    enum; UNIX-time columns say so in ``units``; ``options`` from :func:`dataset_options`."""
    dtype = np.dtype(dtype)
    h5type = dtype
    table = g.name.strip("/")
    if ((name == "reason" and table == "rejects") or (name == "status" and table == "frames")) \
            and dtype.kind == "u":
        h5type = _enum_reasons(dtype)
    kw = dict(options)
    if table == "passes" and not heap:
        kw["chunks"] = (256,)  # a few rows per pass, not millions
    fill = _fill_for(dtype)
    if attrs and "missing" in attrs:  # raw counts: the value meaning "none" (archive/calibration.py)
        fill = attrs["missing"]
    if fill is not None:
        kw["fillvalue"] = fill
    ds = g.create_dataset(name, shape=(rows,) + tuple(tail), dtype=h5type, **kw)
    if heap:
        ds.attrs["heap"] = True
    elif dtype.kind == "f" and (name.endswith("_time") or name in TIME_COLUMNS):
        ds.attrs["units"] = "s since 1970-01-01T00:00:00Z (UTC, UNIX time); NaN unknown"
    for k, v in (attrs or {}).items():
        ds.attrs[k] = v
    return ds


def dataset_options(compression: dict, category: str, dtype: np.dtype, tail: tuple) -> dict:
    """h5py ``create_dataset`` options (chunks, maxshape, filters) for a column or heap of
    ``category`` ("header", "fields", "raw", "text") with rows of shape ``tail``."""
    dtype = np.dtype(dtype)
    opts = dict(compression.get(category, {}))
    if category == "header" and dtype == np.dtype("<u8"):
        opts = {}  # dedup keys are uniformly random: gzip would only cost time
    if opts.get("shuffle") and dtype.itemsize == 1:
        opts.pop("shuffle")
    # HDF5 allocates an uncompressed chunk whole: smaller chunks keep a small archive
    # small; compressed chunks shrink to their content, so they can be larger
    target = CHUNK_BYTES_COMPRESSED if opts.get("compression") else CHUNK_BYTES
    if category in ("raw", "text"):
        chunks = (target,)
    else:
        per_row = max(1, int(np.prod(tail, dtype=np.int64)) * max(1, dtype.itemsize))
        chunk_rows = max(256, min(CHUNK_ROWS, target // per_row))
        # a power of two divides CHUNK_ROWS: the column can be written chunk by chunk
        chunk_rows = 1 << (chunk_rows.bit_length() - 1)
        chunks = (chunk_rows,) + tuple(tail)
    kw = dict(chunks=chunks, maxshape=(None,) + tuple(tail))
    kw.update(opts)
    return kw


@dataclass
class Pending:
    columns: dict[str, np.ndarray]
    rows: int
    heap: np.ndarray | None = None  # this piece's bytes; its rows' raw_offset are local to it


class Column:
    """A column's dataset handle with what a flush asks of it, read from the file once:
    h5py builds a new object (and a weakref registry entry) for every ``shape``,
    ``dtype`` or ``name`` asked, ~0.1 ms of the flush thread each, hundreds a flush.
    ``rows``: its extent, which only the table's writes change."""

    __slots__ = ("ds", "dtype", "h5type", "tail", "fill", "name", "rows")

    def __init__(self, ds: h5py.Dataset):
        self.ds = ds
        self.dtype = ds.dtype
        self.h5type = ds.id.get_type()
        shape = ds.shape
        self.tail = shape[1:]
        self.rows = shape[0]
        self.fill = ds.fillvalue if ds.fillvalue is not None else 0
        self.name = ds.name

    def extend(self, rows: int) -> None:
        self.ds.id.set_extent((rows,) + self.tail)
        self.rows = rows


class Table:
    """A group of equal-length column datasets plus an optional flat uint8 heap."""

    def __init__(self, path: str, heap: str | None = None, direct: bool = False):
        self.path = path
        self.heap = heap
        self.datasets: dict[str, Column] | None = None  # handles, dropped on reopen
        # append-only tables write their deflated columns chunk by chunk (archive/chunks.py);
        # what that needs lives here, shared with the snapshots a background flush writes
        self.direct = direct
        self.specs: dict = {}      # column -> ChunkSpec, or None: HDF5's own pipeline
        self.tails: dict = {}      # dataset -> [first row, rows, in the file] of its last chunk
        self.pending: list[Pending] = []
        self.pending_rows = 0
        self.pending_bytes = 0

    def add(self, columns: dict[str, np.ndarray], rows: int, heap: np.ndarray | None = None):
        if rows == 0:
            return
        self.pending.append(Pending(columns, rows, heap))
        self.pending_rows += rows
        self.pending_bytes += sum(a.nbytes for a in columns.values()) + (0 if heap is None else heap.nbytes)

    def detach(self, f: h5py.File) -> "Table":
        """The pending rows as a table of their own (for a background flush); this one
        starts empty. Dataset handles are looked up here, in the calling thread."""
        self._handles(f)
        snap = Table(self.path, self.heap, self.direct)
        snap.datasets = self.datasets
        snap.specs, snap.tails = self.specs, self.tails
        snap.pending, snap.pending_rows, snap.pending_bytes = self.pending, self.pending_rows, self.pending_bytes
        self.pending, self.pending_rows, self.pending_bytes = [], 0, 0
        return snap

    def heap_bytes(self) -> int:
        return sum(len(p.heap) for p in self.pending if p.heap is not None) if self.heap is not None else 0

    def column_names(self) -> set[str]:
        names: set[str] = set()
        for p in self.pending:
            names.update(p.columns)
        return names

    def _spec(self, name: str, col: Column):
        if not self.direct:
            return None
        if name not in self.specs:
            # a heap's length is a byte count no dedup reads back: any chunk size will do
            self.specs[name] = chunk_spec(col.ds, any_rows=name == "\0heap")
        return self.specs[name]

    def _handles(self, f: h5py.File) -> dict[str, Column]:
        """The table's columns (looked up once, again after a reopen or a new column)."""
        if self.datasets is None:
            group = f[self.path]
            self.datasets = {name: Column(ds) for name, ds in columns(group).items()}
            if self.heap is not None:
                self.datasets["\0heap"] = Column(group[self.heap])
        return self.datasets

    def unwritten_tails(self) -> bool:
        """Some column's partial last chunk is kept here and not yet in the file."""
        return any(not kept[2] for kept in self.tails.values())

    def write_tails(self, f: h5py.File) -> None:
        """Every column's partial last chunk into the file (before a commit counts its rows)."""
        self._handles(f)
        for name, col in self.datasets.items():
            if col.name in self.tails:
                spec = self._spec(name, col)
                if spec is not None:
                    write_tail(col.ds, spec, self.tails, col.name, col.dtype)

    def write(self, f: h5py.File, rows: int, heap_len: int, partial: bool = True) -> tuple[int, int]:
        """Append the pending rows after ``rows`` (committed), heap after ``heap_len``.
        ``partial``: the partial last chunk of a column written chunk by chunk goes to the
        file too (a commit needs it; an uncommitted write leaves it to the next write)."""
        if not self.pending:
            return rows, heap_len
        n = self.pending_rows
        names = self.column_names()
        cols = self._handles(f)
        if self.heap is not None:
            shift = heap_len
            offsets = []
            for p in self.pending:
                offsets.append(p.columns["raw_offset"] + shift)
                shift += 0 if p.heap is None else len(p.heap)
            col = cols["\0heap"]
            col.extend(shift)
            # one write call per column and flush: HDF5 spends ~0.1 ms a call on a chunked
            # dataset whatever its size, and a flush is a few MB (buffer_bytes) to copy
            pieces = [p.heap for p in self.pending if p.heap is not None and len(p.heap)]
            if pieces:
                spec = self._spec("\0heap", col)
                if spec is not None:
                    write_chunks(col.ds, spec, heap_len, [np.ascontiguousarray(x, col.dtype) for x in pieces],
                                 self.tails, partial, col.name)
                else:
                    write_rows(col.ds, heap_len, pieces[0] if len(pieces) == 1 else np.concatenate(pieces),
                               col.dtype, col.h5type)
            heap_len = shift
            for p, off in zip(self.pending, offsets):
                p.columns["raw_offset"] = off
        for name in names:
            col = cols[name]
            col.extend(rows + n)
            pieces = []
            for p in self.pending:
                a = p.columns.get(name)
                if a is None:  # a column this batch did not bring (a field first seen later)
                    a = np.full((p.rows,) + col.tail, col.fill, col.dtype)
                pieces.append(a)
            spec = self._spec(name, col)
            if spec is not None:
                # the pieces as they are: only a chunk two pieces share is assembled
                write_chunks(col.ds, spec, rows, [np.ascontiguousarray(x, col.dtype) for x in pieces],
                             self.tails, partial, col.name)
            else:
                a = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
                write_rows(col.ds, rows, a, col.dtype, col.h5type)   # brought to the column's type
        # columns nobody wrote this time keep pace with fill values (one written chunk by
        # chunk gets them written: its partial chunk's kept rows stay whole)
        for name, col in cols.items():
            if name != "\0heap" and name not in names and col.rows < rows + n:
                start = col.rows
                col.extend(rows + n)
                spec = self._spec(name, col)
                if spec is not None:
                    write_chunks(col.ds, spec, start, np.full(rows + n - start, spec.fill, col.dtype),
                                 self.tails, partial, col.name)
        self.pending.clear()
        self.pending_rows = 0
        self.pending_bytes = 0
        return rows + n, heap_len


def write_rows(ds: h5py.Dataset, start: int, a: np.ndarray, dtype: np.dtype, h5type) -> None:
    """Write rows ``a`` at row ``start`` of ``ds`` (its extent already covers them) through
    h5py's low-level API: slicing costs about 0.1 ms a call in selections and object
    bookkeeping, and a flush makes hundreds of these calls. The rows are brought to the
    dataset's own ``dtype`` first, so HDF5 copies them as they are (enum and bool columns
    included, which it would not convert from a plain integer type); ``h5type``: the
    dataset's HDF5 type (a :class:`Column` holds both)."""
    if a.dtype != dtype:
        a = a.astype(dtype)
    a = np.ascontiguousarray(a)
    if a.shape[0] == 0:
        return
    fs = ds.id.get_space()
    fs.select_hyperslab((start,) + (0,) * (a.ndim - 1), a.shape)
    ds.id.write(h5py.h5s.create_simple(a.shape), fs, a, h5type)


def columns(group: h5py.Group, prefix: str = "") -> dict[str, h5py.Dataset]:
    """Row-indexed datasets of a table group (fields/ included; heaps excluded)."""
    out = {}
    for name, obj in group.items():
        if isinstance(obj, h5py.Group):
            if name == "fields":
                out.update(columns(obj, prefix + name + "/"))
            continue
        if obj.attrs.get("heap", False):
            continue
        out[prefix + name] = obj
    return out


class Flight:
    """One flush written by a thread of its own while decoding goes on: HDF5 writes,
    compression and H5Fflush release the GIL, and the decoder's numba kernels do too."""

    def __init__(self, work, written: dict[str, int]):
        self.written = written      # row counts once this flush is in the file
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(work,), name="groundseg-archive-flush")
        self.thread.start()

    def _run(self, work) -> None:
        try:
            work()
        except BaseException as exc:  # handed to the writer's thread at the next join
            self.error = exc

    def done(self) -> bool:
        return not self.thread.is_alive()

    def wait(self) -> BaseException | None:
        self.thread.join()
        return self.error
