"""`groundseg emulate`: the USB receiver emulator on a pseudo-terminal."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from groundseg.cli.console import Console
from groundseg.cli.inputs import _load_mission
from groundseg.errors import UsageError


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
