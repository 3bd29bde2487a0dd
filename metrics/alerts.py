"""Trigger episodes after they fire: acknowledge, resolve, and the events their webhooks hear.

Services (writes) are atomic and keyword-only; they lock the episode row, record who and when,
and write the webhook delivery in the same transaction, so what the receiver hears is exactly
what was committed. Reads for pages and the API are at the bottom.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.urls import reverse
from django.utils import timezone

from accounts.events import event_publish, iso, person, plan_ref, subscriptions_listening
from accounts.models import EventType, User, WebhookDelivery
from core.exceptions import Conflict
from core.queue import enqueue_on_commit
from metrics.models import SignalEpisode, TriggerEpisode
from pilots import wording
from pilots.extensions import PlanPanel
from pilots.models import PilotPlan

EVENT_FIRED = EventType.TRIGGER_FIRED
EVENT_ACKNOWLEDGED = EventType.TRIGGER_ACKNOWLEDGED
EVENT_RESOLVED = EventType.TRIGGER_RESOLVED


# --- webhook deliveries --------------------------------------------------------------------------


def plan_url(plan_id: int) -> str:
    return reverse("pilots:plan_detail", args=[plan_id])


def episode_data(*, episode: TriggerEpisode) -> dict[str, Any]:
    """The ``data`` of a trigger.fired / acknowledged / resolved event (docs/webhooks.md)."""
    plan = episode.plan
    trigger = episode.trigger
    return {
        "plan": plan_ref(plan_id=plan.pk, title=plan.title),
        "trigger": (
            {
                "id": trigger.pk,
                "description": episode.description,
                "metric": trigger.metric.key,
                "comparator": trigger.comparator,
                "threshold": float(trigger.threshold),
                "mode": trigger.mode,
                "sustained_minutes": trigger.sustained_minutes,
            }
            if trigger is not None
            else {"id": None, "description": episode.description}
        ),
        "episode": {
            "id": episode.pk,
            "value": episode.value,
            "breach_started_at": iso(episode.breach_started_at),
            "fired_at": iso(episode.fired_at),
            "cleared_at": iso(episode.cleared_at),
            "acknowledged_at": iso(episode.acknowledged_at),
            "acknowledged_by": person(episode.acknowledged_by),
            "resolved_at": iso(episode.resolved_at),
            "resolved_by": person(episode.resolved_by),
            "resolution": episode.resolution,
        },
    }


def _episode_summary(event: str, episode: TriggerEpisode) -> str:
    if event == EVENT_RESOLVED:
        who = episode.resolved_by.display_name if episode.resolved_by else "Someone"
        return f"{who} resolved “{episode.description}”: {episode.resolution}"
    if event == EVENT_ACKNOWLEDGED:
        who = episode.acknowledged_by.display_name if episode.acknowledged_by else "Someone"
        return f"{who} is on “{episode.description}”."
    value = "" if episode.value is None else f" (value {episode.value:g})"
    return f"“{episode.description}” breached{value}."


def deliveries_create(*, event: str, episodes: Iterable[TriggerEpisode]) -> list[WebhookDelivery]:
    """Owe ``event`` about each episode to its team's subscriptions to it (one query to find
    them whatever the number of episodes). Written in the caller's transaction; the worker is
    told after it commits, and the tick's sweep sends anything the broker lost."""
    episodes = list(episodes)
    if not episodes:
        return []
    listening = subscriptions_listening(team_ids={e.plan.team_id for e in episodes}, event=event)
    deliveries: list[WebhookDelivery] = []
    for episode in episodes:
        if episode.plan.team_id in listening:
            deliveries += event_publish(
                team_id=episode.plan.team_id,
                event=event,
                data=episode_data(episode=episode),
                summary=_episode_summary(event, episode),
                link=plan_url(episode.plan_id),
                subscriptions=listening[episode.plan.team_id],
            )
    return deliveries


# --- acknowledge and resolve ---------------------------------------------------------------------


def _locked_episode(*, plan: PilotPlan, episode_id: int) -> TriggerEpisode:
    episode = (
        TriggerEpisode.objects.select_for_update(of=("self",))
        .select_related("plan", "trigger__metric", "acknowledged_by", "resolved_by")
        .filter(plan=plan, pk=episode_id)
        .first()
    )
    if episode is None:
        from django.http import Http404

        raise Http404("No such alert")
    return episode


