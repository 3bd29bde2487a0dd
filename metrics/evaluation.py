"""Evaluating exit criteria as of a moment: load their observations, ask the statistics.

The check run (``metrics.checks``) evaluates the criteria of one run, or of a whole chunk of
runs, together: :func:`criteria_results` loads what every criterion needs in one statement
(whatever the number of criteria, plans and days of data), then evaluates each one.
Each criterion is evaluated over the window ``[start, end)`` (``window_hours`` before the
check's due time, or the whole pilot so far; never past the due time), cut into pieces that one
table answers exactly (:func:`window_pieces`): the raw samples for the parts of an hour at the
edges (less than an hour each: fewer than 120 samples of a per-minute metric),
``HourRollup`` for the whole hours and ``DayRollup`` for the whole UTC days in the middle.
Ninety days of per-minute data is 90 day rows, at most 46 hour rows and fewer than 120
samples, not 130,000 samples.

* **total, mean, max, min, rate_per, ratio** read the *moments* of the window (count, Σx, Σx²,
  min, max), summed over the pieces, for every (plan, metric, window) of the chunk. A
  mean comes from the moments (``statistics.mean_from_moments``, the same t interval as
  ``statistics.mean``); counts use the sum (P1 defects in the window = Σ values, whatever the
  number of samples). All exact.
* **percentile** comes from the window's *sketch* (``metrics.sketch``): the per-day and per-hour
  log-bucket histograms kept with the rollups, plus the raw samples of the edge hours binned
  in SQL with ``metrics_sketch_key``, read for every percentile criterion of the chunk and
  merged with NumPy. The value (``Sketch.quantile``, Hyndman & Fan type 7 like
  ``statistics.percentile``) and the order-statistic bounds x₍ₗ₎, x₍ᵤ₎ for the ranks of
  ``statistics.order_statistic_ranks`` (``Sketch.order_statistics``) are each within
  ``sketch.ALPHA`` (1 %) relative of the exact ones, clamped to the window's exact minimum and
  maximum. The sample size, and so the ranks, are exact (the moments' count).
* **latest** is the last sample before the end of the window (one index probe per criterion),
  with the window's count from the moments.

The three are branches of one statement (:func:`_load`): one round trip, and one snapshot, so
the moments and the sketch of a window always count the same samples.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connection

from metrics import statistics
from metrics.rollups import retention_horizon
from metrics.sketch import Sketch, sent_part
from pilots.models import ExitCriterion

Aggregation = ExitCriterion.Aggregation

_HOUR = dt.timedelta(hours=1)
_DAY = dt.timedelta(days=1)

# (plan id, metric id, start, end): what one piece of loaded data answers.
Key = tuple[int, int, dt.datetime, dt.datetime]
# (criterion, plan id, start, end): one criterion to evaluate over its window.
Item = tuple[ExitCriterion, int, dt.datetime, dt.datetime]


@dataclass(frozen=True)
class Moments:
    """What the rollups keep of a metric over a window: enough for totals, means and extremes."""

    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class Outcome:
    """One criterion's result, ready to be stored as a ``CriterionResult``."""

    value: float | None
    low: float | None
    high: float | None
    sample_size: int
    method: str
    verdict: str
    reason: str


# --- windows -----------------------------------------------------------------------------------


