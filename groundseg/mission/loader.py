"""Mission files: TOML + ccsdspy CSV -> a validated :class:`~groundseg.mission.model.Mission`.

The file describes one spacecraft downlink: the channel coding (CCSDS 131.0-B:
ASM, pseudo-randomiser, Reed-Solomon, interleave, virtual fill), the transfer
frames (TM 132.0-B or AOS 732.0-B), the virtual channels, and per APID the
Space Packet (133.0-B) field layout as a ccsdspy CSV plus the onboard time code
(CUC or CDS, 301.0-B). Every key is checked before any decoding starts; each
mistake raises :class:`MissionError` naming the file, the key and what is
allowed. Keys, types, defaults and allowed values are the tables of
:mod:`groundseg.mission.keys`, which the loader walks; constraints between keys
are checked only for the decoding levels that use them (a mission at level
"frames" is not held to its Reed-Solomon code). The reference for every key is
``docs/mission-file.md``.
"""
from __future__ import annotations

import csv
import difflib
import math
import re
import tomllib
from pathlib import Path
from typing import Any

from groundseg.link import frame_types
from groundseg.mission import definitions as defs
from groundseg.mission.keys import (APID_KEYS, BYTE_ORDERS, CCSDS_EPOCH, CODING_LEVELS, CSV_OPTIONAL,
                                    DEFAULT_FRAME_TYPE,
                                    CSV_REQUIRED, FRAME_LEVELS, INSERT_ZONE_TIME_KEYS, LINK_KEYS,
                                    MAX_PACKET_BYTES, MISSION_KEYS, REQUIRED, RS_DATA_SYMBOLS,
                                    TIME_FIELDS_KEYS, TOP_KEYS, VIRTUAL_CHANNEL_KEYS, Key, names)
from groundseg.mission.model import (ApidDef, FieldMeta, InsertZoneTime, LinkSettings, Mission,
                                     MissionError, VirtualChannel, parse_calibration, parse_epoch,
                                     parse_time_spec)

NAME_RE = re.compile(r"^[a-z0-9_-]+$")
APID_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
FIELD_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-\[\],.]*$")
ASM_RE = re.compile(r"(?:[0-9A-Fa-f]{2}){1,8}")
#: deepest nesting of arrays and inline tables a mission file may hold (tomllib recurses)
MAX_NESTING = 64


# ---------------------------------------------------------------------------------------
# loading

def load_mission(path: str | Path) -> Mission:
    """Read and validate a mission file; raises :class:`MissionError` on any mistake."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MissionError(path, "", "mission file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise MissionError(path, "", f"cannot read the mission file: {e}") from None
    return loads_mission(text, path)


def loads_mission(text: str, path: str | Path = "<string>") -> Mission:
    """Validate mission TOML given as text; CSV paths resolve against ``path``'s folder."""
    path = Path(path)
    depth = nesting_depth(text)
    if depth > MAX_NESTING:
        raise MissionError(path, "", f"not a mission file: arrays or inline tables nested {depth} deep "
                                     f"(at most {MAX_NESTING})")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise MissionError(path, "", f"not valid TOML: {e}") from None
    except RecursionError:
        raise MissionError(path, "", "not a mission file: nested too deep") from None
    return _Loader(path, doc, text).load()


