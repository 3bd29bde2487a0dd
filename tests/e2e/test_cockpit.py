"""The run cockpit and the plan document in a real browser, at 1440×900, 1366×768 and 390×844: a
running plan opens on its cockpit, a draft on its document; nothing scrolls sideways on the
phone, no console error or failed request, and axe-core finds no serious or critical violation.
Then the page at work: a section folds away from the keyboard, an episode is acknowledged and the
lifecycle's "End the time-box" step (a header button, confirmed) updates the header in place."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from metrics.models import TriggerEpisode
from pilots.models import OnCallShift, PilotPlan, RollbackTrigger
from tests.e2e.test_monitoring import check_runs, realistic_rollups
from tests.factories import PilotPlanFactory, running_plan

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SIZES = {
    "1440": {"width": 1440, "height": 900},
    "1366": {"width": 1366, "height": 768},
    "390": {"width": 390, "height": 844},
}


@pytest.fixture
def plans(team, po, sm) -> tuple[PilotPlan, PilotPlan]:
    now = timezone.now()
    plan = running_plan(
        team=team, owner=po, start_date=(now - dt.timedelta(days=10)).date(), business_days=20,
        time_zone="Europe/Berlin",
        title="Saved cards for returning shoppers in Region A, opt-in only (second iteration)",
    )  # fmt: skip
    realistic_rollups(plan, days=9, now=now)
    check_runs(plan, days=3, now=now)
    today = timezone.localdate()
    OnCallShift.objects.create(plan=plan, person=sm, starts_on=today, ends_on=today)
    trigger = RollbackTrigger.objects.filter(plan=plan).first()
    assert trigger is not None
    fired = now - dt.timedelta(minutes=15)
    TriggerEpisode.objects.create(
        plan=plan, trigger=trigger, description=str(trigger), breach_started_at=fired,
        fired_at=fired, value=512.0,
    )  # fmt: skip
    draft = PilotPlanFactory(team=team, owner=po, title="One-page checkout")
    return plan, draft


def _watch(page) -> list[str]:  # type: ignore[no-untyped-def]
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"exception: {error}"))
    page.on(
        "response",
        lambda r: problems.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None,
    )
    return problems


def test_the_cockpit_and_the_draft_document_fit_every_size_cleanly(
    browser, live_server, login, po, plans
):
    from axe_playwright_python.sync_playwright import Axe

    plan, draft = plans
    axe = Axe()
    failures: list[str] = []
    for size, viewport in SIZES.items():
        context = browser.new_context(viewport=viewport)
        context.set_default_timeout(15_000)
        page = context.new_page()
        try:
            login(page, po)
            problems = _watch(page)
            for name, path, landing in (
                ("cockpit", f"/plans/{plan.pk}/", reverse("decisions:cockpit", args=[plan.pk])),
                ("draft", f"/plans/{draft.pk}/", f"/plans/{draft.pk}/"),
            ):
                problems.clear()
                page.goto(live_server.url + path)
                page.wait_for_load_state("networkidle")
                assert page.url == live_server.url + landing, (name, page.url)
                if name == "cockpit":
                    expect(page.get_by_test_id("cockpit")).to_be_visible()
                    expect(page.get_by_test_id("on-call-now")).to_be_visible()
                    expect(page.get_by_test_id("criterion-row").first).to_be_visible()
                    expect(page.get_by_test_id("acknowledge").first).to_be_visible()
                else:
                    expect(page.get_by_test_id("plan-health")).to_be_visible()
                    expect(page.get_by_test_id("step-open-submit")).to_be_visible()
                width, inner = page.evaluate(
                    "[document.documentElement.scrollWidth, window.innerWidth]"
                )
                if width > inner:
                    failures.append(f"{size} {name}: {width} px wide in {inner} px")
                failures.extend(f"{size} {name}: {problem}" for problem in problems)
                for violation in axe.run(page).response["violations"]:
                    if violation["impact"] in ("serious", "critical"):
                        targets = [n["target"] for n in violation["nodes"][:3]]
                        failures.append(f"{size} {name}: {violation['id']} {targets}")
        finally:
            context.close()
    assert failures == [], "\n".join(failures)


def test_a_section_folds_from_the_keyboard_and_the_index_unfolds_it(
    page, live_server, login, po, plans
):
    _plan, draft = plans
    login(page, po)
    page.goto(f"{live_server.url}/plans/{draft.pk}/")
    toggle = page.get_by_test_id("toggle-risks")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    section = page.get_by_test_id("section-risks")
    expect(section.locator(".row-list").first).to_be_hidden()
    page.keyboard.press("Space")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    page.get_by_test_id("section-index").get_by_role("link", name="Risks").click()
    expect(toggle).to_have_attribute("aria-expanded", "true")


def test_acknowledging_and_ending_the_time_box_update_the_page_in_place(
    page, live_server, login, po, plans
):
    plan, _draft = plans
    login(page, po)
    problems = _watch(page)
    page.goto(f"{live_server.url}/plans/{plan.pk}/")
    cockpit = page.get_by_test_id("cockpit")
    first = cockpit.get_by_test_id("episode").first.get_attribute("data-episode")
    episode = cockpit.locator(f'[data-episode="{first}"]')
    episode.get_by_test_id("acknowledge").click()
    expect(episode.get_by_test_id("episode-ack")).to_contain_text("Acknowledged by")

    # The header's secondary "End the time-box" opens its confirmation in place.
    page.get_by_test_id("step-open-evaluate").click()
    form = page.get_by_test_id("step-form-evaluate")
    expect(form.get_by_test_id("step-warning")).to_contain_text("cannot go back to Running")
    form.get_by_test_id("step-confirm-evaluate").click()
    expect(page.locator("#plan-head .page-heading .chip-state")).to_have_text("Evaluating")
    # The header's buttons follow the new state: the primary one records the decision.
    expect(page.get_by_test_id("lifecycle").get_by_test_id("decision-page-link")).to_be_visible()
    expect(page.get_by_test_id("step-open-evaluate")).to_have_count(0)
    expect(page.get_by_test_id("cockpit")).to_be_visible()
    plan.refresh_from_db()
    assert plan.status == PilotPlan.Status.EVALUATING
    assert problems == []