def criterion_window(
    *, window_hours: int | None, due_at: dt.datetime, plan_start: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    """``[start, end)`` of a criterion evaluated at ``due_at``: the last ``window_hours`` hours,
    or since the plan's window started; it ends at ``due_at`` (a sample observed at the due time
    or later belongs to the next check)."""
    start = due_at - dt.timedelta(hours=window_hours) if window_hours else plan_start
    return min(start, due_at), due_at


def _floor(t: dt.datetime, step: dt.timedelta) -> dt.datetime:
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return epoch + ((t - epoch) // step) * step


def _ceil(t: dt.datetime, step: dt.timedelta) -> dt.datetime:
    floored = _floor(t, step)
    return floored if floored == t else floored + step


@dataclass(frozen=True)
class Pieces:
    """``[start, end)`` cut into what each table answers exactly.

    Whole UTC days ``[d0, d1)`` from ``DayRollup``; whole hours ``[h0, d0)`` and ``[d1, h1)``
    from ``HourRollup``; the rest ``[start, h0)`` and ``[h1, end)`` (less than an hour each)
    from samples. Empty ranges have ``lo >= hi``. Together they tile the window without overlap.
    """

    start: dt.datetime
    h0: dt.datetime
    d0: dt.datetime
    d1: dt.datetime
    h1: dt.datetime
    end: dt.datetime


def window_pieces(
    *, start: dt.datetime, end: dt.datetime, pruned_before: dt.datetime | None = None
) -> Pieces:
    """The pieces of ``[start, end)``. ``pruned_before``: raw samples before it may have been
    deleted (``metrics.rollups.retention_horizon``); a window starting before it is read from the
    whole hour that holds its start. Only a whole-pilot window can (a rolling window is shorter
    than the retention, which ``samples_prune`` enforces), and it starts where the pilot starts:
    no sample of the plan is older (ingestion refuses samples outside the pilot window), so that
    hour's rollup holds exactly the window's samples."""
    h0, h1 = _ceil(start, _HOUR), _floor(end, _HOUR)
    if pruned_before is not None and start < pruned_before and _floor(start, _HOUR) < h1:
        h0 = _floor(start, _HOUR)  # then [start, h0) is empty
    if h0 >= h1:  # less than one whole hour: all from the samples
        return Pieces(start, end, end, end, end, end)
    d0, d1 = _ceil(h0, _DAY), _floor(h1, _DAY)
    if d0 >= d1:  # no whole day: all hours
        d0 = d1 = h1
    return Pieces(start, h0, d0, d1, h1, end)


# --- loading -----------------------------------------------------------------------------------

# Every query takes its windows as parallel arrays (``unnest … WITH ORDINALITY AS w``), and
# answers each window with a few index ranges read in a LATERAL subquery. Each piece is one
# range of the (plan, metric, time) unique index: equality on plan and metric, a range on time,
# no OR. For the rollups the lower bound is also written as a row comparison, which only that
# index can use: with stale statistics (a plan whose data arrived since the last ANALYZE looks
# empty) the planner otherwise rates the foreign key's single-column plan_id index as just as
# good, and reads every row of the plan (seconds instead of milliseconds, measured). A kind of
# piece empty in every window is left out of the query (an hour-aligned window never reads
# samples for its moments).

# One range of the (plan, metric, bucket) unique index of a rollup table, "r".
_ROLLUP_RANGE = """
         WHERE (r.plan_id, r.metric_id, r.bucket) >= (w.plan, w.metric, w.{lo})
           AND r.plan_id = w.plan AND r.metric_id = w.metric
           AND r.bucket >= w.{lo} AND r.bucket < w.{hi}"""

# One range of the (plan, metric, observed_at, …) unique index of the samples, "s".
_SAMPLE_RANGE = """
         WHERE s.plan_id = w.plan AND s.metric_id = w.metric
           AND s.observed_at >= w.{lo} AND s.observed_at < w.{hi}"""

_WINDOWS = """
  FROM unnest(%({p}plan)s::bigint[], %({p}metric)s::bigint[], {columns})
       WITH ORDINALITY AS w(plan, metric, {names}, i)"""

# The three kinds of reads share one statement (:func:`_load`), each a branch of a UNION ALL
# whose rows are (kind, window index, n, Σx, Σx², min, max, latest value, sketch part): one
# round trip and one snapshot instead of three. One snapshot also means the moments and the
# sketch of a window always count the same samples (both come from the same rollup rows, which
# keep a bucket's count and sketch together, and the same edge samples): two statements could
# disagree when ingestion committed between them, and had to read such windows again.
_MOMENTS, _SKETCH, _LATEST = 1, 2, 3

_MOMENTS_ROLLUP = """
        SELECT r.count AS n, r.sum AS s, r.sum_sq AS sq, r.min AS lo, r.max AS hi
          FROM {table} AS r{range}"""

_MOMENTS_SAMPLE = """
        SELECT 1 AS n, s.value AS s, s.value * s.value AS sq, s.value AS lo, s.value AS hi
          FROM metrics_sample AS s{range}"""

_MOMENTS_SQL = """
SELECT 1, w.i, p.n, p.s, p.sq, p.lo, p.hi, NULL::float8, NULL::bytea{windows}
 CROSS JOIN LATERAL (
    SELECT sum(n)::bigint AS n, sum(s) AS s, sum(sq) AS sq, min(lo) AS lo, max(hi) AS hi
      FROM ({pieces}
      ) AS pieces
 ) AS p"""

# A rollup's sketch as stored, in PostgreSQL's binary array format (``array_send``): its
# header carries the first bin key (the array's lower bound) and the counts follow as fixed-size
# elements, which ``sketch.sent_part`` reads with NumPy without a Python object per bin (parsing
# the arrays as text cost about 0.5 ms per check at 90 days, measured; this ~0.05 ms).
_SKETCH_ROLLUP = """
        SELECT array_send(array_replace(r.sketch, NULL, 0)) AS sketch
          FROM {table} AS r{range}
           AND cardinality(r.sketch) > 0"""

# The edges' raw samples (less than an hour each) are binned here, a bin a row: a one-element
# array whose lower bound is the bin's key.
_SKETCH_SAMPLE = """
        SELECT array_send(array_fill(count(*)::integer, ARRAY[1],
                                     ARRAY[metrics_sketch_key(s.value)])) AS sketch
          FROM metrics_sample AS s{range}
         GROUP BY metrics_sketch_key(s.value)"""

# The parts are merged in Python: summing a few hundred short arrays in NumPy is cheaper than
# unnesting every bin of every day into rows and grouping them in the database (measured: 2 ms
# against 5 ms for 90 days of a wide latency distribution).
_SKETCH_SQL = """
SELECT 2, w.i, NULL::bigint, NULL::float8, NULL::float8, NULL::float8, NULL::float8,
       NULL::float8, k.sketch{windows}
 CROSS JOIN LATERAL ({pieces}
 ) AS k"""

_LATEST_SQL = """
SELECT 3, w.i, NULL::bigint, NULL::float8, NULL::float8, NULL::float8, NULL::float8,
       l.value, NULL::bytea{windows}
 CROSS JOIN LATERAL (
    SELECT s.value FROM metrics_sample AS s{pieces}
     ORDER BY s.observed_at DESC, s.id DESC
     LIMIT 1
 ) AS l"""


def _piece(template: str, table: str, lo: str, hi: str) -> tuple[str, str, str]:
    """``(SQL, lower bound, upper bound)`` of one piece: ``template`` over ``[w.lo, w.hi)``."""
    where = _SAMPLE_RANGE if table == "metrics_sample" else _ROLLUP_RANGE
    return template.format(table=table, range=where.format(lo=lo, hi=hi)), lo, hi


# The pieces of each query, in time order.
_MOMENT_PIECES = [
    _piece(_MOMENTS_SAMPLE, "metrics_sample", "t0", "h0"),
    _piece(_MOMENTS_ROLLUP, "metrics_hourrollup", "h0", "d0"),
    _piece(_MOMENTS_ROLLUP, "metrics_dayrollup", "d0", "d1"),
    _piece(_MOMENTS_ROLLUP, "metrics_hourrollup", "d1", "h1"),
    _piece(_MOMENTS_SAMPLE, "metrics_sample", "h1", "t1"),
]
_SKETCH_PIECES = [
    _piece(_SKETCH_SAMPLE, "metrics_sample", "t0", "h0"),
    _piece(_SKETCH_ROLLUP, "metrics_hourrollup", "h0", "d0"),
    _piece(_SKETCH_ROLLUP, "metrics_dayrollup", "d0", "d1"),
    _piece(_SKETCH_ROLLUP, "metrics_hourrollup", "d1", "h1"),
    _piece(_SKETCH_SAMPLE, "metrics_sample", "h1", "t1"),
]
_LATEST_PIECES = [_piece("{range}", "metrics_sample", "t0", "t1")]

# Each kind's branch of the statement and its pieces; its parameters carry the kind's prefix.
_BRANCHES = {
    _MOMENTS: ("m_", _MOMENTS_SQL, _MOMENT_PIECES),
    _SKETCH: ("s_", _SKETCH_SQL, _SKETCH_PIECES),
    _LATEST: ("l_", _LATEST_SQL, _LATEST_PIECES),
}

_BOUNDS = ("t0", "h0", "d0", "d1", "h1", "t1")


def _bounds(p: Pieces) -> dict[str, dt.datetime]:
    return dict(zip(_BOUNDS, (p.start, p.h0, p.d0, p.d1, p.h1, p.end), strict=True))


def _branch(
    kind: int, keys: Sequence[Key], pruned_before: dt.datetime | None
) -> tuple[str, dict[str, list]]:
    """The SQL and parameters of ``kind``'s branch over the windows ``keys``; its rows carry the
    1-based window index."""
    prefix, sql, pieces = _BRANCHES[kind]
    bounds = [
        _bounds(window_pieces(start=start, end=end, pruned_before=pruned_before))
        for _, _, start, end in keys
    ]
    params: dict[str, list] = {
        f"{prefix}plan": [plan for plan, _, _, _ in keys],
        f"{prefix}metric": [metric for _, metric, _, _ in keys],
    }
    used = {bound for _, lo, hi in pieces for bound in (lo, hi)}
    names = [name for name in _BOUNDS if name in used]
    for name in names:
        params[prefix + name] = [b[name] for b in bounds]
    text = sql.format(
        windows=_WINDOWS.format(
            p=prefix,
            columns=", ".join(f"%({prefix}{name})s::timestamptz[]" for name in names),
            names=", ".join(names),
        ),
        pieces="\n        UNION ALL".join(
            piece for piece, lo, hi in pieces if any(b[lo] < b[hi] for b in bounds)
        )
        or pieces[0][0],  # every window empty: one piece keeps the query valid
    )
    return text, params


@dataclass
class Loaded:
    """What the criteria of a check (or of a chunk of checks) need, keyed by window."""

    moments: dict[Key, Moments]
    sketches: dict[Key, Sketch]
    latest: dict[Key, float]


def _load(
    *, moments: Iterable[Key] = (), sketches: Iterable[Key] = (), latest: Iterable[Key] = ()
) -> Loaded:
    """The moments, merged sketches and last values of the windows asked for, in one statement
    (none when nothing is asked). A window without data is missing from the answer."""
    wanted = {
        _MOMENTS: list(dict.fromkeys(moments)),
        _SKETCH: list(dict.fromkeys(sketches)),
        _LATEST: list(dict.fromkeys(latest)),
    }
    loaded = Loaded({}, {}, {})
    if not any(wanted.values()):
        return loaded
    pruned_before = retention_horizon()
    texts: list[str] = []
    params: dict[str, list] = {}
    for kind, keys in wanted.items():
        if keys:
            text, more = _branch(kind, keys, pruned_before)
            texts.append(text)
            params.update(more)
    with connection.cursor() as cursor:
        cursor.execute("\nUNION ALL".join(texts), params)
        rows = cursor.fetchall()
    parts: dict[int, list[tuple[int | None, np.ndarray]]] = {}
    for kind, i, n, s, sq, lo, hi, value, sketch in rows:
        if kind == _MOMENTS:
            if n:
                key = wanted[_MOMENTS][i - 1]
                loaded.moments[key] = Moments(int(n), float(s), float(sq), float(lo), float(hi))
        elif kind == _SKETCH:
            parts.setdefault(i, []).append(sent_part(sketch))
        else:
            loaded.latest[wanted[_LATEST][i - 1]] = float(value)
    loaded.sketches = {wanted[_SKETCH][i - 1]: Sketch.of(p) for i, p in parts.items()}
    return loaded


def moments_load(keys: Iterable[Key]) -> dict[Key, Moments]:
    """The moments of each ``(plan, metric, start, end)``, in one query (missing: no data)."""
    return _load(moments=keys).moments


def sketches_load(keys: Iterable[Key]) -> dict[Key, Sketch]:
    """The merged sketch of each ``(plan, metric, start, end)``, in one query (missing: no
    data)."""
    return _load(sketches=keys).sketches


def latest_load(keys: Iterable[Key]) -> dict[Key, float]:
    """The last value of each ``(plan, metric, start, end)``, in one query."""
    return _load(latest=keys).latest


def window_moments(
    *, plan_id: int, metric_ids: list[int], start: dt.datetime, end: dt.datetime
) -> dict[int, Moments]:
    """The moments of each metric over ``[start, end)``, in one query (missing: no data)."""
    moments = moments_load((plan_id, metric_id, start, end) for metric_id in metric_ids)
    return {key[1]: m for key, m in moments.items()}


def criteria_load(items: Sequence[Item]) -> Loaded:
    """Everything ``items`` need (moments; sketches for percentiles; last values for "latest"),
    in one statement whatever the number of criteria, plans and days."""
    moment_keys: list[Key] = []
    sketch_keys: list[Key] = []
    latest_keys: list[Key] = []
    for criterion, plan_id, start, end in items:
        key = (plan_id, criterion.metric_id, start, end)
        moment_keys.append(key)
        if criterion.denominator_id is not None:
            moment_keys.append((plan_id, criterion.denominator_id, start, end))
        if criterion.aggregation == Aggregation.PERCENTILE:
            sketch_keys.append(key)
        elif criterion.aggregation == Aggregation.LATEST:
            latest_keys.append(key)
    return _load(moments=moment_keys, sketches=sketch_keys, latest=latest_keys)


# --- evaluating --------------------------------------------------------------------------------


def _exact(estimate: statistics.Estimate, n: int) -> statistics.Estimate:
    """An exact statistic of the window's aggregate, with the window's sample size."""
    return dataclasses.replace(estimate, sample_size=n)


def _percentile_estimate(m: Moments, sketch: Sketch | None, *, q: float) -> statistics.Estimate:
    """``statistics.percentile`` of the window from its sketch (each figure within 1 %).

    The sample size is the moments' exact count, and it chooses the ranks of the interval. Should
    the sketch ever disagree with it (they are read in one snapshot, so only stored sketches out
    of step with their counts could), the value is the sketch's and there is no interval.
    """
    label = f"{statistics._ordinal(q)} percentile of"
    method, confidence = statistics.ORDER_STATISTIC, statistics.DEFAULT_CONFIDENCE
    if not m.n or sketch is None or not sketch.n:
        return statistics.Estimate(None, None, None, m.n, method, confidence, label)
    extremes = {"minimum": m.minimum, "maximum": m.maximum}
    value = sketch.quantile(q, **extremes)
    ranks = statistics.order_statistic_ranks(n=m.n, q=q) if sketch.n == m.n else None
    low, high = sketch.order_statistics(ranks, **extremes) if ranks else (None, None)
    return statistics.Estimate(value, low, high, m.n, method, confidence, label)


def criterion_evaluate(
    *, criterion: ExitCriterion, plan_id: int, start: dt.datetime, end: dt.datetime
) -> statistics.Evaluation:
    """The verdict on ``criterion`` over ``[start, end)``. Raises ``ValueError`` when it cannot
    be evaluated (no threshold, inconsistent counts): the caller records that, never drops it.

    ``criterion`` must have ``metric`` and ``denominator`` loaded (``select_related``).
    """
    item = (criterion, plan_id, start, end)
    return _evaluate(item, criteria_load([item]))


def _evaluate(item: Item, loaded: Loaded) -> statistics.Evaluation:
    criterion, plan_id, start, end = item
    if criterion.threshold is None:
        raise ValueError("No threshold set yet: the criterion cannot be evaluated.")
    agg = criterion.aggregation
    metric = criterion.metric
    key = (plan_id, metric.pk, start, end)
    common = {
        "comparator": criterion.comparator,
        "threshold": criterion.threshold,
        "min_sample_size": int(criterion.min_sample_size),
    }
    if agg in (Aggregation.RATE_PER, Aggregation.RATIO):
        if criterion.denominator_id is None:
            raise ValueError(f"The {agg} aggregation needs a denominator metric.")
        if key not in loaded.moments:
            # No report is not zero events: a count is judged once it was reported (a 0 counts).
            raise ValueError(f"{metric.name}: no data yet in the window (a reported 0 counts).")
        events = loaded.moments[key].total
        exposure = loaded.moments.get(
            (plan_id, criterion.denominator_id, start, end), Moments()
        ).total
        return statistics.evaluate_criterion(
            aggregation=agg,
            numerator=events,
            denominator=exposure,
            per_n=criterion.per_n,
            name=metric.name,
            unit="" if agg == Aggregation.RATIO else criterion.unit,
            sample_noun=criterion.denominator.name.lower() if criterion.denominator else "",
            **common,
        )
    m = loaded.moments.get(key, Moments())
    if agg == Aggregation.PERCENTILE:
        if criterion.percentile is None:
            raise ValueError("The percentile aggregation needs a percentile (e.g. 95).")
        q = float(criterion.percentile)
        estimate = _percentile_estimate(m, loaded.sketches.get(key), q=q)
        evaluation = statistics.evaluate(
            estimate=estimate, name=metric.name, unit=criterion.unit, **common
        )
        return _percentile_hint(evaluation, q=q, min_sample_size=common["min_sample_size"])
    if agg == Aggregation.MEAN:
        estimate = statistics.mean_from_moments(
            n=m.n, total=m.total, total_sq=m.total_sq, minimum=m.minimum, maximum=m.maximum
        )
    elif m.n == 0 and agg == Aggregation.TOTAL:
        # A count never reported is not a count of 0: "no data yet in the window" ("P1 defects
        # total = 0" is not met before a 0 has been reported), whatever the minimum sample size.
        estimate = dataclasses.replace(statistics.total(values=[]), value=None, low=None, high=None)
    elif m.n == 0:
        estimate = statistics.latest(values=[])  # no value: "no data yet in the window"
    elif agg == Aggregation.TOTAL:
        estimate = _exact(statistics.total(values=[m.total]), m.n)
    elif agg == Aggregation.LATEST:
        values = [loaded.latest[key]] if key in loaded.latest else []
        estimate = _exact(statistics.latest(values=values), m.n if values else 0)
    elif agg == Aggregation.MAX:
        estimate = _exact(statistics.maximum(values=[m.maximum]), m.n)  # type: ignore[list-item]
    elif agg == Aggregation.MIN:
        estimate = _exact(statistics.minimum(values=[m.minimum]), m.n)  # type: ignore[list-item]
    else:
        raise ValueError(f"Unknown aggregation {agg!r}.")
    return statistics.evaluate(estimate=estimate, name=metric.name, unit=criterion.unit, **common)


def _percentile_hint(
    evaluation: statistics.Evaluation, *, q: float, min_sample_size: int
) -> statistics.Evaluation:
    """As ``statistics.evaluate_criterion`` does: say how many observations an interval needs."""
    estimate = evaluation.estimate
    if estimate.value is None or estimate.low is not None or estimate.sample_size < min_sample_size:
        return evaluation
    needed = statistics.percentile_min_sample_size(q=q)
    reason = evaluation.reason.removesuffix(".") + f" (needs at least {needed:,})."
    return dataclasses.replace(evaluation, reason=reason)


def _outcome(item: Item, loaded: Loaded) -> Outcome:
    try:
        evaluation = _evaluate(item, loaded)
    except ValueError as exc:
        return Outcome(
            value=None,
            low=None,
            high=None,
            sample_size=0,
            method="",
            verdict=statistics.Verdict.NOT_ENOUGH_EVIDENCE,
            reason=str(exc),
        )
    e = evaluation.estimate
    return Outcome(
        value=e.value,
        low=e.low,
        high=e.high,
        sample_size=e.sample_size,
        method=e.method,
        verdict=evaluation.verdict,
        reason=evaluation.reason,
    )


def criteria_results(items: Sequence[Item]) -> list[Outcome]:
    """:func:`criterion_result` of every item, with their data loaded together (one
    statement however many criteria, plans and days)."""
    loaded = criteria_load(items)
    return [_outcome(item, loaded) for item in items]


def criterion_result(
    *, criterion: ExitCriterion, plan_id: int, start: dt.datetime, end: dt.datetime
) -> Outcome:
    """:func:`criterion_evaluate` as a storable outcome; a criterion that cannot be evaluated is
    "not enough evidence" with the reason why."""
    return criteria_results([(criterion, plan_id, start, end)])[0]
