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
    from groundseg.archive.paths import check_output
    try:
        return check_output(path)
    except UsageError as exc:
        raise UsageError(f"{what} {exc}") from None


def cmd_replay(args, con: Console) -> int:
    from groundseg.pipeline import Pipeline

    mission = _load_mission(args.mission)
    from groundseg.sources.capture import CaptureFile
    from groundseg.sources.journal import JournalSource, is_journal
    report_path = _output_path(args.report, "--report")
    for p in args.captures:
        CaptureFile(p)  # fail before anything is archived
    journals = [is_journal(p) for p in args.captures]
    if any(journals) and not all(journals):
        raise UsageError("give either receiver journals or captures, not both")
    # everything that can refuse the run is checked before a pass is opened: the level and
    # coding the mission asks for, and the captures
    if all(journals):
        # a receiver's raw journal: its own framing decides the level, its records the times
        source = JournalSource(args.captures, frame_length=mission.link.frame_length if mission.link else None)
        pipe = Pipeline(mission, level=source.kind, on_progress=con.progress)
    else:
        level = args.level
        if level is None and all(_is_recording(p) for p in args.captures):
            level = "iq"              # WAV and SigMF recordings are samples, whatever the mission's level
        pipe = Pipeline(mission, level=level, on_progress=con.progress)
        source = pipe.source_for(args.captures, iq_format=args.iq_format, sample_rate=args.sample_rate)
    writer = None
    t0 = time.perf_counter()
    frame_log: list = []
    if args.annotate:
        if pipe.level != "iq" or not all(str(p).lower().endswith((".sigmf-meta", ".sigmf-data", ".sigmf"))
                                         for p in args.captures):
            raise UsageError("--annotate writes decoded frames into SigMF recordings: give .sigmf-meta files")
        pipe.on_frames = lambda stream, rec: frame_log.append((stream, rec.copy()))
    with _StopSignals() as ctrl_c:
        try:
            if not args.no_archive:
                from groundseg.archive.hdf5 import ArchiveWriter
                writer = ArchiveWriter(args.archive, mission)
                writer.begin_pass(" ".join(str(Path(p)) for p in args.captures))
                pipe.archive = writer
            report = pipe.run(source, on_chunk=ctrl_c.check)
        except BaseException:
            if writer is not None:
                writer.abort_pass()
            raise
    if frame_log:
        report["annotations"] = _annotate(args.captures, pipe, source, frame_log)
    seconds = time.perf_counter() - t0
    size = source.total_bytes or source.stats.bytes_in
    extra = {"mission": mission.name, "captures": len(args.captures), "MB": f"{size / 1e6:.1f}",
             "seconds": f"{seconds:.2f}", "Mbit/s": f"{size * 8 / 1e6 / seconds:.1f}" if seconds else "-"}
    stream_seconds = report.source.get("stream_seconds", 0)
    if stream_seconds and seconds:
        extra["x real time"] = f"{stream_seconds / seconds:.1f}"
    _close_pass(writer, report, extra)
    con.out(format_report(report, mission, extra))
    if report.decoded_nothing:
        con.warn(_nothing_decoded(args.captures, pipe))
    if report_path is not None:
        report_path.write_text(report.to_json(indent=2, sort_keys=True))
    return 0


class _StopSignals:
    """Stop signals taken at safe points (:meth:`check`, between chunks), never inside a
    step: a KeyboardInterrupt raised in the middle of an archive write or a numba call left
    archives whose commit log was ahead of the file and, once, a crash; one raised inside
    a finalizer (h5py releases objects in ``__dealloc__``) was lost, and the replay ran to
    its end. The first signal sets :attr:`why` (its name) and calls ``on_first``; a second
    one stops at once."""

    def __init__(self, signals=("SIGINT",), on_first=None):
        self.signals = signals
        self.on_first = on_first
        self.why = ""
        self._old: dict = {}

    def __enter__(self) -> "_StopSignals":
        import signal
        import threading
        if threading.current_thread() is threading.main_thread():
            self._old = {s: signal.signal(getattr(signal, s), self._on_signal) for s in self.signals}
        return self

    def _on_signal(self, signum, frame) -> None:
        if self.why:
            raise KeyboardInterrupt
        import signal
        self.why = signal.Signals(signum).name
        if self.on_first is not None:
            self.on_first()

    def check(self, *_) -> None:
        if self.why:
            raise KeyboardInterrupt

    def __exit__(self, *exc) -> None:
        import signal
        for s, h in self._old.items():
            signal.signal(getattr(signal, s), h)


def _close_pass(writer, report, extra: dict) -> None:
    """End the archive's pass with the report; what it says goes into the summary and the
    report's ``archive`` section."""
    if writer is None:
        return
    info = writer.end_pass(report)
    writer.close()
    extra["archive"] = str(writer.path)
    if isinstance(info, dict):
        if "pass_id" in info:
            extra["pass"] = info["pass_id"]
        if info.get("duplicates"):
            extra["duplicates skipped"] = info["duplicates"]
        report["archive"] = {k: v for k, v in info.items() if isinstance(v, (int, float, str))}


