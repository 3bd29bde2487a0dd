"""How much more evidence would decide an exit criterion: pure functions, no database.

For a criterion whose verdict is "not enough evidence", each ``evidence_for_*`` function asks:
if the current rate (mean, spread, share, distribution) holds, after how many more observations
would the criterion's own interval fall wholly on one side of the threshold? It projects the
data to ``n + m`` observations and calls the same estimator and the same
``metrics.statistics.evaluate`` the check run uses, searching ``m`` by doubling then bisection,
so the answer agrees with the verdict the evaluator would then give.

The projection per kind (what "the current rate holds" means):

* **rate per N** (exact Poisson): events grow with exposure at the current rate, rounded to the
  nearest whole event (halves up); with no events yet, none are added.
* **ratio** (Wilson): successes grow with trials at the current share, rounded the same way.
* **mean** (t): the mean and the standard deviation stay as they are.
* **percentile** (order statistics): the sample's distribution stays as it is; at ``n + m``
  observations each bound is read from the current sample at the relative position of the
  rank chosen for ``n + m`` (exactly the current interval at ``m = 0``).
* **exact** statistics (total, latest, max, min): more observations only matter below the
  minimum sample size.

It is an estimate: the real data will wander, and the next check may decide sooner or later.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
from scipy import stats

from metrics import statistics
from metrics.statistics import Estimate, Number, Values, Verdict

# Beyond this many more observations a criterion counts as "never decides at the current value"
# (2**30, about a billion: no pilot gets there, and the search stays at ~60 evaluations).
SEARCH_CAP: Final = 2**30

ESTIMATE_NOTE: Final = "an estimate that assumes the current rate holds"


def round_2sf(x: float) -> float:
    """``x`` to two significant figures: 1,834 → 1,800, 3.46 → 3.5, 0.0123 → 0.012."""
    if x == 0 or not math.isfinite(x):
        return x
    digits = 1 - math.floor(math.log10(abs(x)))
    return round(x, digits)


def _figure(x: float) -> str:
    """A rounded figure as people write it: 1,800, 3.5, 12."""
    r = round_2sf(x)
    return f"{int(r):,}" if float(r).is_integer() else f"{r:,}"


@dataclass(frozen=True)
class EvidenceNeeded:
    """The answer for one criterion.

    ``more``: more observations needed (0: already decided; ``None``: never decides at the
    current value, e.g. the estimate sits on the threshold). ``verdict``: the verdict it would
    then reach (``None`` with ``more`` ``None``). ``business_days``: ``more`` at the observed
    traffic per business day (``None`` when no traffic is known). ``condition`` qualifies the
    unit in words ("with no P2 defect").
    """

    more: int | None
    unit: str
    verdict: Verdict | None
    business_days: float | None = None
    condition: str = ""

    @property
    def more_rounded(self) -> int | None:
        return None if self.more is None else int(round_2sf(self.more))

    def words(self) -> str:
        """E.g. "needs about 1,800 more sessions with no P2 defect, about 3 business days at the
        current traffic (an estimate that assumes the current rate holds)"."""
        if self.more == 0:
            return "decided with the evidence so far"
        if self.more is None:
            return (
                "more evidence will not decide it while the value stays where it is "
                "(the interval keeps straddling the threshold)"
            )
        unit = self.unit.removesuffix("s") if self.more == 1 else self.unit
        text = f"needs about {_figure(self.more)} more {unit}"
        if self.condition:
            text += f" {self.condition}"
        if self.business_days is None:
            days = "the time it takes is unknown (no traffic observed yet)"
        elif self.business_days < 1:
            days = "less than a business day at the current traffic"
        else:
            figure = _figure(self.business_days)
            noun = "business day" if figure == "1" else "business days"
            days = f"about {figure} {noun} at the current traffic"
        return f"{text}, {days} ({ESTIMATE_NOTE})"


def more_needed(decided: Callable[[int], bool], *, cap: int = SEARCH_CAP) -> int | None:
    """The smallest ``m ≥ 0`` with ``decided(m)``, by doubling then bisection; ``None`` if even
    ``cap`` more does not decide. Assumes that once decided, more data keeps it decided (true
    of every interval here up to rounding; the bisection's answer is decided and ``m − 1`` is
    not, whatever happens)."""
    if decided(0):
        return 0
    low, high = 0, 1  # invariant: not decided at low
    while not decided(high):
        if high >= cap:
            return None
        low, high = high, high * 2
    while high - low > 1:
        mid = (low + high) // 2
        if decided(mid):
            high = mid
        else:
            low = mid
    return high


def _verdict(estimate: Estimate, comparator: str, threshold: Number, min_sample_size: int) -> (
    Verdict
):  # fmt: skip
    return statistics.evaluate(
        estimate=estimate, comparator=comparator, threshold=threshold,
        min_sample_size=min_sample_size,
    ).verdict  # fmt: skip


