"""The portfolio: every visible plan across the user's teams, filters, and constant queries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Membership, TeamHoliday
from pilots.models import PilotPlan, SignOff
from pilots.review import REVIEWS
from pilots.selectors import plan_days_left
from tests.factories import MembershipFactory, PilotPlanFactory, TeamFactory

pytestmark = pytest.mark.django_db

URL = reverse("decisions:portfolio")


def _rows(response) -> int:  # type: ignore[no-untyped-def]
    return response.content.decode().count('data-testid="portfolio-row"')


@pytest.fixture
def second_team(po):
    """Another team the PO also belongs to (as a developer)."""
    team = TeamFactory(name="Payments", slug="payments")
    MembershipFactory(team=team, user=po, role=Membership.Role.DEVELOPER)
    return team


def test_lists_plans_of_every_team_of_the_user_and_no_others(
    team, second_team, other_team, po, outsider, client_for
):
    PilotPlanFactory(team=team, owner=po, title="Checkout pilot")
    PilotPlanFactory(team=second_team, owner=po, title="Payments pilot")
    PilotPlanFactory(team=other_team, owner=outsider, title="Secret pilot")

    response = client_for(po).get(URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Checkout pilot" in html and "Payments pilot" in html
    assert "Secret pilot" not in html
    assert _rows(response) == 2


def test_outsider_sees_only_their_own_teams_plans(team, po, outsider, client_for):
    PilotPlanFactory(team=team, owner=po, title="Checkout pilot")
    response = client_for(outsider).get(URL)
    assert "Checkout pilot" not in response.content.decode()
    assert _rows(response) == 0


def test_filters_by_team_and_state(team, second_team, po, client_for):
    PilotPlanFactory(team=team, owner=po, title="Alpha")
    running = PilotPlanFactory(team=team, owner=po, title="Bravo")
    PilotPlan.objects.filter(pk=running.pk).update(status=PilotPlan.Status.IN_REVIEW)
    PilotPlanFactory(team=second_team, owner=po, title="Charlie")
    client = client_for(po)

    by_team = client.get(URL, {"team": second_team.pk}).content.decode()
    by_state = client.get(URL, {"state": "in_review"}).content.decode()
    both = client.get(URL, {"team": team.pk, "state": "draft"}).content.decode()

    assert "Charlie" in by_team and "Alpha" not in by_team and "Bravo" not in by_team
    assert "Bravo" in by_state and "Alpha" not in by_state and "Charlie" not in by_state
    assert "Alpha" in both and "Bravo" not in both and "Charlie" not in both


def test_bad_filter_values_are_ignored(team, po, client_for):
    PilotPlanFactory(team=team, owner=po, title="Alpha")
    response = client_for(po).get(URL, {"team": "x", "state": "nonsense"})
    assert response.status_code == 200
    assert _rows(response) == 1


def test_shows_sign_off_status_health_and_days_left(team, po, sm, client_for):
    plan = PilotPlanFactory(team=team, owner=po, title="Alpha")
    SignOff.objects.create(plan=plan, kind="business", signed_by=po, plan_version=1)
    SignOff.objects.create(plan=plan, kind="readiness", signed_by=sm, plan_version=1)
    voided = SignOff.objects.create(
        plan=plan, kind="feasibility", signed_by=sm, plan_version=1, voided_reason="edited"
    )
    SignOff.objects.filter(pk=voided.pk).update(voided_at=dt.datetime.now(dt.UTC))

    html = client_for(po).get(URL).content.decode()

    assert "2/3 signed" in html
    assert "gap" in html  # an empty plan has gaps
    assert '<td data-testid="days-left">—</td>' in html


def test_days_left_counts_business_days_to_the_end_of_a_running_time_box(team, po):
    TeamHoliday.objects.create(team=team, date=dt.date(2026, 3, 4))
    plan = PilotPlanFactory(team=team, owner=po)
    PilotPlan.objects.filter(pk=plan.pk).update(
        status=PilotPlan.Status.RUNNING,
        start_date=dt.date(2026, 2, 23),
        end_date=dt.date(2026, 3, 13),  # the Friday after next
    )
    plan = (
        PilotPlan.objects.select_related("team").prefetch_related("team__holidays").get(pk=plan.pk)
    )

    # Mon 2 … Fri 13 March: 10 business days, less the holiday on Wednesday the 4th.
    assert plan_days_left(plan, today=dt.date(2026, 3, 2)) == 9  # a Monday


def test_days_left_is_none_unless_running(team, po):
    plan = PilotPlanFactory(team=team, owner=po)
    plan.start_date, plan.end_date = dt.date(2026, 3, 2), dt.date(2026, 3, 13)
    assert plan_days_left(plan) is None


@pytest.mark.parametrize("count", [3, 30])
def test_query_count_is_constant(team, po, sm, client_for, django_assert_num_queries, count):
    for i in range(count):
        plan = PilotPlanFactory(team=team, owner=po, title=f"Plan {i}")
        SignOff.objects.create(plan=plan, kind="business", signed_by=po, plan_version=1)
    client = client_for(po)
    client.get(URL)

    # Session, user, the pager's count, the page's ids, the plans, the team filter. The plans
    # load with what plan health reads (pilots.selectors.plan_health_queryset) and their
    # sign-offs in their own query: EXISTS flags, arrays and counts, no query per list.
    with django_assert_num_queries(6):
        response = client.get(URL)

    assert _rows(response) == min(count, 25)
    assert f"1/{len(REVIEWS)} signed" in response.content.decode()


def test_anonymous_is_sent_to_login():
    response = Client().get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_criteria_met_come_from_the_latest_done_check(team, po, client_for):
    from metrics.models import CheckRun

    checked = PilotPlanFactory(team=team, owner=po, title="Checked")
    PilotPlanFactory(team=team, owner=po, title="Never checked")
    at = dt.datetime(2026, 11, 23, 9, tzinfo=dt.UTC)
    day = dt.date(2026, 11, 23)
    CheckRun.objects.create(
        plan=checked, due_at=at, local_date=day, local_time=dt.time(10), status="done",
        met=2, not_met=2, not_enough_evidence=1,
    )  # fmt: skip
    CheckRun.objects.create(
        plan=checked, due_at=at + dt.timedelta(hours=6), local_date=day, local_time=dt.time(16),
        status="done", met=4, not_met=0, not_enough_evidence=1,
    )  # fmt: skip
    CheckRun.objects.create(  # not run yet: does not count
        plan=checked, due_at=at + dt.timedelta(days=1), local_date=day + dt.timedelta(days=1),
        local_time=dt.time(10), status="pending",
    )  # fmt: skip

    html = client_for(po).get(URL).content.decode()

    cells = html.split('<td data-testid="criteria">')[1:]
    assert len(cells) == 2
    assert any("4/5 met" in cell.split("</td>")[0] for cell in cells)
    assert any(cell.startswith("—</td>") for cell in cells)
    assert "2/5 met" not in html
