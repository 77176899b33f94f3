"""End to end: `groundseg replay` of a hard-bit CADU capture into the HDF5 archive.

Measures Mbit/s of capture, x real time at the demo mission's bit rate and the
replay process's peak RSS (each replay in a fresh process of its own, so the
figure is that replay's alone). The capture is simulated demo downlink in pieces
of about 100 MB, each from its own seed: every packet is new to the archive (a
repeated piece would be deduplicated and flatter the figure); each piece restarts
the counters, which the decoder counts as gaps.
Quick: 200 MB (the CI size); full: 2 GB (the bounded-memory check).
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MISSION = ROOT / "fixtures" / "missions" / "demo.toml"


def _make_capture(path: Path, size: int) -> int:
    from groundseg.mission import load_mission
    from groundseg.spacecraft import simulate
    mission = load_mission(MISSION)
    piece_frames = max(200, min(80_000, size // 1279 + 1))
    written, seed = 0, 11
    with open(path, "wb") as f:
        while written < size:
            piece = simulate(mission, frames=piece_frames, seed=seed).capture
            f.write(piece)
            written += len(piece)
            seed += 1
            del piece
    return written


# each replay runs under its own parent, whose RUSAGE_CHILDREN is that replay alone
_MEASURE = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def run(quick: bool) -> list[dict]:
    from groundseg.mission import load_mission
    size = (200 << 20) if quick else (2 << 30)
    bit_rate = float(load_mission(MISSION).link.bit_rate or 0)
    rows = []
    with tempfile.TemporaryDirectory(prefix="groundseg-bench-") as tmp:
        cap = Path(tmp) / "capture.cadu"
        size = _make_capture(cap, size)
        env = dict(os.environ)
        # warm the numba cache in a short run so the timed run measures decoding, not compiling
        small = Path(tmp) / "small.cadu"
        with open(cap, "rb") as src, open(small, "wb") as dst:
            dst.write(src.read(4 << 20))
        subprocess.run([sys.executable, "-m", "groundseg", "replay", str(small), "--mission", str(MISSION),
                        "--archive", str(Path(tmp) / "warm"), "-q"], check=True, env=env, cwd=ROOT)
        for archive in (True, False):
            report = Path(tmp) / "report.json"
            cmd = [sys.executable, "-m", "groundseg", "replay", str(cap), "--mission", str(MISSION), "-q",
                   "--report", str(report)]
            cmd += ["--archive", str(Path(tmp) / "archive")] if archive else ["--no-archive"]
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], check=True, env=env, cwd=ROOT,
                                 capture_output=True, text=True)
            seconds = time.perf_counter() - t0
            rss_kb = int(out.stdout.strip().splitlines()[-1])
            rep = json.loads(report.read_text())
            mbit = size * 8 / seconds / 1e6
            rows.append({
                "stage": "end_to_end_replay" + ("_archive" if archive else "_no_archive"),
                "params": f"demo TM 1115 B RS I=5, {size / 1e6:.0f} MB hard CADUs",
                "mbit_s": mbit, "x_real_time": (size * 8 / bit_rate / seconds) if bit_rate else None,
                "peak_rss_mb": rss_kb / 1024,
                "seconds": seconds, "bytes": size,
                "frames": rep["frames"]["total"],
                "packets": sum(p["count"] for p in rep["packets"].values()),
                "target": ">= 500 Mbit/s, RSS < 500 MB",
            })
    return rows
