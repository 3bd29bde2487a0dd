"""Rollback trigger evaluation and breach episodes (docs/alerts.md).

Two modes, both read from the database only:

- **any occurrence** fires on the first raw ``Sample`` of the metric whose value satisfies the
  comparison, among samples ingested after the trigger's previous episode ended (so a resolved
  P1 does not fire again from old data, but a new P1 does). It is found from the day and hour
  rollups' extremes and ``updated_at`` down to the raw samples of the candidate hours only, so
  its cost does not grow with the pilot's history;
- **sustained for D minutes** reads the raw samples of the last D minutes with data, grouped by
  minute: one value per minute (the minute's mean for gauges and scores, its sum for counts). It
  fires when each of the last D minutes, ending at the newest minute with data, has data and
  breaches. A minute without data never counts as a pass:
  while a gap could hide the breach the state says "not enough data".

A firing is recorded as a ``TriggerEpisode``; at most one is active per trigger (a partial unique
index), and it is inserted with ``ON CONFLICT DO NOTHING`` so concurrent evaluations (the tick
and an ingestion, two workers) fire once. The episode, the owner's and rollback executor's
notifications and the webhook delivery are written in one transaction.

Every evaluation reads all the triggers it covers with a fixed number of queries (the triggers,
their latest episodes, one LATERAL query for the sustained windows, one for the any-occurrence
occurrences) and upserts their ``TriggerState`` in one statement; only a firing costs more.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import dateformat

from accounts.events import event_publish, iso, plan_ref, subscriptions_listening
from accounts.models import EventType, Notification, User
from accounts.services import notify, notify_each
from accounts.ui import FORMATS
from catalogue import comparators
from catalogue.models import MetricDefinition, interval_text
from metrics.alerts import EVENT_FIRED, deliveries_create, plan_url
from metrics.failures import Job, JobFailures, per_plan
from metrics.models import SignalEpisode, TriggerEpisode, TriggerState
from metrics.slots import plan_window
from pilots import wording
from pilots.models import PilotPlan, RollbackTrigger

MINUTE = dt.timedelta(minutes=1)
UTC = dt.UTC

# How far back a sustained trigger looks for the start of a breach that reached D minutes, and
# how far back the evaluation after an ingestion looks for a D-long run inside a backfill.
BREACH_LOOKBACK = dt.timedelta(hours=24)

State = TriggerState.State
logger = logging.getLogger(__name__)


# --- entry points --------------------------------------------------------------------------------


def triggers_evaluate_running(*, now: dt.datetime) -> list[TriggerEpisode]:
    """Evaluate the triggers of every running plan (beat's one-minute tick). Returns the
    episodes this evaluation opened.

    One plan cannot stop the others (``metrics.failures``): a plan whose trigger cannot be
    judged is logged, recorded as failing and left out; if a statement fails as a whole, the
    plans are evaluated one by one."""
    failures = JobFailures(Job.TRIGGERS, now=now)
    triggers = _triggers(RollbackTrigger.objects.filter(plan__status=_RUNNING))
    try:
        opened = _evaluate(triggers, now=now, failures=failures)
    except Exception:  # a statement (or the announcement) failed for all: go plan by plan
        logger.exception("Evaluating rollback triggers failed as a whole; going plan by plan")
        by_plan: dict[int, list[RollbackTrigger]] = {}
        for trigger in triggers:
            by_plan.setdefault(trigger.plan_id, []).append(trigger)
        done = per_plan(
            sorted(by_plan), lambda pk: _evaluate(by_plan[pk], now=now, failures=failures), failures
        )
        opened = [episode for episodes in done.values() for episode in episodes]
    failures.save()
    return opened


def signal_episodes_end_not_running(*, now: dt.datetime) -> int:
    """End the open no-data / stale episodes of plans that are no longer running (one query,
    beat's tick): an evaluating pilot is not expected to send data."""
    return (
        SignalEpisode.objects.filter(ended_at__isnull=True)
        .exclude(plan__status=_RUNNING)
        .update(ended_at=now)
    )


def triggers_evaluate_plan(*, plan_id: int, now: dt.datetime) -> list[TriggerEpisode]:
    """Evaluate one running plan's triggers (queued after each ingestion); also finds a
    D-minute breach inside a freshly ingested backfill (see ``_backfill_episodes``)."""
    triggers = _triggers(RollbackTrigger.objects.filter(plan_id=plan_id, plan__status=_RUNNING))
    return _evaluate(triggers, now=now, backfill=True)


_RUNNING = PilotPlan.Status.RUNNING


def _triggers(queryset: QuerySet[RollbackTrigger]) -> list[RollbackTrigger]:
    return list(
        queryset.select_related("plan", "metric")
        .only(
            "id", "plan_id", "metric_id", "comparator", "threshold", "mode", "sustained_minutes",
            "description", "position",
            "metric__key", "metric__name", "metric__unit", "metric__kind",
            "plan__title", "plan__team_id", "plan__owner_id", "plan__rollback_executor_id",
            "plan__time_zone", "plan__status", "plan__start_date", "plan__end_date",
            "metric__expected_interval_minutes",
        )
        .order_by("pk")
    )  # fmt: skip


# --- what an evaluation decides ------------------------------------------------------------------


@dataclass
class Outcome:
    """One trigger's verdict: its state, and what to do with episodes."""

    state: str
    detail: str
    fire: bool = False
    breach_started_at: dt.datetime | None = None
    value: float | None = None
    cleared_at: dt.datetime | None = None  # the active (sustained) episode ended then
    signal: str = ""  # "no_data" / "stale": the trigger cannot judge (a SignalEpisode is open)


@dataclass(frozen=True)
class Minute:
    bucket: dt.datetime
    value: float


@dataclass
class Window:
    """A sustained trigger's last D minutes with data, oldest first, and whether the metric has
    data from before them."""

    minutes: list[Minute]
    older_data: bool = True


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}" if value == int(value) else f"{value:.4g}"


def _minute_value(kind: str, count: int, total: float) -> float:
    """A count metric's minute is its sum; a gauge's or score's is its mean."""
    return total if kind == MetricDefinition.Kind.COUNT else total / count


def _clock(moment: dt.datetime, tz: zoneinfo.ZoneInfo, now: dt.datetime) -> str:
    local = moment.astimezone(tz)
    if local.date() == now.astimezone(tz).date():
        return f"{local:%H:%M}"
    return dateformat.format(local, FORMATS["short"])


def _ranges(minutes: list[dt.datetime], tz: zoneinfo.ZoneInfo, now: dt.datetime) -> str:
    """Missing minutes as "12:03–12:05, 12:09" (at most three ranges)."""
    runs: list[tuple[dt.datetime, dt.datetime]] = []
    for minute in minutes:
        if runs and minute - runs[-1][1] == MINUTE:
            runs[-1] = (runs[-1][0], minute)
        else:
            runs.append((minute, minute))
    parts = [
        _clock(a, tz, now) if a == b else f"{_clock(a, tz, now)}–{_clock(b, tz, now)}"
        for a, b in runs[:3]
    ]
    return ", ".join(parts) + (", …" if len(runs) > 3 else "")


def _floor(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def sustained_outcome(
    *,
    minutes: list[Minute],
    breaches: Callable[[float], bool],
    duration: int,
    now: dt.datetime,
    tz: zoneinfo.ZoneInfo,
    active: TriggerEpisode | None,
    rearm_at: dt.datetime | None,
    unit: str = "",
    older_data: bool = True,
) -> Outcome:
    """Judge a sustained trigger from its last ``duration`` minutes of data (oldest first, the
    last one the newest minute with data not later than ``now``; none if there is no data).

    ``rearm_at``: the previous episode was resolved while the metric still breached; only
    minutes from then on count towards a new episode (no re-fire of the same breach).
    ``older_data``: the metric has data from before these minutes; if not, the empty minutes
    before its first data are "before the data began", not a gap.
    """
    if not minutes:
        return Outcome(State.NO_DATA, "Not enough data: no data yet.")
    newest = minutes[-1]
    suffix = f" {unit}" if unit and unit not in {"count", "score"} else ""
    shown = f"{_number(newest.value)}{suffix}"
    window = [newest.bucket - (duration - 1 - i) * MINUTE for i in range(duration)]
    present = {m.bucket: m for m in minutes}
    good = [m.bucket for m in minutes if not breaches(m.value)]
    last_good = good[-1] if good else None
    # An active episode ends at the first minute after its breach began that does not breach.
    clear = None
    if active is not None:
        clear = next((b for b in good if b > active.breach_started_at), None)
    if last_good == newest.bucket:
        detail = f"Latest minute ({_clock(newest.bucket, tz, now)}): {shown}."
        return Outcome(State.OK, detail, cleared_at=clear)
    # The newest minute breaches. Missing minutes after the last good one could hide a breach.
    begins = window[0] if older_data else minutes[0].bucket  # no data before: not a gap
    missing = [
        b
        for b in window
        if b not in present and b >= begins and (last_good is None or b > last_good)
    ]
    run = sum(1 for b in window if b in present and (last_good is None or b > last_good))
    stale = newest.bucket < _floor(now) - duration * MINUTE
    stale_detail = (
        f"Not enough data: the newest minute is {_clock(newest.bucket, tz, now)}, more than "
        f"{wording.duration_text(duration)} ago."
    )
    if not missing and run >= duration:
        if active is not None:
            detail = (
                f"Fired; now: {stale_detail}" if stale else f"Fired: breaching, latest {shown}."
            )
            return Outcome(State.FIRED, detail, cleared_at=clear)
        if rearm_at is not None and window[0] < _floor(rearm_at):
            counted = sum(1 for b in window if b >= _floor(rearm_at))
            return Outcome(
                State.BREACHING,
                f"Still breaching after the last alert was resolved: {counted} of "
                f"{wording.duration_text(duration)} since then; latest {shown}.",
            )
        return Outcome(
            State.FIRED,
            f"Fired: {duration} of {wording.duration_text(duration)} breaching, latest {shown}.",
            fire=True,
            breach_started_at=window[0],
            value=newest.value,
        )
    if stale:
        return Outcome(State.NO_DATA, stale_detail, cleared_at=clear)
    if missing:
        return Outcome(
            State.NO_DATA,
            f"Not enough data: no data for {_ranges(missing, tz, now)}.",
            cleared_at=clear,
        )
    return Outcome(
        State.BREACHING,
        f"Breaching {run} of {wording.duration_text(duration)}, latest {shown}.",
        cleared_at=clear,
    )


# --- reading -------------------------------------------------------------------------------------


def _latest_episodes(trigger_ids: list[int]) -> dict[int, TriggerEpisode]:
    """The newest episode of each trigger: the active one when there is one (an episode is only
    opened when none is active, so the active one is always the newest)."""
    if not trigger_ids:
        return {}
    episodes = (
        TriggerEpisode.objects.filter(trigger_id__in=trigger_ids)
        .order_by("trigger_id", "-fired_at", "-pk")
        .distinct("trigger_id")
        .only("id", "trigger_id", "breach_started_at", "fired_at", "cleared_at", "resolved_at")
    )
    return {e.trigger_id: e for e in episodes}  # type: ignore[misc]


# The minutes are the samples grouped by UTC minute (there is no minute rollup), each read as
# one range of the samples' natural-key index (plan, metric, observed_at, …): the newest sample
# not later than the minute of ``now``, whether there is one before the window, and the window's
# samples (at most D minutes of them). Read once per metric, for the longest D of its triggers
# (``_windows`` cuts each trigger's shorter window from it).
_WINDOWS_SQL = """
SELECT t.plan_id, t.metric_id, r.bucket, r.count, r.sum, o.older IS NOT NULL
FROM unnest(%(plan)s::bigint[], %(metric)s::bigint[], %(minutes)s::int[])
     AS t(plan_id, metric_id, minutes)
CROSS JOIN LATERAL (
    SELECT date_trunc('minute', s.observed_at, 'UTC') AS newest FROM metrics_sample s
    WHERE s.plan_id = t.plan_id AND s.metric_id = t.metric_id AND s.observed_at < %(edge)s
    ORDER BY s.observed_at DESC LIMIT 1
) n
CROSS JOIN LATERAL (
    SELECT n.newest - make_interval(mins => t.minutes - 1) AS first
) f
LEFT JOIN LATERAL (
    -- Is there data before the window? If not, its leading empty minutes are "before the data
    -- began", not a gap.
    SELECT s.observed_at AS older FROM metrics_sample s
    WHERE s.plan_id = t.plan_id AND s.metric_id = t.metric_id AND s.observed_at < f.first
    ORDER BY s.observed_at DESC LIMIT 1
) o ON true
CROSS JOIN LATERAL (
    SELECT date_trunc('minute', s.observed_at, 'UTC') AS bucket, count(*) AS count,
           sum(s.value) AS sum
    FROM metrics_sample s
    WHERE s.plan_id = t.plan_id AND s.metric_id = t.metric_id
      AND s.observed_at >= f.first AND s.observed_at < n.newest + interval '1 minute'
    GROUP BY 1
) r
ORDER BY t.plan_id, t.metric_id, r.bucket
"""


def _windows(triggers: list[RollbackTrigger], now: dt.datetime) -> dict[int, Window]:
    """The last D minutes with data of every sustained trigger, in one query (index range scans
    of the samples' natural-key index, once per metric)."""
    longest: dict[tuple[int, int], int] = {}
    for t in triggers:
        if t.sustained_minutes:
            pair = (t.plan_id, t.metric_id)
            longest[pair] = max(longest.get(pair, 0), t.sustained_minutes)
    if not longest:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            _WINDOWS_SQL,
            {
                "plan": [plan_id for plan_id, _ in longest],
                "metric": [metric_id for _, metric_id in longest],
                "minutes": list(longest.values()),
                # A minute counts once it has begun: samples before the end of now's minute.
                "edge": _floor(now) + MINUTE,
            },
        )
        rows = cursor.fetchall()
    # Per metric: its minutes (oldest first) and whether it has data before the longest window.
    minutes: dict[tuple[int, int], list[tuple[dt.datetime, int, float]]] = {}
    older: dict[tuple[int, int], bool] = {}
    for plan_id, metric_id, bucket, count, total, before in rows:
        minutes.setdefault((plan_id, metric_id), []).append((bucket, count, total))
        older[(plan_id, metric_id)] = before
    windows: dict[int, Window] = {}
    for t in triggers:
        pair = (t.plan_id, t.metric_id)
        if not t.sustained_minutes or pair not in minutes:
            continue
        have = minutes[pair]
        first = have[-1][0] - (t.sustained_minutes - 1) * MINUTE
        kind = t.metric.kind
        windows[t.pk] = Window(
            minutes=[Minute(b, _minute_value(kind, c, s)) for b, c, s in have if b >= first],
            # Data before this trigger's window: a minute of the longer window before it, or
            # data before the longer window.
            older_data=older[pair] or have[0][0] < first,
        )
    return windows


# Buckets whose extremes may breach: the minimum for < and ≤, the maximum for > and ≥.
_MAY_BREACH = {
    alias: comparators.sql_range_case(
        code="t.comparator", low=f"{alias}.min", high=f"{alias}.max", threshold="t.threshold"
    )
    for alias in ("d", "h", "f")
}
_BREACHES = comparators.sql_case(code="t.comparator", value="s.value", threshold="t.threshold")

# The first breaching sample (by observed_at) ingested after ``since``, found from the rollups
# down. A bucket's ``updated_at`` is at least the ``ingested_at`` of every sample in it, so no
# candidate is missed.
#
# A trigger that never fired (``since`` is NULL) looks at every sample: the first day whose
# extremes may breach, in it the first such hour, in it the first such sample. Each level is an
# ordered range scan of a unique (plan, metric, time) index that stops at the first hit.
#
# A re-armed trigger (``since``: its previous episode ended) looks only at samples ingested after
# that, and those are nearly always a few recent batches in hours whose old extremes breach (the
# breach that fired it is still in them). So the hours are not judged by their extremes but by
# the extremes of their samples ingested since, computed once per metric (``fresh``: from the
# earliest ``since`` of the metric's re-armed triggers, over the days and hours written since
# whose extremes may breach for one of them); only an hour whose new samples may breach is read
# sample by sample, per trigger.
_OCCURRENCES_SQL = f"""
WITH t AS MATERIALIZED (
    SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::text[], %s::float8[],
                         %s::timestamptz[])
         AS t(trigger_id, plan_id, metric_id, comparator, threshold, since)
), g AS (
    SELECT plan_id, metric_id, min(since) AS since FROM t WHERE since IS NOT NULL GROUP BY 1, 2
), fresh AS MATERIALIZED (
    SELECT g.plan_id, g.metric_id, h.bucket, n.min, n.max
    FROM g
    CROSS JOIN LATERAL (
        SELECT d.bucket FROM metrics_dayrollup d
        WHERE d.plan_id = g.plan_id AND d.metric_id = g.metric_id AND d.updated_at > g.since
    ) d
    CROSS JOIN LATERAL (
        SELECT h.bucket FROM metrics_hourrollup h
        WHERE (h.plan_id, h.metric_id, h.bucket) >= (g.plan_id, g.metric_id, d.bucket)
          AND h.plan_id = g.plan_id AND h.metric_id = g.metric_id
          AND h.bucket >= d.bucket AND h.bucket < d.bucket + interval '24 hours'
          AND h.updated_at > g.since
          AND EXISTS (
              SELECT 1 FROM t
              WHERE t.plan_id = g.plan_id AND t.metric_id = g.metric_id
                AND t.since IS NOT NULL AND {_MAY_BREACH["h"]}
          )
    ) h
    CROSS JOIN LATERAL (
        SELECT min(s.value) AS min, max(s.value) AS max FROM metrics_sample s
        WHERE s.plan_id = g.plan_id AND s.metric_id = g.metric_id
          AND s.observed_at >= h.bucket AND s.observed_at < h.bucket + interval '1 hour'
          AND s.ingested_at > g.since
    ) n
    WHERE n.min IS NOT NULL
)
SELECT t.trigger_id, s.observed_at, s.value
FROM t
CROSS JOIN LATERAL (
    SELECT s.observed_at, s.value FROM metrics_dayrollup d
    CROSS JOIN LATERAL (
        SELECT s.observed_at, s.value FROM metrics_hourrollup h
        CROSS JOIN LATERAL (
            SELECT s.observed_at, s.value FROM metrics_sample s
            WHERE s.plan_id = t.plan_id AND s.metric_id = t.metric_id
              AND s.observed_at >= h.bucket AND s.observed_at < h.bucket + interval '1 hour'
              AND {_BREACHES}
            ORDER BY s.observed_at, s.id
            LIMIT 1
        ) s
        WHERE h.plan_id = t.plan_id AND h.metric_id = t.metric_id
          AND h.bucket >= d.bucket AND h.bucket < d.bucket + interval '24 hours'
          AND {_MAY_BREACH["h"]}
        ORDER BY h.bucket
        LIMIT 1
    ) s
    WHERE d.plan_id = t.plan_id AND d.metric_id = t.metric_id
      AND {_MAY_BREACH["d"]}
    ORDER BY d.bucket
    LIMIT 1
) s
WHERE t.since IS NULL
UNION ALL
SELECT t.trigger_id, s.observed_at, s.value
FROM t
CROSS JOIN LATERAL (
    SELECT s.observed_at, s.value FROM fresh f
    CROSS JOIN LATERAL (
        SELECT s.observed_at, s.value FROM metrics_sample s
        WHERE s.plan_id = t.plan_id AND s.metric_id = t.metric_id
          AND s.observed_at >= f.bucket AND s.observed_at < f.bucket + interval '1 hour'
          AND s.ingested_at > t.since
          AND {_BREACHES}
        ORDER BY s.observed_at, s.id
        LIMIT 1
    ) s
    WHERE f.plan_id = t.plan_id AND f.metric_id = t.metric_id AND {_MAY_BREACH["f"]}
    ORDER BY f.bucket
    LIMIT 1
) s
WHERE t.since IS NOT NULL
"""  # noqa: S608 - the comparisons are built from the comparator table, not from input


def _occurrences(
    triggers: list[RollbackTrigger], since: dict[int, dt.datetime | None]
) -> dict[int, tuple[dt.datetime, float]]:
    """The first breaching sample of every any-occurrence trigger ingested after ``since``
    (one query for all of them, drilling down day → hour → sample; see ``_OCCURRENCES_SQL``)."""
    if not triggers:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            _OCCURRENCES_SQL,
            [
                [t.pk for t in triggers],
                [t.plan_id for t in triggers],
                [t.metric_id for t in triggers],
                [t.comparator for t in triggers],
                [float(t.threshold) for t in triggers],
                [since.get(t.pk) for t in triggers],
            ],
        )
        return {trigger_id: (at, value) for trigger_id, at, value in cursor.fetchall()}


