"""What the CLI prints: progress lines and the pass summary (the only place output is made)."""
from __future__ import annotations

import sys
import time


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
