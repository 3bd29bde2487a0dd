"""Trigger episodes after they fire: acknowledge, resolve, and the team's webhook endpoint.

Services (writes) are atomic and keyword-only; they lock the episode row, record who and when,
and write the webhook delivery in the same transaction, so what the receiver hears is exactly
what was committed. Reads for pages and the API are at the bottom.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.urls import reverse
from django.utils import timezone

from accounts.models import Team, User
from accounts.permissions import Perm, require, role_in_team
from core.exceptions import Conflict
from core.queue import enqueue_on_commit
from metrics.models import SignalEpisode, TriggerEpisode, WebhookDelivery, WebhookEndpoint
from metrics.webhooks import AddressNotAllowed, url_vet
from pilots import wording
from pilots.extensions import PlanPanel
from pilots.models import PilotPlan

EVENT_FIRED = "trigger.fired"
EVENT_ACKNOWLEDGED = "trigger.acknowledged"
EVENT_RESOLVED = "trigger.resolved"
EVENT_TEST = "ping"


# --- webhook deliveries --------------------------------------------------------------------------


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if moment else None


def plan_url(plan_id: int) -> str:
    return reverse("pilots:plan_detail", args=[plan_id])


def absolute(url: str) -> str:
    return f"{settings.SITE_URL}{url}"


def _person(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "name": user.display_name, "email": user.email}


def episode_payload(*, event: str, episode: TriggerEpisode) -> dict[str, Any]:
    """What a webhook receiver gets for ``event`` about ``episode`` (docs/alerts.md)."""
    plan = episode.plan
    trigger = episode.trigger
    return {
        "event": event,
        "plan": {"id": plan.pk, "title": plan.title, "url": absolute(plan_url(plan.pk))},
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
            "breach_started_at": _iso(episode.breach_started_at),
            "fired_at": _iso(episode.fired_at),
            "cleared_at": _iso(episode.cleared_at),
            "acknowledged_at": _iso(episode.acknowledged_at),
            "acknowledged_by": _person(episode.acknowledged_by),
            "resolved_at": _iso(episode.resolved_at),
            "resolved_by": _person(episode.resolved_by),
            "resolution": episode.resolution,
        },
    }


def deliveries_create(*, event: str, episodes: Iterable[TriggerEpisode]) -> list[WebhookDelivery]:
    """Queue ``event`` for each episode to its team's active endpoint (none: nothing). The
    rows are written in the caller's transaction; the worker is told after it commits, and the
    tick's sweep sends anything the broker lost."""
    episodes = list(episodes)
    if not episodes:
        return []
    team_ids = {e.plan.team_id for e in episodes}
    endpoints = {
        ep.team_id: ep
        for ep in WebhookEndpoint.objects.filter(team_id__in=team_ids, is_active=True)
    }
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                endpoint=endpoints[e.plan.team_id],
                event=event,
                payload=episode_payload(event=event, episode=e),
            )
            for e in episodes
            if e.plan.team_id in endpoints
        ]
    )
    _enqueue(deliveries)
    return deliveries


def _enqueue(deliveries: Iterable[WebhookDelivery]) -> None:

    for delivery in deliveries:
        enqueue_on_commit("metrics.tasks.webhook_deliver", delivery.pk)


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


# --- the team's webhook endpoint -----------------------------------------------------------------


def webhook_secret_generate() -> str:
    return "whsec_" + secrets.token_hex(24)


def _validate_url(url: str) -> str:
    """The address as saved; refused (on the ``url`` field) when it is not http(s), or not https
    in production, or resolves to an internal address (metrics/webhooks.py, ``url_vet``). A host
    that does not resolve yet is accepted: each delivery checks again and logs "host not found"."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValidationError({"url": "Enter an http:// or https:// address."})
    if len(url) > 200:
        raise ValidationError({"url": "Keep the address under 200 characters."})
    try:
        url_vet(url)
    except AddressNotAllowed as exc:
        raise ValidationError({"url": str(exc)}) from None
    except (OSError, UnicodeError):
        pass  # not resolvable now; delivery checks again
    return url


@transaction.atomic
def webhook_endpoint_configure(
    *, team: Team, user: User, url: str, is_active: bool = True
) -> tuple[WebhookEndpoint, str | None]:
    """Set the team's endpoint. Returns it and, when it was just created, its new secret (shown
    once; the signing secret of an existing endpoint is kept until rotated)."""
    require(role_in_team(user=user, team_id=team.pk), Perm.WEBHOOK_MANAGE)
    url = _validate_url(url)
    endpoint = WebhookEndpoint.objects.select_for_update().filter(team=team).first()
    if endpoint is None:
        secret = webhook_secret_generate()
        endpoint = WebhookEndpoint(team=team, url=url, secret=secret, is_active=is_active)
        endpoint.full_clean()
        endpoint.save()
        return endpoint, secret
    endpoint.url, endpoint.is_active = url, is_active
    endpoint.full_clean()
    endpoint.save(update_fields=["url", "is_active"])
    return endpoint, None


@transaction.atomic
def webhook_secret_rotate(*, team: Team, user: User) -> tuple[WebhookEndpoint, str]:
    """A new signing secret (returned once); deliveries not yet sent are signed with it."""
    require(role_in_team(user=user, team_id=team.pk), Perm.WEBHOOK_MANAGE)
    endpoint = WebhookEndpoint.objects.select_for_update().filter(team=team).first()
    if endpoint is None:
        raise Conflict("Set the webhook's address first.")
    endpoint.secret = webhook_secret_generate()
    endpoint.save(update_fields=["secret"])
    return endpoint, endpoint.secret


@transaction.atomic
def webhook_endpoint_delete(*, team: Team, user: User) -> None:
    require(role_in_team(user=user, team_id=team.pk), Perm.WEBHOOK_MANAGE)
    WebhookEndpoint.objects.filter(team=team).delete()


@transaction.atomic
def webhook_test_send(*, team: Team, user: User) -> WebhookDelivery:
    """Queue a ``ping`` event, so the team can check their receiver and its signature check."""
    require(role_in_team(user=user, team_id=team.pk), Perm.WEBHOOK_MANAGE)
    endpoint = WebhookEndpoint.objects.filter(team=team).first()
    if endpoint is None:
        raise Conflict("Set the webhook's address first.")
    if not endpoint.is_active:
        raise Conflict("The webhook is switched off: switch it on to send a test event.")
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event=EVENT_TEST,
        payload={
            "event": EVENT_TEST,
            "team": {"id": team.pk, "name": team.name},
            "sent_by": _person(user),
            "sent_at": _iso(timezone.now()),
        },
    )
    _enqueue([delivery])
    return delivery


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


def webhook_deliveries_recent(*, team_id: int, limit: int = 10) -> list[WebhookDelivery]:
    return list(
        WebhookDelivery.objects.filter(endpoint__team_id=team_id)
        .only("id", "event", "created_at", "attempts", "delivered_at", "last_status", "last_error")
        .order_by("-created_at", "-pk")[:limit]
    )
