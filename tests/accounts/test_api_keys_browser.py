"""A team's API keys in a real browser: create (the key shown once), then revoke after the
confirmation dialog, without a page load."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.api_keys import api_key_authenticate
from accounts.models import ApiKey

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_create_a_key_then_revoke_it(page, live_server, login, team, po):
    login(page, po)
    page.goto(f"{live_server.url}/teams/")
    page.get_by_role("link", name="API keys").click()
    page.evaluate("window.__marker = 'same page'")

    page.get_by_text("New API key").click()
    form = page.get_by_test_id("api-key-form")
    form.get_by_label("Name").fill("Grafana exporter")
    form.get_by_label("Read plans, metrics and the backlog").check()
    form.get_by_role("button", name="Create key").click()

    plaintext = page.get_by_test_id("api-key-plaintext").inner_text()
    key = ApiKey.objects.get()
    assert api_key_authenticate(plaintext=plaintext) == key
    assert sorted(key.scopes) == ["ingest", "read"]
    expect(page.get_by_test_id("api-key-row")).to_contain_text("never")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke Grafana exporter").click()

    expect(page.get_by_test_id("api-key-revoked")).to_be_visible()
    expect(page.get_by_test_id("api-key-plaintext")).to_have_count(0)
    assert page.evaluate("window.__marker") == "same page"
    key.refresh_from_db()
    assert key.revoked_at is not None
