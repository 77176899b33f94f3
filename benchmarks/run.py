"""Benchmark runner: every stage's throughput, peak RSS, CPU model and versions.

`python -m benchmarks.run [--quick] [--only NAME] [--out FILE]` prints a table
and writes JSON (default benchmarks/results/<timestamp>.json and latest.json).
Each module benchmarks/bench_*.py exposes ``run(quick: bool) -> list[dict]``;
rows carry a "stage" and whichever of mbit_s / mpackets_s / x_real_time apply.
Figures are measured after a warm-up call, so JIT compilation is excluded.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import platform
import resource
import sys
import time
from pathlib import Path

logging.getLogger("ccsdspy").setLevel(logging.WARNING)

MODULES = ["bench_reed_solomon", "bench_viterbi", "bench_sync", "bench_link", "bench_telemetry", "bench_packets",
           "bench_channel", "bench_archive", "bench_end_to_end", "bench_receive", "bench_demod"]


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict:
    from groundseg.mission import import_ccsdspy
    import_ccsdspy()  # quietly: ccsdspy logs a line at import
    out = {"python": platform.python_version()}
    for name in ("numpy", "numba", "h5py", "ccsdspy", "groundseg"):
        try:
            out[name] = importlib.import_module(name).__version__
        except Exception:  # noqa: BLE001 - a missing optional package is reported, not fatal
            out[name] = None
    return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fmt_row(row: dict) -> str:
    parts = [f"{row.get('stage', '?'):<32s}", f"{row.get('params', ''):<36s}"]
    for key, unit in (("mbit_s", "Mbit/s"), ("mbit_s_cpu", "Mbit/s per CPU s"),
                      ("mbit_s_cpu_steady", "after start-up"), ("mpackets_s", "Mpkt/s"),
                      ("msamples_s", "Msps"), ("x_real_time", "x RT"), ("peak_rss_mb", "MB RSS"),
                      ("packets_per_mb", "packets/MB")):
        if row.get(key) is not None:
            parts.append(f"{row[key]:>10.1f} {unit}")
    if row.get("target") is not None:
        parts.append(f"(target {row['target']})")
    if row.get("error"):
        parts.append(f"ERROR {row['error']}")
    return " ".join(parts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.run")
    ap.add_argument("--quick", action="store_true", help="small sizes, for CI")
    ap.add_argument("--only", action="append", help="run only these modules (e.g. bench_sync)")
    ap.add_argument("--out", help="JSON output file")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    results = {"cpu": cpu_model(), "cores": os.cpu_count(), "versions": versions(),
               "quick": args.quick, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "rows": []}
    print(f"groundseg benchmarks  cpu: {results['cpu']}  ({'quick' if args.quick else 'full'})")
    failed = 0
    for name in args.only or MODULES:
        try:
            mod = importlib.import_module(f"benchmarks.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"benchmarks.{name}":
                continue
            raise
        t0 = time.perf_counter()
        try:
            rows = mod.run(args.quick)
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
            failed += 1
            rows = [{"stage": name, "error": f"{type(exc).__name__}: {exc}"}]
        for row in rows:
            row.setdefault("module", name)
            results["rows"].append(row)
            print(fmt_row(row), flush=True)
        print(f"  ({name}: {time.perf_counter() - t0:.1f} s)", flush=True)
    results["peak_rss_mb"] = peak_rss_mb()
    print(f"peak RSS of the benchmark process: {results['peak_rss_mb']:.0f} MB")
    out = Path(args.out) if args.out else Path(__file__).parent / "results" / (
        time.strftime("%Y%m%dT%H%M%S") + ("-quick" if args.quick else "") + ".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    (out.parent / "latest.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
