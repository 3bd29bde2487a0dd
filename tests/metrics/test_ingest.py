"""Sample ingestion, the service: validation, all-or-nothing, idempotency, exact rollups."""

from __future__ import annotations

import base64
import datetime as dt
import json
import random

import pytest
from django.db.models import Count, F, Max, Min, Sum
from django.db.models.functions import Trunc

from accounts.models import Membership
from catalogue.models import MetricDefinition
from catalogue.services import metric_create
from core.queue import flush
from metrics.ingest import (
    FUTURE_SKEW,
    MAX_BATCH,
    MAX_ERRORS,
    IngestRejected,
    samples_ingest,
    samples_store,
)
from metrics.models import DayRollup, HourRollup, IngestBatch, Sample
from pilots.models import PilotPlan
from tests.factories import MembershipFactory, UserFactory, running_plan
from tests.metrics.test_ingest_redis import broker, own_redis  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db

UTC = dt.UTC
# A fixed clock inside the plans' windows: Wednesday 2025-05-07, 12:00 UTC.
NOW = dt.datetime(2025, 5, 7, 12, 0, tzinfo=UTC)
START = dt.date(2025, 5, 5)  # Monday; 10 business days → window ends with Friday 2025-05-16


@pytest.fixture
def plan(team, po):
    return running_plan(
        team=team, owner=po, start_date=START, time_zone="Europe/Berlin", template=False
    )


def row(minutes_ago: float = 10, metric: str = "p95_latency", value: object = 200.0, **extra):
    at = NOW - dt.timedelta(minutes=minutes_ago)
    return {"metric": metric, "observed_at": at.isoformat(), "value": value, **extra}


def ingest(team, rows, **kw):
    kw.setdefault("now", NOW)
    return samples_ingest(team=team, rows=rows, **kw)


def refused(team, rows, **kw) -> IngestRejected:
    counts = (Sample.objects.count(), IngestBatch.objects.count(), HourRollup.objects.count())
    with pytest.raises(IngestRejected) as excinfo:
        ingest(team, rows, **kw)
    assert (
        Sample.objects.count(),
        IngestBatch.objects.count(),
        HourRollup.objects.count(),
    ) == counts, "a refused batch stored something"
    return excinfo.value


# --- storing -----------------------------------------------------------------------------------


def test_a_valid_batch_is_stored_with_its_batch_and_rollups(team, plan, po):
    rows = [
        row(10, value=200),
        row(10.5, value=300, source="grafana"),
        row(5, metric="p1_defects", value=1, id="BUG-1"),
    ]

    result = ingest(team, rows, plan=plan, user=po)

    assert (result.received, result.stored, result.duplicates, result.replayed) == (3, 3, 0, False)
    assert result.response == {
        "batch": result.batch_id,
        "received": 3,
        "stored": 3,
        "duplicates": 0,
        "replayed": False,
    }
    batch = IngestBatch.objects.get()
    assert (batch.team, batch.plan, batch.created_by, batch.stored) == (team, plan, po, 3)
    assert batch.response == result.response
    samples = Sample.objects.order_by("observed_at")
    assert [(s.metric.key, s.value, s.source, s.external_id) for s in samples] == [
        ("p95_latency", 300.0, "grafana", ""),
        ("p95_latency", 200.0, "api", ""),
        ("p1_defects", 1.0, "api", "BUG-1"),
    ]
    assert all(s.batch_id == batch.pk and s.plan_id == plan.pk for s in samples)
    # 11:50 and 11:49:30 UTC share the 11:00 hour with the defect.
    hour = HourRollup.objects.get(metric__key="p95_latency")
    assert (hour.bucket, hour.count, hour.sum, hour.sum_sq) == (
        dt.datetime(2025, 5, 7, 11, tzinfo=UTC),
        2,
        500.0,
        200.0**2 + 300.0**2,
    )


def test_samples_store_is_the_fast_path_and_counts_only_new_rows(team, plan):
    metric = MetricDefinition.objects.get(key="errors", team=None)
    at = NOW - dt.timedelta(minutes=1)
    rows = [(plan.pk, metric.pk, at, 2.0, "api", ""), (plan.pk, metric.pk, at, 3.0, "api", "")]

    assert samples_store(rows=rows) == 1  # same natural key twice in one batch: stored once
    assert samples_store(rows=rows) == 0
    assert Sample.objects.get().value == 2.0  # the first of the two wins
    assert HourRollup.objects.get().count == 1


