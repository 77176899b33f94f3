"""The channel: frames -> Reed-Solomon, randomiser and ASM (the decoder's own encoder,
:class:`~groundseg.coding.channel.ChannelEncoder`) -> bit errors, byte errors, slips,
garbage, polarity, truncation; and the receiver model that says which codeblocks a
correct decoder delivers (level "bits"), or frames back to back (level "frames")."""
from __future__ import annotations

import numpy as np

from groundseg.coding import randomizer, reed_solomon, sync
from groundseg.coding.channel import ChannelConfig, ChannelDecoder, ChannelEncoder
from groundseg.sim.impairments import Impairments, apply_ber
from groundseg.sim.kernels import concat_bits
from groundseg.sim.plan import Plan
from groundseg.sim.truth import FRAME_CHECKS, count_checked


def near_marker(bits_bytes: np.ndarray, asm: int, asm_bits: int, max_err: int) -> np.ndarray:
    pos, _, _ = sync.find_asm(np.ascontiguousarray(bits_bytes, np.uint8), asm=asm,
                              max_bit_errors=max_err, asm_bits=asm_bits)
    return pos


def random_bits_free_of_marker(rng, nbits: int, after: np.ndarray, asm: int, asm_bits: int,
                                max_err: int, before: np.ndarray | None = None) -> np.ndarray:
    """``nbits`` random bits (packed, MSB first) in which, followed by the marker bits
    ``after`` (and preceded by ``before``), no marker-like window starts except the real one."""
    nbytes = (nbits + 7) // 8
    pre = np.zeros(0, np.uint8) if before is None else np.unpackbits(before)
    for _ in range(1000):
        b = rng.integers(0, 256, nbytes, dtype=np.uint8)
        bits = np.unpackbits(b)[:nbits]
        window = np.concatenate([pre, bits, np.unpackbits(after)])
        pos = near_marker(np.packbits(window), asm, asm_bits, max_err)
        pos = pos[pos + asm_bits <= window.size]
        if np.all(pos >= pre.size + nbits):
            return b
    raise RuntimeError("could not draw marker-free random bits")  # pragma: no cover


