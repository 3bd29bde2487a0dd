"""How much more evidence would decide a criterion, against intervals computed with SciPy.

Each reference below recomputes the interval from its textbook definition with SciPy (not
through ``metrics.statistics``) at the projected data, and checks that the returned ``n`` is
decided there and one observation fewer is not.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from decisions.evidence_needed import (
    EvidenceNeeded,
    evidence_for_exact,
    evidence_for_mean,
    evidence_for_percentile,
    evidence_for_rate,
    evidence_for_ratio,
    evidence_for_result,
    more_needed,
    round_2sf,
)
from metrics import statistics
from metrics.statistics import Verdict

ALPHA = 0.05


def verdict(low: float | None, high: float | None, comparator: str, threshold: float) -> str:
    """The interval rule by hand: met if the whole interval satisfies it, not met if none."""
    if low is None or high is None:
        return "undecided"
    ok = {
        "lt": lambda x: x < threshold,
        "le": lambda x: x <= threshold,
        "gt": lambda x: x > threshold,
        "ge": lambda x: x >= threshold,
    }[comparator]
    if ok(low) and ok(high):
        return "met"
    if not ok(low) and not ok(high):
        return "not_met"
    return "undecided"


def grow(count: int, base: float, m: int) -> int:
    """The documented projection: the count at the current rate, nearest whole, halves up."""
    return math.floor(count * (base + m) / base + 0.5)


# --- references with SciPy ----------------------------------------------------------------


def poisson_interval(x: int, exposure: float, per_n: float) -> tuple[float, float]:
    low = 0.0 if x == 0 else stats.chi2.ppf(ALPHA / 2, 2 * x) / 2
    high = stats.gamma.ppf(1 - ALPHA / 2, x + 1)  # = chi2(1-α/2; 2x+2)/2
    return low * per_n / exposure, high * per_n / exposure


def wilson_percent(x: int, n: int) -> tuple[float, float]:
    z = stats.norm.ppf(1 - ALPHA / 2)
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return 100 * max(0.0, centre - half), 100 * min(1.0, centre + half)


def t_interval(n: int, mean: float, sd: float) -> tuple[float | None, float | None]:
    if n < 2:
        return None, None
    half = stats.t.ppf(1 - ALPHA / 2, n - 1) * sd / math.sqrt(n)
    return mean - half, mean + half


def order_ranks(n: int, p: float) -> tuple[int, int] | None:
    """Equal-tailed ranks by brute force over every k with scipy.stats.binom."""
    k = np.arange(0, n + 1)
    cdf = stats.binom.cdf(k, n, p)
    sf = stats.binom.sf(k, n, p)  # P(B > k)
    lows = k[cdf <= ALPHA / 2]
    highs = k[sf <= ALPHA / 2]
    if lows.size == 0 or highs.size == 0:
        return None
    lower, upper = int(lows.max()) + 1, int(highs.min()) + 1
    return (lower, upper) if lower >= 1 and upper <= n else None


# --- rate per N (exact Poisson) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "exposure", "per_n", "comparator", "threshold", "expected"),
    [
        (0, 1200, 1000, "le", 1, "met"),  # "no P2 defect yet": the upper bound must come down
        (3, 2000, 1000, "le", 2, "met"),
        (9, 2000, 1000, "le", 3, "not_met"),  # 4.5 per 1,000: more data shows it is not met
        (5, 400, 100, "lt", 2, "met"),
        (5, 400, 100, "lt", 0.9, "not_met"),
        (12, 5000, 1000, "ge", 1.5, "met"),
    ],
)
def test_rate_matches_the_exact_poisson_interval(
    events: int, exposure: int, per_n: int, comparator: str, threshold: float, expected: str
) -> None:
    current = poisson_interval(events, exposure, per_n)
    assert verdict(*current, comparator, threshold) == "undecided"  # the case the page shows

    result = evidence_for_rate(
        events=events, exposure=exposure, per_n=per_n, comparator=comparator,
        threshold=threshold, per_business_day=600,
    )  # fmt: skip

    m = result.more
    assert m is not None and m > 0
    at_m = poisson_interval(grow(events, exposure, m), exposure + m, per_n)
    before = poisson_interval(grow(events, exposure, m - 1), exposure + m - 1, per_n)
    assert verdict(*at_m, comparator, threshold) == expected
    assert verdict(*before, comparator, threshold) == "undecided"
    assert result.verdict == Verdict(expected)
    assert result.business_days == pytest.approx(m / 600)
    # The evaluator itself agrees at the projected data.
    evaluation = statistics.evaluate_criterion(
        aggregation="rate_per", numerator=grow(events, exposure, m), denominator=exposure + m,
        per_n=per_n, comparator=comparator, threshold=threshold, min_sample_size=0,
    )  # fmt: skip
    assert evaluation.verdict == Verdict(expected)


def test_zero_events_reads_as_sessions_with_no_defect() -> None:
    result = evidence_for_rate(
        events=0, exposure=1200, per_n=1000, comparator="le", threshold=1,
        per_business_day=600, event_name="P2 defect",
    )  # fmt: skip

    # With no events the upper bound is −ln(α/2)·1000/E ≤ 1 exactly when E ≥ 3,688.9.
    needed = math.ceil(-math.log(ALPHA / 2) * 1000) - 1200
    assert result.more == needed
    assert result.words() == (
        f"needs about {round_2sf(needed):,.0f} more sessions with no P2 defect, about "
        f"{round_2sf(needed / 600):g} business days at the current traffic (an estimate that "
        "assumes the current rate holds)"
    )


def test_rate_below_the_minimum_sample_size_waits_for_it() -> None:
    # 0 in 20,000 is already decided by the interval, but the criterion asks for 50,000.
    result = evidence_for_rate(
        events=0, exposure=20_000, per_n=1000, comparator="le", threshold=1,
        min_sample_size=50_000,
    )  # fmt: skip
    assert result.more == 30_000
    assert result.verdict is Verdict.MET


# --- ratio (Wilson) ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "trials", "comparator", "threshold", "expected"),
    [
        (4, 1000, "le", 0.5, "met"),
        (7, 1000, "le", 0.5, "not_met"),
        (0, 200, "lt", 1, "met"),
        (175, 200, "ge", 85, "met"),
    ],
)
def test_ratio_matches_the_wilson_interval(
    successes: int, trials: int, comparator: str, threshold: float, expected: str
) -> None:
    assert verdict(*wilson_percent(successes, trials), comparator, threshold) == "undecided"

    result = evidence_for_ratio(
        successes=successes, trials=trials, comparator=comparator, threshold=threshold
    )

    m = result.more
    assert m is not None and m > 0
    at_m = wilson_percent(grow(successes, trials, m), trials + m)
    before = wilson_percent(grow(successes, trials, m - 1), trials + m - 1)
    assert verdict(*at_m, comparator, threshold) == expected
    assert verdict(*before, comparator, threshold) == "undecided"
    assert result.unit == "requests"


# --- mean (t) ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "mean", "sd", "comparator", "threshold", "expected"),
    [
        (40, 4.3, 0.9, "ge", 4.2, "met"),
        (40, 4.1, 0.9, "ge", 4.2, "not_met"),
        (5, 320.0, 80.0, "le", 300.0, "not_met"),
        (3, 7.5, 2.0, "gt", 7.0, "met"),
    ],
)
def test_mean_matches_the_t_interval(
    n: int, mean: float, sd: float, comparator: str, threshold: float, expected: str
) -> None:
    assert verdict(*t_interval(n, mean, sd), comparator, threshold) == "undecided"

    result = evidence_for_mean(
        n=n, mean=mean, sd=sd, comparator=comparator, threshold=threshold, per_business_day=30
    )

    m = result.more
    assert m is not None and m > 0
    assert verdict(*t_interval(n + m, mean, sd), comparator, threshold) == expected
    assert verdict(*t_interval(n + m - 1, mean, sd), comparator, threshold) == "undecided"


def test_mean_of_identical_values_needs_a_second_one() -> None:
    result = evidence_for_mean(n=1, mean=4.3, sd=0, comparator="ge", threshold=4.2)
    assert (result.more, result.verdict) == (1, Verdict.MET)


# --- percentile (order statistics) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "threshold", "comparator", "size", "expected"),
    [
        (95, 230.0, "le", 200, "met"),
        (95, 215.0, "le", 200, "not_met"),
        (50, 130.0, "ge", 30, "met"),
        (99, 265.0, "lt", 150, "met"),  # no interval yet at 150 observations
    ],
)
def test_percentile_matches_the_order_statistic_interval(
    q: float, threshold: float, comparator: str, size: int, expected: str
) -> None:
    values = np.sort(np.random.default_rng(7).lognormal(5, 0.3, size=size))

    def interval(k: int) -> tuple[float | None, float | None]:
        ranks = order_ranks(k, q / 100)
        if ranks is None:
            return None, None
        # The documented projection: rank r of k at position (r - 1)/(k - 1) of the sample,
        # interpolated linearly between neighbours (type 7).
        picks = []
        for r in ranks:
            h = (r - 1) * (size - 1) / (k - 1)
            lo = math.floor(h)
            nxt = values[min(lo + 1, size - 1)]
            picks.append(float(values[lo] + (h - lo) * (nxt - values[lo])))
        return picks[0], picks[1]

    assert verdict(*interval(size), comparator, threshold) == "undecided"

    result = evidence_for_percentile(
        values=values, q=q, comparator=comparator, threshold=threshold, per_business_day=1440
    )

    m = result.more
    assert m is not None and m > 0
    assert verdict(*interval(size + m), comparator, threshold) == expected
    assert verdict(*interval(size + m - 1), comparator, threshold) == "undecided"


def test_percentile_with_too_few_values_for_any_interval() -> None:
    # p95 has no two-sided 95 % interval below 72 observations, whatever the values.
    values = np.linspace(100, 120, 40)
    result = evidence_for_percentile(values=values, q=95, comparator="le", threshold=300)
    assert result.more == 72 - 40
    assert result.verdict is Verdict.MET


# --- edge cases --------------------------------------------------------------------------------


def test_already_decided_needs_nothing_more() -> None:
    result = evidence_for_rate(
        events=0, exposure=10_000, per_n=1000, comparator="le", threshold=1, per_business_day=600
    )
    assert (result.more, result.business_days, result.verdict) == (0, 0.0, Verdict.MET)
    assert result.words() == "decided with the evidence so far"


def test_estimate_on_the_threshold_never_decides() -> None:
    # 2 per 1,000 against "≤ 2": every projected interval contains 2.
    result = evidence_for_rate(
        events=2, exposure=1000, per_n=1000, comparator="le", threshold=2, per_business_day=600
    )
    assert result == EvidenceNeeded(None, "sessions", None, None, "")
    assert "will not decide it" in result.words()
    assert evidence_for_mean(n=50, mean=4.2, sd=0.8, comparator="ge", threshold=4.2).more is None


def test_equality_with_any_spread_never_decides() -> None:
    assert evidence_for_mean(n=50, mean=4.2, sd=0.8, comparator="eq", threshold=4.2).more is None


@pytest.mark.parametrize("traffic", [None, 0])
def test_without_traffic_the_days_are_unknown(traffic: int | None) -> None:
    result = evidence_for_rate(
        events=0, exposure=1200, per_n=1000, comparator="le", threshold=1,
        per_business_day=traffic, event_name="P2 defect",
    )  # fmt: skip
    assert result.more == 2489
    assert result.business_days is None
    assert result.words() == (
        "needs about 2,500 more sessions with no P2 defect, the time it takes is unknown (no "
        "traffic observed yet) (an estimate that assumes the current rate holds)"
    )


def test_under_a_day_and_one_observation_read_plainly() -> None:
    result = EvidenceNeeded(1, "samples", Verdict.MET, 0.01)
    assert result.words() == (
        "needs about 1 more sample, less than a business day at the current traffic (an "
        "estimate that assumes the current rate holds)"
    )
    assert "about 1 business day at" in EvidenceNeeded(600, "samples", Verdict.MET, 1.0).words()


def test_exact_statistics_wait_only_for_the_minimum_sample_size() -> None:
    result = evidence_for_exact(
        value=0, sample_size=12, comparator="eq", threshold=0, min_sample_size=30,
        per_business_day=6,
    )  # fmt: skip
    assert (result.more, result.verdict, result.business_days) == (18, Verdict.MET, 3.0)


@pytest.mark.parametrize(
    ("x", "rounded"),
    [(1834, 1800), (2489, 2500), (7, 7), (3.46, 3.5), (0.0123, 0.012), (95, 95), (0, 0)],
)
def test_two_significant_figures(x: float, rounded: float) -> None:
    assert round_2sf(x) == rounded


def test_search_finds_the_first_decided_count() -> None:
    assert more_needed(lambda m: m >= 1_000_003) == 1_000_003
    assert more_needed(lambda m: True) == 0
    assert more_needed(lambda m: False, cap=1024) is None


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (
            lambda: evidence_for_rate(
                events=0, exposure=0, per_n=1000, comparator="le", threshold=1
            ),
            "exposure",
        ),
        (
            lambda: evidence_for_rate(
                events=-1, exposure=10, per_n=1000, comparator="le", threshold=1
            ),
            "events",
        ),
        (
            lambda: evidence_for_rate(
                events=0, exposure=10, per_n=1000, comparator="le", threshold=1, per_business_day=-5
            ),
            "per_business_day",
        ),
        (
            lambda: evidence_for_ratio(successes=5, trials=0, comparator="le", threshold=1),
            "trials",
        ),
        (lambda: evidence_for_mean(n=10, mean=4, sd=-1, comparator="ge", threshold=4), "sd"),
        (
            lambda: evidence_for_mean(n=10, mean=math.nan, sd=1, comparator="ge", threshold=4),
            "mean",
        ),
        (
            lambda: evidence_for_percentile(values=[], q=95, comparator="le", threshold=4),
            "values",
        ),
    ],
)
def test_bad_input_names_the_field(call: object, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        call()  # type: ignore[operator]


# --- the worked examples of docs/decisions.md --------------------------------------------------


def test_the_documented_examples_are_what_the_code_says() -> None:
    doc = " ".join(
        (Path(__file__).resolve().parents[2] / "docs" / "decisions.md").read_text().split()
    )
    examples = [
        evidence_for_rate(
            events=0,
            exposure=1200,
            per_n=1000,
            comparator="le",
            threshold=1,
            per_business_day=600,
            event_name="P2 defect",
        ),
        evidence_for_ratio(
            successes=4, trials=1000, comparator="le", threshold=0.5, per_business_day=5000
        ),
        evidence_for_mean(
            n=40, mean=4.3, sd=0.9, comparator="ge", threshold=4.2, per_business_day=30
        ),
        evidence_for_percentile(
            values=range(100, 200), q=95, comparator="le", threshold=196, per_business_day=60
        ),
        evidence_for_exact(
            value=0,
            sample_size=12,
            comparator="eq",
            threshold=0,
            min_sample_size=30,
            per_business_day=6,
        ),
    ]
    for example in examples:
        assert f'"{example.words()}"' in doc


# --- from a stored result ----------------------------------------------------------------------


def test_a_stored_result_gives_the_same_answer_as_its_data() -> None:
    rate = statistics.rate_per(events=3, exposure=2000, per_n=1000)
    ratio = statistics.proportion(successes=4, trials=1000, percent=True)
    mean = statistics.mean_from_moments(n=40, total=4.3 * 40, total_sq=39 * 0.81 + 40 * 4.3**2)
    exact = statistics.total(values=[0] * 12)
    pairs = [
        (rate, {"per_n": 1000, "comparator": "le", "threshold": 2}, evidence_for_rate(
            events=3, exposure=2000, per_n=1000, comparator="le", threshold=2)),
        (ratio, {"comparator": "le", "threshold": 0.5}, evidence_for_ratio(
            successes=4, trials=1000, comparator="le", threshold=0.5)),
        (mean, {"comparator": "ge", "threshold": 4.2}, evidence_for_mean(
            n=40, mean=4.3, sd=0.9, comparator="ge", threshold=4.2)),
        (exact, {"comparator": "eq", "threshold": 0, "min_sample_size": 30}, evidence_for_exact(
            value=0, sample_size=12, comparator="eq", threshold=0, min_sample_size=30)),
    ]  # fmt: skip
    for estimate, criterion, expected in pairs:
        result = evidence_for_result(
            method=estimate.method, value=estimate.value, low=estimate.low, high=estimate.high,
            sample_size=estimate.sample_size, **criterion,  # type: ignore[arg-type]
        )  # fmt: skip
        assert result == expected


@pytest.mark.parametrize(
    ("method", "value", "low", "high", "field"),
    [
        ("poisson_exact", None, None, None, "value"),
        ("poisson_exact", 1.5, 0.3, 4.4, "per_n"),
        ("t", 4.3, None, None, "low, high"),
        ("order_statistic", 210.0, 200.0, 230.0, "method"),
    ],
)
def test_a_stored_result_without_enough_to_project_says_what_is_missing(
    method: str, value: float | None, low: float | None, high: float | None, field: str
) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        evidence_for_result(
            method=method, value=value, low=low, high=high, sample_size=1,
            comparator="le", threshold=1,
        )  # fmt: skip