def _annotate(captures, pipe, source, frame_log) -> dict:
    """Each SigMF recording gets an annotation per delivered frame (samples from the
    demodulator's timing loop); returns {recording: annotations written}."""
    import numpy as np

    from groundseg.sources.sdr import annotate_sigmf, frame_annotations
    cfg = pipe.channel.config
    per_symbol = 2 if pipe.mission.modulation.bits_per_symbol == 2 else 1
    written = {}
    for i, cap in enumerate(captures):
        recs = [r for s, r in frame_log if s == i]
        rec = np.concatenate(recs) if recs else None
        if rec is None or i >= len(source.demods):
            written[str(cap)] = 0
            continue
        rec = rec[rec["status"] == 0]
        comments = [f"VC {v} count {c}" for v, c in zip(rec["vcid"].tolist(), rec["vcfc"].tolist())]
        notes = frame_annotations(rec["bit_position"], cfg.cadu_length * 8,
                                  symbols_per_bit=cfg.input_units_per_bit / per_symbol,
                                  sample_of_symbol=source.demods[i].sample_of_symbol,
                                  label=f"{pipe.mission.name} frame", comments=comments)
        written[str(cap)] = annotate_sigmf(cap, notes)
    return written


def _is_recording(path) -> bool:
    """A sampled recording (IQ or audio) by its name: WAV or SigMF."""
    name = str(path).lower()
    return name.endswith((".wav", ".sigmf-meta", ".sigmf-data", ".sigmf"))


def _nothing_decoded(captures, pipe) -> str:
    """One line on why a replay delivered nothing: what the capture looks like instead."""
    from groundseg.inspect import describe_failure
    from groundseg.mission.configs import channel_config
    if pipe.level == "iq":
        d = pipe.source_sections.get("demodulator", {})
        return (f"nothing decoded from {captures[0]} at level 'iq' with mission {pipe.mission.name!r}: the "
                f"{d.get('scheme', '')} demodulator locked on {d.get('locked_fraction', 0):.0%} of the recording "
                f"(Es/N0 {d.get('esn0_db', {}).get('median', 'unknown')} dB); check [modulation] "
                "(groundseg plot RECORDING --iq --mission M)")
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
    if args.level == "iq":
        from groundseg.sim.simulate import write_iq_recording
        if not str(args.out).endswith(".sigmf-meta"):
            raise UsageError("--level iq writes a SigMF recording: --out must end in .sigmf-meta")
        if mission.modulation is None:
            raise UsageError(f"{args.mission}: --level iq needs a [modulation] table (docs/sdr.md)")
        truth = write_iq_recording(args.out, mission, frames=args.frames, seed=args.seed, impairments=imp,
                                   sample_rate=args.sample_rate, datatype=args.iq_datatype,
                                   esn0_db=args.esn0, frequency_hz=args.frequency_offset,
                                   drift_hz_s=args.drift, timing_offset=args.timing_offset,
                                   clock_ppm=args.clock_ppm, clock_start=args.clock_start)
        con.out(f"wrote {args.out} (+ .sigmf-data, {truth['frames']['total']:,} frames) and "
                f"{args.out}.truth.json")
        return 0
    soft = {}
    if args.ebn0 is not None or args.symbols is not None:
        if (args.level or mission.level) != "soft":
            raise UsageError("--ebn0 and --symbols apply to soft symbols: add --level soft "
                             "(the mission needs a convolutional code)")
        soft = {"ebn0_db": args.ebn0, "symbols": args.symbols}
    truth = spacecraft.simulate_to_file(mission, args.out, frames=args.frames, seed=args.seed,
                                        impairments=imp, level=args.level,
                                        clock_start=args.clock_start, **soft)
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
    if args.hex and args.format != "csv":
        raise UsageError("--hex adds a column to CSV exports: use it with --format csv")
    info = export_packets(args.archive, args.apid, args.out, fmt=args.format, passes=args.passes,
                          start=args.start, stop=args.stop, raw_hex=args.hex)
    n = info.get("packets", "") if isinstance(info, dict) else info
    con.out(f"wrote {args.out} ({n} packets)")
    return 0


def cmd_plot(args, con: Console) -> int:
    from groundseg.archive.plot import plot_fields, plot_link_quality
    if args.iq:
        return _plot_iq(args, con)
    if args.link_quality:
        if args.apid or args.field:
            raise UsageError("--link-quality plots the frames' link quality: drop --apid and --field")
        out = args.out or f"{Path(args.archive).stem}-link-quality.png"
        info = plot_link_quality(args.archive, out, passes=args.passes, start=args.start, stop=args.stop)
        con.out(f"wrote {out} ({info['frames']:,} frames)")
        return 0
    if not args.apid or not args.field:
        raise UsageError("plot needs --apid and at least one --field (or --link-quality)")
    out = args.out or f"{Path(args.archive).stem}-{args.apid}.png"
    plot_fields(args.archive, args.apid, args.field, out, passes=args.passes, start=args.start,
                stop=args.stop)
    con.out(f"wrote {out}")
    return 0


