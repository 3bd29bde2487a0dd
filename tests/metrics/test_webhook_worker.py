"""A webhook delivery through a real Celery worker process, a real Redis and the test database,
to a local receiver that verifies it with the Standard Webhooks library: published after the
causing transaction commits (and never when it rolls back), and, when the message was lost, sent
by the tick's sweep."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import current_app
from django.db import transaction

from accounts.events import event_publish
from accounts.models import EventType, Team, WebhookDelivery, WebhookSubscription
from metrics import subscriptions
from metrics.tasks import tick
from tests.metrics.receivers import Receiver, running
from tests.metrics.test_tick_worker import (
    broker,  # noqa: F401 - a fixture
    routed_queues,
    wait_for,
    worker_start,
    worker_stop,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SECRET = subscriptions.secret_generate()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running(Receiver(secret=SECRET)) as state:
        yield state


@pytest.fixture
def hook_worker(broker: redis.Redis, tmp_path: Path, monkeypatch) -> Iterator[str]:  # noqa: F811
    """A worker on a queue of its own that may post to the receiver on 127.0.0.1 (the
    allow-list the deployment would set), and this process publishing to that queue (as the
    CELERY_TASK_DEFAULT_QUEUE setting would)."""
    queue = f"test-hooks-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("WEBHOOK_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.setenv("WEBHOOK_ALLOW_HTTP", "true")
    default_queue = current_app.conf.task_default_queue
    current_app.conf.task_default_queue = queue
    log = tmp_path / "worker.log"
    proc = worker_start(queue, log)
    try:
        yield queue
    finally:
        current_app.conf.task_default_queue = default_queue
        worker_stop(proc)
        for name in routed_queues(queue):
            broker.delete(name, f"_kombu.binding.{name}")
        print(log.read_text(errors="replace"))  # shown by pytest when the test failed


def _subscription(receiver: Receiver) -> WebhookSubscription:
    team = Team.objects.create(name="Worker hooks", slug=f"hooks-{uuid.uuid4().hex[:8]}")
    return WebhookSubscription.objects.create(
        team=team, name="Ops", url=receiver.url, secret=SECRET, events=[EventType.TRIGGER_FIRED]
    )


def _publish(subscription: WebhookSubscription) -> WebhookDelivery:
    [delivery] = event_publish(
        team_id=subscription.team_id,
        event=EventType.TRIGGER_FIRED,
        data={"plan": {"id": 1, "title": "Saved cards"}},
        summary="fired",
    )
    return delivery


def test_a_committed_event_is_delivered_by_the_worker_and_verifies(hook_worker, receiver):
    subscription = _subscription(receiver)

    with transaction.atomic():
        delivery = _publish(subscription)
        assert receiver.requests == []  # not before the commit

    assert wait_for(lambda: receiver.requests), "the worker delivered nothing within 20 s"
    [got] = receiver.requests
    assert got.error == ""
    assert got.verified["type"] == "trigger.fired"
    assert got.headers["webhook-id"] == delivery.message_id
    assert wait_for(
        lambda: WebhookDelivery.objects.filter(pk=delivery.pk, delivered_at__isnull=False).exists()
    )
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.last_status) == (1, 200)


def test_a_rolled_back_event_is_never_sent(hook_worker, receiver):
    subscription = _subscription(receiver)

    with pytest.raises(RuntimeError), transaction.atomic():
        _publish(subscription)
        raise RuntimeError("the causing change failed")

    # A committed one after it arrives alone: the rolled-back one was never published.
    delivery = _publish(subscription)
    assert wait_for(lambda: receiver.requests)
    assert [r.headers["webhook-id"] for r in receiver.requests] == [delivery.message_id]
    assert WebhookDelivery.objects.count() == 1


def test_a_delivery_whose_message_was_lost_is_sent_by_the_ticks_sweep(hook_worker, receiver):
    subscription = _subscription(receiver)
    # Written as if the broker had been down when it was published: nothing is queued.
    delivery = WebhookDelivery.objects.create(
        subscription=subscription,
        message_id="msg_lost",
        event=EventType.TRIGGER_FIRED,
        payload={"type": "trigger.fired", "version": 1, "timestamp": "2026-03-02T12:00:00Z",
                 "data": {}},
        next_attempt_at=subscription.created_at,
    )  # fmt: skip

    tick.apply_async(queue=hook_worker)

    assert wait_for(lambda: receiver.requests), "the sweep sent nothing within 20 s"
    assert receiver.requests[0].headers["webhook-id"] == "msg_lost"
    assert receiver.requests[0].error == ""
    assert wait_for(
        lambda: WebhookDelivery.objects.filter(pk=delivery.pk, delivered_at__isnull=False).exists()
    )
