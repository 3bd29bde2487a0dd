"""Plan authoring in a real browser: a Product Owner builds the seed's example plan and watches
plan health go green without a page load; two editors save the same section and nobody's work is
lost."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

from pilots.models import PilotPlan
from pilots.services import plan_create_from_template

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Set to a folder to keep screenshots of the plan page (for looking at the UI).
SCREENSHOTS = os.environ.get("SCREENSHOTS_DIR", "")


def _shot(page, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True)


def _add_form(rows, label):
    """A list's add form, unfolded if the list keeps it folded away."""
    form = rows.get_by_test_id("row-add-form")
    if not form.is_visible():
        # A list refreshes itself after another list of its section changed: let that swap
        # finish, or the click unfolds the list it replaces.
        rows.page.wait_for_load_state("networkidle")
        rows.locator("summary", has_text=f"Add {label}").click()
    return form


def _gaps(page):
    return page.get_by_test_id("plan-health").get_by_test_id("gap")


def test_po_builds_the_example_plan_and_watches_plan_health_go_green(
    page, live_server, login, po, sm, devops
):
    login(page, po)
    page.get_by_role("link", name="Pilots", exact=True).click()
    page.get_by_test_id("new-plan").click()
    page.get_by_test_id("start-template").get_by_role(
        "button", name="Start from the template"
    ).click()

    page.wait_for_url(re.compile(r"/plans/\d+/$"))
    plan = PilotPlan.objects.get()
    expect(page.get_by_role("heading", level=1)).to_have_text("Saved cards pilot (from template)")
    health = page.get_by_test_id("plan-health")
    expect(health).to_contain_text("Cohort consent is not recorded.")
    expect(health).to_contain_text("No pilot environment is named.")
    expect(_gaps(page)).to_have_count(5)
    _shot(page, "plan-from-template")
    page.evaluate("window.__marker = 'same page'")  # survives only if no full page load happens

    # Cohort: consent and feedback channel, edited in place.
    cohort = page.get_by_test_id("section-cohort")
    cohort.get_by_test_id("edit-cohort").click()
    form = cohort.get_by_test_id("section-form-cohort")
    form.get_by_label("Consent recorded").check()
    form.get_by_label("Feedback channel").fill("#pilot-saved-cards")
    _shot(page, "cohort-editing")
    form.get_by_role("button", name="Save").click()
    expect(cohort.get_by_test_id("section-form-cohort")).to_have_count(0)
    expect(cohort).to_contain_text("#pilot-saved-cards")
    expect(health).not_to_contain_text("Cohort consent is not recorded.")
    expect(health).not_to_contain_text("No feedback channel.")
    expect(_gaps(page)).to_have_count(3)

    # Environment and data: name the pilot environment.
    environment = page.get_by_test_id("section-environment")
    environment.get_by_test_id("edit-environment").click()
    environment.get_by_label("Environment", exact=True).fill("pilot-eu-1")
    environment.get_by_role("button", name="Save").click()
    expect(environment).to_contain_text("pilot-eu-1")
    expect(health).not_to_contain_text("No pilot environment is named.")
    expect(_gaps(page)).to_have_count(2)

    # Monitoring: one on-call shift over the whole window (a row of the on-call list).
    on_call = page.get_by_test_id("rows-on-call")
    add = _add_form(on_call, "on-call shift")
    add.get_by_role("combobox", name="Person").select_option(label=devops.display_name)
    add.get_by_label("Starts on").fill(plan.start_date.isoformat())
    add.get_by_label("Ends on").fill(plan.end_date.isoformat())
    add.get_by_role("button", name="Add on-call shift").click()
    expect(on_call.get_by_test_id("row")).to_have_count(1)
    expect(health).not_to_contain_text("On-call coverage misses")

    # Rollback: record a rehearsal.
    rehearsals = page.get_by_test_id("rows-rehearsals")
    add = _add_form(rehearsals, "rehearsal")
    add.get_by_label("Outcome").select_option("passed")
    add.get_by_role("button", name="Add rehearsal").click()
    expect(rehearsals.get_by_test_id("row")).to_have_count(1)

    expect(health.get_by_test_id("plan-complete")).to_be_visible()
    expect(_gaps(page)).to_have_count(0)
    assert page.evaluate("window.__marker") == "same page"
    _shot(page, "plan-complete")

    plan.cohort.refresh_from_db()
    plan.environment.refresh_from_db()
    assert plan.cohort.consent_recorded and plan.cohort.feedback_channel == "#pilot-saved-cards"
    assert plan.environment.environment == "pilot-eu-1"


