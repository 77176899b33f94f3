"""The command line through real subprocesses: exit codes, one-line errors, files written."""
from __future__ import annotations

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from tests.conftest import ROOT

DEMO = ROOT / "fixtures" / "missions" / "demo.toml"


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "groundseg", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd or ROOT, timeout=600)


def assert_one_line_error(proc, code, *needles):
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("groundseg: error:"), proc.stderr
    assert "Traceback" not in proc.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim")
    cap = d / "pass.cadu"
    proc = run("simulate", "--mission", DEMO, "--out", cap, "--frames", 120, "--seed", 1, "--lost-frames", 2)
    assert proc.returncode == 0, proc.stderr
    return cap


def test_version():
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("groundseg ")


def test_no_command_is_usage_error():
    assert run().returncode == 2
    assert run("replay").returncode == 2  # argparse: missing arguments


def test_simulate_writes_capture_and_truth(sim):
    truth = json.loads(sim.with_name(sim.name + ".truth.json").read_text())
    assert sim.stat().st_size > 0 and truth["frames"]["total"] > 0


def test_replay_report_equals_truth_and_archive(sim, tmp_path):
    report = tmp_path / "r.json"
    proc = run("replay", sim, "--mission", DEMO, "--archive", tmp_path / "arc", "--report", report)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(report.read_text())
    truth = json.loads(sim.with_name(sim.name + ".truth.json").read_text())
    assert rep["frames"] == truth["frames"]
    assert rep["packets"] == truth["packets"]
    assert "frames    total" in proc.stdout and "APID 100" in proc.stdout
    with h5py.File(tmp_path / "arc" / "demo.h5", "r", swmr=True) as f:
        assert f.attrs["mission_name"] == "demo" and f.attrs["spacecraft_id"] == 42
        assert f["passes/frames_total"][0] == truth["frames"]["total"]


def test_quiet_prints_nothing(sim, tmp_path):
    proc = run("replay", sim, "--mission", DEMO, "--no-archive", "-q")
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""


def test_missing_capture_exit_1(tmp_path):
    assert_one_line_error(run("replay", tmp_path / "nope.cadu", "--mission", DEMO, "--no-archive"), 1, "nope.cadu")


def test_bad_mission_exit_2(tmp_path, sim):
    bad = tmp_path / "bad.toml"
    bad.write_text(DEMO.read_text().replace("interleave = 5", "interleave = 6"))
    assert_one_line_error(run("replay", sim, "--mission", bad, "--no-archive"), 2, "bad.toml", "interleave")
    bad.write_text("this is [ not toml")
    assert_one_line_error(run("replay", sim, "--mission", bad, "--no-archive"), 2, "bad.toml")
    assert_one_line_error(run("replay", sim, "--mission", tmp_path / "absent.toml", "--no-archive"), 2, "absent.toml")


def test_archive_of_another_mission_exit_2(tmp_path, sim):
    other = tmp_path / "other.toml"
    other.write_text(DEMO.read_text().replace("spacecraft_id = 42", "spacecraft_id = 43")
                     .replace('definition = "demo/', f'definition = "{DEMO.parent}/demo/'))
    assert run("replay", sim, "--mission", DEMO, "--archive", tmp_path / "arc", "-q").returncode == 0
    proc = run("replay", sim, "--mission", other, "--archive", tmp_path / "arc")
    assert_one_line_error(proc, 2)
    # nothing archived before is lost
    with h5py.File(tmp_path / "arc" / "demo.h5", "r", swmr=True) as f:
        assert f["passes/pass_id"].shape[0] == 1


def test_export_by_name_and_number_readable_by_ccsdspy(tmp_path, sim):
    import ccsdspy
    from ccsdspy.utils import split_by_apid
    assert run("replay", sim, "--mission", DEMO, "--archive", tmp_path / "arc", "-q").returncode == 0
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    assert run("export", tmp_path / "arc" / "demo.h5", "--apid", "hk", "--out", a).returncode == 0
    assert run("export", tmp_path / "arc" / "demo.h5", "--apid", 100, "--out", b).returncode == 0
    assert a.read_bytes() == b.read_bytes() and a.stat().st_size > 0
    with open(a, "rb") as fh:
        streams = split_by_apid(fh)
    assert list(streams) == [100]
    pkt = ccsdspy.FixedLength.from_file(str(ROOT / "fixtures" / "missions" / "demo" / "hk.csv"))
    fields = pkt.load(str(a), include_primary_header=True)
    assert len(fields["CCSDS_APID"]) > 0 and (fields["CCSDS_APID"] == 100).all()
    assert np.all(np.diff(fields["coarse_time"].astype(np.int64)) >= 0)


def test_export_unknown_apid_is_an_error(tmp_path, sim):
    assert run("replay", sim, "--mission", DEMO, "--archive", tmp_path / "arc", "-q").returncode == 0
    proc = run("export", tmp_path / "arc" / "demo.h5", "--apid", "nosuch", "--out", tmp_path / "x.bin")
    assert proc.returncode in (1, 2) and "nosuch" in proc.stderr and "Traceback" not in proc.stderr


def test_inspect_capture_without_mission(sim):
    proc = run("inspect", sim, "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["cadu_length"] == 1279
    assert info["coding"]["interleave"] == 5 and info["coding"]["frame_length"] == 1115
    assert info["spacecraft_ids"] == {"42": info["frames_examined"]}


def test_plot_writes_png(tmp_path, sim):
    pytest.importorskip("matplotlib")
    assert run("replay", sim, "--mission", DEMO, "--archive", tmp_path / "arc", "-q").returncode == 0
    out = tmp_path / "q.png"
    proc = run("plot", tmp_path / "arc" / "demo.h5", "--apid", "power", "--field", "sa_voltage", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_garbage_capture_is_counted_not_a_crash(tmp_path):
    cap = tmp_path / "noise.bin"
    np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tofile(cap)
    report = tmp_path / "r.json"
    proc = run("replay", cap, "--mission", DEMO, "--no-archive", "--report", report)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(report.read_text())
    assert rep["sync"]["bits_in"] == 1_600_000
    assert rep["frames"]["clean"] + rep["frames"]["corrected"] - rep["frames"]["rejected"] \
        - rep["frames"]["crc_failed"] == sum(v["frames"] for v in rep["virtual_channels"].values())
