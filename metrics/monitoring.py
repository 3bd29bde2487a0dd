"""The Monitoring page of a plan: every read it needs, in a constant number of queries.

The charts read ``HourRollup`` over the whole pilot window (one query for every metric at once,
~2,160 hourly points per metric for a 90-day pilot), or over the last 24 hours the raw samples
grouped by minute (there is no minute rollup; one range of the samples' natural-key index per
metric, 1,440 samples of a per-minute metric). Gauges and scores chart the hourly (or per-minute)
mean with a min–max band; counts chart the sum per bucket, since "events per hour" is what a
count means. The page gets two JSON documents that ``static/js/monitoring.js`` turns into Chart.js
charts: ``DashboardPage.data`` (through ``json_script``: the metrics, thresholds, breach regions)
and ``DashboardPage.series_json`` (the points, written by PostgreSQL; see ``_SERIES_SQL``).

Queries, whatever the amount of data: exit criteria, rollback triggers (with their state),
metric definitions, the series, trigger episodes, recent check runs with the latest done run,
their criterion results, and the plan's external dashboards.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import connection
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.safestring import mark_safe

from catalogue.models import MetricDefinition
from metrics.failures import failure_words
from metrics.models import (
    CheckRun,
    CriterionResult,
    HourRollup,
    TriggerEpisode,
    TriggerState,
)
from metrics.slots import PlanWindowError, plan_window
from pilots import wording
from pilots.models import Dashboard, ExitCriterion, PilotPlan, RollbackTrigger


class Span:
    """What the charts cover: the whole pilot window (hourly) or the last 24 hours (per minute)."""

    PILOT = "pilot"
    DAY = "24h"
    CHOICES = (PILOT, DAY)


HISTORY_RUNS = 10  # check runs in the history table; the checks page has them all
MAX_EPISODES = 200  # breach regions drawn; the triggers' de-duplication keeps them few anyway

# Aggregations whose threshold is on the scale of the charted values (an hourly mean or
# per-minute value of the same metric), so a horizontal line means something. A total over the
# window, a rate per N of another metric or a ratio of two counts is listed, not drawn.
_LINE_AGGREGATIONS = frozenset(
    {
        ExitCriterion.Aggregation.LATEST,
        ExitCriterion.Aggregation.MEAN,
        ExitCriterion.Aggregation.MAX,
        ExitCriterion.Aggregation.MIN,
        ExitCriterion.Aggregation.PERCENTILE,
    }
)

# One query for every metric's series, answered as JSON text that PostgreSQL writes itself: a
# 90-day pilot is ~52,000 numbers for 8 metrics, which Python's json.dumps alone takes longer to
# format (60–75 ms here) than the whole page may take. Per metric: ``t``, the bucket as whole steps
# (hours or minutes) after ``origin``; ``y``, the sum for counts and the mean otherwise; ``lo`` and
# ``hi``, the bucket's min and max (null for counts: a band of sums means nothing). Values keep 5
# significant digits of the bucket's magnitude (``p``, the rounding scale): plenty for a chart,
# and half the bytes.
#
# The inner query names the metrics, so the (plan, metric, bucket) unique index bounds each
# metric's range (one index range per metric) instead of reading every minute the plan ever had:
# the last 24 hours of a 90-day pilot read 1,440 minutes per metric, not 129,600.
# ORDER BY … OFFSET 0 keeps it a separate, sorted subquery, and the aggregates take its rows in
# that order (the form PostgreSQL's manual gives for ordered aggregate input). That is one sort
# instead of one per array (~10 ms less for 90 days); the tests check the order.
_SERIES_SQL = """
SELECT s.metric_id,
       json_build_object(
         't', array_to_json(array_agg(s.i)),
         'y', array_to_json(array_agg(round(s.y * s.p) / s.p)),
         'lo', CASE WHEN s.metric_id = ANY(%(counts)s) THEN NULL
                    ELSE array_to_json(array_agg(round(s.lo * s.p) / s.p)) END,
         'hi', CASE WHEN s.metric_id = ANY(%(counts)s) THEN NULL
                    ELSE array_to_json(array_agg(round(s.hi * s.p) / s.p)) END
       )::text,
       count(*),
       max(s.bucket),
       (array_agg(round(s.y * s.p) / s.p))[count(*)]
  FROM (SELECT r.metric_id, r.bucket, r.min AS lo, r.max AS hi,
               ((date_part('epoch', r.bucket) - %(origin)s) / %(step)s)::int AS i,
               CASE WHEN r.metric_id = ANY(%(counts)s) THEN r.sum ELSE r.sum / r.count END AS y,
               CASE WHEN greatest(abs(r.min), abs(r.max)) BETWEEN 1e-12 AND 1e12
                    THEN 10 ^ (4 - floor(log(greatest(abs(r.min), abs(r.max)))))
                    ELSE 1 END AS p
          FROM {table}
         ORDER BY r.metric_id, r.bucket
        OFFSET 0) s
 GROUP BY s.metric_id
