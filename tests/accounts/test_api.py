"""The REST API of accounts: /api/v1/ root, me, teams; the OpenAPI schema and its docs page."""

from __future__ import annotations

import json

import pytest
import yaml
from django.test import Client

from accounts.models import Membership, Team
from tests.factories import MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

ROOT = "/api/v1/"
ME = "/api/v1/me"
TEAMS = "/api/v1/teams"


def team_url(team_id: int) -> str:
    return f"/api/v1/teams/{team_id}"


def post_json(client: Client, url: str, data: dict[str, object]):  # type: ignore[no-untyped-def]
    return client.post(url, json.dumps(data), content_type="application/json")


# --- root ----------------------------------------------------------------------------------------


def test_root_links_to_every_collection_and_the_schema(client_for, po):
    response = client_for(po).get(ROOT)

    assert response.status_code == 200
    assert response.json() == {
        "me": "http://testserver/api/v1/me",
        "teams": "http://testserver/api/v1/teams",
        "plans": "http://testserver/api/v1/plans",
        "schema": "http://testserver/api/schema/",
        "docs": "http://testserver/api/docs/",
    }


# --- me ------------------------------------------------------------------------------------------


def test_me_returns_the_user_with_their_teams_and_roles(client_for, team, po, sm, other_team):
    MembershipFactory(team=other_team, user=sm, role=Membership.Role.STAKEHOLDER)

    response = client_for(sm).get(ME)

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == sm.pk
    assert body["email"] == "sm@example.test"
    assert body["full_name"] == sm.full_name
    assert body["teams"] == [
        {
            "id": team.pk,
            "name": "Checkout",
            "slug": "checkout",
            "time_zone": team.time_zone,
            "my_role": "scrum_master",
            "member_count": 2,  # po and sm
        },
        {
            "id": other_team.pk,
            "name": "Elsewhere",
            "slug": "elsewhere",
            "time_zone": other_team.time_zone,
            "my_role": "stakeholder",
            "member_count": 1,
        },
    ]


def test_me_of_a_user_without_teams_has_an_empty_list(client_for, db):
    body = client_for(UserFactory()).get(ME).json()

    assert body["teams"] == []


def test_me_query_count(client_for, po, other_team, django_assert_num_queries):
    MembershipFactory(team=other_team, user=po)
    client = client_for(po)

    with django_assert_num_queries(3):  # session, user, teams
        response = client.get(ME)

    assert len(response.json()["teams"]) == 2


# --- teams ---------------------------------------------------------------------------------------


def test_team_list_is_paginated_and_holds_only_the_users_teams(
    client_for, team, po, other_team, outsider
):
    response = client_for(po).get(TEAMS)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["next"] is None
    assert body["previous"] is None
    assert [t["id"] for t in body["results"]] == [team.pk]
    assert body["results"][0]["my_role"] == "product_owner"


def test_team_list_pages_past_fifty_teams(client_for, po):
    for n in range(51):
        MembershipFactory(team=TeamFactory(name=f"Team {n:02d}"), user=po)
    client = client_for(po)

    first = client.get(TEAMS).json()
    second = client.get(TEAMS, {"page": 2}).json()

    assert first["count"] == 52  # the fixture's team and 51 more
    assert len(first["results"]) == 50
    assert first["next"].endswith("/api/v1/teams?page=2")
    assert len(second["results"]) == 2
    seen = {t["id"] for t in first["results"]} | {t["id"] for t in second["results"]}
    assert len(seen) == 52


def test_team_list_query_count_does_not_grow_with_teams(client_for, po, django_assert_num_queries):
    for _ in range(5):
        MembershipFactory(team=TeamFactory(), user=po)
    client = client_for(po)

    with django_assert_num_queries(4):  # session, user, count, page
        response = client.get(TEAMS)

    assert response.json()["count"] == 6


def test_team_create_answers_201_with_the_caller_as_first_member(client_for, po):
    response = post_json(
        client_for(po), TEAMS, {"name": "Payments", "time_zone": "Asia/Tokyo", "role": "devops"}
    )

    assert response.status_code == 201
    body = response.json()
    team = Team.objects.get(pk=body["id"])
    assert body == {
        "id": team.pk,
        "name": "Payments",
        "slug": "payments",
        "time_zone": "Asia/Tokyo",
        "my_role": "devops",
        "member_count": 1,
    }
    assert Membership.objects.get(team=team).user == po


