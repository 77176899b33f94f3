"""`groundseg simulate`: a simulated downlink (CADUs, frames, packets, soft symbols, IQ) and its truth."""
from __future__ import annotations

from pathlib import Path

from groundseg.cli.console import Console
from groundseg.cli.inputs import _load_mission
from groundseg.errors import UsageError


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
