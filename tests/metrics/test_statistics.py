"""Statistics behind exit-criterion verdicts, checked against published and hand-computed values.

Pure functions: no database. Reference values are recomputed here by an independent route
(quadratic roots for Wilson, Poisson tail probabilities for Garwood, exact binomial sums with
fractions for order statistics) and compared with textbook tables where one exists.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from catalogue import comparators
from metrics.statistics import (
    AGGREGATIONS,
    BOOTSTRAP,
    EXACT,
    EXACT_COUNT,
    ORDER_STATISTIC,
    POISSON_EXACT,
    WILSON,
    Estimate,
    Evaluation,
    Verdict,
    chi2_ppf,
    evaluate,
    evaluate_criterion,
    latest,
    maximum,
    mean,
    mean_bootstrap,
    minimum,
    norm_ppf,
    order_statistic_ranks,
    percentile,
    percentile_min_sample_size,
    proportion,
    rate_per,
    t_ppf,
    total,
)

MET, NOT_MET, NEE = Verdict.MET, Verdict.NOT_MET, Verdict.NOT_ENOUGH_EVIDENCE
Z95 = 1.959963984540054  # the 97.5th percentile of the standard normal


def vlh(e: Estimate) -> tuple[float, float, float]:
    """Value, low and high of an estimate that has all three."""
    assert e.value is not None and e.low is not None and e.high is not None, e
    return e.value, e.low, e.high


# --- Wilson ------------------------------------------------------------------------------------


def wilson_by_quadratic(x: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's bounds as the roots of (p̂ - p)² = z² p (1 - p) / n, solved for p."""
    p_hat = x / n
    a = 1 + z * z / n
    b = -(2 * p_hat + z * z / n)
    c = p_hat * p_hat
    disc = math.sqrt(b * b - 4 * a * c)
    return (-b - disc) / (2 * a), (-b + disc) / (2 * a)


@pytest.mark.parametrize(
    ("x", "n", "low", "high"),
    [
        # Newcombe (1998), "Two-sided confidence intervals for the single proportion", method 3.
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        (29, 29, 0.8830, 1.0),
        # 0/10: the upper bound is z²/(n + z²) in closed form; 5/10 is symmetric about 0.5.
        (0, 10, 0.0, 0.2775),
        (5, 10, 0.2366, 0.7634),
    ],
)
def test_wilson_matches_published_values(x: int, n: int, low: float, high: float) -> None:
    e = proportion(successes=x, trials=n)
    _, lo, hi = vlh(e)
    assert (round(lo, 4), round(hi, 4)) == (low, high)
    assert e.value == pytest.approx(x / n)
    assert e.sample_size == n and e.method == WILSON and e.confidence == 0.95


@pytest.mark.parametrize(("x", "n"), [(0, 10), (5, 10), (81, 263), (1, 1), (999, 1000), (7, 3000)])
def test_wilson_matches_the_quadratic_roots(x: int, n: int) -> None:
    e = proportion(successes=x, trials=n)
    low, high = wilson_by_quadratic(x, n)
    assert e.low == pytest.approx(max(low, 0.0), abs=1e-12)
    assert e.high == pytest.approx(min(high, 1.0), abs=1e-12)


def test_wilson_zero_successes_closed_form_and_exact_edges() -> None:
    e = proportion(successes=0, trials=10)
    assert e.low == 0.0  # exactly, not -1e-17
    assert e.high == pytest.approx(Z95**2 / (10 + Z95**2))
    assert proportion(successes=10, trials=10).high == 1.0


def test_wilson_other_confidence_levels() -> None:
    z90 = stats.norm.ppf(0.95)
    e = proportion(successes=81, trials=263, confidence=0.90)
    assert (e.low, e.high) == pytest.approx(wilson_by_quadratic(81, 263, z90))
    assert e.confidence == 0.90


def test_wilson_in_percent_is_exact_at_decimal_thresholds() -> None:
    e = proportion(successes=5, trials=1000, percent=True)
    assert e.value == 0.5  # 100·5/1000, one rounding: exactly the threshold "0.5 %"
    assert proportion(successes=7, trials=1000, percent=True).value == 0.7
    fraction = proportion(successes=81, trials=263)
    pct = proportion(successes=81, trials=263, percent=True)
    assert vlh(pct) == pytest.approx(tuple(100 * x for x in vlh(fraction)))


