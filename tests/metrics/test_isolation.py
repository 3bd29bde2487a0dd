"""One plan's failure stops no other plan (issue #10, finding 1): the tick's checks and trigger
evaluation, check execution and digests catch a plan's exception, record it against that plan
(shown on its page and in the portfolio) and go on; stored timelines out of range answer in words.

Bad data is written with a queryset ``update()``, as data stored before dates were validated."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from metrics import checks, triggers
from metrics.failures import JobFailures
from metrics.ingest import samples_store
from metrics.models import (
    TICK,
    CheckRun,
    DailyDigest,
    Heartbeat,
    PlanJobFailure,
    Sample,
    TriggerEpisode,
    TriggerState,
)
from metrics.slots import PlanWindowError, plan_window
from metrics.tasks import tick
from pilots.models import PilotPlan
from tests.factories import running_plan
from tests.metrics.test_checks_support import metric

pytestmark = pytest.mark.django_db

UTC = dt.UTC
MONDAY = dt.date(2025, 1, 6)
NOW = dt.datetime(2025, 1, 8, 10, 0, 30, tzinfo=UTC)  # Wednesday, just after the 10:00 check

# Start 0001-01-01 in a zone east of UTC: midnight that day lies before year 1 in UTC.
YEAR_ONE = {
    "start_date": dt.date(1, 1, 1),
    "end_date": dt.date(1, 1, 12),
    "time_zone": "Asia/Tokyo",
}
YEAR_9999 = {"start_date": dt.date(9999, 12, 20), "end_date": dt.date(9999, 12, 31)}
UNKNOWN_ZONE = {"time_zone": "Mars/Olympus_Mons"}


def poison(plan: PilotPlan, **fields: object) -> PilotPlan:
    PilotPlan.objects.filter(pk=plan.pk).update(**fields)
    plan.refresh_from_db()
    return plan


def p1_sample(plan: PilotPlan, at: dt.datetime) -> None:
    """One P1 defect, through the ingestion path: the template's "any P1 defect" trigger fires
    on it."""
    samples_store(rows=[(plan.pk, metric("p1_defects").pk, at, 1.0, "test", "")])


def failures() -> dict[tuple[int, str], PlanJobFailure]:
    return {(f.plan_id, f.job): f for f in PlanJobFailure.objects.all()}


@pytest.fixture
def healthy(team, po) -> list[PilotPlan]:  # type: ignore[no-untyped-def]
    return [running_plan(team=team, owner=po, start_date=MONDAY) for _ in range(2)]


@pytest.fixture
def fail_inserts_for() -> Iterator:  # type: ignore[type-arg]
    """A real database fault: a table trigger refusing one plan's rows (no patched function)."""
    made: list[str] = []

    def install(table: str, plan: PilotPlan) -> None:
        name = f"pp_test_fail_{table}"
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN IF NEW.plan_id = {int(plan.pk)} THEN "
                f"RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$"
            )
            cursor.execute(
                f"CREATE TRIGGER {name} BEFORE INSERT OR UPDATE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {name}()"
            )
        made.append(table)

    yield install
    # The test's transaction is rolled back, and the functions and triggers with it.


# --- the slot computation refuses, in words, what it cannot compute ------------------------------


@pytest.mark.parametrize("bad", [YEAR_ONE, YEAR_9999], ids=["year-1-tokyo", "year-9999"])
def test_plan_window_of_an_extreme_timeline_is_an_explained_error_not_an_overflow(bad):
    from zoneinfo import ZoneInfo

    with pytest.raises(PlanWindowError, match="outside the dates Pilotplan can schedule"):
        plan_window(
            start_date=bad["start_date"],
            end_date=bad["end_date"],
            tz=ZoneInfo(bad.get("time_zone", "UTC")),
        )


