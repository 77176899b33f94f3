"""Frames -> packets -> decoded fields on the demo mission, against ccsdspy alone (issue 3's benchmark).

"frames_to_fields": TM frame checks + virtual channels + M_PDU extraction + ccsdspy-
equivalent field decoding of every APID, from simulated demo frames (level "frames"),
in one run with "ccsdspy_alone_presplit": ccsdspy decoding the same packets already split
by APID (what ccsdspy needs as input; the split itself is not timed).
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from benchmarks.timing import best_of
from groundseg import telemetry
from groundseg.coding.frame_batch import FrameBatch
from groundseg.mission import load_mission
from groundseg.pipeline import link_config
from groundseg.link.decoder import LinkDecoder
from groundseg.spacecraft import simulate

DEMO = Path(__file__).resolve().parents[1] / "fixtures" / "missions" / "demo.toml"


def run(quick: bool) -> list[dict]:
    mission = load_mission(DEMO)
    n_frames = 3000 if quick else 30000
    sim = simulate(mission, frames=n_frames, seed=21, level="frames")
    L = mission.link.frame_length
    frames = np.frombuffer(sim.capture, np.uint8)
    frames = frames[: frames.size // L * L].reshape(-1, L)
    batch = FrameBatch.from_frames(frames)
    cfg = link_config(mission)

    def frames_to_fields():
        out = LinkDecoder(cfg).push(batch)
        decoded, _ = telemetry.decode(out.packets, mission)
        return out, decoded

    out, _ = frames_to_fields()                      # warm-up (compile) and the packet count
    n_packets = len(out.packets)
    seconds = best_of(frames_to_fields, 7 if quick else 3)   # a quick call is ~12 ms: more tries
    rows = [{"stage": "frames_to_fields", "params": f"demo TM 1115 B, {len(frames)} frames, 5 APIDs",
             "mpackets_s": n_packets / seconds / 1e6, "frames_s": len(frames) / seconds,
             "mbit_s": frames.size * 8 / seconds / 1e6, "seconds": seconds, "packets": n_packets,
             "target": ">= 5 M packets/s"}]

    apids = out.packets.header["apid"]
    split = []
    for apid, a in mission.apids.items():
        if a.packet_definition is not None:
            sub = out.packets.select(apids == apid)
            split.append((a.packet_definition, sub.data.tobytes(), len(sub)))
    n_split = sum(k for _, _, k in split)

    def ccsdspy_alone():
        for definition, data, _ in split:
            definition.load(io.BytesIO(data))

    telemetry._quiet.active = True       # ccsdspy's sequence warnings are not what is measured
    try:
        seconds = best_of(ccsdspy_alone, 3)
    finally:
        telemetry._quiet.active = False
    rows.append({"stage": "ccsdspy_alone_presplit", "params": f"the same {n_split} packets with definitions, split",
                 "mpackets_s": n_split / seconds / 1e6, "seconds": seconds, "packets": n_split})
    return rows