def _plot_iq(args, con: Console) -> int:
    """The quicklook of a recording (spectrum, constellation, Es/N0 and lock over time):
    ``plot RECORDING --iq --mission M``: what an operator looks at first after a failed pass."""
    import numpy as np

    from groundseg.coding.demod.quicklook import quicklook
    from groundseg.sources.sdr import open_iq
    if not args.mission:
        raise UsageError("plot --iq needs --mission (its [modulation] says how to demodulate)")
    mission = _load_mission(args.mission)
    if mission.modulation is None:
        raise UsageError(f"{args.mission}: no [modulation] table (docs/sdr.md)")
    out = _output_path(args.out or f"{Path(args.archive).name.split('.')[0]}-iq.png", "--out")
    rec = open_iq(args.archive, fmt=args.iq_format, sample_rate=args.sample_rate)
    samples = np.concatenate([c.data for c in rec.chunks()])
    info = quicklook(samples, rec.sample_rate, out, mission.modulation,
                     getattr(rec, "center_frequency", 0.0) or 0.0, title=Path(args.archive).name)
    con.out(f"wrote {out}" + (f" (locked {info['locked_fraction']:.0%})" if "locked_fraction" in info else ""))
    return 0


def cmd_archive(args, con: Console) -> int:
    from groundseg.archive.export import repair
    info = repair(args.archive)
    con.out(_format_info(info) if isinstance(info, dict) else str(info))
    return 0


