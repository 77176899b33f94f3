"""Mission definition files: TOML + ccsdspy CSV -> a validated :class:`Mission`.

The file describes one spacecraft downlink: the channel coding (CCSDS 131.0-B:
ASM, pseudo-randomiser, Reed-Solomon, interleave, virtual fill), the transfer
frames (TM 132.0-B or AOS 732.0-B), the virtual channels, and per APID the
Space Packet (133.0-B) field layout as a ccsdspy CSV plus the onboard time code
(CUC or CDS, 301.0-B). Every key is checked before any decoding starts; each
mistake raises :class:`MissionError` naming the file, the key and what is
allowed. The reference for every key is ``docs/mission-file.md``.
"""
from __future__ import annotations

import csv
import difflib
import logging
import math
import re
import sys
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def import_ccsdspy():
    """ccsdspy, imported without its import-time INFO line (nothing below the CLI prints)."""
    if "ccsdspy" not in sys.modules:
        # ccsdspy sets its own logger to DEBUG while importing, so a level set
        # beforehand is overwritten: suppress INFO globally for the import only.
        previous = logging.root.manager.disable
        logging.disable(logging.INFO)
        try:
            import ccsdspy  # noqa: F401
        finally:
            logging.disable(previous)
    import ccsdspy
    logging.getLogger("ccsdspy").setLevel(logging.WARNING)
    return ccsdspy


class MissionError(ValueError):
    """A mission file mistake: ``"<file>: <key> = <value>: <what is allowed>"``."""

    def __init__(self, path: str | Path, key: str, message: str):
        self.path = str(path)
        self.key = key
        self.message = message
        super().__init__(f"{self.path}: {key}: {message}" if key else f"{self.path}: {message}")


# ---------------------------------------------------------------------------------------
# vocabularies (names from the standards)

FRAME_TYPES = ("TM", "AOS")
REED_SOLOMON = ("none", "255,223", "255,239")
RS_DATA_SYMBOLS = {"255,223": 223, "255,239": 239}
RS_PARITY_SYMBOLS = {"none": 0, "255,223": 32, "255,239": 16}
INTERLEAVE_DEPTHS = (1, 2, 3, 4, 5, 8)           # 131.0-B
CONVOLUTIONAL = ("none", "1/2", "2/3", "3/4", "5/6", "7/8")
CONVOLUTIONAL_VARIANTS = ("ccsds", "nasa-dsn")
SYMBOLS = ("hard", "soft-int8", "soft-float32")
LEVELS = ("iq", "soft", "bits", "frames", "packets")
DERANDOMIZE = ("before_rs", "after_rs")
VC_DATA = ("packets", "vca", "none")
BYTE_ORDERS = ("big", "little")
CCSDS_EPOCH = "1958-01-01T00:00:00Z"
MAX_APID = 2046                                   # 2047 (0x7FF) is the idle APID
MAX_SCID = {"TM": 1023, "AOS": 255}               # 10-bit / 8-bit fields
MAX_VCID = {"TM": 7, "AOS": 63}                   # 3-bit / 6-bit fields
MAX_FRAME_LENGTH = {"TM": 2048, "AOS": 65535}     # TM: 132.0-B limit; AOS: none checked here
NAME_RE = re.compile(r"^[a-z0-9_-]+$")
APID_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
FIELD_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-\[\],.]*$")

_MISSION_KEYS = ("name", "spacecraft_id", "description", "time_epoch")
_LINK_KEYS = ("frame_type", "frame_length", "asm", "randomized", "reed_solomon", "interleave",
              "dual_basis", "convolutional", "convolutional_variant", "differential", "symbols",
              "level", "fecf", "ocf", "insert_zone", "insert_zone_time", "fhec",
              "tm_secondary_header", "idle_vcid", "derandomize", "asm_max_bit_errors", "bit_rate")
_IZT_KEYS = ("offset", "length", "byteorder", "unit", "epoch", "code", "scale")
_VC_KEYS = ("id", "name", "data", "ocf", "description")
_APID_KEYS = ("id", "name", "definition", "time", "time_fields", "time_offset", "epoch", "time_scale",
              "packet_length", "description")
TIME_FIELD_KEYS = ("year", "day", "hour", "minute", "second", "millisecond", "microsecond")
_TOP_KEYS = ("mission", "link", "virtual_channels", "apids")
_CSV_REQUIRED = ("name", "data_type", "bit_length")
_CSV_OPTIONAL = ("bit_offset", "byte_order", "units", "calibration", "description")


# ---------------------------------------------------------------------------------------
# the validated configuration