def test_team_create_defaults_to_utc_and_product_owner(client_for, developer):
    body = post_json(client_for(developer), TEAMS, {"name": "Payments"}).json()

    assert body["time_zone"] == "UTC"
    assert body["my_role"] == "product_owner"


@pytest.mark.parametrize(
    ("field", "data"),
    [
        ("name", {"name": ""}),
        ("name", {}),
        ("name", {"name": "x" * 101}),
        ("time_zone", {"name": "Payments", "time_zone": "Mars/Olympus"}),
        ("role", {"name": "Payments", "role": "captain"}),
    ],
)
def test_team_create_refuses_invalid_input_with_400_naming_the_field(client_for, po, field, data):
    teams_before = Team.objects.count()

    response = post_json(client_for(po), TEAMS, data)

    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "urn:pilotplan:problem:invalid-input"
    assert list(body["errors"]) == [field]
    assert isinstance(body["errors"][field], list)
    assert body["errors"][field]
    assert Team.objects.count() == teams_before


def test_team_create_with_a_whitespace_name_is_refused(client_for, po):
    response = post_json(client_for(po), TEAMS, {"name": "   "})

    assert response.status_code == 400
    assert "name" in response.json()["errors"]
    assert Team.objects.count() == 1


def test_team_create_needs_the_csrf_token_for_session_auth(po):
    client = Client(enforce_csrf_checks=True)
    client.force_login(po)

    response = post_json(client, TEAMS, {"name": "Payments"})

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not Team.objects.filter(name="Payments").exists()


def test_team_detail_of_own_team(client_for, team, developer):
    response = client_for(developer).get(team_url(team.pk))

    assert response.status_code == 200
    assert response.json()["my_role"] == "developer"


def test_team_detail_of_another_team_is_404(client_for, po, other_team, outsider):
    response = client_for(po).get(team_url(other_team.pk))

    assert response.status_code == 404


def test_team_detail_of_a_missing_team_is_404_too(client_for, po):
    response = client_for(po).get(team_url(999_999))

    assert response.status_code == 404


def test_team_detail_of_an_id_beyond_bigint_is_404_not_500(client_for, po):
    response = client_for(po).get(team_url(2**70))

    assert response.status_code == 404


def test_team_detail_query_count(client_for, team, po, django_assert_num_queries):
    client = client_for(po)

    with django_assert_num_queries(3):  # session, user, team
        client.get(team_url(team.pk))


def test_team_detail_refuses_writes(client_for, team, po):
    response = client_for(po).delete(team_url(team.pk))

    assert response.status_code == 405
    assert Team.objects.filter(pk=team.pk).exists()


# --- anonymous -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [ROOT, ME, TEAMS, "/api/v1/teams/1"])
def test_anonymous_gets_401_on_every_endpoint(client, db, path):
    response = client.get(path)

    # 401, not 403: every endpoint takes a bearer token, and says so (WWW-Authenticate).
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response["Content-Type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Unauthorized",
        "status": 401,
        "detail": "Authentication credentials were not provided.",
    }


def test_anonymous_cannot_create_a_team(client, db):
    response = post_json(client, TEAMS, {"name": "Payments"})

    assert response.status_code == 401
    assert not Team.objects.exists()


def test_anonymous_learns_nothing_about_an_existing_team(client, team):
    assert client.get(team_url(team.pk)).status_code == 401


# --- schema and docs -----------------------------------------------------------------------------


def test_schema_is_openapi_3_and_lists_the_paths(client, db):
    response = client.get("/api/schema/")

    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Pilotplan API"
    assert {"/api/v1/", "/api/v1/me", "/api/v1/teams", "/api/v1/teams/{team_id}"} <= set(
        schema["paths"]
    )
    assert set(schema["paths"]["/api/v1/teams"]) >= {"get", "post"}


def test_schema_as_json_describes_the_roles(client, db):
    response = client.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    role = schema["components"]["schemas"]["RoleEnum"]
    assert set(role["enum"]) == set(Membership.Role.values)


def test_docs_page_loads_nothing_from_a_cdn(client, db):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "/static/drf_spectacular_sidecar/" in html  # served by us
    for cdn in ("cdn.", "jsdelivr", "unpkg", "cdnjs"):
        assert cdn not in html
