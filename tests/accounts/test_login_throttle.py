"""Login throttling (finding 6 of issue #10: 200 wrong passwords met no lockout): per account
and per address on /login/ and /admin/login/, 429 with Retry-After, failures logged as security
events; refused API keys answered 429 with Retry-After after N per address."""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from django.urls import reverse

from accounts.api_keys import api_key_create
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = reverse("accounts:login")
ADMIN_LOGIN = "/admin/login/"


def attempt(email: str, password: str, *, address: str = "203.0.113.7", url: str = LOGIN):  # type: ignore[no-untyped-def]
    return Client(REMOTE_ADDR=address).post(url, {"username": email, "password": password})


def test_an_account_is_locked_after_ten_failures(settings):
    user = UserFactory(email="ana@example.test")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert attempt(user.email, "wrong").status_code == 200  # the form again, with an error
    assert attempt(user.email, "wrong").status_code == 429  # the tenth failure locks

    locked = attempt(user.email, PASSWORD)  # even the right password

    assert locked.status_code == 429
    assert locked.headers["Retry-After"] == "900"
    assert "Try again in 15 minutes" in locked.content.decode()
    # Locked from anywhere: it is the account that is locked.
    assert attempt(user.email, PASSWORD, address="198.51.100.9").status_code == 429


def test_an_address_is_locked_after_ten_failures(settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        attempt(f"guess{n}@example.test", "wrong", address="203.0.113.50")
    other = UserFactory(email="bo@example.test")

    assert attempt(other.email, PASSWORD, address="203.0.113.50").status_code == 429
    # The same person from their own address still logs in.
    assert attempt(other.email, PASSWORD, address="198.51.100.9").status_code == 302


def test_a_successful_log_in_resets_the_count(settings):
    user = UserFactory(email="cy@example.test")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(user.email, "wrong", address="198.51.100.1")
    assert attempt(user.email, PASSWORD, address="198.51.100.1").status_code == 302
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(user.email, "wrong", address="198.51.100.2")

    assert attempt(user.email, PASSWORD, address="198.51.100.3").status_code == 302


def test_the_admin_log_in_is_throttled_too(settings):
    UserFactory(email="root@example.test", is_staff=True, is_superuser=True)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        attempt("root@example.test", "wrong", url=ADMIN_LOGIN)

    response = attempt("root@example.test", PASSWORD, url=ADMIN_LOGIN, address="198.51.100.4")

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "900"


def test_the_limit_and_the_lockout_come_from_settings(settings):
    settings.AXES_FAILURE_LIMIT = 3
    UserFactory(email="di@example.test")
    for _ in range(3):
        attempt("di@example.test", "wrong")

    assert attempt("di@example.test", PASSWORD).status_code == 429


def test_failures_are_logged_as_security_events(caplog):
    UserFactory(email="ed@example.test")

    with caplog.at_level(logging.WARNING, logger="pilotplan.security"):
        attempt("ed@example.test", "wrong", address="203.0.113.99")

    events = [r.getMessage() for r in caplog.records if r.name == "pilotplan.security"]
    assert any(
        "login failed" in e and "ed@example.test" in e and "203.0.113.99" in e for e in events
    )
    assert not any("wrong" in e for e in events)  # never the password


# --- API keys ------------------------------------------------------------------------------------


def test_refused_api_keys_are_throttled_per_address(settings, team, po, caplog):
    settings.API_KEY_FAILURE_LIMIT = 3
    _, good = api_key_create(team=team, name="exporter", scopes=["ingest"], created_by=po)
    url = reverse("api:plan-list")

    def call(key: str, address: str = "203.0.113.7"):  # type: ignore[no-untyped-def]
        return Client(REMOTE_ADDR=address).get(url, HTTP_AUTHORIZATION=f"Bearer {key}")

    with caplog.at_level(logging.WARNING, logger="pilotplan.security"):
        for _ in range(3):
            assert call("pp_000000000000_guess").status_code in (401, 403)

    blocked = call("pp_000000000000_guess")
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["Retry-After"]) <= settings.API_KEY_FAILURE_WINDOW
    # While blocked, that address's keys are not even checked; other addresses are unaffected.
    assert call(good).status_code == 429
    assert call(good, address="198.51.100.5").status_code != 429
    assert sum("API key refused" in r.getMessage() for r in caplog.records) == 3
