"""Compressed columns written chunk by chunk (HDF5 direct chunk writes).

A packet table's header columns are byte-shuffled and deflated (HDF5's built-in
shuffle and deflate filters), and compressing them was the largest cost of archiving:
HDF5 deflates with the system zlib, about 300 MB/s at level 1 on these columns. Here
the chunks are assembled, shuffled and deflated by groundseg and handed to HDF5 whole
(``H5Dwrite_chunk``): ISA-L's deflate (``isal``) writes the same zlib format at about
2.5 GB/s with a ratio as good. The file is unchanged in kind: the dataset declares the
same filters, so h5py, h5dump and any HDF5 reader inflate the chunks with their own
zlib; no plugin is needed to read them. Without ``isal`` the standard zlib is used.

The rows of a column's partial last chunk are kept (``tails``), so the next write
completes that chunk without reading it back. A write that commits (``partial=True``)
also writes the partial chunk whole (the rest of it holds the fill value, and HDF5
reads nothing beyond the extent); uncommitted writes leave it to the next one:
rewriting the tail chunk of every column at every write deflated 2.3x the data. The
rows in the file are then those of whole chunks only (:func:`rows_in_file`), which is
what dedup may read back. Only append-only tables may use this: a cell written in
place by HDF5 into a chunk whose rows are kept here would be overwritten later.
"""
from __future__ import annotations

import zlib

import h5py
import numpy as np

from groundseg.archive.schema import CHUNK_ROWS

try:  # ISA-L: the zlib format at several times zlib's speed
    from isal.isal_zlib import compress as _isal_compress

    def _deflate(data: bytes) -> bytes:
        return _isal_compress(data, 1)
except ImportError:  # pragma: no cover - isal is a dependency; zlib writes the same format
    def _deflate(data: bytes) -> bytes:
        return zlib.compress(data, 1)

__all__ = ["ChunkSpec", "chunk_spec", "write_chunks", "write_tail", "rows_in_file"]

_SHUFFLE = h5py.h5z.FILTER_SHUFFLE
_DEFLATE = h5py.h5z.FILTER_DEFLATE


class ChunkSpec:
    """What a direct write needs to know of a dataset: rows per chunk, whether its
    pipeline shuffles (bytes per element) before deflating, its fill value."""

    __slots__ = ("rows", "shuffle", "fill")

    def __init__(self, rows: int, shuffle: bool, fill):
        self.rows = rows
        self.shuffle = shuffle
        self.fill = fill


def chunk_spec(ds: h5py.Dataset) -> ChunkSpec | None:
    """The spec of a 1-D chunked dataset whose filters are exactly [shuffle,] deflate
    and whose chunk rows divide CHUNK_ROWS (what :func:`rows_in_file` floors to); None
    for any other (written through HDF5's own pipeline)."""
    if ds.ndim != 1 or ds.chunks is None or ds.dtype.kind not in "biuf" or CHUNK_ROWS % ds.chunks[0]:
        return None
    plist = ds.id.get_create_plist()
    codes = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    if codes == [_SHUFFLE, _DEFLATE]:
        shuffle = True
    elif codes == [_DEFLATE]:
        shuffle = False
    else:
        return None
    fill = ds.fillvalue
    return ChunkSpec(int(ds.chunks[0]), shuffle and ds.dtype.itemsize > 1, fill)


def _encode(block: np.ndarray, shuffle: bool) -> bytes:
    """One chunk's rows as HDF5's filters would store them: shuffled, deflated."""
    if shuffle:
        n = block.shape[0]
        block = block.view(np.uint8).reshape(n, block.dtype.itemsize).T
    return _deflate(memoryview(np.ascontiguousarray(block)).cast("B"))


def write_chunks(ds: h5py.Dataset, spec: ChunkSpec, start: int, a: np.ndarray, tails: dict,
                 partial: bool = True, name: str | None = None) -> None:
    """Write rows ``a`` (the dataset's dtype, byte order included: the chunk is stored as
    its bytes) at row ``start`` of ``ds``, whose extent already
    covers them. ``tails``: dataset name -> [first row, rows, in the file] of its partial
    last chunk, kept between calls; a row count that does not follow on
    reads the chunk's rows back from the file instead (the archive reopened: the rows
    there are the committed ones). ``partial``: write the partial last chunk too.
    ``name``: ``ds.name``, when the caller has it (h5py builds it anew at every ask)."""
    size = spec.rows
    c0 = start - start % size
    if name is None:
        name = ds.name
    # the file's byte order: h5py reads a big-endian column back as native, and
    # concatenate gives native too
    dtype = a.dtype
    if start > c0:
        kept = tails.get(name)
        if kept is not None and kept[0] == c0 and len(kept[1]) == start - c0:
            head = kept[1]
        else:
            head = ds[c0:start]
        a = np.concatenate([head, a], dtype=dtype)
    n = a.shape[0]
    full = n - n % size
    for k in range(0, full, size):
        ds.id.write_direct_chunk((c0 + k,), _encode(a[k:k + size], spec.shuffle))
    if full < n:
        tails[name] = [c0 + full, a[full:].copy(), False]
        if partial:
            write_tail(ds, spec, tails, name, dtype)
    else:
        tails.pop(name, None)


def write_tail(ds: h5py.Dataset, spec: ChunkSpec, tails: dict, name: str | None = None,
               dtype: np.dtype | None = None) -> None:
    """Write ``ds``'s partial last chunk whole, if its kept rows are not in the file yet
    (``name``, ``dtype``: the dataset's, when the caller has them)."""
    kept = tails.get(ds.name if name is None else name)
    if kept is None or kept[2]:
        return
    block = np.full(spec.rows, spec.fill, ds.dtype if dtype is None else dtype)
    block[:kept[1].shape[0]] = kept[1]
    ds.id.write_direct_chunk((kept[0],), _encode(block, spec.shuffle))
    kept[2] = True


def rows_in_file(rows: int, partial: bool) -> int:
    """Rows of a table of ``rows`` rows that are in the file after a write, whatever its
    columns' chunk rows: whole CHUNK_ROWS only, unless the write was ``partial``."""
    if partial:
        return rows
    return rows - rows % CHUNK_ROWS
