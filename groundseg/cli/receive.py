"""`groundseg receive`: a live receiver (serial, TCP, UDP) into the archive, with a status line."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from groundseg.cli.console import Console, format_report
from groundseg.cli.inputs import _load_mission, _output_path, _usage
from groundseg.cli.replay import _close_pass
from groundseg.cli.signals import _StopSignals
from groundseg.errors import UsageError


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