def _result(
    project: Callable[[int], Estimate], *, comparator: str, threshold: Number,
    min_sample_size: int, per_business_day: Number | None, unit: str, condition: str = "",
) -> EvidenceNeeded:  # fmt: skip
    traffic = None if per_business_day is None else float(per_business_day)
    if traffic is not None and (not math.isfinite(traffic) or traffic < 0):
        raise ValueError(f"per_business_day must be a number ≥ 0, got {per_business_day!r}.")

    def decided(m: int) -> bool:
        verdict = _verdict(project(m), comparator, threshold, min_sample_size)
        return verdict is not Verdict.NOT_ENOUGH_EVIDENCE

    more = more_needed(decided)
    if more is None:
        return EvidenceNeeded(None, unit, None, None, condition)
    verdict = _verdict(project(more), comparator, threshold, min_sample_size)
    days = more / traffic if traffic else None
    return EvidenceNeeded(more, unit, verdict, 0.0 if more == 0 else days, condition)


def _grow(count: int, base: float, m: int) -> int:
    """``count`` scaled from ``base`` to ``base + m`` at the same rate, nearest whole (½ up)."""
    return math.floor(count * (base + m) / base + 0.5)


def evidence_for_rate(
    *, events: Number, exposure: Number, per_n: Number, comparator: str, threshold: Number,
    min_sample_size: int = 0, per_business_day: Number | None = None, unit: str = "sessions",
    event_name: str = "", confidence: float = statistics.DEFAULT_CONFIDENCE,
) -> EvidenceNeeded:  # fmt: skip
    """A rate per N (e.g. P2 defects per 1,000 sessions), exact Poisson interval.

    ``per_business_day``: exposure observed per business day. ``event_name`` ("P2 defect")
    words the zero-event case: "more sessions with no P2 defect".
    """
    statistics.rate_per(events=events, exposure=exposure, per_n=per_n)  # validates the inputs
    x, e = int(float(events)), float(exposure)
    if e == 0:
        raise ValueError("exposure must be > 0: with no exposure there is no rate to project.")

    def project(m: int) -> Estimate:
        return statistics.rate_per(
            events=_grow(x, e, m), exposure=e + m, per_n=per_n, confidence=confidence
        )

    condition = f"with no {event_name}" if x == 0 and event_name else ""
    return _result(
        project, comparator=comparator, threshold=threshold, min_sample_size=min_sample_size,
        per_business_day=per_business_day, unit=unit, condition=condition,
    )  # fmt: skip


def evidence_for_ratio(
    *, successes: Number, trials: Number, comparator: str, threshold: Number,
    min_sample_size: int = 0, per_business_day: Number | None = None, unit: str = "requests",
    confidence: float = statistics.DEFAULT_CONFIDENCE,
) -> EvidenceNeeded:  # fmt: skip
    """A ratio of two counts in per cent (threshold in per cent, as a ratio criterion stores
    it), Wilson interval. ``per_business_day``: trials per business day."""
    statistics.proportion(successes=successes, trials=trials)  # validates the inputs
    x, n = int(float(successes)), int(float(trials))
    if n == 0:
        raise ValueError("trials must be > 0: with no trials there is no share to project.")

    def project(m: int) -> Estimate:
        return statistics.proportion(
            successes=_grow(x, n, m), trials=n + m, confidence=confidence, percent=True
        )

    return _result(
        project, comparator=comparator, threshold=threshold, min_sample_size=min_sample_size,
        per_business_day=per_business_day, unit=unit,
    )  # fmt: skip


def evidence_for_mean(
    *, n: int, mean: Number, sd: Number, comparator: str, threshold: Number,
    min_sample_size: int = 0, per_business_day: Number | None = None, unit: str = "samples",
    confidence: float = statistics.DEFAULT_CONFIDENCE,
) -> EvidenceNeeded:  # fmt: skip
    """A mean with a t interval, from the current count, mean and standard deviation (n − 1)."""
    count = statistics._count(n, "n")
    m0 = statistics._finite(mean, "mean")
    s = statistics._finite(sd, "sd")
    if s < 0:
        raise ValueError(f"sd must be ≥ 0, got {sd!r}.")
    if count == 0:
        raise ValueError("n must be > 0: with no observations there is no mean to project.")

    def project(m: int) -> Estimate:
        k = count + m
        spread = {"minimum": m0, "maximum": m0} if s == 0 else {}
        return statistics.mean_from_moments(
            n=k, total=m0 * k, total_sq=(k - 1) * s * s + k * m0 * m0, confidence=confidence,
            **spread,
        )  # fmt: skip

    return _result(
        project, comparator=comparator, threshold=threshold, min_sample_size=min_sample_size,
        per_business_day=per_business_day, unit=unit,
    )  # fmt: skip


