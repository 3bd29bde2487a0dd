"""The check history in a real browser: runs fold open to their per-criterion results."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from playwright.sync_api import expect

from metrics import checks
from metrics.models import CheckRun
from tests.factories import running_plan
from tests.metrics.test_checks_support import store

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

UTC = dt.UTC
SCREENSHOTS = os.environ.get("SCREENSHOTS_DIR")


def test_a_stakeholder_browses_the_check_history(page, live_server, login, team, po, stakeholder):
    plan = running_plan(team=team, owner=po, start_date=dt.date(2025, 1, 6),
                        time_zone="America/New_York")  # fmt: skip
    store(plan, "p1_defects", [(dt.datetime(2025, 1, 6, 12, tzinfo=UTC), 0)])
    for day, late in ((dt.date(2025, 1, 6), False), (dt.date(2025, 1, 7), True)):
        run = CheckRun.objects.create(
            plan=plan, due_at=dt.datetime.combine(day, dt.time(15), UTC), local_date=day,
            local_time=dt.time(10), late=late,
        )  # fmt: skip
        checks.check_run_execute(run_id=run.pk)
    CheckRun.objects.create(plan=plan, due_at=dt.datetime(2025, 1, 6, 21, tzinfo=UTC),
                            local_date=dt.date(2025, 1, 6), local_time=dt.time(16),
                            status=CheckRun.Status.MISSED)  # fmt: skip

    login(page, stakeholder)
    page.goto(f"{live_server.url}/plans/{plan.pk}/checks")

    runs = page.get_by_test_id("check-run")
    expect(runs).to_have_count(3)
    newest, missed, oldest = runs.nth(0), runs.nth(1), runs.nth(2)
    expect(newest.locator("summary")).to_contain_text("Tue 7 Jan 2025, 10:00")
    expect(newest.get_by_test_id("late")).to_be_visible()
    # The newest done check is open; the others fold open on a click.
    expect(newest.get_by_test_id("check-result")).to_have_count(5)
    expect(newest.get_by_test_id("check-result").first).to_contain_text(
        "Total P1 defects 0 defects (n = 1) = 0 defects: met."
    )
    expect(oldest.get_by_test_id("check-results")).to_be_hidden()
    oldest.locator("summary").click()
    expect(oldest.get_by_test_id("check-result")).to_have_count(5)
    expect(missed.get_by_test_id("missed")).to_be_visible()
    missed.locator("summary").click()
    expect(missed).to_contain_text("Not run: the scheduler was down")
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, "check-history.png"), full_page=True)


def test_the_po_runs_a_check_now_after_confirming(page, live_server, login, team, po):
    plan = running_plan(team=team, owner=po, start_date=dt.date(2025, 1, 6))
    login(page, po)
    page.goto(f"{live_server.url}/plans/{plan.pk}/checks")

    # Dismissing the confirmation queues nothing; accepting it queues one run.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_test_id("run-check").click()
    expect(page.get_by_test_id("no-checks")).to_be_visible()
    assert not CheckRun.objects.filter(plan=plan).exists()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("run-check").click()
    run = page.get_by_test_id("check-run")
    expect(run).to_have_count(1)
    expect(run.get_by_test_id("on-demand")).to_be_visible()
    expect(run.get_by_test_id("pending")).to_be_visible()
    expect(run.get_by_test_id("requested-by")).to_contain_text(po.display_name)
    assert CheckRun.objects.get(plan=plan).trigger == CheckRun.Trigger.ON_DEMAND
