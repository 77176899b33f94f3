"""End to end: `groundseg replay` of a hard-bit CADU capture into the HDF5 archive.

Measures Mbit/s of capture, x real time at the demo mission's bit rate and the
replay process's peak RSS (each replay in a fresh process of its own, so the
figure is that replay's alone). The capture is simulated demo downlink in pieces
of about 100 MB, each from its own seed: every packet is new to the archive (a
repeated piece would be deduplicated and flatter the figure); each piece restarts
the counters, which the decoder counts as gaps.
Quick: 200 MB (the CI size); full: 200 MB and 2 GB (10 GB with GROUNDSEG_BENCH_10G=1),
then the growing archive (GROUNDSEG_BENCH_PASSES passes of 100 MB, default 100).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MISSION = ROOT / "fixtures" / "missions" / "demo.toml"
PASS_SPACING = 6000.0   # s between passes of the growing archive (a LEO orbit)


def _make_capture(path: Path, size: int, seed: int = 11, clock_start: float | None = None) -> int:
    """``size`` bytes of demo CADUs in pieces of their own seed; with ``clock_start`` the
    onboard clock runs on from piece to piece (a pass), else each piece starts somewhere
    in one day (the simulator's default)."""
    from groundseg.mission import load_mission
    from groundseg.spacecraft import DEFAULT_BIT_RATE, simulate
    mission = load_mission(MISSION)
    bit_rate = float(getattr(mission.link, "bit_rate", 0) or DEFAULT_BIT_RATE)
    piece_frames = max(200, min(80_000, size // 1279 + 1))
    written = 0
    with open(path, "wb") as f:
        while written < size:
            t0 = None if clock_start is None else clock_start + written * 8 / bit_rate
            piece = simulate(mission, frames=piece_frames, seed=seed, clock_start=t0).capture
            f.write(piece)
            written += len(piece)
            seed += 1
            del piece
    return written


# each replay runs under its own parent, whose RUSAGE_CHILDREN is that replay alone
_MEASURE = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
            "r = resource.getrusage(resource.RUSAGE_CHILDREN); "
            "print(r.ru_maxrss, r.ru_utime + r.ru_stime)")


def _replay(cap: Path, archive: Path | None, report: Path, env: dict) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of one `groundseg replay` in a process of its own."""
    cmd = [sys.executable, "-m", "groundseg", "replay", str(cap), "--mission", str(MISSION), "-q",
           "--report", str(report)]
    cmd += ["--archive", str(archive)] if archive is not None else ["--no-archive"]
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], env=env, cwd=ROOT,
                         capture_output=True, text=True)
    if out.returncode != 0:   # say why: a 10 GB run that fails is not cheap to repeat
        raise RuntimeError(f"replay of {cap} failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
    seconds = time.perf_counter() - t0
    rss_kb, cpu = out.stdout.strip().splitlines()[-1].split()
    return seconds, float(cpu), int(rss_kb) / 1024


def _warm(small: Path, archive: Path, env: dict) -> None:
    """Compile and cache every kernel a replay reaches: ``small`` replayed twice into one
    archive (the second time its packets meet the first's in dedup, whose overlap kernel
    a first pass never runs; compiled inside a timed run instead, it added ~50 MB to the
    run's peak RSS and its CPU to the figure)."""
    for _ in range(2):
        subprocess.run([sys.executable, "-m", "groundseg", "replay", str(small), "--mission", str(MISSION),
                        "--archive", str(archive), "-q"], check=True, env=env, cwd=ROOT)


def _sizes(quick: bool) -> list[int]:
    """200 MB (quick, CI); full: 200 MB and 2 GB, and 10 GB with GROUNDSEG_BENCH_10G=1."""
    if quick:
        return [200 << 20]
    sizes = [200 << 20, 2 << 30]
    if os.environ.get("GROUNDSEG_BENCH_10G"):
        sizes.append(10 << 30)
    return sizes


def run(quick: bool) -> list[dict]:
    from groundseg.mission import load_mission
    bit_rate = float(load_mission(MISSION).link.bit_rate or 0)
    rows = []
    for want in _sizes(quick):
        rows += _run_size(want, bit_rate, archive_only=want != _sizes(quick)[0])
    if not quick:
        rows += growth(int(os.environ.get("GROUNDSEG_BENCH_PASSES", "100")))
    return rows


def _run_size(want: int, bit_rate: float, archive_only: bool) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="groundseg-bench-") as tmp:
        cap = Path(tmp) / "capture.cadu"
        size = _make_capture(cap, want)
        env = dict(os.environ)
        # warm the numba cache in a short run so the timed run measures decoding, not compiling
        small = Path(tmp) / "small.cadu"
        with open(cap, "rb") as src, open(small, "wb") as dst:
            dst.write(src.read(4 << 20))
        _warm(small, Path(tmp) / "warm", env)
        # start-up (imports, numba cache loads, a new archive) and 4 MB: taken off the CPU
        # time for the steady rate, which is what a long pass sees
        _, startup_cpu, _ = _replay(small, Path(tmp) / "warm2", Path(tmp) / "warm.json", env)
        for archive in ((True,) if archive_only else (True, False)):
            report = Path(tmp) / "report.json"
            seconds, cpu, rss = _replay(cap, Path(tmp) / "archive" if archive else None, report, env)
            rep = json.loads(report.read_text())
            packets = sum(p["count"] for p in rep["packets"].values())
            rows.append({
                "stage": "end_to_end_replay" + ("_archive" if archive else "_no_archive"),
                "params": f"demo TM 1115 B RS I=5, {size / 1e6:.0f} MB hard CADUs",
                "mbit_s": size * 8 / seconds / 1e6,
                "mbit_s_cpu": size * 8 / cpu / 1e6,   # per CPU second: steadier on a shared machine
                "mbit_s_cpu_steady": (size - small.stat().st_size) * 8 / max(cpu - startup_cpu, 1e-9) / 1e6,
                "startup_cpu_seconds": startup_cpu,
                "x_real_time": (size * 8 / bit_rate / seconds) if bit_rate else None,
                "peak_rss_mb": rss, "seconds": seconds, "cpu_seconds": cpu, "bytes": size,
                "frames": rep["frames"]["total"],
                "packets": packets,
                # the simulator's packet mix varies with the seed (11,000 to 22,000 packets
                # per MB): the cost of archiving goes with this density, so it is shown
                "packets_per_mb": packets / (size / 1e6),
                "target": ">= 500 Mbit/s, RSS < 400 MB",
            })
    return rows


def growth(passes: int, pass_bytes: int = 100_000_000, plot: Path | None = None,
           on_pass=None) -> list[dict]:
    """A growing archive: ``passes`` passes of ``pass_bytes`` of demo CADUs (each its own
    seed, so every packet is new) replayed one after another into one archive, received
    ``PASS_SPACING`` apart. Each pass is also replayed into a fresh archive right after:
    on a shared machine the host's speed drifts by tens of per cent over a long run, and
    the simulator's packet mix varies with the seed, so what the archive's size costs is
    the ratio of the two (1.0: nothing). Rows: the time per pass (wall, CPU, and that
    ratio) against the archive's size; the figure (matplotlib) goes to
    benchmarks/results/growth.png. Flat: the last tenth within 1.2x of the first."""
    rows = []
    per_pass = []
    with tempfile.TemporaryDirectory(prefix="groundseg-growth-") as tmp:
        env = dict(os.environ)
        arc = Path(tmp) / "archive"
        fresh = Path(tmp) / "fresh"
        cap = Path(tmp) / "pass.cadu"
        report = Path(tmp) / "report.json"
        # a replay dates a capture by its file's mtime (end of reception): passes 100 minutes
        # apart, as a LEO spacecraft's are; captures written seconds apart would all overlap
        # in reception time, and dedup must then check each against the ~30 before it. The
        # onboard clock advances with them: left to the simulator, every pass's onboard
        # time falls in one day, and a late pass's keys overlap ever more earlier passes
        first_pass_end = time.time() - passes * PASS_SPACING
        for i in range(passes):
            size = _make_capture(cap, pass_bytes, seed=1000 + 97 * i,
                                 clock_start=first_pass_end + i * PASS_SPACING - 1000.0)
            os.utime(cap, (first_pass_end + i * PASS_SPACING,) * 2)
            if i == 0:  # warm the numba cache
                with open(cap, "rb") as src, open(Path(tmp) / "small.cadu", "wb") as dst:
                    dst.write(src.read(4 << 20))
                _warm(Path(tmp) / "small.cadu", Path(tmp) / "warm", env)
            seconds, cpu, rss = _replay(cap, arc, report, env)
            archive_bytes = (arc / "demo.h5").stat().st_size
            _, cpu_fresh, _ = _replay(cap, fresh, Path(tmp) / "fresh.json", env)
            shutil.rmtree(fresh)
            per_pass.append((i + 1, archive_bytes, seconds, cpu, rss, size, cpu_fresh))
            if on_pass is not None:   # a long run shows its progress
                on_pass(per_pass[-1])
        cap.unlink(missing_ok=True)
    k = max(1, len(per_pass) // 10)

    def tenth_ratio(values):
        return (sum(values[-k:]) / k) / (sum(values[:k]) / k)
    for n, abytes, seconds, cpu, rss, size, cpu_fresh in per_pass:
        rows.append({"stage": "growth_pass", "params": f"pass {n}, archive {abytes / 1e9:.2f} GB",
                     "mbit_s": size * 8 / seconds / 1e6, "mbit_s_cpu": size * 8 / cpu / 1e6,
                     "peak_rss_mb": rss, "seconds": seconds, "cpu_seconds": cpu,
                     "cpu_seconds_fresh_archive": cpu_fresh, "cpu_over_fresh": cpu / cpu_fresh,
                     "archive_bytes": abytes})
    rows.append({"stage": "growth_summary", "params": f"{len(per_pass)} passes of {pass_bytes / 1e6:.0f} MB",
                 "cpu_last_over_first": tenth_ratio([p[3] for p in per_pass]),
                 "cpu_over_fresh_last_over_first": tenth_ratio([p[3] / p[6] for p in per_pass]),
                 "target": "last tenth within 1.2x of the first"})
    _plot_growth(per_pass, plot or Path(__file__).parent / "results" / "growth.png")
    return rows


def _plot_growth(per_pass, out: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    gb = [p[1] / 1e9 for p in per_pass]
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    ax.plot(gb, [p[2] for p in per_pass], "o-", ms=3, label="wall s")
    ax.plot(gb, [p[3] for p in per_pass], "s-", ms=3, label="CPU s")
    ax.plot(gb, [p[6] for p in per_pass], "^-", ms=3, alpha=0.6, label="CPU s, same pass into a new archive")
    ax.set_ylabel(f"time per pass of {per_pass[0][5] / 1e6:.0f} MB (s)")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("groundseg: replay into a growing archive (demo mission)")
    ax2.plot(gb, [p[3] / p[6] for p in per_pass], "o-", ms=3)
    ax2.axhline(1.0, color="grey", lw=0.8)
    ax2.set_ylabel("CPU: growing / new archive")
    ax2.set_xlabel("archive size after the pass (GB)")
    ax2.set_ylim(0.5, 1.6)
    ax2.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--growth", type=int, help="only the growing-archive benchmark, this many passes")
    ap.add_argument("--pass-mb", type=int, default=100)
    args = ap.parse_args()
    if args.growth:
        rows = growth(args.growth, args.pass_mb * 1_000_000,
                      on_pass=lambda p: print("pass %d: archive %.2f GB, %.2f s, %.2f CPU s, %.0f MB, "
                                              "%.2f CPU s into a new archive"
                                              % (p[0], p[1] / 1e9, p[2], p[3], p[4], p[6]),
                                              file=sys.stderr, flush=True))
    else:
        from groundseg.mission import load_mission
        rate = float(load_mission(MISSION).link.bit_rate or 0)
        rows = []
        for i, want in enumerate(_sizes(False)):   # each size printed as soon as it is measured
            for row in _run_size(want, rate, archive_only=i > 0):
                print(json.dumps(row), flush=True)
        rows = growth(int(os.environ.get("GROUNDSEG_BENCH_PASSES", "100")))
    for row in rows:
        print(json.dumps(row))