def evidence_for_percentile(
    *, values: Values, q: Number, comparator: str, threshold: Number, min_sample_size: int = 0,
    per_business_day: Number | None = None, unit: str = "samples",
    confidence: float = statistics.DEFAULT_CONFIDENCE,
) -> EvidenceNeeded:  # fmt: skip
    """A percentile (``q`` in per cent) with an order-statistic interval, from the current
    sample, whose distribution is assumed to hold. At ``n + m`` observations the rank ``k``
    chosen for ``n + m`` is read from the current sample at the same relative position,
    ``(k − 1) / (n + m − 1)``, interpolated as the percentile itself is (type 7): at ``m = 0``
    that is exactly the current interval, and as ``m`` grows both bounds close in on the
    current percentile."""
    arr = np.sort(statistics._array(values))
    n = int(arr.size)
    if n == 0:
        raise ValueError("values must not be empty: with no sample there is no percentile.")
    current = statistics.percentile(values=arr, q=q, confidence=confidence)

    def at(rank: int, k: int) -> float:
        # Position (rank − 1)·(n − 1)/(k − 1) in whole numbers, so m = 0 hits x₍rank₎ exactly.
        whole, part = divmod((rank - 1) * (n - 1), k - 1)
        if part == 0:
            return float(arr[whole])
        return float(arr[whole] + part / (k - 1) * (arr[whole + 1] - arr[whole]))

    def project(m: int) -> Estimate:
        k = n + m
        ranks = statistics.order_statistic_ranks(n=k, q=q, confidence=confidence)
        if ranks is None:
            return Estimate(current.value, None, None, k, current.method, confidence)
        low, high = (at(r, k) for r in ranks)
        return Estimate(current.value, low, high, k, current.method, confidence)

    return _result(
        project, comparator=comparator, threshold=threshold, min_sample_size=min_sample_size,
        per_business_day=per_business_day, unit=unit,
    )  # fmt: skip


def evidence_for_exact(
    *, value: Number, sample_size: int, comparator: str, threshold: Number,
    min_sample_size: int = 0, per_business_day: Number | None = None, unit: str = "samples",
) -> EvidenceNeeded:  # fmt: skip
    """A total, latest, maximum or minimum: exact, so only the minimum sample size waits.

    (A total or a maximum may still change with more data; that is not a matter of evidence.)
    """
    v = statistics._finite(value, "value")
    n = statistics._count(sample_size, "sample_size")

    def project(m: int) -> Estimate:
        return Estimate(v, v, v, n + m, statistics.EXACT)

    return _result(
        project, comparator=comparator, threshold=threshold, min_sample_size=min_sample_size,
        per_business_day=per_business_day, unit=unit,
    )  # fmt: skip


def evidence_for_result(
    *, method: str, value: float | None, low: float | None, high: float | None,
    sample_size: int, comparator: str, threshold: Number, min_sample_size: int = 0,
    per_n: Number | None = None, per_business_day: Number | None = None, unit: str = "",
    event_name: str = "", confidence: float = statistics.DEFAULT_CONFIDENCE,
) -> EvidenceNeeded:  # fmt: skip
    """The estimate from a stored criterion result (``method``, ``value``, ``low``, ``high``,
    ``sample_size`` as a check run keeps them), recovering what each kind projects.

    Rate: events = value · sample_size / per_n (exact for whole-unit exposure such as
    sessions). Ratio: successes = value · sample_size / 100. Mean: the standard deviation from
    the t interval's half width. A percentile needs its sample: use
    :func:`evidence_for_percentile`. Raises ``ValueError`` naming what is missing.
    """
    if value is None:
        raise ValueError("value: no data yet, so there is nothing to project.")
    common = {
        "comparator": comparator, "threshold": threshold, "min_sample_size": min_sample_size,
        "per_business_day": per_business_day,
    }  # fmt: skip
    if method == statistics.POISSON_EXACT:
        if per_n is None:
            raise ValueError("per_n: a rate's result needs its per N (e.g. 1000).")
        events = math.floor(value * sample_size / float(per_n) + 0.5)
        return evidence_for_rate(
            events=events, exposure=sample_size, per_n=per_n, unit=unit or "sessions",
            event_name=event_name, confidence=confidence, **common,  # type: ignore[arg-type]
        )  # fmt: skip
    if method == statistics.WILSON:
        successes = math.floor(value * sample_size / 100 + 0.5)
        return evidence_for_ratio(
            successes=successes, trials=sample_size, unit=unit or "requests",
            confidence=confidence, **common,  # type: ignore[arg-type]
        )  # fmt: skip
    if method == statistics.T:
        if low is None or high is None or sample_size < 2:
            raise ValueError("low, high: a mean needs an interval (two observations or more).")
        t = float(stats.t.ppf(1 - (1 - confidence) / 2, sample_size - 1))
        sd = (high - low) / 2 * math.sqrt(sample_size) / t
        return evidence_for_mean(
            n=sample_size, mean=value, sd=sd, unit=unit or "samples", confidence=confidence,
            **common,  # type: ignore[arg-type]
        )  # fmt: skip
    if method in (statistics.EXACT, statistics.EXACT_COUNT):
        return evidence_for_exact(
            value=value, sample_size=sample_size, unit=unit or "samples",
            **common,  # type: ignore[arg-type]
        )  # fmt: skip
    raise ValueError(
        f"method: {method!r} needs the sample itself (use evidence_for_percentile for a "
        "percentile)."
    )
