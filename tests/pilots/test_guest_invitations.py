"""Guest invitations (finding 6 of issue #10): the answer does not tell whether an e-mail address
has an account (nor whose it is), and no plan enters anyone's list until they accept."""

from __future__ import annotations

import re

import pytest
from django.http import Http404
from django.urls import reverse

from pilots.models import PlanGuest, PlanInvitation
from pilots.services.guests import invitation_accept, plan_guest_invite
from tests.factories import PilotPlanFactory, UserFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
KNOWN = "gina@example.test"
UNKNOWN = "nobody-here@example.test"


@pytest.fixture
def plan(team, po):
    return PilotPlanFactory(team=team, author=po, title="Invited plan")


@pytest.fixture
def gina(db):
    return UserFactory(email=KNOWN, full_name="Gina Guest")


def normalised(html: str, email: str) -> str:
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "CSRF", html)
    html = re.sub(r'"X-CSRFToken": "[^"]+"', "CSRF", html)
    html = re.sub(r"/invitations/\d+/", "/invitations/ID/", html)  # the row's own id
    return html.replace(email, "EMAIL")


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain"])
def test_the_answer_is_the_same_for_known_and_unknown_addresses(client_for, plan, po, gina, htmx):
    client = client_for(po)
    headers = HTMX if htmx else {}
    answers = {}
    for email in (KNOWN, UNKNOWN):
        response = client.post(
            reverse("pilots:plan_guests", args=[plan.pk]), {"email": email}, **headers, follow=True
        )
        answers[email] = (response.status_code, normalised(response.content.decode(), email))
        PlanInvitation.objects.all().delete()

    assert answers[KNOWN] == answers[UNKNOWN]
    assert answers[KNOWN][0] == 200
    assert "Gina" not in answers[KNOWN][1]


def test_no_plan_enters_a_list_without_consent(client_for, plan, po, gina):
    client_for(po).post(reverse("pilots:plan_guests", args=[plan.pk]), {"email": KNOWN}, **HTMX)
    invitee = client_for(gina)

    assert not PlanGuest.objects.exists()
    assert invitee.get(reverse("pilots:plan_detail", args=[plan.pk])).status_code == 404
    assert plan.title not in invitee.get(reverse("pilots:plan_list")).content.decode()

    listed = invitee.get(reverse("pilots:invitation_list")).content.decode()
    assert plan.title in listed
    invitation = PlanInvitation.objects.get()
    response = invitee.post(reverse("pilots:invitation_accept", args=[invitation.pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse("pilots:plan_detail", args=[plan.pk])
    assert invitee.get(reverse("pilots:plan_detail", args=[plan.pk])).status_code == 200
    assert not PlanInvitation.objects.exists()


def test_declining_leaves_nothing(client_for, plan, po, gina):
    invitation = plan_guest_invite(plan=plan, email=KNOWN, invited_by=po)

    client_for(gina).post(reverse("pilots:invitation_decline", args=[invitation.pk]))

    assert not PlanInvitation.objects.exists() and not PlanGuest.objects.exists()


def test_an_address_without_an_account_finds_the_invitation_when_it_gets_one(plan, po):
    invitation = plan_guest_invite(plan=plan, email="Later@Example.test", invited_by=po)
    later = UserFactory(email="later@example.test")

    guest = invitation_accept(user=later, invitation_id=invitation.pk)

    assert (guest.plan, guest.user) == (plan, later)


def test_nobody_else_can_answer_an_invitation(client_for, plan, po, gina, outsider):
    invitation = plan_guest_invite(plan=plan, email=KNOWN, invited_by=po)

    assert outsider.email != KNOWN
    for name in ("pilots:invitation_accept", "pilots:invitation_decline"):
        response = client_for(outsider).post(reverse(name, args=[invitation.pk]))
        assert response.status_code == 404
    with pytest.raises(Http404):
        invitation_accept(user=outsider, invitation_id=invitation.pk)
    assert PlanInvitation.objects.count() == 1 and not PlanGuest.objects.exists()
    assert (
        plan.title
        not in client_for(outsider).get(reverse("pilots:invitation_list")).content.decode()
    )


def test_the_invitations_page_needs_a_log_in(client):
    response = client.get(reverse("pilots:invitation_list"))
    assert response.status_code == 302 and "login" in response["Location"]


def test_only_keepers_withdraw_a_pending_invitation(client_for, plan, po, developer):
    invitation = plan_guest_invite(plan=plan, email=UNKNOWN, invited_by=po)
    url = reverse("pilots:plan_invitation_withdraw", args=[plan.pk, invitation.pk])

    assert client_for(developer).post(url, **HTMX).status_code == 403
    assert client_for(po).post(url, **HTMX).status_code == 200
    assert not PlanInvitation.objects.exists()


def test_invitations_page_query_count(client_for, plan, po, gina, django_assert_num_queries):
    for n in range(3):
        other = PilotPlanFactory(team=plan.team, author=po, title=f"Plan {n}")
        plan_guest_invite(plan=other, email=KNOWN, invited_by=po)
    client = client_for(gina)
    client.get(reverse("pilots:invitation_list"))  # warm the session
    # Session, user, the invitations with their plans, teams and inviters.
    with django_assert_num_queries(3):
        response = client.get(reverse("pilots:invitation_list"))
    assert response.content.decode().count('data-testid="pending-invitation"') == 3


def test_the_notifications_page_links_to_the_invitations(client_for, gina):
    html = client_for(gina).get(reverse("accounts:notification_list")).content.decode()
    assert reverse("pilots:invitation_list") in html
