"""metrics.evaluation: a criterion's observations loaded from samples and rollups give the same
answers as metrics.statistics on the raw values, over exactly the right window."""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
import pytest

from metrics import evaluation, sketch
from metrics import statistics as S
from metrics.models import Sample
from tests.factories import running_plan
from tests.metrics.test_checks_support import (
    bare_plan,
    criterion,
    metric,
    store,
    store_values,
)

pytestmark = pytest.mark.django_db

UTC = dt.UTC
T0 = dt.datetime(2025, 1, 6, tzinfo=UTC)  # the plans' first day (a Monday), 00:00 UTC
MINUTE = dt.timedelta(minutes=1)


def evaluate(c, start, end):  # type: ignore[no-untyped-def]
    return evaluation.criterion_evaluate(criterion=c, plan_id=c.plan_id, start=start, end=end)


@pytest.fixture
def plan(team, po):  # type: ignore[no-untyped-def]
    return bare_plan(team, po)


# --- percentile ----------------------------------------------------------------------------------


def test_percentile_of_1000_samples_is_numpys_with_the_order_statistic_interval(plan):
    values = np.random.default_rng(7).lognormal(5.5, 0.3, 1_000)
    store_values(plan, "p95_latency", T0, values)
    c = criterion(plan, "p95_latency", "percentile", "lt", "300", percentile=95, unit="ms",
                  min_sample_size=60)  # fmt: skip

    got = evaluate(c, T0, T0 + 1_000 * MINUTE)

    expected = S.evaluate_criterion(
        aggregation="percentile", values=values, percentile_q=95, comparator="lt",
        threshold=300, min_sample_size=60, name="p95 latency", unit="ms",
    )  # fmt: skip
    # From the sketches: each figure within their stated accuracy, the sample size exact.
    rel = sketch.ALPHA
    assert got.estimate.value == pytest.approx(float(np.percentile(values, 95)), rel=rel)
    assert got.estimate.low == pytest.approx(expected.estimate.low, rel=rel)
    assert got.estimate.high == pytest.approx(expected.estimate.high, rel=rel)
    assert got.estimate.sample_size == 1_000
    assert got.estimate.method == S.ORDER_STATISTIC
    assert got.verdict == expected.verdict


@pytest.mark.parametrize("q", [50, 90, 99, 12.5])
def test_other_percentiles_match_numpy_too(plan, q):
    values = np.random.default_rng(int(q * 10)).normal(100, 15, 500)
    store_values(plan, "p95_latency", T0, values)
    c = criterion(plan, "p95_latency", "percentile", "lt", "300", percentile=q)
    est = evaluate(c, T0, T0 + 500 * MINUTE).estimate
    ref = S.percentile(values=values, q=q)
    assert est.value == pytest.approx(ref.value, rel=sketch.ALPHA)  # from the sketches
    assert est.low == pytest.approx(ref.low, rel=sketch.ALPHA)
    assert est.high == pytest.approx(ref.high, rel=sketch.ALPHA)
    assert est.sample_size == ref.sample_size


def test_a_percentile_without_enough_samples_for_an_interval_says_how_many_it_needs(plan):
    store_values(plan, "p95_latency", T0, [200.0 + i for i in range(60)])
    c = criterion(plan, "p95_latency", "percentile", "lt", "300", percentile=95,
                  min_sample_size=60)  # fmt: skip
    got = evaluate(c, T0, T0 + 60 * MINUTE)
    assert got.verdict is S.Verdict.NOT_ENOUGH_EVIDENCE
    assert got.estimate.low is None and got.estimate.sample_size == 60
    assert got.reason.endswith("(needs at least 72).")


# --- means, totals and extremes from the rollups --------------------------------------------------


def test_mean_from_rollups_equals_the_mean_of_the_raw_values_over_a_half_hour_aligned_window(
    team, po
):
    # A plan in India: its 10:00 check is due at 04:30 UTC, so a 24-hour window starts and ends
    # at :30 — whole hours in the middle, raw samples at both edges.
    plan = bare_plan(team, po, time_zone="Asia/Kolkata")
    values = np.random.default_rng(11).normal(4.3, 0.7, 3 * 1440)
    store_values(plan, "csat", T0, values)
    c = criterion(plan, "csat", "mean", "ge", "4.2", window_hours=24, min_sample_size=30)
    due_at = dt.datetime(2025, 1, 8, 4, 30, tzinfo=UTC)
    start, end = evaluation.criterion_window(window_hours=24, due_at=due_at, plan_start=T0)
    assert (start, end) == (due_at - dt.timedelta(hours=24), due_at)

    got = evaluate(c, start, end).estimate

    first = int((start - T0) / MINUTE)
    expected = S.mean(values=values[first : first + 1440])
    assert got.sample_size == expected.sample_size == 1440
    assert got.value == pytest.approx(expected.value, rel=1e-9)
    assert got.low == pytest.approx(expected.low, rel=1e-9)
    assert got.high == pytest.approx(expected.high, rel=1e-9)