def test_numbers_may_come_as_numeric_strings_and_timestamps_in_any_offset(team, plan):
    at = (NOW - dt.timedelta(minutes=3)).astimezone(dt.timezone(dt.timedelta(hours=-5)))
    rows = [
        {"metric": "csat", "observed_at": at.isoformat(), "value": " 4.5 "},
        {"metric": "csat", "observed_at": "2025-05-07T11:58:00Z", "value": 3},
        {"metric": "csat", "observed_at": NOW - dt.timedelta(minutes=1), "value": 5},
    ]

    assert ingest(team, rows, plan=plan).stored == 3
    assert sorted(Sample.objects.values_list("value", flat=True)) == [3.0, 4.5, 5.0]
    assert Sample.objects.filter(observed_at=NOW - dt.timedelta(minutes=3)).exists()


def test_a_teams_own_metric_is_accepted(team, plan, po):
    metric_create(team=team, user=po, key="basket_size", name="Basket", unit="", kind="gauge",
                  direction="higher")  # fmt: skip
    assert ingest(team, [row(metric="basket_size", value=3.5)], plan=plan).stored == 1


# --- validation --------------------------------------------------------------------------------

BAD_ROWS = [
    ({"metric": "vibes"}, "metric", "not a metric of this team"),
    ({"metric": None}, "metric", "required"),
    ({"metric": 7}, "metric", "must be a metric key"),
    ({"value": True}, "value", "not true or false"),
    ({"value": "NaN"}, "value", "finite"),
    ({"value": "Infinity"}, "value", "finite"),
    ({"value": "-inf"}, "value", "finite"),
    ({"value": float("nan")}, "value", "finite"),
    ({"value": 10**400}, "value", "too large"),
    ({"value": "12,5"}, "value", "is not a number"),
    ({"value": None}, "value", "required"),
    ({"value": " "}, "value", "required"),
    ({"value": [1]}, "value", "must be a number"),
    ({"metric": "p1_defects", "value": -1}, "value", "count metric cannot be negative"),
    ({"observed_at": "2025-05-07T11:00:00"}, "observed_at", "no time zone"),
    ({"observed_at": "2025-05-07"}, "observed_at", "no time zone"),
    ({"observed_at": "yesterday"}, "observed_at", "not an ISO-8601 timestamp"),
    ({"observed_at": 1715000000}, "observed_at", "must be an ISO-8601 timestamp"),
    ({"observed_at": None}, "observed_at", "required"),
    ({"observed_at": ""}, "observed_at", "required"),
    ({"observed_at": "2025-05-07T12:05:01Z"}, "observed_at", "in the future"),
    ({"observed_at": "2025-05-04T21:59:59Z"}, "observed_at", "outside the pilot window"),
    ({"source": "x" * 51}, "source", "longer than 50"),
    ({"source": ["a"]}, "source", "must be a string"),
    ({"id": "x" * 101}, "id", "longer than 100"),
    ({"id": "a\x00b"}, "id", "NUL"),
    ({"plan": 999_999}, "plan", "send plan 999999 to its own URL"),
]


@pytest.mark.parametrize(("change", "field", "reason"), BAD_ROWS)
def test_each_rule_names_the_row_field_and_reason(team, plan, change, field, reason):
    rows = [row(1), row(2), {**row(3), **change}]

    error = refused(team, rows, plan=plan)

    assert error.status_code == 422
    assert error.error_count == 1
    [problem] = error.errors
    assert (problem["row"], problem["field"]) == (2, field)
    assert reason in problem["message"]


def test_a_row_that_is_not_an_object_is_an_error(team, plan):
    error = refused(team, [row(1), "p95_latency,200"], plan=plan)
    assert error.errors == [{"row": 1, "field": "", "message": error.errors[0]["message"]}]


