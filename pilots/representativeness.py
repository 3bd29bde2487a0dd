"""Is the cohort representative? A goodness-of-fit test of its segment mix: pure, no database.

The seed plan warns of a "pilot cohort not representative, leading to false confidence". A plan's
cohort segments give intended shares per dimension (region A 60 %, region B 40 %); the cohort's
participants give the actual counts. :func:`segment_fit` compares the two for one dimension:

- **The test.** Pearson's chi-square goodness-of-fit test when every expected count is at least
  :data:`MIN_EXPECTED` (5, the textbook rule), otherwise the exact multinomial test: the
  probability, under the intended shares, of every cohort of the same size that is at most as
  likely as the observed one. The exact test enumerates every such cohort while there are at most
  :data:`EXACT_LIMIT` of them, and beyond that estimates the same p-value from
  :data:`MONTE_CARLO_DRAWS` seeded random cohorts (reproducible; the method says which was used).
- **The flag.** A cohort is *skewed* only when the test is significant (p < :data:`ALPHA`,
  0.001) **and** the largest absolute gap between an actual and an intended share exceeds the
  plan's practical bound (default 5 percentage points). A big cohort makes tiny gaps
  significant; the bound keeps those from raising alarms. A small cohort with a large gap is not
  flagged either until the evidence is strong: it reads "not enough participants to tell".

Intended shares need not add up to 100: they are normalised within the dimension (a plan that
lists 60 and 30 means 2 : 1). A segment intended at 0 % that has participants makes the observed
cohort impossible under the plan (p = 0).

Cost: under a millisecond for the chi-square test, up to about 0.15 s for the multinomial tests.
Compute it when the cohort changes and keep the result; never once per row of a list.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import special, stats

ALPHA: Final = 0.001
DEFAULT_PRACTICAL_BOUND: Final = 5.0  # percentage points
MIN_EXPECTED: Final = 5.0
EXACT_LIMIT: Final = 100_000  # cohorts the exact test enumerates at most (≈ 0.1 s)
MONTE_CARLO_DRAWS: Final = 100_000
_SEED: Final = 20_261_206

CHI_SQUARE: Final = "chi_square"
EXACT_MULTINOMIAL: Final = "exact_multinomial"
MONTE_CARLO_MULTINOMIAL: Final = "monte_carlo_multinomial"

# Relative slack when comparing probabilities: cohorts as likely as the observed one, up to
# floating point, count as "at most as likely" (as in R's EMT package).
_LOG_SLACK: Final = 1e-7


class Status(enum.StrEnum):
    SKEWED = "skewed"
    REPRESENTATIVE = "representative"
    NOT_ENOUGH = "not_enough"  # no participants, or too few to tell
    NO_TARGET = "no_target"  # no intended shares to compare with


@dataclass(frozen=True)
class SegmentShare:
    """One segment's actual against intended share."""

    value: str
    observed: int
    intended_percent: float  # normalised within the dimension
    observed_percent: float
    expected: float  # count under the intended shares

    @property
    def gap_points(self) -> float:
        """Actual minus intended share, in percentage points (positive: over-represented)."""
        return self.observed_percent - self.intended_percent

    @property
    def direction(self) -> str:
        if math.isclose(self.gap_points, 0.0, abs_tol=0.05):
            return "on target"
        return "over" if self.gap_points > 0 else "under"


@dataclass(frozen=True)
class Fit:
    """The goodness-of-fit result for one dimension of the cohort."""

    n: int
    segments: tuple[SegmentShare, ...]
    method: str | None
    statistic: float | None  # chi-square statistic (None for the multinomial tests)
    p_value: float | None
    practical_bound: float
    alpha: float
    status: Status

    @property
    def largest(self) -> SegmentShare | None:
        """The segment furthest from its intended share (the first of equals)."""
        if not self.segments:
            return None
        return max(self.segments, key=lambda s: abs(s.gap_points))

    @property
    def largest_gap_points(self) -> float:
        largest = self.largest
        return abs(largest.gap_points) if largest else 0.0

    @property
    def skewed(self) -> bool:
        return self.status is Status.SKEWED

    @property
    def summary(self) -> str:
        """The verdict in words, naming the segment that drives it."""
        largest = self.largest
        if self.status is Status.NO_TARGET:
            return "No intended shares to compare with."
        if self.n == 0:
            return "No participants yet."
        assert largest is not None and self.p_value is not None
        gap = f"{largest.value} is {abs(largest.gap_points):.1f} points {largest.direction}"
        if largest.direction == "on target":
            gap = "every segment is on target"
        if self.status is Status.SKEWED:
            return (
                f"Skewed: {gap} its intended {largest.intended_percent:.1f} % "
                f"(p = {_p_text(self.p_value)})."
            )
        if self.p_value < self.alpha:
            return (
                f"Representative within the practical bound of {self.practical_bound:g} points: "
                f"{gap} (p = {_p_text(self.p_value)})."
            )
        if self.largest_gap_points > self.practical_bound:
            return (
                f"Not enough participants to tell: {gap}, but p = {_p_text(self.p_value)} "
                f"is not below {self.alpha:g}."
            )
        return f"Representative: {gap} (p = {_p_text(self.p_value)})."


def _p_text(p: float) -> str:
    if p == 0:
        return "0"
    return f"{p:.2g}" if p < 0.01 else f"{p:.3f}"


