"""The spacecraft simulator, kept under its first name: see :mod:`groundseg.sim`.

``from groundseg.spacecraft import simulate, Impairments`` keeps working; the code lives in
the ``groundseg.sim`` package (plan, packets, frames, impairments, channel, truth, simulate).
"""
from __future__ import annotations

from groundseg.mission.configs import channel_config
from groundseg.sim import (CLOCK_START, DEFAULT_BIT_RATE, IDLE_APID, IDLE_FILL, LEVELS, NOMINAL_FRAME_LENGTH,
                           SEQ_MODULUS, Impairments, SimulatedDownlink, simulate, simulate_to_file,
                           write_capture)

__all__ = ["simulate", "simulate_to_file", "write_capture", "Impairments", "SimulatedDownlink",
           "channel_config", "LEVELS", "CLOCK_START", "DEFAULT_BIT_RATE", "IDLE_APID", "IDLE_FILL",
           "NOMINAL_FRAME_LENGTH", "SEQ_MODULUS"]
