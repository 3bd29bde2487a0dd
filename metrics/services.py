"""Writes about metrics and scheduling."""

from __future__ import annotations

from datetime import datetime

from django.db.models import F
from django.utils import timezone

from metrics.models import TICK, Heartbeat, PlanJobFailure


def heartbeat_record(*, name: str = TICK, at: datetime | None = None) -> Heartbeat:
    """Record that ``name`` ran at ``at`` (now by default). Safe to call concurrently."""
    at = at or timezone.now()
    beats = Heartbeat.objects.filter(name=name)
    if not beats.update(beat_at=at, beats=F("beats") + 1):
        # No row yet. If another process inserts it between our UPDATE and INSERT, get_or_create
        # waits for it, finds it, and we count our beat on top instead of overwriting theirs.
        _beat, created = Heartbeat.objects.get_or_create(
            name=name, defaults={"beat_at": at, "beats": 1}
        )
        if not created:
            beats.update(beat_at=at, beats=F("beats") + 1)
    return Heartbeat.objects.get(name=name)


def tick_outcome_record(*, at: datetime, failed_steps: list[str], name: str = TICK) -> None:
    """Record how the run that started at ``at`` ended: completed (with how many plans a job
    failed for in it), or failed as a whole when a step raised (``failed_steps``)."""
    # Every job of the tick stamps its failures with the tick's ``at``.
    failed_plans = PlanJobFailure.objects.filter(last_at=at).values("plan").distinct().count()
    beats = Heartbeat.objects.filter(name=name)
    if failed_steps:
        error = f"Failed: {', '.join(failed_steps)}. The details are in the worker's log."
        beats.update(failed_at=timezone.now(), error=error[:300], failed_plans=failed_plans)
    else:
        beats.update(completed_at=timezone.now(), failed_plans=failed_plans)