# A metric's minutes ``[since, first)`` (``since`` a whole minute), newest first: its samples
# grouped by UTC minute, one range of the natural-key index (at most BREACH_LOOKBACK of them).
_MINUTES_BACK_SQL = """
SELECT date_trunc('minute', observed_at, 'UTC') AS bucket, count(*), sum(value)
FROM metrics_sample
WHERE plan_id = %s AND metric_id = %s AND observed_at >= %s AND observed_at < %s
GROUP BY 1
ORDER BY 1 DESC
"""


def _run_start(
    trigger: RollbackTrigger, first: dt.datetime, floor: dt.datetime | None
) -> dt.datetime:
    """Where the breaching run that reached D minutes at ``first`` (its window's first minute)
    began: walk back over contiguous breaching minutes (one query, only when firing)."""
    breaches = _breaches(trigger)
    since = first - BREACH_LOOKBACK
    if floor is not None:
        since = max(since, _floor(floor))
    with connection.cursor() as cursor:
        cursor.execute(_MINUTES_BACK_SQL, [trigger.plan_id, trigger.metric_id, since, first])
        rows = cursor.fetchall()
    start = first
    kind = trigger.metric.kind
    for bucket, count, total in rows:
        if bucket != start - MINUTE or not breaches(_minute_value(kind, count, total)):
            break
        start = bucket
    return start


