"""ASM frame synchroniser (CCSDS 131.0-B-4 section 9) against a bit-by-bit reference.

Streams are built bit by bit with numpy (unpackbits/packbits), so the truth
(where each CADU starts, its polarity, its codeblock) is known exactly.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from groundseg.coding.frame_batch import SYNC_FLYWHEEL, SYNC_LOCKED, SYNC_SEARCH
from groundseg.coding.sync import (CCSDS_ASM, SYNC_META_DTYPE, FrameSync, SyncBatch, attach_asm,
                                   find_asm)

ASM_BITS = np.unpackbits(np.frombuffer(CCSDS_ASM.to_bytes(4, "big"), np.uint8))
L = 40                      # small codeblocks keep the NUMBA_DISABLE_JIT run quick
CADU_BITS = 32 + 8 * L


# ------------------------------------------------------------ references

def reference_find(bits: np.ndarray, max_err: int):
    """Bit-by-bit correlation: every position whose 32 bits are within max_err
    of the ASM (or of its complement)."""
    positions, inverted, errors = [], [], []
    for p in range(len(bits) - 31):
        d = int(np.count_nonzero(bits[p:p + 32] != ASM_BITS))
        if d <= max_err or 32 - d <= max_err:
            positions.append(p)
            inverted.append(32 - d < d)
            errors.append(min(d, 32 - d))
    return positions, inverted, errors


def reference_codeblock(bits: np.ndarray, p: int, inverted: bool, length: int = L) -> np.ndarray:
    body = bits[p + 32:p + 32 + 8 * length]
    return np.packbits(body ^ 1 if inverted else body)


class Stream:
    """Bits appended piece by piece, with the truth of every CADU."""

    def __init__(self, seed: int = 0, length: int = L):
        self.rng = np.random.default_rng(seed)
        self.length = length
        self.parts: list[np.ndarray] = []
        self.nbits = 0
        self.cadus: list[tuple[int, bool, np.ndarray]] = []   # (bit position, inverted, codeblock)

    def bits_(self, bits: np.ndarray) -> "Stream":
        self.parts.append(np.asarray(bits, np.uint8))
        self.nbits += len(bits)
        return self

    def garbage(self, nbits: int) -> "Stream":
        return self.bits_(self.rng.integers(0, 2, nbits, dtype=np.uint8))

    def cadu(self, inverted: bool = False, marker_errors: tuple = (), codeblock=None) -> "Stream":
        cb = self.rng.integers(0, 256, self.length, dtype=np.uint8) if codeblock is None else codeblock
        bits = np.unpackbits(attach_asm(cb))
        for i in marker_errors:
            bits[i] ^= 1
        if inverted:
            bits ^= 1
        self.cadus.append((self.nbits, inverted, cb))
        return self.bits_(bits)

    def cadus_(self, n: int, **kw) -> "Stream":
        for _ in range(n):
            self.cadu(**kw)
        return self

    @property
    def bits(self) -> np.ndarray:
        return np.concatenate(self.parts) if self.parts else np.zeros(0, np.uint8)

    @property
    def bytes(self) -> np.ndarray:
        return np.packbits(self.bits)     # last byte padded with zero bits


def run(data: np.ndarray, length: int = L, splits=None, **kw):
    """Push ``data`` through a FrameSync in pieces, then flush; check invariants."""
    fs = FrameSync(length, **kw)
    cuts = [0] + sorted(splits or []) + [len(data)]
    batches = [fs.push(data[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
    batches.append(fs.flush())
    for b in batches:
        assert isinstance(b, SyncBatch)
        assert b.codeblocks.dtype == np.uint8 and b.codeblocks.shape[1:] == (length,)
        assert b.meta.dtype == SYNC_META_DTYPE and len(b.meta) == len(b.codeblocks)
    cbs = np.concatenate([b.codeblocks for b in batches])
    meta = np.concatenate([b.meta for b in batches])
    # Never the same codeblock twice, never out of order.
    assert np.all(np.diff(meta["bit_position"]) > 0)
    assert fs.stats["codeblocks"] == len(meta)
    assert fs.stats["bits_in"] == 8 * len(data)
    assert fs.stats["inverted_codeblocks"] == int(meta["inverted"].sum())
    assert fs.stats["flywheel_codeblocks"] == int((meta["sync_state"] == SYNC_FLYWHEEL).sum())
    return cbs, meta, fs.stats


def assert_all_found(stream: Stream, cbs, meta, skip=()):
    """Every CADU of the stream delivered at its position with its polarity and codeblock."""
    want = [c for i, c in enumerate(stream.cadus) if i not in skip]
    found = {int(p): i for i, p in enumerate(meta["bit_position"])}
    for pos, inv, cb in want:
        assert pos in found, f"CADU at bit {pos} not found (found {sorted(found)})"
        i = found[pos]
        assert bool(meta["inverted"][i]) == inv
        assert np.array_equal(cbs[i], cb)


# ------------------------------------------------------------ encoder and find_asm

def test_attach_asm_layout():
    cb = np.arange(2 * L, dtype=np.uint8).reshape(2, L)
    out = attach_asm(cb)
    assert out.dtype == np.uint8 and out.shape == (2 * (L + 4),)
    assert out[:4].tobytes() == bytes.fromhex("1ACFFC1D")
    assert np.array_equal(out[4:L + 4], cb[0])
    assert out[L + 4:L + 8].tobytes() == bytes.fromhex("1ACFFC1D")
    assert np.array_equal(attach_asm(cb[0]), out[:L + 4])
    assert attach_asm(cb, asm=0x034776C7272895B0, asm_bits=64)[:8].tobytes() == bytes.fromhex("034776C7272895B0")


def test_attach_asm_errors():
    with pytest.raises(ValueError, match="multiple of 8"):
        attach_asm(np.zeros((1, 4), np.uint8), asm=0x1ACFF, asm_bits=20)
    with pytest.raises(ValueError, match="uint8"):
        attach_asm(np.zeros((1, 4), np.int32))
    with pytest.raises(ValueError, match="fit"):
        attach_asm(np.zeros((1, 4), np.uint8), asm=0x1FFFF, asm_bits=16)


@settings(deadline=None, max_examples=25)
@given(st.integers(0, 2**32 - 1), st.integers(0, 4), st.integers(0, 4))
def test_find_asm_matches_reference(seed, max_err, n_markers):
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, 1500, dtype=np.uint8)
    for _ in range(n_markers):
        p = int(rng.integers(0, len(bits) - 32))
        m = ASM_BITS.copy()
        m[rng.choice(32, int(rng.integers(0, 6)), replace=False)] ^= 1
        bits[p:p + 32] = m ^ int(rng.integers(0, 2))
    pos, inv, err = find_asm(np.packbits(bits), max_bit_errors=max_err)
    # packbits pads with zero bits: drop matches that need them
    keep = pos + 32 <= len(bits)
    ref = reference_find(bits, max_err)
    assert pos[keep].tolist() == ref[0]
    assert inv[keep].tolist() == ref[1]
    assert err[keep].tolist() == ref[2]
    assert pos.dtype == np.int64 and inv.dtype == np.bool_ and err.dtype == np.int8


def test_find_asm_spacing_and_errors():
    s = Stream(1).garbage(5).cadus_(4).cadu(inverted=True).cadus_(2)
    pos, inv, err = find_asm(s.bytes, max_bit_errors=0)
    assert pos.tolist() == [c[0] for c in s.cadus]
    assert inv.tolist() == [c[1] for c in s.cadus]
    assert err.tolist() == [0] * 7
    assert np.all(np.diff(pos) == CADU_BITS)
    with pytest.raises(ValueError, match="max_bit_errors"):
        find_asm(s.bytes, max_bit_errors=16)
    with pytest.raises(ValueError, match="uint8"):
        find_asm(np.zeros(4, np.int16))
    assert find_asm(b"")[0].size == 0


# ------------------------------------------------------------ alignment, polarity

@pytest.mark.parametrize("offset", list(range(8)) + [13, 100, 1001])
def test_unaligned_stream(offset):
    s = Stream(offset).garbage(offset).cadus_(6)
    cbs, meta, stats = run(s.bytes)
    assert_all_found(s, cbs, meta)
    assert len(meta) == 6
    assert meta["bit_position"].tolist() == [offset + i * CADU_BITS for i in range(6)]
    assert meta["sync_state"].tolist() == [SYNC_SEARCH] + [SYNC_LOCKED] * 5
    assert meta["asm_bit_errors"].tolist() == [0] * 6
    assert stats["lock_losses"] == 0 and stats["locks"] == 1
    assert stats["bits_discarded"] == stats["bits_in"] - 6 * CADU_BITS


def test_positions_match_reference_sync():
    s = Stream(7).garbage(77).cadus_(3).cadu(inverted=True).cadus_(2, inverted=True)
    bits = s.bits
    ref_pos, ref_inv, _ = reference_find(bits, 0)
    cbs, meta, _ = run(s.bytes)
    assert meta["bit_position"].tolist() == ref_pos
    assert meta["inverted"].tolist() == ref_inv
    for i, (p, inv) in enumerate(zip(ref_pos, ref_inv)):
        assert np.array_equal(cbs[i], reference_codeblock(bits, p, inv))


@pytest.mark.parametrize("offset", [0, 5])
def test_inverted_stream(offset):
    s = Stream(2).garbage(offset).cadus_(5, inverted=True)
    cbs, meta, stats = run(s.bytes)
    assert_all_found(s, cbs, meta)
    assert meta["inverted"].all() and stats["inverted_codeblocks"] == 5


def test_polarity_flips_mid_stream():
    s = Stream(3).garbage(3).cadus_(3).cadus_(3, inverted=True).cadus_(2)
    cbs, meta, stats = run(s.bytes)
    assert_all_found(s, cbs, meta)
    assert meta["inverted"].tolist() == [False] * 3 + [True] * 3 + [False] * 2
    assert stats["inverted_codeblocks"] == 3
    assert stats["lock_losses"] == 0


# ------------------------------------------------------------ chunk boundaries

@pytest.mark.parametrize("offset", [0, 3, 13])
def test_every_byte_split(offset):
    s = Stream(4).garbage(offset).cadus_(4)
    data = s.bytes
    ref_cbs, ref_meta, _ = run(data)
    assert len(ref_meta) == 4
    for cut in range(0, 2 * (L + 4) + 3):
        cbs, meta, _ = run(data, splits=[cut])
        assert np.array_equal(meta, ref_meta), cut
        assert np.array_equal(cbs, ref_cbs), cut


def test_byte_by_byte_pushes():
    s = Stream(5).garbage(11).cadus_(3).cadus_(2, inverted=True)
    data = s.bytes
    ref_cbs, ref_meta, _ = run(data)
    cbs, meta, stats = run(data, splits=list(range(1, len(data))))
    assert np.array_equal(meta, ref_meta) and np.array_equal(cbs, ref_cbs)
    assert_all_found(s, cbs, meta)


@settings(deadline=None, max_examples=30)
@given(st.integers(0, 2**32 - 1), st.integers(0, 40), st.lists(st.integers(0, 400), max_size=6))
def test_random_splits_equal_one_shot(seed, offset, splits):
    s = Stream(seed).garbage(offset).cadus_(3).garbage(int(seed % 50)).cadus_(3)
    data = s.bytes
    ref_cbs, ref_meta, ref_stats = run(data)
    cbs, meta, stats = run(data, splits=[c % (len(data) + 1) for c in splits])
    assert np.array_equal(meta, ref_meta) and np.array_equal(cbs, ref_cbs)
    assert stats == ref_stats


# ------------------------------------------------------------ marker errors, flywheel

@pytest.mark.parametrize("nerr", [0, 1, 2, 3, 4])
def test_marker_errors_in_lock_within_max(nerr):
    rng = np.random.default_rng(nerr)
    s = Stream(6).garbage(2).cadus_(2)
    s.cadu(marker_errors=tuple(rng.choice(32, nerr, replace=False))).cadus_(2)
    cbs, meta, stats = run(s.bytes)
    assert_all_found(s, cbs, meta)
    assert meta["asm_bit_errors"].tolist() == [0, 0, nerr, 0, 0]
    assert meta["sync_state"].tolist() == [SYNC_SEARCH] + [SYNC_LOCKED] * 4


def test_marker_errors_beyond_max_in_lock_flywheel():
    s = Stream(7).garbage(5).cadus_(2).cadu(marker_errors=(0, 5, 9, 20, 31)).cadus_(2)
    cbs, meta, stats = run(s.bytes)
    assert_all_found(s, cbs, meta)
    assert meta["sync_state"].tolist() == [SYNC_SEARCH, SYNC_LOCKED, SYNC_FLYWHEEL, SYNC_LOCKED, SYNC_LOCKED]
    assert meta["asm_bit_errors"][2] == 5
    assert stats["lock_losses"] == 0 and stats["flywheel_codeblocks"] == 1


def test_flywheel_keeps_polarity():
    s = Stream(8).cadus_(2, inverted=True).cadu(inverted=True, marker_errors=tuple(range(10))).cadu(inverted=True)
    cbs, meta, stats = run(s.bytes)
    assert_all_found(s, cbs, meta)
    assert meta["sync_state"][2] == SYNC_FLYWHEEL and meta["inverted"].all()


def test_marker_errors_on_an_inverted_stream():
    s = Stream(25).garbage(3).cadus_(2, inverted=True).cadu(inverted=True, marker_errors=(4, 17, 30))
    s.cadus_(2, inverted=True)
    cbs, meta, _ = run(s.bytes)
    assert_all_found(s, cbs, meta)
    assert meta["asm_bit_errors"].tolist() == [0, 0, 3, 0, 0]
    assert meta["inverted"].all() and (meta["sync_state"][1:] == SYNC_LOCKED).all()


def test_zero_spacing_tolerance():
    s = Stream(26).garbage(2).cadus_(3).garbage(1).cadus_(3)
    cbs, meta, stats = run(s.bytes, spacing_tolerance=0)
    assert_all_found(s, cbs, meta)            # the 1-bit slip is recovered by resync
    assert stats["lock_losses"] == 1
    cbs, meta, stats = run(s.bytes, spacing_tolerance=1)
    assert_all_found(s, cbs, meta)
    assert stats["lock_losses"] == 0


@pytest.mark.parametrize("nerr,found", [(0, True), (4, True), (5, False), (8, False)])
def test_marker_errors_in_search(nerr, found):
    s = Stream(9).garbage(3).cadu(marker_errors=tuple(range(0, 2 * nerr, 2))).cadus_(3)
    cbs, meta, stats = run(s.bytes)
    assert_all_found(s, cbs, meta, skip=() if found else (0,))
    assert len(meta) == (4 if found else 3)
    assert meta["sync_state"][0] == SYNC_SEARCH


@pytest.mark.parametrize("max_err", [0, 2])
def test_max_bit_errors_parameter(max_err):
    s = Stream(10).cadus_(2).cadu(marker_errors=(1, 2)).cadus_(2)
    cbs, meta, _ = run(s.bytes, max_bit_errors=max_err)
    assert_all_found(s, cbs, meta)
    assert meta["sync_state"][2] == (SYNC_LOCKED if max_err >= 2 else SYNC_FLYWHEEL)


def test_flywheel_limit_then_lock_lost():
    bad = tuple(range(0, 32, 3))      # 11 errors: no marker
    s = Stream(11).garbage(6).cadus_(2)
    for _ in range(4):
        s.cadu(marker_errors=bad)
    s.cadus_(4)
    cbs, meta, stats = run(s.bytes, flywheel=3)
    # indices 2, 3, 4 flywheeled; the 4th miss (index 5) loses lock; 6.. found again
    assert_all_found(s, cbs, meta, skip=(5,))
    assert meta["sync_state"].tolist() == ([SYNC_SEARCH, SYNC_LOCKED] + [SYNC_FLYWHEEL] * 3
                                           + [SYNC_SEARCH] + [SYNC_LOCKED] * 3)
    assert stats["lock_losses"] == 1 and stats["locks"] == 2


@pytest.mark.parametrize("flywheel", [0, 1, 5])
def test_flywheel_parameter(flywheel):
    bad = tuple(range(0, 32, 3))
    s = Stream(12).cadus_(2)
    for _ in range(2):
        s.cadu(marker_errors=bad)
    s.cadus_(3)
    cbs, meta, stats = run(s.bytes, flywheel=flywheel)
    n_fly = min(flywheel, 2)
    assert (meta["sync_state"] == SYNC_FLYWHEEL).sum() == n_fly
    assert stats["lock_losses"] == (1 if flywheel < 2 else 0)
    assert_all_found(s, cbs, meta, skip=tuple(range(2 + n_fly, 4)))


# ------------------------------------------------------------ slips and garbage

@pytest.mark.parametrize("slip", [-3, -2, -1, 1, 2, 3])
def test_bit_slips_within_tolerance(slip):
    s = Stream(13 + slip).garbage(4).cadus_(3)
    damaged = ()
    if slip > 0:
        s.garbage(slip)                       # inserted bits
    else:
        s.parts[-1] = s.parts[-1][:slip]      # deleted bits: the last codeblock loses its tail
        s.nbits += slip
        damaged = (2,)
    s.cadus_(3)
    cbs, meta, stats = run(s.bytes, spacing_tolerance=3)
    assert_all_found(s, cbs, meta, skip=damaged)
    assert len(meta) == 6
    assert (meta["sync_state"][1:] == SYNC_LOCKED).all()
    assert stats["lock_losses"] == 0


@pytest.mark.parametrize("slip", [-3, 2, 3])
def test_bit_slip_beyond_tolerance_resyncs(slip):
    s = Stream(20 + slip).garbage(4).cadus_(3)
    damaged = ()
    if slip > 0:
        s.garbage(slip)
    else:
        s.parts[-1] = s.parts[-1][:slip]
        s.nbits += slip
        damaged = (2,)
    s.cadus_(3)
    cbs, meta, stats = run(s.bytes, spacing_tolerance=1)
    assert_all_found(s, cbs, meta, skip=damaged)
    assert len(meta) == 6
    assert meta["sync_state"][3] == SYNC_SEARCH
    assert stats["lock_losses"] == 1


def test_spacing_varies_by_one_bit():
    # TRISAT-like: markers 2072 or 2073 bits apart
    s = Stream(14, length=255).cadu()
    for i in range(8):
        if i % 3 == 1:
            s.garbage(1)
        s.cadu()
    cbs, meta, stats = run(s.bytes, length=255)
    assert_all_found(s, cbs, meta)
    assert set(np.diff(meta["bit_position"])) == {2072, 2073}
    assert stats["lock_losses"] == 0 and (meta["sync_state"][1:] == SYNC_LOCKED).all()


def _clean_garbage_stream(seed: int, layout) -> Stream:
    """Groups of CADUs separated by garbage with no near-marker of its own."""
    while True:
        s = Stream(seed)
        for kind, n in layout:
            s.garbage(n) if kind == "g" else s.cadus_(n, inverted=bool(seed % 2))
        ref, _, _ = reference_find(s.bits, 4)
        if ref == [c[0] for c in s.cadus]:
            return s
        seed += 1000


@pytest.mark.parametrize("seed", range(4))
def test_garbage_between_cadus(seed):
    layout = [("g", 37), ("c", 3), ("g", 101), ("c", 2), ("g", 3 * CADU_BITS + 55), ("c", 3),
              ("g", 9), ("c", 2), ("g", 8 * CADU_BITS), ("c", 2)]
    s = _clean_garbage_stream(seed, layout)
    cbs, meta, stats = run(s.bytes)
    assert_all_found(s, cbs, meta)
    truth = {c[0] for c in s.cadus}
    real = {int(p) for p, state in zip(meta["bit_position"], meta["sync_state"]) if state != SYNC_FLYWHEEL}
    assert real == truth
    # flywheel codeblocks only where garbage is at least a CADU long
    assert 0 < stats["flywheel_codeblocks"] <= 6
    assert stats["lock_losses"] >= 4


# ------------------------------------------------------------ no false locks, no hangs

@pytest.mark.parametrize("fill", [0x00, 0xFF, 0x55, 0xAA])
@pytest.mark.parametrize("verify", [True, False])
def test_constant_input_never_locks(fill, verify):
    data = np.full(3000, fill, np.uint8)
    cbs, meta, stats = run(data, max_bit_errors=4, verify=verify, splits=[1000, 1001, 2500])
    assert len(meta) == 0 and stats["locks"] == 0 and stats["truncated"] == 0
    assert stats["bits_discarded"] == 3000 * 8


def test_empty_input():
    fs = FrameSync(L)
    assert len(fs.push(np.zeros(0, np.uint8))) == 0
    assert len(fs.push(b"")) == 0
    out = fs.flush()
    assert len(out) == 0 and out.codeblocks.shape == (0, L)
    assert fs.stats["bits_in"] == 0


def test_noise_no_verified_lock():
    data = np.random.default_rng(15).integers(0, 256, 4000, dtype=np.uint8)
    cbs, meta, stats = run(data, splits=[1234])
    assert len(meta) == 0
    assert stats["bits_discarded"] == 4000 * 8


# ------------------------------------------------------------ end of stream

def test_truncated_last_cadu_counted_not_emitted():
    s = Stream(16).garbage(3).cadus_(4)
    data = s.bytes[:-(L // 2)]
    cbs, meta, stats = run(data)
    assert len(meta) == 3 and stats["truncated"] == 1
    assert_all_found(s, cbs, meta, skip=(3,))


def test_truncated_marker_is_just_discarded():
    s = Stream(17).cadus_(3)
    data = np.concatenate([s.bytes, attach_asm(np.zeros(1, np.uint8))[:2]])
    cbs, meta, stats = run(data)
    assert len(meta) == 3 and stats["truncated"] == 0


def test_single_cadu_capture():
    s = Stream(18).garbage(5).cadu()
    cbs, meta, stats = run(s.bytes)                         # strong_match=0 by default
    assert_all_found(s, cbs, meta)
    assert meta["sync_state"].tolist() == [SYNC_SEARCH]
    cbs, meta, _ = run(s.bytes, strong_match=-1)
    assert len(meta) == 0
    cbs, meta, _ = run(s.bytes, verify=False, max_bit_errors=0)
    assert_all_found(s, cbs, meta)


def test_single_cadu_with_marker_errors_needs_verify_off():
    s = Stream(19).cadu(marker_errors=(3,))
    assert len(run(s.bytes)[1]) == 0
    cbs, meta, _ = run(s.bytes, verify=False)
    assert_all_found(s, cbs, meta)
    assert meta["asm_bit_errors"].tolist() == [1]


def test_unverified_candidate_mid_stream_rejected():
    # A lone CADU between garbage cannot be checked; verify=False accepts it
    s = _clean_garbage_stream(21, [("g", 50), ("c", 1), ("g", 2 * CADU_BITS + 7), ("c", 2)])
    cbs, meta, _ = run(s.bytes)
    assert_all_found(s, cbs, meta, skip=(0,))
    assert s.cadus[0][0] not in meta["bit_position"]
    cbs, meta, _ = run(s.bytes, verify=False)
    assert_all_found(s, cbs, meta)


def test_stats_and_reset():
    s = Stream(22).garbage(9).cadus_(3)
    fs = FrameSync(L)
    first = fs.push(s.bytes)
    rest = fs.flush()
    assert len(first) + len(rest) == 3
    st1 = fs.stats
    assert st1["bits_in"] == 8 * len(s.bytes)
    assert st1["bits_discarded"] == st1["bits_in"] - 3 * CADU_BITS
    fs.reset(clear_stats=False)
    again = [fs.push(s.bytes), fs.flush()]
    meta = np.concatenate([b.meta for b in again])
    assert meta["bit_position"].tolist() == [9, 9 + CADU_BITS, 9 + 2 * CADU_BITS]   # numbering restarts
    assert fs.stats["codeblocks"] == 6 and fs.stats["bits_in"] == 2 * st1["bits_in"]
    fs.reset(clear_stats=True)
    assert fs.stats["codeblocks"] == 0 and not fs.locked


def test_positions_count_across_pushes():
    s = Stream(23).garbage(1).cadus_(5)
    data = s.bytes
    fs = FrameSync(L)
    out = [fs.push(data[:30]), fs.push(data[30:130]), fs.push(data[130:]), fs.flush()]
    meta = np.concatenate([b.meta for b in out])
    assert meta["bit_position"].tolist() == [c[0] for c in s.cadus]


def test_push_after_flush_continues_numbering():
    s = Stream(27).cadus_(3)
    fs = FrameSync(L)
    first = [fs.push(s.bytes), fs.flush()]
    second = [fs.push(s.bytes), fs.flush()]
    m1 = np.concatenate([b.meta for b in first])
    m2 = np.concatenate([b.meta for b in second])
    assert m1["bit_position"].tolist() == [0, CADU_BITS, 2 * CADU_BITS]
    assert m2["bit_position"].tolist() == [8 * len(s.bytes) + c[0] for c in s.cadus]


def test_64_bit_marker():
    asm64 = 0x034776C7272895B0
    rng = np.random.default_rng(24)
    cb = rng.integers(0, 256, (4, 30), dtype=np.uint8)
    bits = np.concatenate([np.zeros(5, np.uint8), np.unpackbits(attach_asm(cb, asm=asm64, asm_bits=64))])
    fs = FrameSync(30, asm=asm64, asm_bits=64)
    out = [fs.push(np.packbits(bits)), fs.flush()]
    got = np.concatenate([b.codeblocks for b in out])
    meta = np.concatenate([b.meta for b in out])
    assert np.array_equal(got, cb)
    assert meta["bit_position"].tolist() == [5 + i * (64 + 240) for i in range(4)]


def test_bad_parameters_raise():
    with pytest.raises(ValueError, match="codeblock_length"):
        FrameSync(0)
    with pytest.raises(ValueError, match="max_bit_errors"):
        FrameSync(L, max_bit_errors=16)
    with pytest.raises(ValueError, match="asm_bits"):
        FrameSync(L, asm_bits=4)
    with pytest.raises(ValueError, match="spacing_tolerance"):
        FrameSync(L, spacing_tolerance=-1)
    with pytest.raises(ValueError, match="flywheel"):
        FrameSync(L, flywheel=-1)
    with pytest.raises(ValueError, match="uint8"):
        FrameSync(L).push(np.zeros(10, np.int32))


# ------------------------------------------------------------ real capture

SNPP = "snpp-cadu/snpp_synchronized_cadus.dat"


def _snpp_bits(captures):
    path = captures / SNPP
    if not path.exists():
        pytest.skip(f"{path} absent")
    return np.unpackbits(np.fromfile(path, np.uint8))
