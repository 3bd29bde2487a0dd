"""Rebuilding rollups from the raw samples, and pruning raw samples that rollups already hold
(docs/operations.md, "Data volume and retention").

Raw samples are the source of truth: :func:`rollups_rebuild` recomputes a plan's hour and day
rollups and sketches from them, in set-based SQL, in one transaction. With a retention
horizon (``SAMPLE_RETENTION_DAYS``) the samples before it may be gone, so only the buckets from
the horizon on are rebuilt and older rollups are kept as they are.

:func:`samples_prune` deletes samples older than a number of whole UTC days in short
transactions, day by day as the day rollups count them; rollups and sketches stay.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from core.arrays import Float8Array, Int4Array, Int8Array
from core.precompiled import prepared_cursor
from metrics import sketch
from pilots.models import ExitCriterion

# Below this, pruning is refused: the checks' rolling windows, the trigger drill-down and a
# plan page's recent samples all read the last days of raw samples (docs/operations.md). A
# criterion's rolling window longer than this raises the minimum (:func:`min_retention_days`).
MIN_RETENTION_DAYS = 7
# Samples deleted per transaction (about): short enough not to hold ingestion up.
PRUNE_BATCH = 50_000


def min_retention_days() -> int:
    """The fewest whole days of raw samples pruning keeps: a week, or more than the longest
    rolling window of any exit criterion (its edges are read from raw samples)."""
    longest = ExitCriterion.objects.aggregate(hours=Max("window_hours"))["hours"] or 0
    return max(MIN_RETENTION_DAYS, math.ceil(longest / 24) + 1)


def horizon(days: int, *, now: dt.datetime | None = None) -> dt.datetime:
    """The start of the UTC day ``days`` whole days before today's: samples before it are older
    than ``days`` whole UTC days."""
    today = (
        (now or timezone.now())
        .astimezone(dt.UTC)
        .replace(hour=0, minute=0, second=0, microsecond=0)
    )
    return today - dt.timedelta(days=days)


def retention_horizon(*, now: dt.datetime | None = None) -> dt.datetime | None:
    """Where raw samples may have been pruned up to, by the ``SAMPLE_RETENTION_DAYS`` setting;
    None when every sample is kept."""
    days = settings.SAMPLE_RETENTION_DAYS
    return None if days is None else horizon(days, now=now)


# --- rebuilding ----------------------------------------------------------------------------

# ``{since}`` is "" (everything) or a condition on the bucket from the retention horizon on.
_REBUILD_SQL = """
DELETE FROM metrics_hourrollup WHERE plan_id = %(plan)s {since_bucket};
DELETE FROM metrics_dayrollup WHERE plan_id = %(plan)s {since_bucket};

CREATE TEMP TABLE metrics_rebuild_bins ON COMMIT DROP AS
SELECT plan_id, metric_id, date_trunc('hour', observed_at, 'UTC') AS hour,
       metrics_sketch_key(value) AS k, count(*)::integer AS n, sum(value) AS s,
       sum(value * value) AS sq, min(value) AS lo, max(value) AS hi, max(ingested_at) AS at
FROM metrics_sample
WHERE plan_id = %(plan)s {since_sample}
GROUP BY 1, 2, 3, 4;

INSERT INTO metrics_hourrollup
    (plan_id, metric_id, bucket, "count", "sum", sum_sq, "min", "max", sketch, updated_at)
SELECT plan_id, metric_id, hour, sum(n), sum(s), sum(sq), min(lo), max(hi),
       metrics_sketch_of(array_agg(k), array_agg(n)), max(at)
FROM metrics_rebuild_bins
GROUP BY 1, 2, 3;

INSERT INTO metrics_dayrollup
    (plan_id, metric_id, bucket, "count", "sum", sum_sq, "min", "max", sketch, updated_at)
SELECT plan_id, metric_id, date_trunc('day', hour, 'UTC'), sum(n), sum(s), sum(sq), min(lo),
       max(hi), metrics_sketch_of(array_agg(k), array_agg(n)), max(at)
FROM metrics_rebuild_bins
GROUP BY 1, 2, 3;

