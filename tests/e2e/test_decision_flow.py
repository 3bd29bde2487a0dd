"""The end of a pilot, end to end in a real browser, each person in their own session:

the Product Owner reads the decision page (recommendation Go) and records Roll back against it —
the override reason is demanded — which opens the rollback checklist; the DevOps lead (the plan's
rollback executor) works it through, step by step, verifies the metric and ends the rollback; the
Scrum Master writes and completes the post-pilot review; the Product Owner closes the pilot, and
the closed plan shows its review.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from decisions.models import DecisionRecord, PostPilotReview, RollbackRun
from pilots.models import PilotPlan
from tests.conftest import settle
from tests.decisions.decision_data import decision_plan, entry_criteria_met

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def session_for(browser, live_server, login):  # type: ignore[no-untyped-def]
    """A page logged in as ``user``, in a browser context of its own."""
    contexts = []

    def open_as(user):  # type: ignore[no-untyped-def]
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.errors = errors  # type: ignore[attr-defined]
        login(page, user)
        return page

    yield open_as
    for context in contexts:
        for page in context.pages:
            settle(page)
        context.close()


def test_decide_against_the_recommendation_roll_back_review_and_close(
    session_for, live_server, team, po, sm, devops
):
    plan = decision_plan(team=team, owner=po, criteria=3, runs=6, rollback_executor=devops)
    entry_criteria_met(plan, po)
    steps = plan.rollback_steps.count()
    assert steps >= 2
    base = f"{live_server.url}/plans/{plan.pk}"

    # --- the Product Owner decides, against the recommendation ------------------------------
    owner = session_for(po)
    owner.goto(f"{base}/decision")
    expect(owner.get_by_test_id("recommendation")).to_have_attribute("data-value", "go")
    form = owner.get_by_test_id("record-form")
    form.get_by_label("Roll back").check()
    expect(owner.get_by_test_id("override-required")).to_be_visible()
    form.get_by_label("Rationale").fill("Support tickets doubled on older Android devices.")
    owner.evaluate(
        "document.querySelector('textarea[name=override_reason]').removeAttribute('required')"
    )
    owner.get_by_test_id("record-review").click()
    expect(owner.get_by_test_id("override-error")).to_contain_text("needs an override reason")
    owner.get_by_label("Override reason").fill("The tickets are not in the exit criteria.")
    owner.get_by_test_id("record-review").click()
    owner.get_by_test_id("record-confirm-button").click()
    owner.wait_for_url(f"**/plans/{plan.pk}/decision#decision-history")
    expect(owner.get_by_test_id("override-reason")).to_contain_text("not in the exit criteria")

    record = DecisionRecord.objects.get(plan=plan)
    assert (record.outcome, record.recommendation) == ("roll_back", "go")
    run = RollbackRun.objects.get(plan=plan, decision=record)
    assert run.ended_at is None

    # --- the DevOps lead works the rollback checklist -----------------------------------------
    executor = session_for(devops)
    executor.goto(f"{base}/rollback")
    checklist = executor.get_by_test_id("rollback-step")
    expect(checklist).to_have_count(steps + 1)  # the plan's steps, then the verification
    expect(executor.get_by_test_id("communication-plan")).to_be_visible()
    # Ending early is refused while steps are open.
    for n in range(steps):
        step = checklist.nth(n)
        if n == 1:  # one step skipped, with its reason
            step.locator("textarea[name=note]").fill("The cache was already empty.")
            step.get_by_test_id("mark-skipped").click()
            expect(checklist.nth(n)).to_have_attribute("data-status", "skipped")
        else:
            step.get_by_test_id("mark-done").click()
            expect(checklist.nth(n)).to_have_attribute("data-status", "done")
    verification = checklist.last
    expect(verification.get_by_test_id("verification")).to_be_visible()
    verification.get_by_test_id("mark-done").click()
    expect(checklist.last).to_have_attribute("data-status", "done")
    executor.get_by_test_id("end-open").click()
    executor.get_by_test_id("end").click()
    expect(executor.get_by_test_id("end-open")).to_have_count(0)
    run.refresh_from_db()
    assert run.ended_by == devops and run.ended_at is not None
    assert executor.errors == []  # type: ignore[attr-defined]

    # --- the Scrum Master writes and completes the post-pilot review --------------------------
    scrum = session_for(sm)
    scrum.goto(f"{base}/post-pilot-review")
    review_form = scrum.get_by_test_id("review-form")
    review_form.get_by_label("Findings").fill("Older Android WebViews break the card form.")
    review_form.get_by_label("What went well").fill("The rollback took 12 minutes.")
    review_form.get_by_label("What to improve").fill("Test on the oldest supported devices.")
    scrum.get_by_test_id("review-complete").click()
    expect(scrum.get_by_test_id("review-completed")).to_contain_text("Completed by")
    assert PostPilotReview.objects.get(plan=plan).completed_by == sm

    # --- the Product Owner closes the pilot ---------------------------------------------------
    owner.goto(f"{base}/")
    # Closing is the header's primary step; it says it cannot be undone before its confirm button.
    owner.get_by_test_id("step-open-close").click()
    expect(owner.get_by_test_id("step-form-close")).to_contain_text("cannot be reopened")
    owner.get_by_test_id("step-confirm-close").click()
    expect(owner.get_by_test_id("step-form-close")).to_have_count(0)
    plan.refresh_from_db()
    assert plan.status == PilotPlan.Status.CLOSED
    assert plan.decision == "roll_back"
    owner.goto(f"{base}/")
    expect(owner.get_by_test_id("review-panel")).to_contain_text("Older Android WebViews")
    assert owner.errors == []  # type: ignore[attr-defined]
