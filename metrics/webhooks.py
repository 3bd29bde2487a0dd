"""Signed outbound webhooks (docs/alerts.md, "Webhooks").

Each ``WebhookDelivery`` is written in the transaction that caused it and POSTed by the worker:

    POST <endpoint url>
    Content-Type: application/json
    Pilotplan-Event: trigger.fired
    Pilotplan-Delivery: 42
    Pilotplan-Signature: t=1767225600,v1=<hex HMAC-SHA256(secret, "1767225600." + body)>

Where we POST: ``https`` only unless ``WEBHOOK_ALLOW_HTTP`` (on when DEBUG); the host is
resolved and refused when any of its addresses is not a public one (loopback, private,
link-local, multicast, reserved, unspecified — IPv4 and IPv6, IPv4-mapped included), unless its
name is in ``WEBHOOK_ALLOWED_HOSTS``. This is checked when the address is saved and again at each
delivery, which then connects to the address it vetted (DNS may have changed in between).

A 2xx answer within 5 seconds is delivered. Anything else is recorded (``last_status``, and
``last_error`` as a category such as "timeout", never the raw exception) and retried with
exponential backoff: attempt n+1 is due 2^n minutes after attempt n (2, 6, 14, 30, 62, 126 and
254 minutes after the event), and the delivery gives up after ``MAX_ATTEMPTS``. The tick's
``deliveries_sweep`` queues whatever is due, so a broker
outage or a dead worker only delays a delivery.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import socket
import ssl
import time
from urllib.parse import urlsplit

from django.conf import settings
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


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
    """POST and return (status, error category); status ``None`` when no HTTP answer came back.
    Redirects are not followed: the signed POST would turn into an unsigned GET elsewhere."""
    try:
        host, port, addresses = url_vet(url)
    except AddressNotAllowed:
        return None, ERROR_ADDRESS_NOT_ALLOWED
    except (OSError, UnicodeError):
        return None, ERROR_HOST_NOT_FOUND
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    cls = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    connection = cls(host, port, addresses=addresses, timeout=TIMEOUT_SECONDS)
    try:
        connection.request("POST", path, body=body, headers=headers)
        status = connection.getresponse().status
    except ConnectionRefusedError:
        return None, ERROR_REFUSED
    except TimeoutError:  # socket.timeout is TimeoutError
        return None, ERROR_TIMEOUT
    except ssl.SSLError:  # certificate errors included
        return None, ERROR_TLS
    except http.client.HTTPException:
        return None, ERROR_BAD_ANSWER
    except OSError:
        return None, ERROR_CONNECTION
    finally:
        connection.close()
    return status, "" if 200 <= status < 300 else f"HTTP {status}"


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
