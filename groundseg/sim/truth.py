"""The truth: what a correct decoder must count, in the keys of the pass report
(docs/architecture.md, "pipeline and CLI"), from the fate of every transmitted frame.

Conventions the counts rest on are in the package docstring (:mod:`groundseg.sim`)."""
from __future__ import annotations

import hashlib

import numpy as np

from groundseg.coding import crc
from groundseg.link.records import REJECT_CODE
from groundseg.sim.kernels import scatter
from groundseg.sim.plan import IDLE_APID, SEQ_MODULUS, Plan


def empty_truth() -> dict:
    return {"frames": {"total": 0, "clean": 0, "corrected": 0, "uncorrectable": 0, "crc_failed": 0,
                       "rejected": 0, "idle": 0},
            "rs_symbols_corrected": 0,
            "sync": {"bits_in": 0, "lock_losses": 0, "inverted_codeblocks": 0},
            "virtual_channels": {}, "packets": {}, "idle_packets": 0, "rejects": {},
            "packet_md5": {}, "exact": True, "notes": []}


def vc_truth(delivered_rows: np.ndarray, sched, vcfc, is_idle, vc_mod) -> dict:
    out = {}
    for v in np.unique(sched[delivered_rows]) if len(delivered_rows) else []:
        rows = delivered_rows[sched[delivered_rows] == v]
        c = vcfc[rows]
        d = (c[1:] - c[:-1]) % vc_mod
        # an exact repeat (an idle VC that never advances its counter) is not a gap
        gap = (d != 1) & (d != 0)
        lost = np.where(gap & (d < vc_mod // 2), d - 1, 0)
        out[str(int(v))] = {"frames": int(len(rows)), "idle": int(is_idle[rows].sum()),
                            "gaps": int(gap.sum()), "frames_lost": int(lost.sum()),
                            "repeats": int((d == 0).sum())}
    return out


def packet_truth(truth: dict, packet_info: dict, delivered: np.ndarray, list_limit: int) -> None:
    """Per-APID counts from which frames of each VC were delivered (all VCs' rows)."""
    per_apid_bytes: dict[int, list] = {}
    delivered_list = []
    stats: dict[int, dict] = {}
    idle_packets = 0
    for v in sorted(packet_info):
        info = packet_info[v]
        ok = delivered[info["rows"]]
        zone = info["zone"]
        starts, lens, apids, seqs = info["starts"], info["lengths"], info["apids"], info["seqs"]
        bad = np.concatenate([[0], np.cumsum(~ok)])
        f_s = starts // zone
        f_e = (starts + lens - 1) // zone
        f_h = (starts + 5) // zone
        whole = (bad[f_e + 1] - bad[f_s]) == 0
        header = (bad[f_h + 1] - bad[f_s]) == 0
        idle = apids == IDLE_APID
        idle_packets += int((whole & idle).sum())
        real = ~idle
        for apid in np.unique(apids[real]):
            sel = apids == apid
            got = sel & whole
            s = seqs[got]
            d = (s[1:] - s[:-1]) % SEQ_MODULUS
            gap = (d != 1) & (d != 0)
            missing = np.where(gap & (d < SEQ_MODULUS // 2), d - 1, 0)
            st = stats.setdefault(int(apid), {"count": 0, "bytes": 0, "sequence_gaps": 0,
                                              "sequence_missing": 0, "sequence_repeats": 0,
                                              "dropped_incomplete": 0})
            st["count"] += int(got.sum())
            st["bytes"] += int(lens[got].sum())
            st["sequence_gaps"] += int(gap.sum())
            st["sequence_missing"] += int(missing.sum())
            st["sequence_repeats"] += int((d == 0).sum())
            st["dropped_incomplete"] += int((sel & header & ~whole).sum())
            out = np.empty(int(lens[got].sum()), np.uint8)
            dst = np.zeros(int(got.sum()), np.int64)
            if got.any():
                np.cumsum(lens[got][:-1], out=dst[1:])
            scatter(info["stream"], starts[got], lens[got], out, dst)
            per_apid_bytes.setdefault(int(apid), []).append(out)
        if list_limit and len(delivered_list) <= list_limit:
            order = np.flatnonzero(whole & real)[:list_limit + 1]
            delivered_list.extend(zip(apids[order].tolist(), seqs[order].tolist()))
    # an APID appears once anything was counted for it (as the decoder reports)
    truth["packets"] = {str(a): stats[a] for a in sorted(stats) if any(stats[a].values())}
    truth["idle_packets"] = idle_packets
    truth["packet_md5"] = {str(a): hashlib.md5(b"".join(x.tobytes() for x in per_apid_bytes[a])).hexdigest()
                           for a in sorted(per_apid_bytes) if stats[a]["count"]}
    if list_limit and len(delivered_list) <= list_limit:
        truth["delivered_packets"] = [[int(a), int(s)] for a, s in delivered_list]


FRAME_CHECKS = ("version", "scid", "frame_length", "fhec")


def frame_checks(frames: np.ndarray, plan: Plan) -> np.ndarray:
    """Per received frame: '' or the first transfer frame check it fails, in the decoder's
    order (version, SCID, frame length/layout, FHEC): the frame type's own checks
    (``FrameType.check``) with the decoder's configuration of the mission."""
    status = np.zeros(frames.shape[0], np.uint8)
    plan.frame_type.check(np.ascontiguousarray(frames, np.uint8), plan.link_config, status)
    reason = np.full(frames.shape[0], "", dtype=object)
    for name in FRAME_CHECKS:
        reason[status == REJECT_CODE[name]] = name
    return reason


def master_channel_truth(frames: np.ndarray, plan: Plan) -> dict | None:
    """{gaps, frames_lost} of the master-channel counter over the delivered ``frames``
    (None for a frame type without one): it runs over every frame of the physical channel."""
    ft = plan.frame_type
    if not ft.master_channel_counter:
        return None
    mod = ft.mc_modulus
    mc = ft.decode_header(frames, plan.link_config)["mcfc"].astype(np.int64) if len(frames) \
        else np.zeros(0, np.int64)
    d = (mc[1:] - mc[:-1]) % mod
    gap = (d != 1) & (d != 0)
    return {"gaps": int(gap.sum()), "frames_lost": int(np.where(gap & (d < mod // 2), d - 1, 0).sum()),
            "repeats": int((d == 0).sum())}


def count_checked(truth: dict, frames: np.ndarray, plan: Plan, what: str) -> np.ndarray:
    """Frames known to hold errors after the channel: count each under its first failing
    check (transfer frame checks, then FECF). Returns each frame's status ('crc',
    a check name, or 'delivered' when nothing catches the errors: the truth is then
    not exact)."""
    rejects = truth["rejects"]
    status = frame_checks(frames, plan)
    for name in FRAME_CHECKS:
        k = int((status == name).sum())
        if k:
            rejects[name] = rejects.get(name, 0) + k
    rest = status == ""
    if rest.any() and plan.link.fecf:
        failed = rest & ~crc.fecf_ok(frames)
        if failed.any():
            rejects["crc"] = rejects.get("crc", 0) + int(failed.sum())
            status[failed] = "crc"
        rest &= ~failed
    if rest.any():
        status[rest] = "delivered"
        truth["exact"] = False
        truth["notes"].append(f"{int(rest.sum())} {what} pass every frame check: what they do to "
                              "virtual channels and packets is not predicted")
    return status
