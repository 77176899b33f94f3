"""Columns written chunk by chunk (HDF5 direct chunk writes).

A packet table's header columns are byte-shuffled and deflated (HDF5's built-in
shuffle and deflate filters), and compressing them was the largest cost of archiving:
HDF5 deflates with the system zlib, about 300 MB/s at level 1 on these columns. Here
the chunks are assembled, shuffled and deflated by groundseg and handed to HDF5 whole
(``H5Dwrite_chunk``): ISA-L's deflate (``isal``) writes the same zlib format at about
2.5 GB/s with a ratio as good. The file is unchanged in kind: the dataset declares the
same filters, so h5py, h5dump and any HDF5 reader inflate the chunks with their own
zlib; no plugin is needed to read them. Without ``isal`` the standard zlib is used.

Columns stored without filters (decoded fields, dedup keys, the raw packet heap) are
written the same way, their chunks handed over as they are: HDF5's own write of a
hyperslab costs ~30 us a call in selections and conversion and ran at 1.1-1.9 GB/s,
half the speed of the file system's copy, and a 10 GB replay made ~48,000 of them.

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

from groundseg._numba import kernel
from groundseg.archive.schema import CHUNK_ROWS

try:  # ISA-L: the zlib format at several times zlib's speed
    from isal.isal_zlib import compress as _isal_compress, decompress as _inflate

    def _deflate(data: bytes) -> bytes:
        return _isal_compress(data, 1)
except ImportError:  # pragma: no cover - isal is a dependency; zlib writes the same format
    from zlib import decompress as _inflate

    def _deflate(data: bytes) -> bytes:
        return zlib.compress(data, 1)

__all__ = ["ChunkSpec", "chunk_spec", "write_chunks", "write_tail", "rows_in_file", "read_rows"]

_SHUFFLE = h5py.h5z.FILTER_SHUFFLE
_DEFLATE = h5py.h5z.FILTER_DEFLATE


class ChunkSpec:
    """What a direct write needs to know of a dataset: rows per chunk, whether its
    pipeline shuffles (bytes per element) and deflates, its fill value, the shape of a
    row."""

    __slots__ = ("rows", "shuffle", "fill", "deflate", "tail")

    def __init__(self, rows: int, shuffle: bool, fill, deflate: bool = True, tail: tuple = ()):
        self.rows = rows
        self.shuffle = shuffle
        self.fill = fill
        self.deflate = deflate
        self.tail = tuple(tail)


def chunk_spec(ds: h5py.Dataset, any_rows: bool = False) -> ChunkSpec | None:
    """The spec of a chunked numeric dataset, chunked by whole rows, whose filters are
    exactly [shuffle,] deflate or none, and whose chunk rows divide CHUNK_ROWS (what
    :func:`rows_in_file` floors to; ``any_rows``: a heap, whose length no dedup reads
    back); None for any other (written through HDF5's own pipeline)."""
    if ds.chunks is None or ds.dtype.kind not in "biuf" or tuple(ds.chunks[1:]) != tuple(ds.shape[1:]):
        return None
    if not any_rows and CHUNK_ROWS % ds.chunks[0]:
        return None
    plist = ds.id.get_create_plist()
    codes = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    if codes == [_SHUFFLE, _DEFLATE]:
        shuffle, deflate = True, True
    elif codes == [_DEFLATE]:
        shuffle, deflate = False, True
    elif not codes:
        shuffle, deflate = False, False
    else:
        return None
    fill = ds.fillvalue
    return ChunkSpec(int(ds.chunks[0]), shuffle and ds.dtype.itemsize > 1, fill, deflate, ds.shape[1:])


def _encode(block: np.ndarray, spec: ChunkSpec):
    """One chunk's rows as HDF5's filters would store them: shuffled, deflated (or the
    bytes as they are, for a dataset without filters)."""
    if spec.shuffle:
        # HDF5's shuffle sees the chunk as one run of elements, whatever a row's shape
        block = block.reshape(-1).view(np.uint8).reshape(-1, block.dtype.itemsize).T
    data = memoryview(np.ascontiguousarray(block)).cast("B")
    return _deflate(data) if spec.deflate else data


def write_chunks(ds: h5py.Dataset, spec: ChunkSpec, start: int, a, tails: dict,
                 partial: bool = True, name: str | None = None) -> None:
    """Write rows ``a`` (the dataset's dtype, byte order included: the chunk is stored as
    its bytes), an array or a list of arrays one after another, at row ``start`` of
    ``ds``, whose extent already covers them. ``tails``: dataset name -> [first row,
    rows, in the file] of its partial last chunk, kept between calls; a row count that
    does not follow on reads the chunk's rows back from the file instead (the archive
    reopened: the rows there are the committed ones). ``partial``: write the partial last
    chunk too. ``name``: ``ds.name``, when the caller has it (h5py builds it anew at
    every ask).

    Only a chunk that straddles two arrays (or the kept head) is assembled; every other
    chunk is written from the rows as they are (a column without filters is not copied
    at all)."""
    parts = [a] if isinstance(a, np.ndarray) else a
    if not parts:
        return
    size = spec.rows
    c0 = start - start % size
    if name is None:
        name = ds.name
    # the file's byte order: h5py reads a big-endian column back as native, and
    # concatenate gives native too
    dtype = parts[0].dtype
    rest = (0,) * len(spec.tail)
    pend: list = []      # rows of the chunk at c0 gathered so far
    have = 0
    if start > c0:
        kept = tails.get(name)
        if kept is not None and kept[0] == c0 and len(kept[1]) == start - c0:
            pend = [kept[1]]
        else:
            pend = [ds[c0:start]]
        have = start - c0
    for p in parts:
        m = p.shape[0]
        i = 0
        if have:
            i = min(size - have, m)
            pend.append(p[:i])
            have += i
            if have < size:
                continue
            ds.id.write_direct_chunk((c0,) + rest, _encode(np.concatenate(pend, dtype=dtype), spec))
            c0 += size
            pend, have = [], 0
        whole = i + (m - i) // size * size
        for k in range(i, whole, size):
            ds.id.write_direct_chunk((c0,) + rest, _encode(p[k:k + size], spec))
            c0 += size
        if whole < m:
            pend, have = [p[whole:]], m - whole
    if have:
        tails[name] = [c0, np.concatenate(pend, dtype=dtype), False]
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
    block = np.full((spec.rows,) + spec.tail, spec.fill, ds.dtype if dtype is None else dtype)
    block[:kept[1].shape[0]] = kept[1]
    ds.id.write_direct_chunk((kept[0],) + (0,) * len(spec.tail), _encode(block, spec))
    kept[2] = True


@kernel
def _unshuffle_kernel(src, itemsize, out):
    # undo HDF5's shuffle: byte k of element i is at src[k * n + i]
    n = src.shape[0] // itemsize
    if itemsize == 8:
        w8 = out.view(np.uint64)
        for i in range(n):
            w = np.uint64(0)
            for k in range(8):
                w |= np.uint64(src[k * n + i]) << np.uint64(8 * k)
            w8[i] = w
    else:
        for k in range(itemsize):
            for i in range(n):
                out[i * itemsize + k] = src[k * n + i]


def _unshuffle(buf: np.ndarray, itemsize: int) -> np.ndarray:
    # numpy's transposed copy moves a byte at a time: 180 us for a 256 kB chunk, more
    # than inflating it
    out = np.empty(buf.shape[0], np.uint8)
    _unshuffle_kernel(buf, itemsize, out)
    return out


def read_rows(ds: h5py.Dataset, a: int, b: int, spec: ChunkSpec | None = None) -> np.ndarray:
    """Rows ``a:b`` of ``ds`` (as ``ds[a:b]`` gives them), read chunk by chunk and inflated
    with ISA-L where the dataset qualifies (:func:`chunk_spec`): HDF5 inflates with the
    system zlib, and a dataset opened anew (as dedup's read-backs do) starts with an
    empty chunk cache, so every read inflated whole chunks at ~300 MB/s. ``spec``: the
    dataset's, when the caller has it."""
    spec = chunk_spec(ds) if spec is None else spec
    b = min(b, ds.shape[0])
    if spec is None or b <= a or not spec.deflate:
        return ds[a:b]
    size = spec.rows
    c0 = a - a % size
    item = ds.dtype.itemsize
    parts = []
    for c in range(c0, b, size):
        try:
            mask, raw = ds.id.read_direct_chunk((c,) + (0,) * len(spec.tail))
        except (KeyError, OSError, RuntimeError, ValueError):
            return ds[a:b]    # a chunk never written (all fill): HDF5 knows what it holds
        if mask:              # a filter was skipped for this chunk: HDF5's own pipeline
            return ds[a:b]
        buf = np.frombuffer(_inflate(raw), np.uint8)
        if spec.shuffle:
            buf = _unshuffle(buf, item)
        parts.append(buf.view(ds.dtype).reshape((-1,) + tuple(spec.tail))[:size])
    # concatenate would give native byte order; h5py gives the dataset's
    rows = parts[0] if len(parts) == 1 else np.concatenate(parts, dtype=ds.dtype)
    return rows[a - c0:b - c0]


def rows_in_file(rows: int, partial: bool) -> int:
    """Rows of a table of ``rows`` rows that are in the file after a write, whatever its
    columns' chunk rows: whole CHUNK_ROWS only, unless the write was ``partial``."""
    if partial:
        return rows
    return rows - rows % CHUNK_ROWS
