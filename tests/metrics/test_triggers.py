"""Rollback trigger evaluation: sustained boundaries (29 / 30 / 31 minutes, a good minute, gaps,
stale data), any occurrence, episodes (once per breach, clearing, re-arming after resolve, a run
inside a backfill), concurrent evaluations, and notifications.

Data goes straight into the tables the ingestion fills (``Sample`` and its hour rollups for
sustained triggers, which read the samples grouped by minute; ``Sample`` and its hour and day
rollups for any-occurrence ones), so each test says exactly which minutes hold what and when each
sample was ingested.
"""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection

from accounts.models import (
    Membership,
    Notification,
    Team,
    User,
    WebhookDelivery,
    WebhookSubscription,
)
from catalogue.models import MetricDefinition
from metrics import triggers
from metrics.alerts import episode_resolve
from metrics.models import (
    Sample,
    TriggerEpisode,
    TriggerState,
)
from pilots.models import PilotPlan, RollbackTrigger
from tests.factories import MembershipFactory, UserFactory, running_plan
from tests.metrics.webhook_docs import assert_documented

pytestmark = pytest.mark.django_db

UTC = dt.UTC
DAY = dt.date(2026, 3, 2)  # a Monday
T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MINUTE = dt.timedelta(minutes=1)
SECONDS = dt.timedelta(seconds=20)


# --- data ----------------------------------------------------------------------------------------


def metric(key: str) -> MetricDefinition:
    return MetricDefinition.objects.get(team=None, key=key)


def minutes(
    plan: PilotPlan,
    start: dt.datetime,
    values: list[float | None],
    *,
    key: str = "p95_latency",
    per_minute: int = 1,
) -> dt.datetime:
    """``per_minute`` samples in each minute from ``start``, averaging (gauges) or summing
    (counts) to each value; ``None`` leaves the minute without data. Returns the first minute
    after the last one."""
    m = metric(key)
    rows = []
    for i, value in enumerate(values):
        if value is None:
            continue
        each = value / per_minute if m.kind == MetricDefinition.Kind.COUNT else value
        rows += [
            Sample(
                plan=plan,
                metric=m,
                observed_at=start + i * MINUTE + j * dt.timedelta(seconds=10),
                value=each,
            )
            for j in range(per_minute)
        ]
    Sample.objects.bulk_create(rows)
    _hours_from_samples(plan)
    return start + len(values) * MINUTE


def _hours_from_samples(plan: PilotPlan) -> None:
    """The plan's hour rollups, as the ingestion keeps them, from its samples."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO metrics_hourrollup AS r
                (plan_id, metric_id, bucket, "count", "sum", sum_sq, "min", "max", updated_at)
            SELECT plan_id, metric_id, date_trunc('hour', observed_at, 'UTC'), count(*),
                   sum(value), sum(value * value), min(value), max(value), max(ingested_at)
            FROM metrics_sample WHERE plan_id = %s GROUP BY 1, 2, 3
            ON CONFLICT (plan_id, metric_id, bucket) DO UPDATE SET
                "count" = EXCLUDED."count", "sum" = EXCLUDED."sum", sum_sq = EXCLUDED.sum_sq,
                "min" = EXCLUDED."min", "max" = EXCLUDED."max", updated_at = EXCLUDED.updated_at
            """,
            [plan.pk],
        )


# What the ingestion adds to an hour's and a day's rollup for one sample
# (metrics.ingest); ``updated_at`` is when it was last written, as the ingestion's ``now()``.
_ROLLUP_ADD = """
INSERT INTO {table} AS r
    (plan_id, metric_id, bucket, "count", "sum", sum_sq, "min", "max", updated_at)
VALUES (%(plan)s, %(metric)s, date_trunc('{unit}', %(at)s::timestamptz, 'UTC'), 1, %(value)s,
        %(value)s * %(value)s, %(value)s, %(value)s, %(ingested)s)
ON CONFLICT (plan_id, metric_id, bucket) DO UPDATE SET
    "count" = r."count" + 1,
    "sum" = r."sum" + EXCLUDED."sum",
    sum_sq = r.sum_sq + EXCLUDED.sum_sq,
    "min" = LEAST(r."min", EXCLUDED."min"),
    "max" = GREATEST(r."max", EXCLUDED."max"),
    updated_at = GREATEST(r.updated_at, EXCLUDED.updated_at)
"""


