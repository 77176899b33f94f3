"""Mission files: every fixture loads; every kind of mistake names the file, the key and what is allowed."""
from __future__ import annotations

from pathlib import Path

import pytest

from groundseg.mission import (MissionError, load_mission, parse_calibration, parse_time_spec)

ROOT = Path(__file__).resolve().parents[2]
MISSIONS = ROOT / "fixtures" / "missions"

BASE = """
[mission]
name = "test-sat"
spacecraft_id = 42

[link]
frame_type = "TM"
frame_length = 1115
reed_solomon = "255,223"
interleave = 5
fecf = true
ocf = true

[[virtual_channels]]
id = 0
name = "realtime"

[[apids]]
id = 100
name = "hk"
definition = "hk.csv"
time = "cuc:4,2"
"""

HK_CSV = """name,data_type,bit_length,units,calibration
coarse,uint,32,s,
fine,uint,16,,
volts,uint,16,V,"poly:0.0,0.001"
"""


def write(tmp_path: Path, text: str, csv: str | None = HK_CSV, name: str = "mission.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    if csv is not None:
        (tmp_path / "hk.csv").write_text(csv)
    return path


def error(tmp_path: Path, text: str, csv: str | None = HK_CSV) -> MissionError:
    path = write(tmp_path, text, csv)
    with pytest.raises(MissionError) as exc:
        load_mission(path)
    message = str(exc.value)
    assert message.startswith(str(path) + ":"), message
    assert isinstance(exc.value, ValueError)
    return exc.value


@pytest.mark.parametrize("path", sorted(MISSIONS.rglob("*.toml")), ids=lambda p: p.name)
def test_every_fixture_mission_loads(path):
    m = load_mission(path)
    assert m.name and m.source_text == path.read_text()
    assert m.path == path
    for a in m.apids.values():
        if a.definition is not None:
            assert a.definition.is_file() and a.packet_definition is not None


def _aos_izt(length: int, order: str) -> str:
    return f"""
[mission]
name = "aos-sat"
spacecraft_id = 237
[link]
frame_type = "AOS"
frame_length = 892
interleave = 4
insert_zone = 8
level = "frames"
[link.insert_zone_time]
offset = 0
length = {length}
byteorder = "{order}"
unit = 1.52587890625e-05
epoch = "2019-12-31T16:00:00Z"
"""


def test_time_spec_grammar():
    t = parse_time_spec("cuc:4,2,pfield", 8)
    assert (t.kind, t.coarse, t.fine, t.pfield, t.offset, t.length) == ("cuc", 4, 2, True, 8, 7)
    assert parse_time_spec("cds").length == 6 and parse_time_spec("cds").spec == "cds:16,0"
    assert parse_time_spec("cds:24,2").length == 9
    assert parse_time_spec("cds:16,16").spec == "cds:16,2"     # bits are accepted too
    for bad in ("cuc", "cds:20", "cds:16,3", "cuc:4", "utc"):
        with pytest.raises(ValueError):
            parse_time_spec(bad)


def test_calibration_grammar():
    assert parse_calibration("poly:1,2.5,-3e-2") == (1.0, 2.5, -0.03)
    for bad in ("poly:", "poly:a", "linear:1,2", "poly:nan"):
        with pytest.raises(ValueError):
            parse_calibration(bad)


def test_tianwen2_formats_share_one_archive():
    hdr = load_mission(MISSIONS / "tianwen2-hdr.toml")
    ldr = load_mission(MISSIONS / "tianwen2-ldr.toml")
    assert hdr.name == ldr.name == "tianwen-2"
    assert (hdr.link.frame_length, ldr.link.frame_length) == (892, 220)
    assert hdr.link.insert_zone_time == ldr.link.insert_zone_time


def test_demo_mission_matches_its_brief():
    m = load_mission(MISSIONS / "demo.toml")
    assert (m.name, m.spacecraft_id, m.link.frame_length, m.link.interleave) == ("demo", 42, 1115, 5)
    assert m.link.fecf and m.link.ocf and m.link.randomized and m.link.dual_basis
    assert m.apids[200].packet_definition is None
    assert all(a.time == "cuc:4,2" for a in m.apids.values() if a.packet_definition is not None)


def test_importing_prints_nothing():
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-c", "import groundseg.telemetry, groundseg.dictionaries"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""


# --------------------------------------------------------------------------- levels

FRAMES_ONLY = """
[mission]
name = "frames-sat"
spacecraft_id = 42
[link]
level = "frames"
frame_length = 1115
fecf = true
"""


def test_configs_are_the_pipelines():
    from groundseg import pipeline
    from groundseg.mission import configs
    assert pipeline.channel_config is configs.channel_config and pipeline.link_config is configs.link_config
    m = load_mission(MISSIONS / "tianwen2-hdr.toml")
    cfg = configs.link_config(m)
    assert (cfg.frame_type, cfg.frame_length, cfg.spacecraft_id, cfg.ocf) == \
        ("AOS", 892, m.spacecraft_id, m.ocf_vcids())


# --------------------------------------------------------------------------- bad input (issue 8)
