"""Reads about metrics and scheduling."""

from __future__ import annotations

from datetime import datetime

from catalogue.models import MetricDefinition
from metrics.models import TICK, Heartbeat
from pilots.models import PilotPlan


def heartbeat_last(*, name: str = TICK) -> datetime | None:
    """When ``name`` last beat, or None if it never has."""
    return Heartbeat.objects.filter(name=name).values_list("beat_at", flat=True).first()


def heartbeat_get(*, name: str = TICK) -> Heartbeat | None:
    """The heartbeat row of ``name`` (start, completion, failures of its last run), or None."""
    return Heartbeat.objects.filter(name=name).first()


def plan_metrics(plan: PilotPlan) -> list[tuple[str, str]]:
    """(key, kind) of every metric the plan's criteria and triggers read."""
    ids = set(plan.exit_criteria.values_list("metric_id", flat=True))
    ids |= set(
        plan.exit_criteria.exclude(denominator=None).values_list("denominator_id", flat=True)
    )
    ids |= set(plan.rollback_triggers.values_list("metric_id", flat=True))
    return sorted(MetricDefinition.objects.filter(pk__in=ids).values_list("key", "kind"))
