"""Sending a team's webhook deliveries (docs/webhooks.md; what is sent when: accounts.events).

Each ``accounts.WebhookDelivery`` is written in the transaction that caused it and POSTed by
the worker. A subscription of the standard kind gets the event signed per the Standard Webhooks
specification, with the ``standardwebhooks`` library::

    POST <subscription url>
    Content-Type: application/json
    webhook-id: msg_3f…            (the same on every attempt and on a redelivery)
    webhook-timestamp: 1767225600
    webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>
    Pilotplan-Signature: t=1767225600,v1=<hex …>   (deprecated; removed in the next release)

    {"type": "trigger.fired", "version": 1, "timestamp": "…Z", "data": {…}}

A Slack or Microsoft Teams subscription gets a readable message in that tool's format instead
(``chat_body``), unsigned: incoming webhooks check nothing but their secret address.

Where we POST: ``https`` only unless ``WEBHOOK_ALLOW_HTTP`` (on when DEBUG); the host is
resolved and refused when any of its addresses is not a public one (loopback, private,
link-local, multicast, reserved, unspecified — IPv4 and IPv6, IPv4-mapped included), unless its
name is in ``WEBHOOK_ALLOWED_HOSTS``. This is checked when the address is saved and again at each
delivery, which then connects to the address it vetted (DNS may have changed in between).

A 2xx answer within 5 seconds is delivered. Anything else is recorded (status, time taken, the
start of the answer, and an error category such as "timeout", never the raw exception) and
retried with exponential backoff and jitter: after n failed attempts the next is due between
2ⁿ⁻¹ and 2ⁿ minutes later ("equal jitter", so receivers that failed together do not all come
back in the same second). After ``MAX_ATTEMPTS`` the delivery is given up, the subscription is
switched off and its owner is notified. The tick's ``deliveries_sweep`` queues whatever is due,
so a broker outage or a dead worker only delays a delivery.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import random
import socket
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook

from accounts.models import EventType, Notification, User, WebhookDelivery, WebhookSubscription
from accounts.permissions import Perm, roles_for
from accounts.services import notify
from core.queue import enqueue_on_commit

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5
MAX_ATTEMPTS = 8
SWEEP_BATCH = 500
EXCERPT_CHARS = 500
USER_AGENT = "Pilotplan-Webhooks/2"
Kind = WebhookSubscription.Kind


# --- the signature -------------------------------------------------------------------------------


def body_of(delivery: WebhookDelivery) -> bytes:
    """The exact bytes POSTed (and signed) to a standard subscription: compact JSON."""
    return json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()


def standard_headers(
    *, secret: str, message_id: str, body: bytes, sent_at: dt.datetime
) -> dict[str, str]:
    """The Standard Webhooks headers, and the deprecated ``Pilotplan-Signature`` (the HMAC of
    ``"<t>." + body`` keyed with the whole secret string, as before), kept for one release."""
    timestamp = int(sent_at.timestamp())
    legacy = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": Webhook(secret).sign(message_id, sent_at, body),
        "Pilotplan-Signature": f"t={timestamp},v1={legacy.hexdigest()}",
    }


# --- chat destinations ---------------------------------------------------------------------------


def chat_title(delivery: WebhookDelivery) -> str:
    """ "Rollback trigger fired · Saved cards": the event in words, and the plan if there is one."""
    label = (
        EventType(delivery.event).label if delivery.event in EventType.values else delivery.event
    )
    plan = (delivery.payload.get("data") or {}).get("plan") or {}
    return f"{label} · {plan['title']}" if plan.get("title") else str(label)


def _slack_escape(text: str) -> str:
    # Slack's three control characters (api.slack.com, "Escaping text").
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def chat_body(kind: str, delivery: WebhookDelivery) -> dict[str, Any]:
    """The readable message for a Slack incoming webhook (``text`` for notifications, ``blocks``
    for the message) or a Microsoft Teams one (a MessageCard): title, what happened, link."""
    title, summary, link = chat_title(delivery), delivery.summary or "", delivery.link
    if kind == Kind.SLACK:
        text = f"*{_slack_escape(title)}*\n{_slack_escape(summary)}"
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(summary) or " "}},
        ]
        if link:
            blocks.append(
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "text": {"type": "plain_text", "text": "Open in Pilotplan"},
                            "url": link,
                        }
                    ],
                }
            )
            text += f"\n<{link}|Open in Pilotplan>"
        return {"text": text, "blocks": blocks}
    card: dict[str, Any] = {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": title,
        "themeColor": "0B5CAD",
        "title": title,
        "text": summary,
    }
    if link:
        card["potentialAction"] = [
            {
                "@type": "OpenUri",
                "name": "Open in Pilotplan",
                "targets": [{"os": "default", "uri": link}],
            }
        ]
    return card


def request_of(
    subscription: WebhookSubscription, delivery: WebhookDelivery, sent_at: dt.datetime
) -> tuple[bytes, dict[str, str]]:
    """What to POST for ``delivery`` to ``subscription``: body and headers."""
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if subscription.kind != Kind.STANDARD:
        body = json.dumps(chat_body(subscription.kind, delivery), separators=(",", ":")).encode()
        return body, headers
    body = body_of(delivery)
    headers |= {"Pilotplan-Event": delivery.event, "Pilotplan-Delivery": str(delivery.pk)}
    headers |= standard_headers(
        secret=subscription.secret, message_id=delivery.message_id, body=body, sent_at=sent_at
    )
    return body, headers


# --- the schedule --------------------------------------------------------------------------------


def retry_delay(attempts: int, rng: random.Random | None = None) -> dt.timedelta:
    """How long after the ``attempts``-th failed attempt the next is due: between half of and
    the whole of 2^attempts minutes ("equal jitter")."""
    ceiling = 60.0 * 2**attempts
    return dt.timedelta(seconds=ceiling / 2 + (rng or random).uniform(0, ceiling / 2))


def deliveries_sweep(*, now: dt.datetime) -> int:
    """Queue undelivered webhook deliveries that are due for a (re)try; returns how many."""
    ids = list(
        WebhookDelivery.objects.filter(next_attempt_at__lte=now, subscription__is_active=True)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    for delivery_id in ids:
        enqueue_on_commit("metrics.tasks.webhook_deliver", delivery_id)
    return len(ids)


# --- where we may send -----------------------------------------------------------------------

# What the delivery log shows: a category, never the exception text (which would turn the log
# into a port scanner's report).
ERROR_ADDRESS_NOT_ALLOWED = "address not allowed"
ERROR_HOST_NOT_FOUND = "host not found"
ERROR_REFUSED = "connection refused"
ERROR_TIMEOUT = "timeout"
ERROR_TLS = "TLS error"
ERROR_CONNECTION = "connection failed"
ERROR_BAD_ANSWER = "invalid HTTP answer"


class AddressNotAllowed(Exception):
    """The URL may not be posted to; ``str(exc)`` says why in the user's words."""


