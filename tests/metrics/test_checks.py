"""Scheduled checks: what the tick claims (on time, late, missed, DST, business days) and what a
check run stores. Concurrency (racing ticks and executions, a killed worker) is in
test_checks_race.py; a real worker and beat tick in test_tick_worker.py."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import TeamHoliday
from metrics import checks, evaluation
from metrics.models import CheckRun, CriterionResult, DailyDigest
from pilots import timeline
from pilots.models import PilotPlan
from tests.factories import running_plan
from tests.metrics.test_checks_support import bare_plan, criterion, store, store_series

pytestmark = pytest.mark.django_db

UTC = dt.UTC
MONDAY = dt.date(2025, 1, 6)


def at(day: dt.date, hour: int, minute: int = 0, second: int = 0, tz: str = "UTC") -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute, second), ZoneInfo(tz)).astimezone(UTC)


def runs(plan: PilotPlan) -> list[tuple[str, str, str, bool]]:
    """``(due_at UTC, local slot, status, late)`` of the plan's runs, oldest first."""
    return [
        (f"{r.due_at:%a %d %H:%M}", f"{r.local_date:%a %d} {r.local_time:%H:%M}", r.status, r.late)
        for r in CheckRun.objects.filter(plan=plan).order_by("due_at")
    ]


def tick(now: dt.datetime, capture) -> tuple[list[int], int]:  # type: ignore[no-untyped-def]
    """Run the tick at ``now``; the runs it claimed and how many messages it would publish."""
    with capture(execute=False) as callbacks:
        claimed = checks.tick_process(now=now)
    return claimed, len(callbacks)


@pytest.fixture
def plan(team, po):  # type: ignore[no-untyped-def]
    return running_plan(team=team, owner=po, start_date=MONDAY, business_days=10)


# --- claiming ------------------------------------------------------------------------------------


def test_a_tick_at_the_due_time_claims_one_pending_run_on_time(
    plan, django_capture_on_commit_callbacks
):
    assert tick(at(MONDAY, 9, 59, 59), django_capture_on_commit_callbacks) == ([], 0)

    claimed, published = tick(at(MONDAY, 10, 0, 30), django_capture_on_commit_callbacks)

    run = CheckRun.objects.get(plan=plan)
    assert claimed == [run.pk] and published == 1
    assert (run.status, run.late, run.attempts, run.local_date, run.local_time) == (
        "pending", False, 0, MONDAY, dt.time(10, 0)
    )  # fmt: skip
    assert run.due_at == at(MONDAY, 10)
    # The next ticks of the same slot claim nothing and publish nothing.
    assert tick(at(MONDAY, 10, 1), django_capture_on_commit_callbacks) == ([], 0)
    assert tick(at(MONDAY, 10, 2), django_capture_on_commit_callbacks) == ([], 0)


def test_a_tick_within_two_minutes_is_on_time_later_is_late(
    team, po, django_capture_on_commit_callbacks
):
    on_time = running_plan(team=team, owner=po, start_date=MONDAY)
    tick(at(MONDAY, 10, 2), django_capture_on_commit_callbacks)
    late = running_plan(team=team, owner=po, start_date=MONDAY)
    tick(at(MONDAY, 10, 2, 1), django_capture_on_commit_callbacks)
    assert CheckRun.objects.get(plan=on_time).late is False
    assert CheckRun.objects.get(plan=late).late is True


def test_checks_run_on_business_days_only_within_the_window(
    team, po, django_capture_on_commit_callbacks
):
    holiday = dt.date(2025, 1, 8)  # a Wednesday
    TeamHoliday.objects.create(team=team, date=holiday, name="Team day")
    plan = running_plan(team=team, owner=po, start_date=MONDAY, business_days=5)
    end = timeline.end_date(MONDAY, 5, [holiday])
    PilotPlan.objects.filter(pk=plan.pk).update(end_date=end)
    assert end == dt.date(2025, 1, 13)

    now = at(MONDAY, 0) - dt.timedelta(days=2)
    while now < at(MONDAY, 0) + dt.timedelta(days=14):
        tick(now, django_capture_on_commit_callbacks)
        now += dt.timedelta(minutes=30)

    slots = [(r.local_date, r.local_time) for r in CheckRun.objects.filter(plan=plan)]
    days = [MONDAY, dt.date(2025, 1, 7), dt.date(2025, 1, 9), dt.date(2025, 1, 10), end]
    assert sorted(slots) == [(d, dt.time(h)) for d in days for h in (10, 16)]
    assert set(CheckRun.objects.values_list("status", "late")) == {("pending", False)}


