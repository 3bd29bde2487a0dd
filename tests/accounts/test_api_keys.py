"""API keys: the service, the DRF authentication and the team's keys page."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
from django.core.exceptions import ValidationError
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.request import Request

from accounts.api_keys import (
    ApiKeyAuthentication,
    api_key_authenticate,
    api_key_create,
    api_key_revoke,
)
from accounts.models import ApiKey

pytestmark = pytest.mark.django_db

KEY_FORMAT = re.compile(r"^pp_[0-9a-f]{12}_[A-Za-z0-9_-]{40,}$")


@pytest.fixture
def created(team, po):
    return api_key_create(team=team, name=" Grafana exporter ", scopes=["ingest"], created_by=po)


# --- the service -------------------------------------------------------------------------------


def test_a_key_is_stored_as_a_hash_and_shown_once(created, team, po):
    key, plaintext = created
    assert KEY_FORMAT.match(plaintext)
    assert plaintext.split("_")[1] == key.prefix
    assert key.key_sha256 == hashlib.sha256(plaintext.encode()).hexdigest()
    stored = ApiKey.objects.get()
    assert plaintext not in str(stored.__dict__)
    assert (stored.team, stored.name, stored.scopes, stored.created_by) == (
        team,
        "Grafana exporter",
        ["ingest"],
        po,
    )


def test_every_key_is_different(team, po):
    plaintexts = {
        api_key_create(team=team, name="k", scopes=["read"], created_by=po)[1] for _ in range(20)
    }
    assert len(plaintexts) == 20
    assert ApiKey.objects.values("prefix").distinct().count() == 20


@pytest.mark.parametrize(
    ("name", "scopes", "field"),
    [("", ["ingest"], "name"), ("k", [], "scopes"), ("k", ["admin"], "scopes")],
)
def test_a_bad_key_is_refused_naming_the_field(team, po, name, scopes, field):
    with pytest.raises(ValidationError) as refused:
        api_key_create(team=team, name=name, scopes=scopes, created_by=po)
    assert field in refused.value.message_dict
    assert not ApiKey.objects.exists()


def test_authenticate_finds_the_key_and_only_the_key(created):
    key, plaintext = created
    assert api_key_authenticate(plaintext=plaintext) == key
    prefix = key.prefix
    for wrong in (plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B"), f"pp_{prefix}_x",
                  "pp_000000000000_" + plaintext.split("_", 2)[2], "nope", "pp__x"):  # fmt: skip
        assert api_key_authenticate(plaintext=wrong) is None, wrong


def test_a_revoked_key_fails_with_its_reason(created, po):
    key, plaintext = created
    api_key_revoke(key=key, user=po)
    with pytest.raises(exceptions.AuthenticationFailed, match="revoked"):
        api_key_authenticate(plaintext=plaintext)


def test_revoking_twice_keeps_the_first_time(created, po):
    key, _ = created
    first = dt.datetime(2025, 5, 1, tzinfo=dt.UTC)
    api_key_revoke(key=key, user=po, at=first)
    api_key_revoke(key=key, user=po, at=first + dt.timedelta(days=1))
    assert ApiKey.objects.get().revoked_at == first


def test_last_used_is_written_at_most_once_a_minute(created, django_assert_num_queries):
    _key, plaintext = created
    t0 = timezone.now()
    with django_assert_num_queries(2):  # find the key, record the use
        api_key_authenticate(plaintext=plaintext, now=t0)
    with django_assert_num_queries(1):  # within the minute: no write
        api_key_authenticate(plaintext=plaintext, now=t0 + dt.timedelta(seconds=59))
    assert ApiKey.objects.get().last_used_at == t0
    api_key_authenticate(plaintext=plaintext, now=t0 + dt.timedelta(seconds=61))
    assert ApiKey.objects.get().last_used_at == t0 + dt.timedelta(seconds=61)


# --- the DRF authentication --------------------------------------------------------------------


def _request(authorization: str | None) -> Request:
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    return Request(RequestFactory().get("/", **headers))


def test_the_authentication_makes_the_key_the_auth_and_its_principal_the_user(created):
    key, plaintext = created
    user, auth = ApiKeyAuthentication().authenticate(_request(f"Bearer {plaintext}"))
    assert auth == key
    assert user == key.principal and user.credential == key
    assert not user.memberships.exists()  # a member of its key's team through the key only
    assert not user.has_usable_password()  # it cannot log in


@pytest.mark.parametrize(
    "header", [None, "Basic abc", "Bearer", "Bearer some.jwt.token", "Token pp_x"]
)
def test_other_authorization_headers_are_left_to_others(header):
    assert ApiKeyAuthentication().authenticate(_request(header)) is None


def test_a_wrong_pp_key_is_refused(created):
    with pytest.raises(exceptions.AuthenticationFailed):
        ApiKeyAuthentication().authenticate(_request("Bearer pp_abc_def"))


# --- the page ----------------------------------------------------------------------------------


def list_url(team) -> str:
    return reverse("accounts:api_key_list", args=[team.pk])


def test_the_team_page_links_keys_for_po_and_sm_only(client_for, team, po, developer):
    assert list_url(team) in client_for(po).get(reverse("accounts:team_list")).content.decode()
    assert (
        list_url(team)
        not in client_for(developer).get(reverse("accounts:team_list")).content.decode()
    )


def test_the_list_shows_keys_with_last_use_and_never_a_secret(
    client_for, team, po, sm, created, django_assert_num_queries
):
    key, plaintext = created
    api_key_authenticate(plaintext=plaintext)
    client = client_for(sm)
    # session, user, team with role, keys + creators, the team's plans (for the plans field)
    with django_assert_num_queries(5) as baseline:
        page = client.get(list_url(team)).content.decode()
    assert "Grafana exporter" in page
    assert f"pp_{key.prefix}_…" in page
    assert plaintext not in page
    assert "never" not in page
    for i in range(5):
        api_key_create(team=team, name=f"k{i}", scopes=["read"], created_by=po)
    with django_assert_num_queries(len(baseline.captured_queries)):
        client.get(list_url(team))


def test_creating_shows_the_key_once(client_for, team, po):
    client = client_for(po)

    response = client.post(
        reverse("accounts:api_key_add", args=[team.pk]),
        {"name": "CI", "scopes": ["ingest", "read"]},
    )

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    plaintext = re.search(r"pp_[0-9a-f]{12}_[A-Za-z0-9_-]+", response.content.decode()).group(0)
    key = ApiKey.objects.get()
    assert api_key_authenticate(plaintext=plaintext) == key
    assert sorted(key.scopes) == ["ingest", "read"]
    assert key.created_by == po
    assert plaintext not in client.get(list_url(team)).content.decode()


def test_creating_with_htmx_swaps_the_card(client_for, team, po):
    response = client_for(po).post(
        reverse("accounts:api_key_add", args=[team.pk]),
        {"name": "CI", "scopes": ["ingest"]},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert "<html" not in response.content.decode()
    assert "api-key-plaintext" in response.content.decode()
    assert "apiKeysChanged" in response.headers["HX-Trigger"]


def test_an_invalid_key_form_is_422_and_creates_nothing(client_for, team, po):
    response = client_for(po).post(reverse("accounts:api_key_add", args=[team.pk]), {"name": "CI"})
    assert response.status_code == 422
    assert "Choose at least one scope" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_revoking_asks_first_then_revokes_and_redirects(client_for, team, sm, created):
    key, plaintext = created
    client = client_for(sm)
    revoke = reverse("accounts:api_key_revoke", args=[team.pk, key.pk])

    confirm = client.get(revoke)
    assert confirm.status_code == 200
    assert "Revoke the key" in confirm.content.decode()
    assert ApiKey.objects.get().revoked_at is None

    response = client.post(revoke, follow=True)
    assert response.redirect_chain == [(list_url(team), 302)]
    assert "revoked" in response.content.decode()
    assert ApiKey.objects.get().revoked_at is not None
    with pytest.raises(exceptions.AuthenticationFailed):
        api_key_authenticate(plaintext=plaintext)


def test_revoking_with_htmx_swaps_the_card(client_for, team, po, created):
    key, _ = created
    response = client_for(po).post(
        reverse("accounts:api_key_revoke", args=[team.pk, key.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert "<html" not in response.content.decode()
    assert 'data-testid="api-key-revoked"' in response.content.decode()


def test_another_teams_key_cannot_be_revoked_here(client_for, team, other_team, po, outsider):
    theirs, _ = api_key_create(team=other_team, name="x", scopes=["read"], created_by=outsider)
    response = client_for(po).post(reverse("accounts:api_key_revoke", args=[team.pk, theirs.pk]))
    assert response.status_code == 404
    assert ApiKey.objects.get(pk=theirs.pk).revoked_at is None


@pytest.mark.parametrize("role", ["developer", "devops", "stakeholder"])
def test_other_members_may_not_manage_keys(request, client_for, team, created, role):
    key, _ = created
    client = client_for(request.getfixturevalue(role))
    assert client.get(list_url(team)).status_code == 403
    add = client.post(
        reverse("accounts:api_key_add", args=[team.pk]), {"name": "x", "scopes": ["read"]}
    )
    assert add.status_code == 403
    assert (
        client.post(reverse("accounts:api_key_revoke", args=[team.pk, key.pk])).status_code == 403
    )
    assert ApiKey.objects.count() == 1
    assert ApiKey.objects.get().revoked_at is None


def test_outsiders_get_404(client_for, team, outsider, created):
    key, _ = created
    client = client_for(outsider)
    assert client.get(list_url(team)).status_code == 404
    add = client.post(
        reverse("accounts:api_key_add", args=[team.pk]), {"name": "x", "scopes": ["read"]}
    )
    assert add.status_code == 404
    assert (
        client.post(reverse("accounts:api_key_revoke", args=[team.pk, key.pk])).status_code == 404
    )


def test_anonymous_is_sent_to_login(client, team, created):
    key, _ = created
    for response in (
        client.get(list_url(team)),
        client.post(
            reverse("accounts:api_key_add", args=[team.pk]), {"name": "x", "scopes": ["read"]}
        ),
        client.post(reverse("accounts:api_key_revoke", args=[team.pk, key.pk])),
    ):
        assert response.status_code == 302
        assert "/login/" in response.url
    assert ApiKey.objects.get().revoked_at is None
