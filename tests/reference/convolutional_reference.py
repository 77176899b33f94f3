"""Textbook k=7 convolutional encoder and Viterbi decoder (CCSDS 131.0-B-4 section 3), bit by bit.

Written from the standard's description, not from the kernels: a 7-bit shift register whose
first cell is the newest input bit, G1 = 1111001 and G2 = 1011011 read left to right from
that cell, the punctured symbols chosen from table 3-2, and a Viterbi decoder over Python
lists with float correlation metrics (bigger is better) that keeps whole survivor paths.
"""
from __future__ import annotations

G1 = "1111001"   # 171 octal, leftmost tap = newest bit
G2 = "1011011"   # 133 octal

PATTERNS = {
    "1/2": ("1", "1"),
    "2/3": ("10", "11"),
    "3/4": ("101", "110"),
    "5/6": ("10101", "11010"),
    "7/8": ("1000101", "1111010"),
}


def _tap(register: list[int], g: str) -> int:
    return sum(r for r, t in zip(register, g) if t == "1") % 2


def base_symbols(bits: list[int]) -> list[tuple[int, int]]:
    """(G1, G2) outputs per input bit, encoder starting from all-zero cells."""
    reg = [0] * 7
    out = []
    for b in bits:
        reg = [b] + reg[:-1]
        out.append((_tap(reg, G1), _tap(reg, G2)))
    return out


def encode(bits: list[int], rate: str = "1/2", variant: str = "ccsds") -> list[int]:
    pairs = base_symbols(bits)
    out = []
    if rate == "1/2":
        for g1, g2 in pairs:
            if variant == "ccsds":
                out += [g1, 1 - g2]
            elif variant == "ccsds-noinv":
                out += [g1, g2]
            elif variant == "nasa-dsn":
                out += [1 - g2, g1]
            else:
                raise ValueError(variant)
        return out
    c1, c2 = PATTERNS[rate]
    for i, (g1, g2) in enumerate(pairs):
        p = i % len(c1)
        if c1[p] == "1":
            out.append(g1)
        if c2[p] == "1":
            out.append(g2)
    return out


def depuncture(soft: list[float], nbits: int, rate: str, variant: str) -> list[tuple[float, float]]:
    """Soft values (positive = 1) back to (G1, G2) pairs of the uninverted code, 0 where punctured."""
    out = []
    it = iter(soft)
    if rate == "1/2":
        for _ in range(nbits):
            a, b = next(it), next(it)
            if variant == "ccsds":
                out.append((a, -b))
            elif variant == "ccsds-noinv":
                out.append((a, b))
            else:
                out.append((b, -a))
        return out
    c1, c2 = PATTERNS[rate]
    for i in range(nbits):
        p = i % len(c1)
        a = next(it) if c1[p] == "1" else 0.0
        b = next(it) if c2[p] == "1" else 0.0
        out.append((a, b))
    return out


def viterbi(soft: list[float], nbits: int, rate: str = "1/2", variant: str = "ccsds",
            terminated: bool = True) -> list[int]:
    """Maximum-likelihood bits for soft symbols (positive = 1), from state 0 (to state 0)."""
    pairs = depuncture(list(soft), nbits, rate, variant)
    NEG = float("-inf")
    metric = {0: 0.0}                  # state (last six bits, newest first, as a tuple) -> metric
    paths: dict = {0: []}
    for a, b in pairs:
        new_metric: dict = {}
        new_paths: dict = {}
        for state, m in metric.items():
            cells = [(state >> k) & 1 for k in range(6)]      # newest first
            for bit in (0, 1):
                reg = [bit] + cells
                g1, g2 = _tap(reg, G1), _tap(reg, G2)
                gain = a * (2 * g1 - 1) + b * (2 * g2 - 1)
                nxt = ((state << 1) | bit) & 63
                if m + gain > new_metric.get(nxt, NEG):
                    new_metric[nxt] = m + gain
                    new_paths[nxt] = paths[state] + [bit]
        metric, paths = new_metric, new_paths
    best = 0 if terminated and 0 in metric else max(metric, key=metric.get)
    return paths[best]