# --- the tick's checks ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [YEAR_ONE, YEAR_9999, UNKNOWN_ZONE], ids=["y1", "y9999", "tz"])
def test_a_poisoned_plan_does_not_stop_the_other_plans_checks(team, po, healthy, bad):
    poisoned = poison(running_plan(team=team, owner=po, start_date=MONDAY), **bad)

    claimed = checks.tick_process(now=NOW)

    runs = CheckRun.objects.filter(pk__in=claimed)
    assert sorted(runs.values_list("plan_id", flat=True)) == sorted(p.pk for p in healthy)
    assert not CheckRun.objects.filter(plan=poisoned).exists()
    failure = PlanJobFailure.objects.get(plan=poisoned)
    assert failure.job == "checks" and failure.count == 1 and failure.first_at == NOW
    assert failure.category == ("time_zone" if bad is UNKNOWN_ZONE else "timeline")
    assert "Traceback" not in failure.message and len(failure.message) <= 300


def test_a_failure_is_counted_while_it_lasts_and_cleared_when_the_job_next_succeeds(
    team, po, healthy
):
    poisoned = poison(running_plan(team=team, owner=po, start_date=MONDAY), **YEAR_ONE)
    checks.tick_process(now=NOW)
    checks.tick_process(now=NOW + dt.timedelta(minutes=1))
    failure = PlanJobFailure.objects.get(plan=poisoned)
    assert (failure.count, failure.first_at) == (2, NOW)
    assert failure.last_at == NOW + dt.timedelta(minutes=1)

    poison(poisoned, start_date=MONDAY, end_date=dt.date(2025, 1, 17), time_zone="UTC")
    claimed = checks.tick_process(now=NOW + dt.timedelta(minutes=2))

    assert CheckRun.objects.filter(pk__in=claimed, plan=poisoned).exists()
    assert not PlanJobFailure.objects.exists()


def test_when_the_claiming_statement_fails_as_a_whole_the_healthy_plans_are_claimed_one_by_one(
    team, po, healthy, fail_inserts_for
):
    refused = running_plan(team=team, owner=po, start_date=MONDAY)
    fail_inserts_for("metrics_checkrun", refused)

    claimed = checks.tick_process(now=NOW)

    assert sorted(CheckRun.objects.filter(pk__in=claimed).values_list("plan_id", flat=True)) == (
        sorted(p.pk for p in healthy)
    )
    failure = PlanJobFailure.objects.get(plan=refused)
    assert (failure.job, failure.category) == ("checks", "database")


def test_the_tick_still_costs_a_constant_number_of_queries_with_a_failing_plan(
    team, po, django_assert_num_queries
):
    running_plan(team=team, owner=po, start_date=MONDAY)
    poison(running_plan(team=team, owner=po, start_date=MONDAY), **YEAR_ONE)
    with django_assert_num_queries(10):  # savepoints, plans, holidays, claim, failures, sweep
        checks.tick_process(now=NOW)
    for _ in range(5):
        running_plan(team=team, owner=po, start_date=MONDAY)
        poison(running_plan(team=team, owner=po, start_date=MONDAY), **YEAR_9999)
    with django_assert_num_queries(10):
        checks.tick_process(now=NOW + dt.timedelta(hours=6))
    assert PlanJobFailure.objects.count() == 6


# --- trigger evaluation --------------------------------------------------------------------------


def test_a_poisoned_plan_does_not_stop_the_other_plans_triggers_from_firing(team, po, healthy):
    poisoned = poison(running_plan(team=team, owner=po, start_date=MONDAY), **UNKNOWN_ZONE)
    for plan in [*healthy, poisoned]:
        p1_sample(plan, NOW - dt.timedelta(minutes=1))

    opened = triggers.triggers_evaluate_running(now=NOW)

    assert sorted(e.plan_id for e in opened) == sorted(p.pk for p in healthy)
    assert not TriggerEpisode.objects.filter(plan=poisoned).exists()
    assert not TriggerState.objects.filter(plan=poisoned).exists()
    failure = PlanJobFailure.objects.get(plan=poisoned)
    assert (failure.job, failure.category) == ("triggers", "time_zone")
    assert "Mars/Olympus_Mons" in failure.message


