"""A metric's series over the API: /api/v1/plans/{id}/metrics/{key}/series, per minute, hour and
day from the samples and rollups the ingestion leaves; the value the chart draws (sum for counts,
mean otherwise); bounded windows (400 naming the parameter); who reads (404 for outsiders and
restricted keys); one query for the points."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from accounts.api_keys import api_key_create
from catalogue.models import MetricDefinition
from metrics.ingest import samples_store
from pilots.models import PilotPlan
from tests.factories import running_plan

pytestmark = pytest.mark.django_db

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def plan(team, po) -> PilotPlan:
    return running_plan(team=team, owner=po, start_date=T0.date())


def metric(key: str) -> int:
    return MetricDefinition.objects.get(team=None, key=key).pk


@pytest.fixture
def data(plan) -> None:
    """p95 latency: 100 and 300 in 10:00, 200 in 10:01, 400 in 11:30, 500 the next day;
    errors (a count): 2 and 3 in 10:00."""
    latency, errors = metric("p95_latency"), metric("errors")
    minute = dt.timedelta(minutes=1)
    samples_store(
        rows=[
            (plan.pk, latency, T0, 100.0, "api", ""),
            (plan.pk, latency, T0 + dt.timedelta(seconds=30), 300.0, "api", ""),
            (plan.pk, latency, T0 + minute, 200.0, "api", ""),
            (plan.pk, latency, T0 + 90 * minute, 400.0, "api", ""),
            (plan.pk, latency, T0 + dt.timedelta(days=1), 500.0, "api", ""),
            (plan.pk, errors, T0, 2.0, "api", ""),
            (plan.pk, errors, T0 + dt.timedelta(seconds=10), 3.0, "api", ""),
        ]
    )


def url(plan: PilotPlan, key: str = "p95_latency") -> str:
    return f"/api/v1/plans/{plan.pk}/metrics/{key}/series"


def window(bucket: str, since: dt.datetime, until: dt.datetime) -> dict[str, str]:
    return {"bucket": bucket, "since": since.isoformat(), "until": until.isoformat()}


def points(response) -> list[tuple[str, float, int]]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.content
    return [(p["start"], p["value"], p["count"]) for p in response.json()["points"]]


def test_minutes_hours_and_days_as_the_chart_draws_them(client_for, plan, data, stakeholder):
    client = client_for(stakeholder)
    end = T0 + dt.timedelta(days=2)

    assert points(client.get(url(plan), window("minute", T0, T0 + dt.timedelta(hours=2)))) == [
        ("2026-03-02T10:00:00Z", 200.0, 2),
        ("2026-03-02T10:01:00Z", 200.0, 1),
        ("2026-03-02T11:30:00Z", 400.0, 1),
    ]
    assert points(client.get(url(plan), window("hour", T0, end))) == [
        ("2026-03-02T10:00:00Z", 200.0, 3),
        ("2026-03-02T11:00:00Z", 400.0, 1),
        ("2026-03-03T10:00:00Z", 500.0, 1),
    ]
    body = client.get(url(plan), window("day", T0, end)).json()
    assert [(p["start"], p["count"], p["min"], p["max"]) for p in body["points"]] == [
        ("2026-03-02T00:00:00Z", 4, 100.0, 400.0),
        ("2026-03-03T00:00:00Z", 1, 500.0, 500.0),
    ]
    assert (body["metric"], body["unit"], body["kind"], body["bucket"]) == (
        "p95_latency", "ms", "gauge", "day"
    )  # fmt: skip
    assert body["since"] == "2026-03-02T00:00:00Z"  # the first bucket's start

    # A count metric's bucket is its sum, as "events per hour" means.
    assert points(client.get(url(plan, "errors"), window("hour", T0, end))) == [
        ("2026-03-02T10:00:00Z", 5.0, 2)
    ]


def test_the_window_is_half_open_and_floored_to_the_bucket(client_for, plan, data, po):
    since = T0 + dt.timedelta(minutes=1, seconds=20)  # inside 10:01
    until = T0 + dt.timedelta(minutes=90)  # 11:30 itself is outside
    got = points(client_for(po).get(url(plan), window("minute", since, until)))
    assert got == [("2026-03-02T10:01:00Z", 200.0, 1)]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"bucket": "week"}, "bucket"),
        (window("minute", T0, T0 + dt.timedelta(days=3)), "since"),
        (window("hour", T0, T0 + dt.timedelta(days=93)), "since"),
        (window("day", T0, T0 + dt.timedelta(days=401)), "since"),
        (window("hour", T0, T0), "since"),
        (window("hour", T0 + dt.timedelta(hours=1), T0), "since"),
        ({"since": "yesterday"}, "since"),
        ({"until": "0001-01-01T00:00:00Z"}, "until"),
        ({"bucket": "minute", "until": "9999-12-31T23:59:30Z"}, "until"),
    ],
)
def test_bad_windows_are_400_naming_the_parameter(client_for, plan, po, query, field):
    response = client_for(po).get(url(plan), query)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]


def test_defaults_read_the_last_week_of_hours(client_for, plan, po):
    samples_store(rows=[(plan.pk, metric("p95_latency"), timezone.now(), 250.0, "api", "")])
    body = client_for(po).get(url(plan)).json()
    assert body["bucket"] == "hour" and [p["value"] for p in body["points"]] == [250.0]


def test_who_reads_the_series(client_for, plan, data, outsider, team, po):
    assert client_for(outsider).get(url(plan)).status_code == 404
    assert client_for(po).get(url(plan, "no_such_metric")).status_code == 404
    assert Client().get(url(plan)).status_code == 401
    key = api_key_create(team=team, name="ci", scopes=["read"], created_by=po)[1]
    reader = Client(headers={"Authorization": f"Bearer {key}"})
    assert reader.get(url(plan)).status_code == 200
    other = running_plan(team=team, owner=po, start_date=T0.date())
    elsewhere = api_key_create(
        team=team, name="other", scopes=["read"], created_by=po, plan_ids=[other.pk]
    )[1]
    assert (
        Client(headers={"Authorization": f"Bearer {elsewhere}"}).get(url(plan)).status_code == 404
    )
    gate = api_key_create(team=team, name="gate", scopes=["gate"], created_by=po)[1]
    assert Client(headers={"Authorization": f"Bearer {gate}"}).get(url(plan)).status_code == 403


def test_the_series_reads_in_a_few_queries(
    client_for, plan, data, po, django_assert_max_num_queries
):
    client = client_for(po)
    client.get("/api/v1/me")  # the session's first request (login bookkeeping) aside
    for bucket in ("minute", "hour", "day"):
        with django_assert_max_num_queries(6):
            got = client.get(url(plan), window(bucket, T0, T0 + dt.timedelta(days=2)))
        assert got.status_code == 200
