"""Sample ingestion over HTTP: statuses, bodies, session and API-key access, query counts."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.api_keys import api_key_create, api_key_revoke
from accounts.models import ApiKey, Membership
from metrics.models import IngestBatch, Sample
from pilots.models import PilotPlan, PlanGuest
from tests.factories import MembershipFactory, UserFactory, running_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def plan(team, po):
    today = timezone.localdate(timezone=dt.UTC)
    return running_plan(
        team=team, owner=po, start_date=today - dt.timedelta(days=2), template=False
    )


@pytest.fixture
def key(team, po):
    return api_key_create(team=team, name="exporter", scopes=["ingest"], created_by=po)[1]


def sample(minutes_ago: float = 1, **extra):
    at = timezone.now() - dt.timedelta(minutes=minutes_ago)
    return {"metric": "p95_latency", "observed_at": at.isoformat(), "value": 250, **extra}


def url(plan) -> str:
    return reverse("api:plan-samples", args=[plan.pk])


def team_url(team) -> str:
    return reverse("api:team-samples", args=[team.pk])


def post(client: Client, path: str, body, key: str | None = None, **headers):
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(path, data, content_type="application/json", headers=headers)


# --- answers -----------------------------------------------------------------------------------


def test_a_batch_is_201_with_the_counts(plan, key):
    response = post(Client(), url(plan), {"samples": [sample(1), sample(2)]}, key)

    assert response.status_code == 201
    body = response.json()
    assert body == {
        "batch": IngestBatch.objects.get().pk,
        "received": 2,
        "stored": 2,
        "duplicates": 0,
        "replayed": False,
    }
    assert Sample.objects.filter(plan=plan).count() == 2


def test_a_bare_list_is_accepted(plan, key):
    assert post(Client(), url(plan), [sample()], key).status_code == 201


def test_an_invalid_sample_is_422_with_row_field_and_count(plan, key):
    samples = [sample(1), {**sample(2), "observed_at": "2025-05-01T10:00:00"}, sample(3)]

    response = post(Client(), url(plan), {"samples": samples}, key)

    assert response.status_code == 422
    body = response.json()
    assert body["error_count"] == 1
    assert body["errors"][0]["row"] == 1
    assert body["errors"][0]["field"] == "observed_at"
    assert "nothing was stored" in body["detail"]
    assert not Sample.objects.exists()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "not valid JSON"),
        ('{"samples": [{"metric": "p95_latency", "value": NaN}]}', "not valid JSON"),
        ('[{"metric": "p95_latency", "value": Infinity}]', "not valid JSON"),
        ('{"sample": []}', 'Send {"samples"'),
        ('"hello"', 'Send {"samples"'),
        ('{"samples": []}', "empty"),
        ("", "Send a JSON body"),
        # Nested beyond the parser's recursion: the view's own guard (the request-limits
        # middleware leaves the depth check to it, core.limits.parses_json_itself).
        ("[" * 5000 + "]" * 5000, "not valid JSON"),
    ],
)
def test_a_body_that_is_not_a_batch_is_400(plan, key, body, reason):
    response = post(Client(), url(plan), body, key)
    assert response.status_code == 400
    assert reason in response.json()["detail"]
    assert set(response.json()) == {"type", "title", "status", "detail", "errors", "error_count"}
    assert response.json()["type"] == "urn:pilotplan:problem:invalid-samples"


def test_more_than_10000_samples_is_400(plan, key):
    response = post(Client(), url(plan), [sample()] * 10_001, key)
    assert response.status_code == 400
    assert "at most 10,000" in response.json()["detail"]


def test_a_plan_that_is_not_running_is_422(plan, key):
    PilotPlan.objects.filter(pk=plan.pk).update(status=PilotPlan.Status.CLOSED)
    response = post(Client(), url(plan), [sample()], key)
    assert response.status_code == 422
    assert "Running or Evaluating" in response.json()["detail"]


def test_a_replayed_key_is_200_with_the_first_answer(plan, key):
    body = {"samples": [sample(1), sample(2)]}
    first = post(Client(), url(plan), body, key, **{"Idempotency-Key": "abc"})

    again = post(Client(), url(plan), body, key, **{"Idempotency-Key": "abc"})

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == {**first.json(), "replayed": True}
    assert Sample.objects.count() == 2


def test_a_reused_key_with_another_body_is_422(plan, key):
    post(Client(), url(plan), [sample(1)], key, **{"Idempotency-Key": "abc"})

    response = post(Client(), url(plan), [sample(2)], key, **{"Idempotency-Key": "abc"})

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert Sample.objects.count() == 1


def test_a_retry_without_a_key_reports_duplicates(plan, key):
    body = [sample(1, id="a"), sample(2, id="b")]
    post(Client(), url(plan), body, key)
    again = post(Client(), url(plan), body, key)
    assert again.status_code == 201
    assert (again.json()["stored"], again.json()["duplicates"]) == (0, 2)


def test_team_wide_batches_reach_several_plans(team, po, plan, key):
    second = running_plan(team=team, owner=po, start_date=plan.start_date, template=False)
    body = [sample(1, plan=plan.pk), sample(1, plan=second.pk)]

    response = post(Client(), team_url(team), {"samples": body}, key)

    assert response.status_code == 201
    assert set(Sample.objects.values_list("plan_id", flat=True)) == {plan.pk, second.pk}


def test_team_wide_batch_naming_another_teams_plan_is_422_and_stores_nothing(
    team, other_team, plan, key
):
    theirs = running_plan(
        team=other_team, owner=UserFactory(), start_date=plan.start_date, template=False
    )
    body = [sample(1, plan=plan.pk), sample(1, plan=theirs.pk)]

    response = post(Client(), team_url(team), body, key)

    assert response.status_code == 422
    assert response.json()["errors"][0] == {
        "row": 1,
        "field": "plan",
        "message": f"There is no plan {theirs.pk} in this team.",
    }
    assert not Sample.objects.exists()


# --- who may push ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["po", "sm", "developer", "devops"])
def test_team_members_who_edit_may_push_with_their_session(request, client_for, plan, role):
    user = request.getfixturevalue(role)
    client = client_for(user)
    assert post(client, url(plan), [sample()]).status_code == 201
    assert IngestBatch.objects.get().created_by == user
    assert post(client, team_url(plan.team), [sample(2, plan=plan.pk)]).status_code == 201


def test_session_pushes_need_the_csrf_token(plan, po):
    client = Client(enforce_csrf_checks=True)
    client.force_login(po)
    response = post(client, url(plan), [sample()])
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not Sample.objects.exists()


def test_a_stakeholder_is_403(client_for, plan, stakeholder):
    client = client_for(stakeholder)
    assert post(client, url(plan), [sample()]).status_code == 403
    assert post(client, team_url(plan.team), [sample(plan=plan.pk)]).status_code == 403
    assert not Sample.objects.exists()


def test_an_invited_guest_is_403(client_for, plan, po):
    guest = UserFactory()
    PlanGuest.objects.create(plan=plan, user=guest, invited_by=po)
    assert post(client_for(guest), url(plan), [sample()]).status_code == 403


def test_an_outsider_is_404(client_for, plan, outsider):
    client = client_for(outsider)
    assert post(client, url(plan), [sample()]).status_code == 404
    assert post(client, team_url(plan.team), [sample(plan=plan.pk)]).status_code == 404


def test_anonymous_is_401_asking_for_a_bearer_key(plan):
    response = post(Client(), url(plan), [sample()])
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert post(Client(), team_url(plan.team), [sample(plan=plan.pk)]).status_code == 401


def test_an_unknown_or_malformed_key_is_401(plan, key):
    prefix = key.split("_")[1]
    for bad in (f"pp_{prefix}_wrongsecret", "pp_nope_x", "pp_", key + "x"):
        assert post(Client(), url(plan), [sample()], bad).status_code == 401, bad
    assert not Sample.objects.exists()


def test_a_revoked_key_is_401(plan, key, po):
    api_key_revoke(key=ApiKey.objects.get(), user=po)
    response = post(Client(), url(plan), [sample()], key)
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_another_teams_key_is_404(other_team, plan, outsider):
    _, theirs = api_key_create(team=other_team, name="x", scopes=["ingest"], created_by=outsider)
    assert post(Client(), url(plan), [sample()], theirs).status_code == 404
    assert post(Client(), team_url(plan.team), [sample(plan=plan.pk)], theirs).status_code == 404


def test_a_key_without_the_ingest_scope_is_403(team, plan, po):
    _, read_only = api_key_create(team=team, name="r", scopes=["read", "write"], created_by=po)
    response = post(Client(), url(plan), [sample()], read_only)
    assert response.status_code == 403
    assert "ingest scope" in response.json()["detail"]
    assert post(Client(), team_url(team), [sample(plan=plan.pk)], read_only).status_code == 403


def test_an_ingest_key_reaches_nothing_but_ingestion(plan, key):
    client = Client()
    auth = {"Authorization": f"Bearer {key}"}
    assert client.get(reverse("api:plan-list"), headers=auth).json()["count"] == 0
    assert client.get(reverse("api:plan-detail", args=[plan.pk]), headers=auth).status_code == 403
    response = client.post(
        f"/api/v1/teams/{plan.team_id}/backlog", {"title": "From a key"}, headers=auth
    )
    assert response.status_code == 403
    assert "lacks the write scope" in response.json()["detail"]
    # Pages are for people: a key is no session.
    assert (
        client.get(reverse("pilots:plan_detail", args=[plan.pk]), headers=auth).status_code == 302
    )


def test_a_key_is_recorded_as_used_and_makes_no_person_the_author(plan, key):
    post(Client(), url(plan), [sample()], key)
    assert ApiKey.objects.get().last_used_at is not None
    assert IngestBatch.objects.get().created_by is None


# --- speed -------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [10, 5_000])
def test_the_requests_query_count_does_not_grow_with_the_batch(
    plan, key, size, django_assert_max_num_queries
):
    body = [sample(i * 0.01, source=f"s{i % 5}") for i in range(size)]
    client = Client()
    post(client, url(plan), [sample(500)], key)  # last_used_at written: at most once a minute

    # At most 14, whatever the size: the store's transaction is a savepoint (and its release)
    # inside the test's, and the metrics, the batch row, the COPY and the rollups are one each.
    with django_assert_max_num_queries(14):
        response = post(client, url(plan), body, key, **{"Idempotency-Key": f"n{size}"})
    assert response.status_code == 201
    assert response.json()["stored"] == size


def test_a_session_push_has_a_constant_query_count(
    client_for, plan, developer, django_assert_max_num_queries
):
    client = client_for(developer)
    for size in (10, 5_000):
        body = [sample(i * 0.01, source=f"n{size}") for i in range(size)]
        with django_assert_max_num_queries(15):
            assert post(client, url(plan), body).status_code == 201


def test_membership_of_another_role_in_another_team_does_not_leak(client_for, plan, other_team):
    # A Product Owner elsewhere who is a Stakeholder here is a Stakeholder here.
    user = UserFactory()
    MembershipFactory(team=other_team, user=user, role=Membership.Role.PRODUCT_OWNER)
    MembershipFactory(team=plan.team, user=user, role=Membership.Role.STAKEHOLDER)
    assert post(client_for(user), url(plan), [sample()]).status_code == 403


def test_a_body_that_is_not_json_by_its_type_is_415(plan, key):
    response = Client().post(
        url(plan), "metric,observed_at,value\n", content_type="text/csv",
        headers={"Authorization": f"Bearer {key}"},
    )  # fmt: skip
    assert response.status_code == 415
    assert not Sample.objects.exists()
