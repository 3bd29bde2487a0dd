"""Concurrent batches on real PostgreSQL: each thread has its own connection and transaction."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import Count, Sum
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.api_keys import api_key_create
from metrics.ingest import IngestResult, samples_ingest
from metrics.models import DayRollup, HourRollup, IngestBatch, Sample
from tests.factories import running_plan

pytestmark = pytest.mark.django_db(transaction=True)

NOW = dt.datetime(2025, 5, 7, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def plan(team, po):
    return running_plan(team=team, owner=po, start_date=dt.date(2025, 5, 5), template=False)


def rows(n: int, offset: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "metric": "p95_latency",
            "observed_at": (NOW - dt.timedelta(seconds=5 * (i + offset))).isoformat(),
            "value": 100 + (i + offset) % 250,
        }
        for i in range(n)
    ]


def in_threads(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls at the same moment, each in its own thread with its own connection."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        try:
            barrier.wait(10)
            return call()
        finally:
            connection.close()

    with ThreadPoolExecutor(len(calls)) as pool:
        return [f.result(60) for f in [pool.submit(run, call) for call in calls]]


def assert_rollups_match_samples(plan) -> None:
    raw = Sample.objects.filter(plan=plan).aggregate(n=Count("id"), total=Sum("value"))
    for model in (HourRollup, DayRollup):
        rolled = model.objects.filter(plan=plan).aggregate(n=Sum("count"), total=Sum("sum"))
        assert rolled["n"] == raw["n"]
        assert rolled["total"] == pytest.approx(raw["total"])


def test_identical_batches_with_one_key_at_once_store_once_and_answer_alike(team, plan):
    batch = rows(2_000)

    def push() -> IngestResult:
        return samples_ingest(team=team, plan=plan, rows=batch, idempotency_key="same", now=NOW)

    first, second = in_threads(push, push)

    assert IngestBatch.objects.count() == 1
    assert Sample.objects.count() == 2_000
    assert sorted([first.replayed, second.replayed]) == [False, True]
    assert {**first.response, "replayed": None} == {**second.response, "replayed": None}
    assert first.stored == second.stored == 2_000
    assert_rollups_match_samples(plan)


def test_a_request_waits_for_the_uncommitted_batch_with_its_key_and_replays_it(team, plan):
    """The race made certain: the second request starts while the first has stored its batch
    but not committed; it must wait on the batch row, then replay the first answer."""
    batch = rows(500)
    stored = threading.Event()

    def slow_first() -> IngestResult:
        with transaction.atomic():
            result = samples_ingest(team=team, plan=plan, rows=batch, idempotency_key="k", now=NOW)
            stored.set()
            time.sleep(1.0)  # still uncommitted
        return result

    def second() -> tuple[IngestResult, float]:
        assert stored.wait(10)
        started = time.monotonic()
        result = samples_ingest(team=team, plan=plan, rows=batch, idempotency_key="k", now=NOW)
        return result, time.monotonic() - started

    first, (again, waited) = in_threads(slow_first, second)

    assert (first.replayed, again.replayed) == (False, True)
    assert again.batch_id == first.batch_id
    assert waited > 0.5, "the second request did not wait for the first one's batch row"
    assert IngestBatch.objects.count() == 1
    assert Sample.objects.count() == 500


def test_identical_batches_without_a_key_store_each_sample_once(team, plan):
    batch = rows(3_000)

    def push() -> IngestResult:
        return samples_ingest(team=team, plan=plan, rows=batch, now=NOW)

    a, b = in_threads(push, push)

    assert sorted([a.stored, b.stored]) == [0, 3_000]
    assert a.duplicates + b.duplicates == 3_000
    assert Sample.objects.count() == 3_000
    assert_rollups_match_samples(plan)


def test_overlapping_batches_at_once_neither_deadlock_nor_double_count(team, plan):
    one, two = rows(3_000), list(reversed(rows(3_000, offset=1_500)))

    results = in_threads(
        lambda: samples_ingest(team=team, plan=plan, rows=one, now=NOW),
        lambda: samples_ingest(team=team, plan=plan, rows=two, now=NOW),
        lambda: samples_ingest(team=team, plan=plan, rows=one[1_000:2_500], now=NOW),
    )

    assert sum(r.stored for r in results) == 4_500
    assert Sample.objects.count() == 4_500
    assert_rollups_match_samples(plan)


def test_a_new_batch_needs_no_savepoint_and_an_overlapping_one_is_retried_whole(team, plan):
    """Outside any transaction of the caller's: an all-new batch is COPYed in its own
    transaction, without a savepoint; a batch of which some samples are stored already fails
    that COPY, is rolled back whole (its batch row too) and stored again, new samples only."""
    with CaptureQueriesContext(connection) as first:
        a = samples_ingest(team=team, plan=plan, rows=rows(1_000), now=NOW, idempotency_key="a")
    with CaptureQueriesContext(connection) as second:
        b = samples_ingest(
            team=team, plan=plan, rows=rows(1_000, offset=600), now=NOW, idempotency_key="b"
        )

    assert not [q for q in first.captured_queries if "SAVEPOINT" in q["sql"]]
    assert not [q for q in second.captured_queries if "SAVEPOINT" in q["sql"]]
    # The second batch's row was claimed twice: the first claim was rolled back with its COPY.
    claims = [q for q in second.captured_queries if "INSERT INTO metrics_ingestbatch" in q["sql"]]
    assert len(claims) == 2
    assert (a.stored, a.duplicates) == (1_000, 0)
    assert (b.stored, b.duplicates) == (600, 400)
    stored = dict(IngestBatch.objects.values_list("idempotency_key", "stored"))
    assert stored == {"a": 1_000, "b": 600}
    assert Sample.objects.filter(batch_id=b.batch_id).count() == 600
    assert Sample.objects.count() == 1_600
    assert_rollups_match_samples(plan)


def test_two_http_requests_with_one_key_get_the_same_answer(team, po):
    today = timezone.localdate(timezone=dt.UTC)
    plan = running_plan(
        team=team, owner=po, start_date=today - dt.timedelta(days=2), template=False
    )
    _, key = api_key_create(team=team, name="exporter", scopes=["ingest"], created_by=po)
    now = timezone.now()
    body = json.dumps(
        [
            {"metric": "errors", "observed_at": (now - dt.timedelta(seconds=i)).isoformat(),
             "value": i % 3}
            for i in range(1_000)
        ]
    )  # fmt: skip

    def post() -> tuple[int, dict]:
        response = Client().post(
            reverse("api:plan-samples", args=[plan.pk]),
            body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "retry-1"},
        )
        return response.status_code, response.json()

    (s1, a1), (s2, a2) = in_threads(post, post)

    assert sorted([s1, s2]) == [200, 201]
    assert {**a1, "replayed": None} == {**a2, "replayed": None}
    assert a1["stored"] == 1_000
    assert IngestBatch.objects.count() == 1
    assert Sample.objects.count() == 1_000
