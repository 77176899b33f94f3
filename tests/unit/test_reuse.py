"""Output arrays reused only when nobody holds them (groundseg._reuse), and the stages
that hand them out: a batch a caller keeps is never written over by the next one."""
from __future__ import annotations

import mmap
import threading

import numpy as np
import pytest

from groundseg import _reuse, telemetry
from groundseg._numba import kernel
from groundseg.link import packets as P
from groundseg.link.records import PACKET_DTYPE, PacketBatch


@pytest.fixture(autouse=True)
def _fresh():
    _reuse.release()
    yield
    _reuse.release()


@kernel
def _first_half(a):
    return a[: a.shape[0] // 2]


def _base(a):
    """Where the array's memory starts (holding the owner itself would keep it from reuse)."""
    return a.__array_interface__["data"][0]


def test_an_array_let_go_is_reused():
    a = _reuse.empty("t", (1000,), np.uint8)
    owner = _base(a)
    del a
    b = _reuse.empty("t", (900,), np.uint8)
    assert _base(b) == owner and b.shape == (900,)


def test_an_array_held_is_not_written_over():
    a = _reuse.empty("t", (1000,), np.uint8)
    a[:] = 7
    b = _reuse.empty("t", (1000,), np.uint8)
    b[:] = 9
    assert (a == 7).all() and not np.shares_memory(a, b)


def _hold(a, kind):
    """Something that keeps ``a``'s memory: every way a caller can hold on to a batch."""
    if kind == "slice":
        return a[10:20]
    if kind == "view":
        return a.reshape(-1).view(np.int8)[::2]
    if kind == "numba":
        return _first_half(a)
    if kind == "memoryview":
        return memoryview(a)
    return np.ascontiguousarray(a)


HOLDERS = ["slice", "view", "numba", "memoryview", "ascontiguous"]


@pytest.mark.parametrize("hold", HOLDERS)
def test_every_kind_of_holder_keeps_its_array(hold):
    a = _reuse.empty("t", (1000,), np.uint8)
    a[:] = 7
    held = _hold(a, hold)
    del a
    b = _reuse.empty("t", (1000,), np.uint8)
    b[:] = 9
    assert (np.asarray(held) == 7).all()


def test_shape_dtype_and_size_must_fit():
    a = _reuse.empty("t", (10, 30), np.uint8, keep=4)
    owner = _base(a)
    del a
    assert _base(_reuse.empty("t", (10, 31), np.uint8, keep=4)) != owner
    assert _base(_reuse.empty("t", (10, 30), np.int8, keep=4)) != owner
    c = _reuse.empty("t", (12, 30), np.uint8, keep=4)    # up to a quarter more fits
    assert _base(c) == owner and c.shape == (12, 30)
    del c
    assert _base(_reuse.empty("t", (100, 30), np.uint8, keep=4)) != owner


def test_only_the_newest_are_kept():
    a = _reuse.empty("t", (10,), np.uint8)
    first = _base(a)
    del a
    held = [_reuse.empty("t", (20,), np.uint8) for _ in range(2)]   # two more owners
    assert _base(_reuse.empty("t", (5,), np.uint8)) != first       # the first was let go
    assert all(_base(h) != first for h in held)


def test_threads_never_share_an_array():
    seen = {}

    def take(k):
        a = _reuse.empty("t", (100,), np.uint8)
        seen[k] = _base(a)
        del a

    take("main")
    t = threading.Thread(target=take, args=("other",))
    t.start()
    t.join()
    assert seen["main"] != seen["other"]


def test_extractor_batches_kept_by_the_caller_stay_whole():
    rng = np.random.default_rng(5)
    ex = P.PacketExtractor(1)
    kept, expected = [], []
    for _ in range(4):
        apids = rng.integers(100, 105, 50)
        lengths = rng.integers(1, 40, 50)
        flat = rng.integers(0, 256, int(lengths.sum())).astype(np.uint8)
        seq = np.arange(50) + 50 * len(kept)
        stream, starts = P.build_packets(apids, seq, (flat, lengths))
        zones, fhp = P.pack_mpdu(stream, starts, 64)
        out = ex.push_data_fields(zones, fhp, np.zeros(len(fhp), bool)).packets
        kept.append(out)
        expected.append((out.data.tobytes(), out.offsets.tobytes(), out.header.tobytes()))
    for out, (d, o, h) in zip(kept, expected):
        assert (out.data.tobytes(), out.offsets.tobytes(), out.header.tobytes()) == (d, o, h)
    assert len({_base(b.data) for b in kept}) == len(kept)


def test_extractor_reuses_a_batch_let_go():
    rng = np.random.default_rng(6)
    apids = rng.integers(100, 105, 80)
    lengths = rng.integers(1, 40, 80)
    flat = rng.integers(0, 256, int(lengths.sum())).astype(np.uint8)
    stream, starts = P.build_packets(apids, np.arange(80), (flat, lengths))
    zones, fhp = P.pack_mpdu(stream, starts, 64)
    ex = P.PacketExtractor(1)
    first = ex.push_data_fields(zones, fhp, np.zeros(len(fhp), bool)).packets
    owner, reference = _base(first.data), first.data.tobytes()
    del first
    ex.reset()
    again = ex.push_data_fields(zones, fhp, np.zeros(len(fhp), bool)).packets
    assert _base(again.data) == owner and again.data.tobytes() == reference


def _mixed_batch(rng, n, seq0):
    apids = rng.choice([7, 200, 201], n).astype(np.uint16)
    lengths = rng.integers(7, 60, n)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    data = rng.integers(0, 256, offsets[-1], dtype=np.uint8)
    header = np.zeros(n, PACKET_DTYPE)
    header["apid"] = apids
    header["seq_count"] = seq0 + np.arange(n)
    header["length"] = lengths
    for i in range(n):
        data[offsets[i]] = (apids[i] >> 8) & 7
        data[offsets[i] + 1] = apids[i] & 0xFF
    return PacketBatch(data, offsets, header)


def test_telemetry_groups_kept_by_the_caller_stay_whole():
    rng = np.random.default_rng(8)
    kept = []
    for k in range(4):
        decoded, _ = telemetry.decode(_mixed_batch(rng, 200, 200 * k), None)
        snapshot = {a: (d.packets.data.tobytes(), d.packets.header.tobytes()) for a, d in decoded.items()}
        kept.append((decoded, snapshot))
    for decoded, snapshot in kept:
        assert {a: (d.packets.data.tobytes(), d.packets.header.tobytes())
                for a, d in decoded.items()} == snapshot


@pytest.mark.parametrize("hold", HOLDERS)
def test_a_mapped_owner_is_held_like_any_other(hold):
    # owners of a megabyte or more are mapped on their own: their views must still count
    shape = (2000, 1000)
    a = _reuse.empty("big", shape, np.uint8, mapped=True)
    assert isinstance(a.base.base, mmap.mmap)      # the owner is mapped on its own
    a[:] = 7
    held = _hold(a, hold)
    owner = _base(a)
    del a
    b = _reuse.empty("big", shape, np.uint8, mapped=True)
    b[:] = 9
    assert _base(b) != owner and (np.asarray(held) == 7).all()
    del held, b
    assert _base(_reuse.empty("big", shape, np.uint8, mapped=True)) == owner     # let go: reused


def test_a_mapped_owner_let_go_is_reused_and_writable():
    a = _reuse.empty("big", (3 << 20,), np.uint8, mapped=True)
    assert a.flags.writeable and a.flags.c_contiguous
    owner = _base(a)
    del a
    b = _reuse.empty("big", (3 << 20,), np.uint8, mapped=True)
    b[-1] = 1
    assert _base(b) == owner


def test_channel_batches_kept_by_the_caller_stay_whole():
    # sync's codeblocks and RS's frames are reused buffers (mapped: over a megabyte)
    from groundseg.coding.channel import ChannelConfig, ChannelDecoder, ChannelEncoder
    cfg = ChannelConfig(frame_length=1115, interleave=5)
    rng = np.random.default_rng(9)
    frames = rng.integers(0, 256, (4000, 1115), dtype=np.uint8)
    stream = ChannelEncoder(cfg).encode(frames)
    dec = ChannelDecoder(cfg)
    step = 1600 * 1279     # a push completes ~1,600 codeblocks: 2 MB of codeblocks
    kept = []
    for i in range(0, stream.size, step):
        batch = dec.push(stream[i:i + step])
        kept.append((batch, batch.frames.tobytes()))
    assert sum(len(b) for b, _ in kept) >= 3000
    for batch, snapshot in kept:
        assert batch.frames.tobytes() == snapshot
    got = np.concatenate([b.frames for b, _ in kept])
    assert np.array_equal(got, frames[:len(got)])



def test_owners_stay_on_the_heap_unless_asked_mapped():
    a = _reuse.empty("heap", (2 << 20,), np.uint8)
    assert a.base.flags.owndata          # numpy's own allocation
    b = _reuse.empty("small", (1000,), np.uint8, mapped=True)
    assert b.base.flags.owndata          # under a megabyte: never worth a map


def test_telemetry_reuses_its_mapped_groups_once_let_go():
    # sorted packets over a megabyte: mapped, and reused by a later batch once nobody
    # holds the earlier one (the archive holds up to about ten batches: keep covers them)
    rng = np.random.default_rng(11)
    batch = _mixed_batch(rng, 40000, 0)
    assert batch.data.nbytes > (1 << 20)
    decoded, _ = telemetry.decode(batch, None)
    first = next(iter(decoded.values())).packets.data
    assert isinstance(first.base.base, mmap.mmap)      # a view of the owner, on a map
    owner = _base(first.base)
    held = [telemetry.decode(_mixed_batch(rng, 40000, 40000 * (k + 1)), None)[0] for k in range(5)]
    assert all(_base(next(iter(d.values())).packets.data.base) != owner for d in held)
    del decoded, first, held
    again, _ = telemetry.decode(_mixed_batch(rng, 40000, 0), None)
    assert _base(next(iter(again.values())).packets.data.base) == owner
