"""Columns written chunk by chunk (archive/chunks.py) against HDF5's own pipeline: the same
values read back by h5py, the same filters declared, partial chunks kept back until a
commit asks for them, and a column read back from the file when its kept rows are gone."""
from __future__ import annotations

import subprocess

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from groundseg.archive.chunks import chunk_spec, read_rows, rows_in_file, write_chunks, write_tail

DTYPES = ["u1", "<u2", ">u2", "<i4", "<f8", ">f8", "?"]


def _dataset(f, name, dtype, chunk, shuffle=True, deflate=True, tail=()):
    dtype = np.dtype(dtype)
    kw = dict(compression="gzip", compression_opts=1, shuffle=shuffle and dtype.itemsize > 1) if deflate else {}
    if dtype.kind == "f":
        kw["fillvalue"] = np.nan
    return f.create_dataset(name, shape=(0,) + tail, maxshape=(None,) + tail, chunks=(chunk,) + tail,
                            dtype=dtype, **kw)


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(DTYPES), st.sampled_from([1, 4, 8]),
       st.lists(st.tuples(st.integers(0, 30), st.booleans()), min_size=1, max_size=12), st.integers(0, 2**32 - 1),
       st.sampled_from([(True, True), (False, True), (False, False)]), st.sampled_from([(), (3,), (2, 2)]))
def test_chunk_writes_read_back_as_written(tmp_path_factory, dtype, chunk, appends, seed, filters, tail):
    """Shuffled and deflated, deflated, or without filters (stored as they are); rows of
    any shape (array fields)."""
    rng = np.random.default_rng(seed)
    path = tmp_path_factory.mktemp("chunks") / "c.h5"
    shuffle, deflate = filters
    with h5py.File(path, "w", libver=("v110", "v110")) as f:
        ds = _dataset(f, "direct", dtype, chunk, shuffle, deflate, tail)
        ref = _dataset(f, "pipeline", dtype, chunk, shuffle, deflate, tail)
        spec = chunk_spec(ds)
        assert spec is not None and spec.rows == chunk and spec.deflate == deflate
        tails: dict = {}
        rows = 0
        values = []
        for n, partial in appends:
            a = (rng.random((n,) + tail) * 1000).astype(dtype)
            if np.dtype(dtype).kind == "f":
                a[rng.random((n,) + tail) < 0.2] = np.nan
            ds.resize((rows + n,) + tail)
            # one array, or the rows in pieces (a flush's batches), empty ones included
            cuts = np.sort(rng.integers(0, n + 1, int(rng.integers(0, 4))))
            write_chunks(ds, spec, rows, a if rng.random() < 0.3 else np.split(a, cuts), tails, partial)
            ref.resize((rows + n,) + tail)
            ref[rows:rows + n] = a
            rows += n
            values.append(a)
            # what is in the file: whole chunks, and the partial one after a partial write
            in_file = rows if partial else rows - rows % chunk
            assert rows_in_file(rows, partial) <= in_file   # what dedup may read back
            got = ds[:in_file]
            assert np.array_equal(got, ref[:in_file], equal_nan=got.dtype.kind == "f")
        write_tail(ds, spec, tails)
        want = np.concatenate(values) if values else np.zeros((0,) + tail, dtype)
        for d in (ds, ref):
            got = d[:]
            assert np.array_equal(got, want, equal_nan=got.dtype.kind == "f")
        assert ds.compression == ref.compression and ds.shuffle == ref.shuffle
        # read back chunk by chunk (ISA-L, numba unshuffle) as HDF5 reads them
        for _ in range(4):
            a0 = int(rng.integers(0, rows + 1))
            b0 = int(rng.integers(a0, rows + chunk + 2))
            for d in (ds, ref):
                got, want_rows = read_rows(d, a0, b0), d[a0:b0]
                assert got.dtype == want_rows.dtype and got.shape == want_rows.shape
                assert np.array_equal(got, want_rows, equal_nan=got.dtype.kind == "f")
        if rows:   # the same bytes as HDF5's own pipeline stored, chunk for chunk
            for k in range(0, rows - rows % chunk, chunk):
                at = (k,) + (0,) * len(tail)
                assert ds.id.read_direct_chunk(at) == ref.id.read_direct_chunk(at) or deflate


