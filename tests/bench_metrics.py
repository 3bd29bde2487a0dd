"""The metrics half of ``make bench`` (issue #5): ingestion, triggers and pages over a plan with
90 days of per-minute data for 8 metrics. Called by ``tests.bench`` on its database. Checks have
parts of their own: ``bench_checks`` (one check, 10 vs 90 days) and ``bench_scale`` (10,000 plans
sharing a slot, real worker processes)."""

from __future__ import annotations

import datetime as dt
import io
import json
import statistics
import time
from decimal import Decimal

from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

DAYS = 90
BATCH = 5_000
API_BATCHES = 8
METRICS = {
    # key: SQL for a plausible value of one sample
    "p1_defects": "0",
    "p2_defects": "floor(random() * 1.02)",
    "sessions": "floor(5 + random() * 20)",
    "csat": "1 + floor(random() * 5)",
    "error_rate": "random() * 0.4",
    "p95_latency": "150 + random() * 100",
    "errors": "floor(random() * 3)",
    "requests": "floor(300 + random() * 600)",
}


def _p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1]


def _running(plan, *, start: dt.date, business_days: int) -> None:  # type: ignore[no-untyped-def]
    from pilots import timeline
    from pilots.models import PilotPlan

    PilotPlan.objects.filter(pk=plan.pk).update(
        status=PilotPlan.Status.RUNNING,
        start_date=start,
        business_days=business_days,
        end_date=timeline.end_date(start, business_days),
    )
    plan.refresh_from_db()


def _fill(plan_ids: list[int], metric_ids: dict[str, int], start: dt.datetime, end: dt.datetime):  # type: ignore[no-untyped-def]
    """Per-minute samples for every metric from ``start`` to ``end`` and their rollups, in SQL."""
    with connection.cursor() as cur:
        for key, expr in METRICS.items():
            cur.execute(
                f"""
                INSERT INTO metrics_sample
                    (plan_id, metric_id, observed_at, value, source, external_id, ingested_at)
                SELECT p, %s, g, {expr}, 'bench', '', now()
                FROM unnest(%s::bigint[]) p,
                     generate_series(%s::timestamptz, %s::timestamptz - interval '1 minute',
                                     interval '1 minute') g
                """,  # noqa: S608 - fixed expressions from METRICS
                [metric_ids[key], plan_ids, start, end],
            )
        for table, unit in (("metrics_minuterollup", "minute"), ("metrics_hourrollup", "hour")):
            cur.execute(
                f"""
                INSERT INTO {table} (plan_id, metric_id, bucket, count, sum, sum_sq, min, max)
                SELECT plan_id, metric_id, date_trunc('{unit}', observed_at), count(*),
                       sum(value), sum(value * value), min(value), max(value)
                FROM metrics_sample WHERE plan_id = ANY(%s)
                GROUP BY 1, 2, 3
                """,  # noqa: S608 - fixed table names
                [plan_ids],
            )
        # As autovacuum would after a load this size: the planner needs current statistics.
        cur.execute("ANALYZE metrics_sample, metrics_minuterollup, metrics_hourrollup")