@dataclass(frozen=True)
class InsertZoneTime:
    """A time stamp carried in the AOS insert zone (732.0-B leaves its format to the mission).

    Either a counter (``length`` bytes, ``byteorder``, ``unit`` seconds per count) or a
    CCSDS time code (``code``, e.g. "cuc:4,2"), counted from ``epoch``.
    """
    offset: int            # first byte within the insert zone
    length: int            # bytes, 1..8
    byteorder: str         # "big" | "little"
    unit: float            # seconds per count
    epoch: str             # ISO 8601 UTC
    epoch_unix: float      # the epoch as UNIX seconds
    code: str | None = None
    scale: str | None = None   # "tai" | "utc"; None: TAI for the CCSDS 1958 epoch, else UTC

    def as_link_config(self) -> dict:
        """The ``insert_zone_time`` dict of :class:`groundseg.link.decoder.LinkConfig`."""
        d = {"offset": self.offset, "length": self.length, "byteorder": self.byteorder,
             "unit": self.unit, "epoch": self.epoch, "scale": self.scale}
        if self.code is not None:
            d["code"] = self.code
        return d


@dataclass(frozen=True)
class LinkSettings:
    """Every [link] key, CCSDS defaults filled in."""
    frame_length: int
    frame_type: str = "TM"
    asm: str = "1ACFFC1D"
    randomized: bool = True
    reed_solomon: str = "255,223"
    interleave: int = 1
    dual_basis: bool = True
    convolutional: str = "none"
    convolutional_variant: str = "ccsds"
    differential: bool = False
    symbols: str = "hard"
    level: str = "bits"
    fecf: bool = False
    ocf: bool = False
    insert_zone: int = 0
    insert_zone_time: InsertZoneTime | None = None
    fhec: bool = False
    tm_secondary_header: int = 0
    idle_vcid: int | None = None
    derandomize: str = "before_rs"
    asm_max_bit_errors: int = 4
    bit_rate: float = 0

    @property
    def asm_bits(self) -> int:
        return len(self.asm) * 4

    @property
    def asm_value(self) -> int:
        return int(self.asm, 16)

    @property
    def rs_parity(self) -> int:
        """Parity symbols per codeword: 32 (E=16), 16 (E=8) or 0."""
        return RS_PARITY_SYMBOLS[self.reed_solomon]

    @property
    def virtual_fill(self) -> int:
        """Virtual fill q per codeword: the frame is I * (k - q) bytes (131.0-B)."""
        if self.reed_solomon == "none":
            return 0
        return RS_DATA_SYMBOLS[self.reed_solomon] - self.frame_length // self.interleave

    @property
    def codeblock_length(self) -> int:
        """Bytes between two ASMs: the frame plus the RS parity of every codeword."""
        return self.frame_length + self.rs_parity * self.interleave


@dataclass(frozen=True)
class VirtualChannel:
    id: int
    name: str
    data: str = "packets"          # "packets" (M_PDU, FHP) | "vca" | "none"
    ocf: bool | None = None        # AOS: this VC's frames carry an OCF (None: [link] ocf)
    description: str = ""


@dataclass(frozen=True)
class TimeCode:
    """A CCSDS time code (301.0-B) inside each packet of an APID.

    CUC: ``coarse`` + ``fine`` octets of seconds. CDS: ``day_bytes`` (2 or 3)
    octets of days, 4 octets of milliseconds of day, ``subms_bytes`` (0, 2: us,
    4: ps). ``pfield``: one P-field octet precedes the T-field. ``offset``: the
    first octet of the code in the packet (primary header included).
    """
    kind: str
    offset: int = 6
    pfield: bool = False
    coarse: int = 0
    fine: int = 0
    day_bytes: int = 2
    subms_bytes: int = 0

    @property
    def length(self) -> int:
        body = self.coarse + self.fine if self.kind == "cuc" else self.day_bytes + 4 + self.subms_bytes
        return body + (1 if self.pfield else 0)

    @property
    def spec(self) -> str:
        """The T-field as a :mod:`groundseg.link.timecodes` spec ("cuc:4,2", "cds:16,2")."""
        if self.kind == "cuc":
            return f"cuc:{self.coarse},{self.fine}"
        return f"cds:{self.day_bytes * 8},{self.subms_bytes}"


@dataclass(frozen=True)
class FieldMeta:
    units: str = ""
    calibration: str | None = None     # "poly:a0,a1,..." -> a0 + a1*x + ...
    description: str = ""


