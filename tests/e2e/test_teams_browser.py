"""The inline team creation (the pattern every HTMX section follows), in a real browser."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Membership, Team

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_create_team_inline_swaps_the_section_without_a_page_load(page, live_server, login, po):
    login(page, po)
    page.evaluate("window.__marker = 'same page'")  # survives only if no full page load happens

    page.get_by_text("New team").click()  # the form is folded away once you have a team
    form = page.get_by_test_id("team-form")
    form.get_by_label("Team name").fill("Payments Squad")
    form.get_by_label("Time zone").select_option("America/New_York")
    form.get_by_label("Your role").select_option("scrum_master")
    form.get_by_role("button", name="Create team").click()

    expect(page.get_by_role("status")).to_contain_text("Team “Payments Squad” created")
    row = page.get_by_test_id("team-row").filter(has_text="Payments Squad")
    expect(row).to_contain_text("Scrum Master")
    expect(row).to_contain_text("America/New_York")
    assert page.evaluate("window.__marker") == "same page"
    team = Team.objects.get(name="Payments Squad")
    assert Membership.objects.get(team=team, user=po).role == "scrum_master"


def test_invalid_team_shows_the_error_on_the_field_and_saves_nothing(page, live_server, login, po):
    login(page, po)
    page.get_by_text("New team").click()
    form = page.get_by_test_id("team-form")
    form.get_by_label("Team name").fill("   ")
    form.get_by_role("button", name="Create team").click()

    expect(page.locator(".field-error")).to_contain_text(re.compile("required", re.I))
    assert Team.objects.count() == 1  # only the fixture's team


def test_logout_returns_to_the_login_page(page, live_server, login, po):
    login(page, po)
    page.get_by_test_id("logout").click()
    page.wait_for_url(re.compile(r"/login/$"))
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
