"""The mission model: the validated content of a mission file (docs/mission-file.md).

Plain dataclasses, built by :mod:`groundseg.mission.loader` and read by every layer
above ``link``: :class:`Mission` with its :class:`LinkSettings`, :class:`VirtualChannel`
and :class:`ApidDef` (with :class:`TimeCode` and :class:`FieldMeta`), plus the small
grammars of mission-file values (epochs, time codes, calibrations). Names of APIDs and
fields are looked up ignoring case (the loader refuses two that differ only by case).
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from groundseg.errors import GroundsegError, UsageError
from groundseg.mission.keys import CCSDS_EPOCH, DEFAULT_FRAME_TYPE, RS_DATA_SYMBOLS, RS_PARITY_SYMBOLS


class MissionError(GroundsegError, ValueError):
    """A mission file mistake: ``"<file>: <key> = <value>: <what is allowed>"``."""

    def __init__(self, path: str | Path, key: str, message: str):
        self.path = str(path)
        self.key = key
        self.message = message
        super().__init__(f"{self.path}: {key}: {message}" if key else f"{self.path}: {message}")


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
    """Every [link] key, CCSDS defaults filled in (``frame_length`` 0: not given, level "packets")."""
    frame_length: int
    frame_type: str = DEFAULT_FRAME_TYPE
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
    symbol_ambiguity: str = "bpsk"
    sync_verify: bool = True
    sync_flywheel: int = 3

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

    def field_name(self, name: str) -> str:
        """The definition's spelling of field ``name``, matched ignoring case.

        Raises :class:`~groundseg.errors.UsageError` (a ValueError) naming the fields (and
        the closest one) when there is none."""
        text = str(name).strip()
        if text in self.fields:
            return text
        lowered = text.lower()
        for f in self.fields:
            if f.lower() == lowered:
                return f
        hint = difflib.get_close_matches(text, list(self.fields), n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise UsageError(f"APID {self.name!r} has no field {text!r}{extra}; "
                         f"fields: {', '.join(self.fields) or 'none (archived raw)'}")


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
    #: the [modulation] table (groundseg.modulation.ModulationSettings), None without one
    modulation: object = None
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def level(self) -> str:
        return self.link.level if self.link is not None else "packets"

    def apid_by_name(self, name_or_number: str | int) -> int:
        """The APID for a mission-file name ("hk", any case) or a number ("100", 100).

        A number need not be declared: undeclared APIDs are archived raw. An unknown name
        raises :class:`~groundseg.errors.UsageError` (a ValueError) naming the declared ones.
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
                raise UsageError(f"mission {self.name!r} has no APID named {text!r}{extra}; "
                                 f"names: {names}; or give a number 0..2047") from None
        if not 0 <= number <= 2047:
            raise UsageError(f"APID {number} out of range 0..2047")
        return number

    def vc_data(self) -> dict[int, str]:
        """{vcid: "packets" | "vca" | "none"} of the listed VCs (others carry packets)."""
        return {v.id: v.data for v in self.virtual_channels.values()}

    @property
    def frame_type(self):
        """The link's :class:`~groundseg.link.frame_types.FrameType` (None without a [link])."""
        from groundseg.link import frame_types
        return frame_types.get(self.link.frame_type) if self.link is not None else None

    def ocf_vcids(self) -> bool | frozenset:
        """Which VCs carry an OCF, in the form ``LinkConfig.ocf`` takes: ``[link] ocf`` as a
        bool, or the set of VCIDs that carry one where a VC overrides it (AOS); the frame
        type's rule (``FrameType.ocf_setting``)."""
        if self.link is None:
            return False
        return self.frame_type.ocf_setting(self.link.ocf, {v.id: v.ocf for v in self.virtual_channels.values()})

    def apid(self, name_or_number: str | int) -> ApidDef | None:
        """The declared APID for a name (any case) or number; None for an undeclared number."""
        return self.apids.get(self.apid_by_name(name_or_number))

    def apid_name(self, apid: int) -> str:
        """The declared name, or ``apid<N>`` for an undeclared APID."""
        a = self.apids.get(int(apid))
        return a.name if a is not None else f"apid{int(apid)}"



# ---------------------------------------------------------------------------------------
# value grammars

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
