"""The page shell in a real browser: every page at 1440×900 and at 390×844 (an iPhone's width),
with realistic data. On the phone nothing scrolls sideways; no page logs a console error or
fails a request; the navigation folds behind a Menu toggle that opens without JavaScript's
help; pages carry no inline script, event handler or style attribute (a strict
Content-Security-Policy holds); an HTMX save announces itself in a toast."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from accounts.api_keys import api_key_create
from accounts.models import (
    ApiKey,
    Notification,
    TeamHoliday,
    User,
    WebhookDelivery,
    WebhookSubscription,
)
from pilots.models import PilotPlan, PlanGuest
from tests.e2e.test_monitoring import check_runs, realistic_rollups
from tests.factories import PASSWORD, PilotPlanFactory, UserFactory, running_plan

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}

# What a page may not contain in its HTML for a strict CSP (script-src 'self'; style-src 'self'):
# an inline <script> that runs (JSON data blocks do not), an on… handler, a style attribute.
INLINE = re.compile(
    r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>|<[^>]*\s(on[a-z]+|style)\s*=", re.I
)


@dataclass
class Shell:
    plan: PilotPlan  # running, Europe/Berlin, with metrics, checks, episodes
    draft: PilotPlan
    key: ApiKey
    pages: list[tuple[str, str]]  # (name, path)


@pytest.fixture
def shell(team, po, sm, developer, devops, stakeholder) -> Shell:
    now = timezone.now()
    plan = running_plan(
        team=team, owner=po, start_date=(now - dt.timedelta(days=10)).date(), business_days=20,
        time_zone="Europe/Berlin",
        title="Saved cards for returning shoppers in Region A, opt-in only (second iteration)",
    )  # fmt: skip
    realistic_rollups(plan, days=9, now=now)
    check_runs(plan, days=3, now=now)
    draft = PilotPlanFactory(team=team, owner=po, title="One-page checkout")
    TeamHoliday.objects.create(team=team, date=now.date() + dt.timedelta(days=30), name="Founders")
    key, _ = api_key_create(
        team=team, name="Grafana exporter", scopes=ApiKey.Scope.values, created_by=po
    )
    subscription = WebhookSubscription.objects.create(
        team=team, name="Ops receiver", secret="whsec_eA==", events=["trigger.fired"],
        url="https://hooks.example.com/pilotplan/alerts/a-rather-long-path", created_by=po,
    )  # fmt: skip
    delivery = WebhookDelivery.objects.create(
        subscription=subscription, message_id="msg_1", event="trigger.fired", payload={},
        attempts=1, delivered_at=now, last_status=200, last_duration_ms=84,
        response_excerpt="ok",
    )  # fmt: skip
    PlanGuest.objects.create(plan=plan, user=UserFactory(email="guest@example.test"), invited_by=po)
    Notification.objects.create(
        user=po,
        kind=Notification.Kind.TRIGGER_FIRED,
        url=reverse("metrics:alerts", args=[plan.pk]),
        message=f"Rollback trigger fired on “{plan.title}”: p95 latency above 300 ms for 30 min",
    )
    scope_item = plan.scope_items.first()
    assert scope_item is not None

    def at(name: str, *args: object, query: str = "") -> str:
        return reverse(name, args=args) + query

    pages = [
        ("home", at("home")),
        ("plan list", at("pilots:plan_list")),
        ("new plan", at("pilots:plan_new")),
        ("plan (running): the cockpit", at("pilots:plan_detail", plan.pk)),
        ("plan document (running)", at("pilots:plan_document", plan.pk)),
        ("plan (draft)", at("pilots:plan_detail", draft.pk)),
        ("review", at("pilots:plan_review", plan.pk)),
        ("guests", at("pilots:plan_guests", plan.pk)),
        ("print", at("pilots:plan_print", plan.pk)),
        ("rows", at("pilots:row_list", plan.pk, "exit-criteria")),
        ("remove a row", at("pilots:row_remove", plan.pk, "scope-items", scope_item.pk)),
        ("section edit", at("pilots:section_edit", plan.pk, "cohort")),
        ("portfolio", at("decisions:portfolio")),
        ("my work", at("decisions:my_work")),
        ("holidays", at("pilots:team_holidays", team.pk)),
        ("teams", at("accounts:team_list")),
        ("api keys", at("accounts:api_key_list", team.pk)),
        ("revoke a key", at("accounts:api_key_revoke", team.pk, key.pk)),
        ("notifications", at("accounts:notification_list")),
        ("your settings", at("accounts:token_list")),
        ("metric catalogue", at("catalogue:metric_list", team.pk)),
        ("webhooks", at("metrics:webhooks", team.pk)),
        ("webhook", at("metrics:webhook_detail", team.pk, subscription.pk)),
        ("redeliver", at("metrics:webhook_redeliver", team.pk, subscription.pk, delivery.pk)),
        ("webhooks help", at("metrics:webhooks_help")),
        ("monitoring", at("metrics:monitoring", plan.pk)),
        ("decision", at("decisions:decision", plan.pk)),
        ("monitoring, 24 h", at("metrics:monitoring", plan.pk, query="?span=24h")),
        ("checks", at("metrics:checks", plan.pk)),
        ("alerts", at("metrics:alerts", plan.pk)),
        ("sample upload", at("metrics:sample_upload", plan.pk)),
        ("backlog", at("backlog:backlog", team.pk)),
        ("participants", at("backlog:participants", plan.pk)),
        ("feedback", at("backlog:feedback", plan.pk)),
        ("change control", at("backlog:change_control", plan.pk)),
        ("rollback", at("decisions:rollback", plan.pk)),
    ]
    return Shell(plan=plan, draft=draft, key=key, pages=pages)


def _watch(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Console errors, uncaught exceptions and failed requests, as they happen."""
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda error: problems.append(f"exception: {error}"))
    page.on(
        "response",
        lambda r: problems.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None,
    )
    return problems


