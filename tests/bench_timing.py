"""The timing helpers every part of ``make bench`` shares: repeated calls and their p95."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

from django.db import connection

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


def settle_database() -> None:
    """Let PostgreSQL finish what the earlier parts' bulk loads left behind (millions of samples
    a few seconds ago): their dirty pages written (``CHECKPOINT``), their tables vacuumed and
    analysed, as a production database is long after a load. A part timing single requests
    then measures them, not a background flush: the plan page's p50 was 34.6 ms measured right
    after the checks part's load and 20.5 ms without it (same code, same machine)."""
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
        cursor.execute("VACUUM ANALYZE")
        for _ in range(120):  # autovacuum workers still busy with a table: wait (at most 60 s)
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
            )
            if not cursor.fetchone()[0]:
                break
            time.sleep(0.5)