DROP TABLE metrics_rebuild_bins;
"""


def rollups_rebuild(*, plan_id: int, since: dt.datetime | None) -> None:
    """Recompute the plan's rollups and sketches from its raw samples, from ``since`` (a UTC day
    boundary; None: all of them) on, atomically; ``updated_at`` of each bucket becomes the time
    its newest sample was ingested. Idempotent.

    Ingestion waits while a plan is rebuilt (a SHARE lock on the samples): no batch can fall
    between the deletion and the new rollups.
    """
    if since is not None:
        assert since == horizon(0, now=since), "rebuild from the start of a UTC day"
        since_bucket, since_sample = "AND bucket >= %(since)s", "AND observed_at >= %(since)s"
    else:
        since_bucket = since_sample = ""
    sql = _REBUILD_SQL.format(since_bucket=since_bucket, since_sample=since_sample)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("LOCK TABLE metrics_sample IN SHARE MODE")
        for statement in filter(str.strip, sql.split(";")):
            cursor.execute(statement, {"plan": plan_id, "since": since})


# --- adding a batch of new samples ----------------------------------------------------------

# A batch's part added into a bucket that exists: the one arithmetic of every rollup writer (this
# module's statements and ingestion's, ``metrics.ingest``). Holds no ``{}``: it is joined to
# statements before their ``.format``.
ADD_INTO_BUCKET_SQL = """    ON CONFLICT (plan_id, metric_id, bucket) DO UPDATE SET
        "count" = r."count" + EXCLUDED."count",
        "sum" = r."sum" + EXCLUDED."sum",
        sum_sq = r.sum_sq + EXCLUDED.sum_sq,
        "min" = LEAST(r."min", EXCLUDED."min"),
        "max" = GREATEST(r."max", EXCLUDED."max"),
        sketch = metrics_sketch_add(r.sketch, EXCLUDED.sketch),
        updated_at = EXCLUDED.updated_at
)"""


# Upserts the hour and day buckets :func:`rollup_buckets` computed, each bucket once, in one
# statement: a new bucket is inserted, an existing one gets the batch's part added (the same
# arithmetic as the ingestion statement of ``metrics.ingest`` and as a rebuild). A bucket's sketch
# is built by ``metrics_sketch_of`` from its bins, as a rebuild builds it: the bins of all buckets
# come as two arrays (keys, counts) in bucket order, and each bucket names its slice of them
# (``first``, ``last``), so no bin becomes a row to group. Each table's rows in key order, the
# order every writer takes the buckets' row locks in.
_ADD_ONE_SQL = """{name} AS (
    INSERT INTO {table} AS r
        (plan_id, metric_id, bucket, "count", "sum", sum_sq, "min", "max", sketch, updated_at)
    SELECT b.plan_id, b.metric_id, to_timestamp(b.at), b.n, b.s, b.sq, b.lo, b.hi,
           metrics_sketch_of(x.keys[b.first:b.last], x.counts[b.first:b.last]), now()
    FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::integer[], %s::float8[],
                %s::float8[], %s::float8[], %s::float8[], %s::integer[], %s::integer[])
         AS b(plan_id, metric_id, at, n, s, sq, lo, hi, first, last),
         (SELECT %s::integer[] AS keys, %s::integer[] AS counts) AS x
    ORDER BY 1, 2, 3