def test_catch_up_after_two_days_down_runs_the_latest_slot_late_and_records_the_rest_missed(
    plan, django_capture_on_commit_callbacks
):
    tick(at(MONDAY, 10), django_capture_on_commit_callbacks)
    checks.check_run_execute(run_id=CheckRun.objects.get().pk)
    # Down from Monday 10:05 to Wednesday 11:17.

    claimed, published = tick(at(dt.date(2025, 1, 8), 11, 17), django_capture_on_commit_callbacks)

    assert runs(plan) == [
        ("Mon 06 10:00", "Mon 06 10:00", "done", False),
        ("Mon 06 16:00", "Mon 06 16:00", "missed", False),
        ("Tue 07 10:00", "Tue 07 10:00", "missed", False),
        ("Tue 07 16:00", "Tue 07 16:00", "missed", False),
        ("Wed 08 10:00", "Wed 08 10:00", "pending", True),
    ]
    assert len(claimed) == 1 and published == 1
    # Nothing is claimed twice, and missed runs are never executed.
    assert tick(at(dt.date(2025, 1, 8), 11, 18), django_capture_on_commit_callbacks) == ([], 0)
    for run in CheckRun.objects.filter(status="missed"):
        assert checks.check_run_execute(run_id=run.pk) is False
    assert checks.check_run_execute(run_id=claimed[0]) is True
    assert checks.check_run_execute(run_id=claimed[0]) is False
    assert CheckRun.objects.filter(status="done").count() == 2
    assert not CriterionResult.objects.filter(run__status="missed").exists()


def test_a_plan_first_ticked_mid_pilot_records_its_past_slots_as_missed(
    plan, django_capture_on_commit_callbacks
):
    claimed, published = tick(at(dt.date(2025, 1, 7), 12), django_capture_on_commit_callbacks)
    assert len(claimed) == published == 1
    assert runs(plan) == [
        ("Mon 06 10:00", "Mon 06 10:00", "missed", False),
        ("Mon 06 16:00", "Mon 06 16:00", "missed", False),
        ("Tue 07 10:00", "Tue 07 10:00", "pending", True),
    ]


def test_dst_weekends_in_berlin_move_the_utc_due_times(
    team, po, django_capture_on_commit_callbacks
):
    # Clocks go forward on Sunday 30 March 2025 and back on Sunday 26 October 2025: a week
    # around each, ticked every 15 minutes (due times fall on the grid), gives each business
    # day's 10:00 and 16:00 once, on time, at the UTC instants of the day's offset.
    for start in (dt.date(2025, 3, 24), dt.date(2025, 10, 20)):
        plan = running_plan(
            team=team, owner=po, start_date=start, business_days=10, time_zone="Europe/Berlin"
        )
        now = at(start, 0)
        while now < at(start, 0) + dt.timedelta(days=9):
            tick(now, django_capture_on_commit_callbacks)
            now += dt.timedelta(minutes=15)
        got = CheckRun.objects.filter(plan=plan).order_by("due_at")
        assert {(r.status, r.late) for r in got} == {("pending", False)}
        for r in got:
            assert r.due_at == at(r.local_date, r.local_time.hour, tz="Europe/Berlin")
        utc_hours = {(r.local_date.isoformat(), f"{r.due_at:%H:%M}") for r in got}
        if start.month == 3:
            assert ("2025-03-28", "09:00") in utc_hours and ("2025-03-31", "08:00") in utc_hours
        else:
            assert ("2025-10-24", "08:00") in utc_hours and ("2025-10-27", "09:00") in utc_hours
        assert len(got) == 14  # 7 business days in 9 calendar days, 2 checks each


