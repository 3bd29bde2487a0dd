"""Helpers shared by the check, evaluation and digest tests (no tests of its own).

Data is written with SQL so that 90 days of per-minute samples take seconds: samples first,
then the minute and hour rollups aggregated from exactly those samples, as ingestion keeps them.
Small, exact data sets go through ``metrics.ingest.samples_store`` (the real write path).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from django.db import connection

from accounts.models import Team, User
from catalogue.models import MetricDefinition
from metrics.ingest import samples_store
from pilots.models import ExitCriterion, PilotPlan
from tests.factories import running_plan

UTC = dt.UTC


def metric(key: str) -> MetricDefinition:
    return MetricDefinition.objects.get(team=None, key=key)


def bare_plan(
    team: Team, owner: User, *, start_date: dt.date = dt.date(2025, 1, 6), **fields: object
) -> PilotPlan:
    """A running plan without exit criteria (add them with :func:`criterion`)."""
    return running_plan(team=team, owner=owner, start_date=start_date, template=False, **fields)


def criterion(plan: PilotPlan, key: str, aggregation: str, comparator: str,
              threshold: str | None, **fields: object) -> ExitCriterion:  # fmt: skip
    position = ExitCriterion.objects.filter(plan=plan).count() + 1
    if "denominator" in fields and isinstance(fields["denominator"], str):
        fields["denominator"] = metric(fields["denominator"])  # type: ignore[arg-type]
    return ExitCriterion.objects.create(
        plan=plan,
        position=position,
        metric=metric(key),
        aggregation=aggregation,
        comparator=comparator,
        threshold=None if threshold is None else Decimal(threshold),
        **{"min_sample_size": 1, **fields},  # type: ignore[arg-type]
    )


def store(plan: PilotPlan, key: str, points: Sequence[tuple[dt.datetime, float]],
          source: str = "test") -> int:  # fmt: skip
    """Store ``(observed_at, value)`` samples of metric ``key`` through the ingestion path."""
    metric_id = metric(key).pk
    return samples_store(rows=[(plan.pk, metric_id, at, v, source, "") for at, v in points])


def store_values(plan: PilotPlan, key: str, start: dt.datetime, values: Sequence[float],
                 step: dt.timedelta = dt.timedelta(minutes=1)) -> None:  # fmt: skip
    """Known values, one every ``step`` from ``start``, with SQL (fast for thousands)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO metrics_sample
                (plan_id, metric_id, observed_at, value, source, external_id, ingested_at)
            SELECT %s, %s, %s + (ord - 1) * %s, v, 'test', '', now()
              FROM unnest(%s::float8[]) WITH ORDINALITY AS t(v, ord)
            """,
            [plan.pk, metric(key).pk, start, step, [float(v) for v in values]],
        )
    rollups_rebuild(plan)


def store_series(plan: PilotPlan, key: str, start: dt.datetime, minutes: int,
                 value_sql: str) -> None:  # fmt: skip
    """``minutes`` per-minute samples whose value is the SQL expression ``value_sql`` of ``g``
    (the minute's number from 0), e.g. ``"250 + 40 * sin(g)"``."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO metrics_sample
                (plan_id, metric_id, observed_at, value, source, external_id, ingested_at)
            SELECT %s, %s, %s + g * interval '1 minute', {value_sql}, 'test', '', now()
              FROM generate_series(0, %s - 1) AS g
            """,  # noqa: S608 - value_sql is a test's own SQL expression
            [plan.pk, metric(key).pk, start, minutes],
        )
    rollups_rebuild(plan)


def rollups_rebuild(plan: PilotPlan) -> None:
    """The plan's hour and day rollups (with their sketches), aggregated again from its
    samples."""
    with connection.cursor() as cursor:
        for table in ("metrics_hourrollup", "metrics_dayrollup"):
            cursor.execute(f"DELETE FROM {table} WHERE plan_id = %s", [plan.pk])  # noqa: S608
        for table, unit in (("metrics_hourrollup", "hour"), ("metrics_dayrollup", "day")):
            cursor.execute(
                f"""
                INSERT INTO {table}
                    (plan_id, metric_id, bucket, count, sum, sum_sq, min, max, sketch)
                SELECT plan_id, metric_id, bucket, sum(n), sum(s), sum(sq), min(lo), max(hi),
                       metrics_sketch_agg(k, n::integer)
                  FROM (SELECT plan_id, metric_id, date_trunc('{unit}', observed_at, 'UTC')
                                   AS bucket,
                               metrics_sketch_key(value) AS k, count(*) AS n, sum(value) AS s,
                               sum(value * value) AS sq, min(value) AS lo, max(value) AS hi
                          FROM metrics_sample WHERE plan_id = %s GROUP BY 1, 2, 3, 4) AS bins
                 GROUP BY 1, 2, 3
                """,  # noqa: S608 - two fixed table names
                [plan.pk],
            )
