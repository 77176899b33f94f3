"""A whole simulation: the plan, packets, frames, the channel at the level asked for, and
the truth; and the files the CLI writes (``FILE`` and ``FILE.truth.json``)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from groundseg.mission import configs
from groundseg.sim.soft import soft_symbols
from groundseg.sim.channel import bits_level, frames_level
from groundseg.sim.frames import build_frames
from groundseg.sim.impairments import Impairments, choose_lost
from groundseg.sim.kernels import scatter
from groundseg.sim.plan import IDLE_APID, LEVELS, load, make_plan
from groundseg.sim.truth import empty_truth, master_channel_truth, packet_truth, vc_truth


@dataclass
class SimulatedDownlink:
    """A simulated capture and what a correct decoder must make of it."""
    capture: bytes
    truth: dict
    level: str
    frames: np.ndarray | None = None     # the transmitted frames (n, frame_length), before impairments
    packets: dict = field(default_factory=dict)  # apid -> (flat uint8, starts int64) as generated

    def write(self, path: str | Path) -> Path:
        """Write the capture to ``path`` and the truth to ``path``.truth.json."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.capture)
        Path(str(path) + ".truth.json").write_text(json.dumps(self.truth, indent=1, sort_keys=True) + "\n")
        return path


# ----------------------------------------------------------------------------- simulate

def simulate(mission, *, frames: int = 1000, seed: int = 0, impairments: Impairments | None = None,
             level: str | None = None, idle_fraction: float = 0.02, flush_fraction: float = 0.01,
             list_limit: int = 5000, ebn0_db: float | None = None,
             symbols: str | None = None, clock_start: float | None = None) -> SimulatedDownlink:
    """A simulated downlink of ``frames`` transfer frames for ``mission`` (a Mission or a path).

    ``level``: "soft" (the CADU stream through the mission's inner code as soft symbols,
    ``symbols`` "soft-int8" or "soft-float32" (default the mission's), with white Gaussian
    noise at ``ebn0_db`` if given: the truth is then the noiseless one, marked not exact),
    "bits" (CADU stream), "frames" (frames back to back) or "packets" (the Space Packet
    stream); default the mission's level. ``idle_fraction`` of the frames are idle
    frames; ``flush_fraction`` of the packets close their frame early with an idle packet.
    ``clock_start``: the onboard clock (UNIX seconds) at the first frame, for passes that
    follow each other; default 2026-01-01 plus a random offset within a day.
    The same arguments give byte-identical output.
    """
    mission = load(mission)
    imp = impairments if impairments is not None else Impairments()
    if not isinstance(imp, Impairments):
        raise ValueError("impairments must be an Impairments instance")
    level = level or getattr(mission, "level", None) or "bits"
    if level not in LEVELS and level != "soft":
        raise ValueError(f"level must be one of soft, {', '.join(LEVELS)}, not {level!r}")
    soft = level == "soft"
    if soft:
        soft_cfg = configs.channel_config(_with_symbols(mission, symbols), "soft")
        # the CADU stream under the inner code is what a hard-bit mission would send
        mission = _with_symbols(mission, "hard")
        level = "bits"
    if clock_start is not None and not np.isfinite(clock_start):
        raise ValueError(f"clock_start must be a finite UNIX time, not {clock_start!r}")
    if int(frames) < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if not 0 <= idle_fraction < 1 or not 0 <= flush_fraction < 1:
        raise ValueError("idle_fraction and flush_fraction must be in 0..1")
    if mission.link is None and level != "packets":
        raise ValueError(f"the mission has no [link]: only level \"packets\" can be simulated, not {level!r}")
    if level != "packets":
        configs.link_config(mission)       # a MissionError naming the key if frames cannot be made
    cfg = configs.channel_config(mission) if level == "bits" else None
    if level != "bits" and imp.channel_only():
        raise ValueError(f"impairments {', '.join(imp.channel_only())} exist only at level \"bits\", "
                         f"not {level!r}")
    if level == "packets" and imp.any:
        raise ValueError("level \"packets\" takes no impairments")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x6753]))
    plan = make_plan(mission, rng)
    n = int(frames)
    tx, sched, vcfc, is_idle, packet_info, vc_mod = build_frames(rng, plan, n, idle_fraction, flush_fraction,
                                                                    clock_start)
    truth = empty_truth()
    truth["simulation"] = {"mission": plan.name, "frames": n, "seed": int(seed), "level": level,
                           "impairments": asdict(imp)}
    per_apid = {}
    for info in packet_info.values():
        per_apid.update(info["per_apid"])
    if level == "packets":
        capture = packet_level(truth, packet_info, list_limit)
        return SimulatedDownlink(capture, truth, level, tx, per_apid)
    rng_imp = np.random.default_rng(np.random.SeedSequence([int(seed), 0x1A7E]))
    status = np.full(n, "lost", dtype=object)        # per transmitted frame, its fate
    kept = np.arange(n)
    if imp.lost_frames:
        lost = choose_lost(rng_imp, int(imp.lost_frames), np.arange(n), sched, packet_info)
        kept = np.setdiff1d(kept, lost)
    if level == "frames":
        capture = frames_level(truth, rng_imp, imp, plan, cfg, tx, kept, status)
    else:
        capture = bits_level(truth, rng_imp, imp, plan, cfg, tx, kept, status)
    delivered = status == "delivered"
    rows = np.flatnonzero(delivered)
    f = truth["frames"]
    f["idle"] = int(is_idle[rows].sum())
    truth["virtual_channels"] = vc_truth(rows, sched, vcfc, is_idle, vc_mod)
    mc = master_channel_truth(tx[rows], plan)
    if mc is not None:
        truth["master_channel"] = mc
    packet_truth(truth, packet_info, delivered, list_limit)
    truth["sync"]["bits_in"] = len(capture) * 8
    if soft:
        capture = soft_symbols(capture, soft_cfg, rng_imp, ebn0_db).tobytes()
        truth["simulation"].update(level="soft", symbols=soft_cfg.symbols, ebn0_db=ebn0_db)
        if ebn0_db is not None:
            truth["exact"] = False
            truth["notes"].append(f"Eb/N0 {ebn0_db} dB: the truth is the noiseless decode")
        level = "soft"
    if not truth["notes"]:
        del truth["notes"]
    return SimulatedDownlink(capture, truth, level, tx, per_apid)


