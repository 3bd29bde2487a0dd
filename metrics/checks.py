"""Scheduled checks: the tick claims due slots as CheckRun rows, the worker executes them.

(Contract; implemented by the checks work.)
"""

from __future__ import annotations

import datetime as dt


def tick_process(*, now: dt.datetime) -> list[int]:
    """Claim every due slot of every running plan; return the ids of new pending runs."""
    return []


def check_run_execute(*, run_id: int) -> None:
    """Evaluate every exit criterion of the run's plan, once."""
