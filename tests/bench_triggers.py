"""The triggers part of ``make bench`` (issue #15): 50 rollback triggers of a plan with 90 days of
per-minute data evaluated after a batch, one "any occurrence" lookup, and, through real Celery
worker processes, the time from a breaching sample's HTTP 201 to its episode row, with the
workers idle and while a 1,000-plan tick's checks are queued. Called by ``tests.bench`` on its
database; the data goes in through ``metrics.ingest`` (and the API for the breaches).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import statistics
import time
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from tests.bench_timing import p95
from tests.bench_worker import worker

DAYS = 90
RUNS = 20
REPEATS = 10
TICK_PLANS = 1_000
MINUTE = dt.timedelta(minutes=1)
# The big plan's metrics: a plausible value of one per-minute sample.
VALUES = {
    "p95_latency": lambda r: 150 + r.random() * 100,
    "error_rate": lambda r: r.random() * 0.4,
    "errors": lambda r: float(r.randrange(3)),
    "p1_defects": lambda r: 0.0,
}
# Beside the template's two (any P1 defect; p95 latency > 300 ms for 30 minutes): 48 more.
# Any occurrence, some of which breach the history (they fire once, are resolved, and re-arm).
ANY = [
    *[("p95_latency", "gt", t) for t in ("240", "245", "248", "249.5", "260", "300", "400")],
    *[("p95_latency", "lt", t) for t in ("152", "155", "100", "50")],
    *[("error_rate", "gt", t) for t in ("0.39", "0.395", "0.5", "1")],
    ("error_rate", "lt", "0.001"),
    *[("errors", c, t) for c, t in (("ge", "2"), ("gt", "2"), ("ge", "5"), ("eq", "7"))],
    *[("p1_defects", c, t) for c, t in (("ge", "1"), ("gt", "5"), ("eq", "3"))],
]
# Sustained for D minutes, above what the data reaches (a breaching run inside the last day would
# open an episode after each batch: a backfill's run, docs/alerts.md).
SUSTAINED = [
    (key, "gt", threshold, minutes)
    for key, threshold in (("p95_latency", "260"), ("p95_latency", "280"), ("error_rate", "0.45"),
                           ("error_rate", "0.6"), ("errors", "50"))
    for minutes in (1, 5, 15, 30, 60)
]  # fmt: skip


def _running(plan, *, start: dt.date, **fields) -> None:  # type: ignore[no-untyped-def]
    from pilots import timeline
    from pilots.models import PilotPlan

    PilotPlan.objects.filter(pk=plan.pk).update(
        status=PilotPlan.Status.RUNNING,
        start_date=start,
        business_days=70,
        end_date=timeline.end_date(start, 70),
        **fields,
    )
    plan.refresh_from_db()


def _history(plan, metric_ids: dict[str, int], end: dt.datetime) -> None:  # type: ignore[no-untyped-def]
    """``DAYS`` days of per-minute samples of every metric in ``VALUES`` up to ``end``, ingested
    a day at a time through ``metrics.ingest.samples_store``."""
    from metrics.ingest import samples_store

    r = random.Random(15)
    start = end - dt.timedelta(days=DAYS)
    for day in range(DAYS):
        first = start + dt.timedelta(days=day)
        samples_store(
            rows=[
                (plan.pk, metric_ids[key], first + i * MINUTE, value(r), "bench", "")
                for key, value in VALUES.items()
                for i in range(1440)
            ]
        )
    with connection.cursor() as cursor:  # as autovacuum would after a load this size
        cursor.execute("ANALYZE metrics_sample, metrics_hourrollup, metrics_dayrollup")


def _triggers(plan, metric_ids: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
    from pilots.models import RollbackTrigger

    rows = [(key, cmp, t, RollbackTrigger.Mode.ANY_OCCURRENCE, None) for key, cmp, t in ANY]
    rows += [(k, c, t, RollbackTrigger.Mode.SUSTAINED, d) for k, c, t, d in SUSTAINED]
    last = plan.rollback_triggers.count()
    RollbackTrigger.objects.bulk_create(
        [
            RollbackTrigger(
                plan=plan, position=last + i, metric_id=metric_ids[key], comparator=cmp,
                threshold=Decimal(threshold), mode=mode, sustained_minutes=minutes,
            )
            for i, (key, cmp, threshold, mode, minutes) in enumerate(rows, start=1)
        ]
    )  # fmt: skip
    assert plan.rollback_triggers.count() == 50


def _resolve_all(plan, po) -> int:  # type: ignore[no-untyped-def]
    from metrics.alerts import episode_resolve
    from metrics.models import TriggerEpisode

    active = TriggerEpisode.objects.filter(
        plan=plan, resolved_at__isnull=True, cleared_at__isnull=True
    )
    for episode in active:
        episode_resolve(plan=plan, episode_id=episode.pk, user=po, resolution="Bench")
    return len(active)


def _batch(plan, metric_ids: dict[str, int], now: dt.datetime, run: int) -> None:  # type: ignore[no-untyped-def]
    """1,000 samples in the newest 250 minutes (four metrics), none of them breaching an "any
    occurrence" trigger: new rows in minutes and days whose old extremes do breach."""
    from metrics.ingest import samples_store

    quiet = {"p95_latency": 200.0, "error_rate": 0.2, "errors": 1.0, "p1_defects": 0.0}
    samples_store(
        rows=[
            (plan.pk, metric_ids[key], now - (i + 1) * MINUTE + dt.timedelta(seconds=30),
             value, f"bench-batch-{run}", "")
            for key, value in quiet.items()
            for i in range(250)
        ]
    )  # fmt: skip


