"""A mission's decoder configurations, built in one place for the pipeline and the simulator.

``channel_config(mission)`` is the channel coding (131.0-B) of ``[link]`` for
:class:`~groundseg.coding.channel.ChannelDecoder` / ``ChannelEncoder``;
``link_config(mission)`` the transfer-frame layout for
:class:`~groundseg.link.decoder.LinkDecoder` (and the frame checks the simulator's
truth predicts). Each first checks that the mission's keys fit the level that needs
it (``check_link``), so asking a mission recorded at level "frames" for level "bits"
is a :class:`MissionError` naming the key, not a failure deep in the decoder.
"""
from __future__ import annotations

from groundseg.coding.channel import ChannelConfig
from groundseg.link.decoder import LinkConfig
from groundseg.mission.loader import check_link
from groundseg.mission.model import Mission, MissionError


def _link(mission: Mission, level: str):
    if mission.link is None:
        raise MissionError(mission.path, "[link]", f"missing: level {level!r} needs the channel and "
                                                   "frame keys (a mission without [link] is at level \"packets\")")
    check_link(mission.link, level, mission.path)
    return mission.link


def channel_config(mission: Mission, level: str = "bits") -> ChannelConfig:
    """The channel coding of the mission's [link] for a capture at ``level`` ("bits", or
    "soft" / "iq" where the inner code is decoded from soft symbols)."""
    link = _link(mission, level)
    soft = level in ("soft", "iq")
    symbols, ambiguity = link.symbols, link.symbol_ambiguity
    if level == "iq":
        # the demodulator hands on float32 soft symbols; QPSK adds the I/Q ambiguities
        symbols = "soft-float32"
        if mission.modulation is not None and mission.modulation.bits_per_symbol == 2:
            ambiguity = "qpsk"
    return ChannelConfig(
        frame_length=link.frame_length,
        asm=link.asm_value,
        asm_bits=link.asm_bits,
        asm_max_bit_errors=link.asm_max_bit_errors,
        randomized=link.randomized,
        derandomize=link.derandomize,
        reed_solomon=link.reed_solomon,
        interleave=link.interleave,
        dual_basis=link.dual_basis,
        fecf=link.fecf,
        bit_rate=float(link.bit_rate or 0),
        sync_verify=link.sync_verify,
        sync_flywheel=link.sync_flywheel,
        convolutional=link.convolutional if soft else "none",
        convolutional_variant=link.convolutional_variant,
        differential=link.differential,
        symbols=symbols if soft else "hard",
        symbol_ambiguity=ambiguity,
    )


def link_config(mission: Mission) -> LinkConfig:
    """The transfer-frame layout of the mission's [link] and virtual channels (level "frames")."""
    link = _link(mission, "frames")
    if mission.spacecraft_id is None:
        raise MissionError(mission.path, "[mission] spacecraft_id", "missing (required to read frames)")
    return LinkConfig(
        frame_type=link.frame_type,
        frame_length=link.frame_length,
        spacecraft_id=mission.spacecraft_id,
        fecf=link.fecf,
        ocf=mission.ocf_vcids(),
        insert_zone=link.insert_zone,
        fhec=link.fhec,
        tm_secondary_header=link.tm_secondary_header,
        idle_vcid=link.idle_vcid,
        vc_data=mission.vc_data(),
        insert_zone_time=link.insert_zone_time.as_link_config() if link.insert_zone_time else None,
    )
