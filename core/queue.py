"""Handing work to the worker without ever waiting on the broker.

Requests (an ingestion, a sign-off) must not slow down or fail because Redis is slow or down.
Work is published after the transaction commits, with no retries, and a failure to publish is
logged and dropped. Everything published through here is also found in the database by a
periodic job, so a lost message delays work by a minute or so and loses nothing:

- check runs: beat's one-minute ``metrics.tasks.tick`` claims due slots and re-queues claimed
  runs a dead worker left behind;
- trigger evaluation: the same tick evaluates every running plan's triggers;
- webhook deliveries: the tick's sweep retries undelivered ones;
- notification e-mails: ``accounts.tasks.notification_emails_sweep`` (beat, every minute)
  sends the e-mails a notification is still owed.

Tasks are named, not imported: a service publishes ``"metrics.tasks.webhook_deliver"`` without
importing the tasks module, so tasks (thin, calling services) and services never import each
other.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import current_app
from django.db import transaction

log = logging.getLogger(__name__)


def publish(task_name: str, *args: Any) -> bool:
    """Publish the task ``task_name(*args)`` now; ``False`` (logged) when the broker cannot
    take it."""
    try:
        current_app.send_task(task_name, args=args, retry=False)
    except Exception as exc:  # kombu's OperationalError, redis errors, socket timeouts
        log.warning("Broker unavailable, %s(%s) left to the sweep: %s", task_name, args, exc)
        return False
    return True


def enqueue_on_commit(task_name: str, *args: Any) -> None:
    """Publish ``task_name(*args)`` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: publish(task_name, *args))