def _utc_time(text: str) -> float:
    """UNIX seconds from UNIX seconds or ISO 8601 UTC text (an argparse type)."""
    try:
        return float(text)
    except ValueError:
        pass
    import datetime
    try:
        t = datetime.datetime.fromisoformat(text.strip().rstrip("Zz"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither UNIX seconds nor an ISO 8601 UTC time "
                                         "(e.g. 2026-05-01T12:00:00)") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    return t.timestamp()


def _time_selection(p: argparse.ArgumentParser) -> None:
    """--start/--stop/--pass of the archive commands (the read API's start, stop, passes)."""
    p.add_argument("--start", metavar="UTC", help="packets with onboard time >= this (ISO 8601 UTC)")
    p.add_argument("--stop", metavar="UTC", help="packets with onboard time < this (ISO 8601 UTC)")
    p.add_argument("--pass", dest="passes", type=int, action="append", metavar="N",
                   help="only pass N (repeatable; see inspect ARCHIVE for the passes)")


def _usage(exc) -> UsageError:
    return UsageError(str(exc))


class _ShowFields:
    """Wraps the archive writer (or stands in for it) to keep the latest value of a few
    fields for the status line: ``APID.FIELD`` (name or number)."""

    def __init__(self, writer, mission, specs):
        self.writer = writer
        self.want: dict[int, list[str]] = {}
        self.latest: dict[str, float] = {}
        for spec in specs or []:
            apid, _, fld = spec.partition(".")
            if not fld:
                raise UsageError(f"--show {spec}: expected APID.FIELD (e.g. hk.bus_voltage)")
            try:
                a = mission.apid_by_name(apid)
            except Exception as exc:  # noqa: BLE001 - the mission's own message names the APIDs
                raise UsageError(f"--show {spec}: {exc}") from None
            self.want.setdefault(int(getattr(a, "id", a)), []).append(fld)

    def __getattr__(self, name):
        return getattr(self.writer, name)

    def append(self, **kw):
        dec = kw.get("decoded")
        if dec and self.want:
            for apid, fields in self.want.items():
                d = dec.get(apid)
                if d is None:
                    continue
                for f in fields:
                    col = d.fields.get(f)
                    if col is not None and len(col):
                        self.latest[f] = col[-1]
        if self.writer is not None:
            self.writer.append(**kw)

    def append_vca(self, vca):
        if self.writer is not None:
            self.writer.append_vca(vca)


class _Status:
    """The live status line (terminal) or a periodic log line (otherwise); nothing with -q."""

    def __init__(self, con: Console, every: float = 1.0, log_every: float = 5.0):
        self.con = con
        self._category = "RECEIVING"
        self.every = every if con.tty else log_every
        self._last = time.monotonic()
        self._prev = (0, 0, 0)
        self._shown = False

    @staticmethod
    def _receiver_state(st: dict) -> str:
        if st.get("ended"):
            return "ENDED"
        if not st["connected"]:
            return "UNPLUGGED"
        return "NO SIGNAL" if st["silent_s"] >= 2.0 else "RECEIVING"

    def update(self, pipe, source, shown: dict, force: bool = False) -> None:
        if self.con.quiet:
            return
        now = time.monotonic()
        st = source.status()
        category = self._receiver_state(st)
        if category != self._category and not self.con.tty:
            force = True      # a log reader sees every change of the receiver's state
        self._category = category
        if now - self._last < self.every and not force:
            return
        dt = max(now - self._last, 1e-6)
        self._last = now
        rep = pipe.report()
        frames = rep["frames"]["total"]
        packets = sum(p["count"] for p in rep["packets"].values())
        bytes_in = source.stats.bytes_in
        fps = (frames - self._prev[0]) / dt
        pps = (packets - self._prev[1]) / dt
        bps = (bytes_in - self._prev[2]) * 8 / dt
        self._prev = (frames, packets, bytes_in)
        if category == "ENDED":
            state = "ENDED"
        elif not st["connected"]:
            state = f"UNPLUGGED {st.get('unplugged_s', 0):.0f}s"
        elif st["silent_s"] >= 2.0:
            state = f"NO SIGNAL {st['silent_s']:.0f}s"
        elif fps > 0:
            state = "LOCK"
        else:
            state = "SEARCH"
        gaps = sum(v.get("gaps", 0) for v in rep["virtual_channels"].values())
        line = (f"{state:<14s} {bps / 1e6:7.2f} Mbit/s  frames/s {fps:7.1f}  RS corr {rep['rs_symbols_corrected']:,}  "
                f"CRC fail {rep['frames']['crc_failed']:,}  VC gaps {gaps:,}  packets/s {pps:7.1f}  "
                f"frames {frames:,}  outages {st['outages']}")
        if st["catching_up"]:
            line += "  (decoder catching up from the journal)"
        if shown:
            line += "  " + "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items())
        if self.con.tty:
            sys.stderr.write("\r\x1b[K" + line)
            self._shown = True
        else:
            sys.stderr.write(time.strftime("%H:%M:%S ") + line + "\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self._shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _warm_up(mission, profile, frame_length) -> None:
    """Load the deframer's and the decoding chain's kernels (numba cache) before the port
    opens, so the first second of a pass is not spent loading them."""
    import numpy as np

    from groundseg.pipeline import Pipeline
    from groundseg.sources.base import Chunk
    from groundseg.sources.framing import kind_of, kiss_encode, length_encode, make_deframer
    zeros = np.zeros((1, frame_length or 1), np.uint8)
    sample = {"kiss": kiss_encode(zeros), "length": length_encode(zeros, profile.length_bytes)}.get(
        profile.framing, bytes(4096))
    make_deframer(profile.framing, frame_length, **profile.deframer_options()).push(
        np.frombuffer(sample, np.uint8))
    kind = kind_of(profile.framing)
    pipe = Pipeline(mission, level=kind)
    pipe.begin_stream()
    pipe.push(Chunk(np.zeros(4096 if kind == "bits" else frame_length, np.uint8), kind))
    pipe.end_stream()


def _network_source(args, mission):
    """``receive --tcp`` / ``--udp``: a network source of the mission's level (soft symbols in
    its ``symbols`` format, or hard bits), the decoding chain's kernels loaded first."""
    import numpy as np

    from groundseg.pipeline import Pipeline
    from groundseg.sources.base import Chunk
    from groundseg.sources.network import receive_address

    proto = "tcp" if args.tcp else "udp"
    address = receive_address(args.tcp or args.udp, proto)
    pipe = Pipeline(mission)
    kwargs = {"heartbeat": 0.25, "max_streams": args.streams}
    if proto == "udp":
        kwargs["header"] = args.udp_header
    source = pipe.network_source(str(address), **kwargs)
    pipe.begin_stream()          # warm-up: the chain's kernels (numba cache) before the socket opens
    pipe.push(Chunk(np.zeros(1 << 13, source.dtype), source.kind))
    pipe.end_stream()
    return source, pipe.level


def cmd_receive(args, con: Console) -> int:
    from groundseg.errors import UsageError as GroundsegUsageError
    from groundseg.pipeline import Pipeline
    from groundseg.sources.framing import kind_of
    from groundseg.sources.journal import JournalWriter
    from groundseg.sources.profile import load_profile
    from groundseg.sources.serial import SerialSource

    mission = _load_mission(args.mission)
    report_path = _output_path(args.report, "--report")
    network = args.tcp or args.udp
    if sum(bool(x) for x in (args.port, args.tcp, args.udp)) > 1:
        raise UsageError("give one receiver: --port, --tcp or --udp")
    profile = None
    try:
        if network:
            source, level = _network_source(args, mission)
            frame_length = int(mission.link.frame_length)
        else:
            profile = load_profile(args.profile)
            for k in ("gather", "read_timeout"):
                if getattr(args, k, None) is not None:
                    setattr(profile, k, getattr(args, k))
            frame_length = int(mission.link.frame_length) if mission.link is not None else None
            source = SerialSource(args.port, profile, frame_length=frame_length, heartbeat=0.25,
                                  queue_records=args.queue)
            _warm_up(mission, profile, frame_length)
            level = kind_of(profile.framing)
        source.open()      # a missing, busy or forbidden port or address: one line, exit 2, nothing written
    except GroundsegUsageError as exc:
        raise _usage(exc) from None
    if network:
        describe = f"{source.port}, {level}" + (f" {mission.link.symbols}" if level == "soft" else "")
        if args.udp:
            describe += f", header {args.udp_header}"
    else:
        describe = f"{profile.name} ({profile.framing})"
    journal = None
    try:
        if not args.no_journal:
            jdir = Path(args.journal) if args.journal else Path(args.archive) / "journal"
            if network:
                # raw item bytes as received (after UDP reordering); soft: the symbols' dtype
                header = {"format": 1, "framing": "raw", "kind": source.kind, "dtype": source.dtype.str,
                          "frame_length": frame_length, "line_rate": source.rate, "options": {},
                          "port": source.port, "mission": mission.name}
            else:
                header = {"format": 1, "framing": profile.framing, "kind": kind_of(profile.framing),
                          "frame_length": frame_length, "line_rate": profile.line_rate,
                          "options": profile.deframer_options(), "port": source.port, "mission": mission.name,
                          "profile": dict(profile.summary(), text=profile.text)}
            journal = JournalWriter(jdir, header, name=mission.name, rotate_bytes=int(args.journal_rotate * 1e6),
                                    keep_days=args.journal_keep_days)
            source.journal = journal
    except GroundsegUsageError as exc:
        source.close()
        raise _usage(exc) from None
    writer = None
    if not args.no_archive:
        from groundseg.archive.hdf5 import ArchiveWriter
        # live: a received packet is readable by other processes (SWMR) within about a second
        writer = ArchiveWriter(args.archive, mission, flush_seconds=args.flush_seconds)
        writer.begin_pass(f"receive {source.port} ({describe})"
                          + (f" journal {journal.paths[0]}" if journal else ""))
    shown = _ShowFields(writer, mission, args.show)
    # a signal stops the receiver; the chain then ends the pass (a second one: at once)
    stopping = _StopSignals(("SIGINT", "SIGTERM"), on_first=source.stop).__enter__()
    status = _Status(con)
    t0 = time.monotonic()
    started = time.time()
    pipe = Pipeline(mission, level=level, archive=shown)
    if network:
        con.out(f"receiving from {describe}, mission {mission.name}"
                + (f", journal {journal.paths[0]}" if journal else ""))
    else:
        con.out(f"receiving from {source.port} ({source.device}), profile {profile.name} ({profile.framing}), "
                f"mission {mission.name}" + (f", journal {journal.paths[0]}" if journal else ""))
    sys.stdout.flush()
    first_flush = []

    def after_chunk(chunk) -> None:
        if chunk.data.size:
            if writer is not None and not first_flush and pipe.packets_decoded:
                writer.flush()     # the pass's first packets: visible to readers at once
                first_flush.append(True)
        elif writer is not None:
            writer.poll()          # a silent receiver: what was received still becomes visible
        status.update(pipe, source, shown.latest)
        if args.duration and time.monotonic() - t0 >= args.duration and not source.stopped:
            stopping.why = stopping.why or "duration"
            source.stop()

    try:
        pipe.run(source, on_chunk=after_chunk)
    except BaseException:
        source.close()
        if journal is not None:
            journal.close("aborted")
        if writer is not None:
            writer.abort_pass()
        status.done()
        raise
    finally:
        stopping.__exit__(None, None, None)
    status.update(pipe, source, shown.latest, force=True)
    status.done()
    source.close()
    if journal is not None:
        journal.close(f"pass ended ({stopping.why or 'receiver closed'})")
        source.stats.journal = journal.summary()
    seconds = time.monotonic() - t0
    report = pipe.report()
    report["source"] = source.stats.to_dict()
    ended_by = stopping.why or getattr(source, "ended_by", "") or "receiver closed"
    report["receiver"] = {"port": source.port, "device": source.device,
                          "profile": profile.name if profile else None,
                          "framing": profile.framing if profile else "raw", "started": started,
                          "seconds": round(seconds, 3), "ended_by": ended_by}
    if network:
        report["receiver"]["level"] = level
        if args.udp:
            report["receiver"]["udp_header"] = args.udp_header
    extra = {"mission": mission.name, "port": source.port, "seconds": f"{seconds:.1f}",
             "MB": f"{source.stats.bytes_in / 1e6:.2f}", "outages": len(source.stats.outages),
             "ended by": ended_by}
    _close_pass(writer, report, extra)
    text = format_report(report, mission, extra)
    fr = source.stats.framing
    dropped = {k: v for k, v in fr.items() if k != "frames" and v}
    if dropped:
        text += "\nframing   " + "  ".join(f"{k} {v:,}" for k, v in sorted(dropped.items()))
    net = source.stats.to_dict().get("network")
    if net:
        shown_net = {k: v for k, v in net.items() if v and k not in ("datagrams",)}
        text += "\nnetwork   " + "  ".join(f"{k} {v:,}" for k, v in ([("datagrams", net["datagrams"])] if
                                                                     net["datagrams"] else []) + sorted(shown_net.items()))
    for o in source.stats.outages:
        text += (f"\noutage    {time.strftime('%H:%M:%S', time.gmtime(o.start))} UTC for {o.end - o.start:.1f} s "
                 f"after {o.bytes_before:,} bytes: {o.reason}")
    if journal is not None:
        text += f"\njournal   {', '.join(str(p) for p in journal.paths)}"
        if journal.failed:
            text += f"\njournal   STOPPED: {journal.failed}"
    con.out(text)
    if report_path is not None:
        report_path.write_text(report.to_json(indent=2, sort_keys=True))
    return 0


def _emulator_unit(mission, framing: str) -> int:
    from groundseg.pipeline import channel_config
    if framing == "raw":
        return channel_config(mission).cadu_length
    return int(mission.link.frame_length)


def cmd_emulate(args, con: Console) -> int:
    import signal

    from groundseg.sources.emulator import Emulator, frame_pieces
    from groundseg.sources.profile import load_profile

    try:
        profile = load_profile(args.profile)
    except Exception as exc:  # noqa: BLE001 - ProfileError: one line, exit 2
        raise UsageError(str(exc)) from None
    path = Path(args.capture)
    if not path.is_file():
        raise UsageError(f"{path}: no such capture")
    if args.mission:
        unit = _emulator_unit(_load_mission(args.mission), profile.framing)
    elif args.frame_length:
        unit = args.frame_length
    elif profile.framing == "raw":
        unit = 4096
    else:
        raise UsageError(f"framing {profile.framing!r}: give --mission (or --frame-length) to cut the capture into frames")
    pieces = frame_pieces(path.read_bytes(), profile.framing, unit, port=max(profile.kiss_port, 0),
                          length_bytes=profile.length_bytes, includes_header=profile.length_includes_header)
    pieces = pieces * max(1, args.repeat)
    emu = Emulator(pieces, args.link, rate=args.rate, unplug_after=args.unplug_after, unplug_for=args.unplug_for, cut=args.cut,
                   stall=args.stall or 0.0, stall_after=args.stall_after, burst=args.burst, noise=args.noise,
                   seed=args.seed, wait_open=args.wait_open, on_event=lambda t: (None if con.quiet else print(f"emulate: {t}", file=sys.stderr)))
    signal.signal(signal.SIGTERM, lambda *a: emu.stop())
    try:
        emu.plug()
        con.out(f"{args.link} -> {emu.slave_name}  ({profile.name}, {profile.framing}, {args.rate / 1e6:g} Mbit/s, "
                f"{sum(map(len, pieces)):,} bytes)")
        sys.stdout.flush()
        stats = emu.run(hold=args.hold)
    except KeyboardInterrupt:
        stats = emu.stats
    finally:
        emu.close()
    con.out(json.dumps(stats.to_dict()))
    return 0


def cmd_bench(args, con: Console) -> int:
    from benchmarks.run import main as bench_main
    return bench_main(["--quick"] if args.quick else [])


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
                   help="where the capture enters the chain (default from the mission file; WAV and "
                        "SigMF recordings: iq)")
    r.add_argument("--iq-format", choices=["cf32", "ci16", "cu8", "ci8"],
                   help="level iq, raw IQ files: the sample format")
    r.add_argument("--annotate", action="store_true",
                   help="SigMF recordings: write each delivered frame back as an annotation")
    r.add_argument("--sample-rate", type=float, metavar="HZ",
                   help="level iq, raw IQ (or a WAV to check against): samples per second")
    r.set_defaults(func=cmd_replay)

    s = sub.add_parser("simulate", parents=[common], help="make a simulated downlink and its truth file")
    s.add_argument("--mission", "-m", required=True)
    s.add_argument("--out", "-o", required=True)
    s.add_argument("--frames", type=int, default=1000)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--clock-start", type=_utc_time, metavar="TIME",
                   help="onboard clock at the first frame: UTC as 2026-05-01T12:00:00, or UNIX "
                        "seconds (default 2026-01-01 plus a random offset within a day), so that "
                        "simulated passes can follow each other in time")
    s.add_argument("--level", choices=["iq", "soft", "bits", "frames", "packets"],
                   help="what to write (default the mission's level): a SigMF IQ recording with the "
                        "mission's [modulation], soft symbols through the mission's inner code, a CADU "
                        "bit stream, frames, or packets")
    s.add_argument("--esn0", type=float, metavar="DB", help="--level iq: Es/N0 of the samples (dB)")
    s.add_argument("--sample-rate", type=float, metavar="HZ",
                   help="--level iq: samples per second (default 4 per symbol)")
    s.add_argument("--frequency-offset", type=float, default=0.0, metavar="HZ",
                   help="--level iq: carrier offset from the centre")
    s.add_argument("--drift", type=float, default=0.0, metavar="HZ/S", help="--level iq: carrier drift")
    s.add_argument("--timing-offset", type=float, default=0.0, metavar="SYMBOLS",
                   help="--level iq: fraction of a symbol the first sample is late")
    s.add_argument("--clock-ppm", type=float, default=0.0, help="--level iq: symbol clock error (ppm)")
    s.add_argument("--iq-datatype", default="cf32_le", choices=["cf32_le", "ci16_le", "cu8", "ci8"],
                   help="--level iq: the SigMF sample format")
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
    e.add_argument("--format", default="ccsds", choices=["ccsds", "csv", "parquet"],
                   help="ccsds: the packets back to back (readable by ccsdspy); csv/parquet: one row "
                        "per packet with header, times and decoded fields")
    e.add_argument("--hex", action="store_true", help="CSV: add each whole packet as hex")
    _time_selection(e)
    e.set_defaults(func=cmd_export)

    pl = sub.add_parser("plot", parents=[common], help="quicklook of decoded fields against onboard time")
    pl.add_argument("archive", metavar="ARCHIVE")
    pl.add_argument("--apid", help="APID number or mission-file name (any case)")
    pl.add_argument("--field", action="append", help="a decoded field of the APID (repeatable)")
    pl.add_argument("--link-quality", action="store_true",
                    help="plot the link per frame instead: Es/N0, symbol error rate, RS corrections, "
                         "refused frames, against reception time")
    pl.add_argument("--iq", action="store_true",
                    help="ARCHIVE is an IQ or audio recording: draw its spectrum, constellation and "
                         "Es/N0 over time (needs --mission for the [modulation])")
    pl.add_argument("--mission", "-m", help="--iq: the mission file")
    pl.add_argument("--iq-format", choices=["cf32", "ci16", "cu8", "ci8"], help="--iq, raw IQ: sample format")
    pl.add_argument("--sample-rate", type=float, metavar="HZ", help="--iq, raw IQ: samples per second")
    pl.add_argument("--out", "-o", help="PNG to write (its directory must exist)")
    _time_selection(pl)
    pl.set_defaults(func=cmd_plot)

    a = sub.add_parser("archive", parents=[common], help="archive maintenance")
    asub = a.add_subparsers(dest="archive_command", metavar="ACTION")
    rp = asub.add_parser("repair", parents=[common], help="clear a crashed writer's flags, close its pass")
    rp.add_argument("archive", metavar="ARCHIVE")
    rp.set_defaults(func=cmd_archive)

    rc = sub.add_parser("receive", parents=[common], help="decode a live receiver (serial port, TCP or UDP) into the archive")
    rc.add_argument("--port", "-p", help="device path, udev name, usb:VID:PID[:SERIAL] or a pyserial URL "
                    "(socket://host:port, rfc2217://host:port, loop://); default the profile's")
    rc.add_argument("--tcp", metavar="[HOST:]PORT", help="soft symbols (or hard bits) over TCP, raw items as "
                    "GNU Radio's TCP Sink sends them: [HOST:]PORT listens (loopback unless HOST; the sink in "
                    "Client mode connects), tcp://HOST:PORT connects to a sink in Server mode")
    rc.add_argument("--udp", metavar="[HOST:]PORT", help="soft symbols (or hard bits) in UDP datagrams (GNU Radio's "
                    "UDP Sink): listens on [HOST:]PORT, loopback unless HOST")
    rc.add_argument("--udp-header", default="none", choices=["none", "gnuradio-seq", "gnuradio-seq-size", "seq32be",
                                                             "seq64be", "seq32le", "seq64le"],
                    help="what precedes each UDP payload: a sequence counter lets lost and reordered datagrams "
                    "be counted and put right (GNU Radio: gnuradio-seq = header 'Sequence Number')")
    rc.add_argument("--streams", type=int, metavar="N", help="end the pass once N streams have ended (TCP "
                    "connections closed, UDP end-of-stream datagrams)")
    rc.add_argument("--mission", "-m", required=True)
    rc.add_argument("--profile", help="receiver profile: a TOML file or a name in hardware/profiles "
                    "(usb-cdc-raw, kiss-tnc, length-modem); default raw hard bits")
    rc.add_argument("--archive", default="archive", help="archive directory (default ./archive)")
    rc.add_argument("--no-archive", action="store_true", help="decode and report only")
    rc.add_argument("--journal", metavar="DIR", help="raw journal directory (default ARCHIVE/journal)")
    rc.add_argument("--no-journal", action="store_true", help="keep no raw journal (decoding then never "
                    "falls behind: the reader waits for it)")
    rc.add_argument("--journal-rotate", type=float, default=1024.0, metavar="MB", help="journal part size (MB)")
    rc.add_argument("--journal-keep-days", type=float, default=0.0, metavar="D",
                    help="delete journals older than D days from the journal directory (default keep all)")
    rc.add_argument("--report", help="write the pass report as JSON")
    rc.add_argument("--duration", type=float, help="end the pass after this many seconds")
    rc.add_argument("--show", action="append", metavar="APID.FIELD", help="a field's latest value in the status")
    rc.add_argument("--queue", type=int, default=64, help="reader -> decoder queue bound (records)")
    rc.add_argument("--flush-seconds", type=float, default=1.0, help="archive flush period: how stale another "
                    "process's view may be (default 1; each flush costs CPU, see hardware/README.md)")
    rc.add_argument("--gather", type=float, help="seconds of reads per record (overrides the profile)")
    rc.add_argument("--read-timeout", type=float, help="seconds a read waits (overrides the profile)")
    rc.set_defaults(func=cmd_receive)

    em = sub.add_parser("emulate", parents=[common], help="a receiver emulator on a pseudo-terminal (tests, demos)")
    em.add_argument("--capture", required=True, help="what the receiver sends: a CADU stream (raw) or "
                    "frames back to back (kiss, length; groundseg simulate --level frames)")
    em.add_argument("--profile", required=True)
    em.add_argument("--link", required=True, help="symlink made to point at the pty's slave")
    em.add_argument("--mission", "-m", help="the mission (frame / CADU length)")
    em.add_argument("--frame-length", type=int, help="bytes per frame without --mission")
    em.add_argument("--rate", type=float, default=1e6, help="line rate, bit/s (default 1e6)")
    em.add_argument("--unplug-after", type=float, help="unplug after this many seconds of streaming")
    em.add_argument("--unplug-for", type=float, default=1.0, help="seconds unplugged (default 1)")
    em.add_argument("--cut", action="store_true", help="the unplug cuts a frame in two (half of it is sent)")
    em.add_argument("--stall", type=float, help="go silent for this many seconds")
    em.add_argument("--stall-after", type=float, default=1.0, help="seconds before the stall (default 1)")
    em.add_argument("--burst", action="store_true", help="send in bursts (same average rate)")
    em.add_argument("--noise", type=float, default=0.0, help="probability of line noise between two frames")
    em.add_argument("--seed", type=int, default=0)
    em.add_argument("--repeat", type=int, default=1, help="send the capture this many times")
    em.add_argument("--hold", type=float, default=2.0, help="seconds to stay plugged after sending (-1: until killed)")
    em.add_argument("--wait-open", type=float, default=-1, help="seconds to wait for a receiver to open the port "
                    "before sending (-1: until one does, 0: do not wait)")
    em.set_defaults(func=cmd_emulate)
    _document(p)
    return p


