"""The rollups ingestion keeps, against the raw samples: hour and day aggregates and the
hour and day sketches stay exactly what the samples give, whatever overlaps and retries arrive, and
``updated_at`` moves only where new samples landed."""

from __future__ import annotations

import datetime as dt
import math
import random

import pytest
from django.db import connection
from django.db.models import ProtectedError

from catalogue.models import MetricDefinition
from metrics import sketch
from metrics.ingest import samples_ingest, samples_store
from metrics.models import DayRollup, HourRollup, Sample
from tests.factories import running_plan

pytestmark = pytest.mark.django_db

UTC = dt.UTC
NOW = dt.datetime(2025, 5, 7, 12, 0, tzinfo=UTC)
START = dt.date(2025, 5, 5)
LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=UTC)

# Each rollup table, its unit, and whether it keeps a sketch.
TABLES = (
    ("metrics_hourrollup", "hour", True),
    ("metrics_dayrollup", "day", True),
)


@pytest.fixture
def plan(team, po):
    return running_plan(team=team, owner=po, start_date=START, template=False)


@pytest.fixture
def metrics():
    return dict(MetricDefinition.objects.filter(team=None).values_list("key", "pk"))


def _values(rng: random.Random, n: int) -> list[float]:
    """Long-tailed latencies, some zeros, negative deltas and exact repeats."""
    return [
        rng.choice([0.0, -rng.lognormvariate(1, 1), 200.0, rng.lognormvariate(5, 1.2)])
        for _ in range(n)
    ]


def _rows(plan, metrics, rng: random.Random, n: int) -> list[tuple]:
    keys = ["p95_latency", "error_rate", "csat"]
    values = _values(rng, n)
    return [
        (
            plan.pk,
            metrics[rng.choice(keys)],
            NOW - dt.timedelta(seconds=rng.randrange(0, 2 * 86_400 + 3_600)),
            value,
            rng.choice(["api", "grafana"]),
            "",
        )
        for value in values
    ]


def _stored(table: str, sketched: bool) -> dict[tuple, tuple]:
    sketch_columns = ", array_lower(sketch, 1), sketch" if sketched else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT plan_id, metric_id, bucket, "count", "sum", sum_sq, "min", "max"'  # noqa: S608
            f"{sketch_columns} FROM {table}"
        )
        return {(r[0], r[1], r[2]): r[3:] for r in cursor.fetchall()}


def _rebuilt(unit: str, sketched: bool) -> dict[tuple, tuple]:
    """What the rollup should hold, aggregated afresh from the raw samples in SQL."""
    sketch_columns = (
        ", array_lower(metrics_sketch_agg(k, n::integer), 1), metrics_sketch_agg(k, n::integer)"
        if sketched
        else ""
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT plan_id, metric_id, bucket, sum(n), sum(s), sum(sq), min(lo), max(hi)
                   {sketch_columns}
            FROM (SELECT plan_id, metric_id, date_trunc(%s, observed_at, 'UTC') AS bucket,
                         metrics_sketch_key(value) AS k, count(*) AS n, sum(value) AS s,
                         sum(value * value) AS sq, min(value) AS lo, max(value) AS hi
                    FROM metrics_sample GROUP BY 1, 2, 3, 4) AS bins
            GROUP BY 1, 2, 3
            """,  # noqa: S608 - fixed column list
            [unit],
        )
        return {(r[0], r[1], r[2]): r[3:] for r in cursor.fetchall()}


def _assert_rollups_equal_the_samples() -> None:
    for table, unit, sketched in TABLES:
        stored, expected = _stored(table, sketched), _rebuilt(unit, sketched)
        assert stored.keys() == expected.keys(), table
        for key, row in stored.items():
            want = expected[key]
            assert (row[0], row[3], row[4]) == (want[0], want[3], want[4]), (table, key)
            assert row[1] == pytest.approx(want[1]) and row[2] == pytest.approx(want[2])
            if sketched:
                assert row[5:] == want[5:], (table, key)  # same bounds, same counts


def _assert_sketches_match_python() -> None:
    """The database's bins are the bins metrics.sketch computes from the same values."""
    samples = list(Sample.objects.values_list("plan_id", "metric_id", "observed_at", "value"))
    for model, unit in ((HourRollup, "hour"), (DayRollup, "day")):
        by_bucket: dict[tuple, list[float]] = {}
        for plan_id, metric_id, at, value in samples:
            bucket = at.replace(minute=0, second=0, microsecond=0)
            if unit == "day":
                bucket = bucket.replace(hour=0)
            by_bucket.setdefault((plan_id, metric_id, bucket), []).append(value)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT plan_id, metric_id, bucket, array_lower(sketch, 1), sketch "  # noqa: S608
                f"FROM {model._meta.db_table}"
            )
            stored = {
                (p, m, b): sketch.Sketch.of([(lo, s)]) for p, m, b, lo, s in cursor.fetchall()
            }
        assert stored.keys() == by_bucket.keys()
        for key, values in by_bucket.items():
            want = sketch.Sketch.of_values(values)
            got = stored[key]
            assert (got.lower, got.counts.tolist()) == (want.lower, want.counts.tolist()), key


