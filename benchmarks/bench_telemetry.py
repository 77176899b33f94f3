"""Telemetry decoding: packets/s of ``telemetry.decode`` on mixed APIDs vs ccsdspy alone pre-split.

The batch mixes the demo mission's four fixed-length housekeeping APIDs (26..49
byte packets, 6 to 13 fields each, calibrations and CUC time codes) with a raw
APID, in random order with consecutive sequence counts per APID, as a link
layer would deliver them. "ccsdspy_presplit" decodes the same packets already
split by APID (one contiguous buffer per APID, no grouping, no calibration, no
time): the anchor measured beside it (README, Benchmarks). "telemetry_decode" is the whole stage (group by
APID, gather, fields per APID, calibrate, onboard time); "telemetry_fields_presplit"
and "telemetry_group_by_apid" time its two main parts.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from benchmarks.timing import best_of

from groundseg import telemetry
from groundseg.link.records import PACKET_DTYPE, PacketBatch
from groundseg.mission import load_mission

DEMO = Path(__file__).resolve().parents[1] / "fixtures" / "missions" / "demo.toml"


def mixed_batch(mission, n: int, rng, apids=(100, 101, 102, 103, 200)) -> PacketBatch:
    """n packets of the given APIDs in random order, built vectorised (bodies random)."""
    chosen = rng.choice(np.array(apids), n)
    lut = np.zeros(2048, np.int64)
    for a in apids:
        lut[a] = mission.apids[a].packet_length or 64     # raw APID: 64-byte packets
    lengths = lut[chosen]
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = rng.integers(0, 256, offsets[-1], dtype=np.uint8)
    seq = np.zeros(n, np.int64)
    for a in apids:
        idx = np.flatnonzero(chosen == a)
        seq[idx] = np.arange(idx.size) & 0x3FFF
    start = offsets[:-1]
    data[start] = 0x08 | (chosen >> 8)
    data[start + 1] = chosen & 0xFF
    data[start + 2] = 0xC0 | (seq >> 8)
    data[start + 3] = seq & 0xFF
    data[start + 4] = (lengths - 7) >> 8
    data[start + 5] = (lengths - 7) & 0xFF
    header = np.zeros(n, PACKET_DTYPE)
    header["apid"] = chosen
    header["sec_hdr"] = 1
    header["seq_flags"] = 3
    header["seq_count"] = seq
    header["length"] = lengths
    header["reception_time"] = np.arange(n) * 1e-4
    header["frame_time"] = np.nan
    return PacketBatch(data, offsets, header)


def run(quick: bool) -> list[dict]:
    rng = np.random.default_rng(3)
    mission = load_mission(DEMO)
    n = 50_000 if quick else 500_000
    batch = mixed_batch(mission, n, rng)
    telemetry.decode(mixed_batch(mission, 2000, rng), mission)      # warm-up (compile)
    repeats = 2 if quick else 3
    rows = []

    seconds = best_of(lambda: telemetry.decode(batch, mission), repeats)
    rows.append({"stage": "telemetry_decode", "params": f"{n} packets, 5 APIDs mixed (4 decoded, 1 raw)",
                 "mpackets_s": n / seconds / 1e6, "seconds": seconds, "packets": n})

    # the same packets pre-split by APID, ccsdspy alone (the decoded APIDs only)
    apids = batch.header["apid"]
    split = {}
    for a, definition in ((a, mission.apids[a].packet_definition) for a in (100, 101, 102, 103)):
        sub = batch.select(apids == a)
        split[a] = (definition, sub.data.tobytes(), len(sub))
    decoded_n = sum(k for _, _, k in split.values())

    def ccsdspy_alone():
        for definition, data, _ in split.values():
            definition.load(io.BytesIO(data))

    telemetry._quiet.active = True       # ccsdspy's sequence warnings are not what is measured
    try:
        seconds = best_of(ccsdspy_alone, repeats)
    finally:
        telemetry._quiet.active = False
    rows.append({"stage": "ccsdspy_presplit", "params": f"{decoded_n} packets, 4 APIDs pre-split",
                 "mpackets_s": decoded_n / seconds / 1e6, "seconds": seconds, "packets": decoded_n})

    # the parts of telemetry_decode: field extraction alone on the pre-split buffers (the
    # one-pass kernel, same arrays as ccsdspy), and grouping by APID (argsort + gather)
    arrays = {a: np.frombuffer(data, np.uint8) for a, (_, data, _) in split.items()}

    def fields_alone():
        for a, (definition, _, _) in split.items():
            telemetry._load(definition, arrays[a], False)

    seconds = best_of(fields_alone, repeats)
    rows.append({"stage": "telemetry_fields_presplit", "params": f"{decoded_n} packets, 4 APIDs pre-split",
                 "mpackets_s": decoded_n / seconds / 1e6, "seconds": seconds, "packets": decoded_n})
    seconds = best_of(lambda: telemetry._group(batch), repeats)
    rows.append({"stage": "telemetry_group_by_apid", "params": f"{n} packets, 5 APIDs mixed",
                 "mpackets_s": n / seconds / 1e6, "seconds": seconds, "packets": n})
    load = os.getloadavg()[0]      # other processes on the 2 cores make these figures noisy
    for row in rows:
        row["load_avg_1min"] = round(load, 2)
    return rows


if __name__ == "__main__":  # pragma: no cover
    for row in run(quick=True):
        print(row)
