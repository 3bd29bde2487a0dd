"""Team API keys and personal access tokens end to end: managed over the API and in the browser,
acting through the one permission table (tests/pilots/test_permission_matrix.py checks every
action), restricted to plans, expiring, rotated without downtime, and recording their last use."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.api_keys import api_key_create, api_key_revoke, api_key_rotate
from accounts.models import ApiKey, PersonalToken
from accounts.tokens import personal_token_create
from backlog.models import BacklogItem
from tests.factories import PilotPlanFactory

pytestmark = pytest.mark.django_db

ME = "/api/v1/me"


def keys_url(team_id: int) -> str:
    return f"/api/v1/teams/{team_id}/api-keys"


def bearer(secret: str, **extra: str) -> Client:
    return Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {secret}", **extra})


def in_a_day() -> dt.datetime:
    return timezone.now() + dt.timedelta(days=1)


def token_of(user, scopes=("read", "write")) -> str:  # type: ignore[no-untyped-def]
    return personal_token_create(user=user, name="script", scopes=scopes, expires_at=in_a_day())[1]


# --- team keys over the API ----------------------------------------------------------------------


def test_the_po_creates_a_key_over_the_api_and_sees_it_once(client_for, team, po):
    plan = PilotPlanFactory(team=team, owner=po)
    response = client_for(po).post(
        keys_url(team.pk),
        {"name": "CI", "scopes": ["gate", "read"], "plans": [plan.pk]},
        "application/json",
    )

    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    stored = ApiKey.objects.get()
    assert body["key"].startswith(f"pp_{stored.prefix}_")
    assert stored.key_sha256 == hashlib.sha256(body["key"].encode()).hexdigest()
    assert (body["scopes"], body["plans"], body["state"]) == (["gate", "read"], [plan.pk], "active")
    listed = client_for(po).get(keys_url(team.pk)).json()
    assert listed["count"] == 1 and "key" not in listed["results"][0]
    assert body["key"] not in str(listed)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "k", "scopes": ["admin"]}, "scopes"),
        ({"name": "k", "scopes": []}, "scopes"),
        ({"name": "", "scopes": ["read"]}, "name"),
        ({"name": "k", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "k", "scopes": ["read"], "plans": ["x"]}, "plans"),
    ],
)
def test_a_bad_key_request_names_the_field(client_for, team, po, payload, field):
    response = client_for(po).post(keys_url(team.pk), payload, "application/json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not ApiKey.objects.exists()


def test_a_key_cannot_be_restricted_to_another_teams_plan(
    client_for, team, po, other_team, outsider
):
    theirs = PilotPlanFactory(team=other_team, owner=outsider)
    response = client_for(po).post(
        keys_url(team.pk),
        {"name": "k", "scopes": ["read"], "plans": [theirs.pk]},
        "application/json",
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {"plans": [f"Not a plan of this team: {theirs.pk}."]}


def test_only_the_po_or_sm_manage_keys_over_the_api(client_for, team, po, sm, developer, outsider):
    key = api_key_create(team=team, name="k", scopes=["read"], created_by=po)[0]
    for user, status in ((sm, 200), (developer, 403), (outsider, 404)):
        assert client_for(user).get(keys_url(team.pk)).status_code == status
    assert Client().get(keys_url(team.pk)).status_code == 401
    assert client_for(developer).delete(f"{keys_url(team.pk)}/{key.pk}").status_code == 403
    assert client_for(outsider).delete(f"{keys_url(team.pk)}/{key.pk}").status_code == 404
    assert ApiKey.objects.get().revoked_at is None
    assert client_for(sm).delete(f"{keys_url(team.pk)}/{key.pk}").status_code == 204
    assert ApiKey.objects.get().revoked_at is not None


def test_a_key_cannot_manage_keys_but_the_pos_write_token_can(team, po):
    every_scope = api_key_create(team=team, name="k", scopes=ApiKey.Scope.values, created_by=po)[1]
    payload = {"name": "more", "scopes": ["read"]}
    response = bearer(every_scope).post(keys_url(team.pk), payload, "application/json")
    assert response.status_code == 403
    assert response.json()["detail"] == "API keys may not manage API keys."
    read_token = token_of(po, scopes=["read"])
    response = bearer(read_token).post(keys_url(team.pk), payload, "application/json")
    assert response.status_code == 403
    assert "lacks the write scope" in response.json()["detail"]
    # No session, no CSRF token: the token is the whole credential.
    assert (
        bearer(token_of(po)).post(keys_url(team.pk), payload, "application/json").status_code == 201
    )


# --- what a key reaches ------------------------------------------------------------------------


def test_a_key_is_a_machine_member_of_its_team_only(team, po, other_team, outsider):
    mine = PilotPlanFactory(team=team, owner=po, title="Mine")
    theirs = PilotPlanFactory(team=other_team, owner=outsider, title="Theirs")
    client = bearer(api_key_create(team=team, name="k", scopes=["read"], created_by=po)[1])

    me = client.get(ME).json()
    assert [(t["id"], t["my_role"]) for t in me["teams"]] == [(team.pk, "api_key")]
    assert [p["id"] for p in client.get("/api/v1/plans").json()["results"]] == [mine.pk]
    assert client.get(f"/api/v1/plans/{mine.pk}").status_code == 200
    assert client.get(f"/api/v1/plans/{theirs.pk}").status_code == 404
    assert client.get(f"/api/v1/teams/{other_team.pk}").status_code == 404


def test_neither_a_key_nor_a_read_token_creates_a_team(team, po):
    payload = {"name": "Shadow team"}
    every_scope = api_key_create(team=team, name="k", scopes=ApiKey.Scope.values, created_by=po)[1]
    response = bearer(every_scope).post("/api/v1/teams", payload, "application/json")
    assert response.json()["detail"] == "API keys may not create a team."
    response = bearer(token_of(po, scopes=["read"])).post(
        "/api/v1/teams", payload, "application/json"
    )
    assert response.status_code == 403
    assert (
        bearer(token_of(po)).post("/api/v1/teams", payload, "application/json").status_code == 201
    )


def test_a_plan_restricted_key_sees_only_its_plans(team, po):
    named = PilotPlanFactory(team=team, owner=po, title="Named")
    other = PilotPlanFactory(team=team, owner=po, title="Other")
    secret = api_key_create(
        team=team, name="k", scopes=["read"], plan_ids=[named.pk], created_by=po
    )[1]
    client = bearer(secret)
    assert [p["id"] for p in client.get("/api/v1/plans").json()["results"]] == [named.pk]
    assert client.get(f"/api/v1/plans/{named.pk}").status_code == 200
    assert client.get(f"/api/v1/plans/{other.pk}").status_code == 404


def test_a_write_key_writes_as_its_principal_and_a_read_key_is_refused(team, po):
    writer = api_key_create(team=team, name="Tracker sync", scopes=["read", "write"], created_by=po)
    reader = api_key_create(team=team, name="Dashboard", scopes=["read"], created_by=po)[1]
    url = f"/api/v1/teams/{team.pk}/backlog"

    refused = bearer(reader).post(url, {"title": "From a reader"}, "application/json")
    assert refused.status_code == 403
    assert (
        refused.json()["detail"]
        == "This API key may not change the backlog: it lacks the write scope."
    )
    response = bearer(writer[1]).post(url, {"title": "From the tracker"}, "application/json")
    assert response.status_code == 201, response.content
    item = BacklogItem.objects.get()
    assert item.created_by == writer[0].principal
    assert str(item.created_by) == "API key ‘Tracker sync’"


def test_a_key_records_when_and_from_where_it_was_used(team, po):
    secret = api_key_create(team=team, name="k", scopes=["read"], created_by=po)[1]
    bearer(secret).get(ME, REMOTE_ADDR="192.0.2.7")
    key = ApiKey.objects.get()
    assert key.last_used_at is not None
    assert key.last_used_address == "192.0.2.7"
    bearer(secret).get(ME, REMOTE_ADDR="192.0.2.8")  # within the minute, but from elsewhere
    assert ApiKey.objects.get().last_used_address == "192.0.2.8"


def test_an_expired_or_revoked_key_is_refused_with_its_reason(team, po):
    expiring, secret = api_key_create(
        team=team, name="k", scopes=["read"], created_by=po, expires_at=in_a_day()
    )
    assert bearer(secret).get(ME).status_code == 200
    ApiKey.objects.filter(pk=expiring.pk).update(expires_at=timezone.now())
    response = bearer(secret).get(ME)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]
    key, other = api_key_create(team=team, name="k2", scopes=["read"], created_by=po)
    api_key_revoke(key=key, user=po)
    assert bearer(other).get(ME).json()["detail"] == "This API key has been revoked."


def test_rotation_keeps_both_keys_working_until_the_grace_end(client_for, team, po):
    old, old_secret = api_key_create(team=team, name="CI", scopes=["gate"], created_by=po)
    response = client_for(po).post(
        f"{keys_url(team.pk)}/{old.pk}/rotate", {"grace_hours": 2}, "application/json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    new_secret = body["new"]["key"]
    assert body["new"]["rotated_from"] == old.pk and body["new"]["scopes"] == ["gate"]
    assert body["old"]["expires_at"] is not None

    # Both work during the grace period, as the same machine.
    assert bearer(old_secret).get(ME).json()["id"] == bearer(new_secret).get(ME).json()["id"]
    # After it, only the new one.
    ApiKey.objects.filter(pk=old.pk).update(expires_at=timezone.now())
    assert bearer(old_secret).get(ME).status_code == 401
    assert bearer(new_secret).get(ME).status_code == 200


def test_rotation_refuses_a_revoked_key_and_a_grace_too_long(team, po):
    key = api_key_create(team=team, name="k", scopes=["read"], created_by=po)[0]
    with pytest.raises(ValidationError) as too_long:
        api_key_rotate(key=key, user=po, grace=dt.timedelta(days=31))
    assert "grace_hours" in too_long.value.message_dict
    api_key_revoke(key=key, user=po)
    with pytest.raises(ValidationError) as revoked:
        api_key_rotate(key=key, user=po, grace=dt.timedelta(hours=1))
    assert "key" in revoked.value.message_dict


# --- personal access tokens over the API ---------------------------------------------------------


def test_a_person_creates_a_token_with_a_session_and_uses_it(client_for, po):
    response = client_for(po).post(
        "/api/v1/me/tokens",
        {"name": "release script", "scopes": ["read"], "expires_at": in_a_day().isoformat()},
        "application/json",
    )
    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "no-store"
    secret = response.json()["token"]
    assert secret.startswith("ppu_")
    assert bearer(secret).get(ME).json()["email"] == po.email
    listed = client_for(po).get("/api/v1/me/tokens").json()
    assert [t["name"] for t in listed["results"]] == ["release script"]
    assert secret not in str(listed)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "s", "scopes": ["admin"]}, "scopes"),
        ({"name": "s", "scopes": ["read"]}, "expires_at"),
        ({"name": "s", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "s", "scopes": ["read"], "expires_at": "2099-01-01T00:00:00Z"}, "expires_at"),
    ],
)
def test_a_bad_token_request_names_the_field(client_for, po, payload, field):
    response = client_for(po).post("/api/v1/me/tokens", payload, "application/json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not PersonalToken.objects.exists()


def test_a_token_cannot_mint_or_revoke_tokens(po):
    client = bearer(token_of(po))
    payload = {"name": "more", "scopes": ["write"], "expires_at": in_a_day().isoformat()}
    assert client.post("/api/v1/me/tokens", payload, "application/json").status_code == 403
    token = PersonalToken.objects.get()
    assert client.delete(f"/api/v1/me/tokens/{token.pk}").status_code == 403
    assert PersonalToken.objects.count() == 1


def test_a_person_revokes_only_their_own_tokens(client_for, po, developer):
    theirs = personal_token_create(user=developer, name="x", scopes=["read"], expires_at=in_a_day())
    assert client_for(po).delete(f"/api/v1/me/tokens/{theirs[0].pk}").status_code == 404
    assert bearer(theirs[1]).get(ME).status_code == 200
    assert client_for(developer).delete(f"/api/v1/me/tokens/{theirs[0].pk}").status_code == 204
    assert (
        bearer(theirs[1]).get(ME).json()["detail"] == "This personal access token has been revoked."
    )


def test_a_token_acts_as_its_person_with_their_role(team, po, stakeholder, other_team, outsider):
    plan = PilotPlanFactory(team=team, owner=po)
    theirs = PilotPlanFactory(team=other_team, owner=outsider)
    url = f"/api/v1/teams/{team.pk}/backlog"
    assert bearer(token_of(po)).get(f"/api/v1/plans/{plan.pk}").status_code == 200
    assert bearer(token_of(po)).get(f"/api/v1/plans/{theirs.pk}").status_code == 404
    refused = bearer(token_of(stakeholder)).post(url, {"title": "x"}, "application/json")
    assert refused.status_code == 403  # a stakeholder's token is a stakeholder
    assert refused.json()["detail"] == "Stakeholders can read the backlog but not change it."
    assert bearer(token_of(po)).post(url, {"title": "x"}, "application/json").status_code == 201


def test_an_inactive_persons_token_is_refused(po):
    secret = token_of(po)
    po.is_active = False
    po.save(update_fields=["is_active"])
    assert bearer(secret).get(ME).status_code == 401


def test_a_session_still_needs_its_csrf_token_but_a_token_does_not(team, po):
    url = f"/api/v1/teams/{team.pk}/backlog"
    session = Client(enforce_csrf_checks=True)
    session.force_login(po)
    response = session.post(url, {"title": "x"}, "application/json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    # The same browser with a token: judged by the token (tokens come first), no CSRF.
    response = session.post(
        url, {"title": "x"}, "application/json", headers={"Authorization": f"Bearer {token_of(po)}"}
    )
    assert response.status_code == 201


# --- the settings page ---------------------------------------------------------------------------


def test_the_settings_page_lists_creates_once_and_revokes(
    client_for, po, django_assert_max_num_queries
):
    client = client_for(po)
    personal_token_create(user=po, name="old", scopes=["read"], expires_at=in_a_day())
    with django_assert_max_num_queries(4):  # session, user, tokens, the bell's none
        page = client.get(reverse("accounts:token_list"))
    assert page.status_code == 200
    assert "old" in page.content.decode()

    created = client.post(
        reverse("accounts:token_add"), {"name": "release", "scopes": ["write"], "lifetime": "30"}
    )
    assert created.status_code == 200
    assert created["Cache-Control"] == "no-store"
    token = PersonalToken.objects.get(name="release")
    html = created.content.decode()
    assert f"ppu_{token.prefix}_" in html
    assert 29 <= (token.expires_at - timezone.now()).days <= 30
    # Shown once: the list afterwards names the prefix only.
    again = client.get(reverse("accounts:token_list")).content.decode()
    secret = html.split('data-testid="token-plaintext">')[1].split("<")[0]
    assert secret not in again

    confirm = client.get(reverse("accounts:token_revoke", args=[token.pk]))
    assert confirm.status_code == 200 and token.name in confirm.content.decode()
    done = client.post(reverse("accounts:token_revoke", args=[token.pk]))
    assert done.status_code == 302
    assert PersonalToken.objects.get(pk=token.pk).revoked_at is not None


def test_an_invalid_token_form_is_422_and_creates_nothing(client_for, po):
    response = client_for(po).post(reverse("accounts:token_add"), {"name": "", "lifetime": "30"})
    assert response.status_code == 422
    assert not PersonalToken.objects.exists()


def test_the_settings_page_is_one_persons_own(client, client_for, po, developer):
    theirs = personal_token_create(
        user=developer, name="x", scopes=["read"], expires_at=in_a_day()
    )[0]
    assert "x" not in client_for(po).get(reverse("accounts:token_list")).context["tokens"]
    assert (
        client_for(po).post(reverse("accounts:token_revoke", args=[theirs.pk])).status_code == 404
    )
    assert PersonalToken.objects.get().revoked_at is None
    response = client.get(reverse("accounts:token_list"))
    assert response.status_code == 302 and reverse("accounts:login") in response["Location"]


# --- the team's keys page ------------------------------------------------------------------------


def test_the_keys_page_creates_a_plan_restricted_expiring_key(client_for, team, po):
    plan = PilotPlanFactory(team=team, owner=po, title="Saved cards")
    response = client_for(po).post(
        reverse("accounts:api_key_add", args=[team.pk]),
        {"name": "CI", "scopes": ["gate"], "plans": [str(plan.pk)], "expires_on": "2099-12-31"},
    )
    assert response.status_code == 200, response.content
    key = ApiKey.objects.get()
    assert key.plan_ids == [plan.pk] and key.expires_at is not None
    html = response.content.decode()
    assert "only “Saved cards”" in html


def test_the_keys_page_rotates_a_key(client_for, team, po, developer):
    key = api_key_create(team=team, name="CI", scopes=["gate"], created_by=po)[0]
    url = reverse("accounts:api_key_rotate", args=[team.pk, key.pk])
    assert client_for(developer).post(url, {"grace_hours": "24"}).status_code == 403
    response = client_for(po).post(url, {"grace_hours": "24"})
    assert response.status_code == 200
    assert ApiKey.objects.count() == 2
    new = ApiKey.objects.exclude(pk=key.pk).get()
    assert f"pp_{new.prefix}_" in response.content.decode()
    assert new.principal_id == key.principal_id
    key.refresh_from_db()
    assert dt.timedelta(hours=23) < key.expires_at - timezone.now() <= dt.timedelta(hours=24)
