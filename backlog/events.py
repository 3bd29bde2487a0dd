"""The backlog's events for webhook subscriptions (docs/webhooks.md): an item created, feedback
received. Published by the services that cause them, inside their transaction (accounts.events)."""

from __future__ import annotations

from collections.abc import Iterable

from django.urls import reverse

from accounts.events import event_publish, iso, person, plan_ref, subscriptions_listening
from accounts.models import EventType
from backlog.models import BacklogItem, Feedback
from pilots.models import PilotPlan


def backlog_items_created_publish(*, team_id: int, items: Iterable[BacklogItem]) -> None:
    """``backlog_item.created`` for each new item (one query to find the listeners)."""
    listening = subscriptions_listening(
        team_ids={team_id}, event=EventType.BACKLOG_ITEM_CREATED
    ).get(team_id)
    if not listening:
        return
    for item in items:
        event_publish(
            team_id=team_id,
            event=EventType.BACKLOG_ITEM_CREATED,
            data={
                "backlog_item": {
                    "id": item.pk,
                    "reference": item.reference,
                    "title": item.title,
                    "kind": item.kind,
                    "severity": item.severity,
                    "status": item.status,
                    "origin": item.origin,
                    "created_by": person(item.created_by),
                    "created_at": iso(item.created_at),
                },
                "plan": {"id": item.plan_id} if item.plan_id is not None else None,
            },
            summary=f"{item.reference} “{item.title}” was added to the backlog.",
            link=reverse("backlog:item_edit", args=[team_id, item.pk]),
            subscriptions=listening,
        )


def feedback_received_publish(*, plan: PilotPlan, feedback: Feedback) -> None:
    """``feedback.received``; the contact is never sent (it is personal data)."""
    scores = [
        f"{name} {value}"
        for name, value in (("CSAT", feedback.csat), ("NPS", feedback.nps))
        if value is not None
    ]
    comment = f"“{feedback.comment[:200]}”" if feedback.comment else ""
    event_publish(
        team_id=plan.team_id,
        event=EventType.FEEDBACK_RECEIVED,
        data={
            "plan": plan_ref(plan_id=plan.pk, title=plan.title),
            "feedback": {
                "id": feedback.pk,
                "csat": feedback.csat,
                "nps": feedback.nps,
                "comment": feedback.comment,
                "created_at": iso(feedback.created_at),
            },
        },
        summary=f"Feedback on “{plan.title}”: " + " ".join([", ".join(scores), comment]).strip(),
        link=reverse("backlog:feedback", args=[plan.pk]),
    )