def test_the_window_is_the_plans_local_days_and_the_clock_skew_is_allowed(team, plan):
    # Europe/Berlin is UTC+2 in May: the window opens 2025-05-04T22:00Z.
    rows = [
        {**row(), "observed_at": "2025-05-04T22:00:00Z"},
        {**row(), "observed_at": "2025-05-05T00:00:00+02:00", "source": "b"},
        {**row(), "observed_at": (NOW + FUTURE_SKEW).isoformat()},
    ]
    # The first two are one instant from two sources; the last is exactly at the allowed skew.
    assert ingest(team, rows, plan=plan).stored == 3


def test_after_the_window_is_refused(team, po):
    ended = running_plan(team=team, owner=po, start_date=dt.date(2025, 4, 1), template=False)
    error = refused(team, [row(1)], plan=ended)
    assert (
        "outside the pilot window (2025-04-01 to 2025-04-14 in UTC)" in error.errors[0]["message"]
    )


def test_a_foreign_teams_metric_is_unknown(team, other_team, plan, outsider):
    metric_create(team=other_team, user=outsider, key="their_metric", name="Theirs", unit="",
                  kind="gauge", direction="lower")  # fmt: skip
    error = refused(team, [row(metric="their_metric")], plan=plan)
    assert error.errors[0]["field"] == "metric"


def test_every_problem_is_listed_and_nothing_is_stored(team, plan):
    rows = [row(1), {**row(2), "metric": "nope"}, row(3), {**row(4), "value": "x", "source": 5}]

    error = refused(team, rows, plan=plan)

    assert error.error_count == 3
    assert [(e["row"], e["field"]) for e in error.errors] == [
        (1, "metric"),
        (3, "value"),
        (3, "source"),
    ]
    assert "3 problems" in error.message


def test_the_error_list_is_capped_but_the_count_is_complete(team, plan):
    rows = [{**row(1, source=str(i)), "value": "bad"} for i in range(250)]

    error = refused(team, rows, plan=plan)

    assert (len(error.errors), error.error_count) == (MAX_ERRORS, 250)
    assert error.as_dict()["error_count"] == 250


@pytest.mark.parametrize(
    ("rows", "reason"),
    [([], "empty"), ([row(1)] * (MAX_BATCH + 1), "at most 10,000"), ("abc", "must be a list")],
)
def test_batch_size_must_be_1_to_10000(team, plan, rows, reason):
    error = refused(team, rows, plan=plan)
    assert error.status_code == 400
    assert reason in error.message


@pytest.mark.parametrize("status", ["draft", "approved", "decided", "closed"])
def test_a_plan_that_is_not_running_or_evaluating_takes_no_samples(team, plan, status):
    PilotPlan.objects.filter(pk=plan.pk).update(status=status)
    plan.refresh_from_db()

    error = refused(team, [row(1)], plan=plan)

    assert error.errors == [{"row": None, "field": "plan", "message": error.message}]
    assert "Running or Evaluating" in error.message


def test_an_evaluating_plan_still_takes_late_samples(team, plan):
    PilotPlan.objects.filter(pk=plan.pk).update(status=PilotPlan.Status.EVALUATING)
    plan.refresh_from_db()
    assert ingest(team, [row(1)], plan=plan).stored == 1


# --- the team-wide variant ---------------------------------------------------------------------


def test_team_wide_batches_name_the_plan_per_sample(team, po, plan):
    second = running_plan(team=team, owner=po, start_date=START, template=False)
    rows = [row(1, plan=plan.pk), row(1, plan=second.pk), row(2, plan=second.pk)]

    assert ingest(team, rows).stored == 3

    assert dict(Sample.objects.values_list("plan").annotate(n=Count("id"))) == {
        plan.pk: 1,
        second.pk: 2,
    }
    assert IngestBatch.objects.get().plan is None


def test_a_sample_naming_another_teams_plan_refuses_the_batch(team, other_team, plan):
    outsider_po = MembershipFactory(team=other_team, role=Membership.Role.PRODUCT_OWNER).user
    theirs = running_plan(team=other_team, owner=outsider_po, start_date=START, template=False)
    rows = [row(1, plan=plan.pk), row(1, plan=theirs.pk), row(2)]

    error = refused(team, rows)

    assert [(e["row"], e["field"]) for e in error.errors] == [(1, "plan"), (2, "plan")]
    assert f"no plan {theirs.pk} in this team" in error.errors[0]["message"]
    assert "required" in error.errors[1]["message"]
    assert not Sample.objects.filter(plan=theirs).exists()