def sample(
    plan: PilotPlan,
    observed_at: dt.datetime,
    value: float,
    *,
    key: str = "p1_defects",
    ingested_at: dt.datetime | None = None,
) -> Sample:
    """One sample, ingested at ``ingested_at`` (when observed by default), and what the
    ingestion adds to its hour and day rollups then."""
    ingested_at = ingested_at or observed_at
    row = Sample.objects.create(
        plan=plan, metric=metric(key), observed_at=observed_at, value=value, ingested_at=ingested_at
    )
    with connection.cursor() as cursor:
        for unit in ("hour", "day"):
            table = f"metrics_{unit}rollup"
            cursor.execute(
                _ROLLUP_ADD.format(table=table, unit=unit),
                {"plan": plan.pk, "metric": row.metric_id, "at": observed_at, "value": value,
                 "ingested": ingested_at},
            )  # fmt: skip
    return row


def latency(plan: PilotPlan) -> RollbackTrigger:
    return plan.rollback_triggers.get(metric__key="p95_latency")


def p1(plan: PilotPlan) -> RollbackTrigger:
    return plan.rollback_triggers.get(metric__key="p1_defects")


def state(trigger: RollbackTrigger) -> TriggerState:
    return TriggerState.objects.get(trigger=trigger)


def evaluate(plan: PilotPlan, now: dt.datetime) -> list[TriggerEpisode]:
    return triggers.triggers_evaluate_plan(plan_id=plan.pk, now=now)


@pytest.fixture
def plan(team: Team, po: User, devops: User) -> PilotPlan:
    """Running, with the template's triggers: any P1 defect; p95 latency > 300 ms for 30
    minutes. The DevOps engineer executes the rollback."""
    return running_plan(team=team, owner=po, start_date=DAY, rollback_executor=devops)


BAD, GOOD = 450.0, 200.0


# --- sustained: the boundaries ----------------------------------------------------------------


def test_29_breaching_minutes_do_not_fire(plan):
    end = minutes(plan, T0, [BAD] * 29)

    assert evaluate(plan, end + SECONDS) == []
    s = state(latency(plan))
    assert s.state == TriggerState.State.BREACHING
    assert "29 of 30 minutes" in s.detail
    assert not TriggerEpisode.objects.exists()


def test_30_breaching_minutes_fire_once_with_the_first_minute_and_value(plan, po, devops):
    end = minutes(plan, T0, [GOOD] * 5 + [BAD] * 29 + [460.0])
    now = end + SECONDS

    [episode] = evaluate(plan, now)

    episode.refresh_from_db()
    assert episode.trigger == latency(plan)
    assert episode.breach_started_at == T0 + 5 * MINUTE
    assert episode.fired_at == now
    assert episode.value == 460.0
    assert episode.cleared_at is None and episode.resolved_at is None
    assert episode.description == "p95 latency > 300 ms for 30 minutes"
    assert state(latency(plan)).state == TriggerState.State.FIRED
    # The owner and the rollback executor hear of it at once, with a link to the plan.
    notes = Notification.objects.filter(kind=Notification.Kind.TRIGGER_FIRED)
    assert {n.user for n in notes} == {po, devops}
    assert all(n.url == f"/plans/{plan.pk}/" for n in notes)
    assert "p95 latency > 300 ms for 30 minutes" in notes[0].message
    assert "460" in notes[0].message


def test_31st_minute_is_still_the_same_episode(plan):
    end = minutes(plan, T0, [BAD] * 30)
    evaluate(plan, end + SECONDS)
    end = minutes(plan, end, [BAD])

    assert evaluate(plan, end + SECONDS) == []
    assert TriggerEpisode.objects.count() == 1
    assert Notification.objects.filter(kind=Notification.Kind.TRIGGER_FIRED).count() == 2
    assert state(latency(plan)).state == TriggerState.State.FIRED


