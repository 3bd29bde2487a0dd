"""Rebuilding rollups from raw samples, and pruning raw samples the rollups already hold
(``metrics_rebuild_rollups``, ``metrics_prune_samples``)."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from catalogue.models import MetricDefinition
from metrics.ingest import samples_store
from metrics.models import DayRollup, HourRollup, Sample
from metrics.rollups import horizon, samples_prune
from tests.factories import running_plan
from tests.metrics.test_ingest_rollups import (
    TABLES,
    _assert_rollups_equal_the_samples,
    _assert_sketches_match_python,
    _stored,
)

pytestmark = pytest.mark.django_db

TODAY = timezone.now().astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture
def plan(team, po):
    return running_plan(team=team, owner=po, start_date=TODAY.date(), template=False)


@pytest.fixture
def other(team, po):
    return running_plan(team=team, owner=po, start_date=TODAY.date(), template=False)


def _fill(plans, *, days: int = 10, n: int = 2_000) -> None:
    """Samples of two metrics spread over the last ``days`` UTC days."""
    rng = random.Random(7)
    metrics = list(
        MetricDefinition.objects.filter(team=None, key__in=["p95_latency", "csat"]).values_list(
            "pk", flat=True
        )
    )
    for plan in plans:
        samples_store(
            rows=[
                (
                    plan.pk,
                    rng.choice(metrics),
                    TODAY - dt.timedelta(seconds=rng.randrange(1, days * 86_400)),
                    rng.lognormvariate(5, 1),
                    "api",
                    "",
                )
                for _ in range(n)
            ]
        )


def _everything() -> dict[str, dict]:
    return {table: _stored(table, sketched) for table, _unit, sketched in TABLES}


def _same(row: tuple, other: tuple) -> bool:
    """Equal rollups: exact count, extremes and sketch; sums to the last bits."""
    return (
        (row[0], row[3:]) == (other[0], other[3:])
        and row[1] == pytest.approx(other[1])
        and row[2] == pytest.approx(other[2])
    )


def _corrupt(plan) -> None:
    first = HourRollup.objects.filter(plan=plan).order_by("bucket").first()
    HourRollup.objects.filter(plan=plan, metric=first.metric_id, bucket=first.bucket).delete()
    HourRollup.objects.filter(plan=plan).update(count=1, sketch=[])
    DayRollup.objects.filter(plan=plan).update(max=-1)


# --- rebuilding ----------------------------------------------------------------------------


def test_rebuild_restores_every_rollup_and_sketch_from_the_samples(plan, other):
    _fill([plan, other])
    untouched = {k: v for k, v in _stored("metrics_hourrollup", True).items() if k[0] == plan.pk}
    _corrupt(plan)
    _corrupt(other)

    call_command("metrics_rebuild_rollups", stdout=(out := _Out()))

    assert "Rebuilt the rollups of 2 plan(s) from all samples" in out.text
    _assert_rollups_equal_the_samples()
    _assert_sketches_match_python()
    rebuilt = {k: v for k, v in _stored("metrics_hourrollup", True).items() if k[0] == plan.pk}
    assert rebuilt.keys() == untouched.keys()
    assert all(_same(rebuilt[k], untouched[k]) for k in untouched)


def test_rebuild_of_one_plan_leaves_the_others_alone_and_is_idempotent(plan, other):
    _fill([plan, other])
    _corrupt(other)
    broken = _stored("metrics_hourrollup", True)

    call_command("metrics_rebuild_rollups", "--plan", str(plan.pk), stdout=_Out())
    once = _everything()
    call_command("metrics_rebuild_rollups", "--plan", str(plan.pk), stdout=_Out())

    assert _everything() == once
    hours = _stored("metrics_hourrollup", True)
    others = {k for k in broken if k[0] == other.pk}
    assert others and all(hours[k] == broken[k] for k in others)


def test_rebuilt_buckets_keep_when_their_newest_sample_was_ingested(plan):
    _fill([plan], n=200)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE metrics_sample SET ingested_at = '2020-01-01T00:00Z'")
    call_command("metrics_rebuild_rollups", stdout=_Out())
    for model in (HourRollup, DayRollup):
        assert set(model.objects.values_list("updated_at", flat=True)) == {
            dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        }


def test_an_unknown_plan_is_refused(plan):
    with pytest.raises(CommandError, match="No plan 999999"):
        call_command("metrics_rebuild_rollups", "--plan", "999999")


def test_with_retention_older_rollups_are_kept_whatever_the_samples_say(plan, settings):
    _fill([plan], days=12)
    before = _everything()
    samples_prune(days=7)
    cut = horizon(7)
    assert not Sample.objects.filter(observed_at__lt=cut).exists()
    assert _everything() == before  # pruning keeps every rollup and sketch
    HourRollup.objects.filter(plan=plan).update(count=1)  # old and new buckets broken

    settings.SAMPLE_RETENTION_DAYS = 7
    call_command("metrics_rebuild_rollups", stdout=(out := _Out()))

    assert f"from samples from {cut:%Y-%m-%d} (UTC) on" in out.text
    after = _stored("metrics_hourrollup", True)
    old = {k for k in after if k[2] < cut}
    assert old and all(after[k][0] == 1 for k in old)  # before the horizon: left as they were
    new = {k: v for k, v in after.items() if k[2] >= cut}
    expected = {k: v for k, v in before["metrics_hourrollup"].items() if k[2] >= cut}
    assert new.keys() == expected.keys()
    assert all(_same(new[k], expected[k]) for k in new)
    days = _stored("metrics_dayrollup", True)
    assert days.keys() == before["metrics_dayrollup"].keys()
    for key, row in days.items():  # sums added in another order may differ in the last bit
        assert _same(row, before["metrics_dayrollup"][key]), key


# --- pruning -------------------------------------------------------------------------------


def test_prune_deletes_whole_old_days_in_short_batches_and_keeps_the_rollups(plan, other):
    _fill([plan, other], days=12)
    cut = horizon(8)
    old = Sample.objects.filter(observed_at__lt=cut).count()
    kept = Sample.objects.count() - old
    rollups = _everything()
    totals = []

    result = samples_prune(days=8, batch=100, progress=totals.append)

    assert (result.samples, result.horizon, result.plans) == (old, cut, 2)
    assert len(totals) > 3 and totals[-1] == old  # many short transactions
    assert Sample.objects.count() == kept
    assert not Sample.objects.filter(observed_at__lt=cut).exists()
    assert _everything() == rollups
    assert samples_prune(days=8).samples == 0  # nothing left to do


def test_the_command_reports_a_dry_run_and_what_it_deleted(plan):
    _fill([plan], days=12)
    old = Sample.objects.filter(observed_at__lt=horizon(9)).count()
    total = Sample.objects.count()

    call_command(
        "metrics_prune_samples", "--older-than-days", "9", "--dry-run", stdout=(o := _Out())
    )
    assert f"Would delete {old:,} raw samples observed before {horizon(9):%Y-%m-%d}" in o.text
    assert Sample.objects.count() == total

    call_command("metrics_prune_samples", "--older-than-days", "9", stdout=(o := _Out()))
    assert f"Deleted {old:,} raw samples" in o.text and "rollups and sketches kept" in o.text
    assert Sample.objects.count() == total - old


def test_the_command_uses_the_setting_and_refuses_too_short_a_retention(plan, settings):
    settings.SAMPLE_RETENTION_DAYS = None
    with pytest.raises(CommandError, match="Every sample is kept"):
        call_command("metrics_prune_samples")
    with pytest.raises(CommandError, match="too few: keep at least 7"):
        call_command("metrics_prune_samples", "--older-than-days", "6")
    settings.SAMPLE_RETENTION_DAYS = 30
    call_command("metrics_prune_samples", stdout=(o := _Out()))
    assert "Deleted 0 raw samples" in o.text


class _Out:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


def test_a_rolling_window_longer_than_a_week_raises_the_minimum(plan):
    from pilots.models import ExitCriterion

    metric = MetricDefinition.objects.get(team=None, key="p95_latency")
    ExitCriterion.objects.create(
        plan=plan, position=1, metric=metric, aggregation="mean", comparator="le",
        threshold=300, window_hours=10 * 24 + 1,
    )  # fmt: skip
    with pytest.raises(ValueError, match="keep at least 12"):
        samples_prune(days=11)
    assert samples_prune(days=12, dry_run=True).samples == 0
