"""Events for a team's webhook subscriptions: the one door every app publishes through.

``event_publish`` writes one ``WebhookDelivery`` per active subscription of the team to that
event, in the caller's transaction, and asks the worker to send each after the commit (by task
name: the sending code lives in ``metrics.webhooks``). A rolled-back change sends nothing; a
committed one is sent at least once, because the tick's sweep finds any delivery whose message
the broker lost. Why here, in the lowest app with teams: docs/architecture.md, "Events and
webhooks". What each event's ``data`` holds: docs/webhooks.md.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from accounts.models import (
    WEBHOOK_PAYLOAD_VERSIONS,
    EventType,
    User,
    WebhookDelivery,
    WebhookSubscription,
)
from core.queue import enqueue_on_commit

# The payload's shape: {"type", "version", "timestamp", "data"}. A change a receiver could trip
# over (a field removed or renamed, a meaning changed) raises the version; new fields do not.
# Publishers build the current version's ``data``; each subscription receives the version it
# pinned (``WebhookSubscription.payload_version``), rendered by ``RENDERERS`` from the current
# one. A new version adds its number to ``WEBHOOK_PAYLOAD_VERSIONS`` (and the check constraint's
# migration) and a renderer here that turns its data back into the previous version's.
PAYLOAD_VERSION = WEBHOOK_PAYLOAD_VERSIONS[-1]
Renderer = Callable[[str, dict[str, Any]], dict[str, Any]]
RENDERERS: dict[int, Renderer] = {1: lambda _event, data: data}
DELIVER_TASK = "metrics.tasks.webhook_deliver"

SUBSCRIBABLE = [(value, label) for value, label in EventType.choices if value != EventType.PING]


def iso(moment: dt.datetime | None) -> str | None:
    """An aware time as the payloads write it: UTC, ISO 8601, ``Z``."""
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if moment else None


def absolute(url: str) -> str:
    return f"{settings.SITE_URL}{url}" if url.startswith("/") else url


def person(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "name": user.display_name}


def plan_ref(*, plan_id: int, title: str) -> dict[str, Any]:
    """How every event names its plan: id, title and the plan page's address."""
    return {
        "id": plan_id,
        "title": title,
        "url": absolute(reverse("pilots:plan_detail", args=[plan_id])),
    }


def message_id_new() -> str:
    return f"msg_{uuid.uuid4().hex}"


def payload_build(
    *, event: str, data: dict[str, Any], now: dt.datetime, version: int = PAYLOAD_VERSION
) -> dict[str, Any]:
    """The payload of ``version`` for an event whose current ``data`` is given."""
    rendered = RENDERERS[version](event, data)
    return {"type": event, "version": version, "timestamp": iso(now), "data": rendered}


def deliveries_enqueue(deliveries: list[WebhookDelivery]) -> None:
    for delivery in deliveries:
        enqueue_on_commit(DELIVER_TASK, delivery.pk)


def event_publish(
    *,
    team_id: int,
    event: str,
    data: dict[str, Any],
    summary: str,
    link: str = "",
    subscriptions: list[WebhookSubscription] | None = None,
) -> list[WebhookDelivery]:
    """Owe ``event`` to each of the team's active subscriptions to it (none: one query, nothing
    written). ``data`` is the payload's ``data``; ``summary`` says what happened in words and
    ``link`` is the page it concerns, for chat destinations. ``subscriptions`` (a test event)
    names the receivers instead of looking them up."""
    if event not in EventType.values:
        raise ValueError(f"unknown event {event!r}")
    if subscriptions is None:
        subscriptions = list(
            WebhookSubscription.objects.filter(
                team_id=team_id, is_active=True, events__contains=[event]
            ).only("pk", "payload_version")
        )
    if not subscriptions:
        return []
    now = timezone.now()
    payloads = {
        version: payload_build(event=event, data=data, now=now, version=version)
        for version in {subscription.payload_version for subscription in subscriptions}
    }
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                subscription=subscription,
                message_id=message_id_new(),
                event=event,
                payload=payloads[subscription.payload_version],
                summary=summary[:300],
                link=absolute(link)[:500],
                created_at=now,
                next_attempt_at=now,
            )
            for subscription in subscriptions
        ]
    )
    deliveries_enqueue(deliveries)
    return deliveries


def subscriptions_listening(
    *, team_ids: set[int], event: str
) -> dict[int, list[WebhookSubscription]]:
    """The active subscriptions to ``event`` of each of ``team_ids``, in one query: for jobs
    that publish one event about many plans (the tick)."""
    return {
        team_id: subs
        for (team_id, heard), subs in subscriptions_listening_any(
            team_ids=team_ids, events=[event]
        ).items()
        if heard == event
    }


def subscriptions_listening_any(
    *, team_ids: set[int], events: list[str]
) -> dict[tuple[int, str], list[WebhookSubscription]]:
    """The active subscriptions of ``team_ids`` to any of ``events``, in one query, by
    (team, event): for a change that may be several events at once."""
    found: dict[tuple[int, str], list[WebhookSubscription]] = {}
    for subscription in WebhookSubscription.objects.filter(
        team_id__in=team_ids, is_active=True, events__overlap=events
    ).only("pk", "team_id", "events", "payload_version"):
        for event in events:
            if event in subscription.events:
                found.setdefault((subscription.team_id, event), []).append(subscription)
    return found
