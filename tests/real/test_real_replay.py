"""Real spacecraft downlinks through `groundseg replay` end to end (expected figures from each PROVENANCE.md)."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MISSIONS = ROOT / "fixtures" / "missions"

TIANWEN2_HDR_FILES = [  # the order of PROVENANCE.md's table
    "tianwen-2_2026_05_25_15_52_15_8428.190MHz_2.00Msps_ci16_le_frames.u8",
    "tianwen-2_2026_05_25_16_03_18_8428.190MHz_2.00Msps_ci16_le_frames.u8",
    "dwingeloo_kamo_2026_05_25_19_43_00_8428.190MHz_2.00Msps_ci16_le_frames.u8",
    "dwingeloo_tianwen-2_2026_05_25_20_14_02_8428.190MHz_2.00Msps_ci16_le_frames.u8",
    "tianwen2_2026_05_26_11_53_49_8428.190MHz_2.00Msps_ci16_le_frames.u8",
    "tianwen2_2026_05_26_12_08_46_8428.190MHz_2.00Msps_ci16_le_frames.u8",
]
TIANWEN2_HDR_APIDS = {17: 1598, 18: 1598, 19: 1598, 20: 1598, 21: 1598, 272: 1598, 528: 1598, 32: 1598,
                      1552: 1598, 1554: 801, 33: 801, 34: 801, 22: 797, 35: 797, 36: 797, 28: 493, 26: 492,
                      1553: 276, 1556: 275, 1557: 275, 1555: 275, 25: 154, 24: 152}
TIANWEN2_LDR_APIDS = {1557: 145, 21: 73, 17: 73, 1552: 50, 272: 50, 528: 50, 32: 49, 28: 37, 33: 20, 26: 20,
                      22: 20, 24: 14, 25: 14, 1555: 14, 19: 14, 1556: 13, 36: 10, 18: 10, 20: 10, 34: 10, 35: 10}
CHANGE5_APIDS = {40: 396, 1030: 199, 41: 148, 52: 130, 42: 98, 43: 94, 13: 84, 5: 83, 28: 81, 14: 81, 33: 79,
                 49: 74, 1040: 73, 11: 46, 27: 45, 29: 44, 34: 43, 51: 42, 39: 42, 4: 24, 31: 24, 7: 23, 48: 22,
                 30: 22, 35: 22, 2: 12, 3: 12, 1031: 12, 1034: 12, 1032: 11, 1039: 11, 50: 11, 58: 6, 6: 6,
                 16: 6, 25: 6, 26: 6, 60: 6, 12: 3}
CYGNSS_APIDS = {384: 4, 386: 4, 391: 1, 392: 4, 393: 40, 394: 39, 1313: 9}


def groundseg(*args, cwd=None, check=True):
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-m", "groundseg", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"groundseg {' '.join(map(str, args))} -> {proc.returncode}\n{proc.stderr}")
    return proc


def replay(tmp_path, mission, *captures, archive=False):
    report = tmp_path / "report.json"
    args = ["replay", *captures, "--mission", MISSIONS / mission, "--report", report]
    args += ["--archive", tmp_path / "archive"] if archive else ["--no-archive"]
    groundseg(*args)
    return json.loads(report.read_text())


def apid_counts(report):
    return {int(k): v["count"] for k, v in report["packets"].items() if v["count"]}


def check_identities(rep):
    """The counting identities of docs/report.md hold in every report."""
    f = rep["frames"]
    assert f["clean"] + f["corrected"] + f["uncorrectable"] == f["total"]
    delivered = f["clean"] + f["corrected"] - f["rejected"] - f["crc_failed"]
    assert delivered == sum(vc["frames"] for vc in rep["virtual_channels"].values())
    assert f["uncorrectable"] == rep["rejects"].get("rs_uncorrectable", 0)


def test_snpp_cadus(captures, tmp_path):
    rep = replay(tmp_path, "snpp.toml", captures / "snpp-cadu" / "snpp_synchronized_cadus.dat", archive=True)
    check_identities(rep)
    assert rep["frames"]["total"] == 65 and rep["frames"]["clean"] == 65
    assert rep["rs_symbols_corrected"] == 0
    assert rep["virtual_channels"]["16"]["frames"] == 65
    assert rep["virtual_channels"]["16"]["gaps"] == 1 and rep["virtual_channels"]["16"]["frames_lost"] == 1
    assert apid_counts(rep) == {802: 1, 803: 11}
    assert rep["packets"]["802"]["bytes"] == 3006 and rep["packets"]["803"]["bytes"] == 50092
    assert rep["packets"]["803"]["sequence_gaps"] == 1 and rep["packets"]["803"]["sequence_missing"] == 1
    out = tmp_path / "803.pkts"
    archive = next((tmp_path / "archive").glob("*.h5"))
    groundseg("export", archive, "--apid", 803, "--out", out)
    data = out.read_bytes()
    sizes, pos = [], 0
    while pos < len(data):
        n = int.from_bytes(data[pos + 4:pos + 6], "big") + 7
        sizes.append(n)
        pos += n
    assert sizes == [180, 4090, 5098, 5058, 5026, 5122, 5090, 5106, 5130, 5074, 5118]
    out802 = tmp_path / "802.pkts"
    groundseg("export", archive, "--apid", 802, "--out", out802)
    # reception order: APID 802's packet (seq 9875) comes first, then the 803 packets
    assert hashlib.md5(out802.read_bytes() + data).hexdigest() == "5e11051d86c46ddc3500904c99bbe978"


def test_snpp_unaligned_inverted(captures, tmp_path):
    """The same CADUs shifted by 5 bits and inverted decode identically."""
    import numpy as np
    raw = np.fromfile(captures / "snpp-cadu" / "snpp_synchronized_cadus.dat", np.uint8)
    bits = np.concatenate([np.zeros(5, np.uint8), np.unpackbits(raw) ^ 1])
    cap = tmp_path / "shifted.dat"
    np.packbits(bits).tofile(cap)
    rep = replay(tmp_path, "snpp.toml", cap)
    check_identities(rep)
    assert rep["frames"]["total"] == 65 and rep["sync"]["inverted_codeblocks"] == 65
    assert apid_counts(rep) == {802: 1, 803: 11}


def test_tianwen2_hdr_six_files_one_pass(captures, tmp_path):
    files = [captures / "tianwen2-aos" / f for f in TIANWEN2_HDR_FILES]
    rep = replay(tmp_path, "tianwen2-hdr.toml", *files, archive=True)
    check_identities(rep)
    assert rep["frames"]["total"] == 1603
    assert rep["frames"]["rejected"] == 5 and rep["rejects"].get("version") == 5
    assert rep["virtual_channels"]["1"]["frames"] == 1598
    assert rep["virtual_channels"]["1"]["gaps"] == 0  # no gap inside any file; none counted across files
    assert apid_counts(rep) == TIANWEN2_HDR_APIDS
    assert sum(apid_counts(rep).values()) == 21568


def test_tianwen2_ldr(captures, tmp_path):
    rep = replay(tmp_path, "tianwen2-ldr.toml",
                 captures / "tianwen2-aos" / "tw2-lowdr_2026_06_08_13_21_35_8428.159MHz_1.00Msps_ci16_le_frames.u8")
    check_identities(rep)
    assert rep["frames"]["total"] == 299
    assert apid_counts(rep) == TIANWEN2_LDR_APIDS and sum(apid_counts(rep).values()) == 706


def test_change5(captures, tmp_path):
    rep = replay(tmp_path, "change5.toml", captures / "change5-aos" / "ce5_ata_2021-09-18_frames.u8")
    check_identities(rep)
    assert rep["frames"]["total"] == 396
    vc = rep["virtual_channels"]["1"]
    assert vc["frames"] == 396 and vc["gaps"] == 1 and vc["frames_lost"] == 6
    assert apid_counts(rep) == CHANGE5_APIDS and sum(apid_counts(rep).values()) == 2139


def test_queqiao2(captures, tmp_path):
    rep = replay(tmp_path, "queqiao2.toml", captures / "queqiao" / "queqiao2_frames.u8")
    check_identities(rep)
    assert rep["frames"]["total"] == 72
    assert rep["virtual_channels"]["0"]["frames"] == 72 and rep["virtual_channels"]["0"]["gaps"] == 0
    assert apid_counts(rep) == {}


def test_cygnss_packets(captures, tmp_path):
    cyg = captures / "cygnss-packets"
    rep = replay(tmp_path, "cygnss/cygnss.toml", cyg / "CYGNSS_F7_L0_2022_086_10_15_V01_F__first101pkts.tlm",
                 archive=True)
    assert rep["frames"]["total"] == 0
    assert apid_counts(rep) == CYGNSS_APIDS
    for apid in (384, 386, 392):
        assert rep["packets"][str(apid)]["sequence_gaps"] == 3
    archive = next((tmp_path / "archive").glob("*.h5"))
    for apid in CYGNSS_APIDS:
        out = tmp_path / f"{apid}.tlm"
        groundseg("export", archive, "--apid", apid, "--out", out)
        assert out.read_bytes() == (cyg / "split_by_apid" / f"apid{apid:05d}.tlm").read_bytes(), apid