def _breaches(trigger: RollbackTrigger) -> Callable[[float], bool]:
    holds, threshold = comparators.get(trigger.comparator).holds, float(trigger.threshold)
    return lambda value: holds(value, threshold)


# --- no data and stale data ---------------------------------------------------------------------

_NEWEST_SQL = """
SELECT t.trigger_id, s.observed_at
FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS t(trigger_id, plan_id, metric_id)
LEFT JOIN LATERAL (
    SELECT s.observed_at FROM metrics_sample s
    WHERE s.plan_id = t.plan_id AND s.metric_id = t.metric_id AND s.observed_at <= %s
    ORDER BY s.observed_at DESC LIMIT 1
) s ON true
"""


def _newest(triggers: list[RollbackTrigger], now: dt.datetime) -> dict[int, dt.datetime | None]:
    """When each trigger's metric last reported (its newest sample), in one query (a backward
    scan of the sample's natural-key index)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _NEWEST_SQL,
            [
                [t.pk for t in triggers],
                [t.plan_id for t in triggers],
                [t.metric_id for t in triggers],
                now,
            ],
        )
        return dict(cursor.fetchall())


def signal_outcome(
    outcome: Outcome,
    *,
    newest: dt.datetime | None,
    expected_minutes: int,
    window_start: dt.datetime | None,
    now: dt.datetime,
    tz: zoneinfo.ZoneInfo,
) -> Outcome:
    """Never a silent green: a trigger whose metric never reported is "no data" (after the
    grace period from the start of the pilot's window, ``TRIGGER_NO_DATA_GRACE_MINUTES``), one
    whose newest data is older than the metric's expected interval is "stale". A fired trigger
    stays fired (its red banner says more)."""
    if outcome.state == State.FIRED:
        return outcome
    if newest is None:
        grace = dt.timedelta(minutes=settings.TRIGGER_NO_DATA_GRACE_MINUTES)
        if window_start is not None and now < window_start + grace:
            outcome.state = State.NO_DATA
            outcome.detail = (
                f"No data yet: waiting for the first sample until "
                f"{_clock(window_start + grace, tz, now)}."
            )
            return outcome
        since = (
            f" since the pilot started ({_clock(window_start, tz, now)})" if window_start else ""
        )
        outcome.state, outcome.signal = State.NO_DATA, SignalEpisode.Kind.NO_DATA
        outcome.detail = f"No data: no sample received{since}."
        return outcome
    expected = dt.timedelta(minutes=expected_minutes)
    if now - newest > expected:
        outcome.state, outcome.signal = State.STALE, SignalEpisode.Kind.STALE
        outcome.detail = (
            f"Stale: the newest data is from {_clock(newest, tz, now)}, older than the expected "
            f"interval of {interval_text(expected_minutes)}."
        )
    return outcome


def _window_start(plan: PilotPlan, tz: zoneinfo.ZoneInfo) -> dt.datetime | None:
    if plan.start_date is None or plan.end_date is None or plan.end_date < plan.start_date:
        return None
    try:
        return plan_window(start_date=plan.start_date, end_date=plan.end_date, tz=tz)[0]
    except (OverflowError, ValueError):  # dates at the calendar's edge: no window to wait for
        return None


_SIGNALS_END_SQL = """
UPDATE metrics_signalepisode e SET ended_at = %s
FROM unnest(%s::bigint[], %s::text[]) AS t(trigger_id, kind)
WHERE e.trigger_id = t.trigger_id AND e.ended_at IS NULL AND e.kind IS DISTINCT FROM t.kind
"""

_SIGNALS_OPEN_SQL = """
INSERT INTO metrics_signalepisode (plan_id, trigger_id, kind, detail, started_at)
SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::timestamptz[])
ON CONFLICT DO NOTHING
RETURNING trigger_id, kind, detail
"""


def _signals_record(
    triggers: list[RollbackTrigger], outcomes: dict[int, Outcome], now: dt.datetime
) -> None:
    """End the no-data / stale episodes that are over and open the new ones (two statements);
    the owner hears of each new episode once (the one-open index makes a second tick's insert
    a no-op)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _SIGNALS_END_SQL,
            [now, [t.pk for t in triggers], [outcomes[t.pk].signal or None for t in triggers]],
        )
        signalled = [t for t in triggers if outcomes[t.pk].signal]
        if not signalled:
            return
        cursor.execute(
            _SIGNALS_OPEN_SQL,
            [
                [t.plan_id for t in signalled],
                [t.pk for t in signalled],
                [outcomes[t.pk].signal for t in signalled],
                [outcomes[t.pk].detail[:300] for t in signalled],
                [now for _ in signalled],
            ],
        )
        opened = {trigger_id: detail for trigger_id, _kind, detail in cursor.fetchall()}
    if not opened:
        return
    by_pk = {t.pk: t for t in signalled}
    owners = User.objects.in_bulk({by_pk[pk].plan.owner_id for pk in opened})
    notify_each(
        kind=Notification.Kind.SIGNAL_MISSING,
        items=[
            (
                owners[by_pk[pk].plan.owner_id],
                f"Rollback trigger “{wording.trigger_text(by_pk[pk])}” on "
                f"“{by_pk[pk].plan.title}” cannot judge. {detail}",
                plan_url(by_pk[pk].plan_id),
            )
            for pk, detail in opened.items()
            if by_pk[pk].plan.owner_id in owners
        ],
    )
    _signals_publish([(by_pk[pk], detail) for pk, detail in opened.items()], now)