# --- real workers ---------------------------------------------------------------------------------


def _purge() -> None:
    """Drop what is still queued (the bench's database goes away after the bench)."""
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(settings.CELERY_TASK_DEFAULT_QUEUE, settings.TRIGGERS_QUEUE)
    client.close()


def _armed(team, po, metric_ids: dict[str, int]):  # type: ignore[no-untyped-def]
    """A running plan whose "p95 latency > 300 ms for 30 minutes" trigger has 29 breaching
    minutes before the current one, and that minute; the 30th comes through the API."""
    from metrics.ingest import samples_store
    from pilots.services import plan_create_from_template

    now = timezone.now()
    plan = plan_create_from_template(team=team, author=po)
    _running(plan, start=now.date() - dt.timedelta(days=1))
    minute = now.replace(second=0, microsecond=0)
    samples_store(
        rows=[
            (plan.pk, metric_ids["p95_latency"], minute - i * MINUTE, 450.0, "bench", "")
            for i in range(1, 30)
        ]
    )
    return plan, minute


def _breach_ms(client: Client, armed) -> float:  # type: ignore[no-untyped-def]
    """Push the 30th breaching minute; milliseconds from the HTTP 201 to the episode row."""
    from metrics.models import TriggerEpisode

    plan, minute = armed
    body = json.dumps(
        {"samples": [{"metric": "p95_latency", "observed_at": minute.isoformat(),
                      "value": 460.0}]}
    )  # fmt: skip
    url = f"/api/v1/plans/{plan.pk}/samples"
    response = client.post(url, body, content_type="application/json")
    answered = time.perf_counter()
    assert response.status_code == 201, response.content[:500]
    fired = TriggerEpisode.objects.filter(plan=plan)
    while not fired.exists():
        if time.perf_counter() - answered > 120:
            raise RuntimeError(f"plan {plan.pk}: no episode within 120 s")
        time.sleep(0.005)
    return (time.perf_counter() - answered) * 1000


def _tick_plans(team, po, metric_ids: dict[str, int], now: dt.datetime) -> None:  # type: ignore[no-untyped-def]
    """``TICK_PLANS`` running plans with the template's five criteria, a check slot due and half
    an hour of two metrics each."""
    from metrics.ingest import samples_store
    from pilots.models import ExitCriterion, PilotPlan
    from pilots.services import plan_create_from_template

    source = plan_create_from_template(team=team, author=po)
    template = list(ExitCriterion.objects.filter(plan=source).order_by("position"))
    start = now.date() - dt.timedelta(days=2)
    plans = PilotPlan.objects.bulk_create(
        [
            PilotPlan(
                team=team, title=f"Tick plan {i}", owner=po, created_by=po,
                status=PilotPlan.Status.RUNNING, start_date=start, business_days=10,
                end_date=start + dt.timedelta(days=14), time_zone="UTC",
                check_times=[dt.time(0, 0)],
            )
            for i in range(TICK_PLANS)
        ]
    )  # fmt: skip
    ExitCriterion.objects.bulk_create(
        [
            ExitCriterion(
                plan=p, position=c.position, metric_id=c.metric_id, aggregation=c.aggregation,
                percentile=c.percentile, denominator_id=c.denominator_id, per_n=c.per_n,
                comparator=c.comparator, threshold=c.threshold,
                min_sample_size=c.min_sample_size,
            )
            for p in plans
            for c in template
        ]
    )  # fmt: skip
    r = random.Random(16)
    samples_store(
        rows=[
            (p.pk, metric_ids[key], now - (i + 1) * MINUTE, VALUES[key](r), "bench", "")
            for p in plans
            for key in ("p95_latency", "error_rate")
            for i in range(30)
        ]
    )


