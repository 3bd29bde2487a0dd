"""Percentile criteria from the sketches (docs/checks.md, "Percentiles from sketches"): data
ingested through the real write path over several days, evaluated by the check's own code, and
compared with NumPy's exact percentile and the exact order statistics of the raw samples.

Each figure must be within ``sketch.ALPHA`` (1 %) relative; the sample size and every other
aggregation stay exact."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from metrics import evaluation, sketch
from metrics import statistics as S
from metrics.ingest import samples_store
from tests.metrics.test_checks_support import bare_plan, criterion, metric

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2025, 1, 6, tzinfo=dt.UTC)
STEP = dt.timedelta(seconds=40)
DAYS = 4
# Not aligned on anything: sub-minute parts, edge minutes, edge hours and whole days.
START = T0 + dt.timedelta(hours=7, minutes=13, seconds=20)
END = T0 + dt.timedelta(days=3, hours=17, minutes=41, seconds=30)


def _values(shape: str, n: int) -> np.ndarray:
    rng = np.random.default_rng(42)
    if shape == "normal":
        return rng.normal(200, 25, n)
    if shape == "long-tailed":
        return rng.lognormal(5, 0.8, n)  # median ~150, p99 ~950
    # bimodal: fast cache hits and slow misses
    hits = rng.normal(40, 5, n)
    return np.where(rng.random(n) < 0.7, hits, rng.normal(400, 60, n))


def _ingest(plan, key: str, values: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Store ``values`` one every STEP from T0 through ``samples_store``; the observed times."""
    times = [T0 + i * STEP for i in range(values.size)]
    rows = [
        (plan.pk, metric(key).pk, t, float(v), "test", "")
        for t, v in zip(times, values, strict=True)
    ]
    for i in range(0, len(rows), 5_000):
        samples_store(rows=rows[i : i + 5_000])
    return np.array(times)


@pytest.mark.parametrize("shape", ["normal", "long-tailed", "bimodal"])
def test_percentiles_from_sketches_are_within_one_per_cent_of_the_exact_ones(team, po, shape):
    plan = bare_plan(team, po)
    values = _values(shape, int(dt.timedelta(days=DAYS) / STEP))
    times = _ingest(plan, "p95_latency", values)
    inside = values[(times >= START) & (times < END)]
    ordered = np.sort(inside)

    for q in (50, 90, 95, 99, 99.9):
        c = criterion(plan, "p95_latency", "percentile", "lt", "300", percentile=q)
        got = evaluation.criterion_evaluate(criterion=c, plan_id=plan.pk, start=START, end=END)
        e = got.estimate
        assert e.sample_size == inside.size  # exact
        assert e.value == pytest.approx(np.percentile(inside, q), rel=sketch.ALPHA), q
        lo_rank, hi_rank = S.order_statistic_ranks(n=inside.size, q=q)
        assert e.low == pytest.approx(ordered[lo_rank - 1], rel=sketch.ALPHA), q
        assert e.high == pytest.approx(ordered[hi_rank - 1], rel=sketch.ALPHA), q
        assert ordered[0] <= e.low <= e.value <= e.high <= ordered[-1]


def test_the_other_aggregations_stay_exact(team, po):
    plan = bare_plan(team, po)
    n = int(dt.timedelta(days=DAYS) / STEP)
    latency = _values("long-tailed", n)
    times = _ingest(plan, "p95_latency", latency)
    errors = np.random.default_rng(1).integers(0, 3, n).astype(float)
    requests = np.random.default_rng(2).integers(300, 900, n).astype(float)
    _ingest(plan, "errors", errors)
    _ingest(plan, "requests", requests)
    inside = (times >= START) & (times < END)
    x = latency[inside]

    def value(key: str, aggregation: str, **fields: object) -> S.Estimate:
        c = criterion(plan, key, aggregation, "lt", "1000000", **fields)
        got = evaluation.criterion_evaluate(criterion=c, plan_id=plan.pk, start=START, end=END)
        return got.estimate

    assert value("p95_latency", "total").value == pytest.approx(x.sum(), rel=1e-12)
    mean = value("p95_latency", "mean")
    assert (mean.value, mean.sample_size) == (pytest.approx(x.mean(), rel=1e-12), x.size)
    assert value("p95_latency", "min").value == x.min()
    assert value("p95_latency", "max").value == x.max()
    assert value("p95_latency", "latest").value == x[-1]
    ratio = value("errors", "ratio", denominator="requests")
    expected = 100 * errors[inside].sum() / requests[inside].sum()
    assert ratio.value == pytest.approx(expected, rel=1e-12)
    rate = value("errors", "rate_per", denominator="requests", per_n=1000)
    assert rate.value == pytest.approx(1000 * errors[inside].sum() / requests[inside].sum())