def test_when_a_trigger_statement_fails_as_a_whole_the_plans_are_evaluated_one_by_one(
    team, po, healthy, fail_inserts_for
):
    refused = running_plan(team=team, owner=po, start_date=MONDAY)
    for plan in [*healthy, refused]:
        p1_sample(plan, NOW - dt.timedelta(minutes=1))
    fail_inserts_for("metrics_triggerepisode", refused)

    opened = triggers.triggers_evaluate_running(now=NOW)

    assert sorted(e.plan_id for e in opened) == sorted(p.pk for p in healthy)
    assert TriggerState.objects.filter(plan__in=healthy).count() == 4
    failure = PlanJobFailure.objects.get(plan=refused)
    assert (failure.job, failure.category) == ("triggers", "database")

    triggers.triggers_evaluate_running(now=NOW + dt.timedelta(minutes=1))  # still refused
    assert PlanJobFailure.objects.get(plan=refused).count == 2


# --- check execution and the digest ---------------------------------------------------------------


def test_a_failing_digest_does_not_undo_the_check(team, po, fail_inserts_for):
    plan = running_plan(team=team, owner=po, start_date=MONDAY)
    [run_id] = checks.tick_process(now=NOW)
    fail_inserts_for("metrics_dailydigest", plan)

    assert checks.check_run_execute(run_id=run_id) is True

    run = CheckRun.objects.get(pk=run_id)
    assert run.status == "done" and run.results.count() == 5
    assert not DailyDigest.objects.exists()
    assert PlanJobFailure.objects.get(plan=plan).job == "digest"


def _record(plan: PilotPlan, *jobs: str) -> None:
    for job in jobs:
        recorded = JobFailures(job, now=NOW)
        recorded.catch(plan.pk, RuntimeError("an earlier failure"))
        recorded.save(done=[])


def test_the_next_check_clears_the_plans_check_and_digest_failures_digest_sent_or_not(team, po):
    plan = running_plan(team=team, owner=po, start_date=MONDAY)
    [run_id] = checks.tick_process(now=NOW)
    _record(plan, "check_run", "digest")
    assert set(failures()) == {(plan.pk, "check_run"), (plan.pk, "digest")}

    assert checks.check_run_execute(run_id=run_id) is True  # the day's first: sends the digest
    assert failures() == {}
    assert DailyDigest.objects.filter(plan=plan).count() == 1

    first = CheckRun.objects.get(pk=run_id)
    later = CheckRun.objects.create(
        plan=plan, due_at=first.due_at + dt.timedelta(hours=6), local_date=first.local_date,
        local_time=dt.time(16),
    )  # fmt: skip
    _record(plan, "check_run", "digest")
    assert checks.check_run_execute(run_id=later.pk) is True  # the day's digest went out already
    assert failures() == {}
    assert DailyDigest.objects.filter(plan=plan).count() == 1


def test_a_check_run_that_raises_is_recorded_and_left_pending_for_the_sweep(team, po, healthy):
    claimed = checks.tick_process(now=NOW)
    broken, fine = healthy
    poison(broken, **YEAR_ONE)  # changed after its slot was claimed
    by_plan = dict(CheckRun.objects.filter(pk__in=claimed).values_list("plan_id", "pk"))

    assert checks.check_run_execute(run_id=by_plan[broken.pk]) is False
    assert checks.check_run_execute(run_id=by_plan[fine.pk]) is True

    assert CheckRun.objects.get(pk=by_plan[broken.pk]).status == "pending"
    assert CheckRun.objects.get(pk=by_plan[fine.pk]).status == "done"
    assert set(failures()) == {(broken.pk, "check_run")}


# --- the whole tick ------------------------------------------------------------------------------


