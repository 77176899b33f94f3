"""`groundseg inspect`, `export`, `plot` and `archive repair`: reading captures and archives."""
from __future__ import annotations

import json
from pathlib import Path

from groundseg.cli.console import Console
from groundseg.cli.inputs import _load_mission, _output_path
from groundseg.errors import UsageError


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
