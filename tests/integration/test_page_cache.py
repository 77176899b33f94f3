"""Files the replay will not read again leave the page cache behind it
(groundseg._page_cache): a large capture behind the read position, any archive's pages
written before the last commit. Measured with util-linux's fincore on real files."""
from __future__ import annotations

import mmap
import os
import shutil
import subprocess
import time

import numpy as np
import pytest

from groundseg import _page_cache, telemetry
from groundseg.archive import ArchiveWriter, open_archive
from groundseg.mission import load_mission
from groundseg.sources.capture import CaptureFile
from tests.integration.test_archive_support import mixed_batch, write_mission

pytestmark = pytest.mark.skipif(shutil.which("fincore") is None or not hasattr(os, "posix_fadvise"),
                                reason="needs Linux posix_fadvise and util-linux fincore")


def _resident(path) -> int:
    """Bytes of ``path`` in the page cache."""
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
                         check=True, capture_output=True, text=True).stdout
    return int(out.split()[0])


def _cached_file(path, nbytes: int) -> None:
    """A file whose pages are all cached and clean (written, synced, read)."""
    with open(path, "wb") as f:
        f.write(np.random.default_rng(3).integers(0, 256, nbytes, dtype=np.uint8).tobytes())
        f.flush()
        os.fsync(f.fileno())
    path.read_bytes()


@pytest.mark.parametrize("large", [True, False])
def test_a_large_capture_leaves_the_cache_as_it_is_read(tmp_path, monkeypatch, large):
    path = tmp_path / "capture.bin"
    _cached_file(path, 6 << 20)
    expected = path.read_bytes()
    if _resident(path) < (5 << 20):
        pytest.skip("this filesystem does not keep the file cached")
    monkeypatch.setattr(_page_cache, "LARGE_BYTES", 1 if large else 1 << 40)
    got = b"".join(c.data.tobytes() for c in CaptureFile(path, kind="bits", chunk_bytes=1 << 20).chunks())
    assert got == expected                      # read whole and unchanged either way
    if large:
        assert _resident(path) < (1 << 20)
    else:
        assert _resident(path) >= (5 << 20)


def test_an_archive_leaves_the_cache_commit_by_commit(tmp_path):
    # any archive, however small (no LARGE_BYTES here)
    mission = load_mission(write_mission(tmp_path / "m"))
    w = ArchiveWriter(tmp_path / "arc", mission, flush_seconds=0)
    w.begin_pass("p")
    for k in range(12):
        decoded, _ = telemetry.decode(mixed_batch(4000, t0=1.7e9 + 10_000 * k, seq0=4000 * k, seed=k,
                                                  rx0=1.8e9 + 10_000 * k), mission)
        w.append(decoded=decoded)
        time.sleep(0.05)   # writeback of what the last commit queued
    w.end_pass({})
    w.close()
    size = os.path.getsize(w.path)
    assert size > (4 << 20)
    # what the last commits wrote may still be cached; everything before has left
    assert _resident(w.path) < 0.5 * size
    with open_archive(w.path) as a:   # and the archive is whole: every packet read back
        hk = a.packets(10)
        assert len(hk) == 12 * 4000
        assert np.array_equal(np.sort(hk["seq_count"].astype(np.int64)), np.sort(np.arange(48000) % 16384))
        assert len(a.packets(11)) == 12 * 4000


def test_capture_chunks_kept_by_the_caller_stay_whole(tmp_path):
    # the read buffer is reused (mapped: over a megabyte) once the caller lets go of it
    data = np.random.default_rng(10).integers(0, 256, 5 << 20, dtype=np.uint8)
    path = tmp_path / "c.bin"
    data.tofile(path)
    chunks = list(CaptureFile(path, chunk_bytes=3 << 19).chunks())   # all held at once
    assert len(chunks) == 4
    assert np.array_equal(np.concatenate([c.data for c in chunks]), data)
    del chunks
    owners = set()
    for c in CaptureFile(path, chunk_bytes=3 << 19).chunks():      # each let go: reused
        assert isinstance(c.data.base.base, mmap.mmap)              # a view of a mapped owner
        owners.add(c.data.__array_interface__["data"][0])
        del c
    assert len(owners) <= 2
