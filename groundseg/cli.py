"""`groundseg` command line: a thin layer over the library, and the only place that prints.

Exit status: 0 success (rejected frames are data, not failure), 2 bad usage,
a bad mission file or a mission that does not match the archive, 1 any other
error. Errors are one line on stderr, never a traceback (``-v`` shows it).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

# ccsdspy logs a line at import time; a CLI's output is ours alone
logging.getLogger("ccsdspy").setLevel(logging.WARNING)

from groundseg import __version__  # noqa: E402
from groundseg.errors import UsageError  # noqa: E402  (exit status 2)


# -- output helpers ---------------------------------------------------------------------------
class Console:
    def __init__(self, quiet: bool = False, verbose: bool = False):
        self.quiet = quiet
        self.verbose = verbose
        self.tty = sys.stderr.isatty()
        self._last = 0.0
        self._progress_shown = False

    def out(self, text: str = "") -> None:
        if not self.quiet:
            print(text)

    def progress(self, p) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        final = p.bytes_done >= p.bytes_total
        if self.tty:
            if now - self._last < 0.1 and not final:
                return
            self._last = now
            width = 30
            frac = p.bytes_done / p.bytes_total if p.bytes_total else 1.0
            bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
            sys.stderr.write(f"\r[{bar}] {frac * 100:5.1f}%  {p.bytes_done / 1e6:8.1f} MB  "
                             f"{p.mbit_s:8.1f} Mbit/s  frames {p.frames:,}  packets {p.packets:,}")
            if final:
                sys.stderr.write("\n")
            sys.stderr.flush()
            self._progress_shown = True
        elif now - self._last >= 5.0 or final:
            self._last = now
            frac = p.bytes_done / p.bytes_total if p.bytes_total else 1.0
            sys.stderr.write(f"progress {frac * 100:.1f}% {p.bytes_done / 1e6:.1f} MB "
                             f"{p.mbit_s:.1f} Mbit/s frames {p.frames} packets {p.packets}\n")


def format_report(report: dict, mission=None, extra: dict | None = None) -> str:
    f = report["frames"]
    lines = []
    if extra:
        lines.append("  ".join(f"{k} {v}" for k, v in extra.items()))
    lines.append(f"frames    total {f['total']:,}  clean {f['clean']:,}  corrected {f['corrected']:,}  "
                 f"uncorrectable {f['uncorrectable']:,}  crc-failed {f['crc_failed']:,}  "
                 f"rejected {f['rejected']:,}  idle {f['idle']:,}")
    s = report["sync"]
    lines.append(f"sync      bits {s['bits_in']:,}  lock losses {s['lock_losses']:,}  "
                 f"inverted {s['inverted_codeblocks']:,}  RS symbols corrected {report['rs_symbols_corrected']:,}")
    for vcid, vc in sorted(report["virtual_channels"].items(), key=lambda kv: int(kv[0])):
        lines.append(f"VC {int(vcid):<5d}  frames {vc['frames']:,}  idle {vc['idle']:,}  gaps {vc['gaps']:,}  "
                     f"lost {vc['frames_lost']:,}")
    names = {}
    if mission is not None:
        names = {a.id: a.name for a in mission.apids.values()}
    for apid, p in sorted(report["packets"].items(), key=lambda kv: int(kv[0])):
        name = names.get(int(apid), "")
        lines.append(f"APID {int(apid):<4d} {name:<12s} packets {p['count']:,}  bytes {p['bytes']:,}  "
                     f"seq gaps {p['sequence_gaps']:,}  missing {p['sequence_missing']:,}  "
                     f"dropped {p['dropped_incomplete']:,}")
    if report.get("idle_packets"):
        lines.append(f"idle packets {report['idle_packets']:,}")
    rejects = {k: v for k, v in report["rejects"].items() if v}
    lines.append("rejects   " + ("  ".join(f"{k} {v:,}" for k, v in sorted(rejects.items())) or "none"))
    return "\n".join(lines)


def _keep_freed_memory() -> None:
    """Have glibc keep freed memory for reuse instead of returning it to the kernel.

    Decoding allocates a few arrays of several MiB per chunk; by default glibc maps each
    from fresh pages and unmaps it when freed, so every chunk pays page faults on memory
    it just gave back (measured: 140 k faults and 0.6 s of system time on a 230 MB replay,
    25 k and 0.2 s with this). A process-wide malloc policy belongs to the program, not
    the library, hence here. No-op where glibc's ``mallopt`` is absent.
    """
    try:
        import ctypes
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):   # TypeError: Windows wants a library name
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 << 20)   # glibc's upper limit for the threshold
    mallopt(m_trim_threshold, 1 << 30)


# -- commands ---------------------------------------------------------------------------------
def _load_mission(path):
    from groundseg.mission import load_mission
    return load_mission(path)


def cmd_replay(args, con: Console) -> int:
    from groundseg.pipeline import Pipeline
    from groundseg.sources.capture import CaptureFile

    mission = _load_mission(args.mission)
    for p in args.captures:
        CaptureFile(p)  # fail before anything is archived
    writer = None
    t0 = time.perf_counter()
    if not args.no_archive:
        from groundseg.archive.hdf5 import ArchiveWriter
        writer = ArchiveWriter(args.archive, mission)
        source = " ".join(str(Path(p)) for p in args.captures)
        writer.begin_pass(source)
    try:
        pipe = Pipeline(mission, level=args.level, archive=writer, on_progress=con.progress)
        report = pipe.replay(args.captures)
    except BaseException:
        if writer is not None:
            writer.abort_pass()
        raise
    seconds = time.perf_counter() - t0
    size = sum(Path(p).stat().st_size for p in args.captures)
    extra = {"mission": mission.name, "captures": len(args.captures), "MB": f"{size / 1e6:.1f}",
             "seconds": f"{seconds:.2f}", "Mbit/s": f"{size * 8 / 1e6 / seconds:.1f}" if seconds else "-"}
    bit_rate = float(getattr(mission.link, "bit_rate", 0) or 0) if mission.link else 0
    if bit_rate and seconds:
        extra["x real time"] = f"{size * 8 / bit_rate / seconds:.1f}"
    if writer is not None:
        info = writer.end_pass(report)
        writer.close()
        extra["archive"] = str(writer.path)
        if isinstance(info, dict):
            if "pass_id" in info:
                extra["pass"] = info["pass_id"]
            if "duplicates" in info:
                extra["duplicates skipped"] = info["duplicates"]
            report["archive"] = {k: v for k, v in info.items() if isinstance(v, (int, float, str))}
    con.out(format_report(report, mission, extra))
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(json.dumps(report, indent=2, sort_keys=True))
    return 0


def cmd_simulate(args, con: Console) -> int:
    from groundseg import spacecraft
    mission = _load_mission(args.mission)
    imp = spacecraft.Impairments(
        bit_error_rate=args.ber, byte_errors_per_codeword=args.byte_errors,
        byte_error_fraction=args.byte_error_fraction, lost_frames=args.lost_frames,
        bit_slips=args.bit_slips, slip_bits=args.slip_bits, garbage_bytes=args.garbage,
        garbage_length=args.garbage_length, inverted=args.invert, polarity_flips=args.polarity_flips,
        bit_offset=args.bit_offset, truncate_last=args.truncate_last)
    truth = spacecraft.simulate_to_file(mission, args.out, frames=args.frames, seed=args.seed,
                                        impairments=imp, level=args.level)
    f = truth.get("frames", {})
    con.out(f"wrote {args.out} ({Path(args.out).stat().st_size:,} bytes, {f.get('total', 0):,} frames) "
            f"and {args.out}.truth.json")
    return 0


def cmd_inspect(args, con: Console) -> int:
    path = Path(args.target)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():  # the archive directory replay --archive writes
        is_hdf5 = True
    else:
        with open(path, "rb") as fh:
            is_hdf5 = fh.read(8) == b"\x89HDF\r\n\x1a\n"
    if is_hdf5:
        from groundseg.archive.export import describe_archive
        info = describe_archive(path)
    else:
        from groundseg.inspect import inspect_capture
        info = inspect_capture(path)
    con.out(json.dumps(info, indent=2, default=str) if args.json else _format_info(info))
    return 0


def _format_info(info, indent: int = 0) -> str:
    pad = "  " * indent
    lines = []
    if isinstance(info, dict):
        for k, v in info.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{k}:")
                lines.append(_format_info(v, indent + 1))
            else:
                lines.append(f"{pad}{k}: {v}")
    elif isinstance(info, list):
        for v in info:
            if isinstance(v, (dict, list)):
                lines.append(f"{pad}-")
                lines.append(_format_info(v, indent + 1))
            else:
                lines.append(f"{pad}- {v}")
    return "\n".join(lines)


def cmd_export(args, con: Console) -> int:
    from groundseg.archive.export import export_packets
    info = export_packets(args.archive, args.apid, args.out, fmt=args.format, passes=args.passes,
                          start=args.start, stop=args.stop)
    n = info.get("packets", "") if isinstance(info, dict) else info
    con.out(f"wrote {args.out} ({n} packets)")
    return 0


def cmd_plot(args, con: Console) -> int:
    from groundseg.archive.plot import plot_fields
    out = args.out or f"{Path(args.archive).stem}-{args.apid}.png"
    plot_fields(args.archive, args.apid, args.field, out, passes=args.passes, start=args.start,
                stop=args.stop)
    con.out(f"wrote {out}")
    return 0


def cmd_archive(args, con: Console) -> int:
    from groundseg.archive.export import repair
    info = repair(args.archive)
    con.out(_format_info(info) if isinstance(info, dict) else str(info))
    return 0


def cmd_bench(args, con: Console) -> int:
    from benchmarks.run import main as bench_main
    return bench_main(["--quick"] if args.quick else [])


def _time_selection(p: argparse.ArgumentParser) -> None:
    """--start/--stop/--pass of the archive commands (the read API's start, stop, passes)."""
    p.add_argument("--start", metavar="UTC", help="packets with onboard time >= this (ISO 8601 UTC)")
    p.add_argument("--stop", metavar="UTC", help="packets with onboard time < this (ISO 8601 UTC)")
    p.add_argument("--pass", dest="passes", type=int, action="append", metavar="N",
                   help="only pass N (repeatable; see inspect ARCHIVE for the passes)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="groundseg", description="CCSDS downlink to per-mission HDF5 archive.")
    p.add_argument("--version", action="version", version=f"groundseg {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    common.add_argument("-v", "--verbose", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser("replay", parents=[common], help="decode recorded captures (one pass) into the archive")
    r.add_argument("captures", nargs="+", metavar="CAPTURE")
    r.add_argument("--mission", "-m", required=True)
    r.add_argument("--archive", default="archive", help="archive directory (default ./archive)")
    r.add_argument("--no-archive", action="store_true", help="decode and report only")
    r.add_argument("--report", help="write the pass report as JSON")
    r.add_argument("--level", choices=["iq", "soft", "bits", "frames", "packets"],
                   help="where the capture enters the chain (default from the mission file)")
    r.set_defaults(func=cmd_replay)

    s = sub.add_parser("simulate", parents=[common], help="make a simulated downlink and its truth file")
    s.add_argument("--mission", "-m", required=True)
    s.add_argument("--out", "-o", required=True)
    s.add_argument("--frames", type=int, default=1000)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--level", choices=["bits", "frames", "packets"])
    s.add_argument("--ber", type=float, default=0.0, help="random bit error rate")
    s.add_argument("--byte-errors", type=int, default=0, help="byte errors per impaired RS codeword")
    s.add_argument("--byte-error-fraction", type=float, default=1.0,
                   help="fraction of codewords that get --byte-errors (default all)")
    s.add_argument("--lost-frames", type=int, default=0)
    s.add_argument("--bit-slips", type=int, default=0, help="bit slips between CADUs")
    s.add_argument("--slip-bits", type=int, default=1, help="bits inserted or deleted per slip")
    s.add_argument("--garbage", type=int, default=0, help="insertions of garbage between CADUs")
    s.add_argument("--garbage-length", type=int, default=64, help="bytes per garbage insertion")
    s.add_argument("--invert", action="store_true", help="invert every bit (BPSK phase ambiguity)")
    s.add_argument("--polarity-flips", type=int, default=0, help="polarity flips mid-stream")
    s.add_argument("--truncate-last", action="store_true", help="cut the last CADU short")
    s.add_argument("--bit-offset", type=int, default=0, help="start the stream this many bits in")
    s.set_defaults(func=cmd_simulate)

    i = sub.add_parser("inspect", parents=[common], help="what a capture or an archive contains")
    i.add_argument("target", metavar="CAPTURE|ARCHIVE")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_inspect)

    e = sub.add_parser("export", parents=[common], help="an APID's packets from the archive")
    e.add_argument("archive", metavar="ARCHIVE")
    e.add_argument("--apid", required=True, help="APID number or mission-file name")
    e.add_argument("--out", "-o", required=True)
    e.add_argument("--format", default="ccsds", choices=["ccsds", "csv", "parquet"])
    _time_selection(e)
    e.set_defaults(func=cmd_export)

    pl = sub.add_parser("plot", parents=[common], help="quicklook of decoded fields against onboard time")
    pl.add_argument("archive", metavar="ARCHIVE")
    pl.add_argument("--apid", required=True)
    pl.add_argument("--field", action="append", required=True)
    pl.add_argument("--out", "-o")
    _time_selection(pl)
    pl.set_defaults(func=cmd_plot)

    a = sub.add_parser("archive", parents=[common], help="archive maintenance")
    asub = a.add_subparsers(dest="archive_command", metavar="ACTION")
    rp = asub.add_parser("repair", parents=[common], help="clear a crashed writer's flags, close its pass")
    rp.add_argument("archive", metavar="ARCHIVE")
    rp.set_defaults(func=cmd_archive)

    b = sub.add_parser("bench", parents=[common], help="run the benchmark suite")
    b.add_argument("--quick", action="store_true")
    b.set_defaults(func=cmd_bench)
    return p


def _exit_code(exc: BaseException) -> int:
    from groundseg.mission import MissionError
    if isinstance(exc, (UsageError, MissionError, NotImplementedError)):
        return 2
    try:
        from groundseg.archive.hdf5 import ArchiveMismatchError
        if isinstance(exc, ArchiveMismatchError):
            return 2
    except ImportError:
        pass
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    con = Console(quiet=getattr(args, "quiet", False), verbose=getattr(args, "verbose", False))
    _keep_freed_memory()
    try:
        return int(args.func(args, con) or 0)
    except KeyboardInterrupt:
        print("groundseg: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:  # one clear line; the traceback only with -v
        if con.verbose:
            import traceback
            traceback.print_exc()
        msg = str(exc) or type(exc).__name__
        if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in msg:
            msg = f"{exc.filename}: {exc.strerror or msg}"
        print(f"groundseg: error: {msg.splitlines()[0] if msg else type(exc).__name__}", file=sys.stderr)
        return _exit_code(exc)


if __name__ == "__main__":
    sys.exit(main())
