"""``make bench`` part "scale" (issue #15): 10,000 running plans sharing one check slot are
claimed and checked within the minute by real worker processes (the concurrency docker-compose
ships), and 1,000 side by side.

The slot is on a business day of the data's own calendar (the last weekday before today that is
not one of the team's holidays), so every check judges a window full of data; each plan has the
template's exit criteria and one hour of per-minute data for 5 metrics before its slot, stored
through ``metrics.ingest.samples_store``. The checks are executed by a ``celery -A pilotplan
worker --concurrency 4`` subprocess on the default queue (``tests.bench_worker``).

Prints, for 1,000 and 10,000 plans: the tick's claim alone (``tick_claim_…_plans_s``, with its
messages published), claim plus every check done (``checks_…_plans_s``) and checks per second
per worker process."""

from __future__ import annotations

import datetime as dt
import os
import time

import numpy as np
from django.db import connection, transaction

CONCURRENCY = int(os.environ.get("WORKER_CONCURRENCY", "4"))
SIZES = [1_000, int(os.environ.get("BENCH_SCALE_PLANS", "10000"))]
BATCH = 50_000
# Per-minute values of the template's metrics (the P1 count gets one report per plan).
METRICS = ["p2_defects", "sessions", "csat", "error_rate", "p95_latency"]


def _business_day(team) -> dt.date:  # type: ignore[no-untyped-def]
    """The last weekday before today that is not one of the team's holidays."""
    from accounts.models import TeamHoliday

    holidays = set(TeamHoliday.objects.filter(team=team).values_list("date", flat=True))
    day = dt.date.today() - dt.timedelta(days=1)
    while day.weekday() >= 5 or day in holidays:
        day -= dt.timedelta(days=1)
    return day


def _plans(*, team, po, count: int, day: dt.date, at: dt.time) -> list[int]:  # type: ignore[no-untyped-def]
    """``count`` running plans checked at ``at`` (UTC) from ``day``, with the template's
    criteria."""
    from accounts.models import TeamHoliday
    from pilots import timeline
    from pilots.models import ExitCriterion, PilotPlan
    from pilots.services import plan_create_from_template

    template = plan_create_from_template(team=team, author=po)
    criteria = list(ExitCriterion.objects.filter(plan=template).order_by("position"))
    holidays = TeamHoliday.objects.filter(team=team).values_list("date", flat=True)
    end = timeline.end_date(day, 10, holidays)
    plans = PilotPlan.objects.bulk_create(
        [
            PilotPlan(team=team, title=f"Scale {count} #{i}", owner=po, created_by=po,
                      status=PilotPlan.Status.RUNNING, start_date=day, business_days=10,
                      end_date=end, time_zone="UTC", check_times=[at])
            for i in range(count)
        ],
        batch_size=2_000,
    )  # fmt: skip
    fields = [
        "position", "metric_id", "aggregation", "percentile", "denominator_id", "per_n",
        "comparator", "threshold", "min_sample_size", "unit", "blocking", "window_hours",
    ]  # fmt: skip
    ExitCriterion.objects.bulk_create(
        [
            ExitCriterion(plan=p, **{f: getattr(c, f) for f in fields})
            for p in plans
            for c in criteria
        ],
        batch_size=5_000,
    )
    return [p.pk for p in plans]


def _fill(plan_ids: list[int], slot: dt.datetime) -> int:
    """One hour of per-minute samples of METRICS before ``slot`` for every plan, and one P1
    report, through the production write path in big batches."""
    from catalogue.models import MetricDefinition
    from metrics.ingest import samples_store

    ids = dict(MetricDefinition.objects.filter(team=None).values_list("key", "pk"))
    rng = np.random.default_rng(15)
    times = [slot - dt.timedelta(minutes=m) for m in range(60, 0, -1)]
    values = {
        "p2_defects": lambda n: np.floor(rng.random(n) * 1.02),
        "sessions": lambda n: np.floor(5 + rng.random(n) * 20),
        "csat": lambda n: 1 + np.floor(rng.random(n) * 5),
        "error_rate": lambda n: rng.random(n) * 0.4,
        "p95_latency": lambda n: rng.lognormal(5.2, 0.25, n),
    }
    rows: list[tuple[int, int, dt.datetime, float, str, str]] = []
    stored = 0
    for plan_id in plan_ids:
        rows.append((plan_id, ids["p1_defects"], times[0], 0.0, "bench", ""))
        for key in METRICS:
            rows += zip(
                [plan_id] * 60, [ids[key]] * 60, times, values[key](60).tolist(),
                ["bench"] * 60, [""] * 60, strict=True,
            )  # fmt: skip
        if len(rows) >= BATCH:
            stored += samples_store(rows=rows)
            rows = []
    if rows:
        stored += samples_store(rows=rows)
    return stored


def run(*, po, team, figures: dict[str, float]) -> None:  # type: ignore[no-untyped-def]
    from metrics import checks
    from metrics.models import CheckRun
    from pilotplan.celery import app
    from tests import bench_worker

    day = _business_day(team)
    print(f"# scale: the shared slot is on {day:%a %d %b %Y}", flush=True)
    batches = []
    for hour, count in zip((9, 10), SIZES, strict=True):
        slot = dt.datetime.combine(day, dt.time(hour, 0), tzinfo=dt.UTC)
        started = time.perf_counter()
        plan_ids = _plans(team=team, po=po, count=count, day=day, at=dt.time(hour, 0))
        stored = _fill(plan_ids, slot)
        print(f"# scale: {count:,} plans, {stored:,} samples ingested in "
              f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
        batches.append((count, slot))
    with connection.cursor() as cursor:  # as autovacuum would after a load this size
        cursor.execute("ANALYZE")

    app.control.purge()  # nothing left over from other parts for this worker
    with bench_worker.worker(concurrency=CONCURRENCY):
        for count, slot in batches:
            started = time.perf_counter()
            with transaction.atomic():  # the messages are published as it commits
                run_ids = checks.tick_process(now=slot + dt.timedelta(seconds=30))
            claimed = time.perf_counter() - started
            assert len(run_ids) >= count, (len(run_ids), count)
            deadline = time.monotonic() + 900
            # A range of run ids, not a list of 10,000: the bench's polling must not load the
            # database the workers are using.
            pending = CheckRun.objects.filter(
                pk__gte=min(run_ids), pk__lte=max(run_ids), status=CheckRun.Status.PENDING
            )
            while pending.exists():
                assert time.monotonic() < deadline, "checks still pending after 15 minutes"
                time.sleep(0.25)
            total = time.perf_counter() - started
            suffix = "" if count == SIZES[-1] else f"_{count}"
            figures[f"tick_claim_{count}_plans_s"] = claimed
            figures[f"checks_{count}_plans_s"] = total
            figures[f"checks_per_s_per_worker_process{suffix}"] = (
                len(run_ids) / (total - claimed) / CONCURRENCY
            )
    app.control.purge()
