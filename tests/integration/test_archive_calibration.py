"""Calibrated fields archived as raw counts and calibrated on read (archive schema 2).

The values read back must be exactly what telemetry decoding gave: the same polynomial
over the same counts. Rows with no count read NaN, a pass keeps the calibration it was
decoded with, and a schema 1 archive goes on holding engineering values.
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from groundseg import telemetry
from groundseg.archive import calibration, storage
from groundseg.archive.hdf5 import ArchiveError, ArchiveWriter
from groundseg.archive.reader import open_archive
from groundseg.mission import load_mission
from groundseg.mission.model import parse_calibration
from tests.integration.test_archive_support import HK_CSV, mixed_batch, write_mission

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "missions"


def _pass(path, mission, batch, source="test", decode=True):
    with ArchiveWriter(path, mission) as w:
        pid = w.begin_pass(source)
        if decode:
            decoded, _ = telemetry.decode(batch, mission)
            w.append(decoded=decoded)
        else:
            w.append(packets=batch)
        w.end_pass({"frames": {"total": 0}})
    return pid


def _mission(folder, csv):
    return load_mission(write_mission(folder, hk_csv=csv))


def test_demo_fields_read_back_exactly_as_decoded(tmp_path):
    """Every calibrated field of the demo mission (scalars and arrays, signed and unsigned,
    8 and 16 bits), replayed into the archive, reads back bit for bit as telemetry decodes
    the archived packets; the file holds the counts."""
    from groundseg.pipeline import Pipeline
    from groundseg.sim import simulate_to_file
    mission = load_mission(FIXTURES / "demo.toml")
    cap = tmp_path / "demo.cadu"
    simulate_to_file(mission, cap, frames=400, seed=3)
    with ArchiveWriter(tmp_path, mission) as w:
        w.begin_pass(str(cap))
        w.end_pass(Pipeline(mission, archive=w).replay([cap]))
    checked = 0
    with open_archive(tmp_path / "demo.h5") as a:
        for apid in (100, 101, 102, 103):
            rows = a.packets(apid)
            meta = a.fields(apid)
            want = telemetry.decode(a.raw_packets(apid), mission)[0][apid]
            assert len(rows) == len(want.packets) > 100
            for name, cal in want.calibration.items():
                np.testing.assert_array_equal(rows[name], want.fields[name])
                assert meta[name]["dtype"] == "float64" and meta[name]["calibration"] == cal
                assert meta[name]["raw_dtype"] == str(want.raw_fields[name].dtype)
                checked += 1
    assert checked == 13   # hk 6, power 3, thermal 3, adcs 1
    with h5py.File(tmp_path / "demo.h5", "r") as f:
        assert f.attrs["schema_version"] == 2
        sa = f["packets/power/fields/sa_voltage"]
        assert sa.dtype == np.dtype("<i4") and sa.shape[1:] == (4,) and sa.fillvalue == -1
        pt = f["packets/power/fields/pcdu_temp"]           # int16 counts
        assert pt.dtype == np.dtype("<i4") and pt.fillvalue == np.iinfo(np.int32).min
        duty = f["packets/thermal/fields/heater_duty"]      # uint8 counts
        assert duty.dtype == np.dtype("<i2") and duty.fillvalue == -1
        assert f["packets/power/fields/load_switches"].attrs.get("values", "") == ""  # not calibrated


def test_rows_without_counts_read_nan(tmp_path):
    """A calibrated field declared only from the second pass on, and packets archived raw
    without decoding: their rows have no count and read NaN, never a calibrated fill."""
    m1 = _mission(tmp_path / "m1", HK_CSV)
    m2 = _mission(tmp_path / "m2", HK_CSV + 'current,uint,16,A,"poly:0.0,0.01",a new field\n')
    _pass(tmp_path, m1, mixed_batch(10, undeclared=False))
    b2 = mixed_batch(10, t0=1.8e9, seq0=100, seed=1, rx0=1.9e9, undeclared=False, hk2=True)
    _pass(tmp_path, m2, b2)
    _pass(tmp_path, m2, mixed_batch(10, t0=1.9e9, seq0=200, seed=2, rx0=2.0e9, undeclared=False, hk2=True),
          decode=False)
    want, _ = telemetry.decode(b2, m2)
    with open_archive(tmp_path / "unit.h5") as a:
        rows = a.packets("hk")
        assert len(rows) == 30
        cur = rows["current"]
        assert np.isnan(cur[:10]).all() and np.isnan(cur[20:]).all()
        np.testing.assert_array_equal(cur[10:20], want[10].fields["current"])
        assert np.isfinite(rows["temp"][:20]).all() and np.isnan(rows["temp"][20:]).all()
    with h5py.File(tmp_path / "unit.h5", "r") as f:
        c = f["packets/hk/fields/current"]
        assert (c[:10] == -1).all() and (c[20:] == -1).all() and (c[10:20] >= 0).all()


def test_a_changed_calibration_applies_from_its_pass_on(tmp_path):
    """The mission file's calibration changes between passes: each pass reads back with
    the calibration it was decoded with, as engineering values archived would have."""
    m1 = _mission(tmp_path / "m1", HK_CSV)
    m2 = _mission(tmp_path / "m2", HK_CSV.replace("poly:-40.0,0.5", "poly:-41.5,0.25"))
    b1 = mixed_batch(12, undeclared=False)
    b2 = mixed_batch(12, t0=1.8e9, seq0=100, seed=1, rx0=1.9e9, undeclared=False)
    b3 = mixed_batch(12, t0=1.9e9, seq0=200, seed=2, rx0=2.0e9, undeclared=False)
    _pass(tmp_path, m1, b1)
    _pass(tmp_path, m2, b2)
    _pass(tmp_path, m1, b3)
    want = np.concatenate([telemetry.decode(b, m)[0][10].fields["temp"]
                           for b, m in ((b1, m1), (b2, m2), (b3, m1))])
    with open_archive(tmp_path / "unit.h5") as a:
        np.testing.assert_array_equal(a.packets("hk")["temp"], want)
        np.testing.assert_array_equal(a.packets("hk", passes=2)["temp"], want[12:24])
        meta = a.fields("hk")["temp"]
        assert meta["calibration"] == "poly:-40.0,0.5"
        assert meta["calibrations"] == [[1, "poly:-40.0,0.5"], [2, "poly:-41.5,0.25"],
                                        [3, "poly:-40.0,0.5"]]
    # the engineering values differ between the two calibrations: the test can fail
    assert not np.array_equal(telemetry.decode(b2, m1)[0][10].fields["temp"], want[12:24])


def test_a_schema_1_archive_keeps_engineering_values(tmp_path, monkeypatch):
    """An archive made by a groundseg of schema 1 is appended to as it was: float64
    engineering values, schema_version 1, so that groundseg can still read it."""
    m = _mission(tmp_path / "m", HK_CSV)
    b1 = mixed_batch(8, undeclared=False)
    b2 = mixed_batch(8, t0=1.8e9, seq0=100, seed=1, rx0=1.9e9, undeclared=False)
    monkeypatch.setattr(storage, "SCHEMA_VERSION", 1)
    _pass(tmp_path, m, b1)
    monkeypatch.undo()
    _pass(tmp_path, m, b2)
    with h5py.File(tmp_path / "unit.h5", "r") as f:
        assert f.attrs["schema_version"] == 1
        t = f["packets/hk/fields/temp"]
        assert t.dtype == np.float64 and "values" not in t.attrs
    want = np.concatenate([telemetry.decode(b, m)[0][10].fields["temp"] for b in (b1, b2)])
    with open_archive(tmp_path / "unit.h5") as a:
        np.testing.assert_array_equal(a.packets("hk")["temp"], want)
        assert a.fields("hk")["temp"]["dtype"] == "float64"


def test_export_csv_gives_engineering_values(tmp_path):
    m = _mission(tmp_path / "m", HK_CSV)
    b = mixed_batch(6, undeclared=False)
    _pass(tmp_path, m, b)
    from groundseg.archive.export import export_packets
    out = tmp_path / "hk.csv"
    export_packets(tmp_path / "unit.h5", "hk", out, "csv")
    lines = out.read_text().splitlines()
    head = lines[0].split(",")
    col = head.index("temp [degC]")
    got = [float(line.split(",")[col]) for line in lines[1:]]
    np.testing.assert_allclose(got, telemetry.decode(b, m)[0][10].fields["temp"], rtol=0, atol=1e-9)


@pytest.mark.parametrize("raw,stored,missing", [
    ("u1", "<i2", -1), ("i1", "<i2", -32768), (">u2", "<i4", -1), ("<i2", "<i4", -2 ** 31),
    (">u4", "<i8", -1), ("i4", "<i8", -2 ** 63)])
def test_counts_are_stored_one_size_wider(raw, stored, missing):
    dt, miss = calibration.stored_dtype(np.dtype(raw))
    assert dt == np.dtype(stored) and miss == missing
    info = np.iinfo(np.dtype(raw))
    assert not info.min <= miss <= info.max     # no count can mean "none"


def test_64_bit_and_text_counts_stay_engineering():
    assert calibration.stored_dtype(np.dtype(">u8")) is None
    assert calibration.stored_dtype(np.dtype("i8")) is None
    assert calibration.stored_dtype(np.dtype("S4")) is None
    dt, miss = calibration.stored_dtype(np.dtype(">f4"))
    assert dt == np.dtype("<f4") and np.isnan(miss)


def test_engineering_reference():
    """engineering() against a slow per-row evaluation: history by pass, NaN for missing."""
    rng = np.random.default_rng(5)
    stored = rng.integers(-50, 50, (40, 3)).astype("<i4")
    stored[rng.random((40, 3)) < 0.2] = -1
    passes = np.sort(rng.integers(1, 7, 40))
    hist = [[2, "poly:1.0,0.5"], [4, "poly:-3.0,0.25,0.01"], [6, "poly:7.0"]]
    got = calibration.engineering(stored, hist, passes, -1)
    for i in range(40):
        cal = hist[0][1]
        for first, c in hist:
            if passes[i] >= first:
                cal = c
        coeffs = [float(x) for x in cal.split(":")[1].split(",")]
        for j in range(3):
            x = stored[i, j]
            want = np.nan if x == -1 else sum(c * float(x) ** k for k, c in enumerate(coeffs))
            if np.isnan(want):
                assert np.isnan(got[i, j])
            else:
                assert got[i, j] == pytest.approx(want, rel=1e-12, abs=1e-12)
    assert json.loads(json.dumps(hist)) == hist


def test_two_calibrations_in_one_pass_are_refused(tmp_path):
    """Rows of one pass cannot tell which calibration decoded them: a second one within
    the pass is a clear error, not values read back wrongly."""
    m1 = _mission(tmp_path / "m1", HK_CSV)
    m2 = _mission(tmp_path / "m2", HK_CSV.replace("poly:-40.0,0.5", "poly:-41.5,0.25"))
    b1 = mixed_batch(5, undeclared=False)
    b2 = mixed_batch(5, t0=1.8e9, seq0=100, seed=1, rx0=1.9e9, undeclared=False)
    with ArchiveWriter(tmp_path, m1) as w:
        w.begin_pass("two")
        w.append(decoded=telemetry.decode(b1, m1)[0])
        with pytest.raises(ArchiveError, match="one pass takes one calibration"):
            w.append(decoded=telemetry.decode(b2, m2)[0])
        w.end_pass({})
    with open_archive(tmp_path / "unit.h5") as a:
        np.testing.assert_array_equal(a.packets("hk")["temp"], telemetry.decode(b1, m1)[0][10].fields["temp"])


@pytest.mark.parametrize("dtype,missing", [("<i2", -32768), ("<i4", -1), (">i4", -1), ("<i8", -2 ** 63),
                                           ("<f4", float("nan")), ("<f8", float("nan"))])
def test_engineering_is_telemetry_polynomial_bit_for_bit(dtype, missing):
    """The archive calibrates on read what telemetry.decode calibrated at decode time: the
    same float64 bits, for every stored type, history entry and polynomial degree."""
    rng = np.random.default_rng(11)
    n = 3000
    stored = rng.integers(-3000, 3000, (n, 4)).astype(dtype)
    if np.dtype(dtype).kind == "f":
        stored = (stored * np.float32(1.37)).astype(dtype)
    hole = rng.random((n, 4)) < 0.1
    stored[hole] = missing
    passes = np.sort(rng.integers(1, 9, n))
    hist = [[2, "poly:1.5,0.37"], [4, "poly:-3.1,0.25,0.013,-1e-7"], [6, "poly:7.25"], [8, "poly:0.1,1e-3,2e-6"]]
    got = calibration.engineering(stored, hist, passes, missing)
    assert np.isnan(got[hole]).all()
    firsts = np.array([h[0] for h in hist])
    which = np.maximum(np.searchsorted(firsts, passes, side="right") - 1, 0)
    for k, (_, cal) in enumerate(hist):
        rows = which == k
        want = telemetry.polynomial(stored[rows].astype(stored.dtype.newbyteorder("=")),
                                    parse_calibration(cal))
        want[hole[rows]] = np.nan
        np.testing.assert_array_equal(got[rows].view(np.uint64)[~hole[rows]],
                                      want.view(np.uint64)[~hole[rows]])
    one = calibration.engineering(stored[:, 0], hist[:1], passes, missing)   # 1-D, one entry
    assert one.shape == (n,)
    np.testing.assert_array_equal(np.isnan(one), hole[:, 0])