#: help lines for arguments declared without one (kept here so every option has one)
HELP = {
    "captures": "capture files: one pass, each file its own stream (a receiver's journals are recognised)",
    "mission": "the mission file (TOML; docs/mission-file.md)",
    "out": "file to write (its directory must exist)",
    "frames": "transfer frames to simulate (default 1000)",
    "seed": "random seed: the same seed gives the same bytes",
    "lost_frames": "frames lost on the way (never received)",
    "target": "a capture to recognise, or an archive (file or directory) to describe",
    "json": "print the description as JSON",
    "archive": "the archive: an .h5 file or the directory replay --archive wrote",
    "profile": "receiver profile: a TOML file or a name in hardware/profiles",
}

#: one example per command, shown at the end of its --help
EXAMPLES = {
    "replay": "groundseg replay pass.cadu --mission fixtures/missions/demo.toml --report pass.json\n"
              "  groundseg replay trisat.f32 --mission fixtures/missions/trisat.toml --no-archive",
    "simulate": "groundseg simulate --mission fixtures/missions/demo.toml --out sim.cadu --frames 500 --ber 1e-4\n"
                "  groundseg simulate --mission fixtures/missions/trisat.toml --level soft --ebn0 4 --out sim.f32",
    "inspect": "groundseg inspect capture.bin\n  groundseg inspect archive/",
    "export": "groundseg export archive/ --apid hk --out hk.pkts\n"
              "  groundseg export archive/demo.h5 --apid 100 --format csv --start 2026-01-01T00:00:00Z --out hk.csv",
    "plot": "groundseg plot archive/ --apid hk --field bus_voltage --field battery_temp --out hk.png\n"
            "  groundseg plot archive/ --link-quality --pass 3 --out link.png\n"
            "  groundseg plot by701.wav --iq --mission fixtures/missions/by70-1.toml --out by701-iq.png",
    "archive": "groundseg archive repair archive/demo.h5",
    "repair": "groundseg archive repair archive/demo.h5",
    "receive": "groundseg receive --port /dev/groundseg-rx0 --mission fixtures/missions/demo.toml --profile usb-cdc-raw\n"
               "  groundseg receive --port socket://192.0.2.7:7000 --mission M.toml --profile kiss-tnc --duration 600",
    "emulate": "groundseg emulate --capture sim.cadu --profile usb-cdc-raw --link /tmp/rx0 --rate 2e6",
}


def _document(parser: argparse.ArgumentParser) -> None:
    """Every argument gets a help line and every command an example (``HELP``, ``EXAMPLES``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if name in EXAMPLES and not sub.epilog:
                    sub.epilog = "example:\n  " + EXAMPLES[name]
                    sub.formatter_class = argparse.RawDescriptionHelpFormatter
                _document(sub)
        elif not action.help and action.dest in HELP:
            action.help = HELP[action.dest]


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