def test_a_good_minute_after_29_breaching_ones_does_not_fire(plan):
    end = minutes(plan, T0, [BAD] * 29 + [GOOD])

    assert evaluate(plan, end + SECONDS) == []
    assert state(latency(plan)).state == TriggerState.State.OK
    # The count starts again after the good minute: 29 more are not enough, 30 are.
    end = minutes(plan, end, [BAD] * 29)
    assert evaluate(plan, end + SECONDS) == []
    assert "29 of 30" in state(latency(plan)).detail
    end = minutes(plan, end, [BAD])
    [episode] = evaluate(plan, end + SECONDS)
    assert episode.breach_started_at == T0 + 30 * MINUTE


def test_every_minute_is_evaluated_as_the_data_arrives(plan):
    """The tick every minute, one minute of data each time: fires exactly at the 30th."""
    fired_at = []
    for i in range(35):
        end = minutes(plan, T0 + i * MINUTE, [BAD])
        if evaluate(plan, end + SECONDS):
            fired_at.append(i + 1)
    assert fired_at == [30]


def test_a_gap_in_the_window_is_not_enough_data_never_a_pass(plan):
    values: list[float | None] = [BAD] * 30
    values[3:6] = [None, None, None]  # 12:03, 12:04, 12:05
    end = minutes(plan, T0, values)

    assert evaluate(plan, end + SECONDS) == []
    s = state(latency(plan))
    assert s.state == TriggerState.State.NO_DATA
    assert s.detail == "Not enough data: no data for 12:03–12:05."


def test_a_gap_before_a_good_minute_cannot_hide_a_breach(plan):
    """The window has a good minute after the gap: whatever the gap held, the last 30 minutes
    did not all breach."""
    values: list[float | None] = [BAD] * 30
    values[3] = None
    values[10] = GOOD
    end = minutes(plan, T0, values)

    evaluate(plan, end + SECONDS)
    s = state(latency(plan))
    assert s.state == TriggerState.State.BREACHING
    assert "19 of 30" in s.detail


def test_a_gap_in_the_current_run_is_not_enough_data(plan):
    values: list[float | None] = [GOOD] + [BAD] * 29
    values[20] = None
    end = minutes(plan, T0, values)

    evaluate(plan, end + SECONDS)
    assert state(latency(plan)).detail == "Not enough data: no data for 12:20."


def test_stale_data_is_stale(plan):
    end = minutes(plan, T0, [BAD] * 10)

    evaluate(plan, end + 45 * MINUTE)
    s = state(latency(plan))
    assert s.state == TriggerState.State.STALE
    assert "the newest data is from 12:09" in s.detail


def test_a_full_breach_that_arrives_late_still_fires(plan):
    """30 breaching minutes that ended 45 minutes ago (a delayed pusher): the breach happened."""
    end = minutes(plan, T0, [BAD] * 30)

    [episode] = evaluate(plan, end + 45 * MINUTE)
    assert episode.breach_started_at == T0


def test_an_open_episode_stays_fired_through_a_gap(plan):
    end = minutes(plan, T0, [BAD] * 30)
    evaluate(plan, end + SECONDS)
    end = minutes(plan, end, [None, None, BAD])

    evaluate(plan, end + SECONDS)
    s = state(latency(plan))
    assert s.state == TriggerState.State.FIRED
    assert s.detail == "Fired; now: Not enough data: no data for 12:30–12:31."


def test_no_data_at_all_is_no_data_never_ok(plan):
    evaluate(plan, T0)
    s = state(latency(plan))
    assert s.state == TriggerState.State.NO_DATA
    assert s.detail == "No data: no sample received since the pilot started (00:00)."
    assert state(p1(plan)).state == TriggerState.State.NO_DATA


def test_minutes_after_now_are_not_read(plan):
    minutes(plan, T0, [BAD] * 30)
    evaluate(plan, T0 + 10 * MINUTE + SECONDS)
    assert "11 of 30" in state(latency(plan)).detail


