"""One error shape under /api/: problem details (RFC 9457, ``core.problems``), for every status.

The walk covers every URL pattern under /api/ (read from the URL configuration, so a new
endpoint is covered the day it is added): an unknown id answers 404, a malformed one too, a
method the endpoint does not allow 405, and a body that is not JSON 415 — each as
``application/problem+json`` with type, title, status and detail.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver

from pilotplan import api
from tests.factories import PilotPlanFactory

pytestmark = pytest.mark.django_db

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
ALL_METHODS = ("GET", *WRITE_METHODS)
_CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")


def assert_problem(response, status: int) -> dict:
    """``response`` is problem details for ``status``; its body."""
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/problem+json", response["Content-Type"]
    body = json.loads(response.content)
    assert {"type", "title", "status", "detail"} <= set(body), body
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str)
    return body


def _routes(patterns, prefix: str = "") -> Iterator[str]:
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route


def api_routes() -> list[str]:
    """Every URL pattern under /api/ (``api/v1/plans/<int:plan_id>``, …), once each."""
    routes = {r for r in _routes(get_resolver().url_patterns) if r.startswith("api/")}
    return sorted(routes)


def _path(route: str, value_for_int: str) -> str:
    def fill(match: re.Match) -> str:
        return value_for_int if (match.group(1) or "str") in ("int",) else "no-such-thing"

    return "/" + _CONVERTER.sub(fill, route).lstrip("^").rstrip("$")


ROUTES = api_routes()
WITH_IDS = [r for r in ROUTES if "<int:" in r]


@pytest.fixture
def person(po, team) -> Client:
    PilotPlanFactory(team=team, owner=po)  # the team has a plan: ids of others' are unknown
    client = Client()
    client.force_login(po)
    return client


def _allowed(client: Client, path: str) -> set[str]:
    answer = client.options(path)
    return {m.strip() for m in answer.headers.get("Allow", "").split(",") if m.strip()}


def test_the_walk_finds_the_api():
    assert len(ROUTES) > 60, ROUTES  # the walk reads the URL configuration, not a stale list
    assert "api/v1/plans/<int:plan_id>/check-runs" in ROUTES


@pytest.mark.parametrize("route", WITH_IDS)
def test_unknown_ids_answer_404_as_problem_details(person, route):
    path = _path(route, "987654321")
    allowed = _allowed(person, path) or {"GET"}
    method = next(m for m in ALL_METHODS if m in allowed)
    response = person.generic(method, path, "{}", content_type="application/json")

    assert_problem(response, 404)


@pytest.mark.parametrize("route", WITH_IDS)
def test_malformed_ids_answer_404_as_problem_details(person, route):
    response = person.get(_path(route, "abc"))

    assert_problem(response, 404)


@pytest.mark.parametrize("route", ROUTES)
def test_methods_an_endpoint_does_not_allow_answer_405_as_problem_details(person, route):
    path = _path(route, "987654321")
    allowed = _allowed(person, path)
    assert allowed, f"{path} says which methods it allows"
    method = next((m for m in ("PUT", "DELETE", "PATCH", "POST") if m not in allowed), None)
    if method is None:
        return  # every method is allowed here: nothing to refuse
    response = person.generic(method, path, "{}", content_type="application/json")

    assert_problem(response, 405)
    assert response["Allow"]


@pytest.mark.parametrize("route", ROUTES)
def test_bodies_that_are_not_json_answer_415_as_problem_details(person, route):
    """Where the body is read at all: a body-less write (a sign-off, a check run now) or one
    refused before the body is read (an unknown plan, a missing If-Match) answers that problem
    instead; every answer is still problem details."""
    path = _path(route, "987654321")
    statuses = set()
    for method in _allowed(person, path) & set(WRITE_METHODS) - {"DELETE"}:
        response = person.generic(method, path, "<plan/>", content_type="application/xml")
        if response.status_code >= 400:
            assert_problem(response, response.status_code)
        statuses.add(response.status_code)
    assert all(s < 500 for s in statuses), (route, statuses)


def test_writes_to_the_collections_refuse_xml_with_415(person):
    for path in ("/api/v1/plans", "/api/v1/teams"):
        response = person.post(path, "<plan/>", content_type="application/xml")
        assert_problem(response, 415)


def test_invalid_input_names_the_field_in_errors(person):
    body = assert_problem(person.post("/api/v1/teams", {}, content_type="application/json"), 400)

    assert body["type"] == "urn:pilotplan:problem:invalid-input"
    assert body["title"] == "Invalid input"
    assert body["errors"]["name"] == ["This field is required."]
    assert body["detail"] == "name: This field is required."


def test_a_list_fields_errors_by_position_fit_the_schema(person, team):
    """A list field's reasons come as an object by position; the schema's ``errors`` allows it
    (the fuzzer found a key's ``plans`` list refused against a schema that wanted a list)."""
    import jsonschema

    schema = person.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    response = person.post(
        f"/api/v1/teams/{team.pk}/api-keys",
        {"name": "Bot", "scopes": ["read"], "plans": ["x", "y"]},
        content_type="application/json",
    )
    body = assert_problem(response, 400)
    assert isinstance(body["errors"]["plans"], dict)
    invalid = schema["components"]["schemas"]["InvalidInputOutput"]
    jsonschema.validate(body, invalid)


def test_a_body_that_is_not_valid_json_answers_400_without_errors(person):
    body = assert_problem(person.post("/api/v1/teams", "{", content_type="application/json"), 400)

    assert "JSON" in body["detail"]
    assert "errors" not in body


def test_not_acceptable_answers_406_as_problem_details(person):
    for path in ("/api/v1/plans", "/api/schema/"):
        response = person.get(path, headers={"Accept": "application/xml"})
        assert_problem(response, 406)


def test_not_logged_in_answers_401_as_problem_details(db):
    response = Client().get("/api/v1/plans")
    body = assert_problem(response, 401)

    assert body["type"] == "about:blank"
    assert body["title"] == "Unauthorized"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_an_unknown_address_under_api_answers_404_as_problem_details(person):
    assert_problem(person.get("/api/v2/nothing"), 404)


def test_a_server_error_under_api_answers_500_as_problem_details(rf: RequestFactory):
    response = api.server_error(rf.get("/api/v1/plans"))

    body = assert_problem(response, 500)
    assert body["detail"] == "Server error: the problem was logged."


def test_errors_of_views_that_render_yaml_or_html_are_problem_details_too(person):
    assert_problem(person.put("/api/schema/"), 405)
    assert_problem(person.put("/api/docs/"), 405)


def test_a_server_error_elsewhere_answers_the_html_page(rf: RequestFactory):
    response = api.server_error(rf.get("/plans/1"))

    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


def test_a_body_too_large_answers_413_as_problem_details(person, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = person.post("/api/v1/teams", {"name": "x" * 200}, content_type="application/json")

    assert_problem(response, 413)