def test_dst_on_a_business_day_runs_a_skipped_time_after_the_gap_and_a_repeated_time_once(
    team, po, django_capture_on_commit_callbacks
):
    # Egypt changes its clocks on weekdays: on Friday 25 April 2025 00:00 → 01:00 (00:30 does not
    # exist), on Thursday 30 October 2025 24:00 → 23:00 (23:30 happens twice).
    # Ticked every 10 minutes from the pilot's start (the due times fall on that grid).
    for start, day, hour, minute, due in (
        (dt.date(2025, 4, 23), dt.date(2025, 4, 25), 0, 30, dt.datetime(2025, 4, 24, 22, 0)),
        (dt.date(2025, 10, 29), dt.date(2025, 10, 30), 23, 30, dt.datetime(2025, 10, 30, 20, 30)),
    ):
        plan = running_plan(
            team=team, owner=po, start_date=start, business_days=10, time_zone="Africa/Cairo",
            check_times=[dt.time(hour, minute)],
        )  # fmt: skip
        now = at(start, 0, tz="Africa/Cairo")
        while now < at(day, 0) + dt.timedelta(days=2):
            tick(now, django_capture_on_commit_callbacks)
            now += dt.timedelta(minutes=10)
        run = CheckRun.objects.get(plan=plan, local_date=day)
        assert run.due_at == due.replace(tzinfo=UTC)
        assert (run.local_time, run.status, run.late) == (dt.time(hour, minute), "pending", False)
        # Every other run of those days is on time too: nothing missed, nothing doubled.
        assert not CheckRun.objects.filter(plan=plan).exclude(status="pending").exists()
        assert CheckRun.objects.filter(plan=plan).count() == len(
            set(CheckRun.objects.filter(plan=plan).values_list("local_date", flat=True))
        )


def test_the_tick_reads_every_plan_in_a_constant_number_of_queries(
    team, po, django_capture_on_commit_callbacks
):
    running_plan(team=team, owner=po, start_date=MONDAY)
    with CaptureQueriesContext(connection) as one:
        tick(at(MONDAY, 10), django_capture_on_commit_callbacks)
    for _ in range(12):
        running_plan(team=team, owner=po, start_date=MONDAY)
    with CaptureQueriesContext(connection) as many:
        tick(at(MONDAY, 16), django_capture_on_commit_callbacks)
    assert CheckRun.objects.filter(due_at=at(MONDAY, 16)).count() == 13
    # Plans, holidays, the claim (in a savepoint of its own, so a failing claim can be retried
    # plan by plan), clearing the failures of the job, the sweep, the tick's savepoint.
    assert len(many.captured_queries) == len(one.captured_queries) <= 9


def test_1000_running_plans_sharing_a_slot_are_claimed_in_well_under_a_few_seconds(
    team, po, django_capture_on_commit_callbacks
):
    template = running_plan(team=team, owner=po, start_date=MONDAY, template=False)
    fields = {
        f.attname: getattr(template, f.attname)
        for f in PilotPlan._meta.concrete_fields
        if not f.primary_key
    }
    PilotPlan.objects.bulk_create([PilotPlan(**fields) for _ in range(999)])

    claimed, published = tick(at(MONDAY, 10), django_capture_on_commit_callbacks)

    assert len(claimed) == 1000
    assert published == 1000 // checks.CHUNK  # the runs go out in chunks of CHUNK a message
    assert tick(at(MONDAY, 10, 1), django_capture_on_commit_callbacks) == ([], 0)


def test_the_tick_republishes_pending_runs_whose_message_was_lost(
    plan, django_capture_on_commit_callbacks
):
    tick(at(MONDAY, 10), django_capture_on_commit_callbacks)
    run = CheckRun.objects.get()
    # Within two minutes the run is presumed on its way; after that it is published again.
    assert tick(at(MONDAY, 10, 1, 59), django_capture_on_commit_callbacks) == ([], 0)
    assert tick(at(MONDAY, 10, 2, 1), django_capture_on_commit_callbacks) == ([], 1)
    checks.check_run_execute(run_id=run.pk)
    assert tick(at(MONDAY, 10, 5), django_capture_on_commit_callbacks) == ([], 0)


