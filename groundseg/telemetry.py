"""Packet fields per APID through ccsdspy definitions, with onboard time (CCSDS 133.0-B, 301.0-B)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from groundseg.link.records import PacketBatch


@dataclass
class DecodedApid:
    apid: int
    name: str
    packets: PacketBatch                    # this APID's packets only, in reception order
    onboard_time: np.ndarray                # float64 UNIX seconds UTC, NaN where unknown
    fields: dict[str, np.ndarray] = field(default_factory=dict)   # one array per decoded field
    units: dict[str, str] = field(default_factory=dict)
    calibration: dict[str, str] = field(default_factory=dict)
