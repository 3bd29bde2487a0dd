"""A check run on demand: by the plan's PO or SM, from the checks page and over the API, recorded
beside the scheduled checks without taking a slot's key or moving the schedule."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from core.exceptions import Conflict
from metrics import checks
from metrics.models import CheckRun
from pilots.models import PlanGuest
from tests.factories import PilotPlanFactory, UserFactory, running_plan
from tests.metrics.test_checks_support import store

pytestmark = pytest.mark.django_db

UTC = dt.UTC
MONDAY = dt.date(2025, 1, 6)
TEN = dt.datetime(2025, 1, 6, 10, tzinfo=UTC)  # the plan's 10:00 check (UTC plan)


@pytest.fixture
def plan(team, po):  # type: ignore[no-untyped-def]
    plan = running_plan(team=team, owner=po, start_date=MONDAY)
    store(plan, "p1_defects", [(dt.datetime(2025, 1, 6, 2, tzinfo=UTC), 0)])
    return plan


def api_url(plan) -> str:  # type: ignore[no-untyped-def]
    return f"/api/v1/plans/{plan.pk}/check-runs"


def test_the_po_runs_a_check_over_the_api_and_the_worker_executes_it(client_for, po, plan):
    response = client_for(po).post(api_url(plan))

    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["trigger"], body["status"], body["results"]) == ("on_demand", "pending", [])
    assert body["requested_by"]["email"] == po.email
    run = CheckRun.objects.get(pk=body["id"])
    assert checks.check_run_execute(run_id=run.pk)
    done = client_for(po).get(f"{api_url(plan)}/{run.pk}").json()
    assert done["status"] == "done" and len(done["results"]) == 5
    assert done["met"] == 1


@pytest.mark.parametrize("role", ["po", "sm"])
def test_the_po_and_sm_may_run_a_check(request, client_for, plan, role):
    user = request.getfixturevalue(role)
    assert client_for(user).post(api_url(plan)).status_code == 202


@pytest.mark.parametrize("role", ["developer", "devops", "stakeholder"])
def test_other_roles_are_refused_with_403_and_nothing_is_queued(request, client_for, plan, role):
    user = request.getfixturevalue(role)
    response = client_for(user).post(api_url(plan))

    assert response.status_code == 403
    assert (
        response.json()["detail"]
        == "Only the team's Product Owner or Scrum Master can run a check now."
    )
    assert not CheckRun.objects.filter(plan=plan).exists()


def test_outsiders_get_404_and_invited_guests_403(client_for, plan, po, outsider):
    assert client_for(outsider).post(api_url(plan)).status_code == 404
    guest = UserFactory(email="guest@example.test")
    PlanGuest.objects.create(plan=plan, user=guest, invited_by=po)
    assert client_for(guest).post(api_url(plan)).status_code == 403
    assert not CheckRun.objects.exists()


def test_a_second_request_while_one_waits_is_refused_with_409(client_for, po, sm, plan):
    assert client_for(po).post(api_url(plan)).status_code == 202
    again = client_for(sm).post(api_url(plan))

    assert again.status_code == 409
    assert again["Content-Type"] == "application/problem+json"
    assert "already waiting" in json.loads(again.content)["detail"]
    run = CheckRun.objects.get(plan=plan)
    checks.check_run_execute(run_id=run.pk)
    assert client_for(sm).post(api_url(plan)).status_code == 202  # done: another may be asked


def test_a_plan_that_is_not_running_is_refused_with_409(client_for, po, team):
    draft = PilotPlanFactory(team=team, owner=po)
    response = client_for(po).post(api_url(draft))

    assert response.status_code == 409
    assert "while the pilot is running" in response.json()["detail"]


def test_a_run_on_demand_at_a_slots_instant_takes_no_slot(plan, po):
    on_demand = checks.check_run_request(plan=plan, user=po, now=TEN)
    claimed = checks.tick_process(now=TEN)

    assert len(claimed) == 1
    scheduled = CheckRun.objects.get(pk=claimed[0])
    assert scheduled.due_at == on_demand.due_at == TEN
    assert (scheduled.trigger, on_demand.trigger) == ("scheduled", "on_demand")


def test_a_run_on_demand_does_not_move_the_schedule(plan, po):
    """Asked for at 10:30, after the 10:00 slot but before the tick claimed it: the tick still
    claims 10:00, on time for its slot (not hidden behind the newer on-demand run)."""
    checks.check_run_request(plan=plan, user=po, now=TEN + dt.timedelta(minutes=30))
    claimed = checks.tick_process(now=TEN + dt.timedelta(minutes=31))

    assert [CheckRun.objects.get(pk=pk).due_at for pk in claimed] == [TEN]


def test_the_service_refuses_before_the_time_box(plan, po):
    with pytest.raises(Conflict, match="starts on Mon 6 Jan 2025"):
        checks.check_run_request(plan=plan, user=po, now=TEN - dt.timedelta(days=1))


# --- the checks page -----------------------------------------------------------------------------


def page_url(plan) -> str:  # type: ignore[no-untyped-def]
    return f"/plans/{plan.pk}/checks"


def test_the_page_offers_the_button_with_a_confirmation_to_the_po_only(
    client_for, po, developer, plan
):
    html = client_for(po).get(page_url(plan)).content.decode()
    assert 'data-testid="run-check"' in html and "hx-confirm=" in html
    assert (
        'data-testid="run-check"' not in client_for(developer).get(page_url(plan)).content.decode()
    )


def test_running_a_check_from_the_page_shows_it_in_the_history(
    client_for, po, plan, django_assert_max_num_queries
):
    client = client_for(po)
    response = client.post(f"{page_url(plan)}/run")
    assert response.status_code == 302 and response["Location"] == page_url(plan)
    checks.check_run_execute(run_id=CheckRun.objects.get(plan=plan).pk)

    with django_assert_max_num_queries(8):
        html = client.get(page_url(plan)).content.decode()
    assert "Check queued" in html
    assert 'data-testid="on-demand"' in html
    assert f"asked for by {po.display_name}" in html


def test_the_page_says_why_a_second_request_is_refused(client_for, po, plan):
    client = client_for(po)
    client.post(f"{page_url(plan)}/run")
    html = client.post(f"{page_url(plan)}/run", follow=True).content.decode()

    assert "already waiting for the worker" in html
    assert CheckRun.objects.filter(plan=plan).count() == 1


def test_other_roles_cannot_run_a_check_from_the_page(client_for, developer, outsider, plan):
    assert client_for(developer).post(f"{page_url(plan)}/run").status_code == 403
    assert client_for(outsider).post(f"{page_url(plan)}/run").status_code == 404
    assert not CheckRun.objects.exists()
