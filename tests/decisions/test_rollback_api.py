"""The rollback checklist over the API: /api/v1/plans/{id}/rollback (list, start, read,
mark a step with If-Match, end), every refusal (403 with words, 404 for outsiders and keys of
another plan), team keys and personal tokens, and the query counts of the reads."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client
from django.utils import timezone

from accounts.api_keys import api_key_create
from accounts.tokens import personal_token_create
from decisions.models import RollbackRun, RollbackStepRun
from decisions.services.rollback import rollback_start
from metrics.models import TriggerEpisode
from pilots.models import PilotPlan
from tests.decisions.test_rollback import DAY, fire, mark, minute, state, steps
from tests.factories import running_plan

pytestmark = pytest.mark.django_db

Status = RollbackStepRun.Status


@pytest.fixture
def plan(team, po, devops) -> PilotPlan:
    """Running, from the template (three rollback steps); the DevOps engineer executes."""
    return running_plan(team=team, owner=po, start_date=DAY, rollback_executor=devops)


@pytest.fixture
def run(plan, devops) -> RollbackRun:
    return rollback_start(plan=plan, user=devops, episode=fire(plan))


def runs_url(plan: PilotPlan, tail: str = "") -> str:
    return f"/api/v1/plans/{plan.pk}/rollback{tail}"


def step_url(step: RollbackStepRun) -> str:
    return f"/api/v1/plans/{step.run.plan_id}/rollback/steps/{step.pk}"


def send(client: Client, method: str, url: str, body: dict | None = None, **headers: str):
    data = json.dumps(body) if body is not None else ""
    return client.generic(method, url, data, content_type="application/json", headers=headers)


def bearer(token: str) -> Client:
    return Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {token}"})


def token_of(user, scopes: list[str]) -> str:
    expires = timezone.now() + dt.timedelta(days=1)
    return personal_token_create(user=user, name="script", scopes=scopes, expires_at=expires)[1]


# --- reads ----------------------------------------------------------------------------------------


def test_members_list_and_read_runs_with_steps_and_verification(
    client_for, plan, run, stakeholder, django_assert_max_num_queries
):
    minute(plan, 210.0)
    state(plan, "ok")
    client = client_for(stakeholder)
    client.get("/api/v1/me")  # the session's first request (login bookkeeping) aside

    with django_assert_max_num_queries(10):
        listed = client.get(runs_url(plan))
    assert listed.status_code == 200, listed.content
    body = listed.json()
    assert body["count"] == 1
    summary = body["results"][0]
    assert (summary["id"], summary["emergency"], summary["is_open"]) == (run.pk, True, True)
    assert (summary["step_count"], summary["marked_count"]) == (4, 0)
    assert "steps" not in summary

    with django_assert_max_num_queries(14):
        detail = client.get(runs_url(plan, f"/{run.pk}"))
    assert detail.status_code == 200, detail.content
    data = detail.json()
    assert [s["position"] for s in data["steps"]] == [1, 2, 3, 4]
    assert data["steps"][-1]["kind"] == "verification"
    assert data["steps"][0]["status_label"] == "Not done yet"
    assert data["verification"]["verdict"] == "recovered"
    assert data["verification"]["checks"][0]["recovered"] is True


def test_runs_filter_and_order_strictly(client_for, plan, run, devops, po):
    for step in steps(run):
        mark(step, devops, Status.DONE)
    assert send(client_for(devops), "POST", runs_url(plan, f"/{run.pk}/end")).status_code == 200
    TriggerEpisode.objects.filter(pk=run.episode_id).update(resolved_at=timezone.now())
    client = client_for(po)
    second = rollback_start(plan=plan, user=devops, episode=fire(plan))

    assert [r["id"] for r in client.get(runs_url(plan)).json()["results"]] == [second.pk, run.pk]
    ordered = client.get(runs_url(plan), {"ordering": "started_at"}).json()["results"]
    assert [r["id"] for r in ordered] == [run.pk, second.pk]
    assert [r["id"] for r in client.get(runs_url(plan), {"open": "true"}).json()["results"]] == [
        second.pk
    ]
    assert [r["id"] for r in client.get(runs_url(plan), {"open": "false"}).json()["results"]] == [
        run.pk
    ]
    bad = client.get(runs_url(plan), {"ordering": "action"})
    assert bad.status_code == 400 and "ordering" in bad.json()["errors"]
    assert client.get(runs_url(plan), {"open": "maybe"}).status_code == 400


def test_outsiders_and_other_plans_do_not_see_runs(client_for, plan, run, outsider, team, po):
    assert client_for(outsider).get(runs_url(plan)).status_code == 404
    assert client_for(outsider).get(runs_url(plan, f"/{run.pk}")).status_code == 404
    other = running_plan(team=team, owner=po, start_date=DAY)
    assert client_for(po).get(runs_url(other, f"/{run.pk}")).status_code == 404
    assert Client().get(runs_url(plan)).status_code == 401


def test_a_read_key_reads_but_never_works_the_checklist(plan, run, team, po):
    key = api_key_create(team=team, name="ci", scopes=["read", "write"], created_by=po)[1]
    client = bearer(key)
    assert client.get(runs_url(plan, f"/{run.pk}")).status_code == 200
    step = steps(run)[0]
    refused = send(client, "PATCH", step_url(step), {"status": "done"}, **{"If-Match": '"1"'})
    assert refused.status_code == 403
    assert send(client, "POST", runs_url(plan), {"episode": run.episode_id}).status_code == 403
    other = running_plan(team=team, owner=po, start_date=DAY)
    restricted = api_key_create(
        team=team, name="other", scopes=["read"], created_by=po, plan_ids=[other.pk]
    )[1]
    assert bearer(restricted).get(runs_url(plan)).status_code == 404


# --- start ----------------------------------------------------------------------------------------


def test_the_product_owner_starts_an_emergency_rollback(client_for, plan, po):
    episode = fire(plan)
    response = send(client_for(po), "POST", runs_url(plan), {"episode": episode.pk})

    assert response.status_code == 201, response.content
    body = response.json()
    run = RollbackRun.objects.get()
    assert (body["id"], body["episode"], body["emergency"]) == (run.pk, episode.pk, True)
    assert len(body["steps"]) == 4 and body["started_by"]["id"] == po.pk

    again = send(client_for(po), "POST", runs_url(plan), {"episode": episode.pk})
    assert again.status_code == 409
    assert "already in progress" in again.json()["detail"]


@pytest.mark.parametrize("person", ["sm", "developer", "stakeholder"])
def test_other_roles_may_not_start_a_rollback(request, client_for, plan, person):
    episode = fire(plan)
    response = send(
        client_for(request.getfixturevalue(person)), "POST", runs_url(plan), {"episode": episode.pk}
    )
    assert response.status_code == 403
    assert "(the rollback executor)" in response.json()["detail"]
    assert not RollbackRun.objects.exists()


def test_a_start_names_a_bad_episode(client_for, plan, po, team):
    client = client_for(po)
    assert send(client, "POST", runs_url(plan), {}).json()["errors"].keys() == {"episode"}
    other = running_plan(team=team, owner=po, start_date=DAY)
    response = send(client, "POST", runs_url(plan), {"episode": fire(other).pk})
    assert response.status_code == 400 and "episode" in response.json()["errors"]


# --- mark and end ---------------------------------------------------------------------------------


def test_the_executor_marks_steps_with_if_match_and_ends_the_run(client_for, plan, run, devops):
    client = client_for(devops)
    first, *rest = steps(run)

    missing = send(client, "PATCH", step_url(first), {"status": "done"})
    assert missing.status_code == 428

    done = send(client, "PATCH", step_url(first), {"status": "done"}, **{"If-Match": '"1"'})
    assert done.status_code == 200, done.content
    assert (done.json()["status"], done.json()["version"], done["ETag"]) == ("done", 2, '"2"')
    assert done.json()["done_by"]["id"] == devops.pk

    stale = send(client, "PATCH", step_url(first), {"status": "done"}, **{"If-Match": '"1"'})
    assert stale.status_code == 412

    no_reason = send(
        client, "PATCH", step_url(rest[0]), {"status": "skipped"}, **{"If-Match": '"1"'}
    )
    assert no_reason.status_code == 400 and "note" in no_reason.json()["errors"]

    early = send(client, "POST", runs_url(plan, f"/{run.pk}/end"))
    assert early.status_code == 409 and "Not done yet" in early.json()["detail"]

    for step in rest:
        body = {"status": "skipped", "note": "Not needed."}
        if step.kind == RollbackStepRun.Kind.VERIFICATION:
            body = {"status": "failed", "note": "Still slow."}
        assert send(client, "PATCH", step_url(step), body, **{"If-Match": '"1"'}).status_code == 200

    ended = send(client, "POST", runs_url(plan, f"/{run.pk}/end"))
    assert ended.status_code == 200, ended.content
    assert ended.json()["is_open"] is False and ended.json()["ended_by"]["id"] == devops.pk
    closed = send(client, "PATCH", step_url(first), {"status": "done"}, **{"If-Match": '"2"'})
    assert closed.status_code == 409


@pytest.mark.parametrize("person", ["po", "sm", "developer", "stakeholder"])
def test_only_the_executor_or_devops_works_the_checklist(request, client_for, plan, run, person):
    client = client_for(request.getfixturevalue(person))
    step = steps(run)[0]
    response = send(client, "PATCH", step_url(step), {"status": "done"}, **{"If-Match": '"1"'})
    assert response.status_code == 403
    assert "work the rollback checklist" in response.json()["detail"]
    assert send(client, "POST", runs_url(plan, f"/{run.pk}/end")).status_code == 403
    assert RollbackStepRun.objects.get(pk=step.pk).status == Status.PENDING


def test_the_executors_token_needs_the_write_scope(plan, run, devops):
    step = steps(run)[0]
    read_only = bearer(token_of(devops, ["read"]))
    assert read_only.get(runs_url(plan)).status_code == 200
    refused = send(read_only, "PATCH", step_url(step), {"status": "done"}, **{"If-Match": '"1"'})
    assert refused.status_code == 403

    writer = bearer(token_of(devops, ["read", "write"]))
    done = send(writer, "PATCH", step_url(step), {"status": "done"}, **{"If-Match": '"1"'})
    assert done.status_code == 200, done.content


def test_a_step_of_another_run_is_not_found(client_for, plan, run, devops, team, po):
    other = running_plan(team=team, owner=po, start_date=DAY, rollback_executor=devops)
    other_run = rollback_start(plan=other, user=devops, episode=fire(other))
    foreign = steps(other_run)[0]
    url = f"/api/v1/plans/{plan.pk}/rollback/steps/{foreign.pk}"
    response = send(client_for(devops), "PATCH", url, {"status": "done"}, **{"If-Match": '"1"'})
    assert response.status_code == 404