@pytest.mark.parametrize("dtype", ["<f8", ">f8", ">u2"])
def test_a_column_that_missed_writes_reads_its_rows_back(tmp_path, dtype):
    """Rows the kept tail does not cover (another writer's, or fill values HDF5 gave a
    column that missed a flush) are read back from the file; padding is the fill value.
    A big-endian column (ccsdspy's field dtypes) keeps its byte order: h5py reads the
    rows back as native ones, and the chunk is stored as the bytes it is given."""
    fill = np.nan if dtype.endswith("f8") else 0
    with h5py.File(tmp_path / "c.h5", "w", libver=("v110", "v110")) as f:
        ds = _dataset(f, "t", dtype, 8)
        spec = chunk_spec(ds)
        tails: dict = {}
        ds.resize((5,))
        write_chunks(ds, spec, 0, np.arange(5).astype(dtype), tails, True)
        ds.resize((7,))                       # two rows the writer never gave: the fill value
        tails.clear()                         # as after reopening the archive
        ds.resize((10,))
        write_chunks(ds, spec, 7, np.array([7, 8, 9]).astype(dtype), tails, False)
        write_tail(ds, spec, tails)
        got = ds[:]
        assert np.array_equal(got, [0, 1, 2, 3, 4, fill, fill, 7, 8, 9], equal_nan=dtype.endswith("f8"))


def test_only_shuffle_deflate_or_unfiltered_columns_qualify(tmp_path):
    with h5py.File(tmp_path / "c.h5", "w") as f:
        assert chunk_spec(_dataset(f, "a", "<u4", 16)) is not None
        assert chunk_spec(_dataset(f, "b", "<u4", 16, shuffle=False)) is not None
        c = chunk_spec(f.create_dataset("c", (0,), "<u4", maxshape=(None,), chunks=(16,)))
        assert c is not None and not c.deflate and not c.shuffle
        assert chunk_spec(f.create_dataset("d", (0,), "<u4", maxshape=(None,), chunks=(16,),
                                           compression="gzip", fletcher32=True)) is None
        e = chunk_spec(f.create_dataset("e", (0, 3), "<u4", maxshape=(None, 3), chunks=(16, 3),
                                        compression="gzip"))
        assert e is not None and e.tail == (3,)
        # a chunk that splits a row: not written row by row
        assert chunk_spec(f.create_dataset("h", (0, 4), "<u4", maxshape=(None, 4), chunks=(16, 2))) is None
        assert chunk_spec(f.create_dataset("s", (0,), "S4", maxshape=(None,), chunks=(16,))) is None
        # chunks that do not divide CHUNK_ROWS: the rows dedup may read back are floored to
        # it; a heap (any_rows) has no rows dedup reads
        assert chunk_spec(_dataset(f, "g", "<u4", 5)) is None
        assert chunk_spec(f.create_dataset("heap", (0,), "u1", maxshape=(None,), chunks=(1000,)),
                          any_rows=True) is not None


def test_h5dump_reads_chunks_written_so(tmp_path):
    h5dump = pytest.importorskip("shutil").which("h5dump")
    if h5dump is None:
        pytest.skip("h5dump (hdf5-tools) is not installed")
    path = tmp_path / "c.h5"
    with h5py.File(path, "w", libver=("v110", "v110")) as f:
        ds = _dataset(f, "t", "<u2", 8)
        tails: dict = {}
        ds.resize((20,))
        write_chunks(ds, chunk_spec(ds), 0, np.arange(100, 120, dtype="<u2"), tails, True)
    out = subprocess.run([h5dump, "-d", "/t", str(path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "119" in out.stdout and "100, 101, 102" in out.stdout


def test_read_rows_of_unwritten_chunks_give_the_fill(tmp_path):
    """Chunks HDF5 never allocated (an extent grown without writes) read back as the
    fill value, as h5py gives them."""
    with h5py.File(tmp_path / "c.h5", "w", libver=("v110", "v110")) as f:
        ds = _dataset(f, "t", "<f8", 8)
        ds.resize((30,))
        write_chunks(ds, chunk_spec(ds), 0, np.arange(5.0), {}, True)
        got = read_rows(ds, 2, 30)
        assert np.array_equal(got, ds[2:30], equal_nan=True) and np.isnan(got[-1])
