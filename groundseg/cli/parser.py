"""The argument parser: every command, its options, a help line for each and an example."""
from __future__ import annotations

import argparse

from groundseg import __version__
from groundseg.cli.archive_commands import cmd_archive, cmd_export, cmd_inspect, cmd_plot
from groundseg.cli.emulate import cmd_emulate
from groundseg.cli.inputs import _time_selection, _utc_time
from groundseg.cli.receive import cmd_receive
from groundseg.cli.replay import cmd_replay
from groundseg.cli.simulate import cmd_simulate


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