"""

# What the page's second JSON block may never contain: a string closing the <script> element.
# The hourly buckets of the range, or the samples of the range grouped by UTC minute (the
# samples' range ends where the minute of ``end`` does, as that minute's bucket is charted).
_HOURS = """metrics_hourrollup r
         WHERE r.plan_id = %(plan)s AND r.metric_id = ANY(%(metrics)s)
           AND r.bucket >= %(first)s AND r.bucket < %(end)s"""
_MINUTES = """(
            SELECT s.metric_id, date_trunc('minute', s.observed_at, 'UTC') AS bucket,
                   count(*) AS count, sum(s.value) AS sum, min(s.value) AS min,
                   max(s.value) AS max
              FROM metrics_sample s
             WHERE s.plan_id = %(plan)s AND s.metric_id = ANY(%(metrics)s)
               AND s.observed_at >= %(first)s AND s.observed_at < %(samples_end)s
             GROUP BY 1, 2) r"""

_SCRIPT_ESCAPES = {ord("<"): "\\u003C", ord(">"): "\\u003E", ord("&"): "\\u0026"}


@dataclass(frozen=True)
class Series:
    """One metric's points, already JSON; plus what the page prints without JavaScript."""

    json: str
    points: int
    latest_at: dt.datetime
    latest_value: float


@dataclass
class Chart:
    """One metric's chart: what the template prints around the canvas."""

    metric: MetricDefinition
    points: int = 0
    latest_value: float | None = None
    latest_at: dt.datetime | None = None
    thresholds: list[dict[str, Any]] = field(default_factory=list)
    # Criteria on the metric whose threshold is not on the chart's scale (total, rate, ratio).
    notes: list[str] = field(default_factory=list)
    breaches: int = 0

    @property
    def latest_display(self) -> str:
        return number_display(self.latest_value)

    @property
    def canvas_id(self) -> str:
        return f"chart-{self.metric.pk}"

    @property
    def aggregate_label(self) -> str:
        return "sum per" if self.metric.kind == MetricDefinition.Kind.COUNT else "mean per"


@dataclass
class TriggerRow:
    trigger: RollbackTrigger
    label: str
    state: TriggerState | None


@dataclass
class RunRow:
    run: CheckRun
    results: list[CriterionResult]


@dataclass
class DashboardPage:
    plan: PilotPlan
    span: str
    start: dt.datetime | None  # None: the plan has no dates yet
    end: dt.datetime | None
    charts: list[Chart]
    runs: list[RunRow]
    latest: RunRow | None
    triggers: list[TriggerRow]
    unresolved: list[TriggerEpisode]
    dashboards: list[Dashboard]
    data: dict[str, Any]
    series_json: str  # {"metric id": {"t": [...], "y": [...], "lo": [...], "hi": [...]}}
    problem: str = ""  # why the pilot window cannot be charted (a stored timeline out of range)

    @property
    def has_samples(self) -> bool:
        return any(chart.points for chart in self.charts)


def number_display(value: float | None) -> str:
    """A value as people read it: 3.91, 4.2, 300, 12,346 (no trailing zeros, no float noise)."""
    if value is None:
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _ms(instant: dt.datetime) -> int:
    return int(instant.timestamp() * 1000)


def _span_bounds(
    plan: PilotPlan, span: str, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime] | None:
    """The charts' time range, ``[start, end)`` in UTC, up to ``now``; None without dates."""
    if span == Span.DAY:
        return now - dt.timedelta(hours=24), now
    if plan.start_date is None or plan.end_date is None:
        return None
    start, end = plan_window(  # PlanWindowError for a stored timeline out of range
        start_date=plan.start_date, end_date=plan.end_date, tz=ZoneInfo(plan.time_zone)
    )
    return start, max(start, min(end, now))