def test_plans_that_are_not_running_or_have_no_dates_are_not_checked(
    plan, django_capture_on_commit_callbacks
):
    for status in ("approved", "evaluating", "decided"):
        PilotPlan.objects.filter(pk=plan.pk).update(status=status)
        assert tick(at(MONDAY, 10), django_capture_on_commit_callbacks) == ([], 0)
    assert not CheckRun.objects.exists()


# --- executing -----------------------------------------------------------------------------------


def test_a_check_run_stores_a_result_for_every_criterion_and_is_done(
    plan, django_capture_on_commit_callbacks
):
    store(plan, "p1_defects", [(at(MONDAY, 9), 0)])
    store_series(plan, "csat", at(MONDAY, 0), 600, "4.5 + 0.3 * sin(g)")
    store_series(plan, "p95_latency", at(MONDAY, 0), 600, "180 + 40 * cos(g)")
    store_series(plan, "p95_latency", at(MONDAY, 10), 30, "900")  # after the due time
    tick(at(MONDAY, 10), django_capture_on_commit_callbacks)
    run = CheckRun.objects.get()

    assert checks.check_run_execute(run_id=run.pk) is True

    run.refresh_from_db()
    assert (run.status, run.attempts) == ("done", 1)
    assert run.finished_at is not None
    results = list(run.results.order_by("position"))
    assert [r.label for r in results] == [
        "P1 defects total = 0 defects",
        "P2 defects rate per 1,000 sessions < 2",
        "CSAT mean ≥ 4.2 / 5",
        "Error rate mean ≤ 0.5 %",
        "p95 latency percentile 95 < 300 ms",
    ]
    verdicts = {r.label.split()[0] + " " + r.label.split()[1]: r.verdict for r in results}
    assert verdicts == {
        "P1 defects": "met",
        "P2 defects": "not_enough_evidence",  # no sessions yet
        "CSAT mean": "met",
        "Error rate": "not_enough_evidence",  # no data
        "p95 latency": "met",  # the 900 ms samples came after the due time
    }
    p95 = results[4]
    assert (p95.comparator, p95.threshold, p95.blocking, p95.sample_size, p95.method) == (
        "lt", 300.0, True, 600, "order_statistic"
    )  # fmt: skip
    assert p95.low <= p95.value <= p95.high < 300
    assert p95.criterion_id == plan.exit_criteria.get(position=5).pk
    assert (run.met, run.not_met, run.not_enough_evidence) == (3, 0, 2)

    # Once done, executing again (a duplicate message, the sweep) changes nothing.
    assert checks.check_run_execute(run_id=run.pk) is False
    assert CriterionResult.objects.filter(run=run).count() == 5
    assert CheckRun.objects.get().attempts == 1


def test_a_criterion_that_cannot_be_evaluated_is_stored_not_dropped(
    team, po, django_capture_on_commit_callbacks
):
    plan = bare_plan(team, po, start_date=MONDAY)
    criterion(plan, "csat", "mean", "ge", None)  # no threshold decided yet
    criterion(plan, "errors", "ratio", "le", "1", denominator="requests")
    store(plan, "errors", [(at(MONDAY, 9), 5)])
    store(plan, "requests", [(at(MONDAY, 9), 2)])
    tick(at(MONDAY, 10), django_capture_on_commit_callbacks)
    run = CheckRun.objects.get()
    checks.check_run_execute(run_id=run.pk)
    results = list(run.results.order_by("position"))
    assert [(r.verdict, r.reason) for r in results] == [
        ("not_enough_evidence", "No threshold set yet: the criterion cannot be evaluated."),
        ("not_enough_evidence", "successes (5) cannot exceed trials (2)."),
    ]
    assert results[0].label == "CSAT mean ≥ (no threshold yet)"
    assert results[0].threshold is None


