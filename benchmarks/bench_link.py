"""Data link layer: packets from frames (TM 132.0-B / AOS 732.0-B -> 133.0-B Space Packets).

One ``LinkDecoder.push`` over a batch of frames: primary header decode and checks, VC
counters, then Space Packet extraction across frames, per-packet header arrays built.
The frames carry small packets of mixed APIDs on two VCs and are built with the link
layer's own encoders (build_packets, pack_mpdu, tm/aos.pack_primary_header).
Rows carry the 1-minute load average: on a shared machine the figures scale with it.
"""
from __future__ import annotations

import os
import time

import numpy as np

from groundseg.coding.frame_batch import FrameBatch
from groundseg.link import aos, packets as P, tm
from groundseg.link.decoder import LinkConfig, LinkDecoder


def _frames(cfg: LinkConfig, n_packets: int, payload: tuple[int, int], rng) -> tuple[np.ndarray, int]:
    n_vc = 2
    zone = cfg.frame_length - cfg.header_length - (2 if cfg.frame_type == "AOS" else 0) - cfg.trailer_max
    per_vc = []
    for vc in range(n_vc):
        k = n_packets // n_vc
        apid = rng.integers(0, 32, k) + 64 * vc
        seq = np.zeros(k, np.int64)
        for a in np.unique(apid):
            seq[apid == a] = np.arange((apid == a).sum())
        lengths = rng.integers(payload[0], payload[1] + 1, k)
        stream, starts = P.build_packets(apid, seq, (rng.integers(0, 256, int(lengths.sum()), dtype=np.uint8), lengths))
        zones, fhp = P.pack_mpdu(stream, starts, zone)
        m = len(zones)
        if cfg.frame_type == "AOS":
            head = [aos.pack_primary_header(cfg.spacecraft_id, vc, np.arange(m)),
                    np.zeros((m, cfg.insert_zone), np.uint8), aos.pack_mpdu_header(fhp)]
        else:
            head = [tm.pack_primary_header(cfg.spacecraft_id, vc, 0, np.arange(m), fhp)]
        per_vc.append(np.concatenate(head + [zones, np.zeros((m, cfg.trailer_max), np.uint8)], axis=1))
    m = min(len(f) for f in per_vc)
    frames = np.stack([f[:m] for f in per_vc], axis=1).reshape(-1, cfg.frame_length)
    if cfg.ft.master_channel_counter:
        frames[:, 2] = np.arange(len(frames)) % 256     # master channel count
    return np.ascontiguousarray(frames), k


def _time(cfg, frames, repeats=3):
    LinkDecoder(cfg).push(FrameBatch.from_frames(frames[:50]))   # compile / load the cache
    best, npk = np.inf, 0
    batch = FrameBatch.from_frames(frames)
    for _ in range(repeats):
        dec = LinkDecoder(cfg)
        t0 = time.perf_counter()
        out = dec.push(batch)
        dec.flush()
        best = min(best, time.perf_counter() - t0)
        npk = len(out.packets)
    return best, npk


def run(quick: bool) -> list[dict]:
    rng = np.random.default_rng(11)
    n_packets = 400_000 if quick else 1_000_000
    cases = [
        ("AOS 892 B, iz 8, packets 7..46 B", LinkConfig(frame_type="AOS", frame_length=892, spacecraft_id=237,
                                                        insert_zone=8), (1, 40)),
        ("TM 1115 B, packets 7..46 B", LinkConfig(frame_type="TM", frame_length=1115, spacecraft_id=42), (1, 40)),
        ("AOS 892 B, packets 100..400 B", LinkConfig(frame_type="AOS", frame_length=892, spacecraft_id=237),
         (94, 394)),
    ]
    rows = []
    for label, cfg, payload in cases:
        frames, _ = _frames(cfg, n_packets if payload[1] < 100 else n_packets // 8, payload, rng)
        seconds, npk = _time(cfg, frames)
        rows.append({"stage": "packets_from_frames", "params": f"{label}, 64 APIDs on 2 VCs",
                     "mpackets_s": npk / seconds / 1e6, "frames_s": len(frames) / seconds,
                     "mbit_s": frames.size * 8 / seconds / 1e6, "seconds": seconds,
                     "frames": len(frames), "packets": npk, "load_avg_1min": os.getloadavg()[0]})
    # level "packets": a raw Space Packet stream split by PacketStreamSplitter
    k = n_packets
    lengths = rng.integers(1, 41, k)
    stream, _ = P.build_packets(rng.integers(0, 64, k), np.arange(k),
                                (rng.integers(0, 256, int(lengths.sum()), dtype=np.uint8), lengths))
    P.PacketStreamSplitter().push(stream[:1000])
    best = np.inf
    for _ in range(3):
        sp = P.PacketStreamSplitter()
        t0 = time.perf_counter()
        pb = sp.push(stream).packets
        sp.flush()
        best = min(best, time.perf_counter() - t0)
    rows.append({"stage": "packets_from_stream", "params": "raw packet stream, packets 7..46 B, 64 APIDs",
                 "mpackets_s": len(pb) / best / 1e6, "frames_s": 0.0,
                 "mbit_s": stream.size * 8 / best / 1e6, "seconds": best, "packets": len(pb),
                 "load_avg_1min": os.getloadavg()[0]})
    return rows


if __name__ == "__main__":
    import sys
    for row in run("--quick" in sys.argv):
        print(row)