def _with_symbols(mission, symbols: str | None):
    """The mission with its soft symbol kind replaced (``symbols`` None: as it says; a hard
    mission gets float32)."""
    import dataclasses
    link = mission.link
    kind = symbols or (link.symbols if link.symbols != "hard" else "soft-float32")
    if kind == link.symbols:
        return mission
    level = "bits" if kind == "hard" else "soft"
    return dataclasses.replace(mission, link=dataclasses.replace(link, symbols=kind, level=level))


def packet_level(truth: dict, packet_info: dict, list_limit: int) -> bytes:
    """The Space Packet stream (no idle packets), VCs merged in their packets' order."""
    parts = []
    for v in sorted(packet_info):
        info = packet_info[v]
        real = info["apids"] != IDLE_APID
        parts.append((info, real))
    truth["frames"] = {k: 0 for k in truth["frames"]}
    truth["virtual_channels"] = {}
    truth["sync"] = {"bits_in": 0, "lock_losses": 0, "inverted_codeblocks": 0}
    chunks = []
    for info, real in parts:
        starts, lens = info["starts"][real], info["lengths"][real]
        out = np.empty(int(lens.sum()), np.uint8)
        dst = np.zeros(len(lens), np.int64)
        if len(lens):
            np.cumsum(lens[:-1], out=dst[1:])
        scatter(info["stream"], starts, lens, out, dst)
        chunks.append(out)
    # every packet is delivered: reuse the frame-level rule with all frames delivered
    total_rows = max([int(i["rows"].max()) + 1 for i in packet_info.values() if len(i["rows"])] or [0])
    packet_truth(truth, packet_info, np.ones(total_rows, bool), list_limit)
    truth["idle_packets"] = 0
    truth["sync"]["bits_in"] = int(sum(c.size for c in chunks)) * 8
    if not truth["notes"]:
        del truth["notes"]
    return b"".join(c.tobytes() for c in chunks)


# ----------------------------------------------------------------------------- files

