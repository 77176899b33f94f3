"""Soft symbols of real spacecraft through the whole chain (Pipeline, level "soft") into the
archive: TRISAT (nasa-dsn convention, 2073-bit marker spacing) - PROVENANCE.md figures."""
from __future__ import annotations

import numpy as np
import pytest

from groundseg.archive.hdf5 import ArchiveWriter
from groundseg.archive.reader import open_archive
from groundseg.mission import load_mission
from groundseg.pipeline import Pipeline
from tests.conftest import ROOT

MISSIONS = ROOT / "fixtures" / "missions"


def test_trisat_soft_symbols_into_the_archive(captures, tmp_path):
    cap = captures / "trisat-fsk" / "trisat_softsym_9766baud.f32"
    ref = np.fromfile(captures / "trisat-fsk" / "trisat_frames.gr-satellites.bin", np.uint8).reshape(-1, 223)
    mission = load_mission(MISSIONS / "trisat.toml")
    with ArchiveWriter(tmp_path, mission) as w:
        w.begin_pass(str(cap))
        rep = Pipeline(mission, archive=w).replay([cap], chunk_bytes=4096)    # many chunks
        w.end_pass(rep)
    f = rep["frames"]
    assert f["total"] == 5 and f["uncorrectable"] == 0 and f["crc_failed"] == 0 and f["rejected"] == 0
    assert rep["virtual_channels"]["4"]["frames"] == 5 and rep["virtual_channels"]["4"]["gaps"] == 0
    lq = rep["link_quality"]
    assert 0 < lq["symbol_error_rate"] < 0.1 and lq["esn0_db"] > 0
    assert {c["offset"] for c in lq["hypothesis_changes"]} == {0}
    with open_archive(tmp_path / "trisat.h5") as arc:
        rec, data, offsets = arc.vca()
        frames = arc.frames()
    # the data field of each reference frame: after the 6-byte header, before OCF and FECF
    assert len(rec) == 5 and (rec["vcid"] == 4).all()
    for i in range(4):
        assert data[offsets[i]:offsets[i + 1]].tobytes() == ref[i, 6:223 - 6].tobytes()
    assert np.isfinite(frames["esn0_db"]).all() and (frames["symbol_error_rate"] < 0.2).all()
    assert list(frames["vcfc"]) == [139, 140, 141, 142, 143]


def test_trisat_same_frames_whatever_the_chunking(captures):
    cap = captures / "trisat-fsk" / "trisat_softsym_9766baud.f32"
    mission = load_mission(MISSIONS / "trisat.toml")
    reps = [Pipeline(mission).replay([cap], chunk_bytes=n).to_dict() for n in (4, 4000, 1 << 20)]
    for r in reps:
        r.pop("source")
    assert reps[0] == reps[1] == reps[2]


@pytest.mark.parametrize("chunk", [4096])
def test_trisat_int8_symbols_decode_the_same(captures, tmp_path, chunk):
    from groundseg.coding.convolutional import quantize
    x = np.fromfile(captures / "trisat-fsk" / "trisat_softsym_9766baud.f32", np.float32)
    cap = tmp_path / "trisat.s8"
    quantize(x).tofile(cap)
    mission = load_mission(MISSIONS / "trisat.toml")
    import dataclasses
    mission.link = dataclasses.replace(mission.link, symbols="soft-int8")
    rep = Pipeline(mission).replay([cap], chunk_bytes=chunk)
    assert rep["frames"]["total"] == 5 and rep["frames"]["uncorrectable"] == 0


def test_by70_1_soft_symbols_unframed_into_the_archive(captures, tmp_path):
    """frame_type "none": RS-valid codeblock data archived whole; NRZ-M after Viterbi; the
    symbol-pair alignment changes between bursts (PROVENANCE.md: 18 reference frames, 19
    recoverable, a KISS stream starting C0 B8 64)."""
    cap = captures / "by70-1-bpsk" / "by70-1_softsym_9600baud.f32"
    ref = np.fromfile(captures / "by70-1-bpsk" / "by70-1_frames.gr-satellites.bin", np.uint8).reshape(-1, 114)
    mission = load_mission(MISSIONS / "by70-1.toml")
    with ArchiveWriter(tmp_path, mission) as w:
        w.begin_pass(str(cap))
        rep = Pipeline(mission, archive=w).replay([cap], chunk_bytes=1 << 15)
        w.end_pass(rep)
    f = rep["frames"]
    assert f["clean"] + f["corrected"] == 19 and f["rejected"] == 0
    assert rep["virtual_channels"]["0"] == {"frames": 19, "idle": 0, "gaps": 0, "frames_lost": 0, "repeats": 0}
    assert len({c["offset"] for c in rep["link_quality"]["hypothesis_changes"]}) == 2
    with open_archive(tmp_path / "by70-1.h5") as arc:
        rec, data, offsets = arc.vca()
    got = {data[offsets[i]:offsets[i + 1]].tobytes() for i in range(len(rec))}
    assert len(got) == 19 and all(len(g) == 114 for g in got)
    assert {r.tobytes() for r in ref} <= got
    assert all(g[:3] == b"\xc0\xb8\x64" for g in got)


@pytest.mark.parametrize("folder,wav,mission_file,ref_name,length,first", [
    ("trisat-fsk", "trisat.wav", "trisat.toml", "trisat_frames.gr-satellites.bin", 223, 4),
    ("by70-1-bpsk", "by701.wav", "by70-1.toml", "by70-1_frames.gr-satellites.bin", 114, 18)])
def test_audio_through_the_whole_chain(captures, tmp_path, folder, wav, mission_file, ref_name, length, first):
    """Level "iq": the receiver's audio -> demodulator -> Viterbi -> frames -> archive, at least the
    reference frames byte for byte (PROVENANCE.md), with the demodulator's lock and Es/N0 reported."""
    cap = captures / folder / wav
    ref = np.fromfile(captures / folder / ref_name, np.uint8).reshape(-1, length)
    mission = load_mission(MISSIONS / mission_file)
    pipe = Pipeline(mission, level="iq")
    with ArchiveWriter(tmp_path, mission) as w:
        w.begin_pass(str(cap))
        pipe.archive = w
        rep = pipe.run(pipe.source_for([cap]))
        w.end_pass(rep)
    demod = rep["demodulator"]
    assert demod["locked_fraction"] > 0.2 and demod["esn0_db"]["median"] > 0
    assert rep["frames"]["uncorrectable"] <= rep["frames"]["total"] - first
    with open_archive(tmp_path / f"{mission.name}.h5") as arc:
        rec, data, offsets = arc.vca()
    got = [data[offsets[i]:offsets[i + 1]].tobytes() for i in range(len(rec))]
    if mission.link.frame_type == "TM":
        want = [r[6:length - 6].tobytes() for r in ref]          # data field between header and OCF+FECF
        assert got[:first] == want
    else:
        assert {r.tobytes() for r in ref} <= set(got)
