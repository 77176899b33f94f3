"""Differential (NRZ-M) coding of a bit stream (CCSDS 131.0-B-4 3.3.3, 401.0-B 2.2.5.4).

NRZ-M sends a change of level for a 1 and no change for a 0: the encoder outputs
``e[n] = b[n] xor e[n-1]`` and the decoder recovers ``b[n] = e[n] xor e[n-1]``. The decoder
makes the data immune to a polarity inversion of the channel (the BPSK phase ambiguity):
inverting every e[n] leaves every difference unchanged, except the first bit after the
inversion. 131.0-B advises differential coding before the convolutional encoder, so the
receiver decodes it after the Viterbi decoder (BY70-1 does this).

Bits are packed bytes, MSB first. The stages carry one bit across chunks; the bit before
the first one of a stream is taken as 0 (``initial``).
"""
from __future__ import annotations

import numpy as np

from groundseg._numba import kernel


@kernel
def _decode(data, prev, out):
    # b[n] = e[n] ^ e[n-1]: the byte xor itself shifted right by one, the previous byte's
    # last bit entering at the top.
    for i in range(data.size):
        e = np.int64(data[i])
        out[i] = np.uint8((e ^ ((e >> 1) | (prev << 7))) & 0xFF)
        prev = e & 1
    return prev


@kernel
def _encode(data, prev, out):
    for i in range(data.size):
        b = np.int64(data[i])
        e = 0
        for k in range(7, -1, -1):
            prev = ((b >> k) & 1) ^ prev
            e |= prev << k
        out[i] = np.uint8(e)
    return prev


def _as_bytes(chunk, what: str) -> np.ndarray:
    a = chunk if isinstance(chunk, np.ndarray) else np.frombuffer(bytes(chunk), np.uint8)
    if a.dtype != np.uint8:
        raise ValueError(f"{what}: expected packed bytes (uint8), got dtype {a.dtype}")
    return np.ascontiguousarray(a.reshape(-1))


def nrzm_decode(data, initial: int = 0) -> np.ndarray:
    """Whole stream: NRZ-M -> NRZ-L."""
    d = _as_bytes(data, "nrzm_decode")
    out = np.empty(d.size, np.uint8)
    _decode(d, int(initial) & 1, out)
    return out


def nrzm_encode(data, initial: int = 0) -> np.ndarray:
    """Whole stream: NRZ-L -> NRZ-M (``initial`` is the level before the first bit)."""
    d = _as_bytes(data, "nrzm_encode")
    out = np.empty(d.size, np.uint8)
    _encode(d, int(initial) & 1, out)
    return out


class DifferentialDecoder:
    """Streaming NRZ-M decoder: ``push(bytes) -> bytes``, ``flush() -> b""`` (nothing is held
    back), ``reset()`` for a new stream; carries the last bit of the previous chunk."""

    def __init__(self, initial: int = 0):
        self.initial = int(initial) & 1
        self.reset()

    def reset(self) -> None:
        self._prev = self.initial
        self.bytes_in = 0

    def push(self, chunk) -> np.ndarray:
        d = _as_bytes(chunk, "DifferentialDecoder.push")
        out = np.empty(d.size, np.uint8)
        self._prev = int(_decode(d, self._prev, out))
        self.bytes_in += d.size
        return out

    def flush(self) -> np.ndarray:
        return np.zeros(0, np.uint8)


class DifferentialEncoder:
    """Streaming NRZ-M encoder, the mirror image of :class:`DifferentialDecoder`."""

    def __init__(self, initial: int = 0):
        self.initial = int(initial) & 1
        self.reset()

    def reset(self) -> None:
        self._prev = self.initial

    def push(self, chunk) -> np.ndarray:
        d = _as_bytes(chunk, "DifferentialEncoder.push")
        out = np.empty(d.size, np.uint8)
        self._prev = int(_encode(d, self._prev, out))
        return out

    def flush(self) -> np.ndarray:
        return np.zeros(0, np.uint8)


__all__ = ["nrzm_decode", "nrzm_encode", "DifferentialDecoder", "DifferentialEncoder"]
