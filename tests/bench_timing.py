"""The timing helpers every part of ``make bench`` shares: repeated calls and their p95."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

RUNS = int(os.environ.get("BENCH_RUNS", "200"))


def timed(fn: Callable[[], object], runs: int = RUNS) -> list[float]:
    """Milliseconds of ``runs`` calls of ``fn``, after one call that warms caches and the
    connection."""
    fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1]
