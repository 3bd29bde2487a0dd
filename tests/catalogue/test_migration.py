"""Moving ``MetricDefinition`` from ``metrics`` to ``catalogue`` moves no data.

A database is migrated to the previous release (before ``catalogue`` existed), filled through
that release's models, then migrated forward: every metric, criterion, trigger, sample and rollup
is still there, joined as before, and the model's content type (with its permissions) now belongs
to ``catalogue``.

That database is an empty one of the test's own, not the test database: taking the test database
back to that release and forward again cost four minutes of ``make test`` (Django renders the
model states of the whole history in each direction); migrating an empty database to that early
release costs a fraction of it, and nothing is left for the next test to undo.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor

from catalogue.models import MetricDefinition
from metrics.models import Sample
from pilots.models import ExitCriterion, RollbackTrigger

# Not ``transaction=True``: the migrations run in a database of their own (``empty_database``),
# so the test database needs no emptying afterwards; its test transaction simply rolls back.
pytestmark = [pytest.mark.integration, pytest.mark.django_db]

BEFORE = [
    ("metrics", "0004_samples_checks_triggers"),
    ("pilots", "0007_planguest"),
    ("accounts", "0010_credentials"),  # that release's users had no time zone column
]
MOVE = [
    ("catalogue", "0001_initial"),
    ("pilots", "0008_metric_catalogue_app"),
    ("metrics", "0005_metric_catalogue_app"),
    # The next catalogue migration too: the current model reads its column (expected interval).
    ("catalogue", "0002_metric_expected_interval"),
]


def _migrate(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection)


@pytest.fixture
def empty_database(django_db_blocker) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """An empty database in place of the test database (``connection`` and every model use
    it) for the test's duration; dropped afterwards, the test database untouched."""
    test_database = connections["default"]
    name = f"{test_database.settings_dict['NAME']}_migration"
    empty = test_database.__class__({**test_database.settings_dict, "NAME": name}, "default")
    with django_db_blocker.unblock():
        with test_database._nodb_cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cursor.execute(f'CREATE DATABASE "{name}"')
        connections["default"] = empty
        ContentType.objects.clear_cache()  # ids cached from the test database mean nothing here
        try:
            yield
        finally:
            empty.close()
            connections["default"] = test_database
            ContentType.objects.clear_cache()
            with test_database._nodb_cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture
def previous_release(empty_database: None):  # type: ignore[no-untyped-def]
    """The schema of the release before the move, in an empty database of the test's own."""
    executor = _migrate(BEFORE)
    assert "catalogue" not in {app for app, _name in executor.loader.applied_migrations}
    return executor.loader.project_state(BEFORE).apps


def test_moving_the_catalogue_keeps_every_row(previous_release):
    apps = previous_release
    Team = apps.get_model("accounts", "Team")
    User = apps.get_model("accounts", "User")
    Metric = apps.get_model("metrics", "MetricDefinition")
    Plan = apps.get_model("pilots", "PilotPlan")
    Criterion = apps.get_model("pilots", "ExitCriterion")
    Trigger = apps.get_model("pilots", "RollbackTrigger")
    OldSample = apps.get_model("metrics", "Sample")
    OldRollup = apps.get_model("metrics", "MinuteRollup")
    ContentTypeThen = apps.get_model("contenttypes", "ContentType")

    team = Team.objects.create(name="Migrators", slug="migrators")
    owner = User.objects.create(email="owner@example.test")
    own = Metric.objects.create(
        team=team, key="basket_adds", name="Basket adds", kind="count", direction="higher"
    )
    builtin = Metric.objects.get(team=None, key="p95_latency")
    plan = Plan.objects.create(team=team, owner=owner, created_by=owner, title="Move me")
    criterion = Criterion.objects.create(
        plan=plan, position=1, metric=own, aggregation="total", comparator="ge", threshold=10
    )
    trigger = Trigger.objects.create(
        plan=plan, position=1, metric=builtin, comparator="gt", threshold=300, mode="any"
    )
    at = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
    sample = OldSample.objects.create(plan=plan, metric=own, observed_at=at, value=3)
    OldRollup.objects.create(
        plan=plan, metric=own, bucket=at, count=1, sum=3, sum_sq=9, min=3, max=3
    )
    ContentTypeThen.objects.filter(app_label="catalogue").delete()
    ContentTypeThen.objects.get_or_create(app_label="metrics", model="metricdefinition")
    before = {
        "metrics": set(Metric.objects.values_list("pk", "team_id", "key")),
        "samples": OldSample.objects.count(),
    }

    executor = MigrationExecutor(connection)
    executor.migrate(MOVE)

    # Same rows in the same table, now read through catalogue.MetricDefinition.
    assert MetricDefinition._meta.db_table == "metrics_metricdefinition"
    assert set(MetricDefinition.objects.values_list("pk", "team_id", "key")) == before["metrics"]
    assert ExitCriterion.objects.get(pk=criterion.pk).metric.key == "basket_adds"
    assert RollbackTrigger.objects.get(pk=trigger.pk).metric.key == "p95_latency"
    assert Sample.objects.count() == before["samples"]
    assert Sample.objects.get(pk=sample.pk).metric_id == own.pk
    # Only the metric is read: the rollup's later columns (updated_at, #15) do not exist yet.
    # (The minute rollup itself is gone since metrics 0014: read it as the migrated state has it.)
    Rollup = executor.loader.project_state(MOVE).apps.get_model("metrics", "MinuteRollup")
    rollup = Rollup.objects.filter(plan_id=plan.pk)
    assert rollup.values_list("metric__team_id", flat=True).get() == team.pk
    assert ContentType.objects.filter(app_label="catalogue", model="metricdefinition").exists()
    assert not ContentType.objects.filter(app_label="metrics", model="metricdefinition").exists()
    # Each metric got its expected interval: by key for the built-in ones, by kind otherwise.
    assert MetricDefinition.objects.get(pk=builtin.pk).expected_interval_minutes == 5
    assert MetricDefinition.objects.get(pk=own.pk).expected_interval_minutes == 60
    assert MetricDefinition.objects.get(team=None, key="csat").expected_interval_minutes == 1440