@dataclass
class ApidDef:
    id: int
    name: str
    definition: Path | None = None            # the ccsdspy CSV, or None (archived raw)
    packet_definition: Any = None             # ccsdspy.FixedLength / VariableLength / None
    fields: dict[str, FieldMeta] = field(default_factory=dict)
    time: str | None = None                   # the spec as written, e.g. "cuc:4,2"
    time_code: TimeCode | None = None
    epoch: str = CCSDS_EPOCH
    epoch_unix: float = -378691200.0
    time_scale: str | None = None             # "tai" | "utc"; None: TAI for the 1958 epoch
    time_fields: dict[str, str] | None = None  # UTC calendar fields: {"year": field name, ...}
    packet_length: int | None = None          # whole-packet bytes a fixed definition decodes
    variable: bool = False                    # ccsdspy VariableLength
    description: str = ""


@dataclass
class Mission:
    name: str
    spacecraft_id: int | None
    link: LinkSettings | None
    virtual_channels: dict[int, VirtualChannel]
    apids: dict[int, ApidDef]
    source_text: str
    path: Path
    time_epoch: str = CCSDS_EPOCH
    description: str = ""
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def level(self) -> str:
        return self.link.level if self.link is not None else "packets"

    def apid_by_name(self, name_or_number: str | int) -> int:
        """The APID for a mission-file name ("hk") or a number ("100", 100).

        A number need not be declared: undeclared APIDs are archived raw.
        """
        if isinstance(name_or_number, (int,)) and not isinstance(name_or_number, bool):
            number = int(name_or_number)
        else:
            text = str(name_or_number).strip()
            for a in self.apids.values():
                if a.name == text:
                    return a.id
            lowered = text.lower()
            for a in self.apids.values():
                if a.name.lower() == lowered:
                    return a.id
            try:
                number = int(text) if text.isdigit() else int(text, 0)   # "0100", "0x180"
            except ValueError:
                names = ", ".join(sorted(a.name for a in self.apids.values())) or "none declared"
                hint = difflib.get_close_matches(text, [a.name for a in self.apids.values()], n=1)
                extra = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise ValueError(f"mission {self.name!r} has no APID named {text!r}{extra}; "
                                 f"names: {names}; or give a number 0..2047") from None
        if not 0 <= number <= 2047:
            raise ValueError(f"APID {number} out of range 0..2047")
        return number

    def vc_data(self) -> dict[int, str]:
        """{vcid: "packets" | "vca" | "none"} of the listed VCs (others carry packets)."""
        return {v.id: v.data for v in self.virtual_channels.values()}

    def ocf_vcids(self) -> bool | frozenset:
        """Which VCs carry an OCF: ``[link] ocf`` as a bool when no AOS VC overrides it,
        else the set of VCIDs that do (the form ``LinkConfig.ocf`` takes)."""
        default = bool(self.link.ocf) if self.link is not None else False
        overrides = {v.id: v.ocf for v in self.virtual_channels.values() if v.ocf is not None}
        if not overrides or all(o == default for o in overrides.values()):
            return default
        n = 64 if self.link is None or self.link.frame_type == "AOS" else 8
        return frozenset(vc for vc in range(n) if overrides.get(vc, default))

    def apid_name(self, apid: int) -> str:
        """The declared name, or ``apid<N>`` for an undeclared APID."""
        a = self.apids.get(int(apid))
        return a.name if a is not None else f"apid{int(apid)}"


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
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise MissionError(path, "", f"not valid TOML: {e}") from None
    return _Loader(path, doc, text).load()


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


def parse_epoch(text: str) -> float:
    """ISO 8601 -> UNIX seconds; a time without zone is taken as UTC."""
    t = datetime.fromisoformat(text.strip())
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.timestamp()


_TIME_RE = re.compile(r"^(cuc|cds)(?::(.*))?$")


