"""`groundseg replay`: captures and recordings into the archive, with a report."""
from __future__ import annotations

import time
from pathlib import Path

from groundseg.cli.console import Console, format_report
from groundseg.cli.inputs import _load_mission, _output_path
from groundseg.cli.signals import _StopSignals
from groundseg.errors import UsageError


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
