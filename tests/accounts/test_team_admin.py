"""Team administration: members and roles (with the last-Product-Owner rule), invitations by
e-mail and their lifecycle, who may create teams — through the services, the team page (plain
and HTMX) and the API."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import services, teams
from accounts.api_keys import api_key_create
from accounts.models import Membership, TeamInvitation
from accounts.tokens import personal_token_create
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

Role = Membership.Role
HTMX = {"HX-Request": "true"}


def _role(team, user) -> str | None:
    return Membership.objects.filter(team=team, user=user).values_list("role", flat=True).first()


def _invite(team, by, email="new@example.com", role=Role.DEVELOPER, **kw):
    return teams.invitation_create(team=team, by=by, email=email, role=role, **kw)


def _link_token(message) -> str:
    match = re.search(r"/invitations/([A-Za-z0-9_-]+)", message.body)
    assert match, message.body
    return match.group(1)


# --- services: members and the last-PO rule -----------------------------------------------------


def test_po_changes_a_role_and_sm_removes_a_member(team, po, sm, developer):
    teams.member_role_change(team=team, by=po, user_id=developer.pk, role=Role.DEVOPS)
    assert _role(team, developer) == Role.DEVOPS

    teams.member_remove(team=team, by=sm, user_id=developer.pk)
    assert _role(team, developer) is None


def test_the_last_product_owner_can_be_neither_demoted_nor_removed(team, po, sm):
    with pytest.raises(ValidationError) as demote:
        teams.member_role_change(team=team, by=sm, user_id=po.pk, role=Role.DEVELOPER)
    assert demote.value.message_dict == {"role": [teams.LAST_PO]}
    with pytest.raises(ValidationError) as remove:
        teams.member_remove(team=team, by=po, user_id=po.pk)
    assert remove.value.message_dict == {"user": [teams.LAST_PO]}
    assert _role(team, po) == Role.PRODUCT_OWNER


def test_with_a_second_product_owner_the_first_may_step_down(team, po, sm):
    teams.member_role_change(team=team, by=po, user_id=sm.pk, role=Role.PRODUCT_OWNER)
    teams.member_role_change(team=team, by=po, user_id=po.pk, role=Role.STAKEHOLDER)
    assert _role(team, po) == Role.STAKEHOLDER
    assert _role(team, sm) == Role.PRODUCT_OWNER


def test_only_po_and_sm_manage_members(team, po, developer, devops, stakeholder):
    for user in (developer, stakeholder):
        with pytest.raises(PermissionDenied, match="Product Owner or Scrum Master"):
            teams.member_role_change(team=team, by=user, user_id=devops.pk, role=Role.DEVELOPER)
        with pytest.raises(PermissionDenied):
            teams.member_remove(team=team, by=user, user_id=devops.pk)
        with pytest.raises(PermissionDenied):
            _invite(team, user)
    assert _role(team, devops) == Role.DEVOPS


def test_member_add_needs_an_account_and_refuses_members_and_bad_roles(team, po, developer):
    person = UserFactory(email="someone@example.com")
    added = teams.member_add(team=team, by=po, email="Someone@Example.com", role=Role.DEVELOPER)
    assert added.user == person and added.role == Role.DEVELOPER

    with pytest.raises(ValidationError) as unknown:
        teams.member_add(team=team, by=po, email="nobody@example.com", role=Role.DEVELOPER)
    assert "invitation" in unknown.value.message_dict["email"][0]
    with pytest.raises(ValidationError, match="already a member"):
        teams.member_add(team=team, by=po, user_id=developer.pk, role=Role.DEVOPS)
    with pytest.raises(ValidationError) as bad:
        teams.member_add(team=team, by=po, user_id=UserFactory().pk, role="boss")
    assert "role" in bad.value.message_dict


def test_unknown_members_are_404(team, po, outsider):
    with pytest.raises(Http404):
        teams.member_role_change(team=team, by=po, user_id=outsider.pk, role=Role.DEVELOPER)
    with pytest.raises(Http404):
        teams.member_remove(team=team, by=po, user_id=outsider.pk)


# --- services: the invitation lifecycle ----------------------------------------------------------


def test_an_invitation_is_emailed_after_commit_with_a_link_only_its_hash_is_stored(
    team, po, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invitation, token = _invite(team, po, email=" New@Example.com ", role=Role.DEVOPS)

    assert invitation.email == "new@example.com"
    assert invitation.token_sha256 == teams.token_digest(token)
    assert token not in invitation.token_sha256
    assert invitation.expires_at > timezone.now() + dt.timedelta(days=13)
    [message] = mail.outbox
    assert message.to == ["new@example.com"]
    assert "Checkout" in message.subject
    assert "DevOps lead" in message.body
    assert _link_token(message) == token


def test_no_mail_when_the_invitation_is_rolled_back(team, po, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _invite(team, po)
    assert len(callbacks) == 1  # sent only by the commit
    assert mail.outbox == []


def test_accepting_makes_an_existing_user_a_member_with_the_role(team, po):
    person = UserFactory(email="new@example.com")
    _invitation, token = _invite(team, po, role=Role.STAKEHOLDER)

    membership = teams.invitation_accept(token=token, user=person)

    assert membership.team == team and membership.role == Role.STAKEHOLDER
    invitation = TeamInvitation.objects.get()
    assert invitation.accepted_by == person and invitation.accepted_at is not None
    with pytest.raises(teams.InvitationUnusable, match="already been used"):
        teams.invitation_accept(token=token, user=person)


def test_expired_revoked_unknown_and_other_persons_invitations_are_refused(team, po):
    person = UserFactory(email="new@example.com")
    past = timezone.now() - dt.timedelta(days=30)
    _old, expired_token = _invite(team, po, now=past)
    with pytest.raises(teams.InvitationUnusable, match="expired"):
        teams.invitation_accept(token=expired_token, user=person)

    invitation, token = _invite(team, po)  # replaces the expired one
    assert TeamInvitation.objects.get(pk=_old.pk).revoked_at is not None
    with pytest.raises(teams.InvitationUnusable, match=r"sent to new@example\.com"):
        teams.invitation_accept(token=token, user=UserFactory(email="else@example.com"))
    teams.invitation_revoke(team=team, by=po, invitation_id=invitation.pk)
    with pytest.raises(teams.InvitationUnusable, match="withdrawn"):
        teams.invitation_accept(token=token, user=person)
    with pytest.raises(teams.InvitationUnusable, match="not valid"):
        teams.invitation_accept(token="nonsense", user=person)
    assert _role(team, person) is None


def test_one_open_invitation_per_address_and_none_for_members(team, po, developer):
    _invite(team, po)
    with pytest.raises(ValidationError, match="already has an open invitation"):
        _invite(team, po, email="NEW@example.com")
    with pytest.raises(ValidationError, match="already a member"):
        _invite(team, po, email=developer.email)
    with pytest.raises(ValidationError) as bad:
        _invite(team, po, email="not an address")
    assert "email" in bad.value.message_dict


def test_sign_up_from_the_link_creates_the_account_and_joins(team, po):
    _invitation, token = _invite(team, po, role=Role.SCRUM_MASTER)
    user, membership = teams.invitation_sign_up(
        token=token, full_name="Nora New", password="a long enough passphrase"
    )
    assert user.email == "new@example.com" and user.check_password("a long enough passphrase")
    assert membership.role == Role.SCRUM_MASTER


# --- who may create teams ------------------------------------------------------------------------


def test_team_creation_for_staff_only(settings, po, client_for):
    settings.TEAM_CREATION = "staff"
    with pytest.raises(PermissionDenied):
        services.team_create(creator=po, name="Payments")
    page = client_for(po).get("/teams/")
    assert "New team" not in page.content.decode()
    assert client_for(po).post("/teams/new", {"name": "X", "time_zone": "UTC"}).status_code == 403
    response = client_for(po).post("/api/v1/teams", {"name": "X"}, content_type="application/json")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert "administrators" in response.json()["detail"]

    staff = UserFactory(email="admin@example.com", is_staff=True)
    assert "New team" in client_for(staff).get("/teams/").content.decode()
    assert services.team_create(creator=staff, name="Payments").name == "Payments"


def test_team_creation_for_anyone_by_default(po, client_for):
    assert "New team" in client_for(po).get("/teams/").content.decode()


# --- the team page -------------------------------------------------------------------------------


def test_team_page_lists_members_read_only_for_others(
    team, po, sm, developer, client_for, django_assert_max_num_queries
):
    client = client_for(developer)
    with django_assert_max_num_queries(8):
        response = client.get(f"/teams/{team.pk}/")
    body = response.content.decode()
    assert response.status_code == 200
    assert body.count('data-testid="member-row"') == 3
    assert 'data-testid="team-read-only"' in body
    assert "invite-form" not in body and "member-remove" not in body


def test_team_page_for_a_manager_with_invitations(
    team, po, sm, developer, client_for, django_assert_max_num_queries
):
    for i in range(3):
        _invite(team, po, email=f"p{i}@example.com")
    MembershipFactory(team=team, role=Role.DEVOPS)
    client = client_for(sm)
    with django_assert_max_num_queries(9):
        response = client.get(f"/teams/{team.pk}/")
    body = response.content.decode()
    assert body.count('data-testid="invitation-row"') == 3
    assert 'data-testid="invite-form"' in body and 'data-testid="member-remove"' in body


def test_team_page_is_404_for_non_members(team, po, outsider, client_for):
    assert client_for(outsider).get(f"/teams/{team.pk}/").status_code == 404


@pytest.mark.parametrize("who", ["developer", "devops", "stakeholder"])
def test_team_page_writes_are_403_for_members_without_the_rule(request, team, po, client_for, who):
    client = client_for(request.getfixturevalue(who))
    urls = [
        reverse("accounts:team_member_role", args=[team.pk, po.pk]),
        reverse("accounts:team_member_remove", args=[team.pk, po.pk]),
        reverse("accounts:team_invitation_add", args=[team.pk]),
    ]
    for url in urls:
        assert client.post(url, {"role": "developer", "email": "x@example.com"}).status_code == 403
    assert _role(team, po) == Role.PRODUCT_OWNER


def test_role_change_over_htmx_swaps_the_card_and_says_last_po(
    team, po, developer, client_for, django_assert_max_num_queries
):
    client = client_for(po)
    url = reverse("accounts:team_member_role", args=[team.pk, developer.pk])
    with django_assert_max_num_queries(14):
        response = client.post(url, {"role": "devops"}, headers=HTMX)
    assert response.status_code == 200
    assert response["HX-Trigger"].startswith('{"teamMembersChanged"')
    assert 'id="members"' in response.content.decode()
    assert "<html" not in response.content.decode()
    assert _role(team, developer) == Role.DEVOPS

    last = client.post(
        reverse("accounts:team_member_role", args=[team.pk, po.pk]), {"role": "developer"},
        headers=HTMX,
    )  # fmt: skip
    assert last.status_code == 422
    assert teams.LAST_PO in last.content.decode()


def test_removing_asks_first_without_javascript(team, po, developer, client_for):
    client = client_for(po)
    url = reverse("accounts:team_member_remove", args=[team.pk, developer.pk])
    confirm = client.get(url)
    assert confirm.status_code == 200 and "confirm-remove" in confirm.content.decode()
    assert _role(team, developer) == Role.DEVELOPER
    done = client.post(url)
    assert done.status_code == 302 and done["Location"] == f"/teams/{team.pk}/"
    assert _role(team, developer) is None


def test_invite_form_emails_and_lists_then_withdraw(
    team, po, client_for, django_capture_on_commit_callbacks
):
    client = client_for(po)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("accounts:team_invitation_add", args=[team.pk]),
            {"email": "ada@example.com", "role": "developer"},
            headers=HTMX,
        )
    assert response.status_code == 200
    assert "Invitation e-mailed to ada@example.com" in response.content.decode()
    assert len(mail.outbox) == 1
    invitation = TeamInvitation.objects.get()

    bad = client.post(
        reverse("accounts:team_invitation_add", args=[team.pk]),
        {"email": "ada@example.com", "role": "developer"},
        headers=HTMX,
    )
    assert bad.status_code == 422 and "already has an open invitation" in bad.content.decode()

    withdrawn = client.post(
        reverse("accounts:team_invitation_revoke", args=[team.pk, invitation.pk]), headers=HTMX
    )
    assert withdrawn.status_code == 200
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None


# --- the invitee's page --------------------------------------------------------------------------


def test_invitee_with_an_account_signs_in_then_accepts(team, po, client_for):
    person = UserFactory(email="new@example.com")
    _invitation, token = _invite(team, po, role=Role.DEVOPS)
    url = f"/invitations/{token}"

    anonymous = Client().get(url)
    assert anonymous.status_code == 200
    assert f"/login/?next={url}" in anonymous.content.decode()

    client = client_for(person)
    assert "invitation-accept" in client.get(url).content.decode()
    accepted = client.post(url)
    assert accepted.status_code == 302 and accepted["Location"] == f"/teams/{team.pk}/"
    assert _role(team, person) == Role.DEVOPS
    used = client.get(url)
    assert used.status_code == 410 and "already been used" in used.content.decode()


def test_invitee_without_an_account_signs_up_from_the_link(team, po):
    _invitation, token = _invite(team, po)
    client = Client()
    weak = client.post(f"/invitations/{token}", {"full_name": "Nora", "password": "1"})
    assert weak.status_code == 422
    done = client.post(
        f"/invitations/{token}", {"full_name": "Nora", "password": "a long enough passphrase"}
    )
    assert done.status_code == 302 and done["Location"] == f"/teams/{team.pk}/"
    assert client.get(f"/teams/{team.pk}/").status_code == 200  # signed in


def test_wrong_person_and_unknown_links_are_explained(team, po, developer, client_for):
    _invitation, token = _invite(team, po)
    page = client_for(developer).get(f"/invitations/{token}")
    assert "invitation-wrong-person" in page.content.decode()
    assert client_for(developer).post(f"/invitations/{token}").status_code == 409
    assert Client().get("/invitations/not-a-token").status_code == 404


# --- API -----------------------------------------------------------------------------------------


def _api(client: Client, method: str, url: str, body: dict | None = None):
    import json

    return client.generic(
        method, url, json.dumps(body) if body is not None else "", content_type="application/json"
    )


def test_api_add_patch_delete_members(team, po, developer, client_for):
    client = client_for(po)
    person = UserFactory(email="person@example.com")
    base = f"/api/v1/teams/{team.pk}/members"

    added = _api(client, "POST", base, {"email": "person@example.com", "role": "stakeholder"})
    assert added.status_code == 201, added.content
    assert added.json()["user"]["id"] == person.pk and added.json()["role"] == "stakeholder"

    both = _api(client, "POST", base, {"email": "x@example.com", "user_id": 1, "role": "devops"})
    assert both.status_code == 400

    patched = _api(client, "PATCH", f"{base}/{person.pk}", {"role": "devops"})
    assert patched.status_code == 200 and patched.json()["role"] == "devops"

    last_po = _api(client, "PATCH", f"{base}/{po.pk}", {"role": "developer"})
    assert last_po.status_code == 400
    assert last_po.json()["errors"] == {"role": [teams.LAST_PO]}

    assert _api(client, "DELETE", f"{base}/{person.pk}").status_code == 204
    assert _api(client, "DELETE", f"{base}/{person.pk}").status_code == 404
    assert _role(team, person) is None


def test_api_invitations_list_create_revoke(
    team, po, client_for, django_capture_on_commit_callbacks
):
    client = client_for(po)
    base = f"/api/v1/teams/{team.pk}/invitations"
    with django_capture_on_commit_callbacks(execute=True):
        created = _api(client, "POST", base, {"email": "ada@example.com", "role": "developer"})
    assert created.status_code == 201
    body = created.json()
    assert body["state"] == "open" and body["invited_by"]["id"] == po.pk
    assert "token" not in body and len(mail.outbox) == 1

    listed = _api(client, "GET", base).json()
    assert [i["email"] for i in listed["results"]] == ["ada@example.com"]

    assert _api(client, "DELETE", f"{base}/{body['id']}").status_code == 204
    assert _api(client, "GET", base).json()["count"] == 0
    assert _api(client, "DELETE", f"{base}/{body['id']}").status_code == 404


@pytest.mark.parametrize("who", ["developer", "stakeholder"])
def test_api_member_management_is_403_for_other_roles(request, team, po, client_for, who):
    client = client_for(request.getfixturevalue(who))
    base = f"/api/v1/teams/{team.pk}"
    assert _api(client, "GET", f"{base}/members").status_code == 200  # reading is for everyone
    assert _api(client, "PATCH", f"{base}/members/{po.pk}", {"role": "devops"}).status_code == 403
    assert _api(client, "DELETE", f"{base}/members/{po.pk}").status_code == 403
    assert _api(client, "GET", f"{base}/invitations").status_code == 403
    post = _api(client, "POST", f"{base}/invitations", {"email": "a@example.com", "role": "devops"})
    assert post.status_code == 403


def test_api_member_management_is_404_for_outsiders(team, po, outsider, client_for):
    client = client_for(outsider)
    base = f"/api/v1/teams/{team.pk}"
    assert _api(client, "PATCH", f"{base}/members/{po.pk}", {"role": "devops"}).status_code == 404
    assert _api(client, "GET", f"{base}/invitations").status_code == 404


def test_team_api_keys_never_manage_members_tokens_need_write(team, po, sm):
    base = f"/api/v1/teams/{team.pk}"
    _key, plaintext = api_key_create(
        team=team, name="all", scopes=["read", "write", "ingest", "gate"], created_by=po
    )
    key = Client(headers={"Authorization": f"Bearer {plaintext}"})
    refused = _api(key, "PATCH", f"{base}/members/{sm.pk}", {"role": "devops"})
    assert refused.status_code == 403
    assert refused.json()["detail"] == "API keys may not change the team's members."
    assert _api(key, "GET", f"{base}/invitations").status_code == 403

    expires = timezone.now() + dt.timedelta(days=1)
    _t, read = personal_token_create(user=po, name="r", scopes=["read"], expires_at=expires)
    _t, write = personal_token_create(
        user=po, name="w", scopes=["read", "write"], expires_at=expires
    )
    reader = Client(headers={"Authorization": f"Bearer {read}"})
    writer = Client(headers={"Authorization": f"Bearer {write}"})
    assert _api(reader, "PATCH", f"{base}/members/{sm.pk}", {"role": "devops"}).status_code == 403
    assert _api(writer, "PATCH", f"{base}/members/{sm.pk}", {"role": "devops"}).status_code == 200
    assert _role(team, sm) == Role.DEVOPS


def test_other_teams_invitations_cannot_be_revoked(team, po, outsider, other_team):
    other, _ = _invite(other_team, outsider)
    with pytest.raises(Http404):
        teams.invitation_revoke(team=team, by=po, invitation_id=other.pk)