def parse_time_spec(spec: str, offset: int = 6) -> TimeCode:
    """``"cuc:4,2"`` | ``"cuc:4,2,pfield"`` | ``"cds"`` | ``"cds:24,2"`` | ``"cds:16,0,pfield"``.

    CUC: coarse octets 1..7, fine octets 0..10 (301.0-B). CDS: day segment 16 or
    24 bits, sub-millisecond octets 0, 2 (microseconds) or 4 (picoseconds).
    ``pfield``: a one-octet P-field precedes the T-field (skipped; the format is
    the one given).
    Raises ValueError with what is allowed.
    """
    m = _TIME_RE.match(spec.strip().lower())
    if not m:
        raise ValueError('must be "cuc:C,F[,pfield]" or "cds[:D,S][,pfield]"')
    kind, args = m.group(1), [a.strip() for a in (m.group(2) or "").split(",") if a.strip()]
    pfield = False
    if args and args[-1] == "pfield":
        pfield = True
        args = args[:-1]
    try:
        nums = [int(a) for a in args]
    except ValueError:
        raise ValueError('numbers expected, e.g. "cuc:4,2" or "cds:16,16"') from None
    if kind == "cuc":
        if len(nums) != 2:
            raise ValueError('CUC needs coarse and fine octets, e.g. "cuc:4,2"')
        coarse, fine = nums
        if not 1 <= coarse <= 7 or not 0 <= fine <= 10:
            raise ValueError("CUC coarse octets must be 1..7 and fine octets 0..10")
        return TimeCode("cuc", offset=offset, pfield=pfield, coarse=coarse, fine=fine)
    if len(nums) > 2:
        raise ValueError('CDS takes at most day bits and sub-millisecond bits, e.g. "cds:16,16"')
    day_bits = nums[0] if nums else 16
    subms = nums[1] if len(nums) > 1 else 0
    if day_bits not in (16, 24):
        raise ValueError("CDS day segment must be 16 or 24 bits")
    # sub-millisecond segment in octets (0, 2: us, 4: ps); 16 and 32 are read as bits
    subms_bytes = {0: 0, 2: 2, 4: 4, 16: 2, 32: 4}.get(subms)
    if subms_bytes is None:
        raise ValueError("CDS sub-millisecond segment must be 0, 2 (us) or 4 (ps) octets")
    return TimeCode("cds", offset=offset, pfield=pfield, day_bytes=day_bits // 8,
                    subms_bytes=subms_bytes)


