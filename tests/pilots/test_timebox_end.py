"""The time-box ends by itself (issue #10, finding 3): at the end of the last business day in the
plan's time zone the one-minute tick moves a running pilot to Evaluating, as a recorded step
without a person, and tells the owner. Extending is an explicit change with a reason."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from accounts.models import Notification
from core.exceptions import Conflict
from metrics import digest, tasks
from metrics.models import CheckRun
from pilots.models import PilotPlan, PlanTransition, TimeboxExtension
from pilots.selectors import plan_days_left
from pilots.selectors_review import plan_timeline
from pilots.services.lifecycle import plan_transition
from pilots.services.timebox import timebox_end_due, timebox_extend
from tests.factories import running_plan

pytestmark = pytest.mark.django_db

UTC = dt.UTC
MONDAY = dt.date(2026, 3, 2)
LAST_DAY = dt.date(2026, 3, 13)  # 10 business days from Monday 2 March: Friday 13 March
# New York is on summer time from 8 March: its Saturday 14 March begins at 04:00 UTC.
NY_MIDNIGHT = dt.datetime(2026, 3, 14, 4, 0, tzinfo=UTC)
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def plan(team, po) -> PilotPlan:  # type: ignore[no-untyped-def]
    return running_plan(team=team, owner=po, start_date=MONDAY, time_zone="America/New_York")


def status(plan: PilotPlan) -> str:
    return PilotPlan.objects.values_list("status", flat=True).get(pk=plan.pk)


# --- the end by itself ------------------------------------------------------------------------


def test_not_a_minute_before_the_end_of_the_last_business_day(plan):
    assert plan.end_date == LAST_DAY
    tasks.timebox_tick(now=NY_MIDNIGHT - dt.timedelta(minutes=1))  # 23:59 on Friday in New York

    assert status(plan) == PilotPlan.Status.RUNNING
    assert not PlanTransition.objects.filter(plan=plan).exists()


def test_the_tick_after_the_last_business_day_moves_it_to_evaluating_recorded(plan, po):
    tasks.timebox_tick(now=NY_MIDNIGHT)

    assert status(plan) == PilotPlan.Status.EVALUATING
    [step] = PlanTransition.objects.filter(plan=plan)
    assert (step.from_status, step.to_status, step.actor) == ("running", "evaluating", None)
    assert step.reason == "Time-box ended: the last business day (Fri 13 Mar 2026) is over."
    assert step.at == NY_MIDNIGHT
    [entry] = [e for e in plan_timeline(plan=plan) if e.kind == "transition"]
    assert entry.who == "Pilotplan (automatically)"

    [told] = Notification.objects.filter(kind=Notification.Kind.TIMEBOX_ENDED)
    assert told.user == po
    assert told.url == f"/plans/{plan.pk}/"
    assert told.message.startswith(f"The time-box of “{plan.title}” ended with Fri 13 Mar 2026")


def test_the_end_is_the_plans_midnight_not_utcs(team, po):
    """A plan in UTC ended four hours earlier; one in Tokyo even earlier."""
    utc = running_plan(team=team, owner=po, start_date=MONDAY)
    tokyo = running_plan(team=team, owner=po, start_date=MONDAY, time_zone="Asia/Tokyo")
    new_york = running_plan(team=team, owner=po, start_date=MONDAY, time_zone="America/New_York")

    friday_16_utc = dt.datetime(2026, 3, 13, 16, 0, tzinfo=UTC)  # Saturday 01:00 in Tokyo
    assert timebox_end_due(now=friday_16_utc) == [tokyo.pk]
    assert timebox_end_due(now=dt.datetime(2026, 3, 14, 0, 0, tzinfo=UTC)) == [utc.pk]
    assert status(new_york) == PilotPlan.Status.RUNNING


def test_a_second_tick_records_nothing_more(plan):
    tasks.timebox_tick(now=NY_MIDNIGHT)
    tasks.timebox_tick(now=NY_MIDNIGHT + dt.timedelta(minutes=1))

    assert PlanTransition.objects.filter(plan=plan).count() == 1
    assert Notification.objects.filter(kind=Notification.Kind.TIMEBOX_ENDED).count() == 1


def test_the_real_tick_ends_a_pilot_long_over(team, po):
    """``metrics.tasks.tick`` as beat sends it, on the real clock."""
    over = running_plan(team=team, owner=po, start_date=dt.date(2025, 1, 6))
    tasks.tick()
    assert status(over) == PilotPlan.Status.EVALUATING


@pytest.mark.parametrize("ended", [1, 6])
def test_ending_time_boxes_takes_a_fixed_number_of_queries(
    team, po, ended, django_assert_num_queries
):
    for _ in range(ended):
        running_plan(team=team, owner=po, start_date=MONDAY)
    running_plan(team=team, owner=po, start_date=dt.date(2026, 3, 9))  # still running
    # Savepoint, candidates (locked, with their owners), update, transitions, the webhook
    # subscriptions hearing state changes, notifications, release.
    with django_assert_num_queries(7):
        assert len(timebox_end_due(now=dt.datetime(2026, 3, 14, 0, 0, tzinfo=UTC))) == ended


# --- days left -------------------------------------------------------------------------------


def test_days_left_and_the_digest_say_the_truth_about_the_end(plan):
    assert plan_days_left(plan, today=LAST_DAY) == 1
    assert plan_days_left(plan, today=LAST_DAY + dt.timedelta(days=3)) == 0

    def text(day: dt.date) -> str:
        return digest.digest_message(
            plan=plan, run=CheckRun(local_date=day), results=[], previous=None,
            previous_results=[], days_left=plan_days_left(plan, today=day),
        )  # fmt: skip

    assert text(dt.date(2026, 3, 12)).endswith("2 business days left.")
    assert text(LAST_DAY).endswith("Last business day of the time-box.")
    assert text(dt.date(2026, 3, 16)).endswith("The time-box ended on Fri 13 Mar.")


# --- extending ---------------------------------------------------------------------------------


def test_extending_with_a_reason_is_recorded_and_moves_the_end(plan, po):
    timebox_extend(
        plan=plan, user=po, new_end_date=dt.date(2026, 3, 20), reason="Cohort joined late",
        now=dt.datetime(2026, 3, 12, 15, 0, tzinfo=UTC),
    )  # fmt: skip

    plan.refresh_from_db()
    assert (plan.end_date, plan.business_days) == (dt.date(2026, 3, 20), 15)
    [extension] = TimeboxExtension.objects.filter(plan=plan)
    assert (extension.old_end_date, extension.new_end_date) == (LAST_DAY, dt.date(2026, 3, 20))
    assert (extension.actor, extension.reason) == (po, "Cohort joined late")
    [entry] = [e for e in plan_timeline(plan=plan) if e.kind == "extension"]
    assert entry.text == "Extended the time-box: last day Fri 13 Mar 2026 → Fri 20 Mar 2026"
    assert entry.details == ["Cohort joined late"]
    # The tick at the old end leaves it running.
    tasks.timebox_tick(now=NY_MIDNIGHT)
    assert status(plan) == PilotPlan.Status.RUNNING


@pytest.mark.parametrize("reason", ["", "   "])
def test_extending_without_a_reason_is_refused(plan, po, reason):
    with pytest.raises(ValidationError) as refused:
        timebox_extend(plan=plan, user=po, new_end_date=dt.date(2026, 3, 20), reason=reason)
    assert "reason" in refused.value.message_dict
    plan.refresh_from_db()
    assert plan.end_date == LAST_DAY
    assert not TimeboxExtension.objects.exists()


@pytest.mark.parametrize(
    ("day", "words"),
    [
        (dt.date(2026, 3, 13), "Choose a day after the current end (Fri 13 Mar 2026)."),
        (dt.date(2026, 3, 21), "Sat 21 Mar 2026 is not a business day"),
        (None, "Enter the new last day of the pilot."),
    ],
)
def test_a_new_end_that_is_not_a_later_business_day_is_refused(plan, po, day, words):
    with pytest.raises(ValidationError) as refused:
        timebox_extend(
            plan=plan, user=po, new_end_date=day, reason="More data",
            now=dt.datetime(2026, 3, 12, 15, 0, tzinfo=UTC),
        )  # fmt: skip
    assert words in refused.value.message_dict["new_end_date"][0]


def test_a_just_ended_pilot_can_be_extended_back_to_running(plan, sm):
    tasks.timebox_tick(now=NY_MIDNIGHT)

    timebox_extend(
        plan=plan, user=sm, new_end_date=dt.date(2026, 3, 20), reason="Too few sessions",
        now=NY_MIDNIGHT + dt.timedelta(hours=14),
    )  # fmt: skip

    assert status(plan) == PilotPlan.Status.RUNNING
    last = PlanTransition.objects.filter(plan=plan).order_by("-pk").first()
    assert (last.from_status, last.to_status, last.actor) == ("evaluating", "running", sm)
    assert last.reason == "Time-box extended to Fri 20 Mar 2026: Too few sessions"


def test_a_pilot_ended_by_hand_is_not_extended(plan, po):
    plan_transition(plan=plan, action="evaluate", user=po)
    with pytest.raises(Conflict, match="just ended by itself"):
        timebox_extend(plan=plan, user=po, new_end_date=dt.date(2026, 3, 20), reason="More")


def test_only_the_po_and_sm_extend(plan, developer):
    with pytest.raises(PermissionDenied, match="Product Owner or Scrum Master"):
        timebox_extend(plan=plan, user=developer, new_end_date=dt.date(2026, 3, 20), reason="More")


# --- the page ----------------------------------------------------------------------------------


def url(plan: PilotPlan) -> str:
    return reverse("pilots:timebox_extend", args=[plan.pk])


@pytest.fixture
def current(team, po) -> PilotPlan:  # type: ignore[no-untyped-def]
    """Running from today (the page uses the real clock); its new end is a week later."""
    return running_plan(team=team, owner=po, start_date=timezone.now().astimezone(UTC).date())


def week_later(plan: PilotPlan) -> dt.date:
    assert plan.end_date is not None
    return plan.end_date + dt.timedelta(days=7)  # the same weekday: a business day


def test_the_lifecycle_panel_offers_the_extension_to_the_po(client_for, plan, po, developer):
    panel = reverse("pilots:plan_lifecycle", args=[plan.pk])
    assert 'data-testid="timebox-extend-form"' in client_for(po).get(panel, **HTMX).text
    as_developer = client_for(developer).get(panel, **HTMX).text
    assert 'data-testid="timebox-extend-form"' not in as_developer
    assert "Fri 13 Mar 2026" in as_developer


def test_the_form_extends_and_shows_the_new_end(client_for, current, po):
    new_end = week_later(current)
    response = client_for(po).post(
        url(current), {"new_end_date": new_end.isoformat(), "reason": "Longer"}, **HTMX
    )
    assert response.status_code == 200
    assert f"{new_end:%a} {new_end.day} {new_end:%b %Y}" in response.text
    assert TimeboxExtension.objects.get().reason == "Longer"


def test_the_form_without_a_reason_is_422_naming_the_field(client_for, current, po):
    data = {"new_end_date": week_later(current).isoformat(), "reason": ""}
    response = client_for(po).post(url(current), data, **HTMX)
    assert response.status_code == 422
    assert "Say why the pilot needs longer" in response.text
    assert not TimeboxExtension.objects.exists()


def test_the_form_refuses_a_developer_and_hides_the_plan_from_outsiders(
    client_for, current, developer, outsider
):
    data = {"new_end_date": week_later(current).isoformat(), "reason": "Longer"}
    assert client_for(developer).post(url(current), data, **HTMX).status_code == 403
    assert client_for(outsider).post(url(current), data, **HTMX).status_code == 404
    assert not TimeboxExtension.objects.exists()


# --- the API -----------------------------------------------------------------------------------


def api(plan: PilotPlan) -> str:
    return f"/api/v1/plans/{plan.pk}/timebox-extensions"


def test_the_api_extends_with_a_reason_and_lists_it(client_for, current, sm):
    client = client_for(sm)
    new_end = week_later(current).isoformat()
    created = client.post(
        api(current), {"new_end_date": new_end, "reason": "Longer"}, content_type="application/json"
    )
    assert created.status_code == 201
    assert created.json()["new_end_date"] == new_end
    assert created.json()["actor"]["id"] == sm.pk
    [listed] = client.get(api(current)).json()["results"]
    assert listed["reason"] == "Longer"


def test_the_api_refuses_a_missing_reason_naming_the_field(client_for, current, po):
    data = {"new_end_date": week_later(current).isoformat(), "reason": " "}
    response = client_for(po).post(api(current), data, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "reason": ["Say why the pilot needs longer: the extension keeps the reason."]
    }


def test_the_api_refuses_a_developer_and_hides_the_plan_from_outsiders(
    client_for, current, developer, outsider
):
    data = {"new_end_date": week_later(current).isoformat(), "reason": "Longer"}
    for user, code in ((developer, 403), (outsider, 404)):
        response = client_for(user).post(api(current), data, content_type="application/json")
        assert response.status_code == code
    assert not TimeboxExtension.objects.exists()


def test_the_api_shows_the_system_step_with_no_actor(client_for, plan, po):
    tasks.timebox_tick(now=NY_MIDNIGHT)
    [step] = client_for(po).get(f"/api/v1/plans/{plan.pk}/transitions").json()["transitions"]
    assert (step["to_status"], step["actor"]) == ("evaluating", None)