def _ip_allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def _host_allow_listed(host: str) -> bool:
    allowed = {h.strip().strip("[]").lower() for h in settings.WEBHOOK_ALLOWED_HOSTS}
    return host.lower() in allowed


def url_vet(url: str) -> tuple[str, int, list[str]]:
    """``(host, port, addresses)`` to connect to for ``url``. Raises ``AddressNotAllowed`` for a
    scheme or an address we do not send to, and ``socket.gaierror`` when the host does not
    resolve. An allow-listed host is resolved but not restricted."""
    parts = urlsplit(url)
    if parts.scheme == "http" and not settings.WEBHOOK_ALLOW_HTTP:
        raise AddressNotAllowed("Use an https:// address.")
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise AddressNotAllowed("Enter an http:// or https:// address.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise AddressNotAllowed("The port is not a number between 0 and 65535.") from None
    host = parts.hostname
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not _host_allow_listed(host) and not all(_ip_allowed(a) for a in addresses):
        raise AddressNotAllowed(
            "This address points at a private, loopback or otherwise internal network; "
            "webhooks go to public addresses only."
        )
    return host, port, addresses


def _connect_vetted(addresses: list[str], port: int, timeout: float | None) -> socket.socket:
    """A connection to the first of ``addresses`` (vetted beforehand) that answers."""
    error: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as exc:
            error = exc
    raise error or OSError("no address")


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to addresses vetted beforehand, not to whatever the host name resolves to now."""

    def __init__(self, host: str, port: int, *, addresses: list[str], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._addresses = addresses

    def connect(self) -> None:
        self.sock = _connect_vetted(self._addresses, self.port, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As ``_PinnedHTTPConnection``, with TLS verified against the host name (SNI too)."""

    def __init__(self, host: str, port: int, *, addresses: list[str], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._addresses = addresses

    def connect(self) -> None:
        sock = _connect_vetted(self._addresses, self.port, self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str, str]:
    """POST and return (status, error category, the start of the answer); status ``None`` when
    no HTTP answer came back. Redirects are not followed: the signed POST would turn into an
    unsigned GET elsewhere."""
    try:
        host, port, addresses = url_vet(url)
    except AddressNotAllowed:
        return None, ERROR_ADDRESS_NOT_ALLOWED, ""
    except (OSError, UnicodeError):
        return None, ERROR_HOST_NOT_FOUND, ""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    cls = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    connection = cls(host, port, addresses=addresses, timeout=TIMEOUT_SECONDS)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        status = response.status
        excerpt = response.read(EXCERPT_CHARS).decode("utf-8", "replace")[:EXCERPT_CHARS]
    except ConnectionRefusedError:
        return None, ERROR_REFUSED, ""
    except TimeoutError:  # socket.timeout is TimeoutError
        return None, ERROR_TIMEOUT, ""
    except ssl.SSLError:  # certificate errors included
        return None, ERROR_TLS, ""
    except http.client.HTTPException:
        return None, ERROR_BAD_ANSWER, ""
    except OSError:
        return None, ERROR_CONNECTION, ""
    finally:
        connection.close()
    return status, "" if 200 <= status < 300 else f"HTTP {status}", excerpt


def _disable(subscription: WebhookSubscription, delivery: WebhookDelivery) -> None:
    """Switch the subscription off after a delivery was given up, and tell its owner (or, for a
    subscription nobody owns any more, the team's people who manage webhooks). Compare-and-set:
    told once, however many deliveries give up at the same time."""
    reason = (
        f"Switched off after {MAX_ATTEMPTS} failed attempts to deliver "
        f"“{delivery.event}” ({delivery.last_error or 'no answer'})."
    )
    switched = WebhookSubscription.objects.filter(pk=subscription.pk, is_active=True).update(
        is_active=False, disabled_reason=reason
    )
    if not switched:
        return
    if subscription.created_by_id is not None:
        owners = [subscription.created_by]
    else:
        owners = list(
            User.objects.filter(
                memberships__team_id=subscription.team_id,
                memberships__role__in=roles_for(Perm.WEBHOOK_MANAGE),
            )
        )
    notify(
        users=owners,
        kind=Notification.Kind.WEBHOOK_DISABLED,
        message=f"Webhook “{subscription.name}” was switched off: its receiver failed "
        f"{MAX_ATTEMPTS} times in a row. Fix it, switch it on and redeliver what it missed.",
        url=reverse("metrics:webhook_detail", args=[subscription.team_id, subscription.pk]),
        actor=None,
    )


def webhook_deliver(*, delivery_id: int, now: dt.datetime | None = None) -> bool | None:
    """POST one delivery; record the outcome. Returns True when delivered, False on a failed
    attempt, None when there was nothing to do (delivered, given up, not yet due, subscription
    switched off, or another worker holds it right now: the row is locked with SKIP LOCKED)."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("subscription__created_by")
            .filter(pk=delivery_id, next_attempt_at__isnull=False)
            .first()
        )
        if delivery is None:
            return None
        if delivery.next_attempt_at > (now or timezone.now()):  # type: ignore[operator]
            return None
        subscription = delivery.subscription
        if not subscription.is_active:
            return None  # switched off: kept, and sent if the team switches it on again
        sent_at = timezone.now()
        body, headers = request_of(subscription, delivery, sent_at)
        started = time.monotonic()
        status, error, excerpt = _post(subscription.url, body, headers)
        delivered = status is not None and 200 <= status < 300
        delivery.attempts += 1
        delivery.last_attempt_at = sent_at
        delivery.last_status = status
        delivery.last_duration_ms = round((time.monotonic() - started) * 1000)
        delivery.response_excerpt = excerpt
        delivery.last_error = "" if delivered else (error or f"HTTP {status}")[:300]
        if delivered:
            delivery.delivered_at = timezone.now()
            delivery.next_attempt_at = None
        elif delivery.attempts >= MAX_ATTEMPTS:
            delivery.failed_at = timezone.now()
            delivery.next_attempt_at = None
            log.warning("Webhook delivery %s gave up: %s", delivery.pk, delivery.last_error)
        else:
            delivery.next_attempt_at = sent_at + retry_delay(delivery.attempts)
        delivery.save(
            update_fields=[
                "attempts",
                "last_attempt_at",
                "last_status",
                "last_duration_ms",
                "response_excerpt",
                "last_error",
                "delivered_at",
                "failed_at",
                "next_attempt_at",
            ]
        )
        if delivery.failed_at is not None:
            _disable(subscription, delivery)
    return delivered