def parse_calibration(spec: str) -> tuple[float, ...]:
    """``"poly:a0,a1,..."`` -> coefficients (a0 first). Raises ValueError."""
    text = spec.strip()
    if not text.lower().startswith("poly:"):
        raise ValueError('must be "poly:a0,a1,..." (a0 + a1*x + a2*x^2 ...)')
    try:
        coeffs = tuple(float(c) for c in text[5:].split(","))
    except ValueError:
        raise ValueError('coefficients must be numbers, e.g. "poly:-40.0,0.125"') from None
    if not coeffs or not all(math.isfinite(c) for c in coeffs):
        raise ValueError("at least one finite coefficient is needed")
    return coeffs



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

    def get(self, table: dict, key: str, where: str, kind, default=None, required=False):
        if key not in table:
            if required:
                self.fail(f"{where} {key}", "missing (required)")
            return default
        value = table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = any(isinstance(value, k) and not (k is int and isinstance(value, bool)) for k in kinds)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            want = " or ".join(_type_name(k()) if k is not dict else "a table" for k in kinds)
            self.fail(f"{where} {key} = {_fmt(value)}", f"must be {want}, not {_type_name(value)}")
        return value

    def choice(self, table, key, where, allowed, default):
        value = self.get(table, key, where, str, default)
        if value not in allowed:
            hint = difflib.get_close_matches(str(value), allowed, n=1)
            suggestion = f" (did you mean {_fmt(hint[0])}?)" if hint else ""
            self.fail(f"{where} {key} = {_fmt(value)}",
                      f"must be one of {', '.join(_fmt(a) for a in allowed)}{suggestion}")
        return value

    def int_range(self, table, key, where, lo, hi, default=None, required=False):
        value = self.get(table, key, where, int, default, required)
        if value is not None and not lo <= value <= hi:
            self.fail(f"{where} {key} = {value}", f"must be in {lo}..{hi}")
        return value

    def epoch(self, table, key, where, default):
        value = self.get(table, key, where, str, default)
        try:
            return value, parse_epoch(value)
        except ValueError:
            self.fail(f"{where} {key} = {_fmt(value)}",
                      'must be an ISO 8601 UTC time such as "1958-01-01T00:00:00Z"')

    # -- tables ---------------------------------------------------------------------------
    def load(self) -> Mission:
        doc = self.doc
        self.unknown_keys(doc, _TOP_KEYS, "")
        if "mission" not in doc:
            self.fail("[mission]", "missing (required: name and spacecraft_id)")
        mission = self.get(doc, "mission", "", dict)
        link_table = self.get(doc, "link", "", dict)
        self.unknown_keys(mission, _MISSION_KEYS, "[mission]")
        name = self.get(mission, "name", "[mission]", str, required=True)
        if not NAME_RE.match(name) or len(name) > 64:
            self.fail(f"[mission] name = {_fmt(name)}",
                      "only lower-case letters, digits, '_' and '-' (1..64 characters): "
                      "it names the archive file")
        link = self.link(link_table) if link_table is not None else None
        scid = self.get(mission, "spacecraft_id", "[mission]", int, required=link is not None)
        if scid is not None:
            ft = link.frame_type if link is not None else "TM"
            if not 0 <= scid <= MAX_SCID[ft]:
                bits = 10 if ft == "TM" else 8
                self.fail(f"[mission] spacecraft_id = {scid}",
                          f"{ft} frames carry a {bits}-bit SCID: must be in 0..{MAX_SCID[ft]}")
        description = self.get(mission, "description", "[mission]", str, "")
        time_epoch, epoch_unix = self.epoch(mission, "time_epoch", "[mission]", CCSDS_EPOCH)
        vcs = self.virtual_channels(doc.get("virtual_channels"), link)
        apids = self.apids(doc.get("apids"), time_epoch, epoch_unix)
        return Mission(name=name, spacecraft_id=scid, link=link, virtual_channels=vcs, apids=apids,
                       source_text=self.text, path=self.path, time_epoch=time_epoch,
                       description=description)

    def link(self, t: dict) -> LinkSettings:
        w = "[link]"
        self.unknown_keys(t, _LINK_KEYS, w)
        ft = self.choice(t, "frame_type", w, FRAME_TYPES, "TM")
        frame_length = self.int_range(t, "frame_length", w, 1, MAX_FRAME_LENGTH[ft], required=True)
        asm = self.get(t, "asm", w, str, "1ACFFC1D")
        if not re.fullmatch(r"(?:[0-9A-Fa-f]{2}){1,8}", asm):
            self.fail(f"{w} asm = {_fmt(asm)}",
                      "must be the marker as hex digits, 2..16 of them in pairs (e.g. \"1ACFFC1D\")")
        asm = asm.upper()
        randomized = self.get(t, "randomized", w, bool, True)
        rs = self.choice(t, "reed_solomon", w, REED_SOLOMON, "255,223")
        interleave = self.get(t, "interleave", w, int, 1)
        if interleave not in INTERLEAVE_DEPTHS:
            self.fail(f"{w} interleave = {interleave}",
                      f"must be one of {', '.join(map(str, INTERLEAVE_DEPTHS))}")
        dual_basis = self.get(t, "dual_basis", w, bool, True)
        conv = self.choice(t, "convolutional", w, CONVOLUTIONAL, "none")
        conv_variant = self.choice(t, "convolutional_variant", w, CONVOLUTIONAL_VARIANTS, "ccsds")
        differential = self.get(t, "differential", w, bool, False)
        symbols = self.choice(t, "symbols", w, SYMBOLS, "hard")
        level = self.choice(t, "level", w, LEVELS, "bits")
        fecf = self.get(t, "fecf", w, bool, False)
        ocf = self.get(t, "ocf", w, bool, False)
        insert_zone = self.int_range(t, "insert_zone", w, 0, frame_length, 0)
        fhec = self.get(t, "fhec", w, bool, False)
        tm_sh = self.int_range(t, "tm_secondary_header", w, 0, 64, 0)
        idle_default = 63 if ft == "AOS" else None
        idle_vcid = self.int_range(t, "idle_vcid", w, -1, MAX_VCID[ft], idle_default)  # -1: none
        derandomize = self.choice(t, "derandomize", w, DERANDOMIZE, "before_rs")
        asm_bits = len(asm) * 4
        max_err = self.int_range(t, "asm_max_bit_errors", w, 0, asm_bits // 4, 4 if asm_bits >= 16 else 0)
        bit_rate = self.get(t, "bit_rate", w, float, 0)
        if not math.isfinite(bit_rate) or bit_rate < 0:
            self.fail(f"{w} bit_rate = {bit_rate}", "must be a finite number >= 0 (0 = unknown)")

        # impossible combinations
        if ft == "TM":
            if insert_zone:
                self.fail(f"{w} insert_zone = {insert_zone}",
                          'an insert zone exists only in AOS frames (frame_type = "AOS"); must be 0 for TM')
            if fhec:
                self.fail(f"{w} fhec = true",
                          'frame header error control exists only in AOS frames; must be false for TM')
        elif tm_sh:
            self.fail(f"{w} tm_secondary_header = {tm_sh}",
                      "a TM frame secondary header does not exist in AOS frames; must be 0")
        if rs != "none":
            k = RS_DATA_SYMBOLS[rs]
            if frame_length % interleave or not 0 < frame_length // interleave <= k:
                fits = [n for n in range(interleave, k * interleave + 1, interleave)]
                self.fail(f"{w} frame_length = {frame_length}",
                          f"with reed_solomon = \"{rs}\" and interleave = {interleave} it must be a "
                          f"multiple of {interleave} no larger than {k * interleave} "
                          f"(frame_length / interleave <= {k}; virtual fill = {k} - frame_length / "
                          f"interleave); nearest allowed: "
                          f"{min(fits, key=lambda n: abs(n - frame_length))}")
        header = 6 + (2 if fhec else 0) + insert_zone + tm_sh + (4 if ocf else 0) + (2 if fecf else 0)
        if frame_length <= header:
            self.fail(f"{w} frame_length = {frame_length}",
                      f"must exceed the {header} bytes of headers, insert zone, OCF and FECF it carries")
        if level == "soft" and symbols == "hard":
            self.fail(f'{w} symbols = "hard"',
                      'level = "soft" needs soft symbols: symbols = "soft-int8" or "soft-float32"')
        if level == "bits" and symbols != "hard":
            self.fail(f"{w} symbols = {_fmt(symbols)}",
                      'level = "bits" reads packed hard bits: symbols must be "hard" '
                      '(or use level = "soft")')
        izt = None
        if "insert_zone_time" in t:
            izt = self.insert_zone_time(self.get(t, "insert_zone_time", w, dict), insert_zone)
        return LinkSettings(frame_type=ft, frame_length=frame_length, asm=asm, randomized=randomized,
                            reed_solomon=rs, interleave=interleave, dual_basis=dual_basis,
                            convolutional=conv, convolutional_variant=conv_variant,
                            differential=differential, symbols=symbols, level=level, fecf=fecf,
                            ocf=ocf, insert_zone=insert_zone, insert_zone_time=izt, fhec=fhec,
                            tm_secondary_header=tm_sh, idle_vcid=idle_vcid, derandomize=derandomize,
                            asm_max_bit_errors=max_err, bit_rate=bit_rate)

    def insert_zone_time(self, t: dict, insert_zone: int) -> InsertZoneTime:
        w = "[link.insert_zone_time]"
        self.unknown_keys(t, _IZT_KEYS, w)
        if insert_zone == 0:
            self.fail(w, "a time stamp in the insert zone needs [link] insert_zone > 0")
        offset = self.int_range(t, "offset", w, 0, insert_zone - 1, 0)
        code = self.get(t, "code", w, str, None)
        scale = self.choice(t, "scale", w, ("tai", "utc"), None) if "scale" in t else None
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
        length = self.int_range(t, "length", w, 1, 8, required=code is None)
        if code is not None:
            length = tc.length
        if offset + length > insert_zone:
            self.fail(f"{w} length = {length}",
                      f"offset {offset} + length {length} exceeds the {insert_zone}-byte insert zone")
        byteorder = self.choice(t, "byteorder", w, BYTE_ORDERS, "big")
        unit = self.get(t, "unit", w, float, 1.0)
        if not math.isfinite(unit) or unit <= 0:
            self.fail(f"{w} unit = {unit}", "must be a positive number of seconds per count")
        epoch, epoch_unix = self.epoch(t, "epoch", w, CCSDS_EPOCH if code else "1970-01-01T00:00:00Z")
        return InsertZoneTime(offset=offset, length=length, byteorder=byteorder, unit=float(unit),
                              epoch=epoch, epoch_unix=epoch_unix, code=code, scale=scale)

    def _array(self, value, key: str) -> list[dict]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.fail(f"{key}", f"must be an array of tables ([[{key}]]), not {_type_name(value)}")
        return value

    def virtual_channels(self, value, link: LinkSettings | None) -> dict[int, VirtualChannel]:
        ft = link.frame_type if link is not None else "AOS"
        out: dict[int, VirtualChannel] = {}
        names: set[str] = set()
        for i, t in enumerate(self._array(value, "virtual_channels")):
            w = f"[[virtual_channels]] #{i + 1}"
            self.unknown_keys(t, _VC_KEYS, w)
            vcid = self.int_range(t, "id", w, 0, MAX_VCID[ft], required=True)
            w = f"[[virtual_channels]] id = {vcid}:"
            if vcid in out:
                self.fail(f"[[virtual_channels]] id = {vcid}", "duplicate virtual channel id")
            name = self.get(t, "name", w, str, f"vc{vcid}")
            if name in names:
                self.fail(f"{w} name = {_fmt(name)}", "duplicate virtual channel name")
            names.add(name)
            data = self.choice(t, "data", w, VC_DATA, "packets")
            ocf = self.get(t, "ocf", w, bool, None)
            if ocf is not None and ft == "TM":
                self.fail(f"{w} ocf = {_fmt(ocf)}",
                          "TM frames flag the OCF in every header: set [link] ocf instead "
                          "(per-VC ocf is for AOS)")
            if link is not None and link.idle_vcid == vcid and data != "none":
                self.fail(f"{w} data = {_fmt(data)}",
                          f"VC {vcid} is the idle VC ([link] idle_vcid): its data must be \"none\"")
            out[vcid] = VirtualChannel(id=vcid, name=name, data=data, ocf=ocf,
                                       description=self.get(t, "description", w, str, ""))
        return out

    def apids(self, value, time_epoch: str, epoch_unix: float) -> dict[int, ApidDef]:
        out: dict[int, ApidDef] = {}
        names: set[str] = set()
        for i, t in enumerate(self._array(value, "apids")):
            w = f"[[apids]] #{i + 1}"
            self.unknown_keys(t, _APID_KEYS, w)
            apid = self.int_range(t, "id", w, 0, MAX_APID, required=True)
            w = f"[[apids]] id = {apid}:"
            if apid in out:
                self.fail(f"[[apids]] id = {apid}", "duplicate APID")
            name = self.get(t, "name", w, str, required=True)
            if not APID_NAME_RE.match(name) or name.isdigit():
                self.fail(f"{w} name = {_fmt(name)}",
                          "letters, digits, '_' and '-' only, and not only digits "
                          "(a number is read as an APID)")
            if name.lower() in names:
                self.fail(f"{w} name = {_fmt(name)}", "duplicate APID name")
            names.add(name.lower())
            a = ApidDef(id=apid, name=name, description=self.get(t, "description", w, str, ""))
            a.epoch, a.epoch_unix = self.epoch(t, "epoch", w, time_epoch)
            if "time_scale" in t:
                a.time_scale = self.choice(t, "time_scale", w, ("tai", "utc"), None)
            if "definition" in t:
                self.definition(a, self.get(t, "definition", w, str), w)
            plen = self.int_range(t, "packet_length", w, 7, 65542, None)
            if plen is not None:
                if a.packet_definition is None or a.variable:
                    self.fail(f"{w} packet_length = {plen}",
                              "applies only to an APID with a fixed-length definition")
                if plen < a.packet_length:
                    self.fail(f"{w} packet_length = {plen}",
                              f"shorter than the {a.packet_length} bytes its definition describes")
                a.packet_length = plen
            offset = self.int_range(t, "time_offset", w, 0, 65541, 6)
            if "time" in t:
                spec = self.get(t, "time", w, str)
                try:
                    a.time_code = parse_time_spec(spec, offset)
                except ValueError as e:
                    self.fail(f"{w} time = {_fmt(spec)}", str(e))
                a.time = spec
                end = a.time_code.offset + a.time_code.length
                if a.packet_length is not None and end > a.packet_length:
                    self.fail(f"{w} time = {_fmt(spec)}",
                              f"the time code (bytes {a.time_code.offset}..{end - 1}) does not fit "
                              f"the {a.packet_length}-byte packet")
            elif "time_offset" in t:
                self.fail(f"{w} time_offset = {offset}", "needs a time code: set time too")
            if "time_fields" in t:
                a.time_fields = self.time_fields(self.get(t, "time_fields", w, dict), a, apid)
            out[apid] = a
        return out

    def time_fields(self, t: dict, a: ApidDef, apid: int) -> dict[str, str]:
        w = f"[apids.time_fields] (APID {apid})"
        self.unknown_keys(t, TIME_FIELD_KEYS, w)
        if a.time_code is not None:
            self.fail(w, "give either time (a time code) or time_fields, not both")
        if a.packet_definition is None:
            self.fail(w, "time fields are fields of the packet: the APID needs a definition")
        out = {}
        for key in TIME_FIELD_KEYS:
            name = self.get(t, key, w, str, None, required=key in ("year", "day"))
            if name is None:
                continue
            if name not in a.fields:
                hint = difflib.get_close_matches(name, list(a.fields), n=1)
                self.fail(f"{w} {key} = {_fmt(name)}", "not a field of the definition"
                          + (f" (did you mean {hint[0]!r}?)" if hint else ""))
            out[key] = name
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
        missing = [c for c in _CSV_REQUIRED if c not in header]
        if missing:
            self.fail(key, f"CSV columns {', '.join(missing)} missing; columns are "
                           f"{', '.join(_CSV_REQUIRED)} then optionally {', '.join(_CSV_OPTIONAL)}")
        for h in header:
            if h not in _CSV_REQUIRED + _CSV_OPTIONAL:
                hint = difflib.get_close_matches(h, _CSV_REQUIRED + _CSV_OPTIONAL, n=1)
                self.fail(key, f"unknown CSV column {h!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                          + f"; allowed: {', '.join(_CSV_REQUIRED + _CSV_OPTIONAL)}")
        variable = False
        specs: list[tuple] = []
        seen: set[str] = set()
        for n, row in enumerate(rows, start=2):
            where = f"{key}, CSV line {n}"
            fname = (row.get("name") or "").strip()
            if not FIELD_NAME_RE.match(fname):
                self.fail(where, f"field name {fname!r}: letters, digits and '_' expected")
            if fname in seen:
                self.fail(where, f"duplicate field name {fname!r}")
            seen.add(fname)
            dtype = (row.get("data_type") or "").strip()
            shape_spec = None
            if "(" in dtype:
                shape_spec = dtype[dtype.find("(") + 1:dtype.find(")")].strip()
                shape = dtype[dtype.find("(") + 1:dtype.find(")")]
                if not all(s.strip().isdigit() for s in shape.split(",")):
                    variable = True
                dtype = dtype.split("(")[0]
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
            order = (row.get("byte_order") or "").strip() or "big"
            if order not in BYTE_ORDERS and not (order.isdigit() and sorted(order) == [
                    str(d) for d in range(1, len(order) + 1)]):
                self.fail(where, f"byte_order {order!r}: must be big, little or a digit order "
                                 "such as 3412")
            offset_text = (row.get("bit_offset") or "").strip()
            if offset_text and (not offset_text.isdigit()):
                self.fail(where, f"bit_offset {offset_text!r}: must be a whole number of bits "
                                 "from the start of the packet")
            if variable and offset_text:
                self.fail(where, "bit_offset cannot be used with a variable-length field "
                                 "(ccsdspy VariableLength places fields itself)")
            specs.append((fname, dtype, bits, int(offset_text) if offset_text else None, order,
                          shape_spec))
            cal = (row.get("calibration") or "").strip() or None
            if cal is not None:
                if dtype not in ("uint", "int", "float"):
                    self.fail(where, f"calibration on a {dtype} field: only numbers can be calibrated")
                try:
                    parse_calibration(cal)
                except ValueError as e:
                    self.fail(where, f"calibration {cal!r}: {e}")
            a.fields[fname] = FieldMeta(units=(row.get("units") or "").strip(), calibration=cal,
                                        description=(row.get("description") or "").strip())
        try:
            a.packet_definition = build_definition(specs, variable)
        except Exception as e:  # ccsdspy raises several types; the message says which row
            self.fail(key, f"ccsdspy refuses the definition: {e}")
        a.definition = csv_path
        a.variable = variable
        if not variable:
            a.packet_length = fixed_length_bytes(a.packet_definition)


def build_definition(specs: list[tuple], variable: bool):
    """ccsdspy FixedLength/VariableLength from CSV rows, as ``from_file`` builds it, plus byte_order.

    ``specs``: (name, data_type, bit_length, bit_offset or None, byte_order, array shape text or
    None). ccsdspy's own CSV reader has no byte-order column; this reads the same
    columns the same way and passes ``byte_order`` through.
    """
    ccsdspy = import_ccsdspy()
    fields = []
    for name, dtype, bits, offset, order, shape_spec in specs:
        kw = dict(name=name, data_type=dtype, bit_length=bits, byte_order=order)
        if offset is not None:
            kw["bit_offset"] = offset
        if shape_spec is None:
            fields.append(ccsdspy.PacketField(**kw))
            continue
        if shape_spec == "expand":
            shape = "expand"
        elif "," in shape_spec:
            shape = tuple(int(x) for x in shape_spec.split(","))
        else:
            shape = int(shape_spec) if shape_spec.isdigit() else shape_spec
        fields.append(ccsdspy.PacketArray(array_shape=shape, **kw))
    return (ccsdspy.VariableLength if variable else ccsdspy.FixedLength)(fields)


def fixed_length_bytes(definition) -> int:
    """Whole-packet bytes a ccsdspy FixedLength definition lays out (primary header included).

    Follows ccsdspy's placement: fields without ``bit_offset`` follow the previous
    one, starting after the 48-bit primary header.
    """
    counter = 48
    for f in definition._fields:
        size = f._bit_length
        shape = getattr(f, "_array_shape", None)
        if isinstance(shape, tuple):
            size *= math.prod(shape)
        elif isinstance(shape, int):
            size *= shape
        if f._bit_offset is None:
            counter += size
        else:
            counter = max(counter, f._bit_offset + size)
    return (counter + 7) // 8
