"""Signed outbound webhooks, against a real HTTP server on localhost (``http.server`` in a
thread): the signature checked with the documented scheme, retries with backoff after a 500, giving
up, idempotent delivery, and the sweep that picks up what is due."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from django.utils import timezone

from metrics import webhooks
from metrics.models import WebhookDelivery, WebhookEndpoint
from metrics.webhooks import (
    MAX_ATTEMPTS,
    deliveries_sweep,
    next_attempt_at,
    verify_signature,
    webhook_deliver,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _local_receivers_allowed(settings):  # type: ignore[no-untyped-def]
    """The fake receivers listen on 127.0.0.1, which webhooks refuse unless allow-listed."""
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]


SECRET = "whsec_test_0123456789abcdef"


@dataclass
class Receiver:
    """What the fake receiver got, and what it answers next (200 once the list runs out)."""

    url: str
    statuses: list[int] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            status = state.statuses.pop(0) if state.statuses else 200
            if status in (301, 302, 307):
                self.send_response(status)
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.end_headers()
                return
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status < 300 else b"nope")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/pilotplan"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def endpoint(team, receiver) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(team=team, url=receiver.url, secret=SECRET)


def delivery_for(endpoint: WebhookEndpoint, **fields: object) -> WebhookDelivery:
    payload = {"event": "trigger.fired", "plan": {"id": 1, "title": "Saved cards"}}
    return WebhookDelivery.objects.create(
        endpoint=endpoint, event="trigger.fired", payload=payload, **fields
    )


def documented_check(secret: str, header: str, body: bytes) -> bool:
    """The receiver's side, written from docs/alerts.md rather than from our code: HMAC-SHA256
    over ``"<t>." + raw body`` with the secret, hex, compared in constant time; t recent."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    timestamp = int(parts["t"])
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return abs(time.time() - timestamp) < 300 and hmac.compare_digest(
        expected.hexdigest(), parts["v1"]
    )


# --- delivery ------------------------------------------------------------------------------------


def test_a_delivery_is_posted_signed_and_recorded(endpoint, receiver):
    delivery = delivery_for(endpoint)

    assert webhook_deliver(delivery_id=delivery.pk) is True

    [request] = receiver.requests
    headers, body = request["headers"], request["body"]
    assert request["path"] == "/hooks/pilotplan"
    assert headers["Content-Type"] == "application/json"
    assert headers["Pilotplan-Event"] == "trigger.fired"
    assert headers["Pilotplan-Delivery"] == str(delivery.pk)
    assert documented_check(SECRET, headers["Pilotplan-Signature"], body)
    assert verify_signature(SECRET, headers["Pilotplan-Signature"], body)
    assert json.loads(body) == {
        "event": "trigger.fired",
        "plan": {"id": 1, "title": "Saved cards"},
        "delivery_id": delivery.pk,
    }
    delivery.refresh_from_db()
    assert delivery.delivered_at is not None
    assert delivery.attempts == 1
    assert delivery.last_status == 200
    assert delivery.last_error == ""


def test_a_delivered_event_is_not_sent_again(endpoint, receiver):
    delivery = delivery_for(endpoint)
    webhook_deliver(delivery_id=delivery.pk)

    assert webhook_deliver(delivery_id=delivery.pk) is None
    assert len(receiver.requests) == 1


def test_a_500_is_retried_after_the_backoff(endpoint, receiver):
    receiver.statuses = [500]
    delivery = delivery_for(endpoint)

    assert webhook_deliver(delivery_id=delivery.pk) is False
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.last_status) == (1, 500)
    assert delivery.last_error.startswith("HTTP 500")
    assert delivery.delivered_at is None

    # Not due yet: a duplicate message or an early sweep sends nothing.
    due = next_attempt_at(delivery)
    assert due == delivery.created_at + dt.timedelta(minutes=2)
    assert webhook_deliver(delivery_id=delivery.pk) is None
    assert deliveries_sweep(now=due - dt.timedelta(seconds=1)) == 0
    assert len(receiver.requests) == 1

    assert deliveries_sweep(now=due) == 1
    assert webhook_deliver(delivery_id=delivery.pk, now=due) is True
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.last_status) == (2, 200)
    assert delivery.delivered_at is not None
    assert len(receiver.requests) == 2
    # Both attempts carry the same delivery id (receivers de-duplicate on it).
    assert {r["headers"]["Pilotplan-Delivery"] for r in receiver.requests} == {str(delivery.pk)}


