"""What the channel does to the downlink: the :class:`Impairments` a simulation applies, and
the draws shared by the levels (random bit errors, which frames are lost)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Impairments:
    """What the channel does to the downlink (level "bits" unless noted).

    - ``bit_error_rate``: random bit errors over the codeblocks (level "frames": over the
      frames). Markers get them too, capped at the link's ``asm_max_bit_errors``.
    - ``byte_errors_per_codeword``: exactly this many byte (symbol) errors in every RS
      codeword of a ``byte_error_fraction`` of the codeblocks (0..E corrects, E+1 does not).
    - ``lost_frames``: CADUs (level "frames": frames) dropped; shows as counter gaps.
      Chosen where no packet's primary header is split by the loss, so the count of
      dropped packets does not depend on how a decoder treats half a header.
    - ``bit_slips``: that many places between CADUs where 1..``slip_bits`` bits are
      inserted or deleted.
    - ``garbage_bytes``: that many insertions of 1..``garbage_length`` random bytes
      between CADUs (never resembling the marker).
    - ``inverted``: every bit inverted (BPSK phase ambiguity); ``polarity_flips``: that
      many flips of polarity at CADU boundaries.
    - ``bit_offset``: the stream starts this many random bits before the first marker.
    - ``truncate_last``: the last CADU (or frame record) is cut short.
    """
    bit_error_rate: float = 0.0
    byte_errors_per_codeword: int = 0
    byte_error_fraction: float = 1.0
    lost_frames: int = 0
    bit_slips: int = 0
    slip_bits: int = 1
    garbage_bytes: int = 0
    garbage_length: int = 64
    inverted: bool = False
    polarity_flips: int = 0
    bit_offset: int = 0
    truncate_last: bool = False

    def __post_init__(self):
        if not 0.0 <= self.bit_error_rate <= 0.1:
            raise ValueError(f"bit_error_rate must be in 0..0.1, got {self.bit_error_rate}")
        if not 0.0 <= self.byte_error_fraction <= 1.0:
            raise ValueError(f"byte_error_fraction must be in 0..1, got {self.byte_error_fraction}")
        for name in ("byte_errors_per_codeword", "lost_frames", "bit_slips", "garbage_bytes",
                     "polarity_flips", "bit_offset"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.slip_bits < 1:
            raise ValueError(f"slip_bits must be >= 1, got {self.slip_bits}")
        if self.garbage_length < 1:
            raise ValueError(f"garbage_length must be >= 1, got {self.garbage_length}")

    @property
    def any(self) -> bool:
        return self != Impairments()

    def channel_only(self) -> list[str]:
        """Names of the impairments set here that exist only on a bit stream."""
        names = ("byte_errors_per_codeword", "bit_slips", "garbage_bytes", "inverted",
                 "polarity_flips", "bit_offset")
        return [n for n in names if getattr(self, n)]


def apply_ber(rng, blocks: np.ndarray, ber: float) -> np.ndarray:
    """Flip random bits of every row in place; returns which rows changed."""
    nbits = blocks.size * 8
    k = int(rng.binomial(nbits, ber))
    if k == 0:
        return np.zeros(blocks.shape[0], bool)
    pos = np.unique(rng.integers(0, nbits, k))
    flat = blocks.reshape(-1)
    np.bitwise_xor.at(flat, pos >> 3, (0x80 >> (pos & 7)).astype(np.uint8))
    changed = np.zeros(blocks.shape[0], bool)
    changed[np.unique((pos >> 3) // blocks.shape[1])] = True
    return changed


def choose_lost(rng, n_lost: int, candidates: np.ndarray, sched, packet_info) -> np.ndarray:
    """Frames to lose, avoiding any whose loss would split a packet's primary header."""
    unsafe = np.zeros(len(sched), bool)
    for v, info in packet_info.items():
        zone = info["zone"]
        s = info["starts"]
        split = (s % zone) > zone - 6          # header begins in frame j, ends in j+1
        j = s[split] // zone
        unsafe[info["rows"][j[j + 1 < len(info["rows"])] + 1]] = True
    ok = candidates[~unsafe[candidates]]
    if n_lost > len(ok):
        raise ValueError(f"cannot lose {n_lost} frames out of {len(candidates)} "
                         f"({len(ok)} can be lost without splitting a packet header)")
    return np.sort(rng.choice(ok, n_lost, replace=False))