def _signals_publish(opened: list[tuple[RollbackTrigger, str]], now: dt.datetime) -> None:
    """``trigger.stale`` to the teams' subscriptions, one per newly blind trigger."""
    event = EventType.TRIGGER_STALE
    listening = subscriptions_listening(team_ids={t.plan.team_id for t, _ in opened}, event=event)
    for trigger, detail in opened:
        plan = trigger.plan
        if plan.team_id not in listening:
            continue
        text = wording.trigger_text(trigger)
        event_publish(
            team_id=plan.team_id,
            event=event,
            data={
                "plan": plan_ref(plan_id=plan.pk, title=plan.title),
                "trigger": {"id": trigger.pk, "description": text},
                "signal": {"detail": detail, "since": iso(now)},
            },
            summary=f"“{text}” cannot judge: {detail}",
            link=plan_url(plan.pk),
            subscriptions=listening[plan.team_id],
        )


# --- the evaluation ------------------------------------------------------------------------------


def _episode_end(episode: TriggerEpisode) -> dt.datetime | None:
    ends = [at for at in (episode.cleared_at, episode.resolved_at) if at is not None]
    return max(ends) if ends else None


def _is_active(episode: TriggerEpisode | None) -> bool:
    return episode is not None and episode.cleared_at is None and episode.resolved_at is None


