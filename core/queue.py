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

After commit, the message is handed to this process's publisher thread (:class:`Publisher`),
which sends it to Redis while the request answers: a request never waits on the broker's round
trip, and a stopped or hanging broker delays the thread, never the request. Publishing to an
idle Redis took 2–4 ms of a request (the broker's wake-up on this 2-core machine, measured: a
back-to-back ``LPUSH`` 0.14 ms, one after 80 ms of quiet 1.9 ms). The thread sends messages in
the order they were handed over; what it holds when the process ends is sent first (``atexit``,
and a Celery worker process's shutdown), for at most :data:`FLUSH_SECONDS`; past
:data:`MAX_PENDING` waiting messages (a broker down for long) new ones are dropped and logged,
as a failed publish is.

Tasks are named, not imported: a service publishes ``"metrics.tasks.webhook_deliver"`` without
importing the tasks module, so tasks (thin, calling services) and services never import each
other.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
from typing import Any

from celery import current_app
from django.db import transaction

log = logging.getLogger(__name__)

# Messages a publisher thread may hold before new ones are dropped (the sweeps send them later).
MAX_PENDING = 10_000
# How long the end of a process waits for its publisher thread to send what it holds.
FLUSH_SECONDS = 5.0


def publish(task_name: str, *args: Any) -> bool:
    """Publish the task ``task_name(*args)`` now; ``False`` (logged) when the broker cannot
    take it."""
    try:
        current_app.send_task(task_name, args=args, retry=False)
    except Exception as exc:  # kombu's OperationalError, redis errors, socket timeouts
        log.warning("Broker unavailable, %s(%s) left to the sweep: %s", task_name, args, exc)
        return False
    return True


class Publisher:
    """A daemon thread that publishes the messages handed to it, in order.

    One per process: started on the first message, and again in a forked child (a thread does
    not survive ``fork``; what the parent still held is the parent's to send)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0
        self._queue: queue.Queue[tuple[str, tuple[Any, ...]]] = queue.Queue(MAX_PENDING)

    def put(self, task_name: str, args: tuple[Any, ...]) -> None:
        """Hand ``task_name(*args)`` to the thread; never blocks."""
        if self._pid != os.getpid():
            self._start()
        try:
            self._queue.put_nowait((task_name, args))
        except queue.Full:
            log.warning(
                "%s messages wait for the broker, %s(%s) left to the sweep",
                MAX_PENDING, task_name, args,
            )  # fmt: skip

    def flush(self, timeout: float = FLUSH_SECONDS) -> bool:
        """Wait until every message handed over so far was published (or failed to be);
        ``False`` if some were still waiting after ``timeout`` seconds."""
        if self._pid != os.getpid():
            return True  # nothing handed over in this process
        done = self._queue.all_tasks_done
        with done:
            return done.wait_for(lambda: not self._queue.unfinished_tasks, timeout)

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._queue = queue.Queue(MAX_PENDING)
            threading.Thread(
                target=self._run, args=(self._queue,), name="publisher", daemon=True
            ).start()
            self._pid = os.getpid()

    @staticmethod
    def _run(messages: queue.Queue[tuple[str, tuple[Any, ...]]]) -> None:
        while True:
            task_name, args = messages.get()
            try:
                publish(task_name, *args)
            except Exception:  # never let one message end the thread
                log.exception("Publishing %s(%s) failed", task_name, args)
            finally:
                messages.task_done()


publisher = Publisher()
atexit.register(publisher.flush)


def enqueue_on_commit(task_name: str, *args: Any) -> None:
    """Publish ``task_name(*args)`` once the current transaction commits (at once outside one),
    from the publisher thread: the caller does not wait for the broker."""
    transaction.on_commit(lambda: publisher.put(task_name, args))


def flush(timeout: float = FLUSH_SECONDS) -> bool:
    """Wait until what this process handed to its publisher thread was published (tests, and
    the end of a process): see :meth:`Publisher.flush`."""
    return publisher.flush(timeout)
