"""Real captures replayed into the archive, read back and exported (PROVENANCE.md has the truth)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from groundseg.archive.export import describe_archive, export_packets
from groundseg.archive.hdf5 import ArchiveWriter
from groundseg.archive.reader import open_archive
from groundseg.mission import load_mission
from tests.integration.test_archive_support import split_stream

ROOT = Path(__file__).resolve().parents[2]
MISSIONS = ROOT / "fixtures" / "missions"

pytestmark = pytest.mark.real


def replay(archive_dir: Path, mission_path: Path, captures: list[Path], level: str | None = None):
    from groundseg.pipeline import Pipeline
    mission = load_mission(mission_path)
    with ArchiveWriter(archive_dir, mission) as w:
        w.begin_pass(" ".join(str(c) for c in captures))
        report = Pipeline(mission, level=level, archive=w).replay([str(c) for c in captures])
        info = w.end_pass(report)
    return report, info


def test_cygnss_export_identical_to_split_by_apid(tmp_path, captures):
    folder = captures / "cygnss-packets"
    _, info = replay(tmp_path, MISSIONS / "cygnss" / "cygnss.toml",
                     [folder / "CYGNSS_F7_L0_2022_086_10_15_V01_F__first101pkts.tlm"], level="packets")
    assert info["packets"] == 101
    arc = tmp_path / "cygnss.h5"
    with open_archive(arc) as a:
        counts = {apid: n for apid in a.apids if (n := a.packet_count(apid))}
    assert counts == {384: 4, 386: 4, 391: 1, 392: 4, 393: 40, 394: 39, 1313: 9}
    for apid in counts:
        out = tmp_path / f"{apid}.bin"
        export_packets(arc, apid, out)
        assert out.read_bytes() == (folder / "split_by_apid" / f"apid{apid:05d}.tlm").read_bytes(), apid


def test_snpp_apid_803_export(tmp_path, captures):
    cap = captures / "snpp-cadu" / "snpp_synchronized_cadus.dat"
    replay(tmp_path, MISSIONS / "snpp.toml", [cap])
    arc = tmp_path / "snpp.h5"
    info = export_packets(arc, 803, tmp_path / "803.bin")
    pk = split_stream((tmp_path / "803.bin").read_bytes())
    assert info["packets"] == 11
    assert [len(p) for p in pk] == [180, 4090, 5098, 5058, 5026, 5122, 5090, 5106, 5130, 5074, 5118]
    seq = [int.from_bytes(p[2:4], "big") & 0x3FFF for p in pk]
    assert 9860 not in seq  # lost in the frame gap
    export_packets(arc, "viirs_802", tmp_path / "802.bin")  # by its mission-file name
    assert [len(p) for p in split_stream((tmp_path / "802.bin").read_bytes())] == [3006]
    with open_archive(arc) as a:
        frames = a.frames()
        assert len(frames) == 65 and (frames["vcid"] == 16).all()
        assert int(np.count_nonzero(frames["gap_before"])) == 1
    # replaying the same capture adds nothing
    _, second = replay(tmp_path, MISSIONS / "snpp.toml", [cap])
    assert second["packets"] == 0 and second["duplicates"] == 12


def test_change5_insert_zone_time_and_counts(tmp_path, captures):
    cap = captures / "change5-aos" / "ce5_ata_2021-09-18_frames.u8"
    replay(tmp_path, MISSIONS / "change5.toml", [cap])
    arc = tmp_path / "change-5.h5"
    want = {40: 396, 1030: 199, 41: 148, 52: 130, 42: 98, 43: 94, 13: 84, 5: 83, 28: 81, 14: 81,
            33: 79, 49: 74, 1040: 73, 11: 46, 27: 45, 29: 44, 34: 43, 51: 42, 39: 42, 4: 24, 31: 24,
            7: 23, 48: 22, 30: 22, 35: 22, 2: 12, 3: 12, 1031: 12, 1034: 12, 1032: 11, 1039: 11,
            50: 11, 58: 6, 6: 6, 16: 6, 25: 6, 26: 6, 60: 6, 12: 3}
    with open_archive(arc) as a:
        got = {apid: n for apid in a.apids if (n := a.packet_count(apid))}
        assert got == want
        p = a.packets(40)
        # onboard time from the insert zone: 2021-09-18, in frame order
        assert (np.diff(p["onboard_time"]) >= 0).all()
        assert str(np.datetime64(int(p["onboard_time"][0]), "s")).startswith("2021-09-18T07:59")
    _, second = replay(tmp_path, MISSIONS / "change5.toml", [cap])
    assert second["packets"] == 0 and second["duplicates"] == sum(want.values())


def test_tianwen2_high_and_low_rate_in_one_archive(tmp_path, captures):
    folder = captures / "tianwen2-aos"
    hdr = [folder / n for n in (
        "tianwen-2_2026_05_25_15_52_15_8428.190MHz_2.00Msps_ci16_le_frames.u8",
        "tianwen-2_2026_05_25_16_03_18_8428.190MHz_2.00Msps_ci16_le_frames.u8",
        "dwingeloo_kamo_2026_05_25_19_43_00_8428.190MHz_2.00Msps_ci16_le_frames.u8",
        "dwingeloo_tianwen-2_2026_05_25_20_14_02_8428.190MHz_2.00Msps_ci16_le_frames.u8",
        "tianwen2_2026_05_26_11_53_49_8428.190MHz_2.00Msps_ci16_le_frames.u8",
        "tianwen2_2026_05_26_12_08_46_8428.190MHz_2.00Msps_ci16_le_frames.u8")]
    ldr = [folder / "tw2-lowdr_2026_06_08_13_21_35_8428.159MHz_1.00Msps_ci16_le_frames.u8"]
    _, a_info = replay(tmp_path, MISSIONS / "tianwen2-hdr.toml", hdr)
    _, b_info = replay(tmp_path, MISSIONS / "tianwen2-ldr.toml", ldr)
    assert a_info["packets"] == 21568 and b_info["packets"] == 706
    with open_archive(tmp_path / "tianwen-2.h5") as a:
        assert a.packet_count() == 21568 + 706
        assert a.packet_count(1557) == 275 + 145
        assert a.packet_count(1557, passes=2) == 145
        assert len(a.passes) == 2
        assert "frame_length = 892" in a.pass_info(1)["mission_text"]
        assert "frame_length = 220" in a.pass_info(2)["mission_text"]
    d = describe_archive(tmp_path / "tianwen-2.h5")
    assert d["packets"] == 21568 + 706 and d["time_span"]["onboard"][0].startswith("2026-05-25")


# -- the CLI over the archive (subprocess: exit codes and one-line messages) -------------------
def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "groundseg", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


def test_cli_replay_export_inspect_and_mismatch(tmp_path, captures):
    cap = captures / "cygnss-packets" / "CYGNSS_F7_L0_2022_086_10_15_V01_F__first101pkts.tlm"
    mission = MISSIONS / "cygnss" / "cygnss.toml"
    r = run_cli("replay", cap, "--mission", mission, "--archive", tmp_path, "--level", "packets")
    assert r.returncode == 0, r.stderr
    arc = tmp_path / "cygnss.h5"
    r = run_cli("export", arc, "--apid", 393, "--out", tmp_path / "393.bin")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "393.bin").read_bytes() == \
        (captures / "cygnss-packets" / "split_by_apid" / "apid00393.tlm").read_bytes()
    r = run_cli("inspect", arc)
    assert r.returncode == 0 and "393" in r.stdout
    # another mission pointed at this archive file: refused, exit 2, one line, nothing lost
    r = run_cli("replay", cap, "--mission", MISSIONS / "snpp.toml", "--archive", arc, "--level", "packets")
    assert r.returncode == 2 and "cygnss" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    with open_archive(arc) as a:
        assert a.packet_count() == 101
    r = run_cli("export", tmp_path / "missing.h5", "--apid", 393, "--out", tmp_path / "x.bin")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
