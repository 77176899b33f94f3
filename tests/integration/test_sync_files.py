"""ASM frame synchroniser (CCSDS 131.0-B-4 section 9) against a bit-by-bit reference - the tests that read or write files (tests/unit opens none)."""
from __future__ import annotations

import numpy as np
import pytest
from groundseg.coding.randomizer import randomize
from groundseg.coding.sync import (FrameSync, find_asm)
from tests.unit.test_sync import (_snpp_bits)  # noqa: F401


@pytest.mark.real
@pytest.mark.parametrize("shift", range(8))
@pytest.mark.parametrize("invert", [False, True])
def test_snpp_all_cadus(captures, shift, invert):
    bits = _snpp_bits(captures)
    shifted = np.concatenate([np.ones(shift, np.uint8), bits]) ^ np.uint8(invert)
    fs = FrameSync(1020)
    data = np.packbits(shifted)
    out = [fs.push(data[:20000]), fs.push(data[20000:]), fs.flush()]
    cbs = np.concatenate([b.codeblocks for b in out])
    meta = np.concatenate([b.meta for b in out])
    assert len(meta) == 65
    assert meta["bit_position"].tolist() == [shift + 8192 * i for i in range(65)]
    assert (meta["inverted"] == invert).all() and (meta["asm_bit_errors"] == 0).all()
    assert fs.stats["lock_losses"] == 0 and fs.stats["inverted_codeblocks"] == (65 if invert else 0)
    raw = np.packbits(bits).reshape(65, 1024)
    assert np.array_equal(cbs, raw[:, 4:])
    # AOS primary header after de-randomising: version field 1, SCID 157, VCID 16
    hdr = randomize(cbs)[:, :2].astype(np.uint16)
    word = (hdr[:, 0] << 8) | hdr[:, 1]
    assert ((word >> 14) == 1).all()
    assert (((word >> 6) & 0xFF) == 157).all()
    assert ((word & 0x3F) == 16).all()

@pytest.mark.real
@pytest.mark.slow        # plain-Python find_asm over 0.5 Mbit takes seconds
def test_snpp_find_asm(captures):
    bits = _snpp_bits(captures)
    pos, inv, err = find_asm(np.packbits(bits), max_bit_errors=0)
    assert pos.tolist() == [8192 * i for i in range(65)]
    assert not inv.any()