def test_a_windowed_criterion_looks_back_from_the_due_time(
    team, po, django_capture_on_commit_callbacks
):
    plan = bare_plan(team, po, start_date=MONDAY)
    criterion(plan, "p1_defects", "total", "eq", "0", window_hours=24)
    store(plan, "p1_defects", [(at(MONDAY, 11), 1), (at(dt.date(2025, 1, 7), 12), 0)])
    tick(at(MONDAY, 16), django_capture_on_commit_callbacks)
    tick(at(dt.date(2025, 1, 7), 10, 30), django_capture_on_commit_callbacks)
    tick(at(dt.date(2025, 1, 7), 16), django_capture_on_commit_callbacks)
    for run in CheckRun.objects.order_by("due_at"):
        checks.check_run_execute(run_id=run.pk)
    got = [
        (f"{r.run.due_at:%a %H:%M}", r.value, r.verdict)
        for r in CriterionResult.objects.select_related("run").order_by("run__due_at")
    ]
    # Monday 16:00 sees the 11:00 defect; Tuesday 10:00 still (24 h back is Monday 10:00);
    # Tuesday 16:00 no longer does, only Tuesday's zero report.
    assert got == [
        ("Mon 16:00", 1.0, "not_met"),
        ("Tue 10:00", 1.0, "not_met"),
        ("Tue 16:00", 0.0, "met"),
    ]


def test_an_execution_with_an_unknown_run_does_nothing():
    assert checks.check_run_execute(run_id=987654) is False


