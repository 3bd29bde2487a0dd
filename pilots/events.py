"""The plan's events for webhook subscriptions (docs/webhooks.md): a state change, a review
requested, a sign-off voided. Called by the services that cause them, inside their transaction,
so a subscription hears exactly what was committed (accounts.events)."""

from __future__ import annotations

from collections.abc import Iterable

from django.urls import reverse

from accounts.events import (
    event_publish,
    iso,
    person,
    plan_ref,
    subscriptions_listening,
    subscriptions_listening_any,
)
from accounts.models import EventType, User
from pilots.models import PilotPlan, PlanTransition, SignOff
from pilots.review import REVIEWS


def _status_label(status: str) -> str:
    return str(PilotPlan.Status(status).label)


def _transition_data(plan: PilotPlan, transition: PlanTransition) -> dict[str, object]:
    return {
        "plan": plan_ref(plan_id=plan.pk, title=plan.title),
        "from_status": transition.from_status,
        "to_status": transition.to_status,
        "actor": person(transition.actor),
        "reason": transition.reason,
        "at": iso(transition.at),
    }


def _transition_summary(plan: PilotPlan, transition: PlanTransition) -> str:
    who = transition.actor.display_name if transition.actor else "Pilotplan"
    return (
        f"{who} moved “{plan.title}” from {_status_label(transition.from_status)} to "
        f"{_status_label(transition.to_status)}."
        + (f" {transition.reason}" if transition.reason else "")
    )


def plan_transitions_publish(items: Iterable[tuple[PilotPlan, PlanTransition]]) -> None:
    """``plan.state_changed`` for each (plan, transition), one query to find the listeners;
    ``plan.review_requested`` too for a plan that went to review."""
    items = list(items)
    if not items:
        return
    events = [EventType.PLAN_STATE_CHANGED, EventType.REVIEW_REQUESTED]
    listening = subscriptions_listening_any(
        team_ids={plan.team_id for plan, _ in items}, events=events
    )
    for event in events:
        for plan, transition in items:
            subscriptions = listening.get((plan.team_id, event))
            if not subscriptions:
                continue
            if event == EventType.REVIEW_REQUESTED:
                if transition.to_status != PilotPlan.Status.IN_REVIEW:
                    continue
                who = transition.actor.display_name if transition.actor else "Pilotplan"
                summary = f"{who} asks the team to review “{plan.title}”."
            else:
                summary = _transition_summary(plan, transition)
            event_publish(
                team_id=plan.team_id,
                event=event,
                data=_transition_data(plan, transition),
                summary=summary,
                link=reverse("pilots:plan_detail", args=[plan.pk]),
                subscriptions=subscriptions,
            )


def signoffs_voided_publish(
    *, plan: PilotPlan, signoffs: list[SignOff], user: User, reason: str
) -> None:
    """``plan.sign_off_voided``, one event per voided sign-off."""
    listening = subscriptions_listening(
        team_ids={plan.team_id}, event=EventType.SIGN_OFF_VOIDED
    ).get(plan.team_id)
    if not listening:
        return
    for signoff in signoffs:
        label = REVIEWS[signoff.kind].short_label
        event_publish(
            team_id=plan.team_id,
            event=EventType.SIGN_OFF_VOIDED,
            data={
                "plan": plan_ref(plan_id=plan.pk, title=plan.title),
                "review": signoff.kind,
                "signed_by": person(signoff.signed_by),
                "voided_by": person(user),
                "reason": reason,
            },
            summary=f"The {label} sign-off of “{plan.title}” was voided: {reason}",
            link=reverse("pilots:plan_detail", args=[plan.pk]),
            subscriptions=listening,
        )
