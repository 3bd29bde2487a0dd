"""My work for each role, a plan's History tab, and the plan list and portfolio with a search and
sort applied (and their second page), in a real browser at 1440×900, 1366×768 and 390×844: no
sideways scrolling, no console error or failed request, no serious or critical axe-core
violation. And the keyboard: an HTMX action reached with Tab and activated with Enter leaves
focus where the reader continues (static/js/app.js, ``[data-focus-after-swap]``)."""

from __future__ import annotations

from dataclasses import dataclass

import pghistory
import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect

from accounts.models import Team, User
from pilots.models import PilotPlan
from tests.decisions.test_my_work import _work
from tests.e2e.test_page_shell import _overflow, _watch
from tests.factories import PilotPlanFactory, section_edit

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SIZES = {
    "1440x900": {"width": 1440, "height": 900},
    "1366x768": {"width": 1366, "height": 768},
    "390x844": {"width": 390, "height": 844},
}


@dataclass
class Seeded:
    history_plan: PilotPlan
    draft: PilotPlan


@pytest.fixture
def seeded(team: Team, po: User, sm: User, developer: User, devops: User) -> Seeded:
    """Work waiting for every role (an alert, a rollback, a decision, a review, entry criteria,
    a post-pilot review), 27 plans titled "Zebra crossing …" (two pages of 25), an edited plan."""
    plans = _work(team, po, sm, devops)
    reviewed = plans["reviewed"]
    with pghistory.context(user=po.pk):
        section_edit(reviewed, "cohort", po, target_size=250)
    with pghistory.context(user=sm.pk):
        section_edit(reviewed, "environment", sm, masking_rules="Masked copy of production")
    for i in range(27):
        PilotPlanFactory(team=team, owner=sm, title=f"Zebra crossing {i:02}")
    draft = PilotPlanFactory(team=team, owner=po, title="One-page checkout")
    return Seeded(history_plan=reviewed, draft=draft)


def _signed_in(browser, live_server, user: User, viewport: dict[str, int]):  # type: ignore[no-untyped-def]
    """A browser context with ``user``'s session (made by the test client, not the login form:
    the form has its own tests)."""
    client = Client()
    client.force_login(user)
    host = live_server.url.split("//", 1)[1].split(":")[0]
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(15_000)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "domain": host,
                "path": "/",
            }
        ]
    )
    return context


def _inspect(page, axe, label: str) -> list[str]:  # type: ignore[no-untyped-def]
    failures = []
    width, viewport = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    if width > viewport:
        failures.append(f"{label}: {width} px wide in {viewport} px: {_overflow(page)}")
    for violation in axe.run(page).response["violations"]:
        if violation["impact"] in ("serious", "critical"):
            targets = [n["target"] for n in violation["nodes"][:3]]
            failures.append(f"{label}: {violation['id']} ({violation['impact']}) {targets}")
    return failures


@pytest.mark.parametrize("size", list(SIZES))
def test_work_history_and_lists_fit_every_size_without_errors_or_axe_violations(
    browser, live_server, seeded: Seeded, po, sm, developer, devops, size
):
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    base = live_server.url
    failures: list[str] = []
    people = {"Product Owner": po, "Scrum Master": sm, "DevOps": devops, "reviewer": developer}
    for role, user in people.items():
        context = _signed_in(browser, live_server, user, SIZES[size])
        try:
            page = context.new_page()
            problems = _watch(page)
            page.goto(base + reverse("decisions:my_work"))
            page.wait_for_load_state("networkidle")
            assert page.get_by_role("heading", name="My work").count() >= 1
            failures += _inspect(page, axe, f"{size} my work ({role})")
            if user == po:
                page.goto(base + reverse("pilots:plan_history", args=[seeded.history_plan.pk]))
                page.wait_for_load_state("networkidle")
                assert page.get_by_test_id("history-session").count() >= 2
                failures += _inspect(page, axe, f"{size} history")
                for name, rows in (
                    ("pilots:plan_list", "plan-row"),
                    ("decisions:portfolio", "portfolio-row"),
                ):
                    page.goto(base + reverse(name) + "?q=zebra&sort=title")
                    page.wait_for_load_state("networkidle")
                    listed = page.get_by_test_id(rows)
                    assert listed.count() == 25, name
                    failures += _inspect(page, axe, f"{size} {name}, searched and sorted")
                    page.get_by_role("link", name="Next →").click()
                    page.wait_for_url("**page=2**")
                    assert listed.count() == 2, name
                    assert page.get_by_label("Search titles").input_value() == "zebra"
                    assert page.get_by_label("Sort by").input_value() == "title"
                    failures += _inspect(page, axe, f"{size} {name}, page 2")
            failures += [f"{size} {role}: {problem}" for problem in problems]
            page.close()
        finally:
            context.close()
    assert failures == [], "\n".join(failures)


def test_an_htmx_action_works_from_the_keyboard_and_focus_follows_the_swap(
    browser, live_server, seeded: Seeded, po
):
    """Tab to a section's Edit button, Enter: the form replaces the section and focus is on its
    first field. Tab to Save, Enter: the saved section replaces the form and focus is on its
    heading, not lost to the top of the page."""
    context = _signed_in(browser, live_server, po, SIZES["1366x768"])
    try:
        page = context.new_page()
        problems = _watch(page)
        page.goto(live_server.url + reverse("pilots:plan_detail", args=[seeded.draft.pk]))
        page.wait_for_load_state("networkidle")

        def focused(attribute: str) -> str:
            return (
                page.evaluate(
                    f"document.activeElement && document.activeElement.getAttribute('{attribute}')"
                )
                or ""
            )

        def tab_to(test: str, limit: int = 250) -> None:
            for _ in range(limit):
                page.keyboard.press("Tab")
                if test():
                    return
            raise AssertionError("never reached with Tab")

        tab_to(lambda: focused("data-testid") == "edit-cohort")
        page.keyboard.press("Enter")
        form = page.get_by_test_id("section-form-cohort")
        form.wait_for()
        # Playwright's own assertions (its injected script): a string given to
        # wait_for_function is eval'd by the page while it polls, which the Content-Security-
        # Policy refuses (the test then passed only when the first check already held).
        expect(form.locator(":focus")).to_have_count(1)
        tag = page.evaluate("document.activeElement.tagName")
        assert tag in ("INPUT", "SELECT", "TEXTAREA"), tag

        tab_to(lambda: page.evaluate("document.activeElement.textContent.trim()") == "Save")
        page.keyboard.press("Enter")
        page.get_by_test_id("edit-cohort").wait_for()
        expect(page.locator("#section-cohort-heading")).to_be_focused()
        assert problems == []
        page.close()
    finally:
        context.close()
