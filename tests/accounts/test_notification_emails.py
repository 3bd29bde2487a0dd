"""The e-mails notifications owe: recorded on the notification, sent once by the worker, and
found again by the tick's sweep when the message that should have sent them was lost (the broker
down at commit), retried with back-off after a failed send, given up and recorded after too many
attempts or a day. The last test stops a real Redis."""

from __future__ import annotations

import base64
import datetime as dt
import json
import smtplib
import time
from collections.abc import Iterator

import pytest
import redis
from django.db import transaction

from accounts import services
from accounts.models import Notification, User
from accounts.services import (
    EMAIL_MAX_ATTEMPTS,
    EMAIL_SWEEP_BATCH,
    EMAIL_TASK_SIZE,
    notification_emails_send,
    notification_emails_sweep,
    notify,
)
from accounts.tasks import notifications_email
from core.queue import flush
from metrics.tasks import tick
from tests.metrics.test_ingest_redis import broker, own_redis  # noqa: F401 - fixtures

State = Notification.EmailState
KIND = Notification.Kind.TRIGGER_FIRED
MINUTE = dt.timedelta(minutes=1)


class Published:
    """The ``notifications_email`` messages on the test's own (real) broker, oldest first; a
    list to compare with, pop and clear."""

    def __init__(self, client: redis.Redis):
        self.client = client
        self.seen: list[list[int]] = []

    def _drain(self) -> list[list[int]]:
        assert flush()  # what the publisher thread was handed has reached the broker
        # kombu's Redis transport LPUSHes a message and workers BRPOP: the oldest is rightmost.
        while (raw := self.client.rpop("celery")) is not None:
            message = json.loads(raw)
            if message["headers"]["task"] == "accounts.tasks.notifications_email":
                args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
                self.seen.append(list(args[0]))
        return self.seen

    def __eq__(self, other: object) -> bool:
        return self._drain() == other

    def __iter__(self) -> Iterator[list[int]]:
        return iter(list(self._drain()))

    def __repr__(self) -> str:
        return repr(self._drain())

    def pop(self) -> list[int]:
        return self._drain().pop()

    def clear(self) -> None:
        self._drain().clear()


@pytest.fixture
def published(broker) -> Iterator[Published]:  # noqa: F811 - the imported fixture
    """What was published for ``notifications_email``, read back from a real Redis broker."""
    client = broker.client()
    yield Published(client)
    client.close()


@pytest.fixture
def sweep(django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """``sweep(now=…)``: the tick's sweep, its messages published (at its commit) at once."""

    def run(*, now: dt.datetime) -> int:
        with django_capture_on_commit_callbacks(execute=True):
            return notification_emails_sweep(now=now)

    return run


def _lost(user: User, message: str = "Rollback trigger fired") -> Notification:
    """A notification whose e-mail message never reached the worker (no commit callback ran)."""
    (note,) = notify(users=[user], kind=KIND, message=message, url="/plans/7/", actor=None)
    return note


def _state(note: Notification) -> tuple[str, int, bool]:
    note.refresh_from_db()
    return note.email_state, note.email_attempts, note.emailed_at is not None


# --- what is owed --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_notify_records_the_email_each_person_is_owed(po, sm):
    User.objects.filter(pk=sm.pk).update(email_notifications=False)
    sm.refresh_from_db()

    notes = {n.user_id: n for n in notify(users=[po, sm], kind=KIND, message="Fired", actor=None)}

    assert _state(notes[po.pk]) == (State.PENDING, 0, False)
    assert _state(notes[sm.pk]) == (State.NONE, 0, False)


@pytest.mark.django_db
def test_sending_claims_first_so_a_repeated_message_sends_once(po, mailoutbox):
    note = _lost(po)

    assert notification_emails_send(notification_ids=[note.pk, note.pk]) == 1
    assert notification_emails_send(notification_ids=[note.pk]) == 0

    assert len(mailoutbox) == 1
    assert _state(note) == (State.SENT, 1, True)


@pytest.mark.django_db
def test_someone_who_turned_email_off_since_is_sent_nothing(po, mailoutbox):
    note = _lost(po)
    User.objects.filter(pk=po.pk).update(email_notifications=False)

    assert notification_emails_send(notification_ids=[note.pk]) == 0

    assert mailoutbox == []
    assert _state(note) == (State.NONE, 0, False)


# --- the sweep -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_sweep_sends_an_email_whose_message_was_lost_exactly_once(
    po, published, sweep, mailoutbox
):
    note = _lost(po)

    assert sweep(now=note.created_at + dt.timedelta(seconds=30)) == 0
    assert published == []  # younger than a minute: its own message may still be on its way
    assert sweep(now=note.created_at + MINUTE) == 1
    assert published == [[note.pk]]

    notifications_email(*published)  # the worker runs the message
    notifications_email(*published)  # a duplicate of it
    assert [m.to for m in mailoutbox] == [[po.email]]
    assert "Rollback trigger fired" in mailoutbox[0].body
    assert _state(note) == (State.SENT, 1, True)
    assert sweep(now=note.created_at + 10 * MINUTE) == 0
    assert published == [[note.pk]]