def _outcomes(
    triggers: list[RollbackTrigger],
    *,
    now: dt.datetime,
    latest: dict[int, TriggerEpisode],
    active: dict[int, TriggerEpisode],
    windows: dict[int, Window],
    occurrences: dict[int, tuple[dt.datetime, float]],
    newest: dict[int, dt.datetime | None],
    failures: JobFailures | None,
) -> dict[int, Outcome]:
    """Each trigger's outcome. With ``failures``, a plan whose trigger raises is caught there
    and its triggers are left out of the result (the others go on); without, it raises."""
    outcomes: dict[int, Outcome] = {}
    failed: set[int] = set()
    for trigger in triggers:
        if trigger.plan_id in failed:
            continue
        try:
            outcome = _outcome(
                trigger, now=now, latest=latest, active=active, windows=windows,
                occurrences=occurrences,
            )  # fmt: skip
            tz = zoneinfo.ZoneInfo(trigger.plan.time_zone)
            outcomes[trigger.pk] = signal_outcome(
                outcome,
                newest=newest.get(trigger.pk),
                expected_minutes=trigger.metric.expected_interval_minutes,
                window_start=_window_start(trigger.plan, tz),
                now=now,
                tz=tz,
            )
        except Exception as exc:
            if failures is None:
                raise
            failures.catch(trigger.plan_id, exc)
            failed.add(trigger.plan_id)
    return {t.pk: outcomes[t.pk] for t in triggers if t.pk in outcomes and t.plan_id not in failed}