def test_gauge_minutes_are_means_and_count_minutes_are_sums(plan):
    # Two samples a minute averaging 250 ms: no breach, although one of them may be 450.
    minutes(plan, T0, [250.0] * 30, per_minute=2)
    errors = RollbackTrigger.objects.create(
        plan=plan, position=3, metric=metric("errors"), comparator="gt", threshold=Decimal(10),
        mode=RollbackTrigger.Mode.SUSTAINED, sustained_minutes=5,
    )  # fmt: skip
    # 12 errors a minute, pushed as 3 samples of 4: the minute's sum is 12 > 10.
    minutes(plan, T0 + 25 * MINUTE, [12.0] * 5, key="errors", per_minute=3)

    [episode] = evaluate(plan, T0 + 30 * MINUTE)
    assert episode.trigger == errors
    assert episode.value == 12.0
    assert state(latency(plan)).state == TriggerState.State.OK


# --- sustained: episodes over time ---------------------------------------------------------------


def test_sustained_triggers_of_one_metric_each_judge_their_own_last_d_minutes(plan):
    """The metric's minutes are read once, for the longest D; each trigger takes its own."""
    thirty = latency(plan)
    five = RollbackTrigger.objects.create(
        plan=plan, position=9, metric=metric("p95_latency"), comparator="gt",
        threshold=Decimal("300"), mode=RollbackTrigger.Mode.SUSTAINED, sustained_minutes=5,
    )  # fmt: skip
    end = minutes(plan, T0, [GOOD] * 3 + [BAD] * 10)

    [episode] = evaluate(plan, end + SECONDS)
    assert episode.trigger_id == five.pk
    assert episode.breach_started_at == T0 + 3 * MINUTE  # where the run began
    assert state(five).state == TriggerState.State.FIRED
    # The 30-minute trigger's window reaches back before the data began: not a gap.
    s = state(thirty)
    assert s.state == TriggerState.State.BREACHING
    assert "10 of 30 minutes" in s.detail


def test_episode_clears_at_the_first_good_minute_and_a_new_breach_is_a_new_episode(plan):
    end = minutes(plan, T0, [BAD] * 30)
    [first] = evaluate(plan, end + SECONDS)
    end = minutes(plan, end, [GOOD])

    assert evaluate(plan, end + SECONDS) == []
    first.refresh_from_db()
    assert first.cleared_at == T0 + 30 * MINUTE
    assert first.resolved_at is None  # people still resolve it
    assert state(latency(plan)).state == TriggerState.State.OK

    end = minutes(plan, end, [BAD] * 30)
    [second] = evaluate(plan, end + SECONDS)
    assert second.pk != first.pk
    assert second.breach_started_at == T0 + 31 * MINUTE
    assert TriggerEpisode.objects.filter(plan=plan).count() == 2


def test_missing_data_does_not_clear_an_episode(plan):
    end = minutes(plan, T0, [BAD] * 30)
    [episode] = evaluate(plan, end + SECONDS)

    evaluate(plan, end + 2 * dt.timedelta(hours=1))
    episode.refresh_from_db()
    assert episode.cleared_at is None
    s = state(latency(plan))
    assert s.state == TriggerState.State.FIRED
    assert (
        s.detail
        == "Fired; now: Not enough data: the newest minute is 12:29, more than 30 minutes ago."
    )


def test_resolving_while_still_breaching_re_arms_after_d_more_minutes(plan, po):
    end = minutes(plan, T0, [BAD] * 30)
    [episode] = evaluate(plan, end + SECONDS)
    episode_resolve(
        plan=plan, episode_id=episode.pk, user=po, resolution="Scaled up", now=end + SECONDS
    )
    end = minutes(plan, end, [BAD] * 29)

    assert evaluate(plan, end + SECONDS) == []
    s = state(latency(plan))
    assert s.state == TriggerState.State.BREACHING
    assert "Still breaching after the last alert was resolved" in s.detail
    end = minutes(plan, end, [BAD])
    [again] = evaluate(plan, end + SECONDS)
    assert again.breach_started_at == T0 + 30 * MINUTE


def test_a_long_run_found_late_starts_where_the_breach_began(plan):
    """The worker was down: the first evaluation sees 90 breaching minutes at once."""
    end = minutes(plan, T0, [GOOD] + [BAD] * 90)

    [episode] = evaluate(plan, end + SECONDS)
    assert episode.breach_started_at == T0 + MINUTE


