"""Team administration in a real browser, at 1440×900, 1366×768 and 390×844: the Product
Owner invites someone by e-mail, the invitee signs up from the e-mailed link and joins, the
Product Owner changes their role — no page scrolls sideways, nothing logs a console error, and
axe finds no serious or critical violation on the team page or the invitation page."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from accounts.models import Membership
from tests.e2e.test_page_shell import DESKTOP, PHONE, _log_in, _overflow, _watch

LAPTOP = {"width": 1366, "height": 768}

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _check(page, failures: list[str], name: str) -> None:  # type: ignore[no-untyped-def]
    from axe_playwright_python.sync_playwright import Axe

    page.wait_for_load_state("networkidle")
    width, viewport = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    if width > viewport:
        failures.append(f"{name}: {width} px wide in {viewport} px: {_overflow(page)}")
    for violation in Axe().run(page).response["violations"]:
        if violation["impact"] in ("serious", "critical"):
            targets = [n["target"] for n in violation["nodes"][:3]]
            failures.append(f"{name}: {violation['id']} ({violation['impact']}) {targets}")


@pytest.mark.parametrize("viewport", [DESKTOP, LAPTOP, PHONE], ids=["1440", "1366", "390"])
def test_po_invites_the_invitee_signs_up_and_the_po_changes_the_role(
    browser, live_server, team, po, sm, viewport
):
    base = live_server.url
    failures: list[str] = []
    manager = browser.new_context(viewport=viewport)
    invitee = browser.new_context(viewport=viewport)
    manager.set_default_timeout(15_000)
    invitee.set_default_timeout(15_000)
    try:
        page = manager.new_page()
        problems = _watch(page)
        _log_in(page, base, po)
        page.goto(f"{base}/teams/{team.pk}/")
        _check(page, failures, "team page")

        form = page.get_by_test_id("invite-form")
        form.get_by_label("E-mail address").fill("nora@example.com")
        form.get_by_label("Role").select_option("developer")
        form.get_by_role("button", name="Send invitation").click()
        expect(page.get_by_test_id("team-done")).to_contain_text(
            "Invitation e-mailed to nora@example.com"
        )
        expect(page.get_by_test_id("invitation-row")).to_contain_text("nora@example.com")
        [message] = mail.outbox
        link = re.search(r"https?://\S+/invitations/\S+", message.body)
        assert link, message.body
        path = "/invitations/" + link.group(0).rsplit("/invitations/", 1)[1]

        other = invitee.new_page()
        invitee_problems = _watch(other)
        other.goto(base + path)
        expect(other.get_by_role("heading", name=f"Join {team.name}")).to_be_visible()
        _check(other, failures, "invitation page")
        other.get_by_label("Your name").fill("Nora Quinn")
        other.get_by_label("Password").fill("a long enough passphrase")
        other.get_by_role("button", name="Create account and join").click()
        other.wait_for_url(f"{base}/teams/{team.pk}/")
        expect(other.get_by_test_id("team-read-only")).to_be_visible()
        assert Membership.objects.get(team=team, user__email="nora@example.com").role == "developer"

        page.reload()
        row = page.get_by_test_id("member-row").filter(has_text="nora@example.com")
        row.get_by_label("Role of Nora Quinn", exact=True).select_option("devops")
        row.get_by_role("button", name="Change the role of Nora Quinn").click()
        expect(page.get_by_test_id("team-done")).to_contain_text("Nora Quinn is now DevOps lead")
        expect(
            page.get_by_test_id("member-row").filter(has_text="nora@example.com")
        ).to_contain_text("DevOps lead")
        _check(page, failures, "team page after the change")
        assert Membership.objects.get(team=team, user__email="nora@example.com").role == "devops"
        failures.extend(problems + invitee_problems)
    finally:
        invitee.close()
        manager.close()
    assert failures == [], "\n".join(failures)


@pytest.mark.parametrize("viewport", [DESKTOP, LAPTOP, PHONE], ids=["1440", "1366", "390"])
def test_the_template_library_fits_and_saves_a_plan(browser, live_server, team, po, viewport):
    from pilots.models import PlanTemplate
    from pilots.services.plans import plan_create_from_template

    plan = plan_create_from_template(team=team, author=po)
    base = live_server.url
    failures: list[str] = []
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        problems = _watch(page)
        _log_in(page, base, po)
        page.goto(f"{base}/plans/{plan.pk}/")
        page.get_by_test_id("save-as-template").click()
        page.wait_for_url(re.compile(rf"/teams/{team.pk}/templates\?plan={plan.pk}$"))
        _check(page, failures, "templates page")
        form = page.get_by_test_id("template-form")
        expect(form.get_by_label("Plan")).to_have_value(str(plan.pk))
        form.get_by_label("Template name").fill("Checkout pilot")
        form.get_by_role("button", name="Save as template").click()
        expect(page.get_by_test_id("template-row")).to_contain_text("Checkout pilot")
        _check(page, failures, "templates page after saving")
        assert PlanTemplate.objects.get().name == "Checkout pilot"
        failures.extend(problems)
    finally:
        context.close()
    assert failures == [], "\n".join(failures)
