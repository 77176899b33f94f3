"""Mission definition files: TOML + ccsdspy CSV -> a validated :class:`Mission`.

- :mod:`~groundseg.mission.model`: the dataclasses (``Mission``, ``LinkSettings``,
  ``VirtualChannel``, ``ApidDef``, ``TimeCode``, ``FieldMeta``, ``InsertZoneTime``),
  ``MissionError`` and the value grammars (epochs, time codes, calibrations);
- :mod:`~groundseg.mission.keys`: every key of every table (name, type, default,
  allowed values, levels that use it) and the vocabularies;
- :mod:`~groundseg.mission.loader`: ``load_mission`` / ``loads_mission``, walking the key tables;
- :mod:`~groundseg.mission.definitions`: ccsdspy definitions (built from the CSV, read
  back with one placement rule: the only reader of ccsdspy's private attributes);
- :mod:`~groundseg.mission.configs`: ``channel_config(mission)``, ``link_config(mission)``.

The reference for every key is ``docs/mission-file.md``.
"""
from __future__ import annotations

from groundseg.mission.keys import (BYTE_ORDERS, CCSDS_EPOCH, CODING_LEVELS, CONVOLUTIONAL,
                                    CONVOLUTIONAL_VARIANTS, DERANDOMIZE, FRAME_LEVELS, FRAME_TYPES,
                                    INTERLEAVE_DEPTHS, LEVELS, MAX_APID, MAX_FRAME_LENGTH,
                                    MAX_PACKET_BYTES, MAX_SCID, MAX_VCID, REED_SOLOMON, RS_DATA_SYMBOLS,
                                    RS_PARITY_SYMBOLS, SYMBOLS, TIME_FIELD_KEYS, VC_DATA)
from groundseg.mission.model import (ApidDef, FieldMeta, InsertZoneTime, LinkSettings, Mission,
                                     MissionError, TimeCode, VirtualChannel, parse_calibration,
                                     parse_epoch, parse_time_spec)
from groundseg.mission.definitions import build_definition, fixed_length_bytes, import_ccsdspy
from groundseg.mission.loader import (APID_NAME_RE, FIELD_NAME_RE, NAME_RE, check_link, load_mission,
                                      loads_mission)
from groundseg.mission.configs import channel_config, link_config

__all__ = [
    "load_mission", "loads_mission", "Mission", "MissionError", "LinkSettings", "VirtualChannel",
    "ApidDef", "TimeCode", "FieldMeta", "InsertZoneTime", "parse_epoch", "parse_time_spec",
    "parse_calibration", "import_ccsdspy", "build_definition", "fixed_length_bytes", "check_link",
    "channel_config", "link_config",
    "FRAME_TYPES", "REED_SOLOMON", "RS_DATA_SYMBOLS", "RS_PARITY_SYMBOLS", "INTERLEAVE_DEPTHS",
    "CONVOLUTIONAL", "CONVOLUTIONAL_VARIANTS", "SYMBOLS", "LEVELS", "CODING_LEVELS", "FRAME_LEVELS",
    "DERANDOMIZE", "VC_DATA", "BYTE_ORDERS", "CCSDS_EPOCH", "MAX_APID", "MAX_SCID", "MAX_VCID",
    "MAX_FRAME_LENGTH", "MAX_PACKET_BYTES", "TIME_FIELD_KEYS", "NAME_RE", "APID_NAME_RE", "FIELD_NAME_RE",
]
