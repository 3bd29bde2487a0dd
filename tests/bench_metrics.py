"""The metrics half of ``make bench`` (issue #5): triggers and pages over a plan with 90 days of
per-minute data for 8 metrics. Called by ``tests.bench`` on its database. Checks have parts of
their own: ``bench_checks`` (one check, 10 vs 90 days) and ``bench_scale`` (10,000 plans sharing
a slot, real worker processes); ingestion is ``bench_ingest``'s."""

from __future__ import annotations

import datetime as dt
import json
import statistics
import time
from decimal import Decimal

import numpy as np
from django.db import connection
from django.test import Client
from django.utils import timezone

from tests.bench_timing import p95

DAYS = 90
FILL_BATCH = 10_000
METRICS = {
    # key: a plausible value of each of n samples
    "p1_defects": lambda rng, n: np.zeros(n),
    "p2_defects": lambda rng, n: np.floor(rng.random(n) * 1.02),
    "sessions": lambda rng, n: np.floor(5 + rng.random(n) * 20),
    "csat": lambda rng, n: 1 + np.floor(rng.random(n) * 5),
    "error_rate": lambda rng, n: rng.random(n) * 0.4,
    "p95_latency": lambda rng, n: 150 + rng.random(n) * 100,
    "errors": lambda rng, n: np.floor(rng.random(n) * 3),
    "requests": lambda rng, n: np.floor(300 + rng.random(n) * 600),
}


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
    """Per-minute samples for every metric from ``start`` to ``end``, stored the production way
    (``metrics.ingest.samples_store``, which keeps the rollups and sketches) in batches."""
    from metrics.ingest import samples_store

    rng = np.random.default_rng(5)
    minutes = int((end - start).total_seconds() // 60)
    chunk = max(1, FILL_BATCH // len(METRICS))  # minutes per metric in one batch
    rows: list[tuple] = []
    for plan_id in plan_ids:
        for first in range(0, minutes, chunk):
            ats = [
                start + dt.timedelta(minutes=m) for m in range(first, min(first + chunk, minutes))
            ]
            for key, values in METRICS.items():
                rows += [
                    (plan_id, metric_ids[key], at, float(v), "bench", "")
                    for at, v in zip(ats, values(rng, len(ats)), strict=True)
                ]
            if len(rows) >= FILL_BATCH:
                samples_store(rows=rows)
                rows = []
    if rows:
        samples_store(rows=rows)
    with connection.cursor() as cur:
        # As autovacuum would after a load this size: the planner needs current statistics.
        cur.execute("ANALYZE metrics_sample, metrics_hourrollup, metrics_dayrollup")


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
    # The ingestion figures are tests/bench_ingest.py's.

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

    # Pages of the big plan. A running plan opens on its cockpit (measured by the pages part,
    # ``cockpit_90d``); its document is /document.
    for name, url in (
        ("plan_document", f"/plans/{big.pk}/document"),
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
        figures[f"{name}_ms_p95"] = p95(timings)
