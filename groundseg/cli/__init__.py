"""`groundseg` command line: a thin layer over the library, and the only place that prints.

Exit status: 0 success (rejected frames are data, not failure), 2 bad usage,
a bad mission file or a mission that does not match the archive, 1 any other
error. Errors are one line on stderr, never a traceback (``-v`` shows it).
"""
from __future__ import annotations

import logging
import os
import sys

# ccsdspy logs a line at import time; a CLI's output is ours alone
logging.getLogger("ccsdspy").setLevel(logging.WARNING)

from groundseg.cli.console import Console, format_report  # noqa: E402
from groundseg.cli.parser import build_parser  # noqa: E402
from groundseg.errors import UsageError  # noqa: E402  (exit status 2)

__all__ = ["main", "build_parser", "Console", "format_report"]


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
