"""Editing the rows of a list section inline, in a real browser: add, reorder, fix an invalid
edit on the field, remove after confirming — without a page load."""

from __future__ import annotations

import os
import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from catalogue.models import MetricDefinition
from pilots import services
from pilots.models import ExitCriterion, PlanSection
from pilots.services import ROW_KINDS, section_versions
from tests.factories import PilotPlanFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = os.environ.get("SCREENSHOTS_DIR")


def _builtin(key, name, unit, kind, direction):
    # The catalogue is seeded by a migration, which a browser test's flush empties.
    metric, _ = MetricDefinition.objects.get_or_create(
        team=None, key=key, defaults={"name": name, "unit": unit, "kind": kind,
                                      "direction": direction},
    )  # fmt: skip
    return metric


def _shot(target, name):
    """Keep a screenshot of ``target`` (a page or a section) when SCREENSHOTS_DIR is set."""
    if SCREENSHOTS:
        target.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"))


def _add_form(rows, label):
    """The list's add form, unfolded (it is folded away under "Add <label>" on the plan page)."""
    form = rows.get_by_test_id("row-add-form")
    if not form.is_visible():
        # A list refreshes itself after another list of its section changed: let that swap
        # finish, or the click unfolds the list it replaces.
        rows.page.wait_for_load_state("networkidle")
        rows.locator("summary", has_text=f"Add {label}").click()
    expect(form).to_be_visible()
    return form


def test_exit_criteria_are_added_reordered_edited_and_removed_inline(
    page, live_server, login, team, po
):
    plan = PilotPlanFactory(team=team, owner=po, title="Saved cards pilot")
    p1 = _builtin("p1_defects", "P1 defects", "count", "count", "lower")
    csat = _builtin("csat", "CSAT", "score", "score", "higher")
    login(page, po)
    page.goto(f"{live_server.url}/plans/{plan.pk}/")
    page.evaluate("window.__marker = 'same page'")  # survives only if no full page load happens
    rows = page.get_by_test_id("rows-exit-criteria")
    expect(rows.get_by_test_id("rows-empty")).to_have_text(
        "No exit criteria yet — add the first one."
    )

    # Add two exit criteria.
    for metric, aggregation, comparator, threshold in [
        (p1, "total", "eq", "0"),
        (csat, "mean", "ge", "4.2"),
    ]:
        add = _add_form(rows, "exit criterion")
        add.get_by_role("combobox", name="Metric", exact=True).select_option(str(metric.pk))
        add.get_by_label("Aggregation").select_option(aggregation)
        add.get_by_label("Comparator").select_option(comparator)
        add.get_by_label("Threshold").fill(threshold)
        add.get_by_role("button", name="Add exit criterion").click()
        expect(rows.get_by_test_id("row").filter(has_text=metric.name)).to_be_visible()
    expect(rows.get_by_test_id("row")).to_have_count(2)
    _shot(page.get_by_test_id("section-exit_criteria"), "rows-added")

    # Reorder: CSAT first.
    rows.get_by_test_id("row").nth(1).get_by_role("button", name="Move up").click()
    expect(rows.get_by_test_id("row").first).to_contain_text(csat.name)
    assert list(
        ExitCriterion.objects.filter(plan=plan)
        .order_by("position")
        .values_list("metric", flat=True)
    ) == [csat.pk, p1.pk]

    # Edit with a bad threshold: the error is on the field; fix it.
    rows.get_by_test_id("row").first.get_by_role("link", name="Edit").click()
    form = rows.get_by_test_id("row-form")
    form.get_by_label("Threshold").fill("four point five")
    form.get_by_role("button", name="Save exit criterion").click()
    error = rows.get_by_test_id("row-form").locator(".field-error")
    expect(error).to_have_text("Enter a number.")
    expect(rows.get_by_test_id("row-form").get_by_label("Threshold")).to_have_attribute(
        "aria-invalid", "true"
    )
    _shot(page.get_by_test_id("section-exit_criteria"), "rows-invalid-edit")
    assert ExitCriterion.objects.get(plan=plan, metric=csat).threshold == Decimal("4.2")
    rows.get_by_test_id("row-form").get_by_label("Threshold").fill("4.5")
    rows.get_by_test_id("row-form").get_by_role("button", name="Save exit criterion").click()
    expect(rows.get_by_test_id("row-form")).to_have_count(0)
    expect(rows.get_by_test_id("row").first).to_contain_text("4.5")
    assert ExitCriterion.objects.get(plan=plan, metric=csat).threshold == Decimal("4.5")

    # Remove the P1 criterion after confirming.
    dialogs = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    rows.get_by_test_id("row").filter(has_text=p1.name).get_by_role("link", name="Remove").click()
    expect(rows.get_by_test_id("row")).to_have_count(1)
    assert re.match(r"Remove this exit criterion “P1 defects", dialogs[0])
    assert list(ExitCriterion.objects.filter(plan=plan).values_list("metric", "position")) == [
        (csat.pk, 1)
    ]
    assert page.evaluate("window.__marker") == "same page"
    _shot(page.get_by_test_id("section-exit_criteria"), "rows-after-remove")


