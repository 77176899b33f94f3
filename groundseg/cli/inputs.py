"""What the commands take: mission files, output paths, times (argument checking)."""
from __future__ import annotations

import argparse
from pathlib import Path

from groundseg.errors import UsageError


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
