"""CRC-16 FECF (CCSDS 132.0-B / 732.0-B): kernel against a bitwise reference and binascii - the tests that read or write files (tests/unit opens none)."""
from __future__ import annotations

import numpy as np
import pytest
from groundseg.coding.crc import crc16, fecf_ok
from tests.reference.crc import crc16_reference


@pytest.mark.real
def test_trisat_frames_carry_valid_fecf(captures):
    # 4 TM frames of 223 bytes decoded by gr-satellites; PROVENANCE.md lists their FECFs.
    path = captures / "trisat-fsk" / "trisat_frames.gr-satellites.bin"
    if not path.exists():
        pytest.skip(f"{path} absent")
    frames = np.fromfile(path, np.uint8).reshape(4, 223)
    assert fecf_ok(frames).tolist() == [True] * 4
    assert crc16(frames[:, :-2]).tolist() == [0xF26E, 0xD2CD, 0x5F5E, 0x1C6E]
    assert [crc16_reference(r[:-2].tobytes()) for r in frames] == [0xF26E, 0xD2CD, 0x5F5E, 0x1C6E]
    corrupted = frames.copy()
    corrupted[2, 100] ^= 0x01
    assert fecf_ok(corrupted).tolist() == [True, True, False, True]
