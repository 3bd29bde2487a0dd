"""Reads about metrics and scheduling."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Max, Min, Sum
from django.db.models.functions import TruncMinute

from catalogue.models import MetricDefinition
from metrics.models import TICK, DayRollup, Heartbeat, HourRollup, Sample
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


# --- a metric's series, as the monitoring page charts it ------------------------------------------

BUCKETS = {
    "minute": dt.timedelta(minutes=1),
    "hour": dt.timedelta(hours=1),
    "day": dt.timedelta(days=1),
}


@dataclass(frozen=True)
class SeriesPoint:
    """One bucket of a metric: ``value`` is what the chart draws (the sum for a count metric,
    the mean otherwise), with the bucket's sample count, sum, min and max."""

    start: dt.datetime
    count: int
    sum: float
    min: float
    max: float
    value: float


def bucket_floor(instant: dt.datetime, bucket: str) -> dt.datetime:
    """The start (UTC) of the ``bucket`` that holds ``instant``."""
    instant = instant.astimezone(dt.UTC)
    if bucket == "minute":
        return instant.replace(second=0, microsecond=0)
    if bucket == "hour":
        return instant.replace(minute=0, second=0, microsecond=0)
    return instant.replace(hour=0, minute=0, second=0, microsecond=0)


def metric_series(
    *,
    plan_id: int,
    metric: MetricDefinition,
    bucket: str,
    since: dt.datetime,
    until: dt.datetime,
) -> list[SeriesPoint]:
    """The metric's buckets that start in ``[bucket_floor(since), until)``, oldest first: the
    hour or day rollups (one range of their primary key), or for minutes the raw samples
    grouped by UTC minute (one range of the samples' natural-key index; there is no minute
    rollup). Buckets without samples are absent, never zero."""
    first = bucket_floor(since, bucket)
    rows: Any
    if bucket == "minute":
        # Every sample of a minute that starts before ``until`` belongs to that minute.
        end = bucket_floor(until, bucket)
        if end < until:
            end += BUCKETS[bucket]
        rows = (
            Sample.objects.filter(
                plan_id=plan_id, metric=metric, observed_at__gte=first, observed_at__lt=end
            )
            .annotate(start=TruncMinute("observed_at", tzinfo=dt.UTC))
            .values("start")
            .annotate(n=Count("*"), total=Sum("value"), low=Min("value"), high=Max("value"))
            .order_by("start")
            .values_list("start", "n", "total", "low", "high")
        )
    else:
        model = HourRollup if bucket == "hour" else DayRollup
        rows = (
            model.objects.filter(
                plan_id=plan_id, metric=metric, bucket__gte=first, bucket__lt=until
            )
            .order_by("bucket")
            .values_list("bucket", "count", "sum", "min", "max")
        )
    counts = metric.kind == MetricDefinition.Kind.COUNT
    return [
        SeriesPoint(
            start=start, count=n, sum=total, min=low, max=high, value=total if counts else total / n
        )
        for start, n, total, low, high in rows
    ]
