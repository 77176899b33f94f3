"""Demodulation: IQ or audio samples -> soft symbols (a coding-layer stage before the Viterbi decoder).

``Demodulator(settings, sample_rate)``: ``push(samples) -> float32 soft symbols``, ``flush()``,
``reset()``, ``stats`` (:class:`DemodStats`), ``blocks`` (Es/N0, lock, carrier per block).
"""
from groundseg.coding.demod.demodulator import (
                                               BLOCK_DTYPE,
                                               DemodStats,
                                               Demodulator,
                                               demodulate,
                                               esn0_from_moments,
                                               soft_from_symbols,
)

__all__ = ["BLOCK_DTYPE", "DemodStats", "Demodulator", "demodulate", "esn0_from_moments",
           "soft_from_symbols"]
