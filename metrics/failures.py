"""Failure isolation for the jobs that loop over plans (docs/operations.md, "When one plan fails").

A job (the tick's scheduled checks, trigger evaluation, a check run's digest) catches one plan's
exception, logs it with the plan id, records it here against that plan and goes on with the
others. Set-based statements stay set-based: when one fails as a whole, the caller retries plan by
plan (:func:`per_plan`), so the healthy plans still get done.

A ``PlanJobFailure`` row says "this job failed for this plan, since ``first_at``, ``count``
times"; the plan page and the portfolio show it. It is deleted when the job next succeeds for
the plan. Its message is short and written for people: our own words for the failures we know
(a timeline that cannot be scheduled, an unknown time zone), the exception's class name for the
others (the details, which may hold data, go to the log only).
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from collections.abc import Callable, Iterable
from typing import TypeVar

from django.db import DatabaseError, connection, transaction
from django.db.models import Exists, OuterRef

from metrics.models import PlanJobFailure
from metrics.slots import PlanWindowError
from pilots.extensions import PlanPanel
from pilots.models import PilotPlan

logger = logging.getLogger(__name__)

Job = PlanJobFailure.Job
Category = PlanJobFailure.Category
T = TypeVar("T")

MESSAGE_MAX = 300


def failure_words(exc: BaseException) -> tuple[str, str]:
    """``(category, message)`` for people: no exception text we did not write ourselves."""
    if isinstance(exc, PlanWindowError):
        return Category.TIMELINE, str(exc)[:MESSAGE_MAX]
    if isinstance(exc, zoneinfo.ZoneInfoNotFoundError):
        key = str(exc.args[0])[:60] if exc.args else ""
        return Category.TIME_ZONE, f"The plan's time zone “{key}” is not a known IANA time zone."
    if isinstance(exc, DatabaseError):
        return Category.DATABASE, f"The database refused the plan's data ({type(exc).__name__})."
    return Category.ERROR, f"Unexpected error ({type(exc).__name__}); the details are logged."


class JobFailures:
    """The plans one run of ``job`` failed for. ``catch`` while running, ``save`` at the end."""

    def __init__(self, job: str, *, now: dt.datetime) -> None:
        self.job = job
        self.now = now
        self.failed: dict[int, tuple[str, str]] = {}

    def catch(self, plan_id: int, exc: BaseException) -> None:
        """Log ``exc`` with its traceback and the plan id; remember it for ``save``."""
        logger.exception("%s failed for plan %s; the other plans go on", self.job, plan_id)
        self.failed[plan_id] = failure_words(exc)

    def save(self, *, done: Iterable[int] | None = None) -> None:
        """Record this run's failures and clear the job's older ones that did not fail again:
        every other plan's when ``done`` is None (a run over every plan), else only ``done``'s
        (none: no statement; a caller that knows which of its plans have a failure recorded
        passes only those). One statement, two when something failed, however many plans."""
        if done is not None:
            done = set(done) - set(self.failed)
        if done is None or done:
            stale = PlanJobFailure.objects.filter(job=self.job).exclude(plan_id__in=self.failed)
            if done is not None:
                stale = stale.filter(plan_id__in=done)
            stale.delete()  # nothing points at these rows: one DELETE statement
        if self.failed:
            _upsert(self.job, self.failed, self.now)


_UPSERT_SQL = """
INSERT INTO metrics_planjobfailure (plan_id, job, category, message, first_at, last_at, count)
SELECT f.plan_id, %s, f.category, f.message, %s, %s, 1
  FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS f(plan_id, category, message)
 WHERE EXISTS (SELECT 1 FROM pilots_pilotplan p WHERE p.id = f.plan_id)
 ORDER BY f.plan_id
ON CONFLICT (plan_id, job) DO UPDATE
   SET category = EXCLUDED.category, message = EXCLUDED.message,
       last_at = EXCLUDED.last_at, count = metrics_planjobfailure.count + 1
"""


def _upsert(job: str, failed: dict[int, tuple[str, str]], now: dt.datetime) -> None:
    ids = sorted(failed)
    with connection.cursor() as cursor:
        cursor.execute(
            _UPSERT_SQL,
            [
                job,
                now,
                now,
                ids,
                [failed[pk][0] for pk in ids],
                [failed[pk][1] for pk in ids],
            ],
        )


def per_plan(
    plan_ids: Iterable[int], work: Callable[[int], T], failures: JobFailures
) -> dict[int, T]:
    """Run ``work(plan_id)`` for each plan in a savepoint of its own: a plan that raises is
    rolled back and caught in ``failures``; the others' results are returned."""
    results: dict[int, T] = {}
    for plan_id in plan_ids:
        try:
            with transaction.atomic():
                results[plan_id] = work(plan_id)
        except Exception as exc:  # one plan's failure must not stop the others
            failures.catch(plan_id, exc)
    return results


def failures_for_plan(*, plan_id: int) -> list[PlanJobFailure]:
    """The jobs currently failing for a plan, oldest failure first (one query)."""
    return list(PlanJobFailure.objects.filter(plan_id=plan_id).order_by("first_at", "job"))


def failures_plan_flags() -> dict[str, Exists]:
    """Whether a job is failing for the plan: an ``Exists`` of the plan page's plan query."""
    return {"has_job_failures": Exists(PlanJobFailure.objects.filter(plan=OuterRef("pk")))}


def failures_plan_panel(plan: PilotPlan) -> PlanPanel:
    """The plan page's notice of the background jobs failing for this plan (registered in
    ``metrics.apps``), in one query, none when the plan's flag says nothing fails; renders
    nothing while every job succeeds."""
    failing = getattr(plan, "has_job_failures", True)
    return PlanPanel(
        "metrics/_plan_panel_failures.html",
        {"failures": failures_for_plan(plan_id=plan.pk) if failing else []},
    )
