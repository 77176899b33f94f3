"""Spreadsheet dictionaries -> ccsdspy definitions: rules, formulas, decoding, deterministic output."""
from __future__ import annotations

from pathlib import Path

import pytest

from groundseg.dictionaries import (polynomial_from_formula)
from groundseg.mission import parse_calibration

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
