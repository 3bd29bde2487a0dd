"""Invited stakeholders: a person outside the team whom the team's PO or SM invites to read one
plan. They read it (page, API, their plan list) and change nothing; every other plan of the team
stays invisible (404), as does the plan for anyone not invited."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from accounts.models import Notification
from pilots.models import PlanGuest, PlanInvitation
from pilots.services.guests import invitation_accept, plan_guest_invite, plan_guest_remove
from tests.factories import PilotPlanFactory, UserFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def url(name, *args):
    return reverse(f"pilots:{name}", args=args)


@pytest.fixture
def plan(team, po):
    return PilotPlanFactory(team=team, author=po, title="Invited plan")


@pytest.fixture
def other_plan(team, po):
    return PilotPlanFactory(team=team, author=po, title="Not for guests")


@pytest.fixture
def guest_user(db):
    return UserFactory(email="guest@example.test", full_name="Gina Guest")


@pytest.fixture
def guest(plan, po, guest_user):
    invitation = plan_guest_invite(plan=plan, email=guest_user.email, invited_by=po)
    invitation_accept(user=guest_user, invitation_id=invitation.pk)
    return guest_user


def api(client, method, path, data=None, if_match=None):
    headers = {"If-Match": f'"{if_match}"'} if if_match is not None else {}
    body = json.dumps(data) if data is not None else ""
    return client.generic(method, path, body, content_type="application/json", headers=headers)


# --- what a guest may see ------------------------------------------------------------------------


def test_guest_reads_the_plan_page_read_only(client_for, plan, guest):
    response = client_for(guest).get(url("plan_detail", plan.pk))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Invited plan" in html
    assert 'data-testid="read-only"' in html
    assert url("plan_guests", plan.pk) in html  # the card loads itself


def test_guest_reads_the_api_document_as_a_stakeholder(client_for, plan, guest):
    response = client_for(guest).get(f"/api/v1/plans/{plan.pk}")
    assert response.status_code == 200
    body = response.json()
    assert (body["my_role"], body["can_edit"]) == ("stakeholder", False)


def test_the_plan_appears_in_the_guests_lists_once(client_for, plan, other_plan, guest):
    client = client_for(guest)
    page = client.get(url("plan_list")).content.decode()
    assert "Invited plan" in page
    assert "Not for guests" not in page
    listed = client.get("/api/v1/plans").json()
    ids = [p["id"] for p in listed["results"]]
    assert ids == [plan.pk]
    assert "Invited plan" in client.get(reverse("decisions:portfolio")).content.decode()


def test_a_member_who_is_also_listed_once_sees_each_plan_once(client_for, plan, other_plan, po):
    ids = [p["id"] for p in client_for(po).get("/api/v1/plans").json()["results"]]
    assert sorted(ids) == sorted([plan.pk, other_plan.pk])


def test_guest_cannot_edit_a_section(client_for, plan, guest):
    client = client_for(guest)
    response = client.post(
        url("section", plan.pk, "overview"), {"version": 1, "title": "Hijacked", "summary": "x"}
    )
    assert response.status_code == 403
    assert client.get(url("section_edit", plan.pk, "overview"), **HTMX).status_code == 403
    plan.refresh_from_db()
    assert plan.title == "Invited plan"


def test_guest_cannot_patch_through_the_api(client_for, plan, guest):
    response = api(
        client_for(guest), "PATCH", f"/api/v1/plans/{plan.pk}/sections/overview",
        {"summary": "Hijacked"}, if_match=1,
    )  # fmt: skip
    assert response.status_code == 403
    plan.refresh_from_db()
    assert plan.summary != "Hijacked"


def test_guest_cannot_see_other_plans_of_the_team(client_for, other_plan, guest):
    client = client_for(guest)
    assert client.get(url("plan_detail", other_plan.pk)).status_code == 404
    assert client.get(f"/api/v1/plans/{other_plan.pk}").status_code == 404
    assert client.get(url("plan_guests", other_plan.pk), **HTMX).status_code == 404


def test_outsiders_still_get_404(client_for, plan, guest, outsider):
    client = client_for(outsider)
    assert client.get(url("plan_detail", plan.pk)).status_code == 404
    assert client.get(f"/api/v1/plans/{plan.pk}").status_code == 404
    assert client.get(url("plan_guests", plan.pk), **HTMX).status_code == 404


def test_removed_guest_no_longer_sees_the_plan(client_for, plan, po, guest):
    plan_guest_remove(plan=plan, guest_id=PlanGuest.objects.get(user=guest).pk, by=po)
    assert client_for(guest).get(url("plan_detail", plan.pk)).status_code == 404


def test_guest_sees_a_note_not_the_other_guests(client_for, plan, po, guest):
    other = UserFactory(email="second@example.test")
    plan_guest_invite(plan=plan, email=other.email, invited_by=po)
    html = client_for(guest).get(url("plan_guests", plan.pk), **HTMX).content.decode()
    assert 'data-testid="guest-note"' in html
    assert "second@example.test" not in html
    assert 'data-testid="guest-form"' not in html


def test_guest_cannot_invite_or_remove(client_for, plan, guest):
    client = client_for(guest)
    other = UserFactory(email="friend@example.test")
    assert client.post(url("plan_guests", plan.pk), {"email": other.email}).status_code == 403
    guest_id = PlanGuest.objects.get(user=guest).pk
    assert client.post(url("plan_guest_remove", plan.pk, guest_id)).status_code == 403
    assert list(PlanGuest.objects.values_list("user__email", flat=True)) == [guest.email]


# --- inviting and removing -----------------------------------------------------------------------


@pytest.mark.parametrize("keeper", ["po", "sm"])
def test_po_and_sm_invite_with_htmx(request, client_for, plan, guest_user, keeper):
    user = request.getfixturevalue(keeper)
    response = client_for(user).post(
        url("plan_guests", plan.pk), {"email": "GUEST@example.test"}, **HTMX
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="invitation"' in html  # pending until the person accepts
    assert "guest@example.test" in html
    assert response["HX-Trigger"]
    invitation = PlanInvitation.objects.get(plan=plan)
    assert (invitation.email, invitation.invited_by) == ("guest@example.test", user)
    assert not PlanGuest.objects.exists()


def test_invite_without_javascript_redirects_back(client_for, plan, po, guest_user):
    response = client_for(po).post(url("plan_guests", plan.pk), {"email": guest_user.email})
    assert response.status_code == 302
    assert response["Location"] == url("plan_guests", plan.pk)
    page = client_for(po).get(url("plan_guests", plan.pk))
    assert page.status_code == 200
    assert "guest@example.test" in page.content.decode()


def test_invite_sends_no_notification(plan, po, guest_user):
    plan_guest_invite(plan=plan, email=guest_user.email, invited_by=po)
    assert not Notification.objects.filter(user=guest_user).exists()


@pytest.mark.parametrize("role", ["developer", "devops", "stakeholder"])
def test_other_members_may_not_invite_or_remove(request, client_for, plan, po, guest, role):
    user = request.getfixturevalue(role)
    client = client_for(user)
    html = client.get(url("plan_guests", plan.pk), **HTMX).content.decode()
    assert 'data-testid="guest-form"' not in html
    assert "Remove" not in html
    other = UserFactory(email="friend@example.test")
    assert (
        client.post(url("plan_guests", plan.pk), {"email": other.email}, **HTMX).status_code == 403
    )
    guest_id = PlanGuest.objects.get(user=guest).pk
    assert client.post(url("plan_guest_remove", plan.pk, guest_id), **HTMX).status_code == 403
    assert PlanGuest.objects.filter(plan=plan).count() == 1
    with pytest.raises(PermissionDenied):
        plan_guest_invite(plan=plan, email=other.email, invited_by=user)


def test_outsider_cannot_invite(client_for, plan, outsider, guest_user):
    response = client_for(outsider).post(url("plan_guests", plan.pk), {"email": guest_user.email})
    assert response.status_code == 404
    assert not PlanGuest.objects.exists()


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("dev@example.test", "already a member"),
        ("guest@example.test", "already invited"),
        ("not-an-email", "valid email"),
    ],
)
def test_invalid_invitations_answer_422_and_save_nothing(
    client_for, plan, po, developer, guest, email, message
):
    response = client_for(po).post(url("plan_guests", plan.pk), {"email": email}, **HTMX)
    assert response.status_code == 422
    assert message in response.content.decode()
    assert PlanGuest.objects.count() == 1


def test_invalid_invitation_without_javascript_renders_the_page_with_422(client_for, plan, po):
    response = client_for(po).post(url("plan_guests", plan.pk), {"email": "not-an-email"})
    assert response.status_code == 422
    assert "<html" in response.content.decode().lower()


def test_service_errors_name_the_email_field(plan, po, developer, guest):
    for email in (developer.email, guest.email):
        with pytest.raises(ValidationError) as exc:
            plan_guest_invite(plan=plan, email=email, invited_by=po)
        assert "email" in exc.value.message_dict


def test_remove_with_htmx_and_without(client_for, plan, po, sm, guest):
    invitation = PlanGuest.objects.get(user=guest)
    response = client_for(sm).post(url("plan_guest_remove", plan.pk, invitation.pk), **HTMX)
    assert response.status_code == 200
    assert 'data-testid="guests-empty"' in response.content.decode()
    assert not PlanGuest.objects.exists()

    again = invitation_accept(
        user=guest,
        invitation_id=plan_guest_invite(plan=plan, email=guest.email, invited_by=po).pk,
    )
    response = client_for(po).post(url("plan_guest_remove", plan.pk, again.pk))
    assert response.status_code == 302
    assert not PlanGuest.objects.exists()


def test_remove_an_invitation_of_another_plan_is_404(client_for, plan, other_plan, po, guest):
    invitation = PlanGuest.objects.get(user=guest)
    response = client_for(po).post(url("plan_guest_remove", other_plan.pk, invitation.pk))
    assert response.status_code == 404
    assert PlanGuest.objects.count() == 1


def test_anonymous_is_sent_to_log_in(client, plan):
    response = client.get(url("plan_guests", plan.pk), **HTMX)
    assert response.status_code == 302
    assert "login" in response["Location"]


# --- query counts ------------------------------------------------------------------------------


def test_guests_card_query_count_is_constant(client_for, plan, po, django_assert_num_queries):
    client = client_for(po)
    plan_guest_invite(plan=plan, email=UserFactory().email, invited_by=po)
    client.get(url("plan_guests", plan.pk), **HTMX)  # warm the session
    # Session, user, the plan, the viewer's role, the guests and the pending invitations.
    with django_assert_num_queries(6) as few:
        client.get(url("plan_guests", plan.pk), **HTMX)
    for _ in range(5):
        plan_guest_invite(plan=plan, email=UserFactory().email, invited_by=po)
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(url("plan_guests", plan.pk), **HTMX)
    assert response.content.decode().count('data-testid="invitation"') == 6


def test_guest_card_for_a_guest_query_count(client_for, plan, guest, django_assert_num_queries):
    client = client_for(guest)
    client.get(url("plan_guests", plan.pk), **HTMX)  # warm the session
    # Session, user, the plan, the viewer's (missing) membership, the invitation.
    with django_assert_num_queries(5):
        response = client.get(url("plan_guests", plan.pk), **HTMX)
    assert response.status_code == 200
