"""The spacecraft simulator: a simulated downlink and the truth a correct decoder must reach.

The mirror image of the decoding chain, composed from the encoders that sit beside
their decoders: Space Packets (CCSDS 133.0-B) with CUC/CDS time codes (301.0-B) ->
M_PDU packet zones -> TM (132.0-B) or AOS (732.0-B) transfer frames with CLCW
(232.0-B), insert zone and FECF -> Reed-Solomon, pseudo-randomiser and ASM
(131.0-B) -> channel impairments. Everything is built with numpy over whole arrays
(all packets of an APID at once, all frames at once; byte copies in small numba
kernels). Python loops run over impairment events, and over codeblocks only in the
receiver model of a stream disturbed by slips or garbage (~0.1 s per 20,000 CADUs).

The truth (``SimulatedDownlink.truth``, written as ``FILE.truth.json``) uses the
keys of the pass report (``Pipeline.report()``, docs/architecture.md), plus
``packet_md5`` per APID, and counts what a correct decoder must count given the
impairments. Conventions the counts rest on (each matches the decoder's rule):

- Sync: the receiver is modelled as ``groundseg.coding.sync.FrameSync`` with the
  settings the channel decoder gives it (search with verification of the next
  marker, lock within +-``spacing_tolerance`` bits, on a miss an immediate resync on
  a verified marker up to one CADU ahead (a lock loss), else ``flywheel`` blind
  codeblocks, then search). The simulator keeps every marker
  it sends within ``asm_max_bit_errors`` and makes sure no garbage or prefix bits
  resemble a marker, so the codeblocks a receiver finds follow from the marker
  positions alone. Flywheel codeblocks (misaligned) count as RS-uncorrectable.
- Reed-Solomon: a codeword with at most E symbol errors is corrected (that many
  symbols counted), one with more is uncorrectable. Errors are placed by the
  simulator, so it knows every codeword's error count; a decoder that
  miscorrects a codeword beyond E (probability ~1e-13 for E=16, ~2e-5 for E=8)
  would differ.
- Packets: a packet is delivered when every frame carrying its bytes is delivered;
  ``dropped_incomplete`` counts packets whose 6-byte header was delivered but not
  the rest. Idle packets (APID 0x7FF) count in ``idle_packets`` when delivered whole.
- ``exact`` is False (with ``notes`` saying why) where a count cannot be predicted:
  bit errors on a link without Reed-Solomon or FECF, or flywheel codeblocks on a
  link without Reed-Solomon.

Modules, along the way a downlink is made: :mod:`~groundseg.sim.plan` (the mission
reduced to what is sent: frame type, the decoder's link configuration from
:mod:`groundseg.mission.configs`, VCs, APIDs), :mod:`~groundseg.sim.packets` (Space
Packets and their fields), :mod:`~groundseg.sim.frames` (M_PDUs, idle frames, headers
through the frame type's encoder), :mod:`~groundseg.sim.impairments`,
:mod:`~groundseg.sim.channel` (the channel coding and the receiver model),
:mod:`~groundseg.sim.truth`, :mod:`~groundseg.sim.simulate` (the whole, and the files),
:mod:`~groundseg.sim.kernels` (byte and bit copies).
"""
from __future__ import annotations

from groundseg.sim.impairments import Impairments
from groundseg.sim.plan import (CLOCK_START, DEFAULT_BIT_RATE, IDLE_APID, IDLE_FILL, LEVELS,
                                NOMINAL_FRAME_LENGTH, SEQ_MODULUS)
from groundseg.sim.simulate import SimulatedDownlink, simulate, simulate_to_file, write_capture

__all__ = ["simulate", "simulate_to_file", "write_capture", "Impairments", "SimulatedDownlink",
           "LEVELS", "CLOCK_START", "DEFAULT_BIT_RATE", "IDLE_APID", "IDLE_FILL", "NOMINAL_FRAME_LENGTH",
           "SEQ_MODULUS"]