def test_lists_of_one_section_stay_in_step_with_each_other(page, live_server, login, team, po):
    """Dashboards, on-call shifts and response SLAs share the monitoring section's version: after
    adding to one list, the others refresh theirs, so the next add is not refused as stale."""
    plan = PilotPlanFactory(team=team, owner=po, title="Saved cards pilot")
    login(page, po)
    page.goto(f"{live_server.url}/plans/{plan.pk}/")

    dashboards = page.get_by_test_id("rows-dashboards")
    add = _add_form(dashboards, "dashboard")
    add.get_by_role("textbox", name="Name").fill("P-01")
    add.get_by_role("textbox", name="Url").fill("https://grafana.example/d/p01")
    add.get_by_role("button", name="Add dashboard").click()
    expect(dashboards.get_by_test_id("row")).to_have_count(1)

    slas = page.get_by_test_id("rows-response-slas")
    version = str(PlanSection.objects.get(plan=plan, key="monitoring").version)
    expect(slas).to_have_attribute("data-version", version)  # refreshed by the other list's add
    add = _add_form(slas, "response SLA")
    expect(add.locator('input[name="version"]')).to_have_value(version)
    add.get_by_role("combobox", name="Severity").select_option("p1")
    add.get_by_role("spinbutton", name="Response minutes").fill("15")
    add.get_by_role("button", name="Add response SLA").click()
    expect(slas.get_by_test_id("row")).to_have_count(1)
    expect(page.get_by_test_id("row-conflict")).to_have_count(0)
    assert plan.response_slas.get().response_minutes == 15
    _shot(page.get_by_test_id("section-monitoring"), "rows-monitoring")


@pytest.fixture
def page_without_js(browser):
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def test_rows_are_added_and_removed_without_javascript(
    page_without_js, live_server, login, team, po
):
    page = page_without_js
    plan = PilotPlanFactory(team=team, owner=po, title="Saved cards pilot")
    login(page, po)
    page.goto(f"{live_server.url}/plans/{plan.pk}/")

    scope = page.get_by_test_id("rows-scope-items")
    # Folded away on the plan page, the add form is a link to the list's own page.
    scope.locator("summary", has_text="Add scope item").click()
    scope.get_by_role("link", name="Open the form to add scope item").click()
    add = page.get_by_test_id("row-add-form")
    add.get_by_role("combobox", name="Kind").select_option("excluded")
    add.get_by_role("textbox", name=re.compile(r"^Title")).fill("Payment gateways")
    add.get_by_role("button", name="Add scope item").click()
    # refused: an excluded item needs its reason — on the list's own page, on the field
    expect(page.locator(".field-error")).to_have_text(
        "Say why this item is excluded from the pilot."
    )
    page.get_by_role("textbox", name=re.compile(r"^Reason")).fill("Separate pilot in Q3")
    page.get_by_role("button", name="Add scope item").click()

    page.wait_for_url(re.compile(rf"/plans/{plan.pk}/document#section-scope$"))
    row = page.get_by_test_id("rows-scope-items").get_by_test_id("row")
    expect(row).to_contain_text("Payment gateways")

    row.get_by_role("link", name="Remove").click()
    expect(page.get_by_role("heading", name="Remove this scope item?")).to_be_visible()
    page.get_by_role("button", name="Remove scope item").click()
    page.wait_for_url(re.compile(rf"/plans/{plan.pk}/document#section-scope$"))
    expect(page.get_by_test_id("rows-scope-items").get_by_test_id("rows-empty")).to_be_visible()
    assert not plan.scope_items.exists()


def _risks(plan, po, n):  # type: ignore[no-untyped-def]
    for i in range(n):
        services.row_add(
            plan=plan,
            kind=ROW_KINDS["risks"],
            user=po,
            expected_version=section_versions(plan=plan)["risks"],
            values={"description": f"Risk {i}", "likelihood": "low", "impact": "low"},
        )


def test_a_long_list_shows_its_first_rows_and_show_all_loads_the_rest(
    page, live_server, login, team, po
):
    plan = PilotPlanFactory(team=team, owner=po, title="Saved cards pilot")
    _risks(plan, po, 14)
    login(page, po)
    page.goto(f"{live_server.url}/plans/{plan.pk}/")
    page.evaluate("window.__marker = 'same page'")
    risks = page.get_by_test_id("rows-risks")
    expect(risks.get_by_test_id("row")).to_have_count(10)
    expect(risks.get_by_test_id("rows-more")).to_contain_text("Showing 10 of 14 risks.")
    _shot(page.get_by_test_id("section-risks"), "rows-first-ten")

    risks.get_by_role("link", name="Show all 14").click()
    expect(risks.get_by_test_id("row")).to_have_count(14)
    expect(risks.get_by_test_id("rows-more")).to_have_count(0)
    expect(risks.get_by_test_id("row").last).to_contain_text("Risk 13")

    # Adding to the expanded list keeps every row in view, the new one last.
    add = _add_form(risks, "risk")
    add.get_by_label("Description").fill("The newest risk")
    add.get_by_label("Likelihood").select_option("low")
    add.get_by_label("Impact").select_option("low")
    add.get_by_role("button", name="Add risk").click()
    expect(risks.get_by_test_id("row")).to_have_count(15)
    expect(risks.get_by_test_id("row").last).to_contain_text("The newest risk")
    assert page.evaluate("window.__marker") == "same page"


def test_show_all_works_without_javascript(browser, live_server, login, team, po):
    plan = PilotPlanFactory(team=team, owner=po, title="Saved cards pilot")
    _risks(plan, po, 12)
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        login(page, po)
        page.goto(f"{live_server.url}/plans/{plan.pk}/")
        risks = page.get_by_test_id("rows-risks")
        expect(risks.get_by_test_id("row")).to_have_count(10)
        risks.get_by_role("link", name="Show all 12").click()
        expect(page).to_have_url(re.compile(rf"/plans/{plan.pk}/document\?all=risks#rows-risks$"))
        expect(page.get_by_test_id("rows-risks").get_by_test_id("row")).to_have_count(12)
    finally:
        context.close()
