"""Telemetry dictionaries in a mission's own spreadsheet layout -> ccsdspy definitions (CCSDS 133.0-B).

Many missions keep their packet dictionary as a spreadsheet: one sheet per
packet type, one row per field (mnemonic, type code, start byte/bit, size in
bits, units, a conversion formula), and an overview sheet mapping packet names
to APIDs. :class:`SpreadsheetLayout` says which column is which;
:func:`import_dictionary` turns the sheets (exported as CSV) into ccsdspy
``FixedLength`` definitions with units and polynomial calibrations, and
:func:`export_dictionary` writes them as ccsdspy CSVs plus a mission TOML that
:func:`groundseg.mission.load_mission` reads.

Rules (each sheet is checked; a packet that breaks one is archived raw, with
the reason in :attr:`DictionaryImport.skipped`):

- the first ``header_rows`` rows are the 6-byte Space Packet primary header and
  must end at bit 48; ccsdspy decodes the primary header itself;
- every field is placed at its own start byte/bit (``bit_offset``), so gaps and
  overlaps in the sheet cannot shift later fields;
- type codes are a letter (U unsigned, I signed, F IEEE float) and byte-order
  digits: ascending ("1234") is big-endian, descending ("4321") little-endian;
  the order only applies to byte-aligned whole-byte fields wider than one byte
  (a bit-field or a single byte has no byte order);
- a field wider than 64 bits is an array of elements as wide as the type
  code's digit count ("U1": bytes, "U1234": 32-bit words), byte-aligned;
- fields whose mnemonic matches ``fill_field`` are spare bits: not decoded;
- a packet whose name matches ``fill_packet`` (a fill packet: no telemetry)
  or that has no telemetry field left gets no definition;
- an APID listed twice in the overview is ambiguous: both get no definition;
- a packet whose fields end in the layout's ``time_fields`` suffixes (year and
  day of year at least) gets ``[apids.time_fields]``: its onboard time;
- conversion formulas that are polynomials in x (``0.5*x - 3``,
  ``(x/4096.0)*2.5``, ``x^2``) become ``poly:a0,a1,...`` calibrations; others
  (logarithms, conditionals) are left as raw counts and listed in
  :attr:`DictionaryImport.unconverted`.
"""
from __future__ import annotations

import ast
import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from groundseg.mission import definitions

__all__ = ["SpreadsheetLayout", "CYGNSS_LAYOUT", "ImportedField", "ImportedPacket",
           "DictionaryImport", "import_dictionary", "import_cygnss_dictionary",
           "export_dictionary", "write_definitions", "polynomial_from_formula"]


@dataclass(frozen=True)
class SpreadsheetLayout:
    """Which spreadsheet column holds what (names compared with surrounding spaces stripped)."""
    overview: str = "Overview.csv"
    overview_name: str = "Packet Short Name"
    overview_apid: str = "APID_Decimal"
    overview_description: str = "Packet Description"
    sheet: str = "{name}.csv"              # the sheet file of packet {name}
    mnemonic: str = "Mnemonic"
    description: str = "Description"
    type: str = "Type"
    units: str = "Units"
    formula: str = "Conversion Formula"
    start_byte: str = "Start Byte"
    start_bit: str = "Start Bit"           # 0 = most significant bit of the byte
    size_bits: str = "Data Size"
    header_rows: int = 7                   # primary header rows at the top of every sheet
    fill_field: str = r"(^|_)FILL\d*$"     # spare-bit mnemonics (not decoded)
    fill_packet: str = r"(^|_)FILL($|_)"   # fill packets (no telemetry: archived raw)
    #: mnemonic endings of UTC calendar time fields -> [apids.time_fields] (year and day needed)
    time_fields: tuple = (("year", "_HDR_YEAR"), ("day", "_HDR_DAY"), ("hour", "_HDR_HOUR"),
                          ("minute", "_HDR_MIN"), ("second", "_HDR_SEC"), ("microsecond", "_HDR_USEC"))


#: CYGNSS's dictionary export (ccsdspy's tests/data/split/defs).
CYGNSS_LAYOUT = SpreadsheetLayout()


@dataclass(frozen=True)
class ImportedField:
    name: str
    data_type: str                 # ccsdspy: uint, int, float
    bit_length: int                # of one element for arrays
    bit_offset: int                # from the start of the packet (primary header included)
    byte_order: str = "big"
    array_shape: int | None = None
    units: str = ""
    calibration: str | None = None
    description: str = ""

    @property
    def csv_data_type(self) -> str:
        return f"{self.data_type}({self.array_shape})" if self.array_shape else self.data_type


