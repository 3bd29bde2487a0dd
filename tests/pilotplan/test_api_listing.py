"""Every list endpoint of the API pages, orders and filters the same way (core.listing,
core.pagination): the schema documents ``page``, ``ordering`` and a filter; the endpoint answers
them, in both directions; an unknown ordering field or a filter value it cannot read is a 400
naming the parameter (problem details), never a silently wider list.

A new paginated list must be added to ``LISTS`` (the first test fails otherwise)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

from metrics.subscriptions import subscription_create
from tests.factories import running_plan

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Listing:
    path: str
    ordering: str  # one of its ordering fields
    good: str  # a filter query it reads ("" for none)
    bad: str  # the same filter with a value it cannot read


LISTS = [
    Listing("/api/v1/plans", "title", "status=running", "status=nonsense"),
    Listing("/api/v1/teams", "name", "", ""),
    Listing("/api/v1/me/tokens", "name", "revoked=false", "revoked=maybe"),
    Listing("/api/v1/notifications", "created_at", "unread=true", "unread=maybe"),
    Listing("/api/v1/plans/{plan_id}/alerts", "fired_at", "unresolved=true", "unresolved=maybe"),
    Listing("/api/v1/plans/{plan_id}/episodes", "fired_at", "unresolved=true", "unresolved=x"),
    Listing("/api/v1/plans/{plan_id}/check-runs", "due_at", "status=done", "status=nonsense"),
    Listing("/api/v1/plans/{plan_id}/decisions", "recorded_at", "outcome=go", "outcome=maybe"),
    Listing(
        "/api/v1/plans/{plan_id}/decision-comments", "created_at", "author={user_id}", "author=x"
    ),
    Listing("/api/v1/plans/{plan_id}/feedback", "csat", "noise=no", "noise=maybe"),
    Listing("/api/v1/plans/{plan_id}/history", "at", "label=update", "since=yesterday"),
    Listing(
        "/api/v1/plans/{plan_id}/metrics/p95_latency/samples",
        "observed_at",
        "since=2026-03-01T00:00:00Z&until=2026-03-02T00:00:00Z",
        "since=yesterday",
    ),
    Listing("/api/v1/plans/{plan_id}/participants", "name", "status=active", "status=gone"),
    Listing("/api/v1/plans/{plan_id}/triggers", "state", "state=ok", "state=nonsense"),
    Listing("/api/v1/plans/{plan_id}/timebox-extensions", "at", "actor={user_id}", "actor=x"),
    Listing("/api/v1/plans/{plan_id}/rollback", "started_at", "open=true", "open=maybe"),
    Listing("/api/v1/teams/{team_id}/api-keys", "last_used_at", "name=ci", "revoked=maybe"),
    Listing("/api/v1/teams/{team_id}/backlog", "number", "status=new", "status=nonsense"),
    Listing("/api/v1/teams/{team_id}/holidays", "date", "after=2026-01-01", "after=soon"),
    Listing("/api/v1/teams/{team_id}/members", "email", "role=scrum_master", "role=boss"),
    Listing("/api/v1/teams/{team_id}/invitations", "email", "role=developer", "role=boss"),
    Listing("/api/v1/teams/{team_id}/metrics", "name", "kind=gauge", "kind=nonsense"),
    Listing("/api/v1/teams/{team_id}/webhooks", "created_at", "active=true", "active=maybe"),
    Listing(
        "/api/v1/teams/{team_id}/webhooks/{subscription_id}/deliveries",
        "created_at",
        "state=pending",
        "state=nonsense",
    ),
]
# Lists whose only natural filter would duplicate the list itself (the caller's few teams).
NO_FILTER = {"/api/v1/teams"}


def _schema_path(listing: Listing) -> str:
    return listing.path.replace("p95_latency", "{key}")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def _query_parameters(schema: dict[str, Any], path: str) -> set[str]:
    operation = schema["paths"][path]["get"]
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}


def test_every_paginated_list_is_covered(schema) -> None:  # type: ignore[no-untyped-def]
    paginated = set()
    for path, operations in schema["paths"].items():
        answer = operations.get("get", {}).get("responses", {}).get("200", {})
        ref = answer.get("content", {}).get("application/json", {}).get("schema", {})
        if "Paginated" in ref.get("$ref", ""):
            paginated.add(path)
    assert paginated == {_schema_path(listing) for listing in LISTS}


@pytest.mark.parametrize("listing", LISTS, ids=lambda listing: listing.path)
def test_the_schema_documents_page_ordering_and_filters(schema, listing: Listing) -> None:  # type: ignore[no-untyped-def]
    names = _query_parameters(schema, _schema_path(listing))
    assert {"page", "ordering"} <= names
    ordering = next(
        p
        for p in schema["paths"][_schema_path(listing)]["get"]["parameters"]
        if p["name"] == "ordering"
    )
    assert f"`{listing.ordering}`" in ordering["description"]
    if listing.path in NO_FILTER:
        return
    assert names - {"page", "ordering"}, "at least one filter"
    for query in (listing.good, listing.bad):
        for pair in query.split("&"):
            assert pair.split("=")[0] in names


@pytest.fixture
def world(team, po, devops) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    plan = running_plan(team=team, owner=po, start_date=dt.date(2026, 3, 2))
    subscription, _secret = subscription_create(
        team=team,
        user=po,
        name="Ops",
        kind="standard",
        url="https://hooks.example.test/x",
        events=["trigger.fired"],
    )
    return {
        "plan_id": plan.pk,
        "team_id": team.pk,
        "subscription_id": subscription.pk,
        "user_id": po.pk,
    }


@pytest.mark.parametrize("listing", LISTS, ids=lambda listing: listing.path)
def test_lists_answer_ordering_and_filters_strictly(
    client_for, po, world, listing: Listing
) -> None:  # type: ignore[no-untyped-def]
    client: Client = client_for(po)
    url = listing.path.format(**world)
    for ordering in (listing.ordering, f"-{listing.ordering}"):
        response = client.get(f"{url}?ordering={ordering}")
        assert response.status_code == 200, (ordering, response.content)
        assert set(response.json()) == {"count", "next", "previous", "results"}

    unknown = client.get(f"{url}?ordering=no_such_field")
    assert unknown.status_code == 400
    assert list(unknown.json()["errors"]) == ["ordering"]

    if listing.good:
        good = client.get(f"{url}?{listing.good.format(**world)}&ordering={listing.ordering}")
        assert good.status_code == 200, good.content
        bad = client.get(f"{url}?{listing.bad}")
        assert bad.status_code == 400, bad.content
        assert list(bad.json()["errors"]) == [listing.bad.split("=")[0]]


def test_ordering_orders(client_for, po, team) -> None:  # type: ignore[no-untyped-def]
    first = running_plan(team=team, owner=po, start_date=dt.date(2026, 3, 2))
    second = running_plan(team=team, owner=po, start_date=dt.date(2026, 3, 9))
    client = client_for(po)
    ids = [p["id"] for p in client.get("/api/v1/plans?ordering=start_date").json()["results"]]
    assert ids == [first.pk, second.pk]
    ids = [p["id"] for p in client.get("/api/v1/plans?ordering=-start_date").json()["results"]]
    assert ids == [second.pk, first.pk]


@pytest.mark.parametrize(
    ("tail", "field"),
    [
        ("alerts?trigger=1e30", "trigger"),
        ("alerts?trigger=0", "trigger"),
        ("decision-comments?author=1.5", "author"),
    ],
)
def test_an_id_filter_takes_ids_only(client_for, po, world, tail, field) -> None:  # type: ignore[no-untyped-def]
    response = client_for(po).get(f"/api/v1/plans/{world['plan_id']}/{tail}")
    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == [field]