def _series(
    *,
    plan_id: int,
    metrics: list[int],
    counts: list[int],
    span: str,
    start: dt.datetime,
    end: dt.datetime,
) -> tuple[dt.datetime, int, dict[int, Series]]:
    """``(origin, step in seconds, {metric id: Series})`` in one query.

    A bucket that starts before ``start`` (a window opening at a half-hour offset, or the first
    minute of the last 24 hours) still holds samples inside the range, so the series begin at
    ``origin``, the start of the bucket containing ``start``.
    """
    if span == Span.DAY:
        table, step = _MINUTES, 60
        origin = start.replace(second=0, microsecond=0)
    else:
        table, step = _HOURS, 3600
        origin = start.replace(minute=0, second=0, microsecond=0)
    # A minute charted starts before ``end``: every sample of it belongs to it.
    samples_end = end.replace(second=0, microsecond=0)
    if samples_end < end:
        samples_end += dt.timedelta(minutes=1)
    params: dict[str, Any] = {
        "plan": plan_id,
        "metrics": metrics,
        "counts": counts,
        "origin": origin.timestamp(),
        "step": step,
        "first": origin,
        "end": end,
        "samples_end": samples_end,
    }
    with connection.cursor() as cursor:
        cursor.execute(_SERIES_SQL.format(table=table), params)
        series = {
            metric_id: Series(json=text, points=points, latest_at=last, latest_value=value)
            for metric_id, text, points, last, value in cursor.fetchall()
        }
    return origin, step, series


def _episodes(
    plan: PilotPlan, bounds: tuple[dt.datetime, dt.datetime] | None
) -> list[TriggerEpisode]:
    """Breach episodes overlapping the range, and every unresolved one whenever it started."""
    overlapping = Q(resolved_at__isnull=True)
    if bounds is not None:
        overlapping |= Q(breach_started_at__lt=bounds[1]) & (
            Q(cleared_at__isnull=True) | Q(cleared_at__gte=bounds[0])
        )
    return list(
        TriggerEpisode.objects.filter(overlapping, plan=plan)
        .select_related("trigger", "acknowledged_by")
        .order_by("-breach_started_at")[:MAX_EPISODES]
    )


def _breach_region(
    episode: TriggerEpisode, bounds: tuple[dt.datetime, dt.datetime] | None, now: dt.datetime
) -> dict[str, Any] | None:
    """The shaded region of an episode: from the start of the breach until it cleared (if it
    never cleared: until it was resolved), or up to now while it goes on; None outside the
    range."""
    if bounds is None:
        return None
    stop = episode.cleared_at or episode.resolved_at
    if episode.breach_started_at >= bounds[1] or (stop is not None and stop < bounds[0]):
        return None
    return {
        "start": _ms(episode.breach_started_at),
        "end": _ms(min(stop or now, bounds[1])),
        "active": stop is None,
        "label": episode.description,
    }


def _check_history(plan: PilotPlan) -> tuple[list[RunRow], RunRow | None]:
    """The recent check runs, and "today's status": the latest *done* run, which may be older
    than the history shown (after a day of missed slots). Two queries: the runs (the union of
    the two), their results."""
    recent = CheckRun.objects.filter(plan=plan).order_by("-due_at")
    done = recent.filter(status=CheckRun.Status.DONE)
    rows = list(
        CheckRun.objects.filter(
            Q(pk__in=recent.values("pk")[:HISTORY_RUNS]) | Q(pk__in=done.values("pk")[:1])
        ).order_by("-due_at")
    )
    results: dict[int, list[CriterionResult]] = {r.pk: [] for r in rows}
    for result in CriterionResult.objects.filter(run_id__in=results).order_by("run", "position"):
        # Display strings, so the template only prints (attributes of this page's instances).
        result.target_display = wording.threshold_text(result.comparator, result.threshold)  # type: ignore[attr-defined]
        result.value_display = number_display(result.value)  # type: ignore[attr-defined]
        result.interval_display = (  # type: ignore[attr-defined]
            f"[{number_display(result.low)}, {number_display(result.high)}]"
            if result.low is not None and result.high is not None
            else ""
        )
        results[result.run_id].append(result)
    latest = next((r for r in rows if r.status == CheckRun.Status.DONE), None)
    return (
        # An older latest done run sorts after the recent ones.
        [RunRow(run=r, results=results[r.pk]) for r in rows[:HISTORY_RUNS]],
        RunRow(run=latest, results=results[latest.pk]) if latest else None,
    )