def test_moments_cover_sub_minute_edges_from_the_raw_samples(plan):
    step = dt.timedelta(seconds=20)
    values = np.random.default_rng(5).uniform(0, 10, 3 * 180 * 3)  # 9 hours, 3 a minute
    store_values(plan, "error_rate", T0, values, step=step)
    times = np.array([T0 + i * step for i in range(values.size)])
    rng = random.Random(3)
    for _ in range(25):
        start = T0 + dt.timedelta(seconds=rng.uniform(0, 4 * 3600))
        end = start + dt.timedelta(seconds=rng.uniform(0, 5 * 3600))
        inside = values[(times >= start) & (times < end)]
        m = evaluation.window_moments(
            plan_id=plan.pk, metric_ids=[metric("error_rate").pk], start=start, end=end
        ).get(metric("error_rate").pk, evaluation.Moments())
        assert m.n == inside.size, (start, end)
        assert m.total == pytest.approx(float(inside.sum()), rel=1e-12, abs=1e-9)
        if inside.size:
            assert (m.minimum, m.maximum) == (inside.min(), inside.max())


def test_window_pieces_tile_the_window_without_overlap():
    rng = random.Random(1)
    for _ in range(2_000):
        start = T0 + dt.timedelta(seconds=rng.choice([0, rng.uniform(0, 86_400)]))
        end = start + dt.timedelta(
            seconds=rng.choice([0, 30, 60, 3600, rng.uniform(0, 200_000), rng.uniform(0, 9e6)])
        )
        p = evaluation.window_pieces(start=start, end=end)
        assert p.start <= p.h0 <= p.h1 <= p.end or (p.h0 == p.end)
        # Each boundary on its grid: the hours table answers exactly its buckets.
        if p.h0 < p.h1:
            assert (p.h0.minute, p.h0.second, p.h1.minute, p.h1.second) == (0, 0, 0, 0)
            assert p.h0 - p.start < dt.timedelta(hours=1) and p.end - p.h1 < dt.timedelta(hours=1)
        assert p.h0 <= p.d0 <= p.d1 <= p.h1
        if p.d0 < p.d1:  # whole UTC days
            assert (p.d0.hour, p.d0.minute, p.d1.hour, p.d1.minute) == (0, 0, 0, 0)
        # Every instant of [start, end) is in exactly one piece.
        for _ in range(5):
            x = start + (end - start) * rng.random()
            if x >= end:
                continue
            pieces = [(p.start, p.h0), (p.h0, p.d0), (p.d0, p.d1), (p.d1, p.h1), (p.h1, p.end)]
            assert sum(lo <= x < hi for lo, hi in pieces) == 1, (start, end, x, p)


def test_a_window_starting_before_pruned_samples_reads_its_first_hour_from_the_rollup(
    plan, settings
):
    """No minute rollup: a window's edge under an hour is read from the raw samples, unless they
    may be pruned; then the hour that holds the start answers (a whole-pilot window: the plan has
    no sample before its start)."""
    start = T0 + dt.timedelta(minutes=30)  # a pilot starting at local midnight, UTC+05:30
    values = np.arange(1.0, 6 * 60 + 1)  # 6 hours of per-minute samples from the start
    store_values(plan, "error_rate", start, values)
    end = start + dt.timedelta(hours=6)
    key = metric("error_rate").pk

    def moments() -> evaluation.Moments:
        found = evaluation.window_moments(plan_id=plan.pk, metric_ids=[key], start=start, end=end)
        return found[key]

    exact = moments()
    assert (exact.n, exact.total) == (360, float(values.sum()))
    # Samples before the horizon pruned (the rollups keep them): the same answer.
    settings.SAMPLE_RETENTION_DAYS = 7
    horizon = evaluation.retention_horizon()
    assert start < horizon
    Sample.objects.filter(plan=plan, observed_at__lt=start + dt.timedelta(minutes=30)).delete()
    assert moments() == exact
    pieces = evaluation.window_pieces(start=start, end=end, pruned_before=horizon)
    assert pieces.h0 == T0 and pieces.h1 == end.replace(minute=0)


def test_the_window_ends_before_the_due_time_and_starts_at_its_first_instant(plan):
    due_at = dt.datetime(2025, 1, 7, 10, 0, tzinfo=UTC)
    start = due_at - dt.timedelta(hours=2)
    tick = dt.timedelta(microseconds=1)
    store(plan, "p1_defects", [
        (start - tick, 100),  # before the window
        (start, 1),  # its first instant
        (start + dt.timedelta(minutes=59, seconds=59), 2),
        (due_at - tick, 4),  # its last instant
        (due_at, 1000),  # the next check's
    ])  # fmt: skip
    c = criterion(plan, "p1_defects", "total", "eq", "0", window_hours=2)
    got = evaluate(c, *evaluation.criterion_window(window_hours=2, due_at=due_at, plan_start=T0))
    assert (got.estimate.value, got.estimate.sample_size) == (7, 3)
    assert got.verdict is S.Verdict.NOT_MET


