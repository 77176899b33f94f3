"""Reed-Solomon (CCSDS 131.0-B-4 section 4) on real downlinks; see each capture's PROVENANCE.md."""
from __future__ import annotations

import numpy as np
import pytest

from groundseg.coding import reed_solomon as rs
from tests.reference.reed_solomon import pn_sequence  # the slow reference LFSR, not the kernel under test

pytestmark = pytest.mark.real




def _snpp_codeblocks(captures):
    path = captures / "snpp-cadu" / "snpp_synchronized_cadus.dat"
    if not path.is_file():
        pytest.skip(f"{path} absent")
    cadus = np.fromfile(path, np.uint8).reshape(-1, 1024)
    assert (cadus[:, :4] == np.frombuffer(bytes.fromhex("1ACFFC1D"), np.uint8)).all()
    return cadus[:, 4:]


def test_snpp_cadus_decode_clean_with_aos_headers(captures):
    blocks = _snpp_codeblocks(captures)
    assert blocks.shape == (65, 1020)
    derandomised = blocks ^ pn_sequence(1020)
    frames, corr = rs.decode(derandomised, interleave=4, parity=32, dual_basis=True)
    assert corr.shape == (65, 4)
    assert (corr == 0).all(), "all 260 codewords are clean (PROVENANCE.md)"
    assert frames.shape == (65, 892)
    version = frames[:, 0] >> 6
    scid = ((frames[:, 0].astype(np.uint16) & 0x3F) << 2) | (frames[:, 1] >> 6)
    vcid = frames[:, 1] & 0x3F
    assert (version == 1).all() and (scid == 157).all() and (vcid == 16).all()
    # re-encoding the frames gives back the received codeblocks byte for byte
    assert np.array_equal(rs.encode(frames, 4), derandomised)


def test_snpp_still_randomised_also_passes_rs_but_headers_are_wrong(captures):
    # The PN sequence is itself a codeblock for I=4, so RS cannot tell whether
    # de-randomisation happened; only the headers can (PROVENANCE.md).
    blocks = _snpp_codeblocks(captures)
    frames, corr = rs.decode(blocks, interleave=4)
    assert (corr == 0).all()
    version = frames[:, 0] >> 6
    scid = ((frames[:, 0].astype(np.uint16) & 0x3F) << 2) | (frames[:, 1] >> 6)
    vcid = frames[:, 1] & 0x3F
    assert (version == 2).all() and (scid == 96).all() and (vcid == 24).all()


def test_snpp_conventional_basis_does_not_fit(captures):
    blocks = _snpp_codeblocks(captures) ^ pn_sequence(1020)
    _, corr = rs.decode(blocks, interleave=4, dual_basis=False)
    assert (corr != 0).all()


def test_snpp_corrupted_codeblocks_are_repaired(captures):
    blocks = _snpp_codeblocks(captures) ^ pn_sequence(1020)
    clean, _ = rs.decode(blocks, 4)
    rng = np.random.default_rng(157)
    hit = blocks.copy()
    for r in range(hit.shape[0]):
        for c in range(4):
            pos = rng.choice(255, 16, replace=False) * 4 + c
            hit[r, pos] ^= rng.integers(1, 256, 16, dtype=np.uint8)
    frames, corr = rs.decode(hit, 4)
    assert (corr == 16).all()
    assert np.array_equal(frames, clean)


def test_queqiao_nonstandard_parity_is_refused(captures):
    path = captures / "queqiao" / "queqiao_rs_frames.u8"
    if not path.is_file():
        pytest.skip(f"{path} absent")
    records = np.fromfile(path, np.uint8).reshape(-1, 252)
    assert records.shape[0] == 3282
    assert rs.codeword_layout(252).virtual_fill == 3
    data, corr = rs.decode(records, interleave=1, parity=32, dual_basis=True)
    # PROVENANCE.md: a standard decoder only "succeeds" by correcting symbols in
    # the virtual fill, which must count as failure.
    assert (corr == -1).all()
    assert np.array_equal(data, records[:, :220])
    # Daniel Estevez's model of the encoder: [unknown byte, CF FC 1D, record[:251]]
    # unshortened; with the unknown byte zeroed most decode with 1 correction.
    model = np.concatenate([np.zeros((records.shape[0], 1), np.uint8),
                            np.tile(np.array([0xCF, 0xFC, 0x1D], np.uint8), (records.shape[0], 1)),
                            records[:, :251]], axis=1)
    _, corr_model = rs.decode(model)
    assert (corr_model[:, 0] == 1).sum() == 2948
    assert (corr_model[:, 0] == 0).sum() == 12
    assert (corr_model[:, 0] == -1).sum() == 250
