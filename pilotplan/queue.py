"""Handing work to the worker without ever waiting on the broker.

Requests (an ingestion, a sign-off) must not slow down or fail because Redis is slow or down.
Work is published after the transaction commits, with no retries, and a failure to publish is
logged and dropped: everything queued through here is also found in the database by beat's
one-minute tick (pending check runs, trigger evaluation of every running plan, undelivered
webhooks and e-mails), so a lost message delays work by at most a minute and loses nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from django.db import transaction

log = logging.getLogger(__name__)


def publish(task: Task, *args: Any) -> bool:
    """Publish ``task(*args)`` now; ``False`` (logged) when the broker cannot take it."""
    try:
        task.apply_async(args=args, retry=False)
    except Exception as exc:  # kombu's OperationalError, redis errors, socket timeouts
        log.warning("Broker unavailable, %s(%s) left to the tick: %s", task.name, args, exc)
        return False
    return True


def enqueue_on_commit(task: Task, *args: Any) -> None:
    """Publish ``task(*args)`` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: publish(task, *args))
