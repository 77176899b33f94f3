"""The mission as the simulator sees it: frame type, link configuration, virtual channels and
APIDs reduced to what is sent, with defaults where the mission says nothing."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from groundseg.link import frame_types
from groundseg.link.decoder import LinkConfig
from groundseg.mission import configs, definitions
from groundseg.mission.model import LinkSettings

LEVELS = ("bits", "frames", "packets")
IDLE_APID = 0x7FF
IDLE_FILL = 0x55
SEQ_MODULUS = 1 << 14
#: frames a packets-only mission (no [link]) is counted in
NOMINAL_FRAME_LENGTH = 1024
#: nominal link rate when the mission does not give one: times need a clock
DEFAULT_BIT_RATE = 1_000_000.0
#: onboard clock at the first frame: 2026-01-01T00:00:00Z, shifted by up to a day per seed
CLOCK_START = 1767225600.0


def load(mission):
    """A Mission, or the path of a mission file."""
    if isinstance(mission, (str, Path)):
        from groundseg.mission import load_mission
        return load_mission(mission)
    return mission


@dataclass
class Apid:
    apid: int
    vcid: int
    definition: object            # ccsdspy FixedLength or None
    layout: object                # its definitions.Layout, or None
    length: int | None            # fixed whole-packet length, or None (variable)
    mean_length: int
    time_code: object
    apid_def: object              # the mission's ApidDef (epoch, time scale), or None
    weight: float                 # relative packet rate


@dataclass
class Plan:
    """The mission, reduced to what the simulator needs (defaults where it says nothing)."""
    name: str
    scid: int
    link: LinkSettings
    frame_type: frame_types.FrameType
    link_config: LinkConfig       # the decoder's view of the frames (header lengths, checks)
    frame_length: int
    vcs: dict                     # vcid -> (data, ocf)
    packet_vcs: list
    idle_vcid: int | None
    apids: list
    bit_rate: float


def _frames_view(mission) -> tuple[LinkSettings, LinkConfig]:
    if mission.link is not None and mission.link.frame_length:
        return mission.link, configs.link_config(mission)
    # a packets-only mission: packets are still cut into (never sent) nominal TM frames,
    # which sets how many there are and where idle packets would go
    link = LinkSettings(frame_length=NOMINAL_FRAME_LENGTH, reed_solomon="none", randomized=False)
    nominal = dataclasses.replace(mission, link=link, spacecraft_id=mission.spacecraft_id or 0,
                                  virtual_channels={})
    return link, configs.link_config(nominal)


def make_plan(mission, rng: np.random.Generator) -> Plan:
    link, cfg = _frames_view(mission)
    ft = frame_types.get(link.frame_type)
    vcs = {}
    for vcid, vc in sorted(mission.virtual_channels.items()):
        vcs[vcid] = (vc.data, ft.ocf_per_vc(link.ocf, vc.ocf))
    idle = link.idle_vcid if link.idle_vcid is not None else ft.default_idle_vcid
    if idle is None:
        # a frame type that marks idle frames in the header: send them on the last VC if free
        idle = ft.n_vcids - 1 if ft.n_vcids - 1 not in vcs else None
    elif idle < 0:
        idle = None                                   # idle_vcid = -1: no idle VC
    if not ft.has_header:
        vcs = {0: ("vca", False)}                     # frame_type "none": data as it comes
        idle = None
    elif not vcs or (mission.apids and not any(d == "packets" for v, (d, _) in vcs.items() if v != idle)):
        # a mission that lists no packet VC still downlinks its APIDs somewhere
        free = [v for v in range(ft.n_vcids) if v not in vcs and v != idle]
        vcs[free[0]] = ("packets", bool(link.ocf))
    if idle is not None and idle not in vcs:
        vcs[idle] = ("none", bool(link.ocf))
    packet_vcs = [v for v, (d, _) in vcs.items() if d == "packets" and v != idle]
    apids = []
    defs = sorted(mission.apids.items())
    if not defs and packet_vcs:
        defs = [(100 + i, None) for i in range(3)]
    for i, (apid, a) in enumerate(defs):
        definition = getattr(a, "packet_definition", None) if a is not None else None
        variable = getattr(a, "variable", False) if a is not None else False
        if variable:
            definition = None  # variable ccsdspy layouts: random payloads of plausible length
        length = getattr(a, "packet_length", None) if definition is not None else None
        tc = getattr(a, "time_code", None) if a is not None else None
        min_len = 7 if tc is None else tc.offset + tc.length + 1
        if length is None:
            mean = int(rng.integers(max(min_len, 24), 600))
        else:
            mean = int(length)
        if not packet_vcs:
            break
        apids.append(Apid(apid=int(apid), vcid=packet_vcs[i % len(packet_vcs)], definition=definition,
                          layout=definitions.layout(definition) if definition is not None else None,
                          length=None if length is None else int(length), mean_length=max(mean, min_len + 8),
                          time_code=tc, apid_def=a,
                          weight=float(np.exp(rng.uniform(0.0, math.log(10.0))))))
    return Plan(name=mission.name, scid=int(mission.spacecraft_id or 0), link=link, frame_type=ft,
                link_config=cfg, frame_length=int(link.frame_length), vcs=vcs, packet_vcs=packet_vcs,
                idle_vcid=idle, apids=apids, bit_rate=float(link.bit_rate or 0) or DEFAULT_BIT_RATE)
