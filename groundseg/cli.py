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
def _eta(p) -> str:
    """Time left at the rate so far (m:ss), '-' before there is a rate or a total."""
    if not p.bytes_total or p.bytes_done <= 0 or p.seconds <= 0:
        return "-:--"
    left = max(p.bytes_total - p.bytes_done, 0) / (p.bytes_done / p.seconds)
    m, sec = divmod(int(round(left)), 60)
    return f"{m}:{sec:02d}"


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

    def warn(self, text: str) -> None:
        """One line on stderr (shown with -q too: a warning is not chatter)."""
        line = text if text.startswith("warning:") else f"warning: {text}"
        print(f"groundseg: {line}", file=sys.stderr)

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
            sys.stderr.write(f"\r[{bar}] {frac * 100:5.1f}%  ETA {_eta(p)}  {p.mbit_s:7.1f} Mbit/s  "
                             f"frames {p.frames:,}  RS {p.rs_symbols_corrected:,}  CRC {p.crc_failed:,}  "
                             f"gaps {p.gaps:,}  packets {p.packets:,}  ")
            if final:
                sys.stderr.write("\n")
            sys.stderr.flush()
            self._progress_shown = True
        elif now - self._last >= 5.0 or final:
            self._last = now
            frac = p.bytes_done / p.bytes_total if p.bytes_total else 1.0
            sys.stderr.write(f"progress {frac * 100:.1f}% {p.bytes_done / 1e6:.1f} MB ETA {_eta(p)} "
                             f"{p.mbit_s:.1f} Mbit/s frames {p.frames} RS corrections "
                             f"{p.rs_symbols_corrected} CRC failures {p.crc_failed} gaps {p.gaps} "
                             f"packets {p.packets}\n")


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
    lq = report.get("link_quality")
    if lq:
        ser, esn0 = lq.get("symbol_error_rate"), lq.get("esn0_db")
        lines.append(f"link      symbol error rate {'-' if ser is None else f'{ser:.4f}'}  "
                     f"Es/N0 {'-' if esn0 is None else f'{esn0:.1f} dB'}  "
                     f"alignment changes {len(lq.get('hypothesis_changes', []))}  "
                     f"lock losses {lq.get('lock_losses', 0):,}")
    for vcid, vc in sorted(report["virtual_channels"].items(), key=lambda kv: int(kv[0])):
        repeats = f"  repeats {vc['repeats']:,}" if vc.get("repeats") else ""
        lines.append(f"VC {int(vcid):<5d}  frames {vc['frames']:,}  idle {vc['idle']:,}  gaps {vc['gaps']:,}  "
                     f"lost {vc['frames_lost']:,}{repeats}")
    names = {}
    if mission is not None:
        names = {a.id: a.name for a in mission.apids.values()}
    for apid, p in sorted(report["packets"].items(), key=lambda kv: int(kv[0])):
        name = names.get(int(apid), "")
        lines.append(f"APID {int(apid):<4d} {name:<12s} packets {p['count']:,}  bytes {p['bytes']:,}  "
                     f"seq gaps {p['sequence_gaps']:,}  missing {p['sequence_missing']:,}  "
                     + (f"repeats {p['sequence_repeats']:,}  " if p.get("sequence_repeats") else "")
                     + f"dropped {p['dropped_incomplete']:,}")
    if report.get("idle_packets"):
        lines.append(f"idle packets {report['idle_packets']:,}")
    rejects = {k: v for k, v in report["rejects"].items() if v}
    lines.append("rejects   " + ("  ".join(f"{k} {v:,}" for k, v in sorted(rejects.items())) or "none"))
    return "\n".join(lines)


# -- commands ---------------------------------------------------------------------------------
def _load_mission(path):
    from groundseg.mission import load_mission
    return load_mission(path)


def _output_path(path, what: str) -> Path | None:
    """An output file whose directory must already exist (a typo must not create one)."""
    if path is None:
        return None
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{what} {p}: directory {parent} does not exist")
    if p.is_dir():
        raise UsageError(f"{what} {p}: is a directory")
    return p


