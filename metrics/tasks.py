"""Celery tasks of the metrics app: thin wrappers that call services.

Every task is safe to run twice or concurrently: the services they call decide what is left to
do from the database (claimed check runs, active trigger episodes, undelivered webhooks, e-mails
still owed), so a retried or duplicated message does nothing new.
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from accounts.services import notification_emails_sweep
from core.queue import enqueue_on_commit
from metrics import checks, services, triggers, webhooks
from pilots.services.timebox import timebox_end_due

logger = logging.getLogger(__name__)


@shared_task(name="metrics.tasks.tick", ignore_result=True)
def tick() -> None:
    """Beat sends this once a minute: heartbeat, due check slots, trigger evaluation, and the
    sweeps of work a dead worker or a down broker left in the database (check runs still
    pending, webhook deliveries and notification e-mails not yet sent).

    Each step runs in a transaction of its own and one that raises does not stop the next
    (a failure of one plan is already caught inside the step). The start is recorded first and
    the outcome last, so ``/healthz`` tells a tick that completed from one that failed."""
    now = timezone.now()
    services.heartbeat_record(at=now)
    steps = [
        ("scheduled checks", checks.tick_process),
        ("rollback triggers", triggers.triggers_evaluate_running),
        ("time-box ends", timebox_tick),
        ("webhook deliveries", webhooks.deliveries_sweep),
        ("notification e-mails", notification_emails_sweep),
        ("post-pilot review reminders", post_pilot_reminders_publish),
    ]
    failed: list[str] = []
    for name, step in steps:
        try:
            with transaction.atomic():
                step(now=now)
        except Exception:  # the other steps still run; the tick is recorded as failed
            logger.exception("The tick's step %s failed as a whole", name)
            failed.append(name)
    services.tick_outcome_record(at=now, failed_steps=failed)


# Published by name: the reminders belong to ``decisions``, which sits above metrics.
POST_PILOT_REMINDERS = "decisions.tasks.post_pilot_reviews_remind"


def post_pilot_reminders_publish(*, now: dt.datetime) -> None:
    """Ask ``decisions`` to send the post-pilot review reminders now due (one indexed query
    when none is; each reminder is claimed in the database, so a duplicate message sends
    nothing twice)."""
    enqueue_on_commit(POST_PILOT_REMINDERS)


def timebox_tick(*, now: dt.datetime) -> None:
    """The tick's lifecycle part: pilots whose last business day is over move to Evaluating,
    and the no-data / stale episodes of pilots no longer running end."""
    timebox_end_due(now=now)
    triggers.signal_episodes_end_not_running(now=now)


@shared_task(name="metrics.tasks.check_run_execute", ignore_result=True)
def check_run_execute(run_id: int) -> None:
    """One check run (the sweep re-publishes lost runs one by one)."""
    checks.check_run_execute(run_id=run_id)


@shared_task(name="metrics.tasks.check_runs_execute", ignore_result=True)
def check_runs_execute(run_ids: list[int]) -> None:
    """A chunk of the runs one tick claimed, executed together (``checks.CHUNK`` a message)."""
    checks.check_runs_execute(run_ids=list(run_ids))


@shared_task(name="metrics.tasks.triggers_evaluate", ignore_result=True)
def triggers_evaluate(plan_id: int) -> None:
    """Queued after an ingestion commits: evaluate the plan's rollback triggers now."""
    triggers.triggers_evaluate_plan(plan_id=plan_id, now=timezone.now())


@shared_task(name="metrics.tasks.webhook_deliver", ignore_result=True)
def webhook_deliver(delivery_id: int) -> None:
    webhooks.webhook_deliver(delivery_id=delivery_id)
