"""A team's webhook subscriptions: create, change, switch on, rotate, test, remove, redeliver;
and the reads behind the pages and the API (docs/webhooks.md).

Writes are atomic and keyword-only and check ``Perm.WEBHOOK_MANAGE`` themselves, so the page,
the API and any script get the same rule. Addresses are vetted with the guard deliveries use
(``metrics.webhooks.url_vet``): no private, loopback or otherwise internal network.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.events import (
    PAYLOAD_VERSION,
    SUBSCRIBABLE,
    deliveries_enqueue,
    event_publish,
    person,
)
from accounts.models import (
    WEBHOOK_PAYLOAD_VERSIONS,
    EventType,
    Team,
    User,
    WebhookDelivery,
    WebhookSubscription,
)
from accounts.permissions import Perm, require, role_in_team
from core.exceptions import Conflict
from metrics.webhooks import AddressNotAllowed, url_vet

Kind = WebhookSubscription.Kind
MAX_SUBSCRIPTIONS = 20
URL_MAX = 500
DELIVERIES_SHOWN = 50

# What an incoming-webhook address looks like, to catch a Slack URL saved as Teams and back.
CHAT_HOSTS = {
    Kind.SLACK: ("hooks.slack.com",),
    Kind.TEAMS: (".webhook.office.com", ".logic.azure.com", ".powerautomate.com"),
}


def secret_generate() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _validate_url(url: str) -> str:
    """The address as saved; refused (on the ``url`` field) when it is not http(s), or not https
    in production, or resolves to an internal address. A host that does not resolve yet is
    accepted: each delivery checks again and logs "host not found"."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValidationError({"url": "Enter an http:// or https:// address."})
    if len(url) > URL_MAX:
        raise ValidationError({"url": f"Keep the address under {URL_MAX} characters."})
    try:
        url_vet(url)
    except AddressNotAllowed as exc:
        raise ValidationError({"url": str(exc)}) from None
    except (OSError, UnicodeError):
        pass  # not resolvable now; delivery checks again
    return url


def _validate_events(events: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(events or []))
    allowed = {value for value, _label in SUBSCRIBABLE}
    unknown = [e for e in chosen if e not in allowed]
    if unknown:
        raise ValidationError({"events": f"Unknown event: {', '.join(map(str, unknown))}."})
    if not chosen:
        raise ValidationError({"events": "Choose at least one event."})
    return chosen


def _validate_payload_version(version: int | None) -> int:
    if version is None:
        return PAYLOAD_VERSION
    if version not in WEBHOOK_PAYLOAD_VERSIONS:
        known = ", ".join(map(str, WEBHOOK_PAYLOAD_VERSIONS))
        raise ValidationError({"payload_version": f"Choose a payload version we send: {known}."})
    return version


def _validate(*, name: str, kind: str, url: str, events: Iterable[str]) -> dict[str, object]:
    errors: dict[str, str] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = "Name the subscription (what receives it)."
    elif len(name) > 100:
        errors["name"] = "Keep the name under 100 characters."
    if kind not in Kind.values:
        errors["kind"] = "Choose signed JSON, Slack or Microsoft Teams."
    try:
        url = _validate_url(url)
    except ValidationError as exc:
        errors["url"] = " ".join(exc.message_dict["url"])
    else:
        host = (urlsplit(url).hostname or "").lower()
        other = {Kind.SLACK: Kind.TEAMS, Kind.TEAMS: Kind.SLACK}.get(kind)  # type: ignore[call-overload]
        if other and any(host == h.lstrip(".") or host.endswith(h) for h in CHAT_HOSTS[other]):
            errors["url"] = f"This is a {Kind(other).label} address; choose that kind."
    try:
        events = _validate_events(events)
    except ValidationError as exc:
        errors["events"] = " ".join(exc.message_dict["events"])
    if errors:
        raise ValidationError(errors)
    return {"name": name, "kind": kind, "url": url, "events": events}


def _manager(*, team: Team, user: User) -> None:
    require(role_in_team(user=user, team_id=team.pk), Perm.WEBHOOK_MANAGE)


def _locked(*, team: Team, subscription_id: int) -> WebhookSubscription:
    subscription = (
        WebhookSubscription.objects.select_for_update()
        .filter(team=team, pk=subscription_id)
        .first()
    )
    if subscription is None:
        raise Http404("No such webhook subscription")
    return subscription