@pytest.mark.django_db
def test_the_tick_runs_the_sweep(po, published, django_capture_on_commit_callbacks):
    old = _lost(po)
    Notification.objects.filter(pk=old.pk).update(created_at=old.created_at - dt.timedelta(days=2))
    note = _lost(po)
    Notification.objects.filter(pk=note.pk).update(created_at=note.created_at - 2 * MINUTE)

    with django_capture_on_commit_callbacks(execute=True):
        tick()

    assert published == [[note.pk]]  # the one from long ago was given up instead
    assert Notification.objects.filter(email_state=State.FAILED).count() == 1


@pytest.mark.django_db
def test_a_failed_send_is_retried_with_back_off_then_given_up(po, published, sweep, monkeypatch):
    def refuse(**_kwargs: object) -> int:
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")

    monkeypatch.setattr(services, "send_mail", refuse)
    note = _lost(po)
    start = note.created_at

    assert notification_emails_send(notification_ids=[note.pk]) == 0
    assert _state(note) == (State.PENDING, 1, False)  # released for another try
    # Attempt n + 1 is due 2ⁿ minutes after the notification: not before.
    for attempts in range(1, EMAIL_MAX_ATTEMPTS):
        due = start + 2**attempts * MINUTE
        assert sweep(now=due - dt.timedelta(seconds=1)) == 0
        assert sweep(now=due) == 1
        assert notification_emails_send(notification_ids=published.pop()) == 0
        assert _state(note)[:2] == (
            (State.PENDING, attempts + 1) if attempts + 1 < EMAIL_MAX_ATTEMPTS
            else (State.FAILED, EMAIL_MAX_ATTEMPTS)
        )  # fmt: skip

    assert _state(note) == (State.FAILED, EMAIL_MAX_ATTEMPTS, False)  # recorded, not sent
    assert sweep(now=start + dt.timedelta(hours=20)) == 0
    assert published == []


@pytest.mark.django_db
def test_an_unexpected_error_releases_the_claim_and_fails_the_task(po, monkeypatch, mailoutbox):
    def broken(**_kwargs: object) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr(services, "send_mail", broken)
    note = _lost(po)

    with pytest.raises(RuntimeError):
        notification_emails_send(notification_ids=[note.pk])

    assert _state(note) == (State.PENDING, 1, False)  # the sweep will try it again


@pytest.mark.django_db
def test_what_is_still_pending_a_day_later_is_given_up(po, published, sweep):
    note = _lost(po)

    assert sweep(now=note.created_at + dt.timedelta(hours=23)) == 1
    published.clear()  # that message was lost as well
    assert sweep(now=note.created_at + dt.timedelta(days=1, seconds=1)) == 0

    assert published == []
    assert _state(note) == (State.FAILED, 0, False)


@pytest.mark.django_db
def test_the_sweep_takes_a_bounded_batch_oldest_first_in_small_tasks(po, published, sweep):
    notes = [_lost(po, f"Fired {i}") for i in range(EMAIL_SWEEP_BATCH + 5)]
    first = notes[0].created_at
    for i, note in enumerate(notes):
        Notification.objects.filter(pk=note.pk).update(
            created_at=first + i * dt.timedelta(seconds=1)
        )

    assert sweep(now=first + dt.timedelta(hours=1)) == EMAIL_SWEEP_BATCH

    assert [len(ids) for ids in published] == [EMAIL_TASK_SIZE] * (
        EMAIL_SWEEP_BATCH // EMAIL_TASK_SIZE
    )
    assert [pk for ids in published for pk in ids] == [n.pk for n in notes[:EMAIL_SWEEP_BATCH]]


# --- with Redis really down ----------------------------------------------------------------------


def _published_messages(server) -> list[tuple[str, list[object]]]:  # type: ignore[no-untyped-def]
    """The (task name, args) of every message waiting in the broker's default queue, once the
    publisher thread has sent what it was handed."""
    assert flush()
    messages = []
    for raw in server.client().lrange("celery", 0, -1):
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        messages.append((message["headers"]["task"], args))
    return messages


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_an_email_queued_while_redis_is_down_is_sent_once_when_it_is_back(
    broker,  # noqa: F811 - the fixture imported above
    po,
    mailoutbox,
):
    broker.stop()
    started = time.monotonic()
    with transaction.atomic():
        (note,) = notify(
            users=[po], kind=KIND, message="Rollback trigger fired", url="/plans/7/", actor=None
        )
    assert time.monotonic() - started < 5  # the commit did not wait on the stopped broker

    # The notification is there, its e-mail is owed and was not sent.
    assert _state(note) == (State.PENDING, 0, False)
    assert mailoutbox == []
    # The sweep cannot publish to a stopped broker either, and loses nothing by trying.
    assert notification_emails_sweep(now=note.created_at + 2 * MINUTE) == 1
    assert _state(note) == (State.PENDING, 0, False)

    broker.start()  # an empty Redis: the message published at commit never got there
    assert _published_messages(broker) == []
    assert notification_emails_sweep(now=note.created_at + 3 * MINUTE) == 1
    [(task, args)] = _published_messages(broker)
    assert (task, args) == (notifications_email.name, [[note.pk]])

    notifications_email(*args)  # what the worker does with it
    notifications_email(*args)  # and with a redelivered copy

    assert [m.to for m in mailoutbox] == [[po.email]]
    assert _state(note) == (State.SENT, 1, True)
    assert notification_emails_sweep(now=note.created_at + 10 * MINUTE) == 0
    assert len(_published_messages(broker)) == 1