def test_the_tick_with_a_poisoned_plan_checks_and_fires_for_every_healthy_plan(team, po, client):
    today = timezone.now().date()
    healthy = [
        running_plan(team=team, owner=po, start_date=today - dt.timedelta(days=7),
                     business_days=20)
        for _ in range(2)
    ]  # fmt: skip
    poisoned = poison(
        running_plan(team=team, owner=po, start_date=today - dt.timedelta(days=7)),
        **YEAR_ONE | UNKNOWN_ZONE,
    )
    for plan in [*healthy, poisoned]:
        p1_sample(plan, timezone.now() - dt.timedelta(minutes=1))

    tick()  # the task body, in this process

    for plan in healthy:
        assert CheckRun.objects.filter(plan=plan, status="pending").exists()
        assert TriggerEpisode.objects.filter(plan=plan).exists()
    assert set(failures()) == {(poisoned.pk, "checks"), (poisoned.pk, "triggers")}
    beat = Heartbeat.objects.get(name=TICK)
    assert beat.completed_at is not None and beat.failed_plans == 1 and beat.failed_at is None
    scheduler = client.get("/healthz").json()["scheduler"]
    assert scheduler["status"] == "ok"
    assert scheduler["last_tick"]["failed_plans"] == 1


# --- what people see -----------------------------------------------------------------------------


def test_the_plan_page_says_which_job_fails_for_the_plan_since_when(team, po, client_for):
    plan = poison(running_plan(team=team, owner=po, start_date=MONDAY), **YEAR_ONE)
    checks.tick_process(now=NOW)

    response = client_for(po).get(reverse("pilots:plan_document", args=[plan.pk]))

    assert response.status_code == 200
    text = response.content.decode()
    assert 'data-testid="job-failures"' in text
    assert "Scheduled checks</strong> failed for this plan since" in text
    assert "outside the dates Pilotplan can schedule" in text
    assert "Other plans are not affected" in text


def test_the_plan_page_shows_no_failure_notice_while_jobs_succeed(team, po, client_for):
    plan = running_plan(team=team, owner=po, start_date=MONDAY)
    checks.tick_process(now=NOW)

    response = client_for(po).get(reverse("pilots:plan_document", args=[plan.pk]))

    assert 'data-testid="job-failures"' not in response.content.decode()


def test_an_outsider_does_not_see_the_plan_or_its_failures(team, po, outsider, client_for):
    plan = poison(running_plan(team=team, owner=po, start_date=MONDAY), **YEAR_ONE)
    checks.tick_process(now=NOW)

    assert (
        client_for(outsider).get(reverse("pilots:plan_detail", args=[plan.pk])).status_code == 404
    )
    portfolio = client_for(outsider).get(reverse("decisions:portfolio")).content.decode()
    assert "job-failure-marker" not in portfolio


def test_the_portfolio_marks_the_failing_plan_only(team, po, healthy, client_for):
    poisoned = poison(running_plan(team=team, owner=po, start_date=MONDAY), **UNKNOWN_ZONE)
    checks.tick_process(now=NOW)

    response = client_for(po).get(reverse("decisions:portfolio"))

    text = response.content.decode()
    assert text.count('data-testid="job-failure-marker"') == 1
    assert f'href="{reverse("pilots:plan_detail", args=[poisoned.pk])}" class="badge' in text
    assert "⚠ Scheduled checks failing" in text


# --- pages and ingestion of a plan with an extreme stored timeline ------------------------------


@pytest.mark.parametrize("bad", [YEAR_ONE, YEAR_9999], ids=["year-1-tokyo", "year-9999"])
def test_the_pages_of_a_plan_with_an_extreme_timeline_answer_never_500(team, po, client_for, bad):
    plan = poison(running_plan(team=team, owner=po, start_date=MONDAY), **bad)
    client = client_for(po)

    for name in [
        "pilots:plan_document",
        "decisions:cockpit",
        "metrics:checks",
        "metrics:alerts",
        "pilots:plan_print",
    ]:
        assert client.get(reverse(name, args=[plan.pk])).status_code == 200, name
    assert client.get(reverse("decisions:portfolio")).status_code == 200

    monitoring = client.get(reverse("metrics:monitoring", args=[plan.pk]))
    assert monitoring.status_code == 200
    problem = 'data-testid="monitoring-problem">The pilot window cannot be charted.'
    assert problem in monitoring.content.decode()


