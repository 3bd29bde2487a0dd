"""The decision and the rollback reach the team's webhook subscriptions (docs/webhooks.md):
decision recorded, rollback started, rollback finished."""

from __future__ import annotations

import pytest

from accounts.models import EventType, Team, WebhookDelivery, WebhookSubscription
from decisions.services.decision import decision_record
from decisions.services.rollback import rollback_end, rollback_start
from tests.decisions.conftest import MET
from tests.decisions.test_rollback import DAY, decision, mark, steps
from tests.factories import running_plan
from tests.metrics.webhook_docs import assert_documented

pytestmark = pytest.mark.django_db


def subscribe(team: Team, *events: str) -> WebhookSubscription:
    return WebhookSubscription.objects.create(
        team=team, name="All", url="https://hooks.example.test/", secret="whsec_eA==",
        events=list(events),
    )  # fmt: skip


def sent(event: str) -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.filter(event=event).order_by("pk"))


def test_a_recorded_decision_is_an_event(decidable, team, po):
    subscribe(team, EventType.DECISION_RECORDED)
    plan = decidable([MET] * 5)

    record = decision_record(plan=plan, user=po, outcome="go", rationale="All criteria met.")

    [recorded] = sent(EventType.DECISION_RECORDED)
    assert_documented(recorded.payload)
    data = recorded.payload["data"]
    assert data["plan"]["id"] == plan.pk
    assert data["decision"]["id"] == record.pk
    assert data["decision"]["outcome"] == "go"
    assert data["decision"]["rationale"] == "All criteria met."
    assert data["decision"]["against_recommendation"] is False
    assert data["decision"]["recorded_by"]["id"] == po.pk
    assert recorded.link.endswith(f"/plans/{plan.pk}/decision")


def test_a_rollback_start_and_finish_are_events(team, po, devops):
    subscribe(team, EventType.ROLLBACK_STARTED, EventType.ROLLBACK_FINISHED)
    plan = running_plan(team=team, owner=po, start_date=DAY, rollback_executor=devops)

    run = rollback_start(plan=plan, user=po, decision=decision(plan, po))
    [started] = sent(EventType.ROLLBACK_STARTED)
    assert_documented(started.payload)
    assert started.payload["data"]["rollback"]["id"] == run.pk
    assert started.payload["data"]["rollback"]["emergency"] is False
    assert sent(EventType.ROLLBACK_FINISHED) == []

    for step in steps(run):
        mark(step, devops, "done")
    rollback_end(run=run, user=devops)

    [finished] = sent(EventType.ROLLBACK_FINISHED)
    assert_documented(finished.payload)
    data = finished.payload["data"]
    assert data["rollback"]["ended_by"]["id"] == devops.pk
    assert data["failed_steps"] == 0
    assert "ended by" in finished.summary
