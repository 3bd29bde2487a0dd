"""A cohort member opts in through the plan's public enrolment link on a phone, in a real
browser, with no CSP violation; the team then sees them on the participants page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from backlog.models import Participant
from tests.backlog.participants_helpers import CONSENT, link, segmented_plan

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CSP_WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", e => window.__csp.push(e.violatedDirective));
"""


def test_a_cohort_member_opts_in_through_the_public_link(browser, live_server, login, po, team):  # type: ignore[no-untyped-def]
    plan = segmented_plan(team, po)
    token = link(plan, po).token
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = phone.new_page()
    page.add_init_script(CSP_WATCH)
    try:
        page.goto(f"{live_server.url}/join/{token}")
        expect(page.get_by_test_id("consent-text")).to_have_text(CONSENT)
        page.get_by_label("Your name").fill("Ana Lima")
        page.get_by_label("Your e-mail (optional)").fill("ana@example.test")
        page.get_by_label("Region").select_option("Region B")
        page.get_by_test_id("join-submit").click()
        # Opt-in only: without the tick the page says why, and nobody joined.
        expect(page.get_by_role("alert")).to_contain_text("opt-in only")
        assert not Participant.objects.exists()
        page.get_by_label("I agree to take part").check()
        page.get_by_test_id("join-submit").click()
        expect(page.get_by_test_id("join-done")).to_contain_text("you have joined the pilot")
        withdraw_url = page.get_by_test_id("withdraw-link").inner_text()
        assert "/join/withdraw/" in withdraw_url
        assert page.evaluate("window.__csp") == []
    finally:
        phone.close()

    person = Participant.objects.get()
    assert (person.name, person.region, person.consent_method) == (
        "Ana Lima", "Region B", "enrolment_link",
    )  # fmt: skip
    assert person.consent_text == CONSENT

    team_page = browser.new_page()
    try:
        login(team_page, po)
        team_page.goto(f"{live_server.url}/plans/{plan.pk}/participants")
        expect(team_page.get_by_test_id("participant-row")).to_contain_text("Ana Lima")
        expect(team_page.get_by_test_id("active-count")).to_have_text("1")
    finally:
        team_page.close()