def _outcome(
    trigger: RollbackTrigger,
    *,
    now: dt.datetime,
    latest: dict[int, TriggerEpisode],
    active: dict[int, TriggerEpisode],
    windows: dict[int, Window],
    occurrences: dict[int, tuple[dt.datetime, float]],
) -> Outcome:
    tz = zoneinfo.ZoneInfo(trigger.plan.time_zone)
    episode = active.get(trigger.pk)
    if trigger.mode != RollbackTrigger.Mode.SUSTAINED:
        return _any_outcome(trigger, episode, occurrences.get(trigger.pk), now, tz)
    previous = latest.get(trigger.pk)
    rearm = (
        previous.resolved_at
        if previous is not None and previous.cleared_at is None and episode is None
        else None
    )
    window = windows.get(trigger.pk, Window(minutes=[]))
    outcome = sustained_outcome(
        minutes=window.minutes,
        older_data=window.older_data,
        breaches=_breaches(trigger),
        duration=trigger.sustained_minutes or 1,
        now=now,
        tz=tz,
        active=episode,
        rearm_at=rearm,
        unit=trigger.metric.unit,
    )
    if outcome.fire:
        assert outcome.breach_started_at is not None
        outcome.breach_started_at = _run_start(trigger, outcome.breach_started_at, rearm)
    elif episode is not None and outcome.cleared_at is None and outcome.state != State.FIRED:
        # The episode is still open (a gap or stale data never clears it).
        outcome.state, outcome.detail = State.FIRED, f"Fired; now: {outcome.detail}"
    return outcome