def _log_in(page, base: str, user: User) -> None:  # type: ignore[no-untyped-def]
    page.goto(base + reverse("accounts:login"))
    page.get_by_label("E-mail").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(base + reverse("home"))


def _overflow(page) -> list[str]:  # type: ignore[no-untyped-def]
    """What sticks out to the right of the viewport (for the failure message); not what sits
    inside a frame that scrolls or clips it."""
    return page.evaluate(
        """() => {
          const framed = e => { for (let a = e.parentElement; a; a = a.parentElement)
              if (getComputedStyle(a).overflowX !== 'visible') return true; return false; };
          return Array.from(document.querySelectorAll('body *'))
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !framed(e))
            .slice(0, 5).map(e => e.tagName.toLowerCase() + '.' + e.className);
        }"""
    )


def test_every_page_fits_a_phone_and_a_desktop_without_console_errors(
    browser, live_server, po, shell
):
    base = live_server.url
    desktop = browser.new_context(viewport=DESKTOP)
    desktop.set_default_timeout(15_000)
    _log_in(desktop.new_page(), base, po)
    phone = browser.new_context(viewport=PHONE, storage_state=desktop.storage_state())
    phone.set_default_timeout(15_000)
    failures: list[str] = []
    try:
        for size, context in (("1440", desktop), ("390", phone)):
            page = context.new_page()
            problems = _watch(page)
            for name, path in shell.pages:
                problems.clear()
                response = page.goto(base + path)
                assert response is not None
                page.wait_for_load_state("networkidle")  # the panels HTMX loads, the charts
                if response.status != 200:
                    failures.append(f"{size} {name}: HTTP {response.status}")
                if INLINE.search(response.text()):
                    failures.append(f"{size} {name}: inline script, handler or style")
                width, viewport = page.evaluate(
                    "[document.documentElement.scrollWidth, window.innerWidth]"
                )
                if width > viewport:
                    failures.append(
                        f"{size} {name}: {width} px wide in {viewport} px: {_overflow(page)}"
                    )
                failures.extend(f"{size} {name}: {problem}" for problem in problems)
            page.close()
    finally:
        phone.close()
        desktop.close()
    assert failures == []


