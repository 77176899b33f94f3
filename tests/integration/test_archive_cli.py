"""The archive commands at their edges (issue 8): paths that are not archives, archive
directories, outputs whose directory does not exist, names in any case, empty passes."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.integration.test_cli import DEMO, assert_one_line_error, run


@pytest.fixture(scope="module")
def arc(tmp_path_factory):
    """An archive directory holding demo.h5 (one pass of a simulated downlink)."""
    d = tmp_path_factory.mktemp("arc")
    cap = d / "pass.cadu"
    assert run("simulate", "--mission", DEMO, "--out", cap, "--frames", 60, "--seed", 2).returncode == 0
    proc = run("replay", cap, "--mission", DEMO, "--archive", d / "archive", "-q")
    assert proc.returncode == 0, proc.stderr
    return d / "archive"


def test_archive_path_that_is_not_an_archive_creates_nothing(tmp_path, arc):
    text = tmp_path / "notes.txt"
    text.write_text("not an archive\n")
    proc = run("replay", arc.parent / "pass.cadu", "--mission", DEMO, "--archive", text)
    assert_one_line_error(proc, 1, "notes.txt", "not")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert text.read_text() == "not an archive\n"


def test_commands_accept_the_archive_directory(arc, tmp_path):
    proc = run("inspect", arc, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["mission"] == "demo"
    out = tmp_path / "hk.bin"
    assert run("export", arc, "--apid", "hk", "--out", out).returncode == 0
    assert run("export", arc / "demo.h5", "--apid", "hk", "--out", tmp_path / "b.bin").returncode == 0
    assert out.read_bytes() == (tmp_path / "b.bin").read_bytes() and out.stat().st_size
    pytest.importorskip("matplotlib")
    png = tmp_path / "q.png"
    proc = run("plot", arc, "--apid", "power", "--field", "sa_voltage", "--out", png)
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_directory_with_several_archives_names_them(arc, tmp_path):
    d = tmp_path / "two"
    d.mkdir()
    shutil.copy(arc / "demo.h5", d / "demo.h5")
    shutil.copy(arc / "demo.h5", d / "other.h5")
    for cmd in (["inspect", d], ["export", d, "--apid", "hk", "--out", tmp_path / "x.bin"],
                ["archive", "repair", d]):
        assert_one_line_error(run(*cmd), 2, "demo.h5", "other.h5")
    assert not (tmp_path / "x.bin").exists()


def test_output_directory_must_exist(arc, tmp_path):
    missing = tmp_path / "nonexistent" / "dir"
    assert_one_line_error(run("export", arc, "--apid", "hk", "--out", missing / "x.csv", "--format", "csv"),
                          2, "does not exist")
    pytest.importorskip("matplotlib")
    assert_one_line_error(run("plot", arc, "--apid", "power", "--field", "sa_voltage", "--out",
                              missing / "q.png"), 2, "does not exist")
    assert not (tmp_path / "nonexistent").exists()


def test_names_ignore_case_and_unknown_ones_are_usage_errors(arc, tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    assert run("export", arc, "--apid", "HK", "--out", a).returncode == 0
    assert run("export", arc, "--apid", "hk", "--out", b).returncode == 0
    assert a.read_bytes() == b.read_bytes() and a.stat().st_size
    # an APID the archive does not hold: refused, naming those it does, nothing written
    for apid in ("nosuch", "1234"):
        out = tmp_path / f"{apid}.bin"
        assert_one_line_error(run("export", arc, "--apid", apid, "--out", out), 2, apid, "100 hk")
        assert not out.exists()
    pytest.importorskip("matplotlib")
    png = tmp_path / "q.png"
    assert run("plot", arc, "--apid", "POWER", "--field", "SA_Voltage", "--out", png).returncode == 0
    assert_one_line_error(run("plot", arc, "--apid", "power", "--field", "nosuch", "--out", png),
                          2, "nosuch", "sa_voltage")


def test_inspect_lists_fields_with_units(arc):
    proc = run("inspect", arc, "--json")
    info = json.loads(proc.stdout)
    power = next(a for a in info["apids"] if a["name"] == "power")
    assert "sa_voltage" in power["fields"] and power["fields"]["sa_voltage"]
    plain = run("inspect", arc).stdout
    assert "sa_voltage: " + power["fields"]["sa_voltage"] in plain


def test_pass_that_decodes_nothing_is_marked_empty(tmp_path, arc):
    noise = tmp_path / "noise.bin"
    np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tofile(noise)
    d = tmp_path / "archive"
    assert run("replay", noise, "--mission", DEMO, "--archive", d, "-q").returncode == 0
    assert run("replay", arc.parent / "pass.cadu", "--mission", DEMO, "--archive", d, "-q").returncode == 0
    info = json.loads(run("inspect", d, "--json").stdout)
    assert [p["empty"] for p in info["passes"]] == [True, False]


def test_export_start_stop_and_pass(arc, tmp_path):
    import csv
    from groundseg.archive.reader import iso, open_archive
    with open_archive(arc) as a:
        t = a.packets("hk")["onboard_time"]
    mid = iso(float(t[len(t) // 2]))
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    assert run("export", arc, "--apid", "hk", "--format", "csv", "--out", first, "--stop", mid,
               "--pass", 1).returncode == 0
    assert run("export", arc, "--apid", "hk", "--format", "csv", "--out", second, "--start", mid).returncode == 0
    with open(first) as fa, open(second) as fb:
        a, b = list(csv.DictReader(fa)), list(csv.DictReader(fb))
    assert len(a) == len(t) // 2 and len(a) + len(b) == len(t)
    assert max(float(r["onboard_time"]) for r in a) < min(float(r["onboard_time"]) for r in b)
    out = tmp_path / "x.bin"
    assert_one_line_error(run("export", arc, "--apid", "hk", "--out", out, "--pass", 9), 2, "no pass 9", "passes: 1")
    assert_one_line_error(run("export", arc, "--apid", "hk", "--out", out, "--start", "yesterday"), 2, "ISO 8601")
    assert not out.exists()