class SyncModel:
    """The receiver's marker synchroniser (``sync.FrameSync`` with the settings the channel
    decoder gives it) replayed at CADU granularity from the positions of the real markers."""

    def __init__(self, cfg: ChannelConfig):
        fs = ChannelDecoder(cfg).sync        # whatever settings the channel decoder uses
        self.flywheel = int(fs.flywheel)
        self.tol = int(fs.spacing_tolerance)
        self.verify = bool(fs.verify)
        self.strong = int(fs.strong_match)
        self.back = int(fs.resync_back)
        self.asm_bits = int(cfg.asm_bits)
        self.cadu = self.asm_bits + 8 * cfg.codeblock_length

    def run(self, pos: np.ndarray, errs: np.ndarray, inv: np.ndarray, nbits: int, max_err: int):
        """Codeblocks the receiver delivers, given the bit position of every real marker.

        Returns (delivered: list of (index of the real CADU, or -1 for a flywheel
        codeblock; inverted), truncated, lock_losses, bit positions of the flywheel
        codeblocks' markers). In lock it jumps from marker to
        marker, so the loop runs once per codeblock in plain Python: fine for the sizes
        whose truth is asked for (the loop is skipped when nothing disturbs the stream)."""
        out, fly = [], []
        truncated = lock_losses = 0
        n = len(pos)
        cadu, tol, asm_bits = self.cadu, self.tol, self.asm_bits
        pos = [int(x) for x in pos]

        def verified(j):
            if pos[j] + cadu + tol + asm_bits > nbits:
                return False
            return j + 1 < n and abs(pos[j + 1] - pos[j] - cadu) <= tol

        mode, p, misses, held, i = 0, 0, 0, False, 0
        while True:
            if mode == 1:
                while i < n and pos[i] < p - tol - self.back:
                    i += 1
                if i < n and abs(pos[i] - p) <= tol:
                    if pos[i] + cadu <= nbits:
                        out.append((i, bool(inv[i])))
                        held, misses, p = bool(inv[i]), 0, pos[i] + cadu
                        i += 1
                        continue
                    truncated += 1
                    break
                if p + cadu > nbits:
                    break
                j = i
                while j < n and pos[j] < p - self.back:
                    j += 1
                found = -1
                while j < n and pos[j] < p + cadu - tol:
                    if verified(j):
                        found = j
                        break
                    j += 1
                if found >= 0:
                    out.append((found, bool(inv[found])))
                    lock_losses += 1
                    held, misses, p = bool(inv[found]), 0, pos[found] + cadu
                    i = found + 1
                    continue
                misses += 1
                if misses > self.flywheel:
                    lock_losses += 1
                    mode, misses, p = 0, 0, max(p - tol, 0)
                    continue
                out.append((-1, held))
                fly.append(p)
                p += cadu
            else:
                while i < n and pos[i] < p:
                    i += 1
                if i >= n:
                    break
                q = pos[i]
                need = q + cadu + (tol + asm_bits if self.verify else 0)
                if need > nbits:
                    if q + cadu <= nbits:
                        if not self.verify or errs[i] <= self.strong:
                            out.append((i, bool(inv[i])))
                            held, mode, misses, p = bool(inv[i]), 1, 0, q + cadu
                            i += 1
                            continue
                    elif errs[i] <= (max_err if not self.verify else self.strong):
                        truncated += 1
                        break
                    p = q + 1
                    continue
                if self.verify and not (i + 1 < n and abs(pos[i + 1] - q - cadu) <= tol):
                    p = q + 1
                    continue
                out.append((i, bool(inv[i])))
                held, mode, misses, p = bool(inv[i]), 1, 0, q + cadu
                i += 1
        return out, truncated, lock_losses, fly


def frames_level(truth, rng, imp: Impairments, plan: Plan, cfg: ChannelConfig | None, tx, kept,
                 status) -> bytes:
    """Frames back to back (level "frames"): bit errors, lost frames, a truncated last record."""
    rx = tx[kept].copy()
    f = truth["frames"]
    rejects = truth["rejects"]
    errs = np.zeros(len(kept), bool)
    if imp.bit_error_rate:
        errs = apply_ber(rng, rx, imp.bit_error_rate)
    status[kept] = "delivered"
    check = errs.copy()
    if imp.truncate_last and len(kept):
        check[-1] = False                    # the cut record is refused as truncated, unread
    if check.any():
        status[kept[check]] = count_checked(truth, rx[check], plan, "frames with bit errors")
    capture = rx.reshape(-1)
    f["total"] = len(kept)
    f["clean"] = len(kept)
    if imp.truncate_last and len(kept):
        cut = int(rng.integers(1, plan.frame_length))
        capture = capture[:capture.size - cut]
        status[kept[-1]] = "truncated"
        rejects["truncated"] = 1
    f["crc_failed"] = int(rejects.get("crc", 0))
    f["rejected"] = int(sum(v for k, v in rejects.items() if k != "crc"))
    return capture.tobytes()