def test_the_seeds_p1_criterion_is_met_by_one_zero_sample(team, po):
    plan = running_plan(team=team, owner=po, start_date=T0.date())  # the built-in template
    p1 = plan.exit_criteria.select_related("metric").get(metric__key="p1_defects")
    assert (p1.aggregation, p1.comparator, p1.threshold, p1.min_sample_size) == (
        "total", "eq", 0, 1
    )  # fmt: skip
    end = T0 + dt.timedelta(days=1)

    before = evaluate(p1, T0, end)
    assert before.verdict is S.Verdict.NOT_ENOUGH_EVIDENCE  # no sample at all: not a pass

    store(plan, "p1_defects", [(T0 + dt.timedelta(hours=9), 0)])
    after = evaluate(p1, T0, end)
    assert after.verdict is S.Verdict.MET
    assert (after.estimate.value, after.estimate.sample_size) == (0, 1)
    assert after.reason == "Total P1 defects 0 defects (n = 1) = 0 defects: met."


def test_latest_max_and_min(plan):
    store(plan, "csat", [(T0 + i * MINUTE, v) for i, v in enumerate([3, 9, 1, 4])])
    # Two sources at the same instant: the one stored last is the latest.
    store(plan, "csat", [(T0 + 3 * MINUTE, 5)], source="other")
    end = T0 + dt.timedelta(hours=1)
    for agg, value in (("latest", 5), ("max", 9), ("min", 1)):
        est = evaluate(criterion(plan, "csat", agg, "ge", "4"), T0, end).estimate
        assert (est.value, est.low, est.high, est.sample_size, est.method) == (
            value, value, value, 5, S.EXACT
        ), agg  # fmt: skip


def test_no_data_is_not_enough_evidence_never_a_pass(plan):
    end = T0 + dt.timedelta(days=1)
    for agg in ("latest", "max", "min", "mean", "percentile"):
        extra = {"percentile": 95} if agg == "percentile" else {}
        got = evaluate(criterion(plan, "p95_latency", agg, "lt", "300", **extra), T0, end)
        assert got.verdict is S.Verdict.NOT_ENOUGH_EVIDENCE, agg
        assert got.estimate.value is None and "no data yet" in got.reason, agg


# --- rates and ratios ----------------------------------------------------------------------------


def test_rate_per_1000_sessions_is_the_exact_poisson_rate(plan):
    store(plan, "p2_defects", [(T0 + dt.timedelta(hours=h), 1) for h in (1, 5, 9)])
    store(plan, "sessions", [(T0 + i * MINUTE, 25) for i in range(100)])  # 2,500 sessions
    c = criterion(plan, "p2_defects", "rate_per", "lt", "2", denominator="sessions", per_n=1000,
                  unit="per 1,000 sessions", min_sample_size=1000)  # fmt: skip

    got = evaluate(c, T0, T0 + dt.timedelta(days=1))

    ref = S.rate_per(events=3, exposure=2500, per_n=1000)
    assert got.estimate == ref
    assert got.estimate.value == pytest.approx(1.2)
    assert got.verdict is S.Verdict.NOT_ENOUGH_EVIDENCE  # 1.2, but up to 3.5 per 1,000: unsure
    assert "sessions" in got.reason

    store(plan, "sessions", [(T0 + dt.timedelta(hours=2) + i * MINUTE, 50) for i in range(100)])
    more = evaluate(c, T0, T0 + dt.timedelta(days=1))  # 3 in 7,500: at most 1.17 per 1,000
    assert more.estimate == S.rate_per(events=3, exposure=7500, per_n=1000)
    assert more.verdict is S.Verdict.MET


def test_ratio_of_two_counts_in_per_cent(plan):
    store(plan, "errors", [(T0 + i * MINUTE, 1) for i in range(5)])
    store(plan, "requests", [(T0 + i * MINUTE, 200) for i in range(10)])
    c = criterion(plan, "errors", "ratio", "le", "1", denominator="requests", min_sample_size=100)
    got = evaluate(c, T0, T0 + dt.timedelta(hours=1))
    assert got.estimate == S.proportion(successes=5, trials=2000, percent=True)
    assert got.estimate.value == 0.25
    assert got.verdict is S.Verdict.MET


# --- results that cannot be evaluated are kept ---------------------------------------------------


def test_a_criterion_without_a_threshold_is_recorded_as_not_enough_evidence(plan):
    c = criterion(plan, "csat", "mean", "ge", None)
    out = evaluation.criterion_result(criterion=c, plan_id=plan.pk, start=T0, end=T0 + MINUTE)
    assert out.verdict == S.Verdict.NOT_ENOUGH_EVIDENCE
    assert out.reason == "No threshold set yet: the criterion cannot be evaluated."
    assert out.value is None and out.sample_size == 0


def test_impossible_counts_are_recorded_with_the_statistics_message(plan):
    store(plan, "errors", [(T0, 50)])
    store(plan, "requests", [(T0, 10)])  # more errors than requests
    c = criterion(plan, "errors", "ratio", "le", "1", denominator="requests")
    out = evaluation.criterion_result(criterion=c, plan_id=plan.pk, start=T0, end=T0 + MINUTE)
    assert out.verdict == S.Verdict.NOT_ENOUGH_EVIDENCE
    assert out.reason == "successes (50) cannot exceed trials (10)."