def monitoring_page(
    *, plan: PilotPlan, span: str = Span.PILOT, now: dt.datetime | None = None
) -> DashboardPage:
    """Everything the monitoring page shows for ``plan`` (already access-checked)."""
    now = now or timezone.now()
    span = span if span in Span.CHOICES else Span.PILOT
    problem = ""
    try:
        bounds = _span_bounds(plan, span, now)
    except (PlanWindowError, ZoneInfoNotFoundError) as exc:  # explained, never a 500
        bounds, problem = None, failure_words(exc)[1]

    criteria = list(
        ExitCriterion.objects.filter(plan=plan)
        .select_related("metric", "denominator")
        .order_by("position")
    )
    triggers = list(
        RollbackTrigger.objects.filter(plan=plan)
        .select_related("metric", "state")
        .order_by("position")
    )
    # Chart order: what can call for a rollback first, then the exit criteria, then the rest.
    used = [t.metric_id for t in triggers]
    used += [c.metric_id for c in criteria]
    used += [c.denominator_id for c in criteria if c.denominator_id]
    # The metrics the plan uses, and any other with data for the plan (one EXISTS probe per
    # catalogue metric on the rollup index, not a scan of the plan's rollups).
    with_data = Exists(HourRollup.objects.filter(plan_id=plan.pk, metric_id=OuterRef("pk")))
    metrics = {
        m.pk: m
        for m in MetricDefinition.objects.filter(
            Q(pk__in=used) | (Q(team__isnull=True) | Q(team_id=plan.team_id)) & with_data
        )
    }
    order = {pk: i for i, pk in enumerate(dict.fromkeys(used))}
    ordered = sorted(metrics.values(), key=lambda m: (order.get(m.pk, len(order)), m.name))
    charts = {m.pk: Chart(metric=m) for m in ordered}

    for criterion in criteria:
        chart = charts[criterion.metric_id]
        label = f"Exit criterion: {wording.criterion_text(criterion)}"
        if criterion.threshold is not None and criterion.aggregation in _LINE_AGGREGATIONS:
            chart.thresholds.append(
                {"value": float(criterion.threshold), "label": label, "kind": "criterion"}
            )
        else:
            chart.notes.append(label)
    trigger_rows = []
    for trigger in triggers:
        label = wording.trigger_text(trigger)
        charts[trigger.metric_id].thresholds.append(
            {"value": float(trigger.threshold), "label": f"Rollback: {label}", "kind": "trigger"}
        )
        trigger_rows.append(
            TriggerRow(trigger=trigger, label=label, state=getattr(trigger, "state", None))
        )

    origin: dt.datetime | None = None
    step = 0
    series: dict[int, Series] = {}
    if bounds is not None:
        counts = [pk for pk, m in metrics.items() if m.kind == MetricDefinition.Kind.COUNT]
        origin, step, series = _series(
            plan_id=plan.pk,
            metrics=list(metrics),
            counts=counts,
            span=span,
            start=bounds[0],
            end=bounds[1],
        )

    episodes = _episodes(plan, bounds)
    breaches: dict[int, list[dict[str, Any]]] = {}
    for episode in episodes:
        region = _breach_region(episode, bounds, now)
        target = charts.get(episode.trigger.metric_id) if episode.trigger else None
        if region is not None and target is not None:
            target.breaches += 1
            breaches.setdefault(target.metric.pk, []).append(region)
    unresolved = [e for e in episodes if e.resolved_at is None]
    for episode in unresolved:
        episode.value_display = number_display(episode.value)  # type: ignore[attr-defined]

    runs, latest = _check_history(plan)

    dashboards = list(Dashboard.objects.filter(plan=plan).order_by("position"))

    metrics_json = []
    for metric in ordered:
        chart = charts[metric.pk]
        points = series.get(metric.pk)
        if points is not None:
            chart.points = points.points
            chart.latest_value, chart.latest_at = points.latest_value, points.latest_at
        metrics_json.append(
            {
                "id": metric.pk,
                "canvas": chart.canvas_id,
                "key": metric.key,
                "name": metric.name,
                "unit": metric.unit,
                "kind": metric.kind,
                "aggregate": "sum" if metric.kind == MetricDefinition.Kind.COUNT else "mean",
                "thresholds": chart.thresholds,
                "breaches": breaches.get(metric.pk, []),
            }
        )
    data = {
        "span": span,
        "bucket": "minute" if span == Span.DAY else "hour",
        "timeZone": plan.time_zone,
        "start": _ms(bounds[0]) if bounds else None,
        "end": _ms(bounds[1]) if bounds else None,
        # A point's time is origin + t × step (ms); the points are in #monitoring-series.
        "origin": _ms(origin) if origin else None,
        "step": step * 1000,
        "metrics": metrics_json,
    }
    # The series JSON is PostgreSQL's (numbers only); escaped all the same, like json_script.
    series_json = "{" + ",".join(f'"{pk}":{s.json}' for pk, s in series.items()) + "}"
    return DashboardPage(
        plan=plan,
        span=span,
        start=bounds[0] if bounds else None,
        end=bounds[1] if bounds else None,
        charts=list(charts.values()),
        runs=runs,
        latest=latest,
        triggers=trigger_rows,
        unresolved=unresolved,
        dashboards=dashboards,
        data=data,
        series_json=mark_safe(series_json.translate(_SCRIPT_ESCAPES)),  # noqa: S308
        problem=problem,
    )