@dataclass
class ImportedPacket:
    apid: int
    name: str
    description: str
    length: int                    # whole packet bytes
    fields: list[ImportedField]
    definition: object             # ccsdspy.FixedLength
    time_fields: dict[str, str] = field(default_factory=dict)   # {"year": mnemonic, ...}

    @property
    def units(self) -> dict[str, str]:
        return {f.name: f.units for f in self.fields if f.units}

    @property
    def calibration(self) -> dict[str, str]:
        return {f.name: f.calibration for f in self.fields if f.calibration}


@dataclass
class DictionaryImport:
    packets: dict[int, ImportedPacket] = field(default_factory=dict)
    skipped: dict[int, tuple[str, str]] = field(default_factory=dict)     # apid -> (name, reason)
    unconverted: dict[str, str] = field(default_factory=dict)             # field -> formula kept raw


class _Insufficient(Exception):
    pass


# -- conversion formulas -------------------------------------------------------------------

def _poly_add(a, b):
    n = max(len(a), len(b))
    return [(a[i] if i < len(a) else 0.0) + (b[i] if i < len(b) else 0.0) for i in range(n)]


def _poly_mul(a, b):
    out = [0.0] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            out[i + j] += x * y
    return out


def _poly(node) -> list[float]:
    if isinstance(node, ast.Expression):
        return _poly(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
            and not isinstance(node.value, bool):
        return [float(node.value)]
    if isinstance(node, ast.Name) and node.id.lower() == "x":
        return [0.0, 1.0]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        p = _poly(node.operand)
        return [-c for c in p] if isinstance(node.op, ast.USub) else p
    if isinstance(node, ast.BinOp):
        left, right = _poly(node.left), _poly(node.right)
        if isinstance(node.op, ast.Add):
            return _poly_add(left, right)
        if isinstance(node.op, ast.Sub):
            return _poly_add(left, [-c for c in right])
        if isinstance(node.op, ast.Mult):
            return _poly_mul(left, right)
        if isinstance(node.op, ast.Div) and len(right) == 1 and right[0] != 0:
            return [c / right[0] for c in left]
        if isinstance(node.op, ast.Pow) and len(right) == 1 and float(right[0]).is_integer() \
                and 0 <= right[0] <= 8:
            out = [1.0]
            for _ in range(int(right[0])):
                out = _poly_mul(out, left)
            return out
    raise ValueError("not a polynomial in x")


def polynomial_from_formula(formula: str) -> str | None:
    """``"0.5*x - 3"`` -> ``"poly:-3.0,0.5"``; None when the formula is not a polynomial in x.

    A bare list of numbers ("0 0.1") is read as the coefficients a0 a1 ... .
    """
    text = formula.strip()
    if not text:
        return None
    numbers = text.split()
    if len(numbers) > 1 and all(re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", n) for n in numbers):
        coeffs = [float(n) for n in numbers]
    else:
        try:
            coeffs = _poly(ast.parse(text.replace("^", "**"), mode="eval"))
        except (SyntaxError, ValueError, RecursionError):
            return None
    while len(coeffs) > 1 and coeffs[-1] == 0.0:
        coeffs.pop()
    if not all(math.isfinite(c) for c in coeffs):
        return None
    return "poly:" + ",".join(repr(c) for c in coeffs)


# -- sheets ----------------------------------------------------------------------------

def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        return [{h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header)}
                for row in reader if any(c.strip() for c in row)]


def _type_code(code: str, bits: int, offset: int, mnemonic: str):
    """(ccsdspy data_type, byte_order, element bits, array length or None)."""
    m = re.fullmatch(r"([UIF])(\d*)", code.strip().upper())
    if not m:
        raise _Insufficient(f"{mnemonic}: type code {code!r} is not U/I/F + byte-order digits")
    kind = {"U": "uint", "I": "int", "F": "float"}[m.group(1)]
    digits = m.group(2) or "1"
    order = "big"
    if len(digits) > 1:
        asc = "".join(sorted(digits))
        if digits == asc:
            order = "big"
        elif digits == asc[::-1]:
            order = "little"
        else:
            order = digits
    if bits > 64:
        element = 8 * len(digits)
        if offset % 8 or bits % element:
            raise _Insufficient(f"{mnemonic}: {bits}-bit block is not a whole number of "
                                f"byte-aligned {element}-bit elements")
        if kind == "float" and element not in (32, 64):
            raise _Insufficient(f"{mnemonic}: float elements of {element} bits")
        return kind, (order if element > 8 else "big"), element, bits // element
    if kind == "float" and bits not in (32, 64):
        raise _Insufficient(f"{mnemonic}: {bits}-bit float")
    whole_bytes = offset % 8 == 0 and bits % 8 == 0 and bits > 8
    if not whole_bytes:
        order = "big"          # a bit-field or a single byte has no byte order
    elif order not in ("big", "little") and len(order) != bits // 8:
        order = "big" if order.startswith("1") else "little"
    return kind, order, bits, None


def _import_sheet(rows: list[dict], layout: SpreadsheetLayout, fill_field: re.Pattern,
                  unconverted: dict) -> list[ImportedField]:
    if len(rows) <= layout.header_rows:
        raise _Insufficient("the sheet has no fields after the primary header")
    col = {"mnemonic": layout.mnemonic, "type": layout.type, "byte": layout.start_byte,
           "bit": layout.start_bit, "size": layout.size_bits}
    for key, name in col.items():
        if name not in rows[0]:
            raise _Insufficient(f"column {name!r} missing")
    fields = []
    header_end = 0
    for i, row in enumerate(rows):
        name = row[layout.mnemonic]
        try:
            offset = int(row[layout.start_byte]) * 8 + int(row[layout.start_bit])
            bits = int(row[layout.size_bits])
        except ValueError:
            raise _Insufficient(f"{name}: start byte/bit or size is not a number") from None
        if bits <= 0:
            raise _Insufficient(f"{name}: size {bits} bits")
        if i < layout.header_rows:
            header_end = max(header_end, offset + bits)
            continue
        if i == layout.header_rows and header_end != 48:
            raise _Insufficient(f"the first {layout.header_rows} rows end at bit {header_end}, "
                                "not at the end of the 48-bit primary header")
        if offset < 48:
            raise _Insufficient(f"{name}: starts inside the primary header")
        if fill_field.search(name):
            continue
        kind, order, element, count = _type_code(row[layout.type], bits, offset, name)
        formula = row.get(layout.formula, "")
        calibration = polynomial_from_formula(formula) if formula else None
        if formula and calibration is None:
            unconverted[name] = formula
        if kind == "float" and calibration is not None:
            calibration = None if calibration == "poly:0.0,1.0" else calibration
        fields.append(ImportedField(name=name, data_type=kind, bit_length=element, bit_offset=offset,
                                    byte_order=order, array_shape=count,
                                    units=row.get(layout.units, ""), calibration=calibration,
                                    description=" ".join(row.get(layout.description, "").split())))
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise _Insufficient(f"duplicate mnemonics {', '.join(dup)}")
    if not fields:
        raise _Insufficient("no telemetry fields (only header and spare bits)")
    return fields


def _definition(fields: list[ImportedField]):
    """A ccsdspy FixedLength, built where the mission loader builds its definitions."""
    return definitions.build_definition(
        [definitions.FieldSpec(name=f.name, data_type=f.data_type, bit_length=f.bit_length,
                               bit_offset=f.bit_offset, byte_order=f.byte_order,
                               shape=(int(f.array_shape),) if f.array_shape else None)
         for f in fields], variable=False)


def import_dictionary(defs_dir: str | Path, layout: SpreadsheetLayout = CYGNSS_LAYOUT) -> DictionaryImport:
    """Read a dictionary exported as CSV sheets; see the module docstring for the rules."""
    defs_dir = Path(defs_dir)
    overview_path = defs_dir / layout.overview
    if not overview_path.is_file():
        raise ValueError(f"{overview_path}: overview sheet not found (layout.overview)")
    overview = _read_csv(overview_path)
    if overview and (layout.overview_name not in overview[0] or layout.overview_apid not in overview[0]):
        raise ValueError(f"{overview_path}: columns {layout.overview_name!r} and "
                         f"{layout.overview_apid!r} expected; found {', '.join(overview[0])}")
    fill_field = re.compile(layout.fill_field)
    fill_packet = re.compile(layout.fill_packet)
    result = DictionaryImport()
    by_apid: dict[int, list[dict]] = {}
    for row in overview:
        try:
            apid = int(row[layout.overview_apid], 0)
        except ValueError:
            raise ValueError(f"{overview_path}: APID {row[layout.overview_apid]!r} of "
                             f"{row[layout.overview_name]!r} is not a number") from None
        by_apid.setdefault(apid, []).append(row)
    for apid in sorted(by_apid):
        rows = by_apid[apid]
        name = rows[0][layout.overview_name]
        if len(rows) > 1:
            names = " and ".join(r[layout.overview_name] for r in rows)
            result.skipped[apid] = (name, f"APID listed for {names}: ambiguous")
            continue
        if not 0 <= apid <= 2046:
            result.skipped[apid] = (name, f"APID {apid} out of range 0..2046")
            continue
        if fill_packet.search(name):
            result.skipped[apid] = (name, "fill packet: no telemetry")
            continue
        sheet = defs_dir / layout.sheet.format(name=name)
        if not sheet.is_file():
            result.skipped[apid] = (name, f"sheet {sheet.name} not found")
            continue
        try:
            fields = _import_sheet(_read_csv(sheet), layout, fill_field, result.unconverted)
            definition = _definition(fields)
        except _Insufficient as e:
            result.skipped[apid] = (name, str(e))
            continue
        end = max(f.bit_offset + f.bit_length * (f.array_shape or 1) for f in fields)
        times = {}
        for key, suffix in layout.time_fields:
            match = [f.name for f in fields if f.name.endswith(suffix) and not f.array_shape]
            if len(match) == 1:
                times[key] = match[0]
        if not {"year", "day"} <= set(times):
            times = {}
        result.packets[apid] = ImportedPacket(apid=apid, name=name,
                                              description=" ".join(rows[0].get(layout.overview_description, "").split()),
                                              length=(end + 7) // 8, fields=fields, definition=definition,
                                              time_fields=times)
    return result


def import_cygnss_dictionary(defs_dir: str | Path) -> dict[int, tuple[str, object, dict[str, str]]]:
    """CYGNSS's dictionary: ``{apid: (packet name, ccsdspy.FixedLength, {field: units})}``.

    APIDs whose sheet is insufficient (e.g. 391, the fill packet) are absent:
    they are archived raw.
    """
    result = import_dictionary(defs_dir, CYGNSS_LAYOUT)
    return {apid: (p.name, p.definition, p.units) for apid, p in result.packets.items()}


# -- writing ccsdspy CSVs and a mission file ---------------------------------------------------

_CSV_COLUMNS = ("name", "data_type", "bit_length", "bit_offset", "byte_order", "units", "calibration",
                "description")


def _csv_text(packet: ImportedPacket) -> str:
    import io
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(_CSV_COLUMNS)
    for f in packet.fields:
        w.writerow([f.name, f.csv_data_type, f.bit_length, f.bit_offset, f.byte_order, f.units,
                    f.calibration or "", f.description])
    return buf.getvalue()


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_definitions(result: DictionaryImport, out_dir: str | Path, *, mission_name: str,
                      spacecraft_id: int | None = None, description: str = "",
                      toml_name: str | None = None, header_comment: str = "") -> list[Path]:
    """Write one ccsdspy CSV per packet and a mission TOML (level "packets") into ``out_dir``.

    Returns the files written, the TOML last. Output is deterministic (sorted by
    APID), so regenerating gives identical files.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for apid in sorted(result.packets):
        p = result.packets[apid]
        path = out_dir / f"{p.name.lower()}.csv"
        path.write_text(_csv_text(p), encoding="utf-8")
        written.append(path)
    lines = []
    if header_comment:
        lines += [f"# {line}".rstrip() for line in header_comment.splitlines()]
    lines += ["[mission]", f"name = {_toml_string(mission_name)}"]
    if spacecraft_id is not None:
        lines.append(f"spacecraft_id = {spacecraft_id}")
    if description:
        lines.append(f"description = {_toml_string(description)}")
    lines.append("")
    lines.append("# level \"packets\": captures are Space Packet streams, so there is no [link] table")
    for apid in sorted(set(result.packets) | set(result.skipped)):
        lines.append("")
        if apid in result.packets:
            p = result.packets[apid]
            lines += ["[[apids]]", f"id = {apid}", f"name = {_toml_string(p.name.lower())}",
                      f"definition = {_toml_string(p.name.lower() + '.csv')}"]
            if p.time_fields:
                lines.append("[apids.time_fields]           # onboard time: UTC calendar fields")
                lines += [f"{k} = {_toml_string(v)}" for k, v in p.time_fields.items()]
        else:
            name, reason = result.skipped[apid]
            lines += [f"# no definition, archived raw: {reason}", "[[apids]]", f"id = {apid}",
                      f"name = {_toml_string(name.lower())}"]
    toml_path = out_dir / (toml_name or f"{mission_name}.toml")
    toml_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    written.append(toml_path)
    return written


def export_dictionary(defs_dir: str | Path, out_dir: str | Path, *,
                      layout: SpreadsheetLayout = CYGNSS_LAYOUT, mission_name: str,
                      spacecraft_id: int | None = None, description: str = "",
                      toml_name: str | None = None) -> tuple[DictionaryImport, list[Path]]:
    """The CLI's entry: import ``defs_dir`` and write ccsdspy CSVs + a mission TOML to ``out_dir``."""
    result = import_dictionary(defs_dir, layout)
    comment = (f"Generated by groundseg.dictionaries.export_dictionary from the dictionary in\n"
               f"{'/'.join(Path(defs_dir).resolve().parts[-2:])}/ ({len(result.packets)} packet definitions, "
               f"{len(result.skipped)} APIDs archived raw). Regenerate rather than edit.")
    files = write_definitions(result, out_dir, mission_name=mission_name, spacecraft_id=spacecraft_id,
                              description=description, toml_name=toml_name, header_comment=comment)
    return result, files
