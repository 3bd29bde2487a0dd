"""One name per concept (issue #9, docs/glossary.md): where the URLs live, and what became of the
old ones. Old browser addresses answer with a permanent redirect (301 for GET and HEAD, 308 for
the rest, the query string kept); the API's old ``episodes`` paths answer as before, with a
``Deprecation`` header and a link to their successor; every plan page lives under
``plans/<int:plan_id>/``, every team setting under ``teams/<int:team_id>/``, and the API uses the
browser's nouns."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.http import HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse

from accounts.models import Team, User
from core.deprecation import deprecated
from metrics.api.alerts import EPISODES_DEPRECATED
from metrics.models import TriggerEpisode
from pilotplan import redirects
from pilots.models import PilotPlan
from tests.factories import running_plan
from tests.metrics.test_triggers import DAY, SECONDS, T0, evaluate, sample

# --- the API's old episodes paths ----------------------------------------------------------------

DEPRECATION = f"@{calendar.timegm(EPISODES_DEPRECATED.timetuple())}"


@pytest.fixture
def plan(team: Team, po: User, devops: User) -> PilotPlan:
    return running_plan(team=team, owner=po, start_date=DAY, rollback_executor=devops)


@pytest.fixture
def alert(plan: PilotPlan) -> TriggerEpisode:
    """The P1 trigger fired: a P1 defect was reported."""
    sample(plan, T0, 1)
    [fired] = evaluate(plan, T0 + SECONDS)
    return TriggerEpisode.objects.get(pk=fired.pk)


def assert_deprecated(response, successor: str) -> None:
    assert response["Deprecation"] == DEPRECATION
    assert response["Link"] == f'<http://testserver{successor}>; rel="successor-version"'


def assert_current(response) -> None:
    assert not response.has_header("Deprecation")
    assert not response.has_header("Link")


@pytest.mark.django_db
def test_the_old_alert_list_answers_as_the_new_one_with_a_deprecation_header(
    client_for, plan, alert, stakeholder
):
    client = client_for(stakeholder)
    new = f"/api/v1/plans/{plan.pk}/alerts"
    assert reverse("api:plan-alerts", args=[plan.pk]) == new

    for query in ({}, {"unresolved": "true"}):
        old_response = client.get(f"/api/v1/plans/{plan.pk}/episodes", query)
        new_response = client.get(new, query)

        assert old_response.status_code == new_response.status_code == 200
        assert old_response.json() == new_response.json()
        assert [a["id"] for a in new_response.json()["results"]] == [alert.pk]
        assert_deprecated(old_response, new)
        assert_current(new_response)


@pytest.mark.django_db
def test_the_old_acknowledge_and_resolve_paths_still_work_and_say_where_to_go(
    client_for, plan, alert, devops
):
    client = client_for(devops)
    old = f"/api/v1/plans/{plan.pk}/episodes/{alert.pk}"
    new = f"/api/v1/plans/{plan.pk}/alerts/{alert.pk}"
    assert reverse("api:plan-alert-acknowledge", args=[plan.pk, alert.pk]) == f"{new}/acknowledge"
    assert reverse("api:plan-alert-resolve", args=[plan.pk, alert.pk]) == f"{new}/resolve"
    json_ = "application/json"

    acknowledged = client.post(f"{old}/acknowledge")
    assert acknowledged.status_code == 200
    assert acknowledged.json()["acknowledged_by"]["id"] == devops.pk
    assert_deprecated(acknowledged, f"{new}/acknowledge")
    again = client.post(f"{new}/acknowledge")  # idempotent: the same alert, the same answer
    assert again.status_code == 200 and again.json() == acknowledged.json()
    assert_current(again)

    invalid = client.post(f"{old}/resolve", {}, content_type=json_)
    assert invalid.status_code == 400 and "resolution" in invalid.json()["errors"]
    assert_deprecated(invalid, f"{new}/resolve")

    resolved = client.post(f"{old}/resolve", {"resolution": "Rolled back"}, content_type=json_)
    assert resolved.status_code == 200
    assert resolved.json()["state"] == "resolved"
    assert resolved.json()["resolution"] == "Rolled back"
    assert_deprecated(resolved, f"{new}/resolve")

    for url in (f"{old}/resolve", f"{new}/resolve"):
        conflict = client.post(url, {"resolution": "Again"}, content_type=json_)
        assert conflict.status_code == 409
    assert_deprecated(
        client.post(f"{old}/resolve", {"resolution": "x"}, content_type=json_), f"{new}/resolve"
    )
    alert.refresh_from_db()
    assert alert.resolution == "Rolled back"


@pytest.mark.django_db
def test_the_old_paths_keep_their_access_rules(client_for, plan, alert, stakeholder, outsider):
    old = f"/api/v1/plans/{plan.pk}/episodes"
    body = {"resolution": "x"}
    json_ = "application/json"

    assert client_for(outsider).get(old).status_code == 404
    assert Client().get(old).status_code == 401
    for action in ("acknowledge", "resolve"):
        url = f"{old}/{alert.pk}/{action}"
        refused = client_for(stakeholder).post(url, body, content_type=json_)
        assert refused.status_code == 403
        assert_deprecated(refused, f"/api/v1/plans/{plan.pk}/alerts/{alert.pk}/{action}")
        assert client_for(outsider).post(url, body, content_type=json_).status_code == 404
        assert Client().post(url, body, content_type=json_).status_code == 401
    alert.refresh_from_db()
    assert alert.acknowledged_at is None and alert.resolved_at is None


@pytest.mark.django_db
def test_the_schema_marks_the_old_operations_deprecated_and_only_them(client):
    paths = client.get("/api/schema/", {"format": "json"}).json()["paths"]
    prefix = "/api/v1/plans/{plan_id}"

    new = {
        f"{prefix}/alerts": ("get", "plans_alerts_list"),
        f"{prefix}/alerts/{{alert_id}}/acknowledge": ("post", "plans_alerts_acknowledge"),
        f"{prefix}/alerts/{{alert_id}}/resolve": ("post", "plans_alerts_resolve"),
    }
    old = {
        f"{prefix}/episodes": ("get", "plans_episodes_list"),
        f"{prefix}/episodes/{{alert_id}}/acknowledge": ("post", "plans_episodes_acknowledge"),
        f"{prefix}/episodes/{{alert_id}}/resolve": ("post", "plans_episodes_resolve"),
    }
    for path, (method, operation_id) in new.items():
        assert paths[path][method]["operationId"] == operation_id
        assert not paths[path][method].get("deprecated", False)
    for path, (method, operation_id) in old.items():
        assert paths[path][method]["operationId"] == operation_id
        assert paths[path][method]["deprecated"] is True
    deprecated = {
        path
        for path, operations in paths.items()
        for operation in operations.values()
        if operation.get("deprecated")
    }
    assert deprecated == set(old)
    # The same body on both: a client moves by changing the path only.
    for (path, (method, _)), (old_path, (old_method, _)) in zip(
        new.items(), old.items(), strict=True
    ):
        # The schema's links point at each path's own operations; the bodies are what matter.
        assert _without_links(paths[path][method]["responses"]) == _without_links(
            paths[old_path][old_method]["responses"]
        )


def _without_links(responses: dict) -> dict:
    return {
        status: {key: value for key, value in response.items() if key != "links"}
        for status, response in responses.items()
    }


def test_a_deprecated_view_announces_its_sunset_once_the_date_is_known(rf):
    view = deprecated(
        lambda request: HttpResponse("ok"),
        successor="healthz",
        since=dt.date(2026, 12, 6),
        sunset=dt.date(2027, 6, 1),
    )

    response = view(rf.get("/old-health"))

    assert response.content == b"ok"
    assert response["Deprecation"] == "@1796515200"
    assert response["Sunset"] == "Tue, 01 Jun 2027 00:00:00 GMT"
    assert response["Link"] == '<http://testserver/healthz>; rel="successor-version"'


@pytest.mark.django_db
def test_the_schema_generates_without_warnings_and_validates(tmp_path):
    # drf-spectacular's own check: any warning (an unknown type, a duplicate operation id …)
    # fails, and the result is validated against the OpenAPI 3 JSON schema.
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", tmp_path / "s.yaml")


# --- the browser's old addresses -----------------------------------------------------------------

# Every old address, as a browser, an e-mail or a bookmark has it, and where it lives now: plan 7,
# team 3, row 5, guest 4, alert 9, holiday 2.
MOVED = [
    ("/pilots/", "/plans/"),
    ("/pilots/new", "/plans/new"),
    ("/pilots/portfolio", "/portfolio"),
    ("/pilots/7/", "/plans/7/"),
    ("/pilots/7/health", "/plans/7/health"),
    ("/pilots/7/sections/environment/compliance", "/plans/7/sections/environment/compliance"),
    (
        "/pilots/7/sections/timeline/start-next-monday",
        "/plans/7/sections/timeline/start-next-monday",
    ),
    ("/pilots/7/sections/cohort", "/plans/7/sections/cohort"),
    ("/pilots/7/sections/cohort/edit", "/plans/7/sections/cohort/edit"),
    ("/pilots/7/rows/exit-criteria/", "/plans/7/rows/exit-criteria/"),
    ("/pilots/7/rows/exit-criteria/add", "/plans/7/rows/exit-criteria/add"),
    ("/pilots/7/rows/exit-criteria/5/edit", "/plans/7/rows/exit-criteria/5/edit"),
    ("/pilots/7/rows/exit-criteria/5/move", "/plans/7/rows/exit-criteria/5/move"),
    ("/pilots/7/rows/exit-criteria/5/remove", "/plans/7/rows/exit-criteria/5/remove"),
    ("/pilots/7/print", "/plans/7/print"),
    ("/pilots/7/export.md", "/plans/7/export.md"),
    ("/pilots/7/review", "/plans/7/review"),
    ("/pilots/7/lifecycle", "/plans/7/lifecycle"),
    ("/pilots/7/lifecycle/submit", "/plans/7/lifecycle/submit"),
    ("/pilots/7/reviews", "/plans/7/reviews"),
    ("/pilots/7/reviews/business", "/plans/7/reviews/business"),
    ("/pilots/7/reviews/business/edit", "/plans/7/reviews/business/edit"),
    ("/pilots/7/reviews/business/sign", "/plans/7/reviews/business/sign-off"),
    ("/pilots/7/timeline", "/plans/7/timeline"),
    ("/pilots/7/guests", "/plans/7/guests"),
    ("/pilots/7/guests/4/remove", "/plans/7/guests/4/remove"),
    ("/pilots/7/samples/upload", "/plans/7/samples/upload"),
    ("/pilots/7/checks", "/plans/7/checks"),
    ("/pilots/7/checks/latest", "/plans/7/checks/latest"),
    ("/pilots/7/monitoring", "/plans/7/monitoring"),
    ("/pilots/7/alerts", "/plans/7/alerts"),
    ("/pilots/7/alerts/banner", "/plans/7/alerts/banner"),
    ("/pilots/7/alerts/9/acknowledge", "/plans/7/alerts/9/acknowledge"),
    ("/pilots/7/alerts/9/resolve", "/plans/7/alerts/9/resolve"),
    ("/pilots/teams/3/holidays", "/teams/3/holidays"),
    ("/pilots/teams/3/holidays/new", "/teams/3/holidays/new"),
    ("/pilots/teams/3/holidays/2/delete", "/teams/3/holidays/2/delete"),
    ("/metrics/teams/3/", "/teams/3/metrics/"),
    ("/metrics/teams/3/new", "/teams/3/metrics/new"),
    ("/metrics/teams/3/webhook", "/teams/3/webhooks"),
]


@pytest.mark.parametrize(("old", "new"), MOVED)
def test_an_old_address_is_a_permanent_redirect_keeping_the_query_string(old, new):
    client = Client()

    plain = client.get(old)
    assert plain.status_code == 301
    assert plain["Location"] == new
    with_query = client.get(old, {"span": "24h", "page": "2"})
    assert with_query.status_code == 301
    assert with_query["Location"] == f"{new}?span=24h&page=2"
    assert client.head(old).status_code == 301
    # What answers there now is a page, not another redirect.
    assert resolve(new).func is not redirects.moved


@pytest.mark.parametrize(("old", "new"), MOVED)
def test_a_post_to_an_old_address_is_repeated_at_the_new_one(old, new):
    """308, not 301: a 301 turns a POST into a GET; a 308 keeps the method and the body."""
    client = Client(enforce_csrf_checks=True)  # changes nothing, so it needs no token

    response = client.post(f"{old}?next=/x", {"resolution": "x"}, headers={"HX-Request": "true"})

    assert response.status_code == 308
    assert response["Location"] == f"{new}?next=/x"


@pytest.mark.django_db
def test_a_browser_following_an_old_link_lands_on_the_page(client_for, plan, alert, po):
    client = client_for(po)

    response = client.get(f"/pilots/{plan.pk}/alerts", follow=True)

    assert response.redirect_chain == [(f"/plans/{plan.pk}/alerts", 301)]
    assert response.status_code == 200
    assert "Any P1 defect" in response.content.decode()
    acknowledged = client.post(
        f"/pilots/{plan.pk}/alerts/{alert.pk}/acknowledge", {"next": "/portfolio"}, follow=True
    )
    assert acknowledged.redirect_chain[0] == (
        f"/plans/{plan.pk}/alerts/{alert.pk}/acknowledge",
        308,
    )
    alert.refresh_from_db()
    assert alert.acknowledged_by == po


def test_every_redirect_in_the_table_is_walked_here():
    walked = {resolve(old).route for old, _ in MOVED}
    assert walked == {str(p.pattern) for p in redirects.urlpatterns}


# --- where URLs live ---------------------------------------------------------------------------


def routes(
    patterns: list[URLPattern | URLResolver] | None = None, prefix: str = ""
) -> Iterator[tuple[str, URLPattern]]:
    """Every route of the site, as its full pattern (``plans/<int:plan_id>/checks``)."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def browser_routes() -> list[str]:
    return [
        route
        for route, pattern in routes()
        if not route.startswith(("api/", "admin/")) and pattern.callback is not redirects.moved
    ]