def test_only_a_check_that_sends_the_digest_waits_for_the_disk_at_commit(team, po):
    """``synchronous_commit`` as the check's transaction has it when it stores the results: on
    for the day's first check (it sends the digest), off for the next one (docs/operations.md)."""
    plan = bare_plan(team, po, start_date=MONDAY, business_days=10)
    criterion(plan, "p95_latency", "percentile", "lt", "300", percentile=95)
    store(plan, "p95_latency", [(at(MONDAY, 9), 250)])
    runs = [
        CheckRun.objects.create(plan=plan, due_at=at(MONDAY, hour), local_date=MONDAY,
                                local_time=dt.time(hour))
        for hour in (10, 16)
    ]  # fmt: skip
    seen = []

    def before_the_results(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        if sql.lstrip().startswith("WITH done AS"):
            context["cursor"].execute("SHOW synchronous_commit")
            seen.append(context["cursor"].fetchone()[0])
        return execute(sql, params, many, context)

    with connection.execute_wrapper(before_the_results):
        for run in runs:
            assert checks.check_run_execute(run_id=run.pk)

    assert seen == ["on", "off"]
    assert DailyDigest.objects.filter(plan=plan).count() == 1


def test_a_check_after_the_days_digest_is_a_constant_five_statements(team, po):
    plan = bare_plan(team, po, start_date=MONDAY, business_days=10)
    criterion(plan, "p95_latency", "percentile", "lt", "300", percentile=95)
    criterion(plan, "csat", "latest", "ge", "4")
    criterion(plan, "p1_defects", "total", "eq", "0")
    store(plan, "p95_latency", [(at(MONDAY, 9), 250)])
    store(plan, "csat", [(at(MONDAY, 9), 4)])
    runs = [
        CheckRun.objects.create(plan=plan, due_at=at(MONDAY, hour), local_date=MONDAY,
                                local_time=dt.time(hour))
        for hour in (10, 16)
    ]  # fmt: skip
    assert checks.check_run_execute(run_id=runs[0].pk)  # the day's first check sends the digest

    with CaptureQueriesContext(connection) as second:
        assert checks.check_run_execute(run_id=runs[1].pk)

    # The run's savepoint (a transaction outside tests), the run locked with its plan's criteria
    # (and the probes for its plan's recorded failures and the day's digest), the criteria's
    # moments, sketches and latest values in one statement, the results stored with the run
    # marked done, the release. No failure to clear, no digest to send: no statement for either.
    assert len(second.captured_queries) == 5, [q["sql"][:60] for q in second.captured_queries]
    assert CheckRun.objects.get(pk=runs[1].pk).status == "done"
    assert CriterionResult.objects.filter(run=runs[1]).count() == 3


def test_a_check_over_90_days_of_minutes_is_fast_and_its_queries_do_not_grow_with_data(
    team, po, django_capture_on_commit_callbacks
):
    plan = bare_plan(team, po, start_date=MONDAY, business_days=65)
    for key, agg, extra in (
        ("p95_latency", "percentile", {"percentile": 95}), ("p95_latency", "max", {}),
        ("p95_latency", "mean", {"window_hours": 24}), ("csat", "mean", {}),
        ("p1_defects", "total", {}), ("p2_defects", "rate_per",
                                      {"denominator": "sessions", "per_n": 1000}),
        ("errors", "ratio", {"denominator": "requests"}), ("csat", "latest", {}),
    ):  # fmt: skip
        criterion(plan, key, agg, "lt", "300", **extra)
    runs = [
        CheckRun.objects.create(plan=plan, due_at=at(day, 10), local_date=day,
                                local_time=dt.time(10))
        for day in (MONDAY, dt.date(2025, 1, 7))
    ]  # fmt: skip
    checks.check_run_execute(run_id=runs[0].pk)
    store(plan, "p95_latency", [(at(MONDAY, 11), 250)], source="other")
    store(plan, "csat", [(at(MONDAY, 11), 4)], source="other")
    with CaptureQueriesContext(connection) as small:
        checks.check_run_execute(run_id=runs[1].pk)

    store_series(plan, "p95_latency", at(MONDAY, 0), 90 * 1440, "200 + 50 * sin(g)")
    store_series(plan, "csat", at(MONDAY, 0), 90 * 1440, "4 + mod(g, 2)")
    day = MONDAY + dt.timedelta(days=90)
    last = CheckRun.objects.create(plan=plan, due_at=at(day, 10), local_date=day,
                                   local_time=dt.time(10))  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE metrics_sample")
    with CaptureQueriesContext(connection) as big:
        checks.check_run_execute(run_id=last.pk)

    assert len(big.captured_queries) == len(small.captured_queries)
    p95 = CriterionResult.objects.get(run=last, position=1)
    assert p95.sample_size == 90 * 1440 + 1


def test_a_chunk_of_runs_stores_what_each_run_alone_would_in_the_same_number_of_queries(
    team, po, django_capture_on_commit_callbacks
):
    plans = [running_plan(team=team, owner=po, start_date=MONDAY) for _ in range(6)]
    for i, plan in enumerate(plans):
        store(plan, "p1_defects", [(at(MONDAY, 9), i % 2)])
        store_series(plan, "p95_latency", at(MONDAY, 0), 600, f"{150 + 40 * i} + 40 * cos(g)")
        store_series(plan, "csat", at(MONDAY, 0), 600, "4.5 + 0.3 * sin(g)")
    claimed, _ = tick(at(MONDAY, 10), django_capture_on_commit_callbacks)
    by_plan = dict(CheckRun.objects.values_list("plan_id", "pk"))
    first, rest = [by_plan[p.pk] for p in plans[:2]], [by_plan[p.pk] for p in plans[2:]]

    with CaptureQueriesContext(connection) as two:
        assert sorted(checks.check_runs_execute(run_ids=first)) == sorted(first)
    with CaptureQueriesContext(connection) as four:
        assert sorted(checks.check_runs_execute(run_ids=rest + first)) == sorted(rest)

    assert len(four.captured_queries) == len(two.captured_queries)
    assert checks.check_runs_execute(run_ids=claimed) == []  # all done: nothing twice
    for plan in plans:
        run = CheckRun.objects.get(plan=plan)
        assert (run.status, run.attempts, run.met + run.not_met + run.not_enough_evidence) == (
            "done", 1, 5
        )  # fmt: skip
        plan_start = dt.datetime.combine(MONDAY, dt.time(0), UTC)
        for result in run.results.select_related("criterion__metric", "criterion__denominator"):
            c = result.criterion
            start, end = evaluation.criterion_window(
                window_hours=c.window_hours, due_at=run.due_at, plan_start=plan_start
            )
            alone = evaluation.criterion_result(criterion=c, plan_id=plan.pk, start=start, end=end)
            got = (result.value, result.low, result.high, result.sample_size, result.verdict)
            assert got == (alone.value, alone.low, alone.high, alone.sample_size, alone.verdict)
    assert [
        p1.value for p1 in CriterionResult.objects.filter(position=1).order_by("run__plan_id")
    ] == [i % 2 for i in range(6)]
