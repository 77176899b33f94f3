"""The raw journal: records, rotation, a cut last record, a full disk, replay equals the live chunks."""
from __future__ import annotations

import json

import numpy as np
import pytest

from groundseg.sources.framing import kiss_encode
from groundseg.sources.journal import (
    DATA,
    OUTAGE,
    STREAM,
    JournalCursor,
    JournalError,
    JournalSource,
    JournalWriter,
    ReceiverStats,
    RecordChunker,
    is_journal,
)

L = 50


def header(framing="kiss"):
    return {"format": 1, "framing": framing, "kind": "frames", "frame_length": L, "line_rate": 0.0,
            "options": {"kiss_port": 0}}


def test_records_rotation_and_replay(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (300, L), dtype=np.uint8)
    stream = kiss_encode(frames)
    w = JournalWriter(tmp_path, header(), name="t", rotate_bytes=5000)
    w.append_json(STREAM, 1000.0, {"port": "x", "reconnect": 0})
    pieces = [stream[i:i + 333] for i in range(0, len(stream), 333)]
    for k, p in enumerate(pieces):
        w.append(DATA, 1000.0 + k, p)
    w.close()
    assert len(w.paths) > 1 and all(is_journal(p) for p in w.paths)
    assert w.summary()["bytes"] == len(stream)
    # the live side's chunks, record by record
    live_stats = ReceiverStats()
    ch = RecordChunker("kiss", L, {"kiss_port": 0}, 0.0, "x", live_stats)
    live = [c for c in (ch.feed(STREAM, 1000.0, b"{}"),
                        *[ch.feed(DATA, 1000.0 + k, p) for k, p in enumerate(pieces)]) if c is not None]
    src = JournalSource(w.paths)
    replayed = list(src.chunks())
    assert len(replayed) == len(live)
    for a, b in zip(live, replayed):
        assert (a.data == b.data).all() and a.rx_time == b.rx_time and a.offset == b.offset
        assert a.new_stream == b.new_stream
    assert replayed[0].new_stream and not any(c.new_stream for c in replayed[1:])   # parts continue one stream
    got = np.concatenate([c.data for c in replayed]).reshape(-1, L)
    assert (got == frames).all()
    assert src.stats.streams == 1 and src.stats.bytes_in == len(stream)


def test_cut_last_record_and_outage(tmp_path):
    w = JournalWriter(tmp_path, header("raw"), name="t")
    w.append_json(STREAM, 1.0, {})
    w.append(DATA, 2.0, b"abcdef")
    w.append_json(OUTAGE, 3.0, {"start": 2.5, "end": 3.0, "bytes_before": 6, "reason": "unplugged"})
    w.append_json(STREAM, 3.0, {})
    w.append(DATA, 4.0, b"ghij")
    w._f.close()
    w._f = None
    path = w.paths[0]
    with open(path, "ab") as f:
        f.write(b"D\x00\x00")      # a record cut short by a crash
    cur = JournalCursor([path])
    kinds = []
    while (r := cur.next()) is not None:
        kinds.append(r[0])
    assert kinds == [STREAM, DATA, OUTAGE, STREAM, DATA] and cur.truncated_bytes == 3
    src = JournalSource([path])
    chunks = list(src.chunks())
    assert [c.new_stream for c in chunks] == [True, True]
    assert [c.data.tobytes() for c in chunks] == [b"abcdef", b"ghij"]
    assert src.stats.truncated_bytes == 3 and src.stats.streams == 2
    assert src.stats.outages[0].reason == "unplugged" and src.stats.outages[0].bytes_before == 6


def test_full_disk_stops_the_journal_and_says_where(tmp_path):
    w = JournalWriter(tmp_path, header("raw"), name="t")
    w.append(DATA, 1.0, b"x" * 100)
    w._f.close()
    w._f = open("/dev/full", "wb", buffering=0)
    assert w.append(DATA, 2.0, b"y" * 100) is None
    assert w.failed and "journal stopped at byte" in w.failed and "after 1 records" in w.failed
    assert w.append(DATA, 3.0, b"z") is None
    assert "stopped" in w.summary()


def test_not_writable_and_not_a_journal(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(JournalError, match="journal directory"):
        JournalWriter(tmp_path / "f" / "sub", header())
    with pytest.raises(JournalError, match="not a groundseg journal"):
        JournalSource([tmp_path / "f"])


def test_retention_deletes_only_old_journals(tmp_path):
    import os
    w = JournalWriter(tmp_path, header(), name="old")
    w.close()
    os.utime(w.paths[0], (1.0, 1.0))
    (tmp_path / "keep.txt").write_text("x")
    os.utime(tmp_path / "keep.txt", (1.0, 1.0))
    w2 = JournalWriter(tmp_path, header(), name="new", keep_days=1)
    w2.close()
    assert not w.paths[0].exists() and (tmp_path / "keep.txt").exists() and w2.paths[0].exists()
    assert json.loads(json.dumps(w2.summary()))["deleted_by_retention"] == 1