def cmd_replay(args, con: Console) -> int:
    from groundseg.pipeline import Pipeline

    mission = _load_mission(args.mission)
    report_path = _output_path(args.report, "--report")
    # everything that can refuse the run is checked before a pass is opened: the level and
    # coding the mission asks for, and the captures
    pipe = Pipeline(mission, level=args.level, on_progress=con.progress)
    source = pipe.source_for(args.captures)
    writer = None
    t0 = time.perf_counter()
    if not args.no_archive:
        from groundseg.archive.hdf5 import ArchiveWriter
        writer = ArchiveWriter(args.archive, mission)
        writer.begin_pass(" ".join(str(Path(p)) for p in args.captures))
        pipe.archive = writer
    try:
        report = pipe.run(source)
    except BaseException:
        if writer is not None:
            writer.abort_pass()
        raise
    seconds = time.perf_counter() - t0
    size = source.total_bytes
    extra = {"mission": mission.name, "captures": len(args.captures), "MB": f"{size / 1e6:.1f}",
             "seconds": f"{seconds:.2f}", "Mbit/s": f"{size * 8 / 1e6 / seconds:.1f}" if seconds else "-"}
    stream_seconds = report.source.get("stream_seconds", 0)
    if stream_seconds and seconds:
        extra["x real time"] = f"{stream_seconds / seconds:.1f}"
    if writer is not None:
        info = writer.end_pass(report)
        writer.close()
        extra["archive"] = str(writer.path)
        if isinstance(info, dict):
            if "pass_id" in info:
                extra["pass"] = info["pass_id"]
            if "duplicates" in info:
                extra["duplicates skipped"] = info["duplicates"]
            report.extra["archive"] = {k: v for k, v in info.items() if isinstance(v, (int, float, str))}
    con.out(format_report(report, mission, extra))
    if report.decoded_nothing:
        con.warn(_nothing_decoded(args.captures, pipe))
    if report_path is not None:
        report_path.write_text(report.to_json(indent=2, sort_keys=True))
    return 0


def _nothing_decoded(captures, pipe) -> str:
    """One line on why a replay delivered nothing: what the capture looks like instead."""
    from groundseg.inspect import describe_failure
    from groundseg.mission.configs import channel_config
    link = pipe.mission.link
    expected = asm = asm_bits = None
    if pipe.level == "bits" and link is not None:
        cfg = channel_config(pipe.mission)
        expected, asm, asm_bits = cfg.codeblock_length, cfg.asm, cfg.asm_bits
    what = describe_failure(captures[0], expected, **({"asm": asm, "asm_bits": asm_bits} if asm else {}))
    return (f"nothing decoded from {captures[0]}{' (and the others)' if len(captures) > 1 else ''} "
            f"at level {pipe.level!r} with mission {pipe.mission.name!r}: {what}")


def cmd_simulate(args, con: Console) -> int:
    from groundseg import spacecraft
    mission = _load_mission(args.mission)
    imp = spacecraft.Impairments(
        bit_error_rate=args.ber, byte_errors_per_codeword=args.byte_errors,
        byte_error_fraction=args.byte_error_fraction, lost_frames=args.lost_frames,
        bit_slips=args.bit_slips, slip_bits=args.slip_bits, garbage_bytes=args.garbage,
        garbage_length=args.garbage_length, inverted=args.invert, polarity_flips=args.polarity_flips,
        bit_offset=args.bit_offset, truncate_last=args.truncate_last)
    soft = {}
    if args.ebn0 is not None or args.symbols is not None:
        if (args.level or mission.level) != "soft":
            raise UsageError("--ebn0 and --symbols apply to soft symbols: add --level soft "
                             "(the mission needs a convolutional code)")
        soft = {"ebn0_db": args.ebn0, "symbols": args.symbols}
    truth = spacecraft.simulate_to_file(mission, args.out, frames=args.frames, seed=args.seed,
                                        impairments=imp, level=args.level, **soft)
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
    s.add_argument("--level", choices=["soft", "bits", "frames", "packets"],
                   help="what to write (default the mission's level): soft symbols through the "
                        "mission's inner code, a CADU bit stream, frames, or packets")
    s.add_argument("--symbols", choices=["soft-int8", "soft-float32"],
                   help="soft symbol format at --level soft (default the mission's)")
    s.add_argument("--ebn0", type=float, metavar="DB",
                   help="white Gaussian noise at this Eb/N0 (dB per information bit) at --level soft")
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

    return p


def _exit_code(exc: BaseException) -> int:
    from groundseg.mission import MissionError
    if isinstance(exc, (UsageError, MissionError)):
        return 2
    try:
        from groundseg.archive.hdf5 import ArchiveMismatchError
        if isinstance(exc, ArchiveMismatchError):
            return 2
    except ImportError:
        pass
    return 1


GLOBAL_FLAGS = {"-q": "quiet", "--quiet": "quiet", "-v": "verbose", "--verbose": "verbose"}


def _leading_globals(argv: list[str]) -> tuple[list[str], dict]:
    """-q / -v given before the command (``groundseg -v replay ...``) are taken out and
    applied after parsing, so they work on either side of the command name."""
    flags = {}
    rest = list(argv)
    while rest and rest[0] in GLOBAL_FLAGS:
        flags[GLOBAL_FLAGS[rest.pop(0)]] = True
    return rest, flags


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv, flags = _leading_globals(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    for k, v in flags.items():
        setattr(args, k, v)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    con = Console(quiet=getattr(args, "quiet", False), verbose=getattr(args, "verbose", False))
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