def _criteria(plan, metric_ids: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
    """The template's five exit criteria plus three, so the plan has eight."""
    from pilots.models import ExitCriterion

    extra = [
        dict(metric_id=metric_ids["errors"], aggregation="ratio",
             denominator_id=metric_ids["requests"], comparator="le", threshold=Decimal("1")),
        dict(metric_id=metric_ids["requests"], aggregation="total", comparator="ge",
             threshold=Decimal("1000")),
        dict(metric_id=metric_ids["p95_latency"], aggregation="mean", comparator="le",
             threshold=Decimal("250"), window_hours=24),
    ]  # fmt: skip
    last = plan.exit_criteria.count()
    for i, row in enumerate(extra, start=last + 1):
        ExitCriterion.objects.create(plan=plan, position=i, min_sample_size=30, **row)
    assert plan.exit_criteria.count() == 8


def run(*, po, team, figures: dict[str, float]) -> None:  # type: ignore[no-untyped-def]
    from catalogue.models import MetricDefinition
    from metrics import triggers
    from pilots.services import plan_create_from_template

    now = timezone.now().replace(second=0, microsecond=0)
    today = timezone.localdate()
    metric_ids = dict(MetricDefinition.objects.filter(team=None).values_list("key", "pk"))

    # The big plan: 90 days of per-minute data for 8 metrics, 8 exit criteria.
    big = plan_create_from_template(team=team, author=po)
    _running(big, start=today - dt.timedelta(days=DAYS + 1), business_days=70)
    _criteria(big, metric_ids)
    started = time.perf_counter()
    _fill([big.pk], metric_ids, now - dt.timedelta(days=DAYS), now - dt.timedelta(hours=3))
    print(f"# filled {DAYS} days x {len(METRICS)} metrics in {time.perf_counter() - started:.1f} s")

    client = Client()
    client.force_login(po)

    # Ingestion through HTTP versus raw COPY of the same rows into the same table.
    def rows(tag: str, i: int) -> list[tuple[int, int, dt.datetime, float]]:
        base = now - dt.timedelta(hours=3) + dt.timedelta(seconds=i)  # distinct per batch
        return [
            (big.pk, metric_ids["p95_latency"], base + dt.timedelta(seconds=k), 200.0 + k % 50)
            for k in range(BATCH)
        ]

    # Warm up: the first request of a process loads the URL configuration.
    client.get(f"/api/v1/plans/{big.pk}")
    api_seconds = 0.0
    for i in range(API_BATCHES):
        body = json.dumps(
            {
                "samples": [
                    {
                        "metric": "p95_latency",
                        "observed_at": at.isoformat(),
                        "value": v,
                        "source": f"bench-api-{i}",
                    }
                    for _p, _m, at, v in rows("api", i)
                ]
            }
        )
        start = time.perf_counter()
        response = client.post(
            f"/api/v1/plans/{big.pk}/samples", body, content_type="application/json"
        )
        api_seconds += time.perf_counter() - start
        assert response.status_code == 201, response.content[:500]
        assert response.json()["stored"] == BATCH, response.json()
    copy_seconds = 0.0
    for i in range(API_BATCHES):
        buffer = io.StringIO()
        for p, m, at, v in rows("copy", i):
            buffer.write(f"{p}\t{m}\t{at.isoformat()}\t{v}\tbench-copy-{i}\t\t{now.isoformat()}\n")
        data = buffer.getvalue()
        start = time.perf_counter()
        with (
            transaction.atomic(),
            connection.cursor() as cur,
            cur.copy(
                "COPY metrics_sample (plan_id, metric_id, observed_at, value, source, "
                "external_id, ingested_at) FROM STDIN"
            ) as copy,
        ):
            copy.write(data)
        copy_seconds += time.perf_counter() - start
    total = BATCH * API_BATCHES
    figures["ingest_api_samples_per_s"] = total / api_seconds
    figures["copy_samples_per_s"] = total / copy_seconds
    figures["ingest_vs_copy"] = copy_seconds / api_seconds

    # Trigger evaluation after a 1,000-sample batch.
    samples = []
    for i in range(20):
        body = json.dumps(
            {
                "samples": [
                    {
                        "metric": "p95_latency",
                        "value": 180.0,
                        "observed_at": (now - dt.timedelta(minutes=k)).isoformat(),
                        "source": f"bench-trigger-{i}",
                    }
                    for k in range(1, 1001)
                ]
            }
        )
        response = client.post(
            f"/api/v1/plans/{big.pk}/samples", body, content_type="application/json"
        )
        assert response.status_code == 201, response.content[:500]
        start = time.perf_counter()
        triggers.triggers_evaluate_plan(plan_id=big.pk, now=timezone.now())
        samples.append((time.perf_counter() - start) * 1000)
    figures["trigger_eval_ms_p50"] = statistics.median(samples)

    # Pages of the big plan.
    for name, url in (
        ("plan_page", f"/plans/{big.pk}/"),
        ("monitoring_page", f"/plans/{big.pk}/monitoring"),
    ):
        timings = []
        client.get(url)
        for _ in range(100):
            start = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        figures[f"{name}_ms_p50"] = statistics.median(timings)
        figures[f"{name}_ms_p95"] = _p95(timings)
