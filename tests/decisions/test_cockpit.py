"""The run cockpit (``plans/<id>/cockpit``): Running and Evaluating plans open on it, it shows the
time-box, the recommendation, on-call, the latest check, each criterion's verdict with "needs about
… more", the triggers and the open episodes; it refreshes its body for HTMX; it is 404 to those
who may not see the plan; and its query count stays the same whatever the plan's history."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from metrics.models import CheckRun, TriggerEpisode
from pilots.models import OnCallShift, PilotPlan, PlanGuest, RollbackTrigger
from tests.decisions.decision_data import decision_plan
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

Status = PilotPlan.Status


def cockpit_url(plan: PilotPlan) -> str:
    return reverse("decisions:cockpit", args=[plan.pk])


def plan_url(plan: PilotPlan) -> str:
    return reverse("pilots:plan_detail", args=[plan.pk])


@pytest.fixture
def plan(team, po, sm) -> PilotPlan:
    plan = decision_plan(team=team, owner=po, criteria=4, runs=5)
    today = timezone.localdate()
    OnCallShift.objects.filter(plan=plan).delete()
    OnCallShift.objects.create(plan=plan, person=sm, starts_on=today, ends_on=today)
    OnCallShift.objects.create(
        plan=plan, person_name="Ops Olga", starts_on=today + dt.timedelta(days=1),
        ends_on=today + dt.timedelta(days=3),
    )  # fmt: skip
    return plan


def _html(response) -> str:  # type: ignore[no-untyped-def]
    return response.content.decode()


# --- where a plan opens ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [Status.RUNNING, Status.EVALUATING])
def test_running_and_evaluating_plans_open_on_the_cockpit(client_for, po, plan, status):
    PilotPlan.objects.filter(pk=plan.pk).update(status=status)
    response = client_for(po).get(plan_url(plan))
    assert response.status_code == 302
    assert response["Location"] == cockpit_url(plan)


@pytest.mark.parametrize(
    "status", [Status.DRAFT, Status.IN_REVIEW, Status.APPROVED, Status.DECIDED, Status.CLOSED]
)
def test_other_plans_open_on_the_document_and_the_cockpit_sends_them_there(
    client_for, po, plan, status
):
    PilotPlan.objects.filter(pk=plan.pk).update(status=status)
    client = client_for(po)
    page = client.get(plan_url(plan))
    assert page.status_code == 200
    html = _html(page)
    assert 'data-testid="section-index"' in html and 'data-testid="plan-health"' in html
    assert 'data-testid="cockpit-link"' not in html
    assert client.get(cockpit_url(plan))["Location"] == plan_url(plan)
    htmx = client.get(cockpit_url(plan), headers={"HX-Request": "true"})
    assert htmx["HX-Redirect"] == plan_url(plan)


def test_the_document_of_a_running_plan_is_one_tab_away(client_for, po, plan):
    client = client_for(po)
    cockpit = _html(client.get(cockpit_url(plan)))
    document = reverse("pilots:plan_document", args=[plan.pk])
    assert f'href="{document}" data-testid="document-link"' in cockpit
    assert f'href="{cockpit_url(plan)}" data-testid="cockpit-link" aria-current="page"' in cockpit
    page = client.get(document)
    assert page.status_code == 200
    assert 'data-testid="section-overview"' in _html(page)


# --- what it shows ----------------------------------------------------------------------------


def test_the_cockpit_shows_the_run_at_a_glance(client_for, po, sm, plan):
    response = client_for(po).get(cockpit_url(plan))
    assert response.status_code == 200
    html = _html(response)
    # The time-box, the recommendation and the way to the decision page.
    assert 'data-testid="days-left"' in html and "business days left" in html
    assert 'data-testid="cockpit-decision"' in html
    assert f'href="{reverse("decisions:decision", args=[plan.pk])}"' in html
    # Each exit criterion's latest verdict, in words.
    assert html.count('data-testid="criterion-row"') == 4
    assert "Not enough evidence" in html or "Met" in html
    # On call now, and who comes next.
    assert 'data-testid="on-call-now"' in html and sm.display_name in html
    assert "Next: Ops Olga" in html
    # The latest check with its result and the link to every check.
    latest = CheckRun.objects.filter(plan=plan).order_by("-due_at").first()
    assert latest is not None
    assert (
        f"{latest.met} met · {latest.not_met} not met · "
        f"{latest.not_enough_evidence} not enough evidence"
    ) in html
    assert reverse("metrics:checks", args=[plan.pk]) in html
    # The triggers' states; the lifecycle in the header (loaded by HTMX), not a page-wide form.
    assert 'data-testid="triggers-card"' in html
    assert f"{reverse('pilots:plan_lifecycle', args=[plan.pk])}?in=header" in html
    assert "End the time-box" not in html


def test_an_overdue_pilot_says_so(client_for, po, team):
    plan = decision_plan(team=team, owner=po, criteria=2, runs=2, started_days_ago=40)
    assert plan.end_date is not None and plan.end_date < timezone.localdate()
    html = _html(client_for(po).get(cockpit_url(plan)))
    assert 'data-testid="overdue"' in html and "Overdue by" in html


def test_nobody_on_call_is_said_in_red_words(client_for, po, plan):
    OnCallShift.objects.filter(plan=plan).delete()
    html = _html(client_for(po).get(cockpit_url(plan)))
    assert 'data-testid="on-call-none"' in html and "Nobody is on call today." in html


def test_an_open_episode_shows_with_its_acknowledge_button(client_for, po, plan):
    trigger = RollbackTrigger.objects.filter(plan=plan).first()
    assert trigger is not None
    fired = timezone.now() - dt.timedelta(minutes=10)
    episode = TriggerEpisode.objects.create(
        plan=plan, trigger=trigger, description=str(trigger), breach_started_at=fired,
        fired_at=fired, value=512.0,
    )  # fmt: skip
    html = _html(client_for(po).get(cockpit_url(plan)))
    assert 'data-testid="trigger-banner"' in html and 'data-testid="acknowledge"' in html
    assert reverse("metrics:alert_acknowledge", args=[plan.pk, episode.pk]) in html


def test_htmx_gets_the_body_alone_which_refreshes_itself(client_for, po, plan):
    response = client_for(po).get(cockpit_url(plan), headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = _html(response)
    assert html.lstrip().startswith('<section id="cockpit"')
    assert "<html" not in html and 'data-testid="plan-head"' not in html
    assert 'hx-trigger="every 60s, planChanged from:body, episodesChanged from:body' in html


# --- who may see it ---------------------------------------------------------------------------


def test_an_outsider_gets_404_and_an_anonymous_visitor_the_login_page(
    client, client_for, outsider, plan
):
    assert client_for(outsider).get(cockpit_url(plan)).status_code == 404
    assert client_for(outsider).get(plan_url(plan)).status_code == 404  # no redirect that tells
    response = client.get(cockpit_url(plan))
    assert response.status_code == 302 and "/login" in response["Location"]


def test_a_stakeholder_and_a_guest_read_it_without_acting(client_for, po, stakeholder, plan):
    trigger = RollbackTrigger.objects.filter(plan=plan).first()
    assert trigger is not None
    fired = timezone.now() - dt.timedelta(minutes=10)
    TriggerEpisode.objects.create(
        plan=plan, trigger=trigger, description=str(trigger), breach_started_at=fired,
        fired_at=fired, value=512.0,
    )  # fmt: skip
    guest = UserFactory(email="guest@example.test")
    PlanGuest.objects.create(plan=plan, user=guest, invited_by=po)
    for reader in (stakeholder, guest):
        response = client_for(reader).get(cockpit_url(plan))
        assert response.status_code == 200
        html = _html(response)
        assert 'data-testid="cockpit-criteria"' in html
        assert 'data-testid="read-only"' in html
        assert 'data-testid="acknowledge"' not in html
        assert 'data-testid="upload-samples-link"' not in html
        # The header's lifecycle buttons answer readers with none.
        steps = client_for(reader).get(
            reverse("pilots:plan_lifecycle", args=[plan.pk]) + "?in=header",
            headers={"HX-Request": "true"},
        )
        assert 'data-testid="step-' not in _html(steps)


# --- cost -------------------------------------------------------------------------------------


def _queries(client, plan: PilotPlan, **headers: str) -> int:  # type: ignore[no-untyped-def]
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(cockpit_url(plan), headers=headers).status_code == 200
    return len(ctx.captured_queries)


def test_the_query_count_does_not_grow_with_criteria_check_runs_or_shifts(
    client_for, team, po, sm, django_assert_max_num_queries
):
    client = client_for(po)
    small = decision_plan(team=team, owner=po, criteria=2, runs=5)
    big = decision_plan(team=team, owner=po, criteria=8, runs=60)
    today = timezone.localdate()
    for n in range(10):
        OnCallShift.objects.create(
            plan=big, person=sm, starts_on=today + dt.timedelta(days=n),
            ends_on=today + dt.timedelta(days=n),
        )  # fmt: skip
    _queries(client, small)  # warm caches (sessions, content types)
    counts = [_queries(client, p) for p in (small, big)]
    assert counts[0] == counts[1], counts
    with django_assert_max_num_queries(35):
        client.get(cockpit_url(big))
    # The HTMX refresh: the body alone costs no more than the page.
    with django_assert_max_num_queries(35):
        client.get(cockpit_url(big), headers={"HX-Request": "true"})