@transaction.atomic
def subscription_create(
    *,
    team: Team,
    user: User,
    name: str,
    kind: str,
    url: str,
    events: Iterable[str],
    payload_version: int | None = None,
) -> tuple[WebhookSubscription, str]:
    """A new subscription, owned by ``user``; returns it and its signing secret (shown once).
    It receives ``payload_version`` of the payloads, by default the current one."""
    _manager(team=team, user=user)
    fields = _validate(name=name, kind=kind, url=url, events=events)
    fields["payload_version"] = _validate_payload_version(payload_version)
    # Lock the team row: two concurrent creates cannot both pass the count below.
    Team.objects.select_for_update().filter(pk=team.pk).first()
    if WebhookSubscription.objects.filter(team=team).count() >= MAX_SUBSCRIPTIONS:
        raise Conflict(f"A team has at most {MAX_SUBSCRIPTIONS} webhook subscriptions.")
    subscription = WebhookSubscription(
        team=team, secret=secret_generate(), created_by=user, **fields
    )
    subscription.full_clean()
    subscription.save()
    return subscription, subscription.secret


@transaction.atomic
def subscription_update(
    *,
    team: Team,
    user: User,
    subscription_id: int,
    name: str,
    kind: str,
    url: str,
    events: Iterable[str],
    is_active: bool,
    payload_version: int | None = None,
) -> WebhookSubscription:
    """Change what a subscription hears and where. Switching it on again clears the reason it
    was switched off; deliveries it missed stay in the log, to redeliver. ``payload_version``
    None keeps the version it pinned."""
    _manager(team=team, user=user)
    fields = _validate(name=name, kind=kind, url=url, events=events)
    if payload_version is not None:
        fields["payload_version"] = _validate_payload_version(payload_version)
    subscription = _locked(team=team, subscription_id=subscription_id)
    for attr, value in fields.items():
        setattr(subscription, attr, value)
    if is_active and not subscription.is_active:
        subscription.disabled_reason = ""
    subscription.is_active = is_active
    subscription.full_clean()
    subscription.save(
        update_fields=[
            "name", "kind", "url", "events", "is_active", "disabled_reason", "payload_version"
        ]
    )  # fmt: skip
    return subscription


@transaction.atomic
def subscription_secret_rotate(
    *, team: Team, user: User, subscription_id: int
) -> tuple[WebhookSubscription, str]:
    """A new signing secret (returned once); deliveries not yet sent are signed with it."""
    _manager(team=team, user=user)
    subscription = _locked(team=team, subscription_id=subscription_id)
    subscription.secret = secret_generate()
    subscription.save(update_fields=["secret"])
    return subscription, subscription.secret


@transaction.atomic
def subscription_delete(*, team: Team, user: User, subscription_id: int) -> None:
    _manager(team=team, user=user)
    _locked(team=team, subscription_id=subscription_id).delete()


@transaction.atomic
def subscription_test_send(*, team: Team, user: User, subscription_id: int) -> WebhookDelivery:
    """Queue a ``ping`` event to this subscription, so the team can check their receiver."""
    _manager(team=team, user=user)
    subscription = _locked(team=team, subscription_id=subscription_id)
    if not subscription.is_active:
        raise Conflict("The subscription is switched off: switch it on to send a test event.")
    [delivery] = event_publish(
        team_id=team.pk,
        event=EventType.PING,
        data={"team": {"id": team.pk, "name": team.name}, "sent_by": person(user)},
        summary=f"A test event from {team.name}, sent by {user.display_name}.",
        subscriptions=[subscription],
    )
    return delivery


@transaction.atomic
def delivery_redeliver(
    *, team: Team, user: User, subscription_id: int, delivery_id: int
) -> WebhookDelivery:
    """Send a delivery again, as a new delivery with the same ``webhook-id`` and payload (a
    receiver that already has it can tell). The subscription must be switched on."""
    _manager(team=team, user=user)
    subscription = _locked(team=team, subscription_id=subscription_id)
    original = WebhookDelivery.objects.filter(subscription=subscription, pk=delivery_id).first()
    if original is None:
        raise Http404("No such delivery")
    if not subscription.is_active:
        raise Conflict("The subscription is switched off: switch it on to redeliver.")
    now = timezone.now()
    delivery = WebhookDelivery.objects.create(
        subscription=subscription,
        message_id=original.message_id,
        event=original.event,
        payload=original.payload,
        summary=original.summary,
        link=original.link,
        created_at=now,
        next_attempt_at=now,
    )
    deliveries_enqueue([delivery])
    return delivery


# --- reads ---------------------------------------------------------------------------------------


def subscriptions_for_team(*, team_id: int) -> QuerySet[WebhookSubscription]:
    return WebhookSubscription.objects.filter(team_id=team_id).select_related("created_by")


def subscription_for_team(*, team_id: int, subscription_id: int) -> WebhookSubscription:
    subscription = subscriptions_for_team(team_id=team_id).filter(pk=subscription_id).first()
    if subscription is None:
        raise Http404("No such webhook subscription")
    return subscription


def deliveries_for_subscription(*, subscription_id: int) -> QuerySet[WebhookDelivery]:
    """The delivery log, newest first (``accounts_delivery_log_idx``)."""
    return WebhookDelivery.objects.filter(subscription_id=subscription_id).order_by(
        "-created_at", "-pk"
    )


def event_label(event: str) -> str:
    return str(EventType(event).label) if event in EventType.values else event