def segment_fit(
    *,
    observed: Sequence[tuple[str, int]],
    intended: Sequence[tuple[str, float]],
    practical_bound: float = DEFAULT_PRACTICAL_BOUND,
    alpha: float = ALPHA,
) -> Fit:
    """Compare a cohort's counts per segment with the intended shares of one dimension.

    ``observed`` is (segment value, participants) and ``intended`` is (segment value, per cent);
    a value present in only one of them counts as 0 in the other. Order follows ``intended``, then
    any observed segment the plan did not list.
    """
    if practical_bound < 0 or not math.isfinite(practical_bound):
        raise ValueError("The practical bound is a number of percentage points, 0 or more.")
    if not 0 < alpha < 1:
        raise ValueError("The significance level must be between 0 and 1.")
    counts: dict[str, int] = {}
    for value, count in observed:
        if count < 0:
            raise ValueError(f"A participant count cannot be negative ({value}: {count}).")
        counts[value] = counts.get(value, 0) + int(count)
    shares: dict[str, float] = {}
    for value, share in intended:
        if share < 0 or not math.isfinite(share):
            raise ValueError(f"An intended share is a percentage, 0 or more ({value}: {share}).")
        shares[value] = shares.get(value, 0.0) + float(share)
    names = list(shares) + [value for value in counts if value not in shares]
    total_share = sum(shares.values())
    n = sum(counts.values())
    if total_share <= 0:
        return Fit(n, (), None, None, None, practical_bound, alpha, Status.NO_TARGET)
    p = np.array([shares.get(name, 0.0) / total_share for name in names])
    x = np.array([counts.get(name, 0) for name in names], dtype=np.int64)
    segments = tuple(
        SegmentShare(
            value=name,
            observed=int(x[i]),
            intended_percent=100 * float(p[i]),
            observed_percent=100 * float(x[i]) / n if n else 0.0,
            expected=float(p[i]) * n,
        )
        for i, name in enumerate(names)
    )
    if n == 0:
        return Fit(0, segments, None, None, None, practical_bound, alpha, Status.NOT_ENOUGH)
    method, statistic, p_value = _test(x, p)
    gap = max(abs(s.gap_points) for s in segments)
    if p_value < alpha and gap > practical_bound:
        status = Status.SKEWED
    elif p_value >= alpha and gap > practical_bound:
        status = Status.NOT_ENOUGH
    else:
        status = Status.REPRESENTATIVE
    return Fit(n, segments, method, statistic, p_value, practical_bound, alpha, status)


def _test(x: npt.NDArray[np.int64], p: npt.NDArray[np.float64]) -> tuple[str, float | None, float]:
    n = int(x.sum())
    if np.any((p == 0) & (x > 0)):
        # A participant in a segment the plan intends at 0 %: impossible under the plan.
        return EXACT_MULTINOMIAL, None, 0.0
    keep = p > 0  # segments intended at 0 % with nobody in them carry no information
    x, p = x[keep], p[keep]
    if len(p) < 2:
        return EXACT_MULTINOMIAL, None, 1.0
    expected = p * n
    if expected.min() >= MIN_EXPECTED:
        statistic, p_value = stats.chisquare(x, expected)
        return CHI_SQUARE, float(statistic), float(p_value)
    if math.comb(n + len(p) - 1, len(p) - 1) <= EXACT_LIMIT:
        return EXACT_MULTINOMIAL, None, _exact_multinomial(x, p)
    return MONTE_CARLO_MULTINOMIAL, None, _monte_carlo_multinomial(x, p)


def _log_pmf(outcomes: npt.NDArray[np.int64], p: npt.NDArray[np.float64]) -> npt.NDArray:
    """log P(outcome) under Multinomial(n, p), one value per row of ``outcomes``."""
    n = int(outcomes[0].sum())
    return (
        special.gammaln(n + 1)
        - special.gammaln(outcomes + 1).sum(axis=1)
        + (outcomes * np.log(p)).sum(axis=1)
    )


def _compositions(n: int, k: int) -> npt.NDArray[np.int64]:
    """Every way to split n participants into k segments, one per row (stars and bars)."""
    bars = np.fromiter(
        itertools.chain.from_iterable(itertools.combinations(range(n + k - 1), k - 1)),
        dtype=np.int64,
    ).reshape(-1, k - 1)
    edges = np.hstack([np.full((len(bars), 1), -1), bars, np.full((len(bars), 1), n + k - 1)])
    return np.diff(edges, axis=1) - 1


def _exact_multinomial(x: npt.NDArray[np.int64], p: npt.NDArray[np.float64]) -> float:
    """Sum of the probabilities of every cohort at most as likely as the observed one."""
    outcomes = _compositions(int(x.sum()), len(p))
    log_probs = _log_pmf(outcomes, p)
    observed = _log_pmf(x[np.newaxis, :], p)[0]
    at_most = log_probs <= observed + _LOG_SLACK * max(1.0, abs(observed))
    return float(min(1.0, np.exp(log_probs[at_most]).sum()))


def _monte_carlo_multinomial(x: npt.NDArray[np.int64], p: npt.NDArray[np.float64]) -> float:
    """The exact test's p-value estimated from seeded random cohorts (add-one estimate)."""
    rng = np.random.default_rng(_SEED)
    draws = rng.multinomial(int(x.sum()), p, size=MONTE_CARLO_DRAWS)
    observed = _log_pmf(x[np.newaxis, :], p)[0]
    at_most = _log_pmf(draws, p) <= observed + _LOG_SLACK * max(1.0, abs(observed))
    return float((1 + at_most.sum()) / (1 + MONTE_CARLO_DRAWS))
