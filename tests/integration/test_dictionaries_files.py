"""Spreadsheet dictionaries -> ccsdspy definitions: rules, formulas, decoding, deterministic output - the tests that read or write files (tests/unit opens none)."""
from __future__ import annotations

import filecmp
import io
import struct
import numpy as np
import pytest
from groundseg.dictionaries import (CYGNSS_LAYOUT, SpreadsheetLayout, export_dictionary,
                                    import_cygnss_dictionary, import_dictionary)
from groundseg.mission import load_mission
from tests.unit.test_dictionaries import (CYGNSS_FIXTURE, bits, defs)  # noqa: F401


def test_rules(defs):
    result = import_dictionary(defs)
    assert sorted(result.packets) == [100]
    reasons = {apid: reason for apid, (_, reason) in result.skipped.items()}
    assert "fill packet" in reasons[101]
    assert "ambiguous" in reasons[102]
    assert "16-bit float" in reasons[103]
    assert "not found" in reasons[104]
    assert "primary header" in reasons[105]
    p = result.packets[100]
    by = {f.name: f for f in p.fields}
    assert "ENG_A_FILL1" not in by and "ENG_A_HDR_APID" not in by
    assert by["ENG_A_LE16"].byte_order == "little" and by["ENG_A_LEF"].byte_order == "little"
    assert by["ENG_A_VOLT"].byte_order == "big" and by["ENG_A_BEF"].byte_order == "big"
    assert (by["ENG_A_BLOCK"].array_shape, by["ENG_A_BLOCK"].bit_length) == (None, 32)   # <= 64 bits
    assert (by["ENG_A_WORDS"].array_shape, by["ENG_A_WORDS"].bit_length) == (3, 32)
    assert by["ENG_A_VOLT"].calibration == "poly:-3.0,0.5" and by["ENG_A_VOLT"].units == "V"
    assert by["ENG_A_TEMP"].calibration is None and "ENG_A_TEMP" in result.unconverted
    assert by["ENG_A_LE16"].calibration == "poly:0.0,0.25"
    assert p.length == 40 and p.description == "eng_a packet, test"

def test_imported_definition_decodes_like_the_reference(defs):
    p = import_dictionary(defs).packets[100]
    rng = np.random.default_rng(5)
    packets = []
    for i in range(6):
        body = bytearray(rng.integers(0, 256, 34, dtype=np.uint8).tobytes())
        body[6:10] = struct.pack("<f", 1.5 * i)
        body[10:18] = struct.pack(">d", -2.25 * i)
        packets.append(struct.pack(">HHH", 0x0800 | 100, 0xC000 | i, 33) + bytes(body))
    fields = p.definition.load(io.BytesIO(b"".join(packets)))
    for i, pk in enumerate(packets):
        assert fields["ENG_A_MODE"][i] == bits(pk, 48, 3)
        assert fields["ENG_A_FLAG"][i] == bits(pk, 51, 1)
        assert fields["ENG_A_VOLT"][i] == bits(pk, 56, 12)
        t = bits(pk, 68, 12)
        assert fields["ENG_A_TEMP"][i] == (t - 4096 if t & 0x800 else t)
        assert fields["ENG_A_LE16"][i] == int.from_bytes(pk[10:12], "little")
        assert fields["ENG_A_LEF"][i] == pytest.approx(1.5 * i)
        assert fields["ENG_A_BEF"][i] == pytest.approx(-2.25 * i)
        assert fields["ENG_A_BLOCK"][i] == int.from_bytes(pk[24:28], "big")
        assert fields["ENG_A_WORDS"][i].tolist() == [int.from_bytes(pk[28 + 4 * k:32 + 4 * k], "big")
                                                    for k in range(3)]

def test_export_is_loadable_and_deterministic(defs, tmp_path):
    result, files = export_dictionary(defs, tmp_path / "out1", mission_name="testsat")
    assert files[-1].name == "testsat.toml" and [f.name for f in files[:-1]] == ["eng_a.csv"]
    m = load_mission(files[-1])
    assert m.level == "packets" and m.link is None
    assert m.apids[100].packet_length == 40 and m.apids[101].packet_definition is None
    assert m.apids[100].fields["ENG_A_VOLT"].calibration == "poly:-3.0,0.5"
    assert "# no definition, archived raw: fill packet" in files[-1].read_text()
    _, files2 = export_dictionary(defs, tmp_path / "out2", mission_name="testsat")
    for a, b in zip(files, files2):
        assert a.read_bytes() == b.read_bytes()

def test_layout_is_configurable(defs, tmp_path):
    # the same sheets under other column names, mapped by a layout
    other = tmp_path / "other"
    other.mkdir()
    for f in defs.iterdir():
        (other / f.name).write_text(f.read_text().replace("Mnemonic       ", "Name").replace("Data Size", "Bits"))
    layout = SpreadsheetLayout(mnemonic="Name", size_bits="Bits")
    assert sorted(import_dictionary(other, layout).packets) == [100]
    assert all("column 'Mnemonic' missing" in r or "fill" in r or "ambiguous" in r or "not found" in r
               for _, r in import_dictionary(other, CYGNSS_LAYOUT).skipped.values())

def test_cygnss_fixture_regenerates_identically(captures, tmp_path):
    defs = captures / "cygnss-packets" / "defs"
    _, files = export_dictionary(defs, tmp_path, mission_name="cygnss",
                                 description="CYGNSS (NASA) Level-0 Space Packets; dictionary from "
                                             "ccsdspy tests/data/split/defs")
    committed = sorted(p.name for p in CYGNSS_FIXTURE.iterdir())
    assert sorted(f.name for f in files) == committed
    match, mismatch, errors = filecmp.cmpfiles(CYGNSS_FIXTURE, tmp_path, committed, shallow=False)
    assert mismatch == [] and errors == []

def test_import_cygnss_dictionary(captures):
    defs = import_cygnss_dictionary(captures / "cygnss-packets" / "defs")
    assert 391 not in defs and 1408 not in defs            # fill packet; APID listed twice
    name, definition, units = defs[384]
    assert name == "ENG_LZ" and units["LZ_EPS_LVPS_3P3V"] == "V"
    assert {132, 134, 389, 384, 386, 392, 393, 394, 1313} <= set(defs)
