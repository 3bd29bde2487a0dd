"""API rate limits (accounts.throttle): counted in the real Redis, per credential and per address,
stricter for sample pushes and for refused credentials; 429 with Retry-After and a JSON body. The
counters are shared by every process: a separate Python process counting against the same Redis
uses up the same allowance."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

from accounts.api_keys import api_key_create
from accounts.models import PersonalToken
from accounts.tokens import personal_token_create
from tests.factories import PilotPlanFactory

pytestmark = pytest.mark.django_db

ME = "/api/v1/me"


def _bearer(secret: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {secret}"})


@pytest.fixture
def key(team, po):
    return api_key_create(team=team, name="exporter", scopes=["read", "ingest"], created_by=po)[1]


def _assert_throttled(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert response["Content-Type"].startswith("application/problem+json")
    assert "throttled" in response.json()["detail"].lower()


def test_each_credential_has_its_own_allowance(settings, team, po, key):
    settings.API_RATE_PER_CREDENTIAL = 3
    client = _bearer(key)
    for _ in range(3):
        assert client.get(ME).status_code == 200
    _assert_throttled(client.get(ME))
    # Another credential from the same address is still served: the limit is the key's.
    token = personal_token_create(
        user=po, name="script", scopes=["read"], expires_at=timezone.now() + dt.timedelta(days=1)
    )[1]
    assert _bearer(token).get(ME).status_code == 200


def test_a_session_counts_per_person(settings, client_for, po):
    settings.API_RATE_PER_CREDENTIAL = 2
    client = client_for(po)
    assert client.get(ME).status_code == 200
    assert client.get(ME).status_code == 200
    _assert_throttled(client.get(ME))


def test_every_credential_from_one_address_shares_its_allowance(settings, team, po):
    settings.API_RATE_PER_ADDRESS = 4
    keys = [
        api_key_create(team=team, name=f"k{i}", scopes=["read"], created_by=po)[1] for i in range(5)
    ]
    for secret in keys[:4]:
        assert _bearer(secret).get(ME).status_code == 200
    _assert_throttled(_bearer(keys[4]).get(ME))
    # Another address is not affected.
    assert _bearer(keys[4]).get(ME, REMOTE_ADDR="10.0.0.9").status_code == 200


def _pusher(team, po, key):  # type: ignore[no-untyped-def]
    """The key's client and ``push()``: an empty push with ``key`` to a plan of the team (a 400
    unless throttled)."""
    plan = PilotPlanFactory(team=team, owner=po)
    client = _bearer(key)
    url = f"/api/v1/plans/{plan.pk}/samples"
    return client, lambda: client.post(url, {"samples": []}, "application/json")


def test_pushes_are_limited_sooner_than_reads(settings, team, po, key):
    settings.API_RATE_INGEST = 2
    client, push = _pusher(team, po, key)
    for _ in range(2):
        assert push().status_code == 400
    _assert_throttled(push())
    assert client.get(ME).status_code == 200  # reading is not a push


def test_pushes_count_against_the_apis_own_limits_too(settings, team, po, key):
    """The push's throttle counts the API's limits and its own in one round trip: a push
    uses the credential's allowance as a read does."""
    settings.API_RATE_PER_CREDENTIAL = 3
    settings.API_RATE_INGEST = 100
    client, push = _pusher(team, po, key)
    for _ in range(2):
        assert push().status_code == 400
    assert client.get(ME).status_code == 200
    _assert_throttled(push())
    _assert_throttled(client.get(ME))


def test_refused_credentials_block_the_address_whatever_their_kind(settings, team, po, key):
    settings.API_KEY_FAILURE_LIMIT = 3
    for bad in ("pp_000000000000_nope", "ppu_000000000000_nope", "pp_111111111111_nope"):
        assert _bearer(bad).get(ME).status_code == 401
    # Blocked now, even with a good key, until the window ends.
    response = _bearer(key).get(ME)
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert "Too many refused" in response.json()["detail"]


def test_an_expired_token_is_refused_and_counted(settings, po):
    settings.API_KEY_FAILURE_LIMIT = 1
    token = personal_token_create(
        user=po, name="old", scopes=["read"], expires_at=timezone.now() + dt.timedelta(days=1)
    )[0]
    PersonalToken.objects.filter(pk=token.pk).update(expires_at=timezone.now())
    # The plaintext is not kept; any ppu_ token of this prefix with a wrong secret is refused too.
    assert _bearer(f"ppu_{token.prefix}_wrong").get(ME).status_code == 401
    assert _bearer(f"ppu_{token.prefix}_wrong").get(ME).status_code == 429


def test_a_separate_process_uses_up_the_same_allowance(settings, team, po, key):
    """Two processes, one Redis: a child Python process counts three requests from an address
    with the throttle's own code; this process then finds that address's allowance used up."""
    settings.API_RATE_PER_ADDRESS = 3
    child = textwrap.dedent(
        """
        import django
        django.setup()
        from django.contrib.auth.models import AnonymousUser
        from django.test import RequestFactory
        from rest_framework.request import Request
        from accounts.throttle import ApiRateThrottle

        request = Request(RequestFactory().get("/api/v1/me", REMOTE_ADDR="10.1.2.3"))
        request.user = AnonymousUser()
        print(sum(ApiRateThrottle().allow_request(request, None) for _ in range(3)))
        """
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pilotplan.settings_test",
        "API_RATE_PREFIX": django_settings.API_RATE_PREFIX,
        "API_RATE_PER_ADDRESS": "3",
    }
    done = subprocess.run(
        [sys.executable, "-c", child], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3"  # all three allowed in the child

    _assert_throttled(_bearer(key).get(ME, REMOTE_ADDR="10.1.2.3"))
    assert _bearer(key).get(ME, REMOTE_ADDR="10.1.2.4").status_code == 200