def test_wilson_average_coverage_is_close_to_nominal() -> None:
    # Exact coverage (a binomial sum, no simulation) averaged over p: Wilson's known property.
    n = 50
    intervals = [proportion(successes=k, trials=n) for k in range(n + 1)]
    coverages = []
    for p in np.linspace(0.01, 0.99, 99):
        pmf = stats.binom.pmf(np.arange(n + 1), n, p)
        coverages.append(sum(pmf[k] for k, e in enumerate(intervals) if e.low <= p <= e.high))
    assert 0.94 <= float(np.mean(coverages)) <= 0.96


def test_wilson_without_trials_has_nothing_to_say() -> None:
    e = proportion(successes=0, trials=0)
    assert (e.value, e.low, e.high, e.sample_size) == (None, None, None, 0)


@pytest.mark.parametrize(
    ("successes", "trials", "message"),
    [
        (11, 10, "cannot exceed"),
        (-1, 10, "whole number"),
        (2.5, 10, "whole number"),
        (1, float("nan"), "finite"),
        (float("inf"), 10, "finite"),
        (Decimal("NaN"), 10, "finite"),
        ("a", 10, "must be a number"),
    ],
)
def test_wilson_refuses_bad_counts(successes: object, trials: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        proportion(successes=successes, trials=trials)  # type: ignore[arg-type]


@pytest.mark.parametrize("confidence", [0, 1, 1.5, -0.1, float("nan")])
def test_confidence_must_be_a_probability(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence"):
        proportion(successes=1, trials=2, confidence=confidence)


# --- Garwood (exact Poisson) -------------------------------------------------------------------


def test_garwood_zero_events_upper_bound_is_3_689() -> None:
    e = rate_per(events=0, exposure=1, per_n=1)
    assert e.value == 0 and e.low == 0
    assert round(vlh(e)[2], 3) == 3.689
    assert e.high == pytest.approx(-math.log(0.025))  # P(X = 0; μ) = e^-μ = α/2
    assert e.method == POISSON_EXACT


def test_garwood_two_events_over_1000_per_1000() -> None:
    e = rate_per(events=2, exposure=1000, per_n=1000)
    assert e.value == 2
    # Standard tables of exact Poisson limits for x = 2: 0.242 to 7.225.
    _, low, high = vlh(e)
    assert (round(low, 3), round(high, 3)) == (0.242, 7.225)
    assert e.sample_size == 1000


@pytest.mark.parametrize("x", [1, 2, 3, 10, 57])
def test_garwood_bounds_are_where_the_poisson_tails_are_alpha_over_two(x: int) -> None:
    # Independent of the chi-square route: P(X ≥ x; μ_L) = α/2 and P(X ≤ x; μ_U) = α/2.
    e = rate_per(events=x, exposure=1, per_n=1)
    assert stats.poisson.sf(x - 1, e.low) == pytest.approx(0.025, rel=1e-9)
    assert stats.poisson.cdf(x, e.high) == pytest.approx(0.025, rel=1e-9)


@pytest.mark.parametrize("mu", [0.1, 0.5, 1.0, 2.5, 7.0, 20.0])
def test_garwood_coverage_is_at_least_nominal(mu: float) -> None:
    ks = range(int(mu + 15 * math.sqrt(mu) + 30))
    covered = sum(
        stats.poisson.pmf(k, mu)
        for k in ks
        if vlh(e := rate_per(events=k, exposure=1, per_n=1))[1] <= mu <= vlh(e)[2]
    )
    assert covered >= 0.95


def test_rate_scales_by_per_n_over_exposure() -> None:
    unit = rate_per(events=3, exposure=1, per_n=1)
    e = rate_per(events=3, exposure=5000, per_n=1000)
    assert e.value == 0.6
    assert vlh(e) == pytest.approx(tuple(x / 5 for x in vlh(unit)))
    _, low, high = vlh(e)
    assert (round(low, 4), round(high, 4)) == (0.1237, 1.7535)


def test_rate_without_exposure_has_nothing_to_say() -> None:
    e = rate_per(events=0, exposure=0, per_n=1000)
    assert (e.value, e.low, e.high, e.sample_size) == (None, None, None, 0)


@pytest.mark.parametrize(
    ("events", "exposure", "per_n", "message"),
    [
        (1.5, 100, 1000, "whole number"),
        (-1, 100, 1000, "whole number"),
        (1, -5, 1000, "exposure must be ≥ 0"),
        (1, 100, 0, "per_n must be > 0"),
        (1, float("inf"), 1000, "finite"),
        (float("nan"), 100, 1000, "finite"),
    ],
)
def test_rate_refuses_bad_inputs(
    events: float, exposure: float, per_n: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        rate_per(events=events, exposure=exposure, per_n=per_n)


# --- t interval and bootstrap ------------------------------------------------------------------


def test_t_interval_by_hand() -> None:
    # 1..5: mean 3, s = √2.5, se = √0.5, t(0.975; 4) = 2.776445 (tables: 2.776).
    e = mean(values=[1, 2, 3, 4, 5])
    half = 2.7764451051977987 * math.sqrt(0.5)
    assert e.value == 3
    assert (e.low, e.high) == pytest.approx((3 - half, 3 + half), abs=1e-12)
    _, low, high = vlh(e)
    assert (round(low, 4), round(high, 4)) == (1.0368, 4.9632)


@pytest.mark.parametrize("confidence", [0.95, 0.90, 0.99])
def test_t_interval_agrees_with_scipy(confidence: float) -> None:
    values = [4.1, 5.0, 3.2, 4.8, 4.4, 2.9, 5.0, 4.6, 3.9, 4.2, 4.7, 3.5]
    e = mean(values=values, confidence=confidence)
    low, high = stats.t.interval(
        confidence, len(values) - 1, loc=np.mean(values), scale=stats.sem(values)
    )
    assert (e.low, e.high) == pytest.approx((low, high), rel=1e-12)
    assert e.value == pytest.approx(np.mean(values), rel=1e-15)
    assert e.sample_size == 12


def test_t_interval_edges() -> None:
    assert mean(values=[]) == Estimate(None, None, None, 0, "t", 0.95, "Mean")
    one = mean(values=[4.0])
    assert (one.value, one.low, one.high, one.sample_size) == (4.0, None, None, 1)
    same = mean(values=[4.2] * 50)
    assert same.value == same.low == same.high == 4.2  # no summation drift below the threshold
    assert mean(values=np.array([1, 2, 3])).value == 2  # numpy arrays and ints are fine
    assert mean(values=[Decimal("4.5"), Decimal("3.5")]).value == 4.0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -math.inf, Decimal("NaN")])
def test_values_must_be_finite(bad: object) -> None:
    for estimator in (mean, total, latest, maximum, minimum):
        with pytest.raises(ValueError, match=r"finite numbers; 1 are not \(first at index 2"):
            estimator(values=[1.0, 2.0, bad, 3.0])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="finite"):
        percentile(values=[1.0, bad], q=95)  # type: ignore[list-item]