def test_a_breach_inside_a_backfill_fires_an_episode_already_cleared(plan, po):
    """A batch of history holds 30 breaching minutes that ended before the newest minute: the
    evaluation after the ingestion records the breach (cleared) and tells people."""
    values = [GOOD] * 10 + [BAD] * 30 + [GOOD] * 20
    end = minutes(plan, T0, values)
    now = end + SECONDS

    assert triggers.triggers_evaluate_running(now=now) == []  # the tick only watches the edge
    [episode] = evaluate(plan, now)
    assert episode.breach_started_at == T0 + 10 * MINUTE
    assert episode.cleared_at == T0 + 40 * MINUTE
    assert episode.value == BAD
    assert Notification.objects.filter(user=po, kind="trigger_fired").count() == 1
    # Found once: the next evaluation does not record it again.
    assert evaluate(plan, now + MINUTE) == []
    assert TriggerEpisode.objects.count() == 1


def test_a_backfill_with_a_29_minute_run_fires_nothing(plan):
    end = minutes(plan, T0, [GOOD] * 10 + [BAD] * 29 + [GOOD] * 20)
    assert evaluate(plan, end + SECONDS) == []


def test_a_count_whose_minute_sums_breach_inside_a_backfill_fires(plan):
    """A count's minute is its sum: four samples of 4 make a minute of 16 > 10, though no
    sample (and no hour's maximum) exceeds 4."""
    from metrics.ingest import samples_store

    plan.rollback_triggers.create(
        metric=metric("errors"), comparator="gt", threshold=Decimal("10"),
        mode=RollbackTrigger.Mode.SUSTAINED, sustained_minutes=3, position=3,
    )  # fmt: skip
    errors = metric("errors").pk
    rows = [(plan.pk, errors, T0 + i * MINUTE + k * SECONDS, 4.0, "api", "")
            for i in range(3) for k in range(3)]  # fmt: skip
    rows += [(plan.pk, errors, T0 + i * MINUTE + 50 * dt.timedelta(seconds=1), 4.0, "api", "")
             for i in range(3)]  # fmt: skip
    rows += [(plan.pk, errors, T0 + i * MINUTE, 0.0, "api", "") for i in range(3, 10)]
    samples_store(rows=rows)

    [episode] = evaluate(plan, T0 + 10 * MINUTE + SECONDS)

    assert (episode.breach_started_at, episode.cleared_at) == (T0, T0 + 3 * MINUTE)
    assert episode.value == 16


# --- any occurrence ----------------------------------------------------------------------------


def test_the_first_p1_fires_and_a_second_joins_the_same_episode(plan, po, devops):
    sample(plan, T0, 0)  # "no P1 this minute" is not an occurrence
    assert evaluate(plan, T0 + SECONDS) == []
    assert state(p1(plan)).state == TriggerState.State.OK

    sample(plan, T0 + MINUTE, 1)
    [episode] = evaluate(plan, T0 + MINUTE + SECONDS)
    assert episode.breach_started_at == T0 + MINUTE
    assert episode.value == 1
    assert episode.description == "P1 defects > 0 (any occurrence)"
    assert {n.user for n in Notification.objects.filter(kind="trigger_fired")} == {po, devops}

    sample(plan, T0 + 2 * MINUTE, 2)
    assert evaluate(plan, T0 + 2 * MINUTE + SECONDS) == []
    assert TriggerEpisode.objects.count() == 1
    assert state(p1(plan)).state == TriggerState.State.FIRED


def test_after_resolving_old_p1s_do_not_fire_but_a_new_one_does(plan, po):
    sample(plan, T0, 1)
    [first] = evaluate(plan, T0 + SECONDS)
    resolved_at = T0 + 10 * MINUTE
    episode_resolve(plan=plan, episode_id=first.pk, user=po, resolution="Hotfix", now=resolved_at)

    assert evaluate(plan, resolved_at + SECONDS) == []
    assert state(p1(plan)).state == TriggerState.State.OK
    # Late data about an old defect, ingested after the resolve, is a new occurrence.
    sample(plan, T0 + 20 * MINUTE, 1, ingested_at=resolved_at + MINUTE)
    [second] = evaluate(plan, resolved_at + 2 * MINUTE)
    assert second.pk != first.pk
    assert second.breach_started_at == T0 + 20 * MINUTE


