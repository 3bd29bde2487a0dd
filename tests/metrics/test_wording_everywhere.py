"""One rule, one text: the plan page, the printable page and the Markdown export, the monitoring
dashboard and every alert (the episode, the red banner, the alerts page, the notification, its
e-mail and the webhook) print a rollback trigger, and an exit criterion, in the words of
``pilots.wording`` — the same string everywhere."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core import mail
from django.urls import reverse
from django.utils.html import escape

from accounts.models import Notification, WebhookDelivery
from accounts.services import notification_emails_send
from metrics import alerts, triggers
from metrics.models import TriggerEpisode
from metrics.subscriptions import subscription_create
from pilots import wording
from pilots.export import plan_markdown
from pilots.selectors import plan_detail_queryset
from tests.factories import running_plan
from tests.metrics.test_triggers import (
    BAD,
    DAY,
    MINUTE,
    SECONDS,
    T0,
    evaluate,
    latency,
    minutes,
)

pytestmark = pytest.mark.django_db

TRIGGER = "p95 latency > 300 ms for 30 minutes"
CRITERION = "CSAT mean ≥ 4.2 / 5"


@pytest.fixture
def plan(team, po, devops):  # type: ignore[no-untyped-def]
    """Running, from the template (whose latency trigger also has a note of its own)."""
    return running_plan(team=team, owner=po, start_date=DAY, rollback_executor=devops)


def _page(client, name: str, plan) -> str:  # type: ignore[no-untyped-def]
    response = client.get(reverse(name, args=[plan.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_a_trigger_and_a_criterion_read_the_same_on_every_page(plan, po, client_for):
    trigger = latency(plan)
    criterion = plan.exit_criteria.select_related("metric").get(metric__key="csat")
    assert wording.trigger_text(trigger) == TRIGGER
    assert wording.criterion_text(criterion) == CRITERION
    assert trigger.description  # the template's note, which is shown beside the text
    client = client_for(po)

    # The plan page: the rows of the rollback triggers and exit criteria sections.
    plan_page = _page(client, "pilots:plan_document", plan)
    assert f"<td>{escape(TRIGGER)}</td>" in plan_page
    assert f"<td>{escape(trigger.description)}</td>" in plan_page
    assert f"<td>{escape(CRITERION)}</td>" in plan_page

    # The printable page and the Markdown export.
    print_page = _page(client, "pilots:plan_print", plan)
    assert f"<td>{escape(TRIGGER)}</td>" in print_page
    assert f"<td>{escape(CRITERION)}</td>" in print_page
    markdown = plan_markdown(plan_detail_queryset().get(pk=plan.pk))
    assert f"| {TRIGGER} | {trigger.description} |" in markdown
    assert f"| {CRITERION} |" in markdown

    # The monitoring dashboard: the trigger table and the charts' threshold lines.
    dashboard = _page(client, "metrics:monitoring", plan)
    assert f"<td>{escape(TRIGGER)} <small" in dashboard
    start = dashboard.index('<script id="monitoring-data" type="application/json">')
    data = json.loads(
        dashboard[dashboard.index(">", start) + 1 : dashboard.index("</script>", start)]
    )
    labels = {line["label"] for chart in data["metrics"] for line in chart["thresholds"]}
    assert f"Rollback: {TRIGGER}" in labels
    assert f"Exit criterion: {CRITERION}" in labels

    # The alerts page, before anything fired: the triggers as they stand.
    assert f"<td>{escape(TRIGGER)} <small" in _page(client, "metrics:alerts", plan)


def test_a_fired_trigger_is_announced_in_the_same_words(plan, po, devops, client_for):
    subscription_create(
        team=plan.team,
        user=plan.owner,
        name="Ops",
        kind="standard",
        url="https://hooks.example.test/pilot",
        events=[alerts.EVENT_FIRED],
    )
    end = minutes(plan, T0, [BAD] * 30)

    [episode] = evaluate(plan, end + SECONDS)

    assert episode.description == TRIGGER
    notes = list(Notification.objects.filter(kind=Notification.Kind.TRIGGER_FIRED))
    assert {n.user for n in notes} == {po, devops}
    assert all(f"“{plan.title}”: {TRIGGER}. Value 450" in n.message for n in notes)
    assert notification_emails_send(notification_ids=[n.pk for n in notes]) == 2
    assert all(TRIGGER in m.body for m in mail.outbox)
    (delivery,) = WebhookDelivery.objects.filter(event=alerts.EVENT_FIRED)
    assert delivery.payload["data"]["trigger"]["description"] == TRIGGER
    assert TRIGGER in delivery.summary

    client = client_for(po)
    banner = _page(client, "pilots:plan_document", plan)
    assert f"<strong>{escape(TRIGGER)}</strong>" in banner
    history = _page(client, "metrics:alerts", plan)
    # The episode's row: the description first in its cell ("Create backlog item" may follow).
    assert f"<td>{escape(TRIGGER)}<" in history


def test_a_one_minute_trigger_counts_its_minute_in_the_singular():
    def breaches(value: float) -> bool:
        return value > 300

    common = {"breaches": breaches, "duration": 1, "tz": dt.UTC, "active": None, "rearm_at": None}
    fired = triggers.sustained_outcome(
        minutes=[triggers.Minute(T0, 450.0)], now=T0 + SECONDS, unit="ms", **common
    )
    assert fired.detail == "Fired: 1 of 1 minute breaching, latest 450 ms."
    episode = TriggerEpisode(breach_started_at=T0)
    stale = triggers.sustained_outcome(
        minutes=[triggers.Minute(T0, 450.0)], now=T0 + 10 * MINUTE, **{**common, "active": episode}
    )
    assert stale.detail == (
        "Fired; now: Not enough data: the newest minute is 12:00, more than 1 minute ago."
    )
