"""Signed outbound webhooks (docs/alerts.md, "Webhooks").

Each ``WebhookDelivery`` is written in the transaction that caused it and POSTed by the worker:

    POST <endpoint url>
    Content-Type: application/json
    Pilotplan-Event: trigger.fired
    Pilotplan-Delivery: 42
    Pilotplan-Signature: t=1767225600,v1=<hex HMAC-SHA256(secret, "1767225600." + body)>

A 2xx answer within 5 seconds is delivered. Anything else is recorded (``last_status``,
``last_error``) and retried with exponential backoff: attempt n+1 is due 2^n minutes after
attempt n (2, 6, 14, 30, 62, 126 and 254 minutes after the event), and the delivery gives up
after ``MAX_ATTEMPTS``. The tick's ``deliveries_sweep`` queues whatever is due, so a broker
outage or a dead worker only delays a delivery.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from core.queue import enqueue_on_commit
from metrics.models import WebhookDelivery

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5
MAX_ATTEMPTS = 8
SWEEP_BATCH = 500
USER_AGENT = "Pilotplan-Webhooks/1"


# --- the signature -------------------------------------------------------------------------------


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``Pilotplan-Signature`` header for ``body`` sent at ``timestamp`` (Unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    secret: str, header: str, body: bytes, tolerance: int = 300, now: float | None = None
) -> bool:
    """True if ``header`` (``t=<unix seconds>,v1=<hex>``) signs ``body`` with ``secret`` and
    ``t`` is within ``tolerance`` seconds of now (a replayed old request fails). Receivers can
    copy this function: it needs only the standard library."""
    try:
        fields = [part.split("=", 1) for part in header.split(",")]
        timestamp = int(next(value for key, value in fields if key.strip() == "t"))
        signatures = [value.strip() for key, value in fields if key.strip() == "v1"]
    except (ValueError, StopIteration):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return any(hmac.compare_digest(expected.hexdigest(), s) for s in signatures)


def body_of(delivery: WebhookDelivery) -> bytes:
    """The exact bytes POSTed (and signed): the payload as compact JSON, keys sorted."""
    payload = {**delivery.payload, "delivery_id": delivery.pk}
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


# --- the schedule --------------------------------------------------------------------------------


def next_attempt_at(delivery: WebhookDelivery) -> dt.datetime | None:
    """When the next attempt is due; ``None`` once delivered or given up. With n attempts made,
    attempt n+1 is due 2 + 4 + … + 2^n = 2^(n+1) − 2 minutes after the delivery was created."""
    if delivery.delivered_at is not None or delivery.attempts >= MAX_ATTEMPTS:
        return None
    return delivery.created_at + dt.timedelta(minutes=2 ** (delivery.attempts + 1) - 2)


def _due(now: dt.datetime) -> QuerySet[WebhookDelivery]:
    """Undelivered deliveries whose next attempt is due (see ``next_attempt_at``); the partial
    index on undelivered rows serves it."""
    return WebhookDelivery.objects.filter(
        delivered_at__isnull=True,
        attempts__lt=MAX_ATTEMPTS,
        endpoint__is_active=True,
        created_at__lte=RawSQL(
            "%s::timestamptz - make_interval(mins => (power(2, attempts + 1) - 2)::int)", [now]
        ),
    )


# --- sending -------------------------------------------------------------------------------------


def deliveries_sweep(*, now: dt.datetime) -> int:
    """Queue undelivered webhook deliveries that are due for a (re)try; returns how many."""

    ids = list(_due(now).order_by("created_at").values_list("pk", flat=True)[:SWEEP_BATCH])
    for delivery_id in ids:
        enqueue_on_commit("metrics.tasks.webhook_deliver", delivery_id)
    return len(ids)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is not a delivery: the signed POST would turn into an unsigned GET."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
    """POST and return (status, error); status ``None`` when no HTTP answer came back."""
    if not url.startswith(("http://", "https://")):
        return None, "Not an http(s) address."
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with _opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, f"{type(exc).__name__}: {reason}"[:300]


def webhook_deliver(*, delivery_id: int, now: dt.datetime | None = None) -> bool | None:
    """POST one delivery, signed; record the outcome. Returns True when delivered, False on a
    failed attempt, None when there was nothing to do (delivered, given up, not yet due, or
    another worker holds it right now: the row is locked with SKIP LOCKED for the attempt)."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint")
            .filter(pk=delivery_id, delivered_at__isnull=True)
            .first()
        )
        if delivery is None:
            return None
        due = next_attempt_at(delivery)
        if due is None or due > (now or timezone.now()):
            return None
        endpoint = delivery.endpoint
        if not endpoint.is_active:
            return None  # switched off: kept, and sent if the team switches it on again
        body = body_of(delivery)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Pilotplan-Event": delivery.event,
            "Pilotplan-Delivery": str(delivery.pk),
            "Pilotplan-Signature": sign(endpoint.secret, body, int(time.time())),
        }
        status, error = _post(endpoint.url, body, headers)
        delivered = status is not None and 200 <= status < 300
        delivery.attempts += 1
        delivery.last_status = status
        if delivered:
            delivery.delivered_at = timezone.now()
            delivery.last_error = ""
        else:
            delivery.last_error = (error or f"HTTP {status}")[:300]
            if delivery.attempts >= MAX_ATTEMPTS:
                log.warning("Webhook delivery %s gave up: %s", delivery.pk, delivery.last_error)
        delivery.save(update_fields=["attempts", "last_status", "delivered_at", "last_error"])
    return delivered