def test_re_armed_triggers_of_one_metric_each_count_from_their_own_resolve(plan, po):
    """The samples ingested since are read once for the metric (from the earlier resolve), but
    each trigger fires only on samples ingested after its own."""
    one = p1(plan)
    other = RollbackTrigger.objects.create(
        plan=plan, position=9, metric=metric("p1_defects"), comparator="ge",
        threshold=Decimal("1"), mode=RollbackTrigger.Mode.ANY_OCCURRENCE,
    )  # fmt: skip
    sample(plan, T0, 1)
    first = {e.trigger_id: e for e in evaluate(plan, T0 + SECONDS)}
    assert set(first) == {one.pk, other.pk}
    early, late = T0 + 10 * MINUTE, T0 + 30 * MINUTE
    episode_resolve(plan=plan, episode_id=first[one.pk].pk, user=po, resolution="x", now=early)
    episode_resolve(plan=plan, episode_id=first[other.pk].pk, user=po, resolution="x", now=late)
    # A defect reported between the two resolves: new to the first trigger only.
    sample(plan, T0 + 5 * MINUTE, 1, ingested_at=T0 + 20 * MINUTE)

    [second] = evaluate(plan, T0 + 40 * MINUTE)
    assert second.trigger_id == one.pk
    assert second.breach_started_at == T0 + 5 * MINUTE
    assert state(other).state == TriggerState.State.OK


def test_an_any_occurrence_episode_stays_active_until_resolved(plan):
    sample(plan, T0, 1)
    [episode] = evaluate(plan, T0 + SECONDS)
    evaluate(plan, T0 + dt.timedelta(hours=3))
    episode.refresh_from_db()
    assert episode.cleared_at is None and episode.resolved_at is None


# --- any occurrence from the rollups: day → minute → sample -------------------------------------


def resolved(plan: PilotPlan, po: User, at: dt.datetime) -> dt.datetime:
    """Fire the P1 trigger on what is there now and resolve the episode at ``at``."""
    [episode] = evaluate(plan, at - MINUTE)
    episode_resolve(plan=plan, episode_id=episode.pk, user=po, resolution="Fixed", now=at)
    return at


def test_a_non_breaching_sample_in_the_minute_of_a_resolved_breach_does_not_fire(plan, po):
    # The minute's and the day's maximum still breach, and both were written after the resolve.
    sample(plan, T0, 1)
    resolved_at = resolved(plan, po, T0 + 10 * MINUTE)
    sample(plan, T0 + SECONDS, 0, ingested_at=resolved_at + MINUTE)
    sample(plan, T0 + 3 * MINUTE, 0, ingested_at=resolved_at + MINUTE)  # same day, other minute

    assert evaluate(plan, resolved_at + 2 * MINUTE) == []
    assert state(p1(plan)).state == TriggerState.State.OK
    assert TriggerEpisode.objects.count() == 1


def test_a_backfilled_breach_in_an_old_day_fires_at_its_own_time(plan, po):
    old_day = T0 - dt.timedelta(days=40)
    sample(plan, old_day, 0)
    sample(plan, T0, 1)
    resolved_at = resolved(plan, po, T0 + 10 * MINUTE)

    # Late data about a defect forty days ago, and a newer one: the older one fires.
    sample(plan, T0 + 5 * MINUTE, 2, ingested_at=resolved_at + MINUTE)
    sample(plan, old_day + 7 * SECONDS, 3, ingested_at=resolved_at + MINUTE)
    [episode] = evaluate(plan, resolved_at + 2 * MINUTE)

    assert (episode.breach_started_at, episode.value) == (old_day + 7 * SECONDS, 3)