def test_team_wide_refuses_a_plan_that_is_not_running(team, po, plan):
    draft = running_plan(team=team, owner=po, start_date=START, template=False)
    PilotPlan.objects.filter(pk=draft.pk).update(status=PilotPlan.Status.DRAFT)
    error = refused(team, [row(1, plan=plan.pk), row(1, plan=draft.pk), row(1, plan="7")])
    assert [e["row"] for e in error.errors] == [1, 2]
    assert "is Draft" in error.errors[0]["message"]
    assert "integer" in error.errors[1]["message"]


# --- idempotency -------------------------------------------------------------------------------


def test_a_retried_key_with_the_same_body_replays_the_answer_and_stores_nothing(team, plan):
    rows = [row(1), row(2)]
    first = ingest(team, rows, plan=plan, idempotency_key="k-1", body_sha256="abc")
    Sample.objects.all().delete()  # even if the data were gone, a replay would not store it

    again = ingest(team, rows, plan=plan, idempotency_key="k-1", body_sha256="abc")

    assert again.replayed is True
    assert again.response == {**first.response, "replayed": True}
    assert (again.batch_id, again.stored) == (first.batch_id, 2)
    assert Sample.objects.count() == 0
    assert IngestBatch.objects.count() == 1


def test_the_same_key_with_another_body_is_refused(team, plan):
    ingest(team, [row(1)], plan=plan, idempotency_key="k-1")

    error = refused(team, [row(2)], plan=plan, idempotency_key="k-1")

    assert error.status_code == 422
    assert error.errors[0]["field"] == "Idempotency-Key"
    assert Sample.objects.count() == 1


def test_the_same_key_and_body_for_another_plan_is_refused(team, po, plan):
    second = running_plan(team=team, owner=po, start_date=START, template=False)
    ingest(team, [row(1)], plan=plan, idempotency_key="k-1", body_sha256="abc")
    error = refused(team, [row(1)], plan=second, idempotency_key="k-1", body_sha256="abc")
    assert error.errors[0]["field"] == "Idempotency-Key"


def test_keys_are_per_team(team, other_team, plan):
    theirs = running_plan(team=other_team, owner=UserFactory(), start_date=START, template=False)
    ingest(team, [row(1)], plan=plan, idempotency_key="shared")
    assert ingest(other_team, [row(1)], plan=theirs, idempotency_key="shared").stored == 1


def test_an_overlong_key_is_refused(team, plan):
    error = refused(team, [row(1)], plan=plan, idempotency_key="k" * 201)
    assert (error.status_code, error.errors[0]["field"]) == (400, "Idempotency-Key")


def test_a_retry_without_a_key_stores_nothing_twice(team, plan):
    rows = [row(1), row(2), row(3, id="s-3")]
    ingest(team, rows, plan=plan)

    again = ingest(team, rows, plan=plan)

    assert (again.replayed, again.stored, again.duplicates) == (False, 0, 3)
    assert Sample.objects.count() == 3
    assert HourRollup.objects.get(bucket=dt.datetime(2025, 5, 7, 11, tzinfo=UTC)).count == 3
    assert IngestBatch.objects.count() == 2


def test_a_sample_id_is_stored_once_per_plan(team, po, plan):
    ingest(team, [row(1, id="A")], plan=plan)
    # Same id, another instant: the client says it is the same sample.
    again = ingest(team, [row(5, id="A"), row(6, id="B")], plan=plan)
    assert (again.stored, again.duplicates) == (1, 1)
    # Ids are per plan: another plan may use "A" too.
    second = running_plan(team=team, owner=po, start_date=START, template=False)
    assert ingest(team, [row(1, id="A")], plan=second).stored == 1


def test_duplicates_within_one_batch_are_stored_once(team, plan):
    rows = [row(1, value=1), row(1, value=2), row(2, id="X"), row(3, id="X")]
    result = ingest(team, rows, plan=plan)
    assert (result.stored, result.duplicates) == (2, 2)
    assert HourRollup.objects.get(bucket=dt.datetime(2025, 5, 7, 11, tzinfo=UTC)).sum == 1.0 + 200.0