def write_capture(path: str | Path, mission, *, frames: int = 1000, seed: int = 0,
                  impairments: Impairments | None = None, level: str | None = None,
                  **options) -> SimulatedDownlink:
    """Simulate and write ``path`` (the capture) and ``path``.truth.json."""
    sim = simulate(mission, frames=frames, seed=seed, impairments=impairments, level=level, **options)
    sim.write(path)
    return sim


_IMPAIRMENT_NAMES = {f for f in Impairments.__dataclass_fields__}


def simulate_to_file(mission, out_path: str | Path, frames: int = 1000, seed: int = 0, *,
                     impairments: Impairments | None = None, level: str | None = None,
                     **kwargs) -> dict:
    """The CLI's entry: ``mission`` is a Mission or a path; impairments as an
    :class:`Impairments` or as keyword arguments (``lost_frames=3``). Returns the truth."""
    imp_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in _IMPAIRMENT_NAMES}
    if imp_kwargs:
        base = asdict(impairments) if impairments is not None else {}
        base.update(imp_kwargs)
        impairments = Impairments(**base)
    return write_capture(out_path, mission, frames=frames, seed=seed, impairments=impairments,
                         level=level, **kwargs).truth


#: bytes of random data the IQ recording sends before the first CADU (loops acquire on it)
PREAMBLE_BYTES = 256


def write_iq_recording(path: str | Path, mission, *, frames: int = 1000, seed: int = 0,
                       impairments: Impairments | None = None, sample_rate: float | None = None,
                       datatype: str = "cf32_le", center_frequency: float = 0.0, esn0_db: float | None = None,
                       frequency_hz: float = 0.0, drift_hz_s: float = 0.0, timing_offset: float = 0.0,
                       clock_ppm: float = 0.0, clock_start: float | None = None) -> dict:
    """A SigMF recording (``path`` ending .sigmf-meta, its .sigmf-data beside it) of the
    mission's downlink with its [modulation]: the CADU stream -> [NRZ-M] -> inner code ->
    modulated samples with the impairments (Es/N0, carrier offset and drift, timing offset,
    clock error). Writes ``path``.truth.json (the noiseless truth, marked not exact when
    impaired) and returns it. ``sample_rate`` default: 4 samples per symbol."""
    from groundseg.sim_iq import channel_symbols, simulate_sigmf
    mission = load(mission)
    if getattr(mission, "modulation", None) is None:
        raise ValueError("an IQ recording needs the mission's [modulation] table (docs/sdr.md)")
    link = mission.link
    hard = _with_symbols(mission, "hard")
    sim = simulate(hard, frames=frames, seed=seed, impairments=impairments, level="bits",
                   clock_start=clock_start)
    # a real pass starts with carrier and idle symbols before the first frame, which the
    # demodulator's loops use to acquire: a preamble of random bytes (no sync marker in it)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x1A51]))
    preamble = rng.integers(0, 256, PREAMBLE_BYTES, dtype=np.uint8)
    syms = channel_symbols(np.concatenate([preamble, np.frombuffer(sim.capture, np.uint8)]), link.convolutional,
                           link.convolutional_variant, link.differential)
    mod = mission.modulation
    fs = float(sample_rate or 4 * mod.symbol_rate)
    # a mission whose receiver hands on audio puts the signal at audio_center: so does the recording
    meta = simulate_sigmf(str(path).removesuffix(".sigmf-meta"), syms, mod, fs, center_frequency, datatype=datatype,
                          esn0_db=esn0_db, frequency_hz=frequency_hz + mod.audio_center, drift_hz_s=drift_hz_s,
                          timing_offset=timing_offset, clock_ppm=clock_ppm, seed=int(seed))
    truth = sim.truth
    truth["simulation"].update(level="iq", scheme=mod.scheme, sample_rate=fs, esn0_db=esn0_db,
                               frequency_hz=frequency_hz, drift_hz_s=drift_hz_s, timing_offset=timing_offset,
                               clock_ppm=clock_ppm)
    if esn0_db is not None or frequency_hz or drift_hz_s or timing_offset or clock_ppm:
        truth["exact"] = False
        truth.setdefault("notes", []).append("impaired samples: the truth is the noiseless decode")
    Path(str(meta) + ".truth.json").write_text(json.dumps(truth, indent=1, sort_keys=True) + "\n")
    return truth
