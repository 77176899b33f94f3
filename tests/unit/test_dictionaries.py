"""Spreadsheet dictionaries -> ccsdspy definitions: rules, formulas, decoding, deterministic output."""
from __future__ import annotations

import filecmp
import io
import struct
from pathlib import Path

import numpy as np
import pytest

from groundseg.dictionaries import (CYGNSS_LAYOUT, SpreadsheetLayout, export_dictionary,
                                    import_cygnss_dictionary, import_dictionary,
                                    polynomial_from_formula)
from groundseg.mission import load_mission, parse_calibration

ROOT = Path(__file__).resolve().parents[2]
CYGNSS_FIXTURE = ROOT / "fixtures" / "missions" / "cygnss"

HEADER = """Mnemonic       ,Description                             ,Type           ,Units,Conversion,Subsystem,Start Byte,Start Bit  ,Data Size,Conversion Formula,States
{p}_HDR_VER,version,U1,,HEX,{p},0,0,3,,
{p}_HDR_TYPE,type,U1,,HEX,{p},0,3,1,,
{p}_HDR_SHDR,sec hdr,U1,,HEX,{p},0,4,1,,
{p}_HDR_APID,apid,U12,,HEX,{p},0,5,11,,
{p}_HDR_GRP,grouping,U1,,HEX,{p},2,0,2,,
{p}_HDR_SEQ,count,U12,,HEX,{p},2,2,14,,
{p}_HDR_LEN,length,U12,,HEX,{p},4,0,16,,
"""

SHEETS = {
    # name: (apid, rows after the header)
    "ENG_A": (100, """ENG_A_MODE,mode,U1,,HEX,ENG_A,6,0,3,,
ENG_A_FLAG,flag,U1,,HEX,ENG_A,6,3,1,,
ENG_A_FILL1,spare,U1,,HEX,ENG_A,6,4,4,,
ENG_A_VOLT,bus voltage,U12,V,HEX,ENG_A,7,0,12,"0.5*x - 3",
ENG_A_TEMP,temperature,I12,C,HEX,ENG_A,8,4,12,"iif((x .gt. 4), LN(x), 999)",
ENG_A_LE16,little word,U21,,HEX,ENG_A,10,0,16,x/4,
ENG_A_LEF,little float,F4321,m,HEX,ENG_A,12,0,32,,
ENG_A_BEF,big double,F12345678,s,HEX,ENG_A,16,0,64,,
ENG_A_BLOCK,opaque bytes,U1,,HEX,ENG_A,24,0,32,,
ENG_A_WORDS,words,U1234,,HEX,ENG_A,28,0,96,,
"""),
    "ENG_FILL": (101, """ENG_FILL_DATA,fill,U1,,HEX,ENG_FILL,6,0,80,,
"""),
    "DUP_ONE": (102, """DUP_ONE_X,x,U1,,HEX,DUP_ONE,6,0,8,,
"""),
    "DUP_TWO": (102, """DUP_TWO_X,x,U1,,HEX,DUP_TWO,6,0,8,,
"""),
    "BAD_FLOAT": (103, """BAD_FLOAT_X,x,F12,,HEX,BAD_FLOAT,6,0,16,,
"""),
    "NO_SHEET": (104, None),
}


@pytest.fixture()
def defs(tmp_path: Path) -> Path:
    d = tmp_path / "defs"
    d.mkdir()
    lines = ['Packet Short Name,APID,Packet Size (Bytes),Packet Description,APID_Decimal']
    for name, (apid, rows) in SHEETS.items():
        lines.append(f'{name},{hex(apid)},0,"{name.lower()} packet, test",{apid}')
        if rows is not None:
            (d / f"{name}.csv").write_text(HEADER.format(p=name) + rows)
    (d / "Overview.csv").write_text("\n".join(lines) + "\n")
    # a sheet whose header rows do not describe the 6-byte primary header
    bad = HEADER.format(p="BAD_HDR").replace("4,0,16", "4,0,8")
    (d / "BAD_HDR.csv").write_text(bad + "BAD_HDR_X,x,U1,,HEX,BAD_HDR,6,0,8,,\n")
    (d / "Overview.csv").write_text((d / "Overview.csv").read_text() + "BAD_HDR,0x69,0,bad,105\n")
    return d


def bits(packet: bytes, offset: int, size: int) -> int:
    """Reference: the unsigned big-endian bit field at ``offset`` (bit 0 = MSB of byte 0)."""
    whole = int.from_bytes(packet, "big")
    return (whole >> (len(packet) * 8 - offset - size)) & ((1 << size) - 1)


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


@pytest.mark.parametrize("formula", [
    "0.00162045889101338*x", "0.00352890422778257*x - 0.0692778257118206",
    "7.9305966991113E-06*x - 0.000544451967837494", "x/24.0", "(0.41806894123602*x+1081.74018764279)/1000.0",
    "(x/4096.0)*2.5", "(x*2.0)+2", "x+1", "(X*0.140)+22.1", "x*1610E-6", "2*x^2 - x + 1", "-(x-3)^3",
])
def test_polynomial_formulas_evaluate_like_the_formula(formula):
    coeffs = parse_calibration(polynomial_from_formula(formula))
    for x in (0.0, 1.0, 7.0, 100.0, 4095.0):
        reference = eval(formula.replace("^", "**").replace("X", "x"), {}, {"x": x})
        assert sum(c * x ** k for k, c in enumerate(coeffs)) == pytest.approx(reference, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("formula", [
    "iif((x .gt. 0), (10*(LN(x)/LN(10))), 0)", "LN(x)", "1/x", "x**0.5", "__import__('os')", "", "y+1",
])
def test_non_polynomials_are_left_raw(formula):
    assert polynomial_from_formula(formula) is None


def test_coefficient_list():
    assert polynomial_from_formula("0 0.1") == "poly:0.0,0.1"


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
