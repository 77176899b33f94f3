"""The inner code's mirror image: a CADU bit stream -> [NRZ-M] -> convolutional encoder
(CCSDS 131.0-B-4 section 3) -> BPSK symbols with white Gaussian noise at a given Eb/N0 ->
soft symbols (int8 or float32, positive = bit 1, as a demodulator hands them on).

Eb is the energy per information bit (the bit before the inner code): with symbols of
amplitude 1 at rate R, Es = 1, Eb = 1 / R, so the noise per real dimension has
sigma^2 = 1 / (2 R Eb/N0).
"""
from __future__ import annotations

import numpy as np

from groundseg.coding import convolutional as cc
from groundseg.coding.channel import ChannelConfig
from groundseg.coding.differential import nrzm_encode

#: int8 symbols: the noiseless amplitude (headroom left for noise before clipping)
INT8_AMPLITUDE = 48.0


def code_rate(rate: str) -> float:
    k, n = (int(x) for x in rate.split("/"))
    return k / n


def soft_symbols(bits: bytes | np.ndarray, cfg: ChannelConfig, rng: np.random.Generator,
                 ebn0_db: float | None = None) -> np.ndarray:
    """The soft symbols of the packed hard-bit stream ``bits`` for the inner code of ``cfg``
    (``cfg.convolutional`` != "none"); ``ebn0_db`` None: no noise. Returns int8 or float32
    per ``cfg.symbols``; a zero byte is appended first so the encoder ends in state 0."""
    data = np.frombuffer(bytes(bits), np.uint8) if not isinstance(bits, np.ndarray) else bits
    if cfg.differential:
        data = nrzm_encode(data)
    data = np.concatenate([data, np.zeros(1, np.uint8)])
    sym = cc.encode(data, cfg.convolutional, cfg.convolutional_variant)
    x = 2.0 * sym.astype(np.float32) - 1.0
    if ebn0_db is not None:
        sigma = np.sqrt(1.0 / (2.0 * code_rate(cfg.convolutional) * 10 ** (ebn0_db / 10.0)))
        x = x + rng.normal(0.0, sigma, x.size).astype(np.float32)
    if cfg.symbols == "soft-int8":
        return np.clip(np.round(x * INT8_AMPLITUDE), -127, 127).astype(np.int8)
    return x.astype("<f4")