def api_routes() -> list[tuple[str, URLPattern]]:
    return [(r.removeprefix("api/v1/"), p) for r, p in routes() if r.startswith("api/v1/")]


def test_every_page_of_a_plan_lives_under_plans_id():
    plan_pages = [r for r in browser_routes() if "<int:plan_id>" in r]
    assert len(plan_pages) > 30
    assert [r for r in plan_pages if not r.startswith("plans/<int:plan_id>/")] == []
    assert {"plans/", "plans/new"} <= set(browser_routes())


def test_every_setting_of_a_team_lives_under_teams_id():
    team_pages = [r for r in browser_routes() if "<int:team_id>" in r]
    assert {
        "teams/<int:team_id>/holidays",
        "teams/<int:team_id>/webhooks",
        "teams/<int:team_id>/api-keys",
        "teams/<int:team_id>/metrics/",
    } <= set(team_pages)
    assert [r for r in team_pages if not r.startswith("teams/<int:team_id>/")] == []


def test_no_page_answers_under_an_old_prefix_except_the_redirects():
    assert [r for r in browser_routes() if r.startswith(("pilots/", "metrics/"))] == []


def test_the_api_says_what_the_browser_says():
    api = api_routes()
    for route, _ in api:
        if "<int:plan_id>" in route:
            assert route.startswith("plans/<int:plan_id>"), route
        if "<int:team_id>" in route:
            assert route.startswith("teams/<int:team_id>"), route
    # "episodes" only in the deprecated aliases of the alerts paths, not even as a parameter.
    aliases = {route for route, p in api if hasattr(p.callback, "deprecated_successor")}
    assert {route for route, _ in api if "episode" in route} == aliases
    assert {route.split("/")[2] for route in aliases} == {"episodes"}

    def nouns(paths: list[str], prefix: str) -> set[str]:
        return {p.removeprefix(prefix).split("/")[0] for p in paths if p.startswith(prefix)}

    plan = "plans/<int:plan_id>/"
    current = [r for r, p in api if not hasattr(p.callback, "deprecated_successor")]
    api_nouns = nouns(current, plan)
    browser_nouns = nouns(browser_routes(), plan)
    assert {"sections", "rows", "reviews", "alerts", "samples"} <= api_nouns & browser_nouns
    # The API's other nouns, each a concept of its own in docs/glossary.md: a new one belongs
    # there first, and in the browser under the same word if the browser has it at all.
    # The decision records and their comments are read and written on the browser's one
    # decision page (``plans/<id>/decision``).
    # Trigger states and samples read back (plans/<id>/triggers, plans/<id>/metrics/<key>/samples)
    # are shown on the browser's Monitoring page.
    assert api_nouns - browser_nouns == {
        "check-runs", "transitions", "gate", "decisions", "decision-comments",
        "triggers", "metrics",
    }  # fmt: skip
