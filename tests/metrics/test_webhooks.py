"""Webhook deliveries against real HTTP servers on localhost (tests/metrics/receivers.py): each
delivery verified by the receiver with the Standard Webhooks library, the deprecated header with
the documented scheme, retries with backoff and jitter, giving up and switching off (with a
notice), idempotent delivery, the sweep, chat destinations, and publishing after commit."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import random
import threading
import time
from collections.abc import Iterator

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from standardwebhooks import Webhook

from accounts.events import event_publish
from accounts.models import EventType, Notification, Team, WebhookDelivery, WebhookSubscription
from metrics import subscriptions
from metrics.webhooks import MAX_ATTEMPTS, deliveries_sweep, retry_delay, webhook_deliver
from tests.metrics.receivers import Receiver, running

pytestmark = pytest.mark.django_db

FIRED = EventType.TRIGGER_FIRED


@pytest.fixture(autouse=True)
def _local_receivers_allowed(settings):  # type: ignore[no-untyped-def]
    """The fake receivers listen on 127.0.0.1, which webhooks refuse unless allow-listed."""
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.SITE_URL = "https://pilotplan.example.test"


SECRET = subscriptions.secret_generate()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running(Receiver(secret=SECRET)) as state:
        yield state


@pytest.fixture
def subscription(team, po, receiver) -> WebhookSubscription:
    return WebhookSubscription.objects.create(
        team=team, name="Ops", url=receiver.url, secret=SECRET, events=[FIRED], created_by=po
    )


def publish(team: Team, event: str = FIRED, **data: object) -> list[WebhookDelivery]:
    return event_publish(
        team_id=team.pk,
        event=event,
        data={"plan": {"id": 1, "title": "Saved cards"}, **data},
        summary="“p95 latency > 300 ms” breached (value 412).",
        link="/plans/1",
    )


def one(team: Team, **data: object) -> WebhookDelivery:
    [delivery] = publish(team, **data)
    return delivery


def legacy_check(secret: str, header: str, body: bytes) -> bool:
    """The deprecated header, checked as docs/webhooks.md describes it, not from our code."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    timestamp = int(parts["t"])
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return abs(time.time() - timestamp) < 300 and hmac.compare_digest(
        expected.hexdigest(), parts["v1"]
    )


# --- delivery ------------------------------------------------------------------------------------


def test_a_delivery_verifies_with_the_standard_webhooks_library(team, subscription, receiver):
    delivery = one(team)

    assert webhook_deliver(delivery_id=delivery.pk) is True

    [got] = receiver.requests
    assert got.error == ""
    assert got.path == "/hooks/pilotplan"
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["webhook-id"] == delivery.message_id
    assert got.verified["type"] == "trigger.fired"
    assert got.verified["version"] == 1
    assert got.verified["data"] == {"plan": {"id": 1, "title": "Saved cards"}}
    assert dt.datetime.fromisoformat(got.verified["timestamp"]) <= timezone.now()
    # The deprecated header still verifies, for one release.
    assert legacy_check(SECRET, got.headers["Pilotplan-Signature"], got.body)
    delivery.refresh_from_db()
    assert delivery.delivered_at is not None
    assert (delivery.attempts, delivery.last_status, delivery.last_error) == (1, 200, "")
    assert delivery.next_attempt_at is None
    assert delivery.response_excerpt == "ok"
    assert delivery.last_duration_ms is not None and delivery.last_duration_ms >= 0


def test_a_receiver_with_another_secret_refuses_and_the_log_says_so(team, po):
    with running(Receiver(secret=subscriptions.secret_generate())) as other:
        WebhookSubscription.objects.create(
            team=team, name="Wrong", url=other.url, secret=SECRET, events=[FIRED]
        )
        delivery = one(team)
        assert webhook_deliver(delivery_id=delivery.pk) is False
    assert other.requests[0].error == "No matching signature found"
    delivery.refresh_from_db()
    assert (delivery.last_status, delivery.last_error) == (401, "HTTP 401")
    assert "No matching signature" in delivery.response_excerpt


def test_a_delivered_event_is_not_sent_again(team, subscription, receiver):
    delivery = one(team)
    webhook_deliver(delivery_id=delivery.pk)

    assert webhook_deliver(delivery_id=delivery.pk) is None
    assert len(receiver.requests) == 1


