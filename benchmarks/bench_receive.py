"""Live receive through a real pseudo-terminal: top sustained rate and CPU share of `groundseg receive`.

The emulator (in this process, a thread) writes a simulated hard-bit CADU stream into a
pty's master at a paced line rate; `groundseg receive` (a subprocess: pyserial reader
thread, raw journal, decoding, HDF5 archive) reads the slave. Rows:

- ``receive_pty_max``: the emulator unpaced: the highest rate that goes through the pty
  and the receiver (bytes sent / time until the receiver has read them all);
- ``receive_cpu_<R>``: the CPU share of the receive process (user + system time from
  /proc over the streaming interval, 100 % = one core) at R Mbit/s offered, and whether
  it kept up (everything read by the end of the stream); ``_no_archive``: the same
  without the HDF5 archive (reader, journal and decoding alone).

The stream is simulated once (distinct seeds, so the archive deduplicates nothing) and
sent once per row. Quick: 1 s of stream per row; full: 4 s. Two cores shared with other
work: figures vary by tens of percent run to run.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MISSION = ROOT / "fixtures" / "missions" / "demo.toml"
RATES = (1e6, 10e6, 50e6)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pieces(seconds: float, rate: float, mission) -> list[bytes]:
    from groundseg.pipeline import channel_config
    from groundseg.sources.emulator import frame_pieces
    from groundseg.spacecraft import simulate
    cadu = channel_config(mission).cadu_length
    need = int(rate / 8 * seconds)
    parts, have, seed = [], 0, 101
    while have < need:
        frames = max(200, min(20_000, (need - have) // cadu + 1))
        parts.append(simulate(mission, frames=frames, seed=seed).capture)
        have += len(parts[-1])
        seed += 1
    return frame_pieces(b"".join(parts), "raw", cadu)


def _one(tmp: Path, pieces: list[bytes], rate: float, tag: str, warm: list[bytes], archive: bool = True) -> dict:
    """One receive process: ``warm`` first (imports, numba cache, archive creation: untimed),
    then ``pieces`` at ``rate``, measured."""
    from groundseg.sources.emulator import Emulator
    link = tmp / f"dev-{tag}"
    emu = Emulator(warm, link, rate=20e6, wait_open=60)
    emu.plug()
    report = tmp / f"report-{tag}.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "groundseg", "receive", "--port", str(link), "--mission",
                             str(MISSION), "--profile", "usb-cdc-raw", "--archive", str(tmp / f"arc-{tag}"),
                             "--report", str(report), "-q"] + ([] if archive else ["--no-archive"]), env=env, cwd=ROOT)
    try:
        warm_bytes = emu.run(hold=1.0).bytes_sent
        emu.pieces, emu.rate, emu.wait_open_s = pieces, rate, 0
        emu.stats = type(emu.stats)()
        cpu0, t0 = _cpu_seconds(proc.pid), time.perf_counter()
        stats = emu.run(hold=0)            # returns once the receiver has read everything
        cpu1, t1 = _cpu_seconds(proc.pid), time.perf_counter()
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        emu.close()
    rep = json.loads(report.read_text())
    wall = t1 - t0
    sent = stats.bytes_sent
    return {"offered_mbit_s": rate / 1e6, "mbit_s": sent * 8 / wall / 1e6, "seconds": wall,
            "cpu_percent": 100 * (cpu1 - cpu0) / wall,
            "received_all": rep["source"]["bytes_in"] == sent + warm_bytes, "frames": rep["frames"]["total"],
            "spills": rep["source"].get("decoder_caught_up_from_journal", 0)}


def run(quick: bool) -> list[dict]:
    from groundseg.mission import load_mission
    mission = load_mission(MISSION)
    seconds = 1.0 if quick else 4.0
    rows = []
    with tempfile.TemporaryDirectory(prefix="groundseg-bench-rx-") as tmp:
        tmp = Path(tmp)
        warm = _pieces(0.2, 10e6, mission)
        pieces = _pieces(seconds, max(RATES), mission)    # the stream for the 50 Mbit/s row
        size = sum(map(len, pieces))
        r = _one(tmp, pieces, 1e12, "max", warm)
        rows.append({"stage": "receive_pty_max", "params": f"raw CADUs, {size / 1e6:.1f} MB unpaced",
                     "mbit_s": r["mbit_s"], **{k: r[k] for k in ("cpu_percent", "received_all", "spills")}})
        for rate in RATES:
            n = max(1, min(len(pieces), int(rate / 8 * seconds) // len(pieces[0])))
            for archive in ((True, False) if not quick or rate == 10e6 else (True,)):
                r = _one(tmp, pieces[:n], rate, f"{rate / 1e6:g}{'' if archive else 'n'}", warm, archive)
                rows.append({"stage": f"receive_cpu_{rate / 1e6:g}M" + ("" if archive else "_no_archive"),
                             "params": f"{rate / 1e6:g} Mbit/s offered, {r['seconds']:.1f} s",
                             "mbit_s": r["mbit_s"], "cpu_percent": r["cpu_percent"],
                             "received_all": r["received_all"], "spills": r["spills"]})
    for row in rows:
        row["params"] += f"  CPU {row['cpu_percent']:.0f}%"
    return rows


if __name__ == "__main__":
    for row in run("--quick" in sys.argv):
        print(json.dumps(row))