def nesting_depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` in TOML values (strings and comments skipped, table
    headers counted as 1): an upper bound of what tomllib will recurse into. Linear time."""
    depth = best = 0
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            triple = text.startswith(c * 3, i)
            quote = c * 3 if triple else c
            j = i + len(quote)
            while j < n:
                if text[j] == "\\" and c == '"':
                    j += 2
                    continue
                if text.startswith(quote, j):
                    break
                if not triple and text[j] == "\n":
                    break
                j += 1
            i = j + len(quote)
            continue
        if c == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if c in "[{":
            depth += 1
            best = max(best, depth)
        elif c in "]}":
            depth = max(0, depth - 1)
        i += 1
    return best


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "{...}"
    if isinstance(value, list):
        return "[...]"
    return str(value)


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            dict: "a table", list: "an array"}.get(type(value), type(value).__name__)


_KIND_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", dict: "a table"}


class _Loader:
    def __init__(self, path: Path, doc: dict, text: str):
        self.path = path
        self.doc = doc
        self.text = text

    # -- small checkers ---------------------------------------------------------------
    def fail(self, key: str, message: str):
        raise MissionError(self.path, key.strip(), message)

    def unknown_keys(self, table: dict, allowed: tuple, where: str):
        for k in table:
            if k not in allowed:
                hint = difflib.get_close_matches(k, allowed, n=1)
                suggestion = f"did you mean {hint[0]!r}? " if hint else ""
                self.fail(f"{where} {k}", f"unknown key; {suggestion}allowed: {', '.join(allowed)}")

    def check_type(self, value, kind: type, where: str, key: str):
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            self.fail(f"{where} {key} = {_fmt(value)}", f"must be {_KIND_NAMES[kind]}, not {_type_name(value)}")

    def table(self, t: dict, keys: tuple[Key, ...], where: str, context: dict | None = None,
              required: dict | None = None) -> dict:
        """Walk a key table: unknown keys, types, defaults, allowed values and ranges.

        ``context``: values the defaults and ranges may read (prefixed ``_``).
        ``required``: {key: bool} overriding a key's own REQUIRED default."""
        self.unknown_keys(t, names(keys), where)
        values = dict(context or {})
        for k in keys:
            need = k.default is REQUIRED if required is None or k.name not in required else required[k.name]
            if k.name not in t:
                if need:
                    self.fail(f"{where} {k.name}", "missing (required)")
                values[k.name] = None if k.default is REQUIRED else k.default_for(values)
                continue
            value = t[k.name]
            self.check_type(value, k.kind, where, k.name)
            choices = k.choices_for(values)
            if choices is not None and value not in choices:
                hint = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
                suggestion = f" (did you mean {_fmt(hint[0])}?)" if hint and isinstance(value, str) else ""
                self.fail(f"{where} {k.name} = {_fmt(value)}",
                          f"must be one of {', '.join(_fmt(a) for a in choices)}{suggestion}")
            rng = k.range_for(values)
            if rng is not None and not rng[0] <= value <= rng[1]:
                self.fail(f"{where} {k.name} = {value}", f"must be in {rng[0]}..{rng[1]}")
            values[k.name] = value
        return values

    def epoch(self, value: str, where: str, key: str) -> tuple[str, float]:
        try:
            return value, parse_epoch(value)
        except ValueError:
            self.fail(f"{where} {key} = {_fmt(value)}",
                      'must be an ISO 8601 UTC time such as "1958-01-01T00:00:00Z"')

    # -- tables ---------------------------------------------------------------------------
    def load(self) -> Mission:
        doc = self.doc
        self.unknown_keys(doc, TOP_KEYS, "")
        if "mission" not in doc:
            self.fail("[mission]", "missing (required: name and spacecraft_id)")
        for key in ("mission", "link"):
            if key in doc:
                self.check_type(doc[key], dict, "", key)
        m = self.table(doc["mission"], MISSION_KEYS, "[mission]")
        name = m["name"]
        if not NAME_RE.match(name) or len(name) > 64:
            self.fail(f"[mission] name = {_fmt(name)}",
                      "only lower-case letters, digits, '_' and '-' (1..64 characters): "
                      "it names the archive file")
        link = self.link(doc["link"]) if "link" in doc else None
        ft = frame_types.get(link.frame_type if link is not None else DEFAULT_FRAME_TYPE)
        scid = m["spacecraft_id"]
        if scid is None and link is not None and link.level in FRAME_LEVELS:
            self.fail("[mission] spacecraft_id", "missing (required)")
        if scid is not None and not 0 <= scid <= ft.max_scid:
            self.fail(f"[mission] spacecraft_id = {scid}",
                      f"{ft.name} frames carry a {ft.scid_bits}-bit SCID: must be in 0..{ft.max_scid}")
        time_epoch, epoch_unix = self.epoch(m["time_epoch"], "[mission]", "time_epoch")
        vcs = self.virtual_channels(doc.get("virtual_channels"), link)
        apids = self.apids(doc.get("apids"), time_epoch)
        modulation = self.modulation(doc.get("modulation"))
        if link is not None and link.level == "iq" and modulation is None:
            self.fail("[modulation]", 'missing: level = "iq" demodulates with the table\'s scheme and '
                                      "symbol_rate (docs/sdr.md)")
        return Mission(name=name, spacecraft_id=scid, link=link, virtual_channels=vcs, apids=apids,
                       source_text=self.text, path=self.path, time_epoch=time_epoch,
                       description=m["description"], modulation=modulation)

    def modulation(self, t):
        """[modulation]: validated by groundseg.modulation (its keys are documented in docs/sdr.md)."""
        if t is None:
            return None
        self.check_type(t, dict, "", "modulation")
        from groundseg.modulation import modulation_from_table
        try:
            return modulation_from_table(t, "[modulation]")
        except ValueError as exc:
            raise MissionError(self.path, "[modulation]",
                               str(exc).removeprefix("[modulation]: ")) from None

    def link(self, t: dict) -> LinkSettings:
        w = "[link]"
        level = t.get("level", "bits")
        # frame keys are required only where frames are read
        v = self.table(t, LINK_KEYS, w, required={"frame_length": level in FRAME_LEVELS})
        if not ASM_RE.fullmatch(v["asm"]):
            self.fail(f"{w} asm = {_fmt(v['asm'])}",
                      "must be the marker as hex digits, 2..16 of them in pairs (e.g. \"1ACFFC1D\")")
        bit_rate = v["bit_rate"]
        if not math.isfinite(bit_rate) or bit_rate < 0:
            self.fail(f"{w} bit_rate = {bit_rate}", "must be a finite number >= 0 (0 = unknown)")
        izt = None
        if v["insert_zone_time"] is not None:
            izt = self.insert_zone_time(v["insert_zone_time"], v["insert_zone"])
        settings = LinkSettings(
            frame_type=v["frame_type"], frame_length=v["frame_length"] or 0, asm=v["asm"].upper(),
            randomized=v["randomized"], reed_solomon=v["reed_solomon"], interleave=v["interleave"],
            dual_basis=v["dual_basis"], convolutional=v["convolutional"],
            convolutional_variant=v["convolutional_variant"], differential=v["differential"],
            symbols=v["symbols"], level=v["level"], fecf=v["fecf"], ocf=v["ocf"],
            insert_zone=v["insert_zone"], insert_zone_time=izt, fhec=v["fhec"],
            tm_secondary_header=v["tm_secondary_header"], idle_vcid=v["idle_vcid"],
            derandomize=v["derandomize"], asm_max_bit_errors=v["asm_max_bit_errors"],
            bit_rate=bit_rate, symbol_ambiguity=v["symbol_ambiguity"], sync_verify=v["sync_verify"],
            sync_flywheel=v["sync_flywheel"])
        check_link(settings, settings.level, self.path)
        return settings

    def insert_zone_time(self, t: dict, insert_zone: int) -> InsertZoneTime:
        w = "[link.insert_zone_time]"
        if insert_zone == 0:
            self.unknown_keys(t, names(INSERT_ZONE_TIME_KEYS), w)
            self.fail(w, "a time stamp in the insert zone needs [link] insert_zone > 0")
        v = self.table(t, INSERT_ZONE_TIME_KEYS, w, {"_insert_zone": insert_zone})
        code, offset = v["code"], v["offset"]
        if code is not None:
            try:
                tc = parse_time_spec(code, 0)
            except ValueError as e:
                self.fail(f"{w} code = {_fmt(code)}", str(e))
            if tc.pfield:
                self.fail(f"{w} code = {_fmt(code)}", "an insert-zone time code has a fixed format: "
                                                      "no P-field")
            code = tc.spec
            if "length" in t and t["length"] != tc.length:
                self.fail(f"{w} length = {_fmt(t['length'])}",
                          f"the time code {code} is {tc.length} bytes long")
            length = tc.length
        else:
            length = v["length"]
            if length is None:
                self.fail(f"{w} length", "missing (required)")
        if offset + length > insert_zone:
            self.fail(f"{w} length = {length}",
                      f"offset {offset} + length {length} exceeds the {insert_zone}-byte insert zone")
        unit = v["unit"]
        if not math.isfinite(unit) or unit <= 0:
            self.fail(f"{w} unit = {unit}", "must be a positive number of seconds per count")
        epoch, epoch_unix = self.epoch(v["epoch"], w, "epoch")
        return InsertZoneTime(offset=offset, length=length, byteorder=v["byteorder"], unit=float(unit),
                              epoch=epoch, epoch_unix=epoch_unix, code=code, scale=v["scale"])

    def _array(self, value, key: str) -> list[dict]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.fail(f"{key}", f"must be an array of tables ([[{key}]]), not {_type_name(value)}")
        return value

    def virtual_channels(self, value, link: LinkSettings | None) -> dict[int, VirtualChannel]:
        # without a [link] any frame type may carry the packets: the widest VCID range
        ft = frame_types.get(link.frame_type) if link is not None else \
            max(frame_types.FRAME_TYPES.values(), key=lambda f: f.n_vcids)
        out: dict[int, VirtualChannel] = {}
        seen: set[str] = set()
        for i, t in enumerate(self._array(value, "virtual_channels")):
            v = self.table(t, VIRTUAL_CHANNEL_KEYS, f"[[virtual_channels]] #{i + 1}",
                           {"_max_vcid": ft.n_vcids - 1})
            vcid = v["id"]
            w = f"[[virtual_channels]] id = {vcid}:"
            if vcid in out:
                self.fail(f"[[virtual_channels]] id = {vcid}", "duplicate virtual channel id")
            name = v["name"]
            if name.lower() in seen:
                self.fail(f"{w} name = {_fmt(name)}", "duplicate virtual channel name (names ignore case)")
            seen.add(name.lower())
            data, ocf = v["data"], v["ocf"]
            if ocf is not None and link is not None and ft.ocf_per_vc(not ocf, ocf) != ocf:
                self.fail(f"{w} ocf = {_fmt(ocf)}",
                          f"{ft.name} frames flag the OCF in every header: set [link] ocf instead "
                          "(per-VC ocf is for "
                          + ", ".join(f.name for f in frame_types.FRAME_TYPES.values()
                                      if f.ocf_per_vc(False, True)) + ")")
            if link is not None and link.idle_vcid == vcid and data != "none":
                self.fail(f"{w} data = {_fmt(data)}",
                          f"VC {vcid} is the idle VC ([link] idle_vcid): its data must be \"none\"")
            out[vcid] = VirtualChannel(id=vcid, name=name, data=data, ocf=ocf, description=v["description"])
        return out

    def apids(self, value, time_epoch: str) -> dict[int, ApidDef]:
        out: dict[int, ApidDef] = {}
        seen: set[str] = set()
        for i, t in enumerate(self._array(value, "apids")):
            v = self.table(t, APID_KEYS, f"[[apids]] #{i + 1}", {"_time_epoch": time_epoch})
            apid = v["id"]
            w = f"[[apids]] id = {apid}:"
            if apid in out:
                self.fail(f"[[apids]] id = {apid}", "duplicate APID")
            name = v["name"]
            if not APID_NAME_RE.match(name) or name.isdigit():
                self.fail(f"{w} name = {_fmt(name)}",
                          "letters, digits, '_' and '-' only, and not only digits "
                          "(a number is read as an APID)")
            if name.lower() in seen:
                self.fail(f"{w} name = {_fmt(name)}", "duplicate APID name (names ignore case)")
            seen.add(name.lower())
            a = ApidDef(id=apid, name=name, description=v["description"], time_scale=v["time_scale"])
            a.epoch, a.epoch_unix = self.epoch(v["epoch"], w, "epoch")
            if v["definition"] is not None:
                self.definition(a, v["definition"], w)
            plen = v["packet_length"]
            if plen is not None:
                if a.packet_definition is None or a.variable:
                    self.fail(f"{w} packet_length = {plen}",
                              "applies only to an APID with a fixed-length definition")
                if plen < a.packet_length:
                    self.fail(f"{w} packet_length = {plen}",
                              f"shorter than the {a.packet_length} bytes its definition describes")
                a.packet_length = plen
            offset = v["time_offset"]
            if v["time"] is not None:
                spec = v["time"]
                try:
                    a.time_code = parse_time_spec(spec, offset)
                except ValueError as e:
                    self.fail(f"{w} time = {_fmt(spec)}", str(e))
                a.time = spec
                end = a.time_code.offset + a.time_code.length
                limit = a.packet_length if a.packet_length is not None else MAX_PACKET_BYTES
                if end > limit:
                    self.fail(f"{w} time = {_fmt(spec)}",
                              f"the time code (bytes {a.time_code.offset}..{end - 1}) does not fit "
                              f"the {limit}-byte packet")
            elif "time_offset" in t:
                self.fail(f"{w} time_offset = {offset}", "needs a time code: set time too")
            if v["time_fields"] is not None:
                a.time_fields = self.time_fields(v["time_fields"], a, apid)
            out[apid] = a
        return out

    def time_fields(self, t: dict, a: ApidDef, apid: int) -> dict[str, str]:
        w = f"[apids.time_fields] (APID {apid})"
        self.unknown_keys(t, names(TIME_FIELDS_KEYS), w)
        if a.time_code is not None:
            self.fail(w, "give either time (a time code) or time_fields, not both")
        if a.packet_definition is None:
            self.fail(w, "time fields are fields of the packet: the APID needs a definition")
        v = self.table(t, TIME_FIELDS_KEYS, w)
        out = {}
        for k in TIME_FIELDS_KEYS:
            name = v[k.name]
            if name is None:
                continue
            try:
                out[k.name] = a.field_name(name)
            except ValueError:
                hint = difflib.get_close_matches(name, list(a.fields), n=1)
                self.fail(f"{w} {k.name} = {_fmt(name)}", "not a field of the definition"
                          + (f" (did you mean {hint[0]!r}?)" if hint else ""))
        return out

    def definition(self, a: ApidDef, rel: str, w: str) -> None:
        key = f'{w} definition = "{rel}"'
        csv_path = (self.path.parent / rel).resolve()
        if csv_path.suffix.lower() != ".csv":
            self.fail(key, "must be a ccsdspy CSV file (name ending in .csv)")
        if not csv_path.is_file():
            self.fail(key, f"file not found ({csv_path})")
        try:
            with open(csv_path, newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh, skipinitialspace=True))
                header = list(rows[0].keys()) if rows else []
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            self.fail(key, f"cannot read the CSV: {e}")
        if not rows:
            self.fail(key, "the CSV has no fields")
        header = [h.strip() for h in header if h is not None]
        missing = [c for c in CSV_REQUIRED if c not in header]
        if missing:
            self.fail(key, f"CSV columns {', '.join(missing)} missing; columns are "
                           f"{', '.join(CSV_REQUIRED)} then optionally {', '.join(CSV_OPTIONAL)}")
        for h in header:
            if h not in CSV_REQUIRED + CSV_OPTIONAL:
                hint = difflib.get_close_matches(h, CSV_REQUIRED + CSV_OPTIONAL, n=1)
                self.fail(key, f"unknown CSV column {h!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                          + f"; allowed: {', '.join(CSV_REQUIRED + CSV_OPTIONAL)}")
        specs: list[defs.FieldSpec] = []
        seen: dict[str, str] = {}
        for n, row in enumerate(rows, start=2):
            where = f"{key}, CSV line {n}"
            spec, meta = self.csv_row(row, where, seen)
            specs.append(spec)
            a.fields[spec.name] = meta
        variable = any(s.variable for s in specs)
        fixed_bits = defs.span_bits(specs)
        if fixed_bits > defs.MAX_LAYOUT_BITS:
            self.fail(key, f"the fields span {(fixed_bits + 7) // 8} bytes with the primary header; "
                           f"a Space Packet holds at most {MAX_PACKET_BYTES}")
        try:
            a.packet_definition = defs.build_definition(specs, variable)
        except Exception as e:  # ccsdspy raises several types; the message says which row
            self.fail(key, f"ccsdspy refuses the definition: {e}")
        a.definition = csv_path
        a.variable = variable
        if not variable:
            a.packet_length = defs.fixed_length_bytes(a.packet_definition)

    def csv_row(self, row: dict, where: str, seen: dict) -> tuple[defs.FieldSpec, FieldMeta]:
        fname = (row.get("name") or "").strip()
        if not FIELD_NAME_RE.match(fname):
            self.fail(where, f"field name {fname!r}: letters, digits and '_' expected")
        if fname.lower() in seen:
            same = seen[fname.lower()]
            self.fail(where, f"duplicate field name {fname!r}"
                      + (f" (names ignore case: {same!r} above)" if same != fname else ""))
        seen[fname.lower()] = fname
        dtype = (row.get("data_type") or "").strip()
        shape = None
        if "(" in dtype:
            inside = dtype[dtype.find("(") + 1:dtype.rfind(")") if ")" in dtype else len(dtype)]
            try:
                shape = defs.parse_shape(inside)
            except ValueError as e:
                self.fail(where, f"data_type {dtype!r}: {e}")
            dtype = dtype.split("(")[0].strip()
        if dtype not in ("uint", "int", "float", "str", "fill"):
            self.fail(where, f"data_type {dtype!r}: must be uint, int, float, str or fill "
                             "(optionally with an array shape, e.g. uint(4))")
        try:
            bits = int(row.get("bit_length") or "")
        except ValueError:
            self.fail(where, f"bit_length {row.get('bit_length')!r}: must be an integer")
        if dtype in ("uint", "int") and not 1 <= bits <= 64:
            self.fail(where, f"bit_length {bits}: integers are 1..64 bits")
        if dtype == "float" and bits not in (16, 32, 64):
            self.fail(where, f"bit_length {bits}: floats are 16, 32 or 64 bits")
        if not 1 <= bits <= defs.MAX_LAYOUT_BITS:
            self.fail(where, f"bit_length {bits}: must be 1..{defs.MAX_LAYOUT_BITS} "
                             f"(a Space Packet holds at most {MAX_PACKET_BYTES} bytes)")
        if isinstance(shape, tuple) and bits * math.prod(shape) > defs.MAX_LAYOUT_BITS:
            self.fail(where, f"data_type {(row.get('data_type') or '').strip()!r}: "
                             f"{math.prod(shape)} elements of {bits} bits cannot fit a Space Packet "
                             f"(at most {MAX_PACKET_BYTES} bytes)")
        order = (row.get("byte_order") or "").strip() or "big"
        if order not in BYTE_ORDERS and not (order.isdigit() and sorted(order) == [
                str(d) for d in range(1, len(order) + 1)]):
            self.fail(where, f"byte_order {order!r}: must be big, little or a digit order "
                             "such as 3412")
        offset_text = (row.get("bit_offset") or "").strip()
        if offset_text and (not offset_text.isdigit()):
            self.fail(where, f"bit_offset {offset_text!r}: must be a whole number of bits "
                             "from the start of the packet")
        if offset_text and int(offset_text) >= defs.MAX_LAYOUT_BITS:
            self.fail(where, f"bit_offset {offset_text}: beyond the largest Space Packet "
                             f"({MAX_PACKET_BYTES} bytes)")
        if isinstance(shape, str) and offset_text:
            self.fail(where, "bit_offset cannot be used with a variable-length field "
                             "(ccsdspy VariableLength places fields itself)")
        cal = (row.get("calibration") or "").strip() or None
        if cal is not None:
            if dtype not in ("uint", "int", "float"):
                self.fail(where, f"calibration on a {dtype} field: only numbers can be calibrated")
            try:
                parse_calibration(cal)
            except ValueError as e:
                self.fail(where, f"calibration {cal!r}: {e}")
        spec = defs.FieldSpec(name=fname, data_type=dtype, bit_length=bits,
                              bit_offset=int(offset_text) if offset_text else None, byte_order=order,
                              shape=shape)
        meta = FieldMeta(units=(row.get("units") or "").strip(), calibration=cal,
                         description=(row.get("description") or "").strip())
        return spec, meta


# ---------------------------------------------------------------------------------------
# constraints between keys, per level

def check_link(link: LinkSettings, level: str, path: str | Path) -> None:
    """The constraints between [link] keys that decoding at ``level`` rests on.

    Run by the loader for the mission's own level and by
    :mod:`groundseg.mission.configs` for a level asked for instead (``--level``), so a
    mission at level "frames" is not refused for a Reed-Solomon code it never uses, and
    asking it for level "bits" is refused naming the key. Raises :class:`MissionError`."""
    w = "[link]"

    def fail(key, message):
        raise MissionError(path, key, message)

    if level not in FRAME_LEVELS:
        return
    ft = frame_types.get(link.frame_type)
    frame_length = link.frame_length
    if not frame_length:
        fail(f"{w} frame_length", f"missing (required at level {level!r})")
    if link.insert_zone and not ft.has_insert_zone:
        fail(f"{w} insert_zone = {link.insert_zone}",
             "an insert zone exists only in " + _types_with("has_insert_zone")
             + f" frames; must be 0 for {ft.name}")
    if link.fhec and not ft.has_fhec:
        fail(f"{w} fhec = true", "frame header error control exists only in " + _types_with("has_fhec")
             + f" frames; must be false for {ft.name}")
    if link.tm_secondary_header and not ft.has_secondary_header:
        fail(f"{w} tm_secondary_header = {link.tm_secondary_header}",
             f"a TM frame secondary header does not exist in {ft.name} frames; must be 0")
    header = ft.header_length(link) + (4 if link.ocf else 0) + (2 if link.fecf else 0)
    if frame_length <= header:
        fail(f"{w} frame_length = {frame_length}",
             f"must exceed the {header} bytes of headers, insert zone, OCF and FECF it carries")
    if level not in CODING_LEVELS:
        return
    rs, interleave = link.reed_solomon, link.interleave
    if rs != "none":
        k = RS_DATA_SYMBOLS[rs]
        if frame_length % interleave or not 0 < frame_length // interleave <= k:
            fits = range(interleave, k * interleave + 1, interleave)
            fail(f"{w} frame_length = {frame_length}",
                 f"with reed_solomon = \"{rs}\" and interleave = {interleave} it must be a "
                 f"multiple of {interleave} no larger than {k * interleave} "
                 f"(frame_length / interleave <= {k}; virtual fill = {k} - frame_length / "
                 f"interleave); nearest allowed: {min(fits, key=lambda n: abs(n - frame_length))}"
                 + ("" if level == link.level else f" (level {level!r} decodes the channel coding)"))
    if level == "soft" and link.symbols == "hard":
        fail(f'{w} symbols = "hard"',
             'level = "soft" needs soft symbols: symbols = "soft-int8" or "soft-float32"')
    if level in ("soft", "iq") and link.convolutional == "none":
        fail(f'{w} convolutional = "none"',
             f'level = "{level}" decodes the inner code from soft symbols: set convolutional '
             '(e.g. "1/2"); uncoded soft symbols are not supported yet')
    if level == "bits" and link.symbols != "hard":
        fail(f"{w} symbols = {_fmt(link.symbols)}",
             'level = "bits" reads packed hard bits: symbols must be "hard" (or use level = "soft")')


def _types_with(attribute: str) -> str:
    return ", ".join(f"{t.name}" for t in frame_types.FRAME_TYPES.values() if getattr(t, attribute))


__all__ = ["load_mission", "loads_mission", "check_link", "nesting_depth", "MAX_NESTING",
           "NAME_RE", "APID_NAME_RE", "FIELD_NAME_RE", "CCSDS_EPOCH"]