def test_gap_links_lead_to_their_section(page, live_server, login, po):
    plan = plan_create_from_template(team=po.teams.get(), author=po)
    login(page, po)
    page.goto(f"{live_server.url}/plans/{plan.pk}/")

    page.get_by_test_id("plan-health").get_by_role("link", name="Environment and data").click()

    expect(page).to_have_url(re.compile(r"#section-environment$"))
    expect(page.get_by_test_id("section-environment")).to_be_in_viewport()


def test_second_editor_of_a_section_gets_the_conflict_and_keeps_their_typing(
    browser, live_server, login, po, sm
):
    plan = plan_create_from_template(team=po.teams.get(), author=po)
    pages = {}
    for name, user in (("po", po), ("sm", sm)):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(10_000)
        pages[name] = context.new_page()
        login(pages[name], user)
        pages[name].goto(f"{live_server.url}/plans/{plan.pk}/")
        pages[name].get_by_test_id("edit-cohort").click()
        expect(pages[name].get_by_test_id("section-form-cohort")).to_be_visible()

    po_form = pages["po"].get_by_test_id("section-form-cohort")
    po_form.get_by_label("Feedback channel").fill("#po-channel")
    po_form.get_by_role("button", name="Save").click()
    expect(pages["po"].get_by_test_id("section-cohort")).to_contain_text("#po-channel")

    sm_form = pages["sm"].get_by_test_id("section-form-cohort")
    sm_form.get_by_label("Feedback channel").fill("#sm-channel")
    sm_form.get_by_label("Description").fill("SM's description of the cohort")
    sm_form.get_by_role("button", name="Save").click()

    sm_cohort = pages["sm"].get_by_test_id("section-cohort")
    expect(sm_cohort.get_by_test_id("section-conflict")).to_contain_text(
        f"Cohort was changed by {po.display_name} while you were editing"
    )
    expect(sm_cohort.get_by_test_id("section-conflict")).to_contain_text(
        "Your changes were not saved."
    )
    expect(sm_cohort.get_by_test_id("theirs-feedback_channel")).to_contain_text("#po-channel")
    sm_form = pages["sm"].get_by_test_id("section-form-cohort")
    expect(sm_form.get_by_label("Feedback channel")).to_have_value("#sm-channel")
    expect(sm_form.get_by_label("Description")).to_have_value("SM's description of the cohort")
    _shot(pages["sm"], "conflict")

    plan.cohort.refresh_from_db()
    assert plan.cohort.feedback_channel == "#po-channel"
    assert plan.cohort.description == "200 internal users in Region A, opt-in only"

    # Having seen the PO's values, the SM saves again on purpose: now it is the SM's.
    sm_form.get_by_role("button", name="Save").click()
    expect(sm_cohort).to_contain_text("#sm-channel")
    plan.cohort.refresh_from_db()
    assert plan.cohort.feedback_channel == "#sm-channel"
    for p in pages.values():
        p.context.close()


def test_stakeholder_reads_the_plan_without_edit_controls(
    page, live_server, login, po, stakeholder
):
    plan = plan_create_from_template(team=po.teams.get(), author=po)
    login(page, stakeholder)
    page.goto(f"{live_server.url}/plans/{plan.pk}/")

    expect(page.get_by_test_id("read-only")).to_be_visible()
    expect(page.get_by_test_id("section-scope")).to_contain_text("US-145")
    expect(page.get_by_role("button", name="Edit")).to_have_count(0)
    expect(page.get_by_text("Edit", exact=True)).to_have_count(0)