def test_a_day_whose_breach_is_older_than_the_resolve_is_passed_over_for_a_later_day(plan, po):
    # Day 1 breached before the resolve and got a good sample after it (a candidate without an
    # occurrence); day 2 holds the new breach.
    day1, day2 = T0 - dt.timedelta(days=2), T0 - dt.timedelta(days=1)
    sample(plan, day1, 1)
    resolved_at = resolved(plan, po, T0)
    sample(plan, day1 + SECONDS, 0, ingested_at=resolved_at + MINUTE)
    sample(plan, day2 + 5 * MINUTE, 0, ingested_at=resolved_at + MINUTE)
    sample(plan, day2 + 9 * MINUTE, 4, ingested_at=resolved_at + MINUTE)
    sample(plan, day2 + 9 * MINUTE + SECONDS, 5, ingested_at=resolved_at + MINUTE)

    [episode] = evaluate(plan, resolved_at + 2 * MINUTE)

    assert (episode.breach_started_at, episode.value) == (day2 + 9 * MINUTE, 4)


def test_the_first_breaching_sample_of_a_minute_fires_not_the_minutes_extreme(plan, po):
    # Within a minute: the earliest breaching sample (1 at :10), not the largest (7 at :40).
    sample(plan, T0 + 40 * dt.timedelta(seconds=1), 7)
    sample(plan, T0 + 10 * dt.timedelta(seconds=1), 1)
    sample(plan, T0, 0)

    [episode] = evaluate(plan, T0 + MINUTE)

    assert (episode.breach_started_at, episode.value) == (T0 + dt.timedelta(seconds=10), 1)