def test_rollups_and_sketches_equal_the_raw_samples_after_overlaps_and_a_retry(plan, metrics):
    rng = random.Random(15)
    rows = _rows(plan, metrics, rng, 3_000)
    rows += rows[:100]  # duplicates inside a batch
    first, second, third = rows[:1_500], rows[1_000:2_500], rows[2_000:]

    new = [samples_store(rows=batch) for batch in (first, second, third, first)]

    assert new[-1] == 0  # the retry stores nothing
    assert sum(new) == Sample.objects.count()
    assert DayRollup.objects.filter(plan=plan).count() == 3 * 3  # three UTC days, 3 metrics
    _assert_rollups_equal_the_samples()
    _assert_sketches_match_python()


def test_the_api_path_keeps_the_day_rollup_and_sketches_too(team, plan):
    rows = [
        {
            "metric": "p95_latency",
            "observed_at": (NOW - dt.timedelta(minutes=3 * i)).isoformat(),
            "value": 150 + i % 97,
        }
        for i in range(800)
    ]
    samples_ingest(team=team, rows=rows, plan=plan, now=NOW)
    samples_ingest(team=team, rows=rows[300:], plan=plan, now=NOW, idempotency_key="k")
    samples_ingest(team=team, rows=rows[300:], plan=plan, now=NOW, idempotency_key="k")

    assert Sample.objects.count() == 800
    assert sum(DayRollup.objects.values_list("count", flat=True)) == 800
    _assert_rollups_equal_the_samples()
    _assert_sketches_match_python()


def test_updated_at_moves_only_for_buckets_that_got_new_samples(plan, metrics):
    latency = metrics["p95_latency"]

    def at(day: int, hour: int, minute: int) -> dt.datetime:
        return dt.datetime(2025, 5, 5 + day, hour, minute, tzinfo=UTC)

    samples_store(
        rows=[
            (plan.pk, latency, at(0, 10, 0), 1.0, "api", ""),
            (plan.pk, latency, at(1, 10, 0), 2.0, "api", ""),
            (plan.pk, latency, at(1, 11, 0), 3.0, "api", ""),
        ]
    )
    for model in (HourRollup, DayRollup):
        assert model.objects.filter(updated_at__lt=LONG_AGO).count() == 0
        model.objects.update(updated_at=LONG_AGO)

    # A retry of one sample and one new sample in day 1, 11:xx.
    samples_store(
        rows=[
            (plan.pk, latency, at(1, 10, 0), 2.0, "api", ""),
            (plan.pk, latency, at(1, 11, 5), 4.0, "api", ""),
        ]
    )

    def moved(model) -> set[dt.datetime]:
        return set(model.objects.exclude(updated_at=LONG_AGO).values_list("bucket", flat=True))

    assert moved(HourRollup) == {at(1, 11, 0)}
    assert moved(DayRollup) == {at(1, 0, 0)}
    day = DayRollup.objects.get(bucket=at(1, 0, 0))
    assert (day.count, day.sum, day.min, day.max) == (3, 9.0, 2.0, 4.0)


def test_a_metric_with_samples_cannot_be_deleted_and_a_plan_takes_its_rollups_along(
    team, plan, metrics
):
    own = MetricDefinition.objects.create(
        team=team, key="basket_adds", name="Basket adds", kind="count", direction="higher"
    )
    samples_store(rows=[(plan.pk, own.pk, NOW, 3.0, "api", "")])

    with pytest.raises(ProtectedError):  # answered from the day rollups, not the samples
        own.delete()

    plan.delete()
    assert not Sample.objects.exists()
    for model in (HourRollup, DayRollup):
        assert not model.objects.exists()
    own.delete()  # nothing refers to it any more


def test_a_one_source_batch_is_stored_exactly_as_sent(plan, metrics):
    """A batch of one source (what API clients send) is written as one binary COPY buffer built
    with NumPy: every column arrives as sent (microseconds, -0.0 and the validated range's ends
    included), and its rollups and sketches equal the samples'."""
    rng = random.Random(7)
    keys = ["p95_latency", "error_rate", "csat"]
    moments = rng.sample(range(0, 2 * 86_400 * 10**6), 2_500)
    rows = [
        (plan.pk, metrics[keys[i % 3]], NOW - dt.timedelta(microseconds=m), value, "grafana", "")
        for i, (m, value) in enumerate(zip(moments, _values(rng, 2_500), strict=True))
    ]
    rows[:4] = [(*row[:3], value, *row[4:]) for row, value in
                zip(rows[:4], [-0.0, 1e-100, -1e12, 0.1 + 0.2], strict=True)]  # fmt: skip
    lone = (plan.pk, metrics["csat"], NOW, 4.0, "survey", "response-17")

    assert samples_store(rows=rows[:1_200]) == 1_200
    assert samples_store(rows=rows[1_200:], batch_id=4242) == 1_300
    assert samples_store(rows=[lone], batch_id=4243) == 1

    stored = sorted(
        Sample.objects.values_list(
            "plan_id", "metric_id", "observed_at", "value", "source", "external_id", "batch_id"
        )
    )
    sent = [(*row, None) for row in rows[:1_200]] + [(*row, 4242) for row in rows[1_200:]]
    assert stored == sorted([*sent, (*lone, 4243)])
    assert [math.copysign(1, v) for *_, v, _s, _e, _b in stored if v == 0].count(-1) >= 1
    _assert_rollups_equal_the_samples()
    _assert_sketches_match_python()
