"""Soft symbols end to end: the simulator's inner code (every rate and convention, NRZ-M,
noise at a given Eb/N0) -> replay at level "soft" -> the report against the truth, and the
frame error rate against what the code must achieve."""
from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from groundseg.mission import load_mission
from groundseg.pipeline import Pipeline
from groundseg.sim.simulate import simulate
from tests.conftest import ROOT

DEMO = ROOT / "fixtures" / "missions" / "demo.toml"
COMPARED = ("frames", "rs_symbols_corrected", "virtual_channels", "packets", "idle_packets", "rejects")


def soft_mission(tmp_path, rate="1/2", variant="ccsds", symbols="soft-int8", differential=False):
    text = DEMO.read_text()
    text = re.sub(r'convolutional = "none"',
                  f'convolutional = "{rate}"\nconvolutional_variant = "{variant}"\nsymbols = "{symbols}"\n'
                  f'differential = {"true" if differential else "false"}', text)
    text = text.replace('level = "bits"', 'level = "soft"')
    path = tmp_path / "soft.toml"
    path.write_text(text)
    if not (tmp_path / "demo").exists():
        shutil.copytree(DEMO.parent / "demo", tmp_path / "demo")     # the field definitions
    return load_mission(path)


def replay(mission, sim, tmp_path, chunk=1 << 16):
    path = tmp_path / "sim.soft"
    sim.write(path)
    return Pipeline(mission).replay([path], chunk_bytes=chunk)


@pytest.mark.parametrize("rate,variant", [("1/2", "ccsds"), ("1/2", "ccsds-noinv"), ("1/2", "nasa-dsn"),
                                          ("2/3", "ccsds"), ("3/4", "ccsds"), ("5/6", "ccsds"),
                                          ("7/8", "ccsds")])
def test_noiseless_every_rate_equals_the_truth(tmp_path, rate, variant):
    mission = soft_mission(tmp_path, rate, variant)
    sim = simulate(mission, frames=40, seed=2, level="soft")
    rep = replay(mission, sim, tmp_path)
    for key in COMPARED:
        assert rep[key] == sim.truth[key], key
    assert rep["link_quality"]["symbol_error_rate"] == 0


@pytest.mark.parametrize("symbols", ["soft-int8", "soft-float32"])
def test_differential_and_both_symbol_formats(tmp_path, symbols):
    mission = soft_mission(tmp_path, symbols=symbols, differential=True)
    sim = simulate(mission, frames=30, seed=4, level="soft", ebn0_db=6.0)
    rep = replay(mission, sim, tmp_path, chunk=777 * 4)      # chunks split symbols and pairs
    assert rep["frames"]["total"] == 30 and rep["frames"]["uncorrectable"] == 0
    assert rep["packets"] == sim.truth["packets"]


def test_frame_errors_follow_the_code(tmp_path):
    """r=1/2 k=7 soft decision: bit error rate ~1e-5 at Eb/N0 4.4 dB before RS, so at 4 dB the
    RS(255,223) I=5 frames all decode; at 1 dB the Viterbi output is full of bursts and RS
    fails on many frames. Es/N0 is estimated from the symbols (Es/N0 = Eb/N0 - 3 dB at r=1/2)."""
    mission = soft_mission(tmp_path)
    fer = {}
    for ebn0 in (4.0, 1.0):
        sim = simulate(mission, frames=60, seed=7, level="soft", ebn0_db=ebn0)
        rep = replay(mission, sim, tmp_path)
        f = rep["frames"]
        fer[ebn0] = f["uncorrectable"] / max(f["total"], 1)
        assert abs(rep["link_quality"]["esn0_db"] - (ebn0 - 3.01)) < 0.6
    assert fer[4.0] == 0 and fer[1.0] > 0.2


def test_chunking_does_not_change_the_decode(tmp_path):
    mission = soft_mission(tmp_path, "3/4")
    sim = simulate(mission, frames=20, seed=9, level="soft", ebn0_db=5.0)
    reps = [replay(mission, sim, tmp_path, chunk=c).to_dict() for c in (1, 4093, 1 << 20)]
    for r in reps:
        r.pop("source")
    assert reps[0] == reps[1] == reps[2]


def test_uncoded_soft_level_is_refused_clearly(tmp_path):
    from groundseg.mission import MissionError
    text = DEMO.read_text().replace('level = "bits"', 'level = "soft"\nsymbols = "soft-int8"')
    path = tmp_path / "m.toml"
    path.write_text(text)
    shutil.copytree(DEMO.parent / "demo", tmp_path / "demo")
    with pytest.raises(MissionError, match="convolutional"):
        load_mission(path)


def test_garbage_soft_symbols_are_counted_not_a_crash(tmp_path):
    mission = soft_mission(tmp_path, symbols="soft-float32")
    x = np.random.default_rng(1).normal(size=200_001).astype(np.float32)
    x[::97] = np.nan
    x[5::101] = np.inf
    path = tmp_path / "noise.f32"
    path.write_bytes(x.tobytes() + b"\x01\x02")         # not a whole number of symbols
    rep = Pipeline(mission).replay([path])
    assert rep["frames"]["clean"] + rep["frames"]["corrected"] == 0
    assert rep["source"]["truncated_bytes"] == 2
    zeros = tmp_path / "zeros.f32"
    zeros.write_bytes(bytes(80_000))
    assert Pipeline(mission).replay([zeros])["frames"]["total"] == 0


def test_link_quality_plot_from_the_archive(tmp_path):
    pytest.importorskip("matplotlib")
    import subprocess
    import sys
    mission = soft_mission(tmp_path)
    sim = simulate(mission, frames=40, seed=11, level="soft", ebn0_db=3.0)
    cap = tmp_path / "pass.soft"
    sim.write(cap)
    run = lambda *a: subprocess.run([sys.executable, "-m", "groundseg", *map(str, a)], capture_output=True,
                                    text=True, timeout=300, cwd=ROOT)
    p = run("replay", cap, "--mission", tmp_path / "soft.toml", "--archive", tmp_path / "arc", "-q")
    assert p.returncode == 0, p.stderr
    p = run("plot", tmp_path / "arc", "--link-quality", "--out", tmp_path / "lq.png")
    assert p.returncode == 0 and "40 frames" in p.stdout, p.stderr
    assert (tmp_path / "lq.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from groundseg.archive.reader import open_archive
    with open_archive(tmp_path / "arc") as arc:
        fr = arc.frames()
    assert np.isfinite(fr["esn0_db"]).all() and abs(float(np.median(fr["esn0_db"])) - (3.0 - 3.01)) < 1.0
    p = run("plot", tmp_path / "arc", "--link-quality", "--apid", "hk")
    assert p.returncode == 2
