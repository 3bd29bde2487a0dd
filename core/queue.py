"""Handing work to the worker without ever waiting on the broker.

Requests (an ingestion, a sign-off) must not slow down or fail because Redis is slow or down.
Work is published after the transaction commits, with no retries, and a failure to publish is
logged and dropped. What each message asks for is also recorded in the database, and beat's
one-minute tick (``metrics.tasks.tick``) finds it there:

- ``check_run_execute``: check runs still ``pending`` two minutes after they were claimed
  (``metrics.checks.SWEEP_AFTER``) are published again;
- ``triggers_evaluate`` (after an ingestion or a resolve): the tick evaluates the rollback
  triggers of every running plan anyway. Only one thing is not redone: the search for a
  D-minute breach inside a freshly ingested backfill, which the evaluation queued after that
  ingestion makes and the tick's does not;
- ``webhook_deliver``: deliveries not yet delivered to an active endpoint are published when due
  (at once, then with back-off, up to ``metrics.webhooks.MAX_ATTEMPTS``;
  ``metrics.webhooks.deliveries_sweep``);
- ``notifications_email``: notifications still owed an e-mail (``email_state = pending``) are
  published a minute after they were made, then with back-off after failed sends, up to
  ``accounts.services.EMAIL_MAX_ATTEMPTS`` and for at most a day
  (``accounts.services.notification_emails_sweep``).

So a lost message delays that work by a minute or two and, within those bounds, loses nothing.
Every task is idempotent, so a message that was not lost after all and its sweep's copy do the
work once.

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