@transaction.atomic
def episode_acknowledge(
    *, plan: PilotPlan, episode_id: int, user: User, now: dt.datetime | None = None
) -> TriggerEpisode:
    """Record that ``user`` has seen the episode and is on it. Acknowledging twice keeps the
    first acknowledgement (nothing changes, nothing is sent); a resolved episode is refused."""
    episode = _locked_episode(plan=plan, episode_id=episode_id)
    if episode.resolved_at is not None:
        raise Conflict("This alert is already resolved.")
    if episode.acknowledged_at is not None:
        return episode
    episode.acknowledged_by = user
    episode.acknowledged_at = now or timezone.now()
    episode.save(update_fields=["acknowledged_by", "acknowledged_at"])
    deliveries_create(event=EVENT_ACKNOWLEDGED, episodes=[episode])
    return episode


@transaction.atomic
def episode_resolve(
    *,
    plan: PilotPlan,
    episode_id: int,
    user: User,
    resolution: str,
    now: dt.datetime | None = None,
) -> TriggerEpisode:
    """Close the episode with what was done about it (required). Resolving also acknowledges
    an episode nobody acknowledged. The trigger re-arms: an any-occurrence trigger fires again
    on a sample ingested after now; a sustained one on a new run of D breaching minutes."""
    resolution = (resolution or "").strip()
    if not resolution:
        raise ValidationError({"resolution": "Say how the alert was resolved."})
    if len(resolution) > 2000:
        raise ValidationError({"resolution": "Keep the resolution under 2,000 characters."})
    episode = _locked_episode(plan=plan, episode_id=episode_id)
    if episode.resolved_at is not None:
        raise Conflict(f"This alert was already resolved by {episode.resolved_by or 'someone'}.")
    now = now or timezone.now()
    episode.resolved_by, episode.resolved_at, episode.resolution = user, now, resolution
    fields = ["resolved_by", "resolved_at", "resolution"]
    if episode.acknowledged_at is None:
        episode.acknowledged_by, episode.acknowledged_at = user, now
        fields += ["acknowledged_by", "acknowledged_at"]
    episode.save(update_fields=fields)
    deliveries_create(event=EVENT_RESOLVED, episodes=[episode])

    # The trigger's state still says "fired"; evaluate again now rather than at the next tick.
    enqueue_on_commit("metrics.tasks.triggers_evaluate", plan.pk)
    return episode


# --- reads ---------------------------------------------------------------------------------------


def episodes_for_plan(*, plan_id: int) -> QuerySet[TriggerEpisode]:
    """Every episode of the plan, newest first, with the people who handled it."""
    return (
        TriggerEpisode.objects.filter(plan_id=plan_id)
        .select_related("acknowledged_by", "resolved_by")
        .order_by("-fired_at", "-pk")
    )


def episodes_unresolved(*, plan_id: int) -> list[TriggerEpisode]:
    """What the plan's red banner shows: one query."""
    return list(episodes_for_plan(plan_id=plan_id).filter(resolved_at__isnull=True))


@dataclass(frozen=True)
class BlindTrigger:
    """A rollback trigger that cannot judge now (an open no-data / stale episode), in words."""

    label: str
    kind: str  # SignalEpisode.Kind
    kind_label: str
    detail: str
    since: dt.datetime


def signals_open(*, plan_id: int) -> list[BlindTrigger]:
    """The plan's rollback triggers without fresh data (no data, stale): one query."""
    episodes = (
        SignalEpisode.objects.filter(plan_id=plan_id, ended_at__isnull=True)
        .select_related("trigger__metric")
        .order_by("trigger__position", "trigger_id")
    )
    return [
        BlindTrigger(
            label=wording.trigger_text(e.trigger),
            kind=e.kind,
            kind_label=e.get_kind_display(),
            detail=e.detail,
            since=e.started_at,
        )
        for e in episodes
    ]


def alerts_plan_flags() -> dict[str, Exists]:
    """Whether the plan has an unresolved episode / a trigger without fresh data: ``Exists``
    annotations of the plan page's plan query (``pilots.extensions``)."""
    return {
        "has_unresolved_episodes": Exists(
            TriggerEpisode.objects.filter(plan=OuterRef("pk"), resolved_at__isnull=True)
        ),
        "has_open_signals": Exists(
            SignalEpisode.objects.filter(plan=OuterRef("pk"), ended_at__isnull=True)
        ),
    }


def alerts_plan_panel(plan: PilotPlan) -> PlanPanel:
    """The red banner at the top of the plan page (registered in ``metrics.apps``): the plan's
    unresolved rollback trigger episodes and its triggers without fresh data, in two queries,
    or none when the plan's flags (``alerts_plan_flags``) say there are none. Always rendered,
    so HTMX actions on the banner have their target even when nothing is firing."""
    return PlanPanel(
        "metrics/_plan_panel_alerts.html",
        {
            "episodes": episodes_unresolved(plan_id=plan.pk)
            if getattr(plan, "has_unresolved_episodes", True)
            else [],
            "signals": signals_open(plan_id=plan.pk)
            if getattr(plan, "has_open_signals", True)
            else [],
        },
    )
