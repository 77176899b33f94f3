"""IQ end to end through the CLI: `simulate --level iq` writes a SigMF recording with the
mission's [modulation] and impairments; `replay` demodulates it (level iq by the suffix),
decodes and reports the demodulator; `plot --iq` draws the quicklook."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

MISSIONS = ROOT / "fixtures" / "missions"
pytest.importorskip("sigmf")


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "groundseg", *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


@pytest.mark.parametrize("mission,esn0,offset,timing", [
    ("by70-1.toml", 10.0, 250.0, 0.3),      # BPSK at the audio centre, NRZ-M, conventional-basis RS
    ("trisat.toml", 14.0, 0.0, 0.0),        # 2-FSK, NASA-DSN
])
def test_simulated_recording_decodes_every_frame(tmp_path, mission, esn0, offset, timing):
    rec = tmp_path / "pass.sigmf-meta"
    p = run("simulate", "-m", MISSIONS / mission, "--level", "iq", "--frames", 30, "--seed", 3,
            "--esn0", esn0, "--frequency-offset", offset, "--timing-offset", timing, "--out", rec)
    assert p.returncode == 0, p.stderr
    truth = json.loads((tmp_path / "pass.sigmf-meta.truth.json").read_text())
    p = run("replay", rec, "-m", MISSIONS / mission, "--no-archive", "--report", tmp_path / "r.json", "-q")
    assert p.returncode == 0, p.stderr
    rep = json.loads((tmp_path / "r.json").read_text())
    f = rep["frames"]
    assert f["clean"] + f["corrected"] == truth["frames"]["total"] == 30 and f["uncorrectable"] == 0
    d = rep["demodulator"]
    assert d["locked_fraction"] > 0.5 and abs(d["esn0_db"]["median"] - esn0) < 3.0
    assert abs(rep["link_quality"]["esn0_db"]) < 40
    p = run("plot", rec, "--iq", "-m", MISSIONS / mission, "--out", tmp_path / "q.png")
    assert p.returncode == 0 and (tmp_path / "q.png").read_bytes()[:4] == b"\x89PNG", p.stderr


def test_noise_only_recording_says_no_lock(tmp_path):
    import numpy as np
    from groundseg.sources.sdr import write_sigmf
    rng = np.random.default_rng(0)
    iq = (rng.standard_normal(200_000) + 1j * rng.standard_normal(200_000)).astype(np.complex64) * 0.1
    meta = write_sigmf(tmp_path / "noise", iq, 38400.0)
    p = run("replay", meta, "-m", MISSIONS / "by70-1.toml", "--no-archive", "-q")
    assert p.returncode == 0 and "nothing decoded" in p.stderr and "locked on" in p.stderr


def test_level_iq_without_modulation_is_refused(tmp_path):
    p = run("replay", ROOT / "fixtures" / "demo" / "demo.cadu", "-m", MISSIONS / "demo.toml", "--level", "iq",
            "--no-archive")
    assert p.returncode == 2 and "[modulation]" in p.stderr


def test_decoded_frames_written_back_as_sigmf_annotations(tmp_path):
    import sigmf
    rec = tmp_path / "pass.sigmf-meta"
    assert run("simulate", "-m", MISSIONS / "trisat.toml", "--level", "iq", "--frames", 12, "--esn0", 14,
               "--out", rec).returncode == 0
    p = run("replay", rec, "-m", MISSIONS / "trisat.toml", "--no-archive", "--annotate", "-q",
            "--report", tmp_path / "r.json")
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "r.json").read_text())["annotations"] == {str(rec): 12}
    handle = sigmf.sigmffile.fromfile(str(rec))
    handle.validate()
    notes = handle.get_annotations()
    starts = [a["core:sample_start"] for a in notes]
    assert len(notes) == 12 and starts == sorted(starts)
    # the first frame follows the 256-byte preamble: 2048 bits, 4096 symbols at r=1/2, 4 samples each
    assert abs(starts[0] - 4 * 4096) < 4 * 16          # within a few symbols (filter delay)
    sps = 4 * 2072 * 2                                   # samples per CADU
    assert all(abs((b - a) - sps) < 16 for a, b in zip(starts, starts[1:]))
    p = run("replay", ROOT / "fixtures" / "demo" / "demo.cadu", "-m", MISSIONS / "demo.toml", "--no-archive",
            "--annotate")
    assert p.returncode == 2