def test_backoff_doubles_and_gives_up_after_the_last_attempt(endpoint, receiver):
    receiver.statuses = [503] * MAX_ATTEMPTS
    delivery = delivery_for(endpoint)
    schedule = []
    for _ in range(MAX_ATTEMPTS):
        due = next_attempt_at(delivery)
        assert due is not None
        schedule.append(round((due - delivery.created_at).total_seconds() / 60))
        assert webhook_deliver(delivery_id=delivery.pk, now=due) is False
        delivery.refresh_from_db()

    assert schedule == [0, 2, 6, 14, 30, 62, 126, 254]
    assert delivery.attempts == MAX_ATTEMPTS
    assert next_attempt_at(delivery) is None
    much_later = timezone.now() + dt.timedelta(days=9)
    assert webhook_deliver(delivery_id=delivery.pk, now=much_later) is None
    assert deliveries_sweep(now=timezone.now() + dt.timedelta(days=30)) == 0
    assert len(receiver.requests) == MAX_ATTEMPTS


def test_an_unreachable_receiver_is_recorded(team):
    endpoint = WebhookEndpoint.objects.create(team=team, url="http://127.0.0.1:9/", secret=SECRET)
    delivery = delivery_for(endpoint)

    assert webhook_deliver(delivery_id=delivery.pk) is False
    delivery.refresh_from_db()
    assert delivery.last_status is None
    assert "refused" in delivery.last_error.lower()


def test_a_redirect_is_not_a_delivery(endpoint, receiver):
    receiver.statuses = [302]
    delivery = delivery_for(endpoint)

    assert webhook_deliver(delivery_id=delivery.pk) is False
    delivery.refresh_from_db()
    assert delivery.last_status == 302
    assert len(receiver.requests) == 1


@pytest.mark.django_db(transaction=True)
def test_a_delivery_being_sent_is_skipped_by_a_second_worker(receiver):
    """SKIP LOCKED: while one worker holds the row (mid-POST), another does nothing."""
    from django.db import connection, transaction

    from accounts.models import Team

    team = Team.objects.create(name="Locks", slug="locks")
    endpoint = WebhookEndpoint.objects.create(team=team, url=receiver.url, secret=SECRET)
    delivery = delivery_for(endpoint)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with transaction.atomic():
            WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
            held.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    try:
        assert webhook_deliver(delivery_id=delivery.pk) is None
        assert receiver.requests == []
    finally:
        release.set()
        holder.join()
    assert webhook_deliver(delivery_id=delivery.pk) is True


def test_the_sweep_picks_up_what_the_broker_lost(endpoint):
    fresh = delivery_for(endpoint)  # never attempted: due at once
    delivered = delivery_for(endpoint, delivered_at=timezone.now(), attempts=1)
    waiting = delivery_for(endpoint, attempts=3)  # due 14 minutes after creation
    assert delivered and waiting

    assert deliveries_sweep(now=timezone.now()) == 1
    assert {d.pk for d in webhooks._due(timezone.now())} == {fresh.pk}
    later = timezone.now() + dt.timedelta(minutes=15)
    assert {d.pk for d in webhooks._due(later)} == {fresh.pk, waiting.pk}


# --- the signature helper ------------------------------------------------------------------------


def test_verify_signature_refuses_tampering_wrong_secrets_and_replays():
    body = b'{"event":"ping"}'
    now = int(time.time())
    header = webhooks.sign(SECRET, body, now)

    assert verify_signature(SECRET, header, body)
    assert not verify_signature(SECRET, header, body + b" ")
    assert not verify_signature("whsec_other", header, body)
    assert not verify_signature(SECRET, webhooks.sign(SECRET, body, now - 301), body)
    assert verify_signature(SECRET, webhooks.sign(SECRET, body, now - 301), body, tolerance=600)
    assert not verify_signature(SECRET, "garbage", body)
    assert not verify_signature(SECRET, "t=abc,v1=00", body)
    # Several v1 values (e.g. during a rotation) pass if one matches.
    other = webhooks.sign("whsec_other", body, now).split("v1=")[1]
    assert verify_signature(SECRET, f"{header},v1={other}", body)


def test_a_switched_off_endpoint_is_not_sent_to(endpoint, receiver):
    delivery = delivery_for(endpoint)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False)

    assert webhook_deliver(delivery_id=delivery.pk) is None
    assert deliveries_sweep(now=timezone.now()) == 0
    assert receiver.requests == []
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=True)
    assert webhook_deliver(delivery_id=delivery.pk) is True
