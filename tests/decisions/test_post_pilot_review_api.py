"""The post-pilot review over the API: /api/v1/plans/{id}/post-pilot-review (read with its ETag,
write with If-Match, complete), every refusal (403 with words, 404 for outsiders and before the
decision, 409 once Closed), team keys and personal tokens, and the read's query count."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client
from django.utils import timezone

from accounts.api_keys import api_key_create
from accounts.tokens import personal_token_create
from decisions.models import PostPilotReview
from decisions.services.review import post_pilot_review_open
from pilots.models import PilotPlan
from tests.factories import PilotPlanFactory

pytestmark = pytest.mark.django_db

DECIDED_AT = dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC)
TEXT = {
    "findings": "Shoppers reorder groceries mostly.",
    "went_well": "The flag worked per region.",
    "to_improve": "Agree the baseline first.",
}


def _status(plan: PilotPlan, status: str, **fields) -> PilotPlan:  # type: ignore[no-untyped-def]
    PilotPlan.objects.filter(pk=plan.pk).update(status=status, **fields)
    plan.refresh_from_db()
    return plan


@pytest.fixture
def plan(team, po, sm):
    plan = PilotPlanFactory(team=team, owner=po, title="Saved cards")
    return _status(plan, "decided", decision="go", decided_at=DECIDED_AT, scrum_master=sm)


@pytest.fixture
def review(plan):
    return post_pilot_review_open(plan=plan, decided_at=DECIDED_AT)


def url(plan: PilotPlan, tail: str = "") -> str:
    return f"/api/v1/plans/{plan.pk}/post-pilot-review{tail}"


def send(client: Client, method: str, path: str, body: dict | None = None, **headers: str):
    data = json.dumps(body) if body is not None else ""
    return client.generic(method, path, data, content_type="application/json", headers=headers)


def bearer(token: str) -> Client:
    return Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {token}"})


def test_members_read_the_review_with_its_etag(
    client_for, plan, review, stakeholder, django_assert_max_num_queries
):
    client = client_for(stakeholder)
    client.get("/api/v1/me")  # the session's first request (login bookkeeping) aside
    with django_assert_max_num_queries(6):
        response = client.get(url(plan))
    assert response.status_code == 200, response.content
    body = response.json()
    assert response["ETag"] == '"1"'
    assert (body["plan"], body["version"], body["is_completed"]) == (plan.pk, 1, False)
    assert (body["parts_written"], body["parts_total"]) == (0, 3)
    assert body["state"]["value"] in {"open", "due_today", "overdue"}
    assert body["due_on"] == review.due_on.isoformat()


def test_a_decided_plan_without_a_review_gets_one_on_read(client_for, plan, po):
    assert client_for(po).get(url(plan)).status_code == 200
    assert PostPilotReview.objects.filter(plan=plan).exists()


def test_before_the_decision_there_is_no_review(client_for, team, po):
    running = _status(PilotPlanFactory(team=team, owner=po), "running")
    response = client_for(po).get(url(running))
    assert response.status_code == 404
    assert "opens when the decision is recorded" in response.json()["detail"]


def test_writers_save_parts_with_if_match(client_for, plan, review, developer):
    client = client_for(developer)
    assert send(client, "PATCH", url(plan), {"findings": "x"}).status_code == 428

    saved = send(client, "PATCH", url(plan), {"findings": TEXT["findings"]}, **{"If-Match": '"1"'})
    assert saved.status_code == 200, saved.content
    assert saved["ETag"] == '"2"'
    assert saved.json()["findings"] == TEXT["findings"] and saved.json()["went_well"] == ""
    assert saved.json()["updated_by"]["id"] == developer.pk

    more = send(client, "PATCH", url(plan), {"went_well": "Flags."}, **{"If-Match": '"2"'})
    assert more.json()["findings"] == TEXT["findings"]  # the parts not sent stay

    stale = send(client, "PATCH", url(plan), {"findings": "Mine"}, **{"If-Match": '"1"'})
    assert stale.status_code == 412
    assert PostPilotReview.objects.get(pk=review.pk).findings == TEXT["findings"]

    too_long = send(client, "PATCH", url(plan), {"findings": "x" * 10_001}, **{"If-Match": '"3"'})
    assert too_long.status_code == 400 and "findings" in too_long.json()["errors"]


def test_the_scrum_master_completes_once_every_part_is_written(client_for, plan, review, sm):
    client = client_for(sm)
    early = send(client, "POST", url(plan, "/complete"), **{"If-Match": '"1"'})
    assert early.status_code == 400
    assert early.json()["errors"].keys() == set(TEXT)

    assert send(client, "PATCH", url(plan), TEXT, **{"If-Match": '"1"'}).status_code == 200
    assert send(client, "POST", url(plan, "/complete")).status_code == 428
    assert send(client, "POST", url(plan, "/complete"), **{"If-Match": '"1"'}).status_code == 412
    done = send(client, "POST", url(plan, "/complete"), **{"If-Match": '"2"'})
    assert done.status_code == 200, done.content
    assert done.json()["is_completed"] is True and done.json()["completed_by"]["id"] == sm.pk
    again = send(client, "POST", url(plan, "/complete"), **{"If-Match": '"3"'})
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("person", "write", "complete"),
    [
        ("po", 200, 400),
        ("sm", 200, 400),
        ("developer", 200, 403),
        ("devops", 200, 403),
        ("stakeholder", 403, 403),
        ("outsider", 404, 404),
    ],
)
def test_who_writes_and_completes(request, client_for, plan, review, person, write, complete):
    client = client_for(request.getfixturevalue(person))
    saved = send(client, "PATCH", url(plan), {"findings": "Mine"}, **{"If-Match": '"1"'})
    assert saved.status_code == write
    version = PostPilotReview.objects.get(pk=review.pk).version
    done = send(client, "POST", url(plan, "/complete"), **{"If-Match": f'"{version}"'})
    assert done.status_code == complete
    if write == 403:
        assert "post-pilot review" in saved.json()["detail"]


def test_a_closed_plans_review_is_history(client_for, plan, review, po):
    _status(plan, "closed")
    assert client_for(po).get(url(plan)).status_code == 200
    response = send(client_for(po), "PATCH", url(plan), TEXT, **{"If-Match": '"1"'})
    assert response.status_code == 409 and "Closed" in response.json()["detail"]


def test_keys_read_only_and_tokens_act_as_their_person(plan, review, team, po):
    key = api_key_create(team=team, name="ci", scopes=["read", "write"], created_by=po)[1]
    assert bearer(key).get(url(plan)).status_code == 200
    assert send(bearer(key), "PATCH", url(plan), TEXT, **{"If-Match": '"1"'}).status_code == 403

    expires = timezone.now() + dt.timedelta(days=1)
    read = personal_token_create(user=po, name="r", scopes=["read"], expires_at=expires)[1]
    assert bearer(read).get(url(plan)).status_code == 200
    assert send(bearer(read), "PATCH", url(plan), TEXT, **{"If-Match": '"1"'}).status_code == 403
    write = personal_token_create(user=po, name="w", scopes=["read", "write"], expires_at=expires)
    response = send(bearer(write[1]), "PATCH", url(plan), TEXT, **{"If-Match": '"1"'})
    assert response.status_code == 200, response.content
