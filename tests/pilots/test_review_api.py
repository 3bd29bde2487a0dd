"""The review, sign-off, lifecycle and history API: happy paths, refusals, access, query counts."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.test import Client

from pilots import services
from pilots.models import EntryCriterion, PilotPlan, PlanTransition, Review, SignOff
from pilots.services.lifecycle import plan_transition
from pilots.services.review import signoff_create
from tests.factories import OVERRIDE, checklist_answered, section_edit

pytestmark = pytest.mark.django_db

PLANS = "/api/v1/plans"


@pytest.fixture
def plan(team, po, sm, developer, devops, stakeholder):
    plan = services.plan_create_from_template(team=team, author=po, today=dt.date(2026, 11, 24))
    checklist_answered(plan)
    return plan


@pytest.fixture
def in_review(plan, po):
    plan_transition(plan=plan, action="submit", user=po, **OVERRIDE)
    plan.refresh_from_db()
    return plan


def send(client: Client, method: str, url: str, data: Any = None, *, if_match: Any = None):  # type: ignore[no-untyped-def]
    headers = {}
    if if_match is not None:
        headers["If-Match"] = f'"{if_match}"' if isinstance(if_match, int) else if_match
    body = json.dumps(data) if data is not None else ""
    return client.generic(method, url, body, content_type="application/json", headers=headers)


def _meet_entry_criteria(plan, user):
    for criterion in EntryCriterion.objects.filter(plan=plan):
        services.row_update(
            plan=plan,
            kind=services.row_kind("entry-criteria"),
            row_id=criterion.pk,
            user=user,
            expected_version=services.section_versions(plan=plan)["entry_criteria"],
            values={"status": "met", "evidence_url": "https://ci.example.com/1"},
        )


# --- reviews -------------------------------------------------------------------------------------


def test_reviews_lists_the_three_reviews_with_active_and_voided_sign_offs(
    in_review, po, sm, client_for
):
    signoff_create(plan=in_review, kind="readiness", user=sm)
    # Voids the readiness sign-off: monitoring is covered by it.
    section_edit(in_review, "monitoring", po, communication_cadence="Daily at 10:00")
    signoff_create(plan=in_review, kind="readiness", user=sm)

    response = client_for(sm).get(f"{PLANS}/{in_review.pk}/reviews")

    assert response.status_code == 200
    reviews = {r["kind"]: r for r in response.json()["reviews"]}
    assert list(reviews) == ["business", "readiness", "feasibility"]
    readiness = reviews["readiness"]
    assert readiness["sign_off"]["signed_by"]["email"] == sm.email
    assert len(readiness["voided_sign_offs"]) == 1
    assert "Monitoring" in readiness["voided_sign_offs"][0]["voided_reason"]
    assert reviews["business"]["sign_off"] is None
    assert reviews["business"]["version"] == 1
    assert [q["answer"] for q in reviews["business"]["checklist"]] == ["yes", "yes", "yes"]


def test_reviews_query_count_is_constant(
    in_review, po, sm, developer, client_for, django_assert_num_queries
):
    client = client_for(sm)
    client.get(f"{PLANS}/{in_review.pk}/reviews")  # warm up session / content types
    with django_assert_num_queries(6):
        # session, user, plan, role, reviews, sign-offs
        client.get(f"{PLANS}/{in_review.pk}/reviews")
    signoff_create(plan=in_review, kind="readiness", user=sm)
    signoff_create(plan=in_review, kind="feasibility", user=developer)
    with django_assert_num_queries(6):
        client.get(f"{PLANS}/{in_review.pk}/reviews")


def test_review_patch_saves_with_the_current_version(in_review, sm, client_for):
    url = f"{PLANS}/{in_review.pk}/reviews/readiness"
    client = client_for(sm)

    response = send(
        client, "PATCH", url, {"notes": "On-call is thin", "checklist": {"risks_owned": "yes"}},
        if_match=1,
    )  # fmt: skip

    assert response.status_code == 200, response.content
    assert response["ETag"] == '"2"'
    body = response.json()
    assert body["notes"] == "On-call is thin"
    assert body["version"] == 2
    review = Review.objects.get(plan=in_review, kind="readiness")
    assert review.checklist == {"risks_owned": "yes"}
    assert review.updated_by == sm


def test_review_patch_without_if_match_is_428_and_stale_is_412(in_review, sm, client_for):
    url = f"{PLANS}/{in_review.pk}/reviews/readiness"
    client = client_for(sm)
    assert send(client, "PATCH", url, {"notes": "x"}).status_code == 428
    assert send(client, "PATCH", url, {"notes": "first"}, if_match=1).status_code == 200

    stale = send(client, "PATCH", url, {"notes": "second"}, if_match=1)

    assert stale.status_code == 412
    assert Review.objects.get(plan=in_review, kind="readiness").notes == "first"


def test_review_patch_by_the_wrong_role_is_403_before_the_precondition(
    in_review, developer, stakeholder, client_for
):
    url = f"{PLANS}/{in_review.pk}/reviews/readiness"
    assert send(client_for(developer), "PATCH", url, {"notes": "x"}).status_code == 403
    assert (
        send(client_for(stakeholder), "PATCH", url, {"notes": "x"}, if_match=1).status_code == 403
    )
    assert not Review.objects.filter(plan=in_review, kind="readiness", notes="x").exists()


def test_review_patch_rejects_unknown_checklist_questions(in_review, sm, client_for):
    url = f"{PLANS}/{in_review.pk}/reviews/readiness"
    response = send(client_for(sm), "PATCH", url, {"checklist": {"nope": True}}, if_match=1)
    assert response.status_code == 400
    assert "checklist" in response.json()["errors"]


def test_unknown_review_kind_is_404(in_review, sm, client_for):
    url = f"{PLANS}/{in_review.pk}/reviews/legal"
    assert send(client_for(sm), "PATCH", url, {"notes": "x"}, if_match=1).status_code == 404


# --- sign-off ------------------------------------------------------------------------------------


def test_sign_off_records_the_plan_version(in_review, sm, client_for):
    response = send(client_for(sm), "POST", f"{PLANS}/{in_review.pk}/reviews/readiness/sign-off")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["signed_by"]["id"] == sm.pk
    assert body["plan_version"] == in_review.version
    assert SignOff.objects.filter(plan=in_review, kind="readiness", voided_at=None).count() == 1


def test_sign_off_refused_is_409_with_the_reasons(plan, sm, client_for):
    # Still a draft: not signable.
    response = send(client_for(sm), "POST", f"{PLANS}/{plan.pk}/reviews/readiness/sign-off")

    assert response.status_code == 409
    body = response.json()
    assert any("in review" in reason for reason in body["reasons"])
    assert not SignOff.objects.filter(plan=plan).exists()


def test_second_sign_off_of_the_same_review_is_409(in_review, developer, devops, client_for):
    url = f"{PLANS}/{in_review.pk}/reviews/feasibility/sign-off"
    assert send(client_for(developer), "POST", url).status_code == 201
    again = send(client_for(devops), "POST", url)
    assert again.status_code == 409
    assert again.json()["reasons"]


def test_sign_off_by_the_wrong_role_is_403(in_review, developer, stakeholder, client_for):
    url = f"{PLANS}/{in_review.pk}/reviews/business/sign-off"
    assert send(client_for(developer), "POST", url).status_code == 403
    assert send(client_for(stakeholder), "POST", url).status_code == 403
    assert not SignOff.objects.filter(plan=in_review).exists()


# --- transitions ---------------------------------------------------------------------------------


def test_transition_happy_path_submit(plan, po, client_for):
    response = send(
        client_for(po), "POST", f"{PLANS}/{plan.pk}/transitions",
        {"action": "submit", "reason": "ready for review", "override_gaps": True},
    )  # fmt: skip

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["from_status"], body["to_status"]) == ("draft", "in_review")
    assert body["reason"] == "ready for review"
    assert body["actor"]["id"] == po.pk
    assert PilotPlan.objects.get(pk=plan.pk).status == "in_review"


def test_refused_transition_is_409_saying_what_is_missing(in_review, po, client_for):
    response = send(
        client_for(po), "POST", f"{PLANS}/{in_review.pk}/transitions", {"action": "approve"}
    )

    assert response.status_code == 409
    reasons = response.json()["reasons"]
    assert "The business review is not signed off." in reasons
    assert "The readiness review is not signed off." in reasons
    assert PilotPlan.objects.get(pk=in_review.pk).status == "in_review"


def test_transition_in_the_wrong_state_is_409(plan, po, client_for):
    response = send(client_for(po), "POST", f"{PLANS}/{plan.pk}/transitions", {"action": "start"})
    assert response.status_code == 409
    assert "Approved" in response.json()["detail"]


def test_transition_by_the_wrong_role_is_403(plan, developer, stakeholder, client_for):
    url = f"{PLANS}/{plan.pk}/transitions"
    assert send(client_for(developer), "POST", url, {"action": "submit"}).status_code == 403
    assert send(client_for(stakeholder), "POST", url, {"action": "submit"}).status_code == 403
    assert PilotPlan.objects.get(pk=plan.pk).status == "draft"


def test_transition_with_an_unknown_action_is_400(plan, po, client_for):
    response = send(client_for(po), "POST", f"{PLANS}/{plan.pk}/transitions", {"action": "fly"})
    assert response.status_code == 400
    assert "action" in response.json()["errors"]


def test_transitions_list_shows_steps_taken_and_the_next_ones(
    in_review, po, sm, developer, client_for
):
    _meet_entry_criteria(in_review, sm)
    signoff_create(plan=in_review, kind="business", user=po)
    signoff_create(plan=in_review, kind="readiness", user=sm)
    signoff_create(plan=in_review, kind="feasibility", user=developer)
    client = client_for(po)
    before = client.get(f"{PLANS}/{in_review.pk}/transitions").json()
    assert before["status"] == "in_review"
    assert [t["to_status"] for t in before["transitions"]] == ["in_review"]
    approve = next(a for a in before["available"] if a["action"] == "approve")
    assert approve["blockers"] == []

    response = send(client, "POST", f"{PLANS}/{in_review.pk}/transitions", {"action": "approve"})

    assert response.status_code == 201, response.content
    after = client.get(f"{PLANS}/{in_review.pk}/transitions").json()
    assert after["status"] == "approved"
    assert [t["to_status"] for t in after["transitions"]] == ["in_review", "approved"]
    assert PlanTransition.objects.filter(plan=in_review).count() == 2


# --- history -------------------------------------------------------------------------------------


def test_history_lists_changes_with_diff_and_user(plan, po, client_for):
    client = client_for(po)
    # Through the API, so the request's user lands in the pghistory context.
    url = f"{PLANS}/{plan.pk}/sections/overview"
    version = services.section_versions(plan=plan)["overview"]
    assert (
        send(client, "PATCH", url, {"title": "Renamed pilot"}, if_match=version).status_code == 200
    )

    response = client.get(f"{PLANS}/{plan.pk}/history")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] >= 2
    # One test transaction: every event has the same time, so find the edit by what it changed.
    edit = next(
        e
        for e in body["results"]
        if e["model"] == "pilots.PilotPlanEvent"
        and e["label"] == "update"
        and "title" in (e["diff"] or {})
    )
    assert edit["diff"]["title"][1] == "Renamed pilot"
    assert edit["user"] == po.pk
    assert {"at", "label", "model", "diff", "user"} <= set(edit)


def test_history_query_count_is_constant_per_page(plan, po, client_for, django_assert_num_queries):
    client = client_for(po)
    url = f"{PLANS}/{plan.pk}/history"
    client.get(url)
    # session, user, plan, role, count, page
    with django_assert_num_queries(6):
        first = client.get(url)
    for n in range(30):
        section_edit(plan, "overview", po, summary=f"summary {n}")
    with django_assert_num_queries(6):
        second = client.get(url)
    assert second.json()["count"] > first.json()["count"]


# --- access --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("GET", "reviews", None),
        ("PATCH", "reviews/business", {"notes": "x"}),
        ("POST", "reviews/business/sign-off", None),
        ("GET", "transitions", None),
        ("POST", "transitions", {"action": "submit"}),
        ("GET", "history", None),
    ],
)
def test_outsiders_get_404_and_anonymous_401(plan, outsider, client_for, method, path, data):
    url = f"{PLANS}/{plan.pk}/{path}"
    assert send(client_for(outsider), method, url, data, if_match=1).status_code == 404
    assert send(Client(), method, url, data, if_match=1).status_code == 401
    assert PilotPlan.objects.get(pk=plan.pk).status == "draft"
    assert not SignOff.objects.filter(plan=plan).exists()


def test_stakeholders_read_reviews_transitions_and_history(plan, stakeholder, client_for):
    client = client_for(stakeholder)
    for path in ("reviews", "transitions", "history"):
        assert client.get(f"{PLANS}/{plan.pk}/{path}").status_code == 200