def test_the_login_page_fits_a_phone(browser, live_server, db):
    context = browser.new_context(viewport=PHONE)
    try:
        page = context.new_page()
        problems = _watch(page)
        page.goto(live_server.url + reverse("accounts:login"))
        expect(page.get_by_role("heading", name="Log in")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        expect(page.get_by_test_id("nav-toggle")).to_have_count(0)  # nothing to navigate yet
        assert problems == []
    finally:
        context.close()


def test_the_phone_menu_opens_to_every_destination_and_log_out(browser, live_server, po):
    context = browser.new_context(viewport=PHONE)
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        _log_in(page, live_server.url, po)
        links = page.get_by_role("navigation", name="Main")
        # Folded: the bell stays in the bar, the rest waits behind the Menu toggle.
        expect(page.get_by_test_id("bell")).to_be_visible()
        expect(page.get_by_test_id("logout")).to_be_hidden()
        expect(links.get_by_role("link", name="Portfolio")).to_be_hidden()

        page.get_by_test_id("nav-toggle").click()
        for name in ("Home", "My work", "Pilots", "Portfolio", "Teams", "API"):
            expect(links.get_by_role("link", name=name, exact=True)).to_be_visible()
        expect(page.get_by_test_id("bell")).to_be_visible()
        expect(page.get_by_test_id("logout")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

        links.get_by_role("link", name="Portfolio").click()
        page.wait_for_url(f"**{reverse('decisions:portfolio')}")
        expect(page.get_by_role("heading", level=1)).to_have_text("Portfolio")
        expect(page.get_by_test_id("logout")).to_be_hidden()  # folded again on the new page

        page.keyboard.press("Escape")  # nothing open: Escape does no harm
        page.get_by_test_id("nav-toggle").click()
        page.get_by_test_id("logout").click()
        page.wait_for_url(re.compile(re.escape(reverse("accounts:login")) + "$"))
    finally:
        context.close()


def test_on_a_desktop_the_navigation_is_all_in_the_bar(browser, live_server, po):
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        _log_in(page, live_server.url, po)
        expect(page.get_by_test_id("nav-toggle")).to_be_hidden()
        bar = page.get_by_role("navigation", name="Main")
        for name in ("Home", "My work", "Pilots", "Portfolio", "Teams", "API"):
            expect(bar.get_by_role("link", name=name, exact=True)).to_be_visible()
        expect(bar.get_by_role("link", name="Home", exact=True)).to_have_attribute(
            "aria-current", "page"
        )
        # The home page loads what waits for the person on top (HTMX, after the page).
        expect(page.get_by_test_id("my-work-summary")).to_be_visible()
        expect(page.get_by_test_id("bell")).to_be_visible()
        expect(page.get_by_test_id("logout")).to_be_visible()
    finally:
        context.close()


def test_a_saved_section_announces_itself_in_a_toast(browser, live_server, team, po):
    plan = PilotPlanFactory(team=team, owner=po, title="One-page checkout")
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        problems = _watch(page)
        _log_in(page, live_server.url, po)
        page.goto(live_server.url + reverse("pilots:plan_detail", args=[plan.pk]))
        page.get_by_test_id("edit-overview").click()
        form = page.get_by_test_id("section-form-overview")
        form.get_by_label("Summary").fill("Prove that a one-page checkout converts better.")
        form.get_by_role("button", name="Save").click()

        toast = page.get_by_test_id("toasts").get_by_test_id("toast")
        expect(toast).to_have_text(re.compile(r"^Overview saved\."))
        expect(toast).to_have_class(re.compile(r"\btoast-success\b"))
        toast.get_by_role("button", name="Dismiss").click()
        expect(toast).to_have_count(0)
        assert problems == []
    finally:
        context.close()


def test_times_on_the_plan_pages_carry_the_zone(browser, live_server, po, shell):
    """A Berlin plan in December: its sign-off and check times read CET, never bare UTC."""
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        _log_in(page, live_server.url, po)
        page.goto(live_server.url + reverse("metrics:checks", args=[shell.plan.pk]))
        first = page.get_by_test_id("check-run").first.locator("summary time")
        expect(first).to_have_text(re.compile(r"^\w{3} \d{1,2} \w{3} \d{4}, \d\d:\d\d CES?T$"))
        page.goto(live_server.url + reverse("metrics:alerts", args=[shell.plan.pk]))
        fired = page.get_by_test_id("episode-row").first.locator("td").nth(2)
        expect(fired).to_have_text(re.compile(r"\d\d:\d\d CES?T$"))
    finally:
        context.close()


def test_no_page_has_a_serious_accessibility_violation(browser, live_server, po, shell):
    """axe-core (the engine of the browsers' accessibility audits) on every page, after HTMX has
    loaded its panels: no violation of impact serious or critical."""
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(15_000)
    failures: list[str] = []
    try:
        page = context.new_page()
        _log_in(page, live_server.url, po)
        for name, path in shell.pages:
            page.goto(live_server.url + path)
            page.wait_for_load_state("networkidle")
            results = axe.run(page).response
            for violation in results["violations"]:
                if violation["impact"] in ("serious", "critical"):
                    targets = [n["target"] for n in violation["nodes"][:3]]
                    failures.append(f"{name}: {violation['id']} ({violation['impact']}) {targets}")
    finally:
        context.close()
    assert failures == [], "\n".join(failures)
