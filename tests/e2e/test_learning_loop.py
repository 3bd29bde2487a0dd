"""The learning loop of issue #12 in one browser flow, with a real Celery worker:

a cohort member opts in through the plan's public enrolment link and leaves feedback from the
public feedback link (on a phone, no log-in); the Product Owner turns the comment into a backlog
item and drags it to the top of the team backlog; a P1 defect logged against the running pilot
fires the "any P1 defect" trigger, which the decision page shows; and the representativeness
check flags the cohort, which was built skewed for the test (30 in Region A, 3 in Region B
against 50 / 50)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from backlog.models import BacklogItem, ChangeControlEntry, Feedback, Participant
from backlog.services import backlog_item_create
from backlog.services_feedback import feedback_link_issue
from metrics.models import TriggerEpisode
from pilots.models import CohortSegment
from tests.backlog.participants_helpers import add, link
from tests.decisions.test_defects_worker import routed_to  # noqa: F401 - fixture
from tests.e2e.test_csp import RECORD_VIOLATIONS
from tests.factories import running_plan
from tests.metrics.test_tick_worker import broker, wait_for, worker  # noqa: F401 - fixtures

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
COMMENT = "The saved card was not offered at checkout."


def _drag_to_top(page: Page, row_text: str) -> None:
    rows = page.get_by_test_id("backlog-row")
    handle = rows.filter(has_text=row_text).locator(".drag-handle")
    box = rows.nth(0).bounding_box()
    assert box is not None
    handle.hover()
    page.mouse.down()
    page.mouse.move(box["x"] + 20, box["y"] + 4, steps=12)
    page.mouse.move(box["x"] + 20, box["y"] + 2, steps=4)
    page.mouse.up()


def test_opt_in_feedback_item_drag_p1_defect_and_a_skewed_cohort(  # type: ignore[no-untyped-def]
    routed_to,  # noqa: F811
    browser,
    live_server,
    login,
    team,
    po,
):
    # A running pilot (the seed's triggers: "P1 defects > 0, any occurrence"; the plan's zone is
    # UTC) whose cohort should be half Region A, half Region B — and is not.
    plan = running_plan(
        team=team, owner=po, start_date=timezone.now().date() - dt.timedelta(days=2),
        business_days=20, title="Saved cards",
    )  # fmt: skip
    CohortSegment.objects.filter(plan=plan).delete()  # the template's example segment
    for position, region in enumerate(("Region A", "Region B"), start=1):
        CohortSegment.objects.create(
            plan=plan, dimension="region", value=region, intended_share=50, position=position
        )
    for _ in range(30):
        add(plan, po, "Region A")
    for _ in range(2):
        add(plan, po, "Region B")
    enrolment = link(plan, po)
    feedback_link = feedback_link_issue(plan_id=plan.pk, user=po)
    for title in ("Save a card", "Remove a card"):
        backlog_item_create(team_id=team.pk, user=po, title=title)

    # A cohort member, on a phone: opts in, then answers through the feedback link.
    phone = browser.new_context(**PHONE)
    phone.set_default_timeout(10_000)
    phone.add_init_script(RECORD_VIOLATIONS)
    member = phone.new_page()
    try:
        member.goto(f"{live_server.url}/join/{enrolment.token}")
        member.get_by_label("Your name").fill("Ana Lima")
        member.get_by_label("Region").select_option("Region B")
        member.get_by_label("I agree to take part").check()
        member.get_by_test_id("join-submit").click()
        expect(member.get_by_test_id("join-done")).to_contain_text("you have joined the pilot")

        member.goto(f"{live_server.url}/f/{feedback_link.token}")
        member.locator("label.feedback-option", has_text="2 –").tap()
        member.get_by_label("Anything you would like to tell the team?").fill(COMMENT)
        member.get_by_role("button", name="Send feedback").tap()
        expect(member.get_by_test_id("feedback-thanks")).to_be_visible()
        assert member.evaluate("window.__csp") == []
    finally:
        phone.close()
    assert Participant.objects.get(name="Ana Lima").consent_method == "enrolment_link"

    page = browser.new_page()
    page.set_default_timeout(10_000)
    try:
        login(page, po)
        # The team turns the comment into a backlog item, linked both ways and logged.
        page.goto(f"{live_server.url}/plans/{plan.pk}/feedback")
        row = page.get_by_test_id("feedback-row").filter(has_text=COMMENT)
        row.get_by_test_id("feedback-to-item").click()
        made = page.get_by_test_id("feedback-row").filter(has_text=COMMENT)
        expect(made.get_by_test_id("feedback-item")).to_be_visible()
        item = BacklogItem.objects.get(origin=BacklogItem.Origin.FEEDBACK)
        expect(made.get_by_test_id("feedback-item")).to_contain_text(item.reference)
        assert Feedback.objects.get(comment=COMMENT).backlog_item_id == item.pk

        # … and drags it from the bottom to the top of the backlog.
        page.goto(f"{live_server.url}/teams/{team.pk}/backlog")
        rows = page.get_by_test_id("backlog-row")
        expect(rows).to_have_count(3)
        expect(rows.nth(2)).to_contain_text(item.title)
        _drag_to_top(page, item.title)
        expect(rows.nth(0)).to_contain_text(item.title)
        expect(rows.nth(0).locator("td").nth(2)).to_have_text("1")  # the server's order
        item.refresh_from_db()
        assert item.position == 1

        # A P1 defect logged against the running pilot, from its change-control log.
        page.goto(f"{live_server.url}/plans/{plan.pk}/decision")
        page.get_by_test_id("change-control-link").click()
        expect(page.get_by_test_id("change-control-entry")).to_contain_text(item.reference)
        page.get_by_test_id("log-defect").click()
        form = page.get_by_test_id("backlog-raise")
        form.get_by_label("Title").fill("Payment fails with a saved card")
        form.get_by_label("Type").select_option("defect")
        form.get_by_label("Severity").select_option("p1")
        form.get_by_role("button", name="Create backlog item").click()
        expect(page.get_by_test_id("change-control-entry")).to_have_count(2)
        trigger = plan.rollback_triggers.get(metric__key="p1_defects")
        assert wait_for(lambda: TriggerEpisode.objects.filter(trigger=trigger).exists()), (
            "the worker opened no episode for the P1 defect within 20 s"
        )

        # The decision page shows the fired trigger and the skewed cohort.
        page.goto(f"{live_server.url}/plans/{plan.pk}/decision")
        fired = page.locator('[data-testid="trigger"][data-state="fired"]')
        expect(fired).to_have_count(1)
        expect(fired).to_contain_text("P1")
        fit = page.get_by_test_id("cohort-fit").first
        expect(fit).to_have_attribute("data-status", "skewed")
        expect(fit).to_contain_text("Region A")
        # … and so does the plan page, above the document.
        page.goto(f"{live_server.url}/plans/{plan.pk}")
        expect(page.get_by_test_id("cohort-fit-skewed")).to_contain_text("Region")
    finally:
        page.close()
    assert ChangeControlEntry.objects.filter(plan=plan).count() == 2
