"""Every key a mission file may hold, in one declarative table per TOML table.

A :class:`Key` gives a key's name, TOML type, default, allowed values (a vocabulary
or an integer range, either of which may depend on the keys read before it, e.g. the
frame type) and the decoding levels that use it. The loader
(:mod:`groundseg.mission.loader`) walks these tables; ``docs/mission-file.md``
documents every key listed here (a unit test checks both ways).

Vocabularies are defined once, where the code that uses them lives, and imported
here: Reed-Solomon codes and interleave depths from :mod:`groundseg.coding.channel`,
decoding levels from :mod:`groundseg.sources.base`, SCID widths, VCID counts and
frame lengths from the frame types (:mod:`groundseg.link.frame_types`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from groundseg.coding import convolutional as _conv
from groundseg.coding.channel import INTERLEAVES, RS_PARITY, SYMBOL_AMBIGUITIES, SYMBOLS
from groundseg.link import frame_types
from groundseg.sources.base import LEVEL_KIND

# ---------------------------------------------------------------------------------------
# vocabularies (names from the standards)

FRAME_TYPES = tuple(frame_types.FRAME_TYPES)                # "TM", "AOS", "none"
#: the frame type of a [link] that names none (and the SCID range without a [link])
DEFAULT_FRAME_TYPE = "TM"
REED_SOLOMON = tuple(RS_PARITY)                             # "none", "255,223", "255,239"
RS_PARITY_SYMBOLS = dict(RS_PARITY)
RS_DATA_SYMBOLS = {code: 255 - parity for code, parity in RS_PARITY.items() if parity}
INTERLEAVE_DEPTHS = tuple(INTERLEAVES)                      # 131.0-B
CONVOLUTIONAL = ("none",) + tuple(_conv.RATES)                # 131.0-B-4 section 3
CONVOLUTIONAL_VARIANTS = tuple(_conv.VARIANTS)
LEVELS = tuple(LEVEL_KIND)                                  # "iq", "soft", "bits", "frames", "packets"
#: levels whose captures hold channel symbols: the coding keys apply
CODING_LEVELS = ("iq", "soft", "bits")
#: levels whose captures hold transfer frames (or something that decodes to them)
FRAME_LEVELS = CODING_LEVELS + ("frames",)
DERANDOMIZE = ("before_rs", "after_rs")
VC_DATA = ("packets", "vca", "none")
BYTE_ORDERS = ("big", "little")
TIME_SCALES = ("tai", "utc")
CCSDS_EPOCH = "1958-01-01T00:00:00Z"
UNIX_EPOCH = "1970-01-01T00:00:00Z"
MAX_APID = 2046                                   # 2047 (0x7FF) is the idle APID
#: whole Space Packet bytes at most: 6-byte primary header + 65536 (133.0-B 4.1.3.5)
MAX_PACKET_BYTES = 6 + 65536
MAX_SCID = {name: ft.max_scid for name, ft in frame_types.FRAME_TYPES.items()}
MAX_VCID = {name: ft.n_vcids - 1 for name, ft in frame_types.FRAME_TYPES.items()}
MAX_FRAME_LENGTH = {name: ft.max_frame_length for name, ft in frame_types.FRAME_TYPES.items()}
TIME_FIELD_KEYS = ("year", "day", "hour", "minute", "second", "millisecond", "microsecond")


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: the default of a key that must be given
REQUIRED = _Required()


@dataclass(frozen=True)
class Key:
    """One key of a TOML table.

    ``kind``: the TOML type (``bool``, ``int``, ``float`` (an integer is accepted), ``str``,
    ``dict`` for a sub-table). ``default``: a value, :data:`REQUIRED`, or a callable of the
    values read so far (``{name: value}``). ``choices``: the allowed strings (or a callable
    of the values read so far). ``range``: ``(lo, hi)`` for integers (or a callable).
    ``levels``: the decoding levels that use the key (None: every level); a key outside its
    levels is still type-checked, but constraints between keys are checked only where the
    mission's level uses them.
    """
    name: str
    kind: type
    default: Any = None
    choices: tuple | Callable | None = None
    range: tuple | Callable | None = None
    levels: tuple | None = None

    def default_for(self, values: dict) -> Any:
        return self.default(values) if callable(self.default) else self.default

    def choices_for(self, values: dict) -> tuple | None:
        return self.choices(values) if callable(self.choices) else self.choices

    def range_for(self, values: dict) -> tuple | None:
        return self.range(values) if callable(self.range) else self.range


def _ft(values: dict):
    return frame_types.get(values.get("frame_type") or DEFAULT_FRAME_TYPE)


TOP_KEYS = ("mission", "link", "modulation", "virtual_channels", "apids")

MISSION_KEYS = (
    Key("name", str, REQUIRED),
    Key("spacecraft_id", int, None),        # required when the level reads frames
    Key("description", str, ""),
    Key("time_epoch", str, CCSDS_EPOCH),
)

LINK_KEYS = (
    Key("frame_type", str, DEFAULT_FRAME_TYPE, choices=FRAME_TYPES, levels=FRAME_LEVELS),
    Key("frame_length", int, REQUIRED, range=lambda v: (1, _ft(v).max_frame_length), levels=FRAME_LEVELS),
    Key("asm", str, "1ACFFC1D", levels=CODING_LEVELS),
    Key("randomized", bool, True, levels=CODING_LEVELS),
    Key("reed_solomon", str, "255,223", choices=REED_SOLOMON, levels=CODING_LEVELS),
    Key("interleave", int, 1, choices=INTERLEAVE_DEPTHS, levels=CODING_LEVELS),
    Key("dual_basis", bool, True, levels=CODING_LEVELS),
    Key("convolutional", str, "none", choices=CONVOLUTIONAL, levels=("iq", "soft")),
    Key("convolutional_variant", str, "ccsds", choices=CONVOLUTIONAL_VARIANTS, levels=("iq", "soft")),
    Key("differential", bool, False, levels=CODING_LEVELS),
    Key("symbols", str, "hard", choices=SYMBOLS, levels=CODING_LEVELS),
    Key("symbol_ambiguity", str, "bpsk", choices=SYMBOL_AMBIGUITIES, levels=("iq", "soft")),
    Key("sync_verify", bool, True, levels=CODING_LEVELS),
    Key("sync_flywheel", int, 3, range=(0, 1000), levels=CODING_LEVELS),
    Key("level", str, "bits", choices=LEVELS),
    Key("fecf", bool, False, levels=FRAME_LEVELS),
    Key("ocf", bool, False, levels=FRAME_LEVELS),
    Key("insert_zone", int, 0, range=lambda v: (0, v.get("frame_length") or _ft(v).max_frame_length), levels=FRAME_LEVELS),
    Key("insert_zone_time", dict, None, levels=FRAME_LEVELS),
    Key("fhec", bool, False, levels=FRAME_LEVELS),
    Key("tm_secondary_header", int, 0, range=(0, 64), levels=FRAME_LEVELS),
    Key("idle_vcid", int, lambda v: _ft(v).default_idle_vcid, range=lambda v: (-1, _ft(v).n_vcids - 1),
        levels=FRAME_LEVELS),
    Key("derandomize", str, "before_rs", choices=DERANDOMIZE, levels=CODING_LEVELS),
    Key("asm_max_bit_errors", int, lambda v: 4 if len(v.get("asm") or "") * 4 >= 16 else 0,
        range=lambda v: (0, len(v.get("asm") or "") * 4 // 4), levels=CODING_LEVELS),
    Key("bit_rate", float, 0),
)

INSERT_ZONE_TIME_KEYS = (
    Key("offset", int, 0, range=lambda v: (0, v["_insert_zone"] - 1)),
    Key("code", str, None),
    Key("length", int, None, range=(1, 8)),         # required without a code
    Key("byteorder", str, "big", choices=BYTE_ORDERS),
    Key("unit", float, 1.0),
    Key("epoch", str, lambda v: CCSDS_EPOCH if v.get("code") else UNIX_EPOCH),
    Key("scale", str, None, choices=TIME_SCALES),
)

VIRTUAL_CHANNEL_KEYS = (
    Key("id", int, REQUIRED, range=lambda v: (0, v["_max_vcid"])),
    Key("name", str, lambda v: f"vc{v['id']}"),
    Key("data", str, "packets", choices=VC_DATA),
    Key("ocf", bool, None),
    Key("description", str, ""),
)

APID_KEYS = (
    Key("id", int, REQUIRED, range=(0, MAX_APID)),
    Key("name", str, REQUIRED),
    Key("definition", str, None),
    Key("time", str, None),
    Key("time_fields", dict, None),
    Key("time_offset", int, 6, range=(0, MAX_PACKET_BYTES - 1)),
    Key("epoch", str, lambda v: v["_time_epoch"]),
    Key("time_scale", str, None, choices=TIME_SCALES),
    Key("packet_length", int, None, range=(7, MAX_PACKET_BYTES)),
    Key("description", str, ""),
)

TIME_FIELDS_KEYS = tuple(Key(k, str, REQUIRED if k in ("year", "day") else None) for k in TIME_FIELD_KEYS)

#: the ccsdspy CSV columns (``docs/mission-file.md``, "Packet definitions")
CSV_REQUIRED = ("name", "data_type", "bit_length")
CSV_OPTIONAL = ("bit_offset", "byte_order", "units", "calibration", "description")

#: every table, by the heading it has in the mission file and in docs/mission-file.md
TABLES = {
    "[mission]": MISSION_KEYS,
    "[link]": LINK_KEYS,
    "[link.insert_zone_time]": INSERT_ZONE_TIME_KEYS,
    "[[virtual_channels]]": VIRTUAL_CHANNEL_KEYS,
    "[[apids]]": APID_KEYS,
    "[apids.time_fields]": TIME_FIELDS_KEYS,
}


def names(table: tuple) -> tuple:
    return tuple(k.name for k in table)