def bits_level(truth, rng, imp: Impairments, plan: Plan, cfg: ChannelConfig, tx, kept, status) -> bytes:
    """CADUs (level "bits"): the channel coding of ``cfg``, then every impairment, and what the
    receiver model says a correct decoder delivers."""
    enc = ChannelEncoder(cfg)
    blocks_tx = enc.codeblocks(tx[kept])
    errors = bool(imp.byte_errors_per_codeword or imp.bit_error_rate)
    blocks = blocks_tx.copy() if errors or imp.bit_slips else blocks_tx   # slips re-read some
    m, cb = blocks.shape
    asm, asm_bits = int(cfg.asm), int(cfg.asm_bits)
    asm_bytes = asm_bits // 8
    max_err = int(cfg.asm_max_bit_errors)
    parity = cfg.parity
    ilv = cfg.interleave if parity else 1
    # --- errors inside codeblocks: exact per codeword
    if imp.byte_errors_per_codeword:
        k = int(imp.byte_errors_per_codeword)
        per_cw = cb // ilv
        if k > per_cw:
            raise ValueError(f"byte_errors_per_codeword {k} exceeds the {per_cw} bytes of a codeword")
        hit = np.flatnonzero(rng.random(m) < imp.byte_error_fraction) if imp.byte_error_fraction < 1 \
            else np.arange(m)
        if len(hit):
            # k distinct positions per codeword: the first k of a random permutation
            keys = rng.random((len(hit), ilv, per_cw))
            pos_in_cw = np.argsort(keys, axis=2)[:, :, :k]
            cols = pos_in_cw * ilv + np.arange(ilv)[None, :, None]
            vals = rng.integers(1, 256, cols.shape, dtype=np.uint8)
            blocks[hit[:, None, None], cols] ^= vals
    asm_err_bits = np.zeros((m, asm_bits), bool)
    if imp.bit_error_rate:
        apply_ber(rng, blocks, imp.bit_error_rate)
        # markers see the same channel, but never more errors than the receiver tolerates
        e = rng.random((m, asm_bits)) < imp.bit_error_rate
        over = np.flatnonzero(e.sum(axis=1) > max_err)
        for r in over:  # rare: keep the first max_err errors of that marker
            idx = np.flatnonzero(e[r])
            e[r, idx[max_err:]] = False
        asm_err_bits = e
    # --- per codeword outcome
    if not (imp.byte_errors_per_codeword or imp.bit_error_rate):
        diff = np.zeros((m, ilv if parity else 1), np.int64)
    elif parity:
        diff = (blocks != blocks_tx).reshape(m, cb // ilv, ilv).sum(axis=1)
    else:
        diff = (blocks != blocks_tx).sum(axis=1, keepdims=True)
    # --- CADUs with polarity, then the bit stream with insertions
    cadus = np.empty((m, asm_bytes + cb), np.uint8)
    cadus[:, asm_bytes:] = blocks
    marker = np.frombuffer(asm.to_bytes(asm_bytes, "big"), np.uint8)
    cadus[:, :asm_bytes] = marker
    asm_errs = asm_err_bits.sum(axis=1).astype(np.int64)
    if asm_err_bits.any():
        cadus[:, :asm_bytes] ^= np.packbits(asm_err_bits, axis=1)
    inv = np.zeros(m, bool)
    if imp.polarity_flips and m > 1:
        flips = rng.choice(np.arange(1, m), min(int(imp.polarity_flips), m - 1), replace=False)
        toggles = np.zeros(m, np.int64)
        toggles[flips] = 1
        inv = (np.cumsum(toggles) % 2).astype(bool)
    if imp.inverted:
        inv = ~inv
    cadus[inv] ^= 0xFF
    row_bits = np.full(m, cadus.shape[1] * 8, np.int64)
    ins_bits = np.zeros(m, np.int64)
    ins_parts = [np.zeros(0, np.uint8)] * m
    # events go where the CADU after them can be verified (its successor exists), so the
    # receiver resynchronises at once instead of flywheeling near the end of the stream
    slots = np.arange(1, m - 1) if m > 2 + imp.bit_slips + imp.garbage_bytes else np.arange(1, m)
    n_events = int(imp.bit_slips) + int(imp.garbage_bytes)
    if n_events > len(slots):
        raise ValueError(f"{n_events} slips and garbage insertions need at least {n_events + 1} CADUs")
    event_slots = rng.choice(slots, n_events, replace=False) if n_events else np.zeros(0, np.int64)
    slip_slots, garbage_slots = event_slots[:imp.bit_slips], event_slots[imp.bit_slips:]
    deleted = {}
    for s in np.sort(slip_slots):
        k = int(rng.integers(1, imp.slip_bits + 1))
        if rng.random() < 0.5:
            row_bits[s - 1] -= k            # the previous CADU's last k bits never arrive
            deleted[int(s - 1)] = k
        else:
            ins_bits[s] = k
    for s in np.sort(garbage_slots):
        ins_bits[s] = 8 * int(rng.integers(1, imp.garbage_length + 1))
    if imp.bit_offset:
        ins_bits[0] = int(imp.bit_offset)
    # insertions must not resemble the marker (checked with the bits around them)
    for s in np.flatnonzero(ins_bits):
        before = cadus[s - 1, -8:] if s > 0 else None
        ins_parts[s] = random_bits_free_of_marker(rng, int(ins_bits[s]), cadus[s, :asm_bytes + 8],
                                                   asm, asm_bits, max_err, before)
    cut = 0
    if imp.truncate_last and m:
        cut = 8 * int(rng.integers(1, cb - 1))         # whole bytes; the marker and a byte survive
        row_bits[-1] -= cut
    total_bits = int(row_bits.sum() + ins_bits.sum())
    if not ins_bits.any() and not deleted and not cut:
        capture = cadus.reshape(-1)            # CADUs back to back: no bit-level assembly
        starts = np.arange(m, dtype=np.int64) * cadus.shape[1] * 8
    else:
        ins_off = np.zeros(m, np.int64)
        lens = np.array([p.size for p in ins_parts], np.int64)
        if m:
            np.cumsum(lens[:-1], out=ins_off[1:])
        ins = np.concatenate(ins_parts + [np.zeros(8, np.uint8)])
        out = np.zeros((total_bits + 7) // 8 + 8, np.uint8)
        starts = concat_bits(cadus, row_bits, ins, ins_off, ins_bits, out)
        capture = out[:(total_bits + 7) // 8]
    # --- deletions change the tail of the CADU before them: read it back as a receiver would
    for r, k in deleted.items():
        p = int(starts[r]) + asm_bits
        seen = read_bits(capture, p, cb * 8)
        if inv[r]:
            seen ^= 0xFF
        blocks[r] = seen
        d = (seen != blocks_tx[r])
        diff[r] = d.reshape(cb // ilv, ilv).sum(axis=0) if parity else d.sum()
    # --- what the receiver does
    nbits = capture.size * 8
    undisturbed = m > 2 and not deleted and not ins_bits[1:].any()
    if undisturbed:
        # search finds the first marker (nothing marker-like before it), its successor
        # verifies it, and lock then holds to the end: every CADU, the last maybe cut short
        last_ok = int(starts[-1]) + cadus.shape[1] * 8 <= nbits
        got_idx = np.arange(m - (0 if last_ok else 1), dtype=np.int64)
        got_inv = inv[got_idx]
        truncated, lock_losses, fly = (0 if last_ok else 1), 0, []
    else:
        got, truncated, lock_losses, fly = SyncModel(cfg).run(starts, asm_errs, inv, nbits, max_err)
        got_idx = np.array([i for i, _ in got], np.int64)
        got_inv = np.array([h for _, h in got], bool)
    f = truth["frames"]
    rejects = truth["rejects"]
    t = parity // 2
    truth["sync"]["inverted_codeblocks"] = int(got_inv.sum())
    flywheel = int((got_idx < 0).sum())
    real = got_idx[got_idx >= 0]
    f["total"] = len(got_idx) + truncated
    truth["sync"]["lock_losses"] = lock_losses
    if flywheel:
        held = got_inv[got_idx < 0]
        fly_blocks = np.stack([read_bits(capture, int(p) + asm_bits, cb * 8) ^ (0xFF if h else 0)
                               for p, h in zip(fly, held)])
        flywheel_truth(truth, cfg, plan, fly_blocks)
    status[kept[real]] = "delivered"
    if len(real):
        d = diff[real]
        if parity:
            bad = (d > t).any(axis=1)
            corr = np.where(bad, 0, d.sum(axis=1))
            f["uncorrectable"] += int(bad.sum())
            f["corrected"] += int(((corr > 0) & ~bad).sum())
            f["clean"] += int(((corr == 0) & ~bad).sum())
            truth["rs_symbols_corrected"] += int(corr[~bad].sum())
            status[kept[real[bad]]] = "rs_uncorrectable"
            errs = np.zeros(len(real), bool)
        else:
            f["clean"] += len(real)
            errs = d.sum(axis=1) > 0
        if errs.any():
            rx_frames = blocks[real]
            if cfg.randomized:
                rx_frames = randomizer.randomize(rx_frames)
            status[kept[real[errs]]] = count_checked(truth, np.ascontiguousarray(rx_frames[errs]), plan,
                                                      "frames with bit errors")
    if truncated:
        f["clean"] += truncated
        f["rejected"] += truncated
        rejects["truncated"] = truncated
    uncorr = f["uncorrectable"]
    if uncorr:
        rejects["rs_uncorrectable"] = uncorr
    f["crc_failed"] = int(rejects.get("crc", 0))
    f["rejected"] += int(sum(rejects.get(k, 0) for k in FRAME_CHECKS))
    return capture.tobytes()


def flywheel_truth(truth: dict, cfg: ChannelConfig, plan: Plan, blocks: np.ndarray) -> None:
    """Count codeblocks delivered blind at a predicted marker position (rows of ``blocks``,
    polarity already undone). Usually RS-uncorrectable; but a codeblock shifted by whole
    symbols of every codeword is a few symbols away from a cyclic shift of a codeword (and
    the randomiser sequence is itself a codeword for I = 1, 2, 4, 8), so RS may "correct"
    it. Bounded-distance decoding has one answer when one exists, so the project's RS
    decoder decides these few codeblocks; the frame checks then refuse what comes out."""
    f = truth["frames"]
    b = np.ascontiguousarray(blocks, np.uint8)
    if cfg.randomized and cfg.derandomize == "before_rs":
        b = randomizer.randomize(b)
    n = b.shape[0]
    if cfg.parity:
        frames, corr = reed_solomon.decode(b, interleave=cfg.interleave, parity=cfg.parity,
                                           dual_basis=cfg.dual_basis)
        bad = (np.asarray(corr) < 0).any(axis=1)
        sym = np.where(bad, 0, np.clip(corr, 0, None).sum(axis=1))
    else:
        frames, bad, sym = b, np.zeros(n, bool), np.zeros(n, np.int64)
    if cfg.randomized and cfg.derandomize == "after_rs":
        frames = randomizer.randomize(np.ascontiguousarray(frames))
    f["uncorrectable"] += int(bad.sum())
    f["corrected"] += int(((sym > 0) & ~bad).sum())
    f["clean"] += int(((sym == 0) & ~bad).sum())
    truth["rs_symbols_corrected"] += int(sym.sum())
    ok = ~bad
    if not ok.any():
        return
    count_checked(truth, np.ascontiguousarray(frames[ok]), plan,
                   "flywheel codeblocks that RS passed")


def read_bits(buf: np.ndarray, bit_pos: int, nbits: int) -> np.ndarray:
    """``nbits`` bits from ``bit_pos`` of packed ``buf``, repacked from bit 0 (zeros past the end)."""
    first = bit_pos // 8
    raw = buf[first: first + nbits // 8 + 2]
    bits = np.unpackbits(raw)[bit_pos % 8: bit_pos % 8 + nbits]
    if bits.size < nbits:
        bits = np.concatenate([bits, np.zeros(nbits - bits.size, np.uint8)])
    return np.packbits(bits)