@transaction.atomic
def _evaluate(
    triggers: list[RollbackTrigger],
    *,
    now: dt.datetime,
    backfill: bool = False,
    failures: JobFailures | None = None,
) -> list[TriggerEpisode]:
    if not triggers:
        return []
    latest = _latest_episodes([t.pk for t in triggers])
    active = {pk: e for pk, e in latest.items() if _is_active(e)}
    sustained = [t for t in triggers if t.mode == RollbackTrigger.Mode.SUSTAINED]
    armed_any = [
        t for t in triggers if t.mode == RollbackTrigger.Mode.ANY_OCCURRENCE and t.pk not in active
    ]
    windows = _windows(sustained, now)
    since = {pk: _episode_end(e) for pk, e in latest.items() if not _is_active(e)}
    occurrences = _occurrences(armed_any, since)
    newest = _newest(triggers, now)

    outcomes = _outcomes(
        triggers, now=now, latest=latest, active=active, windows=windows,
        occurrences=occurrences, newest=newest, failures=failures,
    )  # fmt: skip
    # Without the plans that failed: their state and episodes stay as they were.
    triggers = [t for t in triggers if t.pk in outcomes]
    sustained = [t for t in sustained if t.pk in outcomes]
    active = {pk: e for pk, e in active.items() if pk in outcomes}

    for pk in sorted(active):
        if (cleared_at := outcomes[pk].cleared_at) is not None:
            _clear(active[pk].pk, cleared_at)
    opened = [
        (episode, trigger)
        for trigger in triggers
        if outcomes[trigger.pk].fire
        and (episode := _open(trigger, outcomes[trigger.pk], now)) is not None
    ]
    if backfill:
        opened += _backfill_episodes(sustained, windows, latest, active, outcomes, now)
    if opened:
        _announce(opened)
    _signals_record(triggers, outcomes, now)
    TriggerState.objects.bulk_create(
        [
            TriggerState(
                trigger_id=t.pk,
                plan_id=t.plan_id,
                state=outcomes[t.pk].state,
                detail=outcomes[t.pk].detail[:300],
                evaluated_at=now,
            )
            for t in triggers
        ],
        update_conflicts=True,
        unique_fields=["trigger"],
        update_fields=["plan", "state", "detail", "evaluated_at"],
    )
    return [episode for episode, _ in opened]


def _any_outcome(
    trigger: RollbackTrigger,
    episode: TriggerEpisode | None,
    occurrence: tuple[dt.datetime, float] | None,
    now: dt.datetime,
    tz: zoneinfo.ZoneInfo,
) -> Outcome:
    unit = trigger.metric.unit
    suffix = f" {unit}" if unit and unit not in {"count", "score"} else ""
    if episode is not None:
        return Outcome(
            State.FIRED,
            f"Fired at {_clock(episode.fired_at, tz, now)}; resolve it to re-arm the trigger.",
        )
    if occurrence is None:
        return Outcome(State.OK, "No occurrence.")
    observed_at, value = occurrence
    return Outcome(
        State.FIRED,
        f"Fired: {_number(value)}{suffix} observed at {_clock(observed_at, tz, now)}.",
        fire=True,
        breach_started_at=observed_at,
        value=value,
    )


def _clear(episode_id: int, cleared_at: dt.datetime) -> None:
    """End a sustained episode at the minute that stopped breaching (compare-and-set: a
    concurrent evaluation or a resolve may have ended it already). Called in trigger order, so
    two evaluators lock episodes in the same order and never deadlock."""
    TriggerEpisode.objects.filter(
        pk=episode_id, cleared_at__isnull=True, resolved_at__isnull=True
    ).update(cleared_at=cleared_at)


_OPEN_SQL = """
INSERT INTO metrics_triggerepisode
    (plan_id, trigger_id, description, breach_started_at, fired_at, value, cleared_at, resolution)
VALUES (%s, %s, %s, %s, %s, %s, %s, '')
ON CONFLICT DO NOTHING
RETURNING id
"""


