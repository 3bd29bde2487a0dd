"""The check history page, the "today's status" partial and the check-runs API: what they show,
who may read them, and a query count that does not grow with the history."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from metrics import checks
from metrics.models import CheckRun, CriterionResult
from pilots.models import PilotPlan, PlanGuest
from tests.factories import UserFactory, running_plan
from tests.metrics.test_checks_support import store

pytestmark = pytest.mark.django_db

UTC = dt.UTC
MONDAY = dt.date(2025, 1, 6)
KOLKATA = "Asia/Kolkata"  # +05:30: the 10:00 check is due at 04:30 UTC


def page_url(plan: PilotPlan) -> str:
    return f"/plans/{plan.pk}/checks"


def latest_url(plan: PilotPlan) -> str:
    return f"/plans/{plan.pk}/checks/latest"


def api_url(plan: PilotPlan, run_id: int | None = None) -> str:
    tail = f"/{run_id}" if run_id is not None else ""
    return f"/api/v1/plans/{plan.pk}/check-runs{tail}"


def history(plan: PilotPlan, days: int) -> None:
    """``days`` more business days of checks (from Monday, or after the last one): each day's
    10:00 done (late on the very first), the 16:00 missed."""
    last = CheckRun.objects.filter(plan=plan).order_by("-due_at").first()
    day, made = (last.local_date + dt.timedelta(days=1) if last else MONDAY), 0
    while made < days:
        if day.weekday() < 5:
            ten = dt.datetime.combine(day, dt.time(4, 30), UTC)
            run = CheckRun.objects.create(plan=plan, due_at=ten, local_date=day,
                                          local_time=dt.time(10), late=day == MONDAY)  # fmt: skip
            checks.check_run_execute(run_id=run.pk)
            CheckRun.objects.create(
                plan=plan, due_at=ten + dt.timedelta(hours=6), local_date=day,
                local_time=dt.time(16), status=CheckRun.Status.MISSED,
            )  # fmt: skip
            made += 1
        day += dt.timedelta(days=1)


@pytest.fixture
def plan(team, po):  # type: ignore[no-untyped-def]
    plan = running_plan(team=team, owner=po, start_date=MONDAY, time_zone=KOLKATA)
    store(plan, "p1_defects", [(dt.datetime(2025, 1, 6, 2, tzinfo=UTC), 0)])
    history(plan, 1)
    return plan


# --- the page ------------------------------------------------------------------------------------


def test_the_page_lists_runs_newest_first_in_the_plans_time_zone(client_for, po, plan):
    response = client_for(po).get(page_url(plan))
    assert response.status_code == 200
    html = response.content.decode()
    # 16:00 (missed) then 10:00 (done, late): local times of the plan's zone, not UTC.
    assert html.index("Mon 6 Jan 2025, 16:00") < html.index("Mon 6 Jan 2025, 10:00")
    assert ", 04:30<" not in html
    assert 'data-testid="missed"' in html and 'data-testid="late"' in html
    assert "1 met · 0 not met · 4 not enough evidence" in html
    assert "P1 defects total = 0 defects" in html
    assert "Total P1 defects 0 defects (n = 1) = 0 defects: met." in html
    assert 'datetime="2025-01-06T04:30:00+00:00"' in html


def test_the_page_is_paginated(client_for, po, plan):
    history(plan, 11)  # 24 runs in all
    client = client_for(po)
    first = client.get(page_url(plan)).content.decode()
    second = client.get(page_url(plan) + "?page=2").content.decode()
    assert first.count('data-testid="check-run"') == 20
    assert second.count('data-testid="check-run"') == 4
    assert "Page 2 of 2" in second and "Mon 6 Jan 2025, 10:00" in second


def test_the_page_reads_in_a_constant_number_of_queries(
    client_for, po, plan, django_assert_num_queries
):
    client = client_for(po)
    client.get(page_url(plan))
    # Session, user, plan, role, the count, the runs, their results.
    with django_assert_num_queries(7) as few:
        client.get(page_url(plan))
    history(plan, 15)
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(page_url(plan))
    assert response.content.decode().count('data-testid="check-result"') == 5 * 10


def test_the_partial_shows_the_latest_done_check(client_for, po, plan, django_assert_num_queries):
    client = client_for(po)
    client.get(latest_url(plan))
    # Session, user, plan, role, the run, its results.
    with django_assert_num_queries(6):
        response = client.get(latest_url(plan))
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    due = '<time datetime="2025-01-06T04:30:00+00:00">Mon 6 Jan 2025, 10:00 IST</time>'
    assert f"Check due {due}" in html
    assert html.count('data-testid="check-result"') == 5
    history(plan, 8)
    with django_assert_num_queries(6):
        client.get(latest_url(plan))


def test_the_partial_says_when_no_check_has_run(client_for, team, po):
    fresh = running_plan(team=team, owner=po, start_date=MONDAY)
    html = client_for(po).get(latest_url(fresh)).content.decode()
    assert 'data-testid="no-checks"' in html and "10:00 and 16:00 (UTC)" in html


def test_a_plan_without_checks_says_so(client_for, team, po):
    fresh = running_plan(team=team, owner=po, start_date=MONDAY)
    html = client_for(po).get(page_url(fresh)).content.decode()
    assert 'data-testid="no-checks"' in html


# --- who may read --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [page_url, latest_url])
def test_members_and_invited_guests_read_outsiders_get_404(
    client_for, plan, po, stakeholder, developer, outsider, path
):
    for user in (po, stakeholder, developer):
        assert client_for(user).get(path(plan)).status_code == 200
    assert client_for(outsider).get(path(plan)).status_code == 404
    guest = UserFactory(email="guest@example.test")
    assert client_for(guest).get(path(plan)).status_code == 404
    PlanGuest.objects.create(plan=plan, user=guest, invited_by=po)
    assert client_for(guest).get(path(plan)).status_code == 200


@pytest.mark.parametrize("path", [page_url, latest_url])
def test_anonymous_visitors_are_sent_to_log_in(plan, path):
    response = Client().get(path(plan))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.parametrize("path", [page_url, latest_url])
def test_the_pages_only_answer_get(client_for, po, plan, path):
    assert client_for(po).post(path(plan)).status_code == 405


# --- the API -------------------------------------------------------------------------------------


def test_the_api_lists_runs_newest_first_with_their_results(client_for, po, plan):
    response = client_for(po).get(api_url(plan))
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2 and body["next"] is None
    missed, done = body["results"]
    assert (missed["status"], missed["results"]) == ("missed", [])
    assert done["due_at"] == "2025-01-06T04:30:00Z"
    assert (done["local_date"], done["local_time"], done["late"]) == (
        "2025-01-06",
        "10:00:00",
        True,
    )
    assert (done["met"], done["not_met"], done["not_enough_evidence"]) == (1, 0, 4)
    first = done["results"][0]
    assert first == {
        "position": 1,
        "criterion": plan.exit_criteria.get(position=1).pk,
        "label": "P1 defects total = 0 defects",
        "comparator": "eq",
        "threshold": 0.0,
        "blocking": True,
        "value": 0.0,
        "low": 0.0,
        "high": 0.0,
        "sample_size": 1,
        "method": "exact_count",
        "verdict": "met",
        "reason": "Total P1 defects 0 defects (n = 1) = 0 defects: met.",
    }
    assert [r["position"] for r in done["results"]] == [1, 2, 3, 4, 5]


def test_the_api_returns_one_run(client_for, po, plan, team):
    run = CheckRun.objects.get(plan=plan, status="done")
    body = client_for(po).get(api_url(plan, run.pk)).json()
    assert body["id"] == run.pk and len(body["results"]) == 5
    # A run of another plan is not found through this plan.
    other = running_plan(team=team, owner=po, start_date=MONDAY)
    assert client_for(po).get(api_url(other, run.pk)).status_code == 404
    assert client_for(po).get(api_url(plan, 987654)).status_code == 404


def test_the_api_reads_in_a_constant_number_of_queries(
    client_for, po, plan, django_assert_num_queries
):
    client = client_for(po)
    with django_assert_num_queries(7) as few:
        client.get(api_url(plan))
    history(plan, 40)
    with django_assert_num_queries(len(few.captured_queries)):
        body = client.get(api_url(plan)).json()
    assert body["count"] == 82 and len(body["results"]) == 50
    assert CriterionResult.objects.count() == 41 * 5


def test_api_readers_and_refusals(client_for, plan, po, stakeholder, outsider):
    run = CheckRun.objects.get(plan=plan, status="done")
    for user in (po, stakeholder):
        assert client_for(user).get(api_url(plan)).status_code == 200
        assert client_for(user).get(api_url(plan, run.pk)).status_code == 200
    for path in (api_url(plan), api_url(plan, run.pk)):
        assert client_for(outsider).get(path).status_code == 404
        assert Client().get(path).status_code == 401
        assert client_for(po).put(path, {}).status_code == 405  # POST on the list: a check now
    guest = UserFactory(email="guest@example.test")
    PlanGuest.objects.create(plan=plan, user=guest, invited_by=po)
    assert client_for(guest).get(api_url(plan, run.pk)).status_code == 200
