"""The statistics behind exit-criterion verdicts: pure functions, no database.

Every estimator returns an :class:`Estimate` (a value, a
two-sided interval at ``confidence``, the sample size and the method's name); :func:`evaluate`
turns an estimate, a comparator and a threshold into one of three verdicts: **met**, **not met**,
**not enough evidence**. :func:`evaluate_criterion` is the one entry point the check run calls
with the observations it loaded for one exit criterion.

The rule that makes a verdict trustworthy: a criterion is *met* only when the whole interval
satisfies the comparator, *not met* only when the whole interval violates it, and anything else
(the interval straddles the threshold, there is no interval, too few observations) is *not enough
evidence*. With a two-sided 95 % interval each side errs at most 2.5 % of the time, so "met" and
"not met" are each one-sided statements at the 97.5 % level; "not enough evidence" is the honest
answer in between, never a silent pass.

Observed quantities are not estimated: a total (P1 defects so far), the latest, the largest and
the smallest observation are exact, so their interval is the point itself (``low == high ==
value``) and the same rule reduces to comparing the value.

Inputs may be ``float``, ``int`` or ``Decimal`` (as read from ``numeric`` columns). NaN and
infinities are refused with ``ValueError``: a verdict computed from a NaN would be meaningless,
and PostgreSQL's ``numeric`` does accept ``'NaN'``.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import special, stats

from catalogue import comparators

Number = float | int | Decimal
Values = Sequence[Number] | npt.NDArray[np.floating] | npt.NDArray[np.integer]

DEFAULT_CONFIDENCE: Final = 0.95

# Method names stored with each check-run result (``Estimate.method``).
WILSON: Final = "wilson"
POISSON_EXACT: Final = "poisson_exact"
T: Final = "t"
BOOTSTRAP: Final = "bootstrap"
ORDER_STATISTIC: Final = "order_statistic"
EXACT_COUNT: Final = "exact_count"
EXACT: Final = "exact"

AGGREGATIONS: Final = (
    "latest", "mean", "max", "min", "percentile", "total", "rate_per", "ratio",
)  # fmt: skip


class Verdict(enum.StrEnum):
    MET = "met"
    NOT_MET = "not_met"
    NOT_ENOUGH_EVIDENCE = "not_enough_evidence"


@dataclass(frozen=True)
class Estimate:
    """A statistic with its two-sided interval.

    ``low``/``high`` are ``None`` when no interval exists at the confidence level (one
    observation for a mean, too few for a percentile's order-statistic interval); ``value`` is
    ``None`` when there is nothing to estimate (no observations, zero exposure). For exact
    statistics ``low == high == value``. ``label`` names the statistic in human sentences
    ("Mean", "95th percentile of", …).
    """

    value: float | None
    low: float | None
    high: float | None
    sample_size: int
    method: str
    confidence: float = DEFAULT_CONFIDENCE
    label: str = ""


@dataclass(frozen=True)
class Evaluation:
    estimate: Estimate
    threshold: float
    comparator: str
    verdict: Verdict
    reason: str


# --- validation --------------------------------------------------------------------------------


def _finite(x: Number, what: str) -> float:
    try:
        f = float(x)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be a number, got {x!r}.") from exc
    if not math.isfinite(f):
        raise ValueError(f"{what} must be a finite number, got {x!r}.")
    return f


def _count(x: Number, what: str) -> int:
    """A count must be a whole, non-negative, finite number (3.0 is fine, 2.5 is not)."""
    f = _finite(x, what)
    if f < 0 or not f.is_integer():
        raise ValueError(f"{what} must be a whole number ≥ 0, got {x!r}.")
    return int(f)


def _array(values: Values, what: str = "values") -> npt.NDArray[np.float64]:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be numbers.") from exc
    if arr.ndim != 1:
        raise ValueError(f"{what} must be a flat sequence of numbers.")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(
            f"{what} must be finite numbers; {bad.size} are not "
            f"(first at index {bad[0]}: {values[int(bad[0])]!r})."
        )
    return arr


def _confidence(confidence: float) -> float:
    c = _finite(confidence, "confidence")
    if not 0 < c < 1:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence!r}.")
    return c


def _comparator(comparator: str) -> str:
    return comparators.get(comparator).code


def _mean_of(arr: npt.NDArray[np.float64]) -> float:
    # NumPy's pairwise summation errs by a few ulps at most, far below any interval's width, and
    # is ~200x faster than math.fsum on 90 days of minutes. The one case where ulps matter is
    # identical values (a zero-width interval at a threshold), so that one is taken exactly.
    first = float(arr[0])
    return first if bool(np.all(arr == first)) else float(np.mean(arr))


# The quantile functions of Student's t, the normal and the chi-square distributions, computed
# as ``scipy.stats``'s ``t.ppf``, ``norm.ppf`` and ``chi2.ppf`` compute them (the same special
# functions, so the same numbers; tests/metrics/test_statistics.py compares them) without the
# distribution objects' argument checking and broadcasting, which cost ~0.1 ms a call: a check
# asks for several.


def t_ppf(q: float, df: float) -> float:
    return float(special.stdtrit(df, q))


def norm_ppf(q: float) -> float:
    return float(special.ndtri(q))


def chi2_ppf(q: float, df: float) -> float:
    return 2 * float(special.gammaincinv(df / 2, q))


# --- estimators --------------------------------------------------------------------------------


def proportion(
    *, successes: Number, trials: Number, confidence: float = DEFAULT_CONFIDENCE,
    percent: bool = False,
) -> Estimate:  # fmt: skip
    """The share ``successes / trials`` (e.g. errors / requests) with a Wilson score interval.

    Why Wilson: the textbook Wald interval (p ± z·√(p(1-p)/n)) collapses to zero width at 0 or n
    successes and undercovers badly for small or extreme proportions (an error rate near 0 % is
    exactly that case); Clopper-Pearson is exact but conservative (too wide, so criteria stay
    "not enough evidence" longer than necessary). Wilson inverts the score test: coverage close
    to nominal on average, bounds always inside [0, 1], sensible at 0 successes (Newcombe 1998;
    Brown, Cai & DasGupta 2001).

    ``percent=True`` reports value and bounds in per cent (a ratio criterion reads "≤ 0.5 %").
    The value is computed as ``100 · x / n`` (one rounding) so that e.g. 5 / 1,000 is exactly
    0.5, not 0.50000000000000001, and an exact hit of a decimal threshold stays a hit.
    """
    c = _confidence(confidence)
    x = _count(successes, "successes")
    n = _count(trials, "trials")
    if x > n:
        raise ValueError(f"successes ({x}) cannot exceed trials ({n}).")
    scale = 100.0 if percent else 1.0
    if n == 0:
        return Estimate(None, None, None, 0, WILSON, c, "Ratio of")
    z = norm_ppf(1 - (1 - c) / 2)
    p = x / n
    z2n = z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / n + z2n / (4 * n))
    # At x = 0 (x = n) the bound is exactly 0 (1) in exact arithmetic; pin it so rounding cannot
    # produce -1e-17 or make "0 errors ≤ 0 %" a straddle.
    low = 0.0 if x == 0 else max(0.0, centre - half)
    high = 1.0 if x == n else min(1.0, centre + half)
    value = (x * 100.0) / n if percent else p
    return Estimate(value, low * scale, high * scale, n, WILSON, c, "Ratio of")


def rate_per(
    *, events: Number, exposure: Number, per_n: Number, confidence: float = DEFAULT_CONFIDENCE,
) -> Estimate:  # fmt: skip
    """Events per ``per_n`` units of exposure (e.g. P2 defects per 1,000 sessions).

    Why exact Poisson (Garwood 1936): defect counts are small (often 0–5), where a normal
    approximation is meaningless (it gives a zero-width interval at 0 events and negative lower
    bounds). Garwood's interval inverts the Poisson tails through the chi-square distribution,
    guarantees at least nominal coverage, and has a proper upper bound at 0 events (3.689 events
    at 95 %: "no defects yet" is not "a rate of 0"). Lower = χ²(α/2; 2x)/2, upper =
    χ²(1-α/2; 2x+2)/2, both scaled by ``per_n / exposure``. Exposure is treated as known (a
    session count is observed, not estimated).

    ``sample_size`` is the exposure (whole units), which is what ``min_sample_size`` means for a
    rate ("at least 1,000 sessions").
    """
    c = _confidence(confidence)
    x = _count(events, "events")
    e = _finite(exposure, "exposure")
    if e < 0:
        raise ValueError(f"exposure must be ≥ 0, got {exposure!r}.")
    per = _finite(per_n, "per_n")
    if per <= 0:
        raise ValueError(f"per_n must be > 0, got {per_n!r}.")
    if e == 0:
        return Estimate(None, None, None, 0, POISSON_EXACT, c, "Rate of")
    alpha = 1 - c
    scale = per / e
    low = 0.0 if x == 0 else chi2_ppf(alpha / 2, 2 * x) / 2
    high = chi2_ppf(1 - alpha / 2, 2 * x + 2) / 2
    return Estimate(
        (x * per) / e, low * scale, high * scale, math.floor(e), POISSON_EXACT, c, "Rate of"
    )


def mean(*, values: Values, confidence: float = DEFAULT_CONFIDENCE) -> Estimate:
    """The arithmetic mean with a Student t interval: mean ± t(1-α/2; n-1) · s / √n.

    Why t: it is the standard interval for a mean with unknown variance, exact for normal data
    and, by the central limit theorem, close to nominal for bounded scores (CSAT 1–5, NPS 0–10)
    at the sample sizes criteria ask for (≥ 30). It is computed directly rather than via
    ``scipy.stats.t.interval`` so that identical values give the zero-width interval [x, x]
    (scipy returns NaN for a zero scale). With one observation there is no interval.

    Caveat for the caller: the interval assumes independent observations. Per-minute gauge
    samples are autocorrelated, which makes any i.i.d. interval too narrow; prefer ratios of
    counts (:func:`proportion`) or rates (:func:`rate_per`) for such metrics.
    """
    c = _confidence(confidence)
    arr = _array(values)
    n = int(arr.size)
    if n == 0:
        return Estimate(None, None, None, 0, T, c, "Mean")
    m = _mean_of(arr)
    if n == 1:
        return Estimate(m, None, None, 1, T, c, "Mean")
    deviations = arr - m
    sd = math.sqrt(float(np.dot(deviations, deviations)) / (n - 1))
    half = t_ppf(1 - (1 - c) / 2, n - 1) * sd / math.sqrt(n)
    return Estimate(m, m - half, m + half, n, T, c, "Mean")


def mean_from_moments(
    *, n: Number, total: Number, total_sq: Number, minimum: Number | None = None,
    maximum: Number | None = None, confidence: float = DEFAULT_CONFIDENCE,
) -> Estimate:  # fmt: skip
    """:func:`mean` from the moments a rollup keeps (count, Σx, Σx²) instead of the values.

    The same Student t interval: the sum of squared deviations is Σx² − Σx·x̄ (clamped at 0,
    which rounding can undershoot). ``minimum``/``maximum`` (a rollup's min and max) are
    optional; when they are equal every value was the same, and the estimate is that value with
    the zero-width interval [x, x], exactly as :func:`mean` gives for identical values (Σx / n
    need not round back to x). The mean is also kept inside [minimum, maximum].

    Precision: the one-pass formula loses digits when the spread is tiny against the mean
    (relative variance below ~1e-10); metrics in this product (latency, scores, rates) are far
    from that, and the result matches :func:`mean` on the raw values to ~1e-9 relative.
    """
    c = _confidence(confidence)
    count = _count(n, "n")
    s = _finite(total, "total")
    sq = _finite(total_sq, "total_sq")
    if sq < 0:
        raise ValueError(f"total_sq must be ≥ 0, got {total_sq!r}.")
    if count == 0:
        return Estimate(None, None, None, 0, T, c, "Mean")
    lo = None if minimum is None else _finite(minimum, "minimum")
    hi = None if maximum is None else _finite(maximum, "maximum")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"minimum ({lo}) exceeds maximum ({hi}).")
    if lo is not None and lo == hi:
        if count == 1:
            return Estimate(lo, None, None, 1, T, c, "Mean")
        return Estimate(lo, lo, lo, count, T, c, "Mean")
    m = s / count
    if lo is not None:
        m = max(m, lo)
    if hi is not None:
        m = min(m, hi)
    if count == 1:
        return Estimate(m, None, None, 1, T, c, "Mean")
    ss = max(0.0, sq - s * (s / count))
    sd = math.sqrt(ss / (count - 1))
    half = t_ppf(1 - (1 - c) / 2, count - 1) * sd / math.sqrt(count)
    return Estimate(m, m - half, m + half, count, T, c, "Mean")


def mean_bootstrap(
    *, values: Values, seed: int, confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = 9999,
) -> Estimate:  # fmt: skip
    """The mean with a bias-corrected and accelerated (BCa) bootstrap interval.

    Why offer it: for small, skewed samples (a handful of very unhappy users among many 5s) the
    t interval's symmetry is wrong; BCa corrects for bias and skew and is second-order accurate
    (Efron 1987). Why not the default: it is random (so ``seed`` is required, making a check
    run reproducible), costs ``n_resamples × n`` work, and for the sample sizes criteria demand
    the t interval is already close. Identical values give [x, x]; fewer than two values, no
    interval.
    """
    c = _confidence(confidence)
    arr = _array(values)
    n = int(arr.size)
    if n == 0:
        return Estimate(None, None, None, 0, BOOTSTRAP, c, "Mean")
    m = _mean_of(arr)
    if n == 1:
        return Estimate(m, None, None, 1, BOOTSTRAP, c, "Mean")
    if np.all(arr == arr[0]):
        # Every resample has the same mean; BCa's acceleration would divide by zero.
        return Estimate(m, m, m, n, BOOTSTRAP, c, "Mean")
    result = stats.bootstrap(
        (arr,), np.mean, confidence_level=c, n_resamples=n_resamples, method="BCa",
        vectorized=True, rng=np.random.default_rng(seed),
    )  # fmt: skip
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):
        return Estimate(m, None, None, n, BOOTSTRAP, c, "Mean")
    return Estimate(m, low, high, n, BOOTSTRAP, c, "Mean")


def _ordinal(q: float) -> str:
    text = f"{q:g}"
    if not float(q).is_integer():
        return f"{text}th"
    k = int(q)
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{text}{suffix}"


def _percentile_fraction(q: Number) -> tuple[float, float]:
    """``q`` in per cent (95 for p95, as ExitCriterion stores it), strictly between 0 and 100."""
    pct = _finite(q, "percentile")
    if not 0 < pct < 100:
        raise ValueError(f"percentile must be between 0 and 100 exclusive (e.g. 95), got {q!r}.")
    return pct, pct / 100


# Pure functions of their (hashable) arguments, asked again by every check of every plan with a
# percentile criterion: computed once per process. A check's n is new at almost every run (the
# window grows), so a miss matters too: SciPy's plain binomial ufuncs (``special.bdtr``: the cdf,
# ``bdtrc``: the survival function, ``bdtrik``: the quantile) cost ~0.1 ms a miss where a frozen
# ``stats.binom`` cost ~3 ms (building and checking the distribution object). The stepping below
# makes the ranks depend only on cdf/sf comparisons: the same ranks as with ``stats.binom``
# (compared over ~9,000 (n, q, confidence), n up to 10 million).
@functools.lru_cache(maxsize=4096)
def order_statistic_ranks(*, n: int, q: Number, confidence: float = DEFAULT_CONFIDENCE) -> (
    tuple[int, int] | None
):  # fmt: skip
    """1-based ranks (l, u) such that [x₍ₗ₎, x₍ᵤ₎] covers the q-th percentile with ≥ confidence.

    The number B of observations at or below the true percentile ξ is Binomial(n, q), so
    P(x₍ₗ₎ > ξ) = P(B ≤ l-1) and P(x₍ᵤ₎ < ξ) = P(B ≥ u) for continuous data (and no more for
    ties). We take the equal-tailed choice: l is the largest rank with P(B ≤ l-1) ≤ α/2 and u
    the smallest with P(B ≥ u) ≤ α/2. Equal tails (rather than the shortest interval) keep each
    one-sided error ≤ α/2, which is exactly what the verdict rule uses. ``None`` when no such
    ranks exist within 1..n (n below :func:`percentile_min_sample_size`).
    """
    c = _confidence(confidence)
    _, p = _percentile_fraction(q)
    if n < 1:
        return None
    tail = (1 - c) / 2

    def cdf(k: int) -> float:  # P(B ≤ k)
        return float(special.bdtr(k, n, p))

    def sf(k: int) -> float:  # P(B > k) = P(B ≥ k+1)
        return float(special.bdtrc(k, n, p))

    def start(y: float, default: int) -> int:  # ⌊the k with cdf(k) = y⌋, within 0..n
        k = float(special.bdtrik(y, n, p))
        return min(max(int(k), 0), n) if math.isfinite(k) else default

    # Start from the quantile function and correct the floating point by stepping: cdf is
    # strictly increasing on 0..n for 0 < p < 1, so the loops run at most a step or two.
    k = start(tail, 0)
    while k + 1 <= n and cdf(k + 1) <= tail:
        k += 1
    while k >= 0 and cdf(k) > tail:
        k -= 1
    lower_rank = k + 1  # largest l with P(B ≤ l-1) ≤ α/2
    m = start(1 - tail, n)
    while m - 1 >= 0 and sf(m - 1) <= tail:
        m -= 1
    while sf(m) > tail:
        m += 1
    upper_rank = m + 1  # smallest u with P(B ≥ u) ≤ α/2
    if lower_rank < 1 or upper_rank > n:
        return None
    return lower_rank, upper_rank


@functools.lru_cache(maxsize=256)
def percentile_min_sample_size(*, q: Number, confidence: float = DEFAULT_CONFIDENCE) -> int:
    """The fewest observations for which the percentile has a two-sided interval at all.

    The extreme ranks are usable once (1-q)ⁿ ≤ α/2 (the minimum as lower bound) and qⁿ ≤ α/2 (the
    maximum as upper bound): n ≥ ln(α/2) / ln(max(q, 1-q)). For p95 at 95 % that is 72, so a
    p95 criterion with min_sample_size below 72 still reads "not enough evidence" up to 71.
    """
    c = _confidence(confidence)
    _, p = _percentile_fraction(q)
    n = max(1, math.ceil(math.log((1 - c) / 2) / math.log(max(p, 1 - p))))
    # Guard the closed form against rounding at the boundary.
    while n > 1 and order_statistic_ranks(n=n - 1, q=q, confidence=c) is not None:
        n -= 1
    while order_statistic_ranks(n=n, q=q, confidence=c) is None:
        n += 1
    return n


def percentile(*, values: Values, q: Number, confidence: float = DEFAULT_CONFIDENCE) -> Estimate:
    """The q-th percentile (``q`` in per cent: 95 for p95) with an order-statistic interval.

    Value: ``numpy.percentile(method="linear")``, Hyndman & Fan type 7 — the default of NumPy, R
    and spreadsheets' PERCENTILE.INC, so a team checking the number in their own tools gets the
    same answer. Interval: distribution-free (no assumption about the shape of latency, which is
    skewed and heavy-tailed) from binomial ranks, see :func:`order_statistic_ranks`. With too few
    observations there is no interval at this confidence (low = high = None), which evaluates to
    "not enough evidence".
    """
    c = _confidence(confidence)
    pct, _ = _percentile_fraction(q)
    arr = _array(values)
    n = int(arr.size)
    label = f"{_ordinal(pct)} percentile of"
    if n == 0:
        return Estimate(None, None, None, 0, ORDER_STATISTIC, c, label)
    value = float(np.percentile(arr, pct, method="linear"))
    ranks = order_statistic_ranks(n=n, q=pct, confidence=c)
    if ranks is None:
        return Estimate(value, None, None, n, ORDER_STATISTIC, c, label)
    lo_rank, hi_rank = ranks
    ordered = np.partition(arr, [lo_rank - 1, hi_rank - 1])
    low, high = float(ordered[lo_rank - 1]), float(ordered[hi_rank - 1])
    return Estimate(value, low, high, n, ORDER_STATISTIC, c, label)


def total(*, values: Values) -> Estimate:
    """The sum of count observations: exact, not estimated (a P1 defect count is observed).

    The sum of no observations is 0 with sample size 0: whether that is evidence is for
    ``min_sample_size`` to say.
    """
    arr = _array(values)
    s = float(arr.sum())  # exact for whole counts (below 2**53), as counts are
    return Estimate(s, s, s, int(arr.size), EXACT_COUNT, DEFAULT_CONFIDENCE, "Total")


def _exact(values: Values, pick: str, label: str) -> Estimate:
    arr = _array(values)
    n = int(arr.size)
    if n == 0:
        return Estimate(None, None, None, 0, EXACT, DEFAULT_CONFIDENCE, label)
    v = float({"latest": arr[-1], "max": arr.max(), "min": arr.min()}[pick])
    return Estimate(v, v, v, n, EXACT, DEFAULT_CONFIDENCE, label)


def latest(*, values: Values) -> Estimate:
    """The last observation; ``values`` must be in ``observed_at`` order. Exact.

    ``sample_size`` is the number of observations in the window, as for every aggregation.
    """
    return _exact(values, "latest", "Latest")


def maximum(*, values: Values) -> Estimate:
    """The largest observation, exact. (Named ``maximum`` so as not to shadow ``max``.)"""
    return _exact(values, "max", "Maximum")


def minimum(*, values: Values) -> Estimate:
    """The smallest observation, exact. (Named ``minimum`` so as not to shadow ``min``.)"""
    return _exact(values, "min", "Minimum")


# --- verdicts ----------------------------------------------------------------------------------


def _interval_verdict(comparator: str, low: float, high: float, threshold: float) -> Verdict:
    """MET if every point of [low, high] satisfies the comparator, NOT_MET if none does.

    For the order comparators it is enough to look at the bound nearest the threshold; for "eq"
    only a zero-width interval at the threshold satisfies it (an estimate with any uncertainty
    can never establish equality), and the threshold outside the interval violates it.
    """
    if comparator == "eq":
        if low == high == threshold:
            return Verdict.MET
        if threshold < low or threshold > high:
            return Verdict.NOT_MET
        return Verdict.NOT_ENOUGH_EVIDENCE
    low_holds = comparators.compare(low, comparator, threshold)
    high_holds = comparators.compare(high, comparator, threshold)
    if low_holds and high_holds:
        return Verdict.MET
    if not low_holds and not high_holds:
        return Verdict.NOT_MET
    return Verdict.NOT_ENOUGH_EVIDENCE


def _fmt(x: float) -> str:
    """Four significant digits, thousands separators, no trailing zeros: 4.314, 0.2553, 1,235."""
    x = float(x)
    if x == 0:
        return "0"
    if x.is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    decimals = min(6, max(0, 3 - math.floor(math.log10(abs(x)))))
    text = f"{x:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _with_unit(text: str, unit: str) -> str:
    return f"{text} {unit}" if unit else text


def evaluate(
    *, estimate: Estimate, comparator: str, threshold: Number, min_sample_size: int,
    name: str = "", unit: str = "", sample_noun: str = "observations",
) -> Evaluation:  # fmt: skip
    """The verdict for ``estimate <comparator> threshold``, with a human reason.

    1. Fewer than ``min_sample_size`` observations: not enough evidence (whatever the value).
    2. No value, or no interval: not enough evidence.
    3. Otherwise the interval rule (see :func:`_interval_verdict`); exact estimates have
       ``low == high == value``, so for them it is a plain comparison of the value.

    ``name`` (the metric, e.g. "CSAT"), ``unit`` and ``sample_noun`` (e.g. "sessions") only
    shape the reason.
    """
    comparator = _comparator(comparator)
    t = _finite(threshold, "threshold")
    if isinstance(min_sample_size, bool) or not isinstance(min_sample_size, int):
        raise ValueError(f"min_sample_size must be a whole number, got {min_sample_size!r}.")
    if min_sample_size < 0:
        raise ValueError(f"min_sample_size must be ≥ 0, got {min_sample_size}.")
    if estimate.sample_size < 0:
        raise ValueError(f"sample_size must be ≥ 0, got {estimate.sample_size}.")
    value_, low, high = (
        None if x is None else _finite(x, f"The estimate's {what}")
        for what, x in (("value", estimate.value), ("low", estimate.low), ("high", estimate.high))
    )
    if low is not None and high is not None and low > high:
        raise ValueError(f"The estimate's low ({low}) exceeds its high ({high}).")

    symbol = comparators.symbol(comparator)
    subject = f"{estimate.label} {name}".strip() if name else estimate.label.removesuffix(" of")
    subject = subject or "Value"
    target = f"{symbol} {_with_unit(_fmt(t), unit)}"
    n = estimate.sample_size

    def result(verdict: Verdict, reason: str) -> Evaluation:
        return Evaluation(estimate, t, comparator, verdict, reason)

    if value_ is None:
        return result(Verdict.NOT_ENOUGH_EVIDENCE, f"{subject}: no data yet in the window.")
    value = _with_unit(_fmt(value_), unit)
    exact = low == high == value_
    level = f"{_fmt(estimate.confidence * 100)} %"
    if exact:
        described = f"{subject} {value} (n = {n:,})"
    elif low is not None and high is not None:
        ci = f"{_fmt(low)}–{_fmt(high)}"
        described = f"{subject} {value} ({level} CI {ci}, n = {n:,})"
    else:
        described = f"{subject} {value} (n = {n:,}, no {level} interval)"

    if n < min_sample_size:
        return result(
            Verdict.NOT_ENOUGH_EVIDENCE,
            f"Only {n:,} of the required {min_sample_size:,} {sample_noun} (so far: {described}).",
        )
    if low is None or high is None:
        return result(
            Verdict.NOT_ENOUGH_EVIDENCE,
            f"{described} {target} not yet established: too few {sample_noun} for a "
            f"{level} interval.",
        )
    verdict = _interval_verdict(comparator, low, high, t)
    if exact:
        tail = {Verdict.MET: "met.", Verdict.NOT_MET: "not met."}[verdict]
        return result(verdict, f"{described} {target}: {tail}")
    if verdict is Verdict.MET:
        return result(verdict, f"{described} {target}: met, the whole interval satisfies it.")
    if verdict is Verdict.NOT_MET:
        return result(verdict, f"{described} {target}: not met, the whole interval violates it.")
    straddle = (
        "the interval contains the threshold but is not exactly it"
        if comparator == "eq"
        else "the interval straddles the threshold"
    )
    return result(verdict, f"{described} {target} not yet established: {straddle}.")


def evaluate_criterion(
    *, aggregation: str, comparator: str, threshold: Number, min_sample_size: int,
    values: Values | None = None, numerator: Number | None = None,
    denominator: Number | None = None, per_n: Number | None = None,
    percentile_q: Number | None = None, confidence: float = DEFAULT_CONFIDENCE,
    name: str = "", unit: str = "", sample_noun: str = "",
) -> Evaluation:  # fmt: skip
    """Evaluate one exit criterion from the observations the check run loaded for its window.

    ``aggregation`` is an ``ExitCriterion.Aggregation`` value. ``values`` (in ``observed_at``
    order) for latest / mean / max / min / percentile / total; for ``rate_per`` the event count
    (``numerator``), the exposure (``denominator``) and ``per_n``; for ``ratio`` the two counts,
    reported in per cent. ``percentile_q`` is in per cent (95), as ``ExitCriterion.percentile``
    stores it. Raises ``ValueError`` for inputs that cannot be evaluated (NaN, negative counts,
    more errors than requests, missing arguments): the caller should record that as "not enough
    evidence" with the message rather than drop the criterion.
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(
            f"Unknown aggregation {aggregation!r}; expected one of {', '.join(AGGREGATIONS)}."
        )
    estimate: Estimate
    noun = sample_noun or "observations"
    if aggregation in ("rate_per", "ratio"):
        if numerator is None or denominator is None:
            raise ValueError(f"The {aggregation} aggregation needs a numerator and a denominator.")
        if aggregation == "rate_per":
            if per_n is None:
                raise ValueError("The rate_per aggregation needs per_n (e.g. 1000).")
            estimate = rate_per(
                events=numerator, exposure=denominator, per_n=per_n, confidence=confidence
            )
            unit = unit or f"per {_fmt(_finite(per_n, 'per_n'))}"
            noun = sample_noun or "units of exposure"
        else:
            estimate = proportion(
                successes=numerator, trials=denominator, confidence=confidence, percent=True
            )
            unit = unit or "%"
            noun = sample_noun or "counted in the denominator"
    elif values is None:
        raise ValueError(f"The {aggregation} aggregation needs values.")
    elif aggregation == "mean":
        estimate = mean(values=values, confidence=confidence)
    elif aggregation == "percentile":
        if percentile_q is None:
            raise ValueError("The percentile aggregation needs percentile_q (e.g. 95).")
        estimate = percentile(values=values, q=percentile_q, confidence=confidence)
    elif aggregation == "total":
        estimate = total(values=values)
    elif aggregation == "latest":
        estimate = latest(values=values)
    elif aggregation == "max":
        estimate = maximum(values=values)
    else:
        estimate = minimum(values=values)
    evaluation = evaluate(
        estimate=estimate, comparator=comparator, threshold=threshold,
        min_sample_size=min_sample_size, name=name, unit=unit, sample_noun=noun,
    )  # fmt: skip
    if (
        aggregation == "percentile"
        and percentile_q is not None
        and estimate.value is not None
        and estimate.low is None
        and estimate.sample_size >= min_sample_size
    ):
        # Say how far away an answer is: the seed's p95 asks for 60 observations, yet a two-sided
        # 95 % interval for p95 exists only from 72.
        needed = percentile_min_sample_size(q=percentile_q, confidence=confidence)
        reason = evaluation.reason.removesuffix(".") + f" (needs at least {needed:,})."
        evaluation = dataclasses.replace(evaluation, reason=reason)
    return evaluation