def _open(
    trigger: RollbackTrigger,
    outcome: Outcome,
    now: dt.datetime,
    *,
    cleared_at: dt.datetime | None = None,
) -> TriggerEpisode | None:
    """Record the episode unless another evaluation just did (the one-active index)."""
    assert outcome.breach_started_at is not None
    description = wording.trigger_text(trigger)[:300]
    with connection.cursor() as cursor:
        cursor.execute(
            _OPEN_SQL,
            [
                trigger.plan_id,
                trigger.pk,
                description,
                outcome.breach_started_at,
                now,
                outcome.value,
                cleared_at,
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return TriggerEpisode(
        pk=row[0],
        plan_id=trigger.plan_id,
        trigger_id=trigger.pk,
        description=description,
        breach_started_at=outcome.breach_started_at,
        fired_at=now,
        value=outcome.value,
        cleared_at=cleared_at,
    )


# --- a D-long run inside a backfill --------------------------------------------------------------

_HOUR_MAY_BREACH = comparators.sql_range_case(
    code="t.comparator",
    low="h.min",
    high="CASE WHEN t.is_count THEN h.sum ELSE h.max END",
    threshold="t.threshold",
)
_RUNS_SQL = f"""
WITH t AS MATERIALIZED (
    SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bool[], %s::text[],
                         %s::float8[], %s::int[], %s::timestamptz[], %s::timestamptz[])
         AS t(trigger_id, plan_id, metric_id, is_count, comparator, threshold, minutes, since,
              newest)
), hours AS (
    -- Only the hours that may hold a breaching minute of one of their metric's triggers: a
    -- minute's mean lies between its hour's minimum and maximum; a count's minute sum (counts
    -- are never negative) between the hour's minimum and its sum. Each hour once, however many
    -- triggers of its metric ask for it.
    SELECT DISTINCT t.plan_id, t.metric_id, h.bucket
    FROM t
    CROSS JOIN LATERAL (
        -- (The row comparison, which only the (plan, metric, bucket) key can serve, keeps the
        -- planner from hashing the whole table against the few triggers.)
        SELECT h.bucket FROM metrics_hourrollup h
        WHERE (h.plan_id, h.metric_id, h.bucket)
              >= (t.plan_id, t.metric_id, date_trunc('hour', t.since, 'UTC'))
          AND h.plan_id = t.plan_id AND h.metric_id = t.metric_id
          AND h.bucket >= date_trunc('hour', t.since, 'UTC') AND h.bucket <= t.newest
          AND {_HOUR_MAY_BREACH}
    ) h
), minutes AS MATERIALIZED (
    -- Their minutes: the samples grouped by minute, one range of the samples' natural-key index
    -- per hour, read once for all the triggers of the metric.
    SELECT h.plan_id, h.metric_id, m.bucket, m.count, m.sum
    FROM hours h
    CROSS JOIN LATERAL (
        SELECT date_trunc('minute', s.observed_at, 'UTC') AS bucket, count(*) AS count,
               sum(s.value) AS sum
        FROM metrics_sample s
        WHERE s.plan_id = h.plan_id AND s.metric_id = h.metric_id
          AND s.observed_at >= h.bucket AND s.observed_at < h.bucket + interval '1 hour'
        GROUP BY 1
    ) m
)
-- Each trigger's first run of at least D consecutive breaching minutes. Consecutive breaching
-- minutes share an island: bucket minus its rank is constant. A minute of an hour that could not
-- breach for this trigger (another trigger of the metric asked for the hour) does not breach it
-- either, so the comparison leaves it out.
SELECT DISTINCT ON (trigger_id) trigger_id, min(bucket) AS first, max(bucket) AS last,
       (array_agg(value ORDER BY bucket DESC))[1] AS value
FROM (
    SELECT trigger_id, minutes, bucket, value,
           bucket - (row_number() OVER (PARTITION BY trigger_id ORDER BY bucket))
                    * interval '1 minute' AS island
    FROM (
        SELECT t.trigger_id, t.minutes, t.comparator, t.threshold, m.bucket,
               CASE WHEN t.is_count THEN m.sum ELSE m.sum / m.count END AS value
        FROM t JOIN minutes m ON m.plan_id = t.plan_id AND m.metric_id = t.metric_id
        WHERE m.bucket >= t.since AND m.bucket <= t.newest
    ) t
    WHERE {comparators.sql_case(code="t.comparator", value="value", threshold="t.threshold")}
) marked
GROUP BY trigger_id, minutes, island
HAVING count(*) >= minutes
ORDER BY trigger_id, min(bucket)
"""  # noqa: S608 - the comparison is built from the comparator table, not from input


def _backfill_episodes(
    sustained: list[RollbackTrigger],
    windows: dict[int, Window],
    latest: dict[int, TriggerEpisode],
    active: dict[int, TriggerEpisode],
    outcomes: dict[int, Outcome],
    now: dt.datetime,
) -> list[tuple[TriggerEpisode, RollbackTrigger]]:
    """After an ingestion: a run of D breaching minutes that is already over (a backfill of
    history, or data that arrived late) is still a breach the live window can no longer see.
    Record it as an episode that is already cleared, so people hear of it: only runs after the
    trigger's latest episode ended, within ``BREACH_LOOKBACK``, while no episode is active. One
    gaps-and-islands query for all the sustained triggers, each over at most a day of minutes;
    one run per trigger and evaluation (a later run is found the next time)."""
    searched: list[tuple[RollbackTrigger, dt.datetime, dt.datetime]] = []
    for trigger in sustained:
        minutes = windows[trigger.pk].minutes if trigger.pk in windows else None
        if not minutes or trigger.pk in active or outcomes[trigger.pk].fire:
            continue
        since = now - BREACH_LOOKBACK
        previous = latest.get(trigger.pk)
        if previous is not None:
            since = max(since, previous.breach_started_at + MINUTE, _episode_end(previous) or since)
        searched.append((trigger, since, minutes[-1].bucket))
    if not searched:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            _RUNS_SQL,
            [
                [t.pk for t, _, _ in searched],
                [t.plan_id for t, _, _ in searched],
                [t.metric_id for t, _, _ in searched],
                [t.metric.kind == MetricDefinition.Kind.COUNT for t, _, _ in searched],
                [t.comparator for t, _, _ in searched],
                [float(t.threshold) for t, _, _ in searched],
                [t.sustained_minutes for t, _, _ in searched],
                [since for _, since, _ in searched],
                [newest for _, _, newest in searched],
            ],
        )
        runs = {trigger_id: (start, end, value) for trigger_id, start, end, value in cursor}
    opened = []
    for trigger, _, newest in searched:
        run = runs.get(trigger.pk)
        # A run reaching the newest minute is the live window's (it fires, or waits on a rearm).
        if run is None or run[1] >= newest:
            continue
        start, end, value = run
        outcome = Outcome(State.OK, "", breach_started_at=start, value=value)
        episode = _open(trigger, outcome, now, cleared_at=end + MINUTE)
        if episode is not None:
            opened.append((episode, trigger))
    return opened


# --- telling people ------------------------------------------------------------------------------


def _announce(opened: list[tuple[TriggerEpisode, RollbackTrigger]]) -> None:
    """Notify each plan's owner and rollback executor, and queue the team's webhook."""
    people_ids = {
        pk
        for _, trigger in opened
        for pk in (trigger.plan.owner_id, trigger.plan.rollback_executor_id)
        if pk is not None
    }
    people = User.objects.in_bulk(people_ids)
    for episode, trigger in opened:
        plan = trigger.plan
        tz = zoneinfo.ZoneInfo(plan.time_zone)
        value = _number(episode.value)
        since = _clock(episode.breach_started_at, tz, episode.fired_at)
        message = (
            f"Rollback trigger fired on “{plan.title}”: {episode.description}. "
            f"Value {value}, breach since {since}."
        )
        notify(
            users=[people[pk] for pk in (plan.owner_id, plan.rollback_executor_id) if pk in people],
            kind=Notification.Kind.TRIGGER_FIRED,
            message=message,
            url=plan_url(plan.pk),
            actor=None,
        )
        episode.trigger = trigger
        episode.plan = plan
    deliveries_create(event=EVENT_FIRED, episodes=[episode for episode, _ in opened])