def test_values_must_be_a_flat_list_of_numbers() -> None:
    with pytest.raises(ValueError, match="must be numbers"):
        mean(values=["x"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="flat"):
        mean(values=[[1.0, 2.0]])  # type: ignore[list-item]


def test_bootstrap_is_deterministic_with_a_seed_and_brackets_the_mean() -> None:
    values = [5, 5, 5, 4, 5, 1, 5, 4, 2, 5, 5, 5, 3, 5, 4, 5, 1, 5, 5, 4]
    first = mean_bootstrap(values=values, seed=42)
    assert first == mean_bootstrap(values=values, seed=42)
    assert first.method == BOOTSTRAP and first.value == pytest.approx(np.mean(values))
    value, low, high = vlh(first)
    assert low < value < high
    # Left-skewed scores: BCa's interval is asymmetric (longer towards the low tail).
    assert value - low > high - value


def test_bootstrap_is_close_to_t_for_a_large_symmetric_sample() -> None:
    values = np.random.default_rng(1).normal(4.3, 0.5, 2000)
    boot = mean_bootstrap(values=values, seed=1, n_resamples=2000)
    t = mean(values=values)
    assert boot.low == pytest.approx(t.low, abs=0.01)
    assert boot.high == pytest.approx(t.high, abs=0.01)


def test_bootstrap_edges() -> None:
    assert mean_bootstrap(values=[], seed=1).value is None
    one = mean_bootstrap(values=[3.0], seed=1)
    assert (one.value, one.low, one.high) == (3.0, None, None)
    same = mean_bootstrap(values=[5.0] * 30, seed=1)
    assert same.value == same.low == same.high == 5.0


# --- order-statistic interval for percentiles --------------------------------------------------


def ranks_by_hand(n: int, q: Fraction, tail: Fraction) -> tuple[int, int] | None:
    """Equal-tailed ranks from exact binomial sums in rational arithmetic (None: out of 1..n)."""
    cdf, running = [], Fraction(0)
    for k in range(n + 1):
        running += math.comb(n, k) * q**k * (1 - q) ** (n - k)
        cdf.append(running)
    lower = max(k for k in range(n + 1) if cdf[k] <= tail) + 1
    upper = min(m for m in range(n + 1) if 1 - cdf[m] <= tail) + 1
    return (lower, upper) if lower >= 1 and upper <= n else None


def test_order_statistic_ranks_for_n_100_p95() -> None:
    assert ranks_by_hand(100, Fraction(95, 100), Fraction(25, 1000)) == (90, 100)
    assert order_statistic_ranks(n=100, q=95) == (90, 100)
    # The coverage that choice guarantees: P(90 ≤ B ≤ 99) for B ~ Binomial(100, 0.95).
    coverage = stats.binom.cdf(99, 100, 0.95) - stats.binom.cdf(89, 100, 0.95)
    assert coverage == pytest.approx(0.98261, abs=1e-5)


def test_order_statistic_ranks_for_the_median_match_the_textbook() -> None:
    # Conover, Practical Nonparametric Statistics: n = 10 → x(2)..x(9), coverage 0.9785.
    assert order_statistic_ranks(n=10, q=50) == (2, 9)
    # n = 6 is the smallest median interval at 95 %: [min, max], coverage 1 - 2/64.
    assert order_statistic_ranks(n=6, q=50) == (1, 6)
    assert order_statistic_ranks(n=5, q=50) is None
    assert percentile_min_sample_size(q=50) == 6


@pytest.mark.parametrize(
    ("n", "q", "confidence"),
    [
        (100, 95, 0.95),
        (1000, 95, 0.99),
        (72, 95, 0.95),
        (71, 95, 0.95),
        (37, 10, 0.9),
        (367, 99, 0.95),
        (368, 99, 0.95),
        (500, 99.5, 0.95),
    ],
)
def test_order_statistic_ranks_agree_with_exact_arithmetic(
    n: int, q: float, confidence: float
) -> None:
    tail = (1 - Fraction(confidence).limit_denominator(1000)) / 2
    by_hand = ranks_by_hand(n, Fraction(q).limit_denominator(1000) / 100, tail)
    assert order_statistic_ranks(n=n, q=q, confidence=confidence) == by_hand


def _ranks_with_scipy_binom(n: int, q: float, confidence: float) -> tuple[int, int] | None:
    """The ranks as first written, with a frozen ``scipy.stats.binom``: the reference the faster
    special-function version must match exactly."""
    tail = (1 - confidence) / 2
    binom = stats.binom(n, q / 100)
    k = int(binom.ppf(tail))
    while k + 1 <= n and binom.cdf(k + 1) <= tail:
        k += 1
    while k >= 0 and binom.cdf(k) > tail:
        k -= 1
    m = int(binom.isf(tail))
    while m - 1 >= 0 and binom.sf(m - 1) <= tail:
        m -= 1
    while binom.sf(m) > tail:
        m += 1
    return None if k + 1 < 1 or m + 1 > n else (k + 1, m + 1)


def test_order_statistic_ranks_are_those_of_scipy_stats_binom() -> None:
    rng = np.random.default_rng(15)
    cases = [(n, q, 0.95) for q in (1, 50, 90, 95, 99, 99.9) for n in range(1, 160, 7)]
    cases += [
        (int(n), float(q), float(c))
        for n, q, c in zip(
            rng.integers(160, 3_000_000, 60),
            rng.choice([0.5, 5, 25, 50, 75, 95, 99, 99.5], 60),
            rng.choice([0.9, 0.95, 0.99], 60),
            strict=True,
        )
    ]
    for n, q, c in cases:
        assert order_statistic_ranks(n=n, q=q, confidence=c) == _ranks_with_scipy_binom(n, q, c)


def test_the_quantile_functions_are_scipy_stats_ones() -> None:
    for q in (0.005, 0.025, 0.05, 0.5, 0.9, 0.95, 0.975, 0.995):
        assert norm_ppf(q) == stats.norm.ppf(q)
        for df in (1, 2, 3, 7, 29, 30, 99, 1_000, 129_599):
            assert t_ppf(q, df) == stats.t.ppf(q, df)
            assert chi2_ppf(q, df) == stats.chi2.ppf(q, df)


def test_too_few_observations_for_a_p95_interval() -> None:
    values = list(range(100, 120))
    e = percentile(values=values, q=95)
    assert e.value == pytest.approx(np.percentile(values, 95))
    assert (e.low, e.high, e.sample_size) == (None, None, 20)
    # ln(0.025) / ln(0.95) = 71.9: from 72 observations the maximum is a valid upper bound.
    assert percentile_min_sample_size(q=95) == 72
    assert order_statistic_ranks(n=71, q=95) is None
    assert order_statistic_ranks(n=72, q=95) == (64, 72)
    assert percentile_min_sample_size(q=99) == 368


def test_percentile_value_is_numpy_linear_and_interval_is_order_statistics() -> None:
    values = np.random.default_rng(3).permutation(np.arange(1, 101, dtype=float))
    e = percentile(values=values, q=95)
    assert e.value == pytest.approx(95.05)  # type 7: x(95) + 0.05 · (x(96) - x(95))
    assert (e.low, e.high) == (90.0, 100.0)
    assert e.method == ORDER_STATISTIC and e.label == "95th percentile of"
    assert percentile(values=values, q=Decimal("95")) == e


@pytest.mark.parametrize("q", [0, 100, -1, 101, float("nan")])
def test_percentile_must_be_strictly_between_0_and_100(q: float) -> None:
    with pytest.raises(ValueError, match="percentile"):
        percentile(values=[1.0, 2.0], q=q)


# --- exact statistics --------------------------------------------------------------------------


def test_exact_statistics() -> None:
    assert total(values=[0, 1, 0, 2]) == Estimate(3.0, 3.0, 3.0, 4, EXACT_COUNT, 0.95, "Total")
    assert total(values=[]) == Estimate(0.0, 0.0, 0.0, 0, EXACT_COUNT, 0.95, "Total")
    assert latest(values=[3, 9, 1]).value == 1  # values come in observed_at order
    assert maximum(values=[3, 9, 1]).value == 9
    assert minimum(values=[3, 9, 1]).value == 1
    e = maximum(values=[3, 9, 1])
    assert (e.low, e.high, e.sample_size, e.method) == (9, 9, 3, EXACT)
    assert latest(values=[]).value is None


# --- evaluate: the verdict rule ----------------------------------------------------------------


def exact(value: float, n: int = 100) -> Estimate:
    return Estimate(value, value, value, n, EXACT)


def interval(low: float | None, high: float | None, n: int = 100) -> Estimate:
    value = None if low is None or high is None else (low + high) / 2
    return Estimate(value if value is not None else 1.0, low, high, n, "t")


def verdict(estimate: Estimate, comparator: str, threshold: float, min_n: int = 30) -> Verdict:
    return evaluate(
        estimate=estimate, comparator=comparator, threshold=threshold, min_sample_size=min_n
    ).verdict


@pytest.mark.parametrize(
    ("comparator", "at", "below", "above"),
    [
        ("lt", NOT_MET, MET, NOT_MET),
        ("le", MET, MET, NOT_MET),
        ("eq", MET, NOT_MET, NOT_MET),
        ("ge", MET, NOT_MET, MET),
        ("gt", NOT_MET, NOT_MET, MET),
    ],
)
def test_exact_values_at_below_and_above_the_threshold(
    comparator: str, at: Verdict, below: Verdict, above: Verdict
) -> None:
    assert verdict(exact(10), comparator, 10) == at
    assert verdict(exact(9.999), comparator, 10) == below
    assert verdict(exact(10.001), comparator, 10) == above


@pytest.mark.parametrize(
    ("comparator", "low", "high", "expected"),
    [
        # Whole interval on one side, or touching the threshold with a bound.
        ("lt", 1, 9, MET),
        ("lt", 1, 10, NEE),  # the high end (10) does not satisfy "< 10"
        ("lt", 10, 12, NOT_MET),
        ("le", 1, 10, MET),
        ("le", 10, 12, NEE),
        ("le", 10.5, 12, NOT_MET),
        ("ge", 10, 12, MET),
        ("ge", 8, 10, NEE),
        ("ge", 8, 9.5, NOT_MET),
        ("gt", 10.5, 12, MET),
        ("gt", 10, 12, NEE),
        ("gt", 8, 10, NOT_MET),
        # Straddling for every comparator.
        ("lt", 9, 11, NEE),
        ("le", 9, 11, NEE),
        ("ge", 9, 11, NEE),
        ("gt", 9, 11, NEE),
        # Equality: only a zero-width interval at the threshold establishes it.
        ("eq", 9, 11, NEE),
        ("eq", 10, 10, MET),
        ("eq", 10, 11, NEE),
        ("eq", 11, 12, NOT_MET),
        ("eq", 8, 9, NOT_MET),
    ],
)
def test_interval_rule(comparator: str, low: float, high: float, expected: Verdict) -> None:
    assert verdict(interval(low, high), comparator, 10) == expected


def test_below_min_sample_size_is_not_enough_evidence_whatever_the_value() -> None:
    assert verdict(exact(0, n=29), "eq", 0, min_n=30) == NEE
    assert verdict(exact(0, n=30), "eq", 0, min_n=30) == MET
    assert verdict(interval(20, 30, n=5), "gt", 10, min_n=30) == NEE
    assert verdict(exact(0, n=0), "eq", 0, min_n=0) == MET


def test_missing_value_or_bounds_is_not_enough_evidence() -> None:
    assert verdict(Estimate(None, None, None, 0, "t"), "ge", 1, min_n=0) == NEE
    assert verdict(Estimate(5.0, None, None, 100, ORDER_STATISTIC), "lt", 300) == NEE
    assert verdict(Estimate(500.0, None, 600.0, 100, ORDER_STATISTIC), "lt", 300) == NEE
    assert verdict(Estimate(500.0, 400.0, None, 100, ORDER_STATISTIC), "lt", 300) == NEE


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": float("nan")}, "threshold must be a finite number"),
        ({"threshold": float("inf")}, "threshold must be a finite number"),
        ({"threshold": Decimal("NaN")}, "threshold must be a finite number"),
        ({"estimate": Estimate(float("nan"), 1, 2, 50, "t")}, "value must be a finite"),
        ({"estimate": Estimate(1.5, 1, float("inf"), 50, "t")}, "high must be a finite"),
        ({"estimate": Estimate(1.5, 2, 1, 50, "t")}, "exceeds its high"),
        ({"estimate": Estimate(1.5, 1, 2, -1, "t")}, "sample_size"),
        ({"comparator": "ne"}, "Unknown comparator"),
        ({"min_sample_size": -1}, "min_sample_size"),
        ({"min_sample_size": 2.5}, "min_sample_size"),
    ],
)
def test_evaluate_refuses_what_cannot_be_compared(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {
        "estimate": exact(1),
        "comparator": "ge",
        "threshold": 1,
        "min_sample_size": 1,
    }
    with pytest.raises(ValueError, match=message):
        evaluate(**(arguments | kwargs))  # type: ignore[arg-type]


def test_decimal_thresholds_are_accepted() -> None:
    e = evaluate(
        estimate=exact(4.2), comparator="ge", threshold=Decimal("4.2000"), min_sample_size=1
    )
    assert e.verdict == MET and e.threshold == 4.2


def test_reasons_read_as_sentences() -> None:
    csat = Estimate(4.31, 4.18, 4.44, 120, "t", 0.95, "Mean")
    e = evaluate(estimate=csat, comparator="ge", threshold=4.2, min_sample_size=30, name="CSAT")
    assert e.reason == (
        "Mean CSAT 4.31 (95 % CI 4.18–4.44, n = 120) ≥ 4.2 not yet established: "
        "the interval straddles the threshold."
    )
    few = evaluate(
        estimate=Estimate(4.5, 4.0, 5.0, 12, "t", 0.95, "Mean"), comparator="ge", threshold=4.2,
        min_sample_size=30, name="CSAT", sample_noun="responses",
    )  # fmt: skip
    assert few.reason.startswith("Only 12 of the required 30 responses")
    met = evaluate(estimate=exact(0, n=3), comparator="eq", threshold=0, min_sample_size=1)
    assert met.reason == "Value 0 (n = 3) = 0: met."
    assert Verdict.NOT_ENOUGH_EVIDENCE == "not_enough_evidence"  # stored as is


# --- evaluate_criterion with the seed plan's criteria -------------------------------------------


def test_seed_p1_defects_total_equals_zero() -> None:
    def p1(values: list[float]) -> Verdict:
        return evaluate_criterion(
            aggregation="total", comparator="eq", threshold=Decimal("0"), min_sample_size=1,
            values=values, name="P1 defects",
        ).verdict  # fmt: skip

    assert p1([0]) == MET
    assert p1([0, 0, 0]) == MET
    assert p1([1]) == NOT_MET
    assert p1([0, 1, 0]) == NOT_MET
    assert p1([]) == NEE


def test_seed_p2_defects_below_2_per_1000_sessions() -> None:
    def p2(defects: int, sessions: int) -> tuple[Verdict, float | None]:
        e = evaluate_criterion(
            aggregation="rate_per", comparator="lt", threshold=Decimal("2"),
            min_sample_size=1000, numerator=defects, denominator=sessions, per_n=1000,
            name="P2 defects", sample_noun="sessions",
        )  # fmt: skip
        return e.verdict, e.estimate.high

    verdict_, high = p2(3, 5000)  # 0.6 per 1,000, 95 % CI 0.124–1.75: the upper bound < 2
    assert verdict_ == MET and high == pytest.approx(1.7535, abs=1e-4)
    assert p2(10, 5000)[0] == NEE  # 2.0 per 1,000, CI 0.96–3.68 straddles 2
    assert p2(30, 5000)[0] == NOT_MET  # 6.0 per 1,000, CI 4.05–8.57
    assert p2(0, 999)[0] == NEE  # below the 1,000 sessions asked for
    assert p2(0, 1000)[0] == NEE  # 0 defects, but the upper bound 3.69 per 1,000 is not < 2
    assert p2(0, 2000)[0] == MET  # upper bound 1.84 per 1,000


def test_seed_csat_mean_at_least_4_2() -> None:
    def csat(values: list[int]) -> Evaluation:
        return evaluate_criterion(
            aggregation="mean", comparator="ge", threshold=Decimal("4.2"), min_sample_size=30,
            values=values, name="CSAT", unit="/ 5", sample_noun="responses",
        )  # fmt: skip

    good = csat([5] * 70 + [4] * 25 + [3] * 5)  # mean 4.65, CI 4.53–4.77
    assert good.verdict == MET
    assert csat([5] * 20 + [4] * 10 + [3] * 5).verdict == NEE  # mean 4.43, CI 4.18–4.68
    assert csat([4] * 60 + [3] * 40).verdict == NOT_MET  # mean 3.6
    few = csat([5] * 29)
    assert few.verdict == NEE and few.reason.startswith("Only 29 of the required 30 responses")


def test_seed_error_rate_at_most_half_a_per_cent() -> None:
    def errors(failed: int, requests: int) -> Verdict:
        return evaluate_criterion(
            aggregation="ratio", comparator="le", threshold=Decimal("0.5"), min_sample_size=1000,
            numerator=failed, denominator=requests, name="errors", sample_noun="requests",
        ).verdict  # fmt: skip

    assert errors(12, 10_000) == MET  # 0.12 %, CI 0.069–0.21 %
    assert errors(50, 10_000) == NEE  # exactly 0.5 %: the interval straddles it
    assert errors(120, 10_000) == NOT_MET  # 1.2 %, CI 1.0–1.43 %
    assert errors(0, 999) == NEE
    # The seed plan's own version: the mean of a per-minute error-rate gauge (in %).
    gauge = evaluate_criterion(
        aggregation="mean", comparator="le", threshold=Decimal("0.5"), min_sample_size=60,
        values=[0.2, 0.3, 0.25, 0.35] * 30,
    )  # fmt: skip
    assert gauge.verdict == MET


def test_seed_p95_latency_below_300_ms() -> None:
    rng = np.random.default_rng(5)

    def latency(values: np.ndarray) -> Evaluation:
        return evaluate_criterion(
            aggregation="percentile", percentile_q=Decimal("95"), comparator="lt",
            threshold=Decimal("300"), min_sample_size=60, values=values, name="p95 latency",
            unit="ms",
        )  # fmt: skip

    assert latency(rng.uniform(100, 280, 200)).verdict == MET
    assert latency(rng.uniform(250, 400, 200)).verdict == NOT_MET
    close = latency(np.linspace(0, 316, 200))  # p95 ≈ 300, CI x(184)–x(197) ≈ 291–311
    assert vlh(close.estimate)[1] < 300 < vlh(close.estimate)[2]
    assert close.verdict == NEE
    short = latency(rng.uniform(100, 200, 65))
    assert short.verdict == NEE  # above min_sample_size 60, below the 72 an interval needs
    assert short.estimate.low is None
    assert short.reason.endswith("(needs at least 72).")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"aggregation": "median", "values": [1]}, "Unknown aggregation"),
        ({"aggregation": "mean"}, "needs values"),
        ({"aggregation": "percentile", "values": [1]}, "needs percentile_q"),
        ({"aggregation": "ratio", "numerator": 1}, "numerator and a denominator"),
        ({"aggregation": "rate_per", "numerator": 1, "denominator": 10}, "needs per_n"),
        ({"aggregation": "ratio", "numerator": 11, "denominator": 10}, "cannot exceed"),
        ({"aggregation": "mean", "values": [1.0, float("nan")]}, "finite"),
    ],
)
def test_evaluate_criterion_refuses_incomplete_inputs(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate_criterion(comparator="lt", threshold=1, min_sample_size=0, **kwargs)  # type: ignore[arg-type]


def test_evaluate_criterion_covers_every_aggregation() -> None:
    values = [3.0, 9.0, 1.0]
    for aggregation, expected in [("latest", 1.0), ("max", 9.0), ("min", 1.0), ("total", 13.0)]:
        e = evaluate_criterion(
            aggregation=aggregation, comparator="ge", threshold=1, min_sample_size=1, values=values
        )
        assert e.estimate.value == expected and e.verdict == MET


# --- properties, on seeded random inputs -------------------------------------------------------


def test_properties_of_the_intervals() -> None:
    rng = np.random.default_rng(2024)
    for _ in range(300):
        n = int(rng.integers(1, 5000))
        x = int(rng.integers(0, n + 1))
        confidence = float(rng.uniform(0.8, 0.999))
        w = proportion(successes=x, trials=n, confidence=confidence)
        value, low, high = vlh(w)
        assert 0 <= low <= value <= high <= 1
        r = rate_per(events=x, exposure=float(rng.uniform(1, 1e6)), per_n=1000)
        value, low, high = vlh(r)
        assert 0 <= low <= value <= high
        sample = rng.lognormal(5, 1, int(rng.integers(2, 400)))
        m = mean(values=sample, confidence=confidence)
        value, low, high = vlh(m)
        assert low <= value <= high
        q = float(rng.uniform(1, 99))
        p = percentile(values=sample, q=q, confidence=confidence)
        assert (p.low is None) == (
            sample.size < percentile_min_sample_size(q=q, confidence=confidence)
        )
        if p.low is not None:
            value, low, high = vlh(p)
            assert low <= value <= high


def test_properties_of_the_verdict_rule() -> None:
    rng = np.random.default_rng(7)
    for _ in range(2000):
        low, high = sorted(rng.normal(0, 3, 2).round(1))
        threshold = round(float(rng.normal(0, 3)), 1)
        comparator = str(rng.choice(["lt", "le", "eq", "ge", "gt"]))
        narrow = verdict(interval(low, high), comparator, threshold)
        wide = verdict(interval(low - 1, high + 1), comparator, threshold)
        # More uncertainty never decides what less could not, and never reverses a decision.
        assert wide in (NEE, narrow)
        # An exact value decides exactly as the plain comparison does.
        satisfied = {
            "lt": low < threshold, "le": low <= threshold, "eq": low == threshold,
            "ge": low >= threshold, "gt": low > threshold,
        }[comparator]  # fmt: skip
        assert verdict(exact(low), comparator, threshold) == (MET if satisfied else NOT_MET)


def test_names_agree_with_the_exit_criterion_model() -> None:
    from pilots.models.sections import COMPARATORS, ExitCriterion

    assert set(AGGREGATIONS) == set(ExitCriterion.Aggregation.values)
    assert tuple(COMPARATORS) == comparators.CODES
    e = evaluate_criterion(
        aggregation=ExitCriterion.Aggregation.TOTAL, comparator=COMPARATORS[2], threshold=0,
        min_sample_size=1, values=[0],
    )  # fmt: skip
    assert e.verdict == MET and e.comparator == "eq"
