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


def best_cpu_and_wall(fn, repeats: int) -> tuple[float, float]:
    """Best thread CPU time and best wall time over ``repeats`` calls: the CPU figure is
    the per-core one on a machine other work shares (wall counts waiting for a core)."""
    cpu = wall = np.inf
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.thread_time()
        fn()
        cpu = min(cpu, time.thread_time() - c0)
        wall = min(wall, time.perf_counter() - t0)
    return cpu, wall
