"""The feedback triage page and the team's feedback API: filters, tags, noise, one step to a
backlog item (linked both ways), masked contacts by role, the link's management, who may do
what, and the page's query count."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Team, User
from backlog.change_control import change_control_log
from backlog.models import BacklogItem, Feedback, FeedbackToken
from pilots.models import PilotPlan, PlanGuest
from tests.factories import PilotPlanFactory

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def plan(team: Team, po: User) -> PilotPlan:
    plan = PilotPlanFactory(team=team, owner=po, title="Saved cards")
    PilotPlan.objects.filter(pk=plan.pk).update(status=PilotPlan.Status.RUNNING)
    plan.refresh_from_db()
    return plan


def _feedback(plan: PilotPlan, n: int = 1, **values: object) -> list[Feedback]:
    start = timezone.now() - dt.timedelta(hours=n)
    defaults = {"csat": 3, "comment": "Card form is slow", "contact": "jo@example.com"}
    return [
        Feedback.objects.create(
            plan=plan, created_at=start + dt.timedelta(minutes=i), **(defaults | values)
        )
        for i in range(n)
    ]


def _url(plan: PilotPlan, rest: str = "") -> str:
    return f"/plans/{plan.pk}/feedback{rest}"


def _patch(client, plan: PilotPlan, f: Feedback, body: dict, if_match: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"If-Match": if_match} if if_match else {}
    return client.patch(
        f"/api/v1/plans/{plan.pk}/feedback/{f.pk}",
        json.dumps(body),
        content_type="application/json",
        headers=headers,
    )


# --- the page ---------------------------------------------------------------------------------


def test_empty_state_and_no_link_yet(client_for, plan: PilotPlan, po: User) -> None:  # type: ignore[no-untyped-def]
    page = client_for(po).get(_url(plan)).content.decode()
    assert "No feedback yet." in page and 'data-testid="feedback-link-none"' in page
    assert 'data-testid="feedback-link-issue"' in page


def test_newest_first_paginated_with_constant_queries(
    client_for, plan: PilotPlan, po: User
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(po)
    _feedback(plan, 2)
    client.get(_url(plan))
    with CaptureQueriesContext(connection) as few:
        assert client.get(_url(plan)).status_code == 200
    many = _feedback(plan, 60, comment="Later")
    item = BacklogItem.objects.create(
        team=plan.team, number=1, reference="IM-1", title="x", position=1, kind="improvement"
    )
    Feedback.objects.filter(pk__in=[f.pk for f in many[-10:]]).update(backlog_item=item)
    with CaptureQueriesContext(connection) as lots:
        response = client.get(_url(plan))
    # Session, user, plan, role, link, count, the page's rows (with their items).
    assert len(few) == 7, [q["sql"] for q in few]
    assert len(lots) == len(few), [q["sql"] for q in lots]
    page = response.content.decode()
    assert page.count('data-testid="feedback-row"') == 25
    assert "Page 1 of 3" in page
    assert page.index(f'id="feedback-{many[-1].pk}"') < page.index(f'id="feedback-{many[-2].pk}"')
    assert (
        client.get(_url(plan) + "?page=3").content.decode().count('data-testid="feedback-row"')
        == 12
    )


def test_filters(client_for, plan: PilotPlan, po: User) -> None:  # type: ignore[no-untyped-def]
    noisy, tagged, scored = _feedback(plan, 3)
    Feedback.objects.filter(pk=noisy.pk).update(noise=True)
    Feedback.objects.filter(pk=tagged.pk).update(tags=["checkout"])
    Feedback.objects.filter(pk=scored.pk).update(comment="")
    client = client_for(po)

    def ids(query: str) -> set[int]:
        body = client.get(f"/api/v1/plans/{plan.pk}/feedback?{query}").json()
        return {row["id"] for row in body["results"]}

    assert ids("noise=yes") == {noisy.pk}
    assert ids("noise=no") == {tagged.pk, scored.pk}
    assert ids("tagged=yes") == {tagged.pk}
    assert ids("tag=Checkout") == {tagged.pk}
    assert ids("comment=no") == {scored.pk}
    assert ids("item=yes") == set()
    bad = client.get(f"/api/v1/plans/{plan.pk}/feedback?noise=maybe")
    assert bad.status_code == 400 and "noise" in bad.json()["errors"]
    page = client.get(_url(plan) + "?noise=maybe").content.decode()
    assert "Use “yes” or “no”" in page
    noise_only = client.get(_url(plan) + "?noise=yes").content.decode()
    assert noise_only.count('data-testid="feedback-row"') == 1


def test_tag_and_noise_with_and_without_htmx(client_for, plan: PilotPlan, developer: User) -> None:  # type: ignore[no-untyped-def]
    (f,) = _feedback(plan)
    client = client_for(developer)
    plain = client.post(_url(plan, f"/{f.pk}/tags"), {"tags": "Checkout, speed ,checkout"})
    assert plain.status_code == 302 and plain["Location"] == _url(plan)
    f.refresh_from_db()
    assert f.tags == ["checkout", "speed"] and f.version == 2
    swapped = client.post(_url(plan, f"/{f.pk}/noise"), {"noise": "1"}, **HX)
    assert swapped.status_code == 200
    assert swapped.content.decode().lstrip().startswith(f'<li id="feedback-{f.pk}"')
    assert 'data-testid="feedback-noise"' in swapped.content.decode()
    f.refresh_from_db()
    assert f.noise is True
    too_long = client.post(_url(plan, f"/{f.pk}/tags"), {"tags": "x" * 31}, **HX)
    assert too_long.status_code == 422
    f.refresh_from_db()
    assert f.tags == ["checkout", "speed"]


def test_turn_into_a_backlog_item_in_one_step_linked_both_ways(
    client_for, plan: PilotPlan, po: User
) -> None:  # type: ignore[no-untyped-def]
    (f,) = _feedback(plan, comment="Saved card not offered on mobile\nTried twice.", nps=4)
    client = client_for(po)
    response = client.post(_url(plan, f"/{f.pk}/item"))
    assert response.status_code == 302
    item = BacklogItem.objects.get()
    assert item.origin == BacklogItem.Origin.FEEDBACK and item.plan_id == plan.pk
    assert item.title == "Saved card not offered on mobile"
    assert "Tried twice." in item.description and "CSAT 3/5, NPS 4/10" in item.description
    assert "jo@example.com" not in item.description  # personal data stays on the feedback
    f.refresh_from_db()
    assert f.backlog_item_id == item.pk
    page = client.get(_url(plan)).content.decode()
    assert f">{item.reference}</a>" in page and 'data-testid="feedback-to-item"' not in page
    edit = client.get(f"/teams/{plan.team_id}/backlog/{item.pk}").content.decode()
    assert 'data-testid="item-feedback"' in edit and "Tried twice." in edit
    again = client.post(f"/api/v1/plans/{plan.pk}/feedback/{f.pk}/backlog-item", {})
    assert again.status_code == 409
    assert BacklogItem.objects.count() == 1
    # The plan's change-control log lists it: who, from which feedback, the comment.
    (entry,) = change_control_log(plan_id=plan.pk)
    assert (entry.item_id, entry.actor_id, entry.source, entry.source_id) == (
        item.pk,
        po.pk,
        "feedback",
        f.pk,
    )
    assert entry.source_words.startswith("Saved card not offered on mobile")
    log = client.get(reverse("backlog:change_control", args=[plan.pk])).content.decode()
    assert item.reference in log and "Saved card not offered on mobile" in log


def test_turn_into_an_item_over_the_api(client_for, plan: PilotPlan, sm: User) -> None:  # type: ignore[no-untyped-def]
    (f,) = _feedback(plan, comment="", csat=1)
    response = client_for(sm).post(
        f"/api/v1/plans/{plan.pk}/feedback/{f.pk}/backlog-item",
        {"type": "defect"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["title"] == "Feedback: CSAT 1/5" and body["type"] == "defect"
    assert body["origin"] == "feedback" and body["plan"] == plan.pk
    listed = client_for(sm).get(f"/api/v1/plans/{plan.pk}/feedback").json()["results"][0]
    assert listed["backlog_item"] == body["id"]
    assert listed["backlog_item_reference"] == body["reference"]


# --- masking --------------------------------------------------------------------------------------


def test_contacts_are_masked_for_stakeholders_and_guests_see_nothing(
    client_for, plan: PilotPlan, po: User, stakeholder: User, outsider: User
) -> None:  # type: ignore[no-untyped-def]
    _feedback(plan)
    _feedback(plan, contact="+49 170 1234567")
    po_page = client_for(po).get(_url(plan)).content.decode()
    assert "jo@example.com" in po_page and "+49 170 1234567" in po_page
    reader = client_for(stakeholder).get(_url(plan)).content.decode()
    assert "jo@example.com" not in reader and "j***@example.com" in reader
    assert "+49 170" not in reader and "+***" in reader
    api = client_for(stakeholder).get(f"/api/v1/plans/{plan.pk}/feedback").json()["results"]
    assert {row["contact"] for row in api} == {"j***@example.com", "+***"}
    po_api = client_for(po).get(f"/api/v1/plans/{plan.pk}/feedback").json()["results"]
    assert {row["contact"] for row in po_api} == {"jo@example.com", "+49 170 1234567"}
    # An invited stakeholder of another team reads the plan, not its feedback.
    PlanGuest.objects.create(plan=plan, user=outsider, invited_by=po)
    assert client_for(outsider).get(_url(plan)).status_code == 404
    assert client_for(outsider).get(f"/api/v1/plans/{plan.pk}/feedback").status_code == 404


# --- who may do what ------------------------------------------------------------------------------


def test_negative_permissions(
    client_for, client, plan: PilotPlan, stakeholder: User, developer: User, outsider: User
) -> None:  # type: ignore[no-untyped-def]
    (f,) = _feedback(plan)
    reader = client_for(stakeholder)
    assert reader.get(_url(plan)).status_code == 200
    writes = [
        (f"/{f.pk}/tags", {"tags": "x"}),
        (f"/{f.pk}/noise", {"noise": "1"}),
        (f"/{f.pk}/item", {}),
        ("/link/issue", {}),
        ("/link/revoke", {}),
    ]
    for rest, data in writes:
        assert reader.post(_url(plan, rest), data).status_code == 403, rest
    assert _patch(reader, plan, f, {"noise": True}, '"1"').status_code == 403
    assert (
        reader.post(f"/api/v1/plans/{plan.pk}/feedback/{f.pk}/backlog-item", {}).status_code == 403
    )
    dev = client_for(developer)
    assert dev.get(_url(plan, "/link/issue")).status_code == 403
    assert dev.post(_url(plan, "/link/revoke")).status_code == 403
    other = client_for(outsider)
    assert other.get(_url(plan)).status_code == 404
    assert other.post(_url(plan, f"/{f.pk}/tags"), {"tags": "x"}).status_code == 404
    assert other.get(f"/api/v1/plans/{plan.pk}/feedback/{f.pk}").status_code == 404
    anonymous = client.get(_url(plan))
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    assert client.get(f"/api/v1/plans/{plan.pk}/feedback").status_code == 401
    f.refresh_from_db()
    assert (f.tags, f.noise, f.backlog_item_id) == ([], False, None)
    assert not FeedbackToken.objects.exists()


def test_patch_needs_if_match_and_refuses_a_stale_version(
    client_for, plan: PilotPlan, po: User
) -> None:  # type: ignore[no-untyped-def]
    (f,) = _feedback(plan)
    client = client_for(po)
    assert _patch(client, plan, f, {"noise": True}).status_code == 428
    ok = _patch(client, plan, f, {"tags": ["Speed"], "noise": True}, '"1"')
    assert ok.status_code == 200 and ok["ETag"] == '"2"'
    assert ok.json()["tags"] == ["speed"] and ok.json()["noise"] is True
    stale = _patch(client, plan, f, {"noise": False}, '"1"')
    assert stale.status_code == 412
    too_many = _patch(client, plan, f, {"tags": [f"t{i}" for i in range(11)]}, '"2"')
    assert too_many.status_code == 400 and "tags" in too_many.json()["errors"]
    f.refresh_from_db()
    assert (f.noise, f.version) == (True, 2)


# --- the link -------------------------------------------------------------------------------------


def test_create_regenerate_and_revoke_the_link(
    client_for, client, plan: PilotPlan, sm: User
) -> None:  # type: ignore[no-untyped-def]
    manager = client_for(sm)
    confirm = manager.get(_url(plan, "/link/issue"))
    assert confirm.status_code == 200 and "Create the link" in confirm.content.decode()
    assert manager.post(_url(plan, "/link/issue")).status_code == 302
    first = FeedbackToken.objects.get()
    page = manager.get(_url(plan)).content.decode()
    assert f"/f/{first.token}" in page
    assert client.get(f"/f/{first.token}").status_code == 200

    assert "Regenerate the link" in manager.get(_url(plan, "/link/issue")).content.decode()
    manager.post(_url(plan, "/link/issue"))
    second = FeedbackToken.objects.get(revoked_at__isnull=True)
    assert second.token != first.token
    assert client.get(f"/f/{first.token}").status_code == 410
    assert client.get(f"/f/{second.token}").status_code == 200

    assert "Revoke the feedback link?" in manager.get(_url(plan, "/link/revoke")).content.decode()
    manager.post(_url(plan, "/link/revoke"))
    assert client.get(f"/f/{second.token}").status_code == 410
    assert not FeedbackToken.objects.filter(revoked_at__isnull=True).exists()
    assert 'data-testid="feedback-link-none"' in manager.get(_url(plan)).content.decode()
