"""Rollback trigger evaluation and breach episodes. (Contract; implemented by the triggers work.)"""

from __future__ import annotations

import datetime as dt


def triggers_evaluate_running(*, now: dt.datetime) -> None:
    """Evaluate the triggers of every running plan (beat's one-minute tick)."""


def triggers_evaluate_plan(*, plan_id: int, now: dt.datetime) -> None:
    """Evaluate one plan's triggers (queued after each ingestion)."""
