"""The ``[modulation]`` table of a mission file: how the downlink is modulated.

:func:`modulation_from_table` validates the TOML table and returns a frozen
:class:`ModulationSettings`; the demodulator (``groundseg.coding.demod``) is built from it.
Every error is a ``ValueError`` naming the key (prefixed by ``where``, e.g. the file and
table) and what is allowed, so the mission loader can wrap it in its own error type.

Example::

    [modulation]
    scheme = "bpsk"               # bpsk | qpsk | oqpsk | fsk | gmsk
    symbol_rate = 9600            # symbols per second (baud)
    rrc_rolloff = 0.35            # PSK matched filter; 0 < alpha <= 1
    audio_center = 12000          # Hz: carrier of a signal in a radio's audio (SSB) or IF
    subcarrier = 0                # Hz: PSK on a subcarrier (0: none)
    residual_carrier = false      # PM with a residual carrier
    modulation_index = 1.0        # rad (residual carrier)
    carrier_loop_bandwidth = 0.02 # Costas loop, normalised to the symbol rate
    timing_loop_bandwidth = 0.0015 # Gardner loop, normalised to the symbol rate
    frequency_offset_max = 2000   # Hz searched by the coarse FFT estimate around the centre
    invert = false                # swap the soft symbols' sign (FSK audio from some receivers)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

SCHEMES = ("bpsk", "qpsk", "oqpsk", "fsk", "gmsk")
PSK_SCHEMES = ("bpsk", "qpsk", "oqpsk")
FSK_SCHEMES = ("fsk", "gmsk")


@dataclass(frozen=True)
class ModulationSettings:
    scheme: str = "bpsk"
    symbol_rate: float = 0.0
    rrc_rolloff: float = 0.35
    rrc_span: int = 8                    # symbols
    audio_center: float = 0.0            # Hz; carrier of the signal in the recording
    subcarrier: float = 0.0              # Hz; 0 = no subcarrier
    residual_carrier: bool = False
    modulation_index: float = 1.0        # rad, PM with a residual carrier (the simulator)
    carrier_loop_bandwidth: float = 0.02
    timing_loop_bandwidth: float = 0.0015
    agc_time_constant: float = 200.0     # symbols
    frequency_offset_max: float = 0.0    # Hz; 0 = 10 % of the symbol rate
    fsk_deviation: float = 0.0           # Hz (informative for audio; used by the simulator)
    gmsk_bt: float = 0.5
    invert: bool = False
    esn0_block: int = 1024               # symbols per Es/N0 estimate
    lock_esn0_db: float | None = None    # Es/N0 above which a block counts as locked (None: by scheme)

    @property
    def is_psk(self) -> bool:
        return self.scheme in PSK_SCHEMES

    @property
    def bits_per_symbol(self) -> int:
        return 2 if self.scheme in ("qpsk", "oqpsk") else 1

    @property
    def lock_threshold_db(self) -> float:
        """PSK: 0 dB (the carrier-phase metric decides too: noise alone can read about 0 dB
        over a block); FSK: 5 dB (the discriminator's noise alone reads about 3 dB)."""
        if self.lock_esn0_db is not None:
            return self.lock_esn0_db
        return 0.0 if self.is_psk else 5.0

    @property
    def max_offset_hz(self) -> float:
        return self.frequency_offset_max or 0.1 * self.symbol_rate


_TYPES = {f.name: f.type for f in fields(ModulationSettings)}
_KEYS = tuple(_TYPES)


def _number(table, key, where, default, lo=None, hi=None, lo_open=False, integer=False):
    if key not in table:
        return default
    v = table[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{where}: modulation.{key} must be a number, not {v!r}")
    if integer and v != int(v):
        raise ValueError(f"{where}: modulation.{key} must be a whole number, not {v!r}")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise ValueError(f"{where}: modulation.{key} must be {'>' if lo_open else '>='} {lo}, not {v!r}")
    if hi is not None and v > hi:
        raise ValueError(f"{where}: modulation.{key} must be <= {hi}, not {v!r}")
    return int(v) if integer else float(v)


def _bool(table, key, where, default):
    if key not in table:
        return default
    v = table[key]
    if not isinstance(v, bool):
        raise ValueError(f"{where}: modulation.{key} must be true or false, not {v!r}")
    return v


def modulation_from_table(table: dict, where: str = "mission") -> ModulationSettings:
    """Validate a mission file's ``[modulation]`` table; ``ValueError`` names what is wrong."""
    if not isinstance(table, dict):
        raise ValueError(f"{where}: [modulation] must be a table, not {type(table).__name__}")
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) in [modulation]: {', '.join(unknown)} "
                         f"(allowed: {', '.join(_KEYS)})")
    scheme = table.get("scheme")
    if scheme is None:
        raise ValueError(f"{where}: modulation.scheme is required (one of {', '.join(SCHEMES)})")
    if not isinstance(scheme, str) or scheme.lower() not in SCHEMES:
        raise ValueError(f"{where}: modulation.scheme must be one of {', '.join(SCHEMES)}, not {scheme!r}")
    if "symbol_rate" not in table:
        raise ValueError(f"{where}: modulation.symbol_rate (baud) is required")
    d = ModulationSettings()
    s = ModulationSettings(
        scheme=scheme.lower(),
        symbol_rate=_number(table, "symbol_rate", where, 0.0, lo=0, lo_open=True),
        rrc_rolloff=_number(table, "rrc_rolloff", where, d.rrc_rolloff, lo=0, hi=1, lo_open=True),
        rrc_span=_number(table, "rrc_span", where, d.rrc_span, lo=2, hi=64, integer=True),
        audio_center=_number(table, "audio_center", where, d.audio_center),
        subcarrier=_number(table, "subcarrier", where, d.subcarrier, lo=0),
        residual_carrier=_bool(table, "residual_carrier", where, d.residual_carrier),
        modulation_index=_number(table, "modulation_index", where, d.modulation_index, lo=0, hi=math.pi / 2,
                                 lo_open=True),
        carrier_loop_bandwidth=_number(table, "carrier_loop_bandwidth", where, d.carrier_loop_bandwidth,
                                       lo=0, hi=0.25, lo_open=True),
        timing_loop_bandwidth=_number(table, "timing_loop_bandwidth", where, d.timing_loop_bandwidth,
                                      lo=0, hi=0.25, lo_open=True),
        agc_time_constant=_number(table, "agc_time_constant", where, d.agc_time_constant, lo=1),
        frequency_offset_max=_number(table, "frequency_offset_max", where, d.frequency_offset_max, lo=0),
        fsk_deviation=_number(table, "fsk_deviation", where, d.fsk_deviation, lo=0),
        gmsk_bt=_number(table, "gmsk_bt", where, d.gmsk_bt, lo=0.1, hi=2),
        invert=_bool(table, "invert", where, d.invert),
        esn0_block=_number(table, "esn0_block", where, d.esn0_block, lo=16, integer=True),
        lock_esn0_db=_number(table, "lock_esn0_db", where, d.lock_esn0_db),
    )
    if s.subcarrier and not s.is_psk:
        raise ValueError(f"{where}: modulation.subcarrier applies to PSK schemes, not {s.scheme!r}")
    if s.residual_carrier and s.scheme != "bpsk":
        raise ValueError(f"{where}: modulation.residual_carrier applies to bpsk, not {s.scheme!r}")
    return s


__all__ = ["SCHEMES", "ModulationSettings", "modulation_from_table"]