def _workers(team, po, metric_ids: dict[str, int], figures: dict[str, float]) -> None:  # type: ignore[no-untyped-def]
    from metrics import checks
    from metrics.models import CheckRun

    _purge()  # e.g. the evaluations the resolves above queued
    client = Client()
    client.force_login(po)
    client.get("/api/v1/plans/0")  # the first request of a process loads the URL configuration

    # One worker on both queues, idle: the 30th breaching minute, from the 201 to the episode.
    default_queue, triggers_queue = settings.CELERY_TASK_DEFAULT_QUEUE, settings.TRIGGERS_QUEUE
    with worker(concurrency=1, queues=[default_queue, triggers_queue]):
        timings = [_breach_ms(client, _armed(team, po, metric_ids)) for _ in range(REPEATS)]
    figures["breach_to_episode_ms_median"] = statistics.median(timings)
    figures["breach_to_episode_ms_max"] = max(timings)

    # The two workers of docker-compose.yml: the default one busy with a 1,000-plan tick's
    # checks, the triggers one idle. A breach pushed meanwhile.
    now = timezone.now()
    _tick_plans(team, po, metric_ids, now)
    armed = [_armed(team, po, metric_ids) for _ in range(5)]
    # docker-compose.yml's defaults: WORKER_CONCURRENCY 4, TRIGGER_WORKER_CONCURRENCY 2.
    with (
        worker(concurrency=4, queues=[default_queue]),
        worker(concurrency=2, queues=[triggers_queue]),
    ):
        with transaction.atomic():  # the tick's claim; its checks are published on commit
            queued = len(checks.tick_process(now=timezone.now()))
        pending = CheckRun.objects.filter(status=CheckRun.Status.PENDING)
        deadline = time.monotonic() + 60
        while pending.count() > queued - 20 and time.monotonic() < deadline:
            time.sleep(0.05)  # until the default worker is well into them
        timings, waiting = [], []
        for breach in armed:
            waiting.append(pending.count())
            timings.append(_breach_ms(client, breach))
        figures["breach_during_tick_checks_queued"] = queued
        figures["breach_during_tick_checks_still_pending"] = min(waiting)
        figures["breach_during_tick_ms"] = statistics.median(timings)
        figures["breach_during_tick_ms_max"] = max(timings)
        _purge()  # the checks still queued: the workers stop without them
    _purge()


def run(*, po, team, figures: dict[str, float]) -> None:  # type: ignore[no-untyped-def]
    from catalogue.models import MetricDefinition
    from metrics import triggers
    from metrics.models import TriggerEpisode
    from pilotplan.celery import app
    from pilots.services import plan_create_from_template

    now = timezone.now().replace(second=0, microsecond=0)
    metric_ids = dict(MetricDefinition.objects.filter(team=None).values_list("key", "pk"))
    _purge()

    # The plan: 50 triggers, 90 days of per-minute data for four metrics.
    plan = plan_create_from_template(team=team, author=po)
    _running(plan, start=(now - dt.timedelta(days=DAYS + 1)).date())
    _triggers(plan, metric_ids)
    started = time.perf_counter()
    _history(plan, metric_ids, now)
    print(f"# triggers: ingested {DAYS} days x {len(VALUES)} metrics "
          f"in {time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
    # The triggers the history breaches fire once; resolved, they re-arm on new samples only.
    triggers.triggers_evaluate_plan(plan_id=plan.pk, now=timezone.now())
    resolved = _resolve_all(plan, po)
    print(f"# triggers: {resolved} episodes fired on the history and resolved", flush=True)

    # 50 triggers evaluated after each batch (what the worker does after an ingestion).
    timings = []
    for run_ in range(RUNS):
        _batch(plan, metric_ids, now, run_)
        start = time.perf_counter()
        opened = triggers.triggers_evaluate_plan(plan_id=plan.pk, now=timezone.now())
        timings.append((time.perf_counter() - start) * 1000)
        assert opened == [], [e.description for e in opened]
    figures["trigger_eval_50_triggers_ms_p50"] = statistics.median(timings)
    figures["trigger_eval_50_triggers_ms_p95"] = p95(timings)

    # One "any occurrence" lookup: re-armed after a breach of its history, a batch since.
    one = plan.rollback_triggers.get(metric_id=metric_ids["p95_latency"], comparator="gt",
                                     threshold=Decimal("245"))  # fmt: skip
    since = {one.pk: TriggerEpisode.objects.filter(trigger=one).latest("fired_at").resolved_at}
    timings = []
    for _ in range(RUNS):
        start = time.perf_counter()
        assert triggers._occurrences([one], since) == {}
        timings.append((time.perf_counter() - start) * 1000)
    figures["any_occurrence_1_trigger_ms_p50"] = statistics.median(timings)

    try:
        _workers(team, po, metric_ids, figures)
    finally:
        app.control.purge()
