"""Each event reaches the team's subscriptions from the service that causes it, in its
transaction, with the documented payload (docs/webhooks.md): plan state changed, review
requested, sign-off voided, check run finished, trigger stale, backlog item created, feedback
received. (Trigger fired / acknowledged / resolved: tests/metrics/test_triggers.py and
test_alerts.py; decision and rollback: tests/decisions/test_webhook_events.py.)"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import EventType, Team, WebhookDelivery, WebhookSubscription
from backlog.models import FeedbackToken
from backlog.services import backlog_item_create
from core.exceptions import Conflict
from decisions.services.feedback import feedback_submit
from metrics import checks, triggers
from metrics.models import CheckRun
from pilots.models import PilotPlan, SignOff
from pilots.services.lifecycle import plan_transition
from pilots.services.review import signoffs_void
from tests.factories import OVERRIDE, PilotPlanFactory, running_plan
from tests.metrics.test_checks_support import store
from tests.metrics.webhook_docs import assert_documented

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 3, 2)
T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


def subscribe(team: Team, *events: str) -> WebhookSubscription:
    return WebhookSubscription.objects.create(
        team=team, name="All", url="https://hooks.example.test/", secret="whsec_eA==",
        events=list(events),
    )  # fmt: skip


def sent(event: str) -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.filter(event=event).order_by("pk"))


def test_submitting_a_plan_is_a_state_change_and_a_review_request(team, po):
    subscribe(team, EventType.PLAN_STATE_CHANGED, EventType.REVIEW_REQUESTED)
    plan = PilotPlanFactory(team=team, owner=po)

    plan_transition(plan=plan, action="submit", user=po, **OVERRIDE)

    [changed] = sent(EventType.PLAN_STATE_CHANGED)
    assert_documented(changed.payload)
    data = changed.payload["data"]
    assert data["plan"]["id"] == plan.pk
    assert (data["from_status"], data["to_status"]) == ("draft", "in_review")
    assert data["actor"] == {"id": po.pk, "name": po.display_name}
    assert "from Draft to In review" in changed.summary
    [requested] = sent(EventType.REVIEW_REQUESTED)
    assert_documented(requested.payload)
    assert requested.payload["data"]["to_status"] == "in_review"
    assert "asks the team to review" in requested.summary


def test_a_failed_step_sends_nothing(team, po):
    subscribe(team, EventType.PLAN_STATE_CHANGED)
    plan = PilotPlanFactory(team=team, owner=po)

    with pytest.raises(Conflict):  # plan health has gaps and nobody overrode them
        plan_transition(plan=plan, action="submit", user=po)
    assert sent(EventType.PLAN_STATE_CHANGED) == []


def test_a_voided_sign_off_is_an_event(team, po):
    subscribe(team, EventType.SIGN_OFF_VOIDED)
    plan = PilotPlanFactory(team=team, owner=po, status=PilotPlan.Status.IN_REVIEW)
    SignOff.objects.create(plan=plan, kind="business", signed_by=po, plan_version=plan.version)

    signoffs_void(plan=plan, kinds=["business"], user=po, reason="Goal was edited.")

    [voided] = sent(EventType.SIGN_OFF_VOIDED)
    assert_documented(voided.payload)
    assert voided.payload["data"]["review"] == "business"
    assert voided.payload["data"]["reason"] == "Goal was edited."
    assert voided.payload["data"]["signed_by"]["id"] == po.pk


def test_a_finished_check_run_is_an_event_with_its_results(team, po):
    subscribe(team, EventType.CHECK_RUN_FINISHED)
    plan = running_plan(team=team, owner=po, start_date=DAY)
    run = CheckRun.objects.create(plan=plan, due_at=T0, local_date=DAY, local_time=dt.time(12, 0))

    assert checks.check_run_execute(run_id=run.pk)

    [finished] = sent(EventType.CHECK_RUN_FINISHED)
    assert_documented(finished.payload)
    data = finished.payload["data"]
    assert data["check_run"]["id"] == run.pk
    assert data["check_run"]["due_at"] == "2026-03-02T12:00:00Z"
    assert (
        len(data["results"])
        == data["check_run"]["met"]
        + data["check_run"]["not_met"]
        + (data["check_run"]["not_enough_evidence"])
    )
    assert {r["verdict"] for r in data["results"]} <= {"met", "not_met", "not_enough_evidence"}
    assert finished.summary.startswith("Check of 2026-03-02 12:00:")


def test_a_check_nobody_subscribed_to_sends_nothing(team, po):
    subscribe(team, EventType.TRIGGER_FIRED)
    plan = running_plan(team=team, owner=po, start_date=DAY)
    run = CheckRun.objects.create(plan=plan, due_at=T0, local_date=DAY, local_time=dt.time(12))

    assert checks.check_run_execute(run_id=run.pk)
    assert not WebhookDelivery.objects.exists()


def test_a_trigger_without_fresh_data_is_a_stale_event_once(team, po):
    subscribe(team, EventType.TRIGGER_STALE)
    plan = running_plan(team=team, owner=po, start_date=DAY)
    store(plan, "p1_defects", [(T0 - dt.timedelta(days=2), 0)])

    triggers.triggers_evaluate_plan(plan_id=plan.pk, now=T0)
    triggers.triggers_evaluate_plan(plan_id=plan.pk, now=T0 + dt.timedelta(minutes=1))

    stale = sent(EventType.TRIGGER_STALE)
    assert len(stale) == 2  # both triggers, each once
    assert_documented(stale[0].payload)
    details = {d.payload["data"]["trigger"]["description"]: d for d in stale}
    assert any("Stale" in d.payload["data"]["signal"]["detail"] for d in details.values())
    assert all(d.payload["data"]["plan"]["id"] == plan.pk for d in stale)


def test_a_new_backlog_item_is_an_event(team, po):
    subscribe(team, EventType.BACKLOG_ITEM_CREATED)

    item = backlog_item_create(team_id=team.pk, user=po, title="Retry the card tokenisation")

    [created] = sent(EventType.BACKLOG_ITEM_CREATED)
    assert_documented(created.payload)
    data = created.payload["data"]["backlog_item"]
    assert (data["id"], data["reference"], data["title"]) == (item.pk, item.reference, item.title)
    assert created.link.endswith(f"/teams/{team.pk}/backlog/{item.pk}")


def test_feedback_is_an_event_without_the_contact(team, po):
    subscribe(team, EventType.FEEDBACK_RECEIVED)
    plan = running_plan(team=team, owner=po, start_date=timezone.localdate())
    FeedbackToken.objects.create(plan=plan, token="t" * 32, created_by=po)

    feedback_submit(
        token="t" * 32, values={"csat": 4, "comment": "Quick!", "contact": "ann@example.test"}
    )

    [received] = sent(EventType.FEEDBACK_RECEIVED)
    assert_documented(received.payload)
    data = received.payload["data"]
    assert data["feedback"]["csat"] == 4 and data["feedback"]["comment"] == "Quick!"
    assert "contact" not in data["feedback"]
    assert "ann@example.test" not in str(received.payload) + received.summary
    assert "CSAT 4" in received.summary
