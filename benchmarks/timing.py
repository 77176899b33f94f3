"""Timing helpers shared by the benchmark modules."""
from __future__ import annotations

import time

import numpy as np


def best_of(fn, repeats: int) -> float:
    """Best wall time of ``repeats`` calls (the least disturbed by other work on the machine)."""
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best