@pytest.mark.parametrize(
    ("comparator", "threshold", "fires"),
    [("lt", "150", 120.0), ("le", "120", 120.0), ("eq", "200", 200.0), ("ge", "260", 260.0),
     ("gt", "250", 260.0)],
)  # fmt: skip
def test_each_comparator_finds_its_occurrence_through_the_extremes(
    plan, comparator, threshold, fires
):
    p1(plan).delete()
    latency(plan).delete()
    plan.rollback_triggers.create(
        metric=metric("p95_latency"), comparator=comparator, threshold=Decimal(threshold),
        mode=RollbackTrigger.Mode.ANY_OCCURRENCE, position=1,
    )  # fmt: skip
    # Minute 0: 180, 200 (min 180, max 200); minute 1: 120, 260; the same day.
    for i, value in enumerate([180.0, 200.0, 120.0, 260.0]):
        sample(plan, T0 + (i // 2) * MINUTE + i * SECONDS, value, key="p95_latency")

    [episode] = evaluate(plan, T0 + 2 * MINUTE)

    assert episode.value == fires


# --- which plans, how many queries -------------------------------------------------------------


def test_only_running_plans_are_evaluated(team, po, plan):
    plan.status = PilotPlan.Status.DRAFT
    plan.save(update_fields=["status"])
    sample(plan, T0, 1)

    assert triggers.triggers_evaluate_running(now=T0 + SECONDS) == []
    assert evaluate(plan, T0 + SECONDS) == []
    assert not TriggerState.objects.exists()


@pytest.mark.parametrize("plans", [2, 12])
def test_the_tick_reads_every_running_plan_in_a_fixed_number_of_queries(
    team, po, plans, django_assert_num_queries
):
    for _ in range(plans):
        p = running_plan(team=team, owner=po, start_date=DAY)
        minutes(p, T0, [BAD] * 10)
        sample(p, T0, 0)
    # Triggers, latest episodes, sustained windows, any-occurrence samples, the newest data,
    # ending no-data / stale episodes, the state upsert, the savepoint around them (the test runs
    # in a transaction), and clearing the job's failures (metrics.failures).
    with django_assert_num_queries(10):
        triggers.triggers_evaluate_running(now=T0 + 10 * MINUTE)
    assert TriggerState.objects.filter(state="breaching").count() == plans


def subscribe(team: Team, *events: str, active: bool = True) -> WebhookSubscription:
    return WebhookSubscription.objects.create(
        team=team,
        name="Ops",
        url="http://127.0.0.1:9/hook",
        secret="whsec_eA==",
        events=list(events),
        is_active=active,
    )


def test_firing_writes_a_webhook_delivery_for_the_teams_subscriptions(plan, team):
    subscribe(team, "trigger.fired")
    sample(plan, T0, 1)

    [episode] = evaluate(plan, T0 + SECONDS)

    delivery = WebhookDelivery.objects.get()
    assert delivery.event == "trigger.fired"
    assert delivery.payload["type"] == "trigger.fired"
    assert_documented(delivery.payload)
    assert delivery.link == f"http://127.0.0.1:8000/plans/{plan.pk}/"
    payload = delivery.payload["data"]
    assert payload["plan"] == {
        "id": plan.pk,
        "title": plan.title,
        "url": f"http://127.0.0.1:8000/plans/{plan.pk}/",
    }
    assert payload["episode"]["id"] == episode.pk
    assert payload["episode"]["value"] == 1
    assert payload["episode"]["breach_started_at"] == "2026-03-02T12:00:00Z"
    assert payload["episode"]["fired_at"] == "2026-03-02T12:00:20Z"
    assert payload["trigger"]["metric"] == "p1_defects"
    assert payload["trigger"]["mode"] == "any"


def test_an_inactive_subscription_gets_nothing(plan, team):
    subscribe(team, "trigger.fired", active=False)
    subscribe(team, "trigger.resolved")
    sample(plan, T0, 1)
    evaluate(plan, T0 + SECONDS)
    assert not WebhookDelivery.objects.exists()


def test_a_plan_without_a_rollback_executor_notifies_the_owner(team, po):
    plan = running_plan(team=team, owner=po, start_date=DAY)
    sample(plan, T0, 1)
    evaluate(plan, T0 + SECONDS)
    assert [n.user for n in Notification.objects.filter(kind="trigger_fired")] == [po]


# --- concurrency -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_evaluations_fire_once():
    team = Team.objects.create(name="Race", slug="race")
    owner = MembershipFactory(team=team, role=Membership.Role.PRODUCT_OWNER).user
    executor = UserFactory()
    plan = running_plan(team=team, owner=owner, start_date=DAY, rollback_executor=executor)
    subscribe(team, "trigger.fired")
    minutes(plan, T0, [BAD] * 30)
    sample(plan, T0, 1)
    now = T0 + 30 * MINUTE
    barrier = threading.Barrier(4)
    opened: list[int] = []
    errors: list[BaseException] = []

    def run(tick: bool) -> None:
        try:
            barrier.wait()
            if tick:
                found = triggers.triggers_evaluate_running(now=now)
            else:
                found = triggers.triggers_evaluate_plan(plan_id=plan.pk, now=now)
            opened.extend(e.pk for e in found)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i % 2 == 0,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    # One P1 episode and one latency episode, whoever won each (at most two were opened here:
    # under ``-n 2`` a real worker's tick may evaluate this committed plan too).
    assert len(opened) <= 2
    assert TriggerEpisode.objects.filter(plan=plan).count() == 2
    assert Notification.objects.filter(kind="trigger_fired").count() == 4  # 2 people × 2
    assert WebhookDelivery.objects.filter(event="trigger.fired").count() == 2


# --- speed ---------------------------------------------------------------------------------------


def test_evaluating_a_plan_after_a_1000_sample_batch_costs_a_bounded_number_of_queries(
    plan, django_assert_max_num_queries
):
    """What the bench times as ``trigger_eval_ms_p50``: a day of per-minute latency and a few
    defects, then a 1,000-sample batch, then the plan's evaluation — in a fixed number of
    queries, however much data there is (the time itself is measured by ``make bench``)."""
    from metrics.ingest import samples_store

    lat, defects = metric("p95_latency").pk, metric("p1_defects").pk
    day = [
        (plan.pk, lat, T0 - dt.timedelta(days=1) + i * MINUTE, 200.0 + i % 50, "api", "")
        for i in range(1440)
    ]
    samples_store(rows=day)
    batch = [(plan.pk, lat, T0 + i * SECONDS, 250.0, "api", "") for i in range(990)]
    batch += [(plan.pk, defects, T0 + i * MINUTE, 0.0, "api", "") for i in range(10)]
    samples_store(rows=batch)
    now = T0 + 330 * MINUTE
    triggers.triggers_evaluate_plan(plan_id=plan.pk, now=now)  # creates the states
    with django_assert_max_num_queries(12):
        triggers.triggers_evaluate_plan(plan_id=plan.pk, now=now)
