"""The declarative key tables of groundseg.mission.keys against docs/mission-file.md, and the
vocabularies against the modules that own them."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from groundseg.coding.channel import INTERLEAVES, RS_PARITY
from groundseg.link import frame_types
from groundseg.mission import keys
from groundseg.sources.base import LEVEL_KIND

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "mission-file.md").read_text()
KIND_WORDS = {bool: "boolean", int: "integer", float: "number", str: "string", dict: "table"}


def _fmt(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def doc_table(heading: str) -> dict[str, list[str]]:
    """{key: cells} of the first table after the heading ``heading`` (one row may name several keys)."""
    m = re.search(rf"^#+ {re.escape(heading)}\s*$", DOC, re.M)
    assert m, f"docs/mission-file.md has no heading {heading}"
    rows, started = {}, False
    for line in DOC[m.end():].splitlines():
        if line.startswith("|"):
            started = True
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells[0] in ("key", "column") or set(cells[0]) <= set("-"):
                continue
            for name in re.findall(r"`([a-z_]+)`", cells[0]):
                rows[name] = cells
        elif started:
            break
    return rows


@pytest.mark.parametrize("heading", list(keys.TABLES))
def test_every_key_is_documented_with_its_type_default_and_allowed_values(heading):
    table = keys.TABLES[heading]
    doc = doc_table(heading)
    assert set(doc) == set(keys.names(table)), f"{heading}: documented {sorted(doc)} vs table {sorted(keys.names(table))}"
    for k in table:
        cells = doc[k.name]
        assert cells[1] == KIND_WORDS[k.kind], (heading, k.name, cells[1])
        default = cells[2]
        if k.default is keys.REQUIRED:
            assert default.startswith("required"), (heading, k.name, default)
        elif k.default is not None and not callable(k.default):
            assert f"`{_fmt(k.default)}`" in default, (heading, k.name, default)
        choices = k.choices_for({})
        if choices is not None:
            for c in choices:
                assert _fmt(c) in cells[3], (heading, k.name, c, cells[3])


def test_level_lists_match_the_table():
    coding = DOC[DOC.index("*coding keys*"):DOC.index("*frame keys*")]
    frame = DOC[DOC.index("*frame keys*"):DOC.index("**Names ignore case.**")]
    for k in keys.LINK_KEYS:
        if k.levels is not None and set(k.levels) <= set(keys.CODING_LEVELS):
            assert f"`{k.name}`" in coding, k.name
        elif k.levels == keys.FRAME_LEVELS:
            assert f"`{k.name}`" in frame, k.name


def test_csv_columns_are_documented():
    doc = doc_table("Packet definitions (ccsdspy CSV)")
    assert set(doc) == set(keys.CSV_REQUIRED + keys.CSV_OPTIONAL)


def test_vocabularies_come_from_their_owners():
    from groundseg.coding import convolutional
    assert keys.REED_SOLOMON == tuple(RS_PARITY) and keys.RS_PARITY_SYMBOLS == RS_PARITY
    assert keys.RS_DATA_SYMBOLS == {"255,223": 223, "255,239": 239}
    assert keys.INTERLEAVE_DEPTHS == tuple(INTERLEAVES)
    assert keys.LEVELS == tuple(LEVEL_KIND)
    assert keys.FRAME_TYPES == tuple(frame_types.FRAME_TYPES)
    assert keys.MAX_SCID == {"TM": 1023, "AOS": 255, "none": 65535}
    assert keys.MAX_VCID == {"TM": 7, "AOS": 63, "none": 0}
    assert keys.MAX_FRAME_LENGTH == {"TM": 2048, "AOS": 65535, "none": 65535}
    assert keys.CONVOLUTIONAL[1:] == convolutional.RATES and keys.CONVOLUTIONAL_VARIANTS == tuple(convolutional.VARIANTS)


def test_old_names_still_import():
    from groundseg.mission import (APID_NAME_RE, FIELD_NAME_RE, NAME_RE, REED_SOLOMON, ApidDef,  # noqa: F401
                                   FieldMeta, InsertZoneTime, LinkSettings, Mission, MissionError, TimeCode,
                                   VirtualChannel, build_definition, fixed_length_bytes, import_ccsdspy,
                                   load_mission, loads_mission, parse_calibration, parse_epoch,
                                   parse_time_spec)
    from groundseg.errors import GroundsegError
    assert issubclass(MissionError, GroundsegError) and issubclass(MissionError, ValueError)