"""
_ADD_ONE_SQL += ADD_INTO_BUCKET_SQL
_ADD_SQL = (
    "WITH "
    + _ADD_ONE_SQL.format(name="hours", table="metrics_hourrollup")
    + ", "
    + _ADD_ONE_SQL.format(name="days", table="metrics_dayrollup")
    + " SELECT 1"
)


def _buckets(
    plans: np.ndarray, metrics: np.ndarray, at: np.ndarray, values: np.ndarray, keys: np.ndarray
) -> list[Int8Array | Int4Array | Float8Array]:
    """One array per parameter of ``_ADD_ONE_SQL``: every (plan, metric, bucket) of rows sorted
    by plan, metric and time, where ``at`` is each row's bucket in epoch seconds (so a bucket's
    rows are consecutive), with the 1-based first and last position of its bins in the bins'
    arrays; then the bins of every bucket in bucket order as (key, count), each key once per
    bucket, ascending."""
    change = (plans[1:] != plans[:-1]) | (metrics[1:] != metrics[:-1]) | (at[1:] != at[:-1])
    starts = np.flatnonzero(np.concatenate(([True], change)))
    ends = np.append(starts[1:], len(values))
    # Each row's bucket (0-based) and bin as one number, counted once per distinct bin.
    bucket = np.cumsum(np.concatenate(([0], change)))
    lowest = int(keys.min())
    span = int(keys.max()) - lowest + 1
    bins, counts = np.unique(bucket * span + (keys - lowest), return_counts=True)
    of_bucket = bins // span
    buckets = np.arange(len(starts))
    return [
        Int8Array(plans[starts]),
        Int8Array(metrics[starts]),
        Int8Array(at[starts]),
        Int4Array(ends - starts),
        Float8Array(np.add.reduceat(values, starts)),
        Float8Array(np.add.reduceat(values * values, starts)),
        Float8Array(np.minimum.reduceat(values, starts)),
        Float8Array(np.maximum.reduceat(values, starts)),
        Int4Array(np.searchsorted(of_bucket, buckets, side="left") + 1),
        Int4Array(np.searchsorted(of_bucket, buckets, side="right")),
        Int4Array(bins % span + lowest),
        Int4Array(counts),
    ]


HOUR, DAY = 3600, 86400


Buckets = list[Int8Array | Int4Array | Float8Array]


def rollup_buckets(
    *, plans: np.ndarray, metrics: np.ndarray, seconds: np.ndarray, values: np.ndarray
) -> Buckets:
    """The hour and day buckets of samples given as columns sorted by plan, metric and time
    (``seconds``: whole epoch seconds), for :func:`rollup_buckets_add`.

    Computed with NumPy (UTC hours and days, bins by :func:`metrics.sketch.keys`, which gives
    the database's bins): a 5,000-sample batch makes about a hundred hour buckets, so the
    database upserts those instead of binning and grouping every sample from a staging copy
    (about a third of what a batch took in the database besides the samples themselves,
    measured)."""
    keys = sketch.keys(values)
    buckets: Buckets = []
    for width in (HOUR, DAY):
        buckets += _buckets(plans, metrics, seconds // width * width, values, keys)
    return buckets


def rollup_buckets_add(buckets: Buckets) -> None:
    """Add :func:`rollup_buckets` of samples just stored, all new to the database, into their
    hour and day rollups and sketches: one small statement, prepared, its columns sent as
    binary arrays (``core.arrays``): writing and reading back their ~6,600 numbers as text,
    and planning the statement, took longer than running it."""
    with prepared_cursor() as cursor:
        cursor.execute(_ADD_SQL, buckets)


# --- pruning -------------------------------------------------------------------------------

# The days (from the day rollups) that still have samples before the horizon: for each
# (plan, metric) its oldest sample (the first entry of the natural key's index), then its day
# rollups from that day to the horizon. Days pruned by an earlier run cost nothing.
_DAYS_TO_PRUNE = """
WITH pairs AS (
    SELECT plan_id, metric_id FROM metrics_dayrollup WHERE bucket < %(horizon)s GROUP BY 1, 2
), oldest AS (
    SELECT p.plan_id, p.metric_id,
           (SELECT s.observed_at FROM metrics_sample s
             WHERE s.plan_id = p.plan_id AND s.metric_id = p.metric_id
             ORDER BY s.observed_at LIMIT 1) AS first
    FROM pairs p
)
SELECT d.plan_id, d.metric_id, d.bucket, d."count"
FROM metrics_dayrollup d JOIN oldest o ON o.plan_id = d.plan_id AND o.metric_id = d.metric_id
WHERE o.first < %(horizon)s
  AND d.bucket >= date_trunc('day', o.first, 'UTC') AND d.bucket < %(horizon)s
ORDER BY d.bucket, d.plan_id, d.metric_id
"""

_PRUNE_SQL = """
DELETE FROM metrics_sample s
USING unnest(%s::bigint[], %s::bigint[], %s::timestamptz[]) AS d(plan_id, metric_id, day)
WHERE s.plan_id = d.plan_id AND s.metric_id = d.metric_id
  AND s.observed_at >= d.day AND s.observed_at < d.day + interval '1 day'
"""


@dataclass(frozen=True)
class PruneResult:
    horizon: dt.datetime
    samples: int  # deleted (or, in a dry run, to delete)
    days: int  # (plan, metric, day) buckets whose samples went
    plans: int


def samples_prune(
    *,
    days: int,
    dry_run: bool = False,
    now: dt.datetime | None = None,
    batch: int = PRUNE_BATCH,
    progress: Callable[[int], None] | None = None,
) -> PruneResult:
    """Delete raw samples older than ``days`` whole UTC days, about ``batch`` per transaction;
    rollups and sketches are kept. ``progress`` is told the running total after each one."""
    if days < (least := min_retention_days()):
        raise ValueError(
            f"Keeping {days} days of raw samples is too few: keep at least {least} (a week, "
            "and more than the longest rolling window of an exit criterion; see "
            "docs/operations.md, “Data volume and retention”)."
        )
    cut = horizon(days, now=now)
    with connection.cursor() as cursor:
        cursor.execute(_DAYS_TO_PRUNE, {"horizon": cut})
        buckets = cursor.fetchall()
    plans = len({plan_id for plan_id, _m, _d, _n in buckets})
    if dry_run:
        return PruneResult(cut, sum(n for *_k, n in buckets), len(buckets), plans)
    deleted = 0
    chunk: list[tuple[int, int, dt.datetime, int]] = []
    pending = 0
    for i, bucket in enumerate(buckets):
        chunk.append(bucket)
        pending += bucket[3]
        if pending >= batch or i == len(buckets) - 1:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    _PRUNE_SQL,
                    [[b[0] for b in chunk], [b[1] for b in chunk], [b[2] for b in chunk]],
                )
                deleted += cursor.rowcount
            chunk, pending = [], 0
            if progress is not None:
                progress(deleted)
    return PruneResult(cut, deleted, len(buckets), plans)
