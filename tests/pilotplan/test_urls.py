"""One name per concept (issue #9, docs/glossary.md): where the URLs live, and what became of the
old ones. Old browser addresses answer with a permanent redirect (301 for GET and HEAD, 308 for
the rest, the query string kept); the API's old ``episodes`` paths answer as before, with a
``Deprecation`` header and a link to their successor; every plan page lives under
``plans/<int:plan_id>/``, every team setting under ``teams/<int:team_id>/``, and the API uses the
browser's nouns."""

from __future__ import annotations

import calendar

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from accounts.models import Team, User
from metrics.api.alerts import EPISODES_DEPRECATED
from metrics.models import TriggerEpisode
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
    assert invalid.status_code == 400 and "resolution" in invalid.json()
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
    assert Client().get(old).status_code == 403
    for action in ("acknowledge", "resolve"):
        url = f"{old}/{alert.pk}/{action}"
        refused = client_for(stakeholder).post(url, body, content_type=json_)
        assert refused.status_code == 403
        assert_deprecated(refused, f"/api/v1/plans/{plan.pk}/alerts/{alert.pk}/{action}")
        assert client_for(outsider).post(url, body, content_type=json_).status_code == 404
        assert Client().post(url, body, content_type=json_).status_code == 403
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
        assert paths[path][method]["responses"] == paths[old_path][old_method]["responses"]


@pytest.mark.django_db
def test_the_schema_generates_without_warnings_and_validates(tmp_path):
    # drf-spectacular's own check: any warning (an unknown type, a duplicate operation id …)
    # fails, and the result is validated against the OpenAPI 3 JSON schema.
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", tmp_path / "s.yaml")
