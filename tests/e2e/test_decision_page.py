"""The decision page in a real browser: at 1366×768 a plan with 8 exit criteria shows the
recommendation and the whole criteria table without scrolling; the decision owner records a
decision against the recommendation, the override reason is demanded (by the page, then by the
server), and the recorded decision shows it. With SCREENSHOTS_DIR set (e.g. docs/img) it keeps
``decision-page.png`` for the user guide."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from decisions.models import DecisionRecord
from tests.conftest import settle
from tests.decisions.decision_data import decision_plan, entry_criteria_met

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = os.environ.get("SCREENSHOTS_DIR", "")


@pytest.fixture
def laptop(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    settle(page)
    context.close()


def test_eight_criteria_fit_above_the_fold_and_an_override_needs_its_reason(
    laptop, live_server, login, team, po
):
    page = laptop
    plan = decision_plan(team=team, owner=po, criteria=8, runs=20, time_zone="Europe/Berlin")
    entry_criteria_met(plan, po)
    problems: list[str] = []
    # The refused form comes back as 422 (by design): the browser logs that status, nothing else.
    page.on(
        "console",
        lambda m: problems.append(m.text) if m.type == "error" and "422" not in m.text else None,
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    login(page, po)

    # From the plan page's tabs to the decision page.
    page.goto(f"{live_server.url}/plans/{plan.pk}/")
    page.get_by_test_id("decision-link").click()
    page.wait_for_url(f"**/plans/{plan.pk}/decision")
    recommendation = page.get_by_test_id("recommendation")
    expect(recommendation).to_have_attribute("data-value", "go")
    expect(recommendation).to_contain_text("Go")

    # Above the fold: the chip, the criteria table's last row and the key cards.
    rows = page.get_by_test_id("criterion-row")
    expect(rows).to_have_count(8)
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, "decision-page.png"))
    fold = page.viewport_size["height"]  # type: ignore[index]
    for locator in (recommendation, rows.last, page.get_by_test_id("triggers-card")):
        box = locator.bounding_box()
        assert box is not None and box["y"] + box["height"] <= fold, (locator, box, fold)
    assert page.evaluate("window.scrollY") == 0

    # Against the recommendation (Go): Iterate. The page marks the override reason required…
    form = page.get_by_test_id("record-form")
    expect(page.get_by_test_id("override-required")).to_be_hidden()
    form.get_by_label("Iterate").check()
    expect(page.get_by_test_id("override-required")).to_be_visible()
    form.get_by_label("Rationale").fill("Conversion is flat; the next iteration tests the copy.")
    # … and the server demands it even when the browser's check is bypassed.
    page.evaluate(
        "document.querySelector('textarea[name=override_reason]').removeAttribute('required')"
    )
    page.get_by_test_id("record-review").click()
    expect(page.get_by_test_id("override-error")).to_contain_text("needs an override reason")
    expect(form.get_by_label("Rationale")).to_have_value(
        "Conversion is flat; the next iteration tests the copy."
    )
    expect(form.get_by_label("Iterate")).to_be_checked()

    page.get_by_label("Override reason").fill("Sales asked for one more round with new copy.")
    page.get_by_test_id("record-review").click()
    confirm = page.get_by_test_id("record-confirm")
    expect(confirm).to_contain_text("This cannot be undone.")
    expect(confirm).to_contain_text("Sales asked for one more round")
    assert not DecisionRecord.objects.filter(plan=plan).exists()
    page.get_by_test_id("record-confirm-button").click()
    page.wait_for_url(f"**/plans/{plan.pk}/decision#decision-history")

    record = DecisionRecord.objects.get(plan=plan)
    assert (record.outcome, record.recommendation) == ("iterate", "go")
    history = page.get_by_test_id("decision-history")
    expect(history.get_by_test_id("override-reason")).to_contain_text(
        "Sales asked for one more round with new copy."
    )
    expect(page.get_by_test_id("recorded-decision")).to_contain_text("override")

    # The frozen evidence, on its own page.
    history.get_by_test_id("frozen-link").first.click()
    expect(page.get_by_test_id("frozen-record")).to_contain_text("Iterate")
    expect(page.get_by_test_id("criterion-row")).to_have_count(8)
    assert problems == []


def test_a_comment_appends_without_a_reload_and_the_page_prints(
    laptop, live_server, login, team, po, developer
):
    page = laptop
    plan = decision_plan(team=team, owner=po, criteria=2, runs=4)
    login(page, developer)
    page.goto(f"{live_server.url}/plans/{plan.pk}/decision")
    page.evaluate("window.__marker = 1")
    page.get_by_role("textbox", name="Comment").fill("p95 looks steady since Tuesday.")
    page.get_by_role("button", name="Add comment").click()
    expect(page.get_by_test_id("comment")).to_have_count(1)
    expect(page.get_by_test_id("comment")).to_contain_text("p95 looks steady since Tuesday.")
    expect(page.get_by_role("textbox", name="Comment")).to_have_value("")
    assert page.evaluate("window.__marker") == 1  # no reload

    # On paper: no navigation, no forms, the rules table unfolded.
    page.emulate_media(media="print")
    expect(page.locator("header.app-bar")).to_be_hidden()
    expect(page.get_by_test_id("plan-tabs")).to_be_hidden()
    expect(page.get_by_test_id("comment-form")).to_be_hidden()
    expect(page.get_by_test_id("criteria-table")).to_be_visible()
    expect(page.get_by_test_id("rules-table").locator("table")).to_be_visible()