# --- rollups -----------------------------------------------------------------------------------


def _aggregates(plan, unit):
    raw = (
        Sample.objects.filter(plan=plan)
        .annotate(bucket=Trunc("observed_at", unit, tzinfo=UTC))
        .values("metric_id", "bucket")
        .annotate(
            n=Count("id"),
            total=Sum("value"),
            squares=Sum(F("value") * F("value")),
            low=Min("value"),
            high=Max("value"),
        )
    )
    return {(r["metric_id"], r["bucket"]): r for r in raw}


def test_rollups_equal_aggregates_of_raw_samples_after_overlapping_batches(team, plan):
    rng = random.Random(5)
    minutes = [rng.uniform(0, 600) for _ in range(900)]
    rows = [
        row(m, metric=rng.choice(["p95_latency", "errors", "csat"]), value=rng.randint(0, 500))
        for m in minutes
    ]
    rows += rows[:50]  # duplicates inside a batch
    first, second, third = rows[:500], rows[300:800], rows[600:]  # overlapping batches

    for batch in (first, second, third, first):
        ingest(team, batch, plan=plan)

    assert Sample.objects.count() == len({(r["metric"], r["observed_at"]) for r in rows})
    for model, unit in ((HourRollup, "hour"), (DayRollup, "day")):
        expected = _aggregates(plan, unit)
        rollups = {(r.metric_id, r.bucket): r for r in model.objects.filter(plan=plan)}
        assert rollups.keys() == expected.keys()
        for key, r in rollups.items():
            e = expected[key]
            assert (r.count, r.min, r.max) == (e["n"], e["low"], e["high"])
            assert r.sum == pytest.approx(e["total"])
            assert r.sum_sq == pytest.approx(e["squares"])


# --- after commit ------------------------------------------------------------------------------


@pytest.fixture
def queue(broker):  # noqa: F811  (the imported fixture)
    """What ``enqueue_on_commit`` published, in a Redis of this test's own (so nothing else
    reads or clears the queue meanwhile)."""
    client = broker.client()
    yield client
    client.close()


def _published(client, queue: str = "triggers") -> list[tuple[str, list]]:
    """The tasks waiting in ``queue`` (trigger evaluation has a queue of its own), once the
    publisher thread has sent what it was handed."""
    assert flush()
    messages = [json.loads(m) for m in client.lrange(queue, 0, -1)]
    out = []
    for m in messages:
        args, _kwargs, _embed = json.loads(base64.b64decode(m["body"]))
        out.append((m["headers"]["task"], args))
    return out


def test_each_plan_with_new_samples_is_queued_for_trigger_evaluation_after_commit(
    team, po, plan, queue, django_capture_on_commit_callbacks
):
    second = running_plan(team=team, owner=po, start_date=START, template=False)
    rows = [row(1, plan=plan.pk), row(2, plan=plan.pk), row(1, plan=second.pk)]

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ingest(team, rows)
    assert _published(queue) == []  # nothing before commit
    for callback in callbacks:
        callback()

    assert sorted(_published(queue)) == [
        ("metrics.tasks.triggers_evaluate", [plan.pk]),
        ("metrics.tasks.triggers_evaluate", [second.pk]),
    ]
    assert _published(queue, "celery") == []  # never behind the checks on the default queue


def test_a_batch_with_nothing_new_queues_nothing(team, plan, django_capture_on_commit_callbacks):
    ingest(team, [row(1)], plan=plan)
    with django_capture_on_commit_callbacks() as callbacks:
        ingest(team, [row(1)], plan=plan)
    assert callbacks == []


# --- speed -------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [10, 5_000])
def test_the_query_count_does_not_grow_with_the_batch(
    team, plan, size, django_assert_max_num_queries
):
    rows = [row(i * 0.05, source=f"s{i % 7}", id=f"id-{i}") for i in range(size)]
    # At most 12, whatever the size: the store's transaction is a savepoint (and its release)
    # inside the test's, and the metrics, the batch row, the COPY and the rollups are one each.
    with django_assert_max_num_queries(12):
        result = ingest(team, rows, plan=plan, idempotency_key=f"size-{size}")
    assert result.stored == size