def test_a_500_is_retried_after_a_jittered_backoff_with_the_same_webhook_id(
    team, subscription, receiver
):
    receiver.statuses = [500]
    delivery = one(team)

    assert webhook_deliver(delivery_id=delivery.pk) is False
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.last_status, delivery.last_error) == (1, 500, "HTTP 500")
    wait = delivery.next_attempt_at - delivery.last_attempt_at
    assert dt.timedelta(minutes=1) <= wait <= dt.timedelta(minutes=2)

    # Not due yet: a duplicate message or an early sweep sends nothing.
    assert webhook_deliver(delivery_id=delivery.pk) is None
    assert deliveries_sweep(now=delivery.next_attempt_at - dt.timedelta(seconds=1)) == 0
    assert len(receiver.requests) == 1

    due = delivery.next_attempt_at
    assert deliveries_sweep(now=due) == 1
    assert webhook_deliver(delivery_id=delivery.pk, now=due) is True
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.last_status) == (2, 200)
    assert {r.headers["webhook-id"] for r in receiver.requests} == {delivery.message_id}
    assert all(r.error == "" for r in receiver.requests)


def test_the_backoff_grows_exponentially_with_equal_jitter():
    for attempts in range(1, MAX_ATTEMPTS):
        ceiling = dt.timedelta(minutes=2**attempts)
        delays = {retry_delay(attempts, random.Random(seed)) for seed in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 10  # jittered: receivers that failed together do not return together


def test_persistent_failure_gives_up_switches_off_and_tells_the_owner(
    team, po, subscription, receiver
):
    receiver.statuses = [503] * MAX_ATTEMPTS
    delivery = one(team)
    for _ in range(MAX_ATTEMPTS):
        delivery.refresh_from_db()
        assert webhook_deliver(delivery_id=delivery.pk, now=delivery.next_attempt_at) is False

    delivery.refresh_from_db()
    assert delivery.attempts == MAX_ATTEMPTS
    assert delivery.failed_at is not None and delivery.next_attempt_at is None
    subscription.refresh_from_db()
    assert not subscription.is_active
    assert "8 failed attempts" in subscription.disabled_reason
    [notice] = Notification.objects.filter(kind=Notification.Kind.WEBHOOK_DISABLED)
    assert notice.user == po
    assert "Ops" in notice.message
    assert notice.url == f"/teams/{team.pk}/webhooks/{subscription.pk}"
    # Nothing more is sent, and new events wait (switched off) rather than go anywhere.
    assert deliveries_sweep(now=timezone.now() + dt.timedelta(days=30)) == 0
    assert publish(team) == []
    assert len(receiver.requests) == MAX_ATTEMPTS


def test_a_subscription_nobody_owns_tells_the_teams_webhook_managers(
    team, po, sm, developer, receiver
):
    subscription = WebhookSubscription.objects.create(
        team=team, name="Migrated", url="http://127.0.0.1:9/", secret=SECRET, events=[FIRED]
    )
    delivery = one(team)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=MAX_ATTEMPTS - 1)

    assert webhook_deliver(delivery_id=delivery.pk) is False
    told = set(
        Notification.objects.filter(kind=Notification.Kind.WEBHOOK_DISABLED).values_list(
            "user__email", flat=True
        )
    )
    assert told == {po.email, sm.email}
    subscription.refresh_from_db()
    assert not subscription.is_active


def test_an_unreachable_receiver_is_recorded(team):
    WebhookSubscription.objects.create(
        team=team, name="Dead", url="http://127.0.0.1:9/", secret=SECRET, events=[FIRED]
    )
    delivery = one(team)

    assert webhook_deliver(delivery_id=delivery.pk) is False
    delivery.refresh_from_db()
    assert delivery.last_status is None
    assert delivery.last_error == "connection refused"


def test_a_redirect_is_not_a_delivery(team, subscription, receiver):
    receiver.statuses = [302]
    delivery = one(team)

    assert webhook_deliver(delivery_id=delivery.pk) is False
    delivery.refresh_from_db()
    assert delivery.last_status == 302
    assert len(receiver.requests) == 1


@pytest.mark.django_db(transaction=True)
def test_a_delivery_being_sent_is_skipped_by_a_second_worker(receiver):
    """SKIP LOCKED: while one worker holds the row (mid-POST), another does nothing."""
    team = Team.objects.create(name="Locks", slug="locks")
    WebhookSubscription.objects.create(
        team=team, name="Ops", url=receiver.url, secret=SECRET, events=[FIRED]
    )
    delivery = one(team)
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


def test_the_sweep_picks_up_what_is_due(team, subscription):
    fresh = one(team)  # never attempted: due at once
    waiting = one(team)
    later = timezone.now() + dt.timedelta(minutes=15)
    WebhookDelivery.objects.filter(pk=waiting.pk).update(attempts=3, next_attempt_at=later)
    delivered = one(team)
    WebhookDelivery.objects.filter(pk=delivered.pk).update(
        delivered_at=timezone.now(), next_attempt_at=None
    )

    assert deliveries_sweep(now=timezone.now()) == 1
    assert deliveries_sweep(now=later) == 2
    assert fresh.pk != waiting.pk