@pytest.mark.parametrize("bad", [YEAR_ONE, YEAR_9999], ids=["year-1-tokyo", "year-9999"])
def test_samples_for_a_plan_with_an_extreme_timeline_are_refused_in_words(
    team, po, client_for, bad
):
    plan = poison(running_plan(team=team, owner=po, start_date=MONDAY), **bad)
    body = {"samples": [{"metric": "p95_latency", "observed_at": NOW.isoformat(), "value": 1}]}

    response = client_for(po).post(
        reverse("api:plan-samples", args=[plan.pk]),
        json.dumps(body),
        content_type="application/json",
    )

    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "plan"
    assert "outside the dates Pilotplan can schedule" in error["message"]
    assert not Sample.objects.exists()


def test_business_days_to_a_far_end_date_are_counted_by_weeks_as_day_by_day():
    import random
    import time

    from pilots.timeline import business_days_between, is_business_day

    def day_by_day(first: dt.date, last: dt.date, holidays: list[dt.date]) -> int:
        off = frozenset(holidays)
        days = (last - first).days + 1
        return sum(is_business_day(first + dt.timedelta(days=i), off) for i in range(max(days, 0)))

    rng = random.Random(10)
    for _ in range(500):
        first = MONDAY + dt.timedelta(days=rng.randint(0, 400))
        last = first + dt.timedelta(days=rng.randint(-3, 60))
        holidays = [
            first + dt.timedelta(days=rng.randint(-3, 40)) for _ in range(rng.randint(0, 5))
        ]
        assert business_days_between(first, last, holidays) == day_by_day(first, last, holidays)
    started = time.monotonic()
    assert business_days_between(dt.date(2026, 12, 7), dt.date(9999, 12, 31)) > 2_000_000
    assert time.monotonic() - started < 0.1  # a stored end in 9999 cannot slow the portfolio


def test_a_chunk_with_a_run_that_raises_executes_every_other_run(team, po, healthy):
    third = running_plan(team=team, owner=po, start_date=MONDAY)
    claimed = checks.tick_process(now=NOW)
    broken = healthy[0]
    poison(broken, **YEAR_ONE)  # changed after its slot was claimed: the whole chunk raises
    by_plan = dict(CheckRun.objects.filter(pk__in=claimed).values_list("plan_id", "pk"))

    done = checks.check_runs_execute(run_ids=claimed)

    assert sorted(done) == sorted([by_plan[healthy[1].pk], by_plan[third.pk]])
    statuses = dict(CheckRun.objects.filter(pk__in=claimed).values_list("plan_id", "status"))
    assert statuses == {broken.pk: "pending", healthy[1].pk: "done", third.pk: "done"}
    assert set(failures()) == {(broken.pk, "check_run")}
    assert checks.check_runs_execute(run_ids=claimed) == []  # the broken one fails again
    assert CheckRun.objects.get(pk=by_plan[broken.pk]).status == "pending"


def test_a_chunk_whose_digest_fails_for_one_plan_still_sends_the_others(
    team, po, healthy, fail_inserts_for
):
    claimed = checks.tick_process(now=NOW)
    fail_inserts_for("metrics_dailydigest", healthy[0])

    assert len(checks.check_runs_execute(run_ids=claimed)) == 2

    assert set(CheckRun.objects.filter(pk__in=claimed).values_list("status", flat=True)) == {"done"}
    assert list(DailyDigest.objects.values_list("plan_id", flat=True)) == [healthy[1].pk]
    assert set(failures()) == {(healthy[0].pk, "digest")}
