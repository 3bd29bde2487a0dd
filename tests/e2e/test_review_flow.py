"""Review, sign-off and the lifecycle in a real browser: a Product Owner, a Scrum Master and a
developer take a plan from Draft to Running; an edit after sign-off voids the readiness sign-off
and the page says so; a refused step explains itself."""

from __future__ import annotations

import os
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from pilots import services
from pilots.models import EntryCriterion, OnCallShift, PilotPlan, RollbackRehearsal
from pilots.review import REVIEWS
from pilots.services.lifecycle import plan_today
from tests.factories import checklist_answered

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = os.environ.get("SCREENSHOTS_DIR", "")


def _shot(page, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True)


def _meet_entry_criteria(plan, user):
    kind = services.row_kind("entry-criteria")
    for criterion in EntryCriterion.objects.filter(plan=plan):
        services.row_update(
            plan=plan, kind=kind, row_id=criterion.pk, user=user,
            expected_version=services.section_versions(plan=plan)["entry_criteria"],
            values={"status": "met", "evidence_url": "https://ci.example.com/1"},
        )  # fmt: skip


@pytest.fixture
def new_page(browser):
    contexts = []

    def make():
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def test_three_people_take_a_plan_from_draft_to_running(
    page, new_page, live_server, login, po, sm, developer
):
    team = po.memberships.get().team
    # The team's own date (not the machine's): near midnight UTC they differ, and the plan must
    # start after the day the PO starts it for the early-start question to be asked.
    local_today = timezone.now().astimezone(ZoneInfo(team.time_zone)).date()
    plan = services.plan_create_from_template(team=team, author=po, today=local_today)
    plan_url = f"{live_server.url}/plans/{plan.pk}/"

    # The PO submits the plan for review.
    login(page, po)
    page.goto(plan_url)
    # The lifecycle steps are the header's buttons; the state is the header's chip.
    lifecycle = page.get_by_test_id("lifecycle")
    state = page.locator("#plan-head .page-heading .chip-state")
    expect(state).to_have_text("Draft")
    # A plan fresh from the template has plan-health gaps: submitting asks for an override.
    lifecycle.get_by_test_id("step-open-submit").click()
    submit = lifecycle.get_by_test_id("step-form-submit")
    expect(submit.get_by_test_id("step-question")).to_contain_text("Plan health lists open gaps")
    submit.get_by_test_id("override-gaps").check()
    submit.get_by_label("Reason for the reviewers").fill("Ready for review; on-call comes next.")
    submit.get_by_role("button", name="Submit for review").click()
    # The header under the title follows without a reload (it listens for planChanged).
    expect(state).to_have_text("In review")

    # Approving now is refused, and the page says exactly why.
    lifecycle.get_by_test_id("step-open-approve").click()
    approve = lifecycle.get_by_test_id("step-approve")
    expect(approve.get_by_role("button", name="Approve", exact=True)).to_be_disabled()
    expect(approve).to_contain_text("The business review is not signed off.")
    expect(approve).to_contain_text("Entry criteria not met or waived")
    _shot(page, "review-refused-approve")
    if SCREENSHOTS:
        lifecycle.screenshot(path=f"{SCREENSHOTS}/lifecycle-refused.png")

    _meet_entry_criteria(plan, sm)

    # The Scrum Master fills in the readiness review and signs it.
    sm_page = new_page()
    login(sm_page, sm)
    sm_page.goto(plan_url)
    readiness = sm_page.get_by_test_id("review-readiness")
    readiness.get_by_test_id("edit-review-readiness").click()
    form = readiness.get_by_test_id("review-form-readiness")
    form.get_by_label("Notes").fill("On-call roster agreed with support.")
    for key, _question in REVIEWS["readiness"].checklist:
        form.get_by_test_id(f"question-q_{key}").get_by_label("Yes").check()
    form.get_by_role("button", name="Save").click()
    expect(readiness.get_by_test_id("review-notes")).to_have_text(
        "On-call roster agreed with support."
    )
    readiness.get_by_test_id("sign-readiness").click()
    expect(readiness.get_by_test_id("signoff-active")).to_contain_text(sm.display_name)

    # The developer and the PO answered their checklists earlier (every question: yes).
    checklist_answered(plan, "feasibility", "business")

    # The developer signs feasibility.
    dev_page = new_page()
    login(dev_page, developer)
    dev_page.goto(plan_url)
    feasibility = dev_page.get_by_test_id("review-feasibility")
    feasibility.get_by_test_id("sign-feasibility").click()
    expect(feasibility.get_by_test_id("signoff-active")).to_contain_text(developer.display_name)

    # The PO signs business.
    page.reload()
    business = page.get_by_test_id("review-business")
    business.get_by_test_id("sign-business").click()
    expect(business.get_by_test_id("signoff-active")).to_contain_text(po.display_name)

    # The developer edits a risk after the sign-off: the readiness sign-off is void.
    services.row_add(
        plan=plan, kind=services.row_kind("risks"), user=developer,
        expected_version=services.section_versions(plan=plan)["risks"],
        values={"description": "Card vault latency", "likelihood": "low", "impact": "medium"},
    )  # fmt: skip
    sm_page.reload()
    readiness = sm_page.get_by_test_id("review-readiness")
    expect(readiness.get_by_test_id("signoff-voided")).to_contain_text(
        f"Risks was edited by {developer.display_name}"
    )
    expect(sm_page.get_by_test_id("rereview-needed")).to_contain_text("readiness")
    _shot(sm_page, "review-voided")
    if SCREENSHOTS:
        sm_page.get_by_test_id("lifecycle").screenshot(path=f"{SCREENSHOTS}/lifecycle-voided.png")
        readiness.screenshot(path=f"{SCREENSHOTS}/readiness-voided.png")
    readiness.get_by_test_id("sign-readiness").click()
    expect(readiness.get_by_test_id("signoff-active")).to_contain_text(sm.display_name)
    expect(sm_page.get_by_test_id("rereview-needed")).to_have_count(0)

    # The PO approves.
    page.reload()
    lifecycle = page.get_by_test_id("lifecycle")
    lifecycle.get_by_test_id("step-open-approve").click()
    lifecycle.get_by_test_id("step-form-approve").get_by_role("button", name="Approve").click()
    expect(state).to_have_text("Approved")

    # On-call coverage and a rehearsal, then the PO starts the pilot.
    plan.refresh_from_db()
    OnCallShift.objects.create(
        plan=plan, person=sm, starts_on=plan.start_date, ends_on=plan.end_date
    )
    RollbackRehearsal.objects.create(plan=plan, outcome="passed")
    page.reload()
    lifecycle = page.get_by_test_id("lifecycle")
    # The start date is next Monday: starting today asks first and moves it.
    lifecycle.get_by_test_id("step-open-start").click()
    start = lifecycle.get_by_test_id("step-form-start")
    start.get_by_test_id("confirm-early-start").check()
    start.get_by_role("button", name="Start the pilot").click()
    expect(state).to_have_text("Running")
    _shot(page, "review-running")
    # Every step is in the plan's History, in words, by person and role.
    page.get_by_test_id("history-link").click()
    history = page.get_by_test_id("history")
    expect(history).to_contain_text("Moved the plan from Draft to In review")
    expect(history).to_contain_text("Moved the plan from Approved to Running")
    expect(history).to_contain_text(f"{po.display_name} (Product Owner)")
    _shot(page, "history")
    plan.refresh_from_db()
    assert plan.status == PilotPlan.Status.RUNNING
    assert plan.start_date == plan_today(plan)