def test_a_switched_off_subscription_is_not_sent_to(team, subscription, receiver):
    delivery = one(team)
    WebhookSubscription.objects.filter(pk=subscription.pk).update(is_active=False)

    assert webhook_deliver(delivery_id=delivery.pk) is None
    assert deliveries_sweep(now=timezone.now()) == 0
    assert receiver.requests == []
    WebhookSubscription.objects.filter(pk=subscription.pk).update(is_active=True)
    assert webhook_deliver(delivery_id=delivery.pk) is True


# --- publishing ----------------------------------------------------------------------------------


def test_an_event_goes_to_the_teams_active_subscriptions_to_it_only(team, other_team, receiver):
    def sub(t: Team, name: str, events: list[str], active: bool = True) -> WebhookSubscription:
        return WebhookSubscription.objects.create(
            team=t, name=name, url=receiver.url, secret=SECRET, events=events, is_active=active
        )

    hears = sub(team, "Hears", [FIRED, EventType.DECISION_RECORDED])
    also = sub(team, "Also", [FIRED])
    sub(team, "Other event", [EventType.FEEDBACK_RECEIVED])
    sub(team, "Off", [FIRED], active=False)
    sub(other_team, "Other team", [FIRED])

    deliveries = publish(team)

    assert {d.subscription_id for d in deliveries} == {hears.pk, also.pk}
    assert len({d.message_id for d in deliveries}) == 2


def test_publishing_to_nobody_costs_one_query(team):
    with CaptureQueriesContext(connection) as queries:
        assert publish(team) == []
    assert len(queries) == 1


def test_the_worker_is_told_only_after_commit(
    team, subscription, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        one(team)
        assert callbacks == []
    assert len(callbacks) == 1


# --- chat destinations ---------------------------------------------------------------------------


def test_a_slack_subscription_gets_a_readable_message(team):
    with running(Receiver(), path="/services/T000/B000/XXXX") as slack:
        WebhookSubscription.objects.create(
            team=team,
            name="#checkout-alerts",
            kind=WebhookSubscription.Kind.SLACK,
            url=slack.url,
            secret=SECRET,
            events=[FIRED],
        )
        delivery = one(team)
        assert webhook_deliver(delivery_id=delivery.pk) is True

    [message] = slack.payloads
    assert set(message) == {"text", "blocks"}
    assert "Rollback trigger fired · Saved cards" in message["text"]
    assert "“p95 latency &gt; 300 ms” breached (value 412)." in message["text"]
    header, section, actions = message["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Rollback trigger fired · Saved cards"},
    }
    assert section["text"]["type"] == "mrkdwn"
    assert "breached" in section["text"]["text"]
    [button] = actions["elements"]
    assert button["url"] == "https://pilotplan.example.test/plans/1"
    # Not the raw event, and no signature headers a Slack channel would not read.
    assert "webhook-signature" not in slack.requests[0].headers
    assert "type" not in message


def test_a_teams_subscription_gets_a_message_card(team):
    with running(Receiver(), path="/webhookb2/abc") as teams:
        WebhookSubscription.objects.create(
            team=team,
            name="Checkout channel",
            kind=WebhookSubscription.Kind.TEAMS,
            url=teams.url,
            secret=SECRET,
            events=[FIRED],
        )
        delivery = one(team)
        assert webhook_deliver(delivery_id=delivery.pk) is True

    [card] = teams.payloads
    assert card["@type"] == "MessageCard"
    assert card["title"] == "Rollback trigger fired · Saved cards"
    assert card["text"] == "“p95 latency > 300 ms” breached (value 412)."
    [action] = card["potentialAction"]
    assert action["@type"] == "OpenUri"
    assert action["targets"] == [{"os": "default", "uri": "https://pilotplan.example.test/plans/1"}]


# --- redelivery ----------------------------------------------------------------------------------


def test_a_redelivery_is_a_new_delivery_with_the_same_webhook_id(team, po, subscription, receiver):
    original = one(team)
    webhook_deliver(delivery_id=original.pk)

    again = subscriptions.delivery_redeliver(
        team=team, user=po, subscription_id=subscription.pk, delivery_id=original.pk
    )
    assert again.pk != original.pk
    assert webhook_deliver(delivery_id=again.pk) is True

    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == original.message_id
    assert first.verified == second.verified
    assert json.loads(second.body)["type"] == "trigger.fired"


def test_a_signature_made_by_the_library_matches_ours():
    """The secret format round-trips: what we sign, any Standard Webhooks library verifies."""
    body = b'{"type":"ping"}'
    now = timezone.now()
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(SECRET).sign("msg_1", now, body),
    }
    assert Webhook(SECRET).verify(body, headers) == {"type": "ping"}
