"""Scheduled checks: the tick claims due slots as CheckRun rows, the worker executes them.

See docs/checks.md. Two rules make a slot run exactly
once, whatever the clocks, retries and restarts do:

* **Claiming** (:func:`tick_process`, beat's one-minute tick): every due slot of every running
  plan is inserted with ``INSERT … ON CONFLICT (plan_id, due_at) DO NOTHING RETURNING``; only
  the rows *this* statement inserted are enqueued, so two ticks racing (two beats, a retried
  tick) enqueue a slot once. After downtime the newest slot is claimed ``pending`` (late) and
  the older ones are recorded ``missed`` in the same statement (metrics/slots.py decides which).
* **Executing** (:func:`check_run_execute`, the worker): one transaction that locks the run with
  ``SELECT … FOR UPDATE SKIP LOCKED WHERE status = 'pending'``, stores every criterion's result
  and marks the run done. A second execution (a duplicated message, the sweep) finds the row
  locked or done and does nothing; a worker killed mid-check rolls back, the run stays pending
  and the tick's sweep publishes it again a couple of minutes later.

The tick costs a constant number of queries however many plans run (the plans with their last
claimed slot, their teams' holidays, one insert, one sweep); messages are published after the
transaction commits and never block on the broker (``core.queue``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from zoneinfo import ZoneInfo

from django.db import IntegrityError, connection, transaction
from django.db.models import OuterRef, Prefetch, QuerySet, Subquery
from django.urls import reverse
from django.utils import timezone

from accounts.events import event_publish, iso, plan_ref, subscriptions_listening
from accounts.models import EventType, TeamHoliday, User
from accounts.permissions import Perm, require, role_in_team
from accounts.ui import day_text
from catalogue.models import MetricDefinition
from core.exceptions import Conflict
from core.queue import enqueue_on_commit
from metrics import digest, evaluation
from metrics.failures import Job, JobFailures, per_plan
from metrics.models import CheckRun, CriterionResult
from metrics.slots import business_day_filter, due_slots, plan_window
from pilots import wording
from pilots.models import ExitCriterion, PilotPlan

# A pending run older than this was lost (its worker died, or the broker was down when it was
# published): the tick publishes it again. Longer than a check takes, shorter than a slot gap.
SWEEP_AFTER = dt.timedelta(minutes=2)
# At most this many lost runs re-published per tick (they are idempotent, but a backlog after a
# long outage should not flood the queue every minute).
SWEEP_LIMIT = 500
# The tick publishes its claimed runs this many to a message; a worker executes them together
# (set-based queries: the cost of a check is mostly per statement, not per row).
CHUNK = 100

Verdict = CriterionResult.Verdict
logger = logging.getLogger(__name__)


# --- claiming ----------------------------------------------------------------------------------


def _running_plans() -> list[PilotPlan]:
    # Scheduled runs only: a check run on demand is no slot, and must not hide one.
    last_due = (
        CheckRun.objects.filter(plan=OuterRef("pk"), trigger=CheckRun.Trigger.SCHEDULED)
        .order_by("-due_at")
        .values("due_at")
    )
    return list(
        PilotPlan.objects.filter(
            status=PilotPlan.Status.RUNNING, start_date__isnull=False, end_date__isnull=False
        )
        # The newest claimed slot (pending, done or missed) of each plan: one probe of the
        # (plan, due_at) unique index per plan.
        .annotate(last_due_at=Subquery(last_due[:1]))
        .only("id", "team_id", "time_zone", "start_date", "end_date", "business_days",
              "check_times")
        .order_by("pk")
    )  # fmt: skip


def _holidays(team_ids: set[int]) -> dict[int, list[dt.date]]:
    by_team: dict[int, list[dt.date]] = defaultdict(list)
    rows = TeamHoliday.objects.filter(team_id__in=team_ids).values_list("team_id", "date")
    for team_id, day in rows:
        by_team[team_id].append(day)
    return by_team


# A slot to claim: (plan id, due at, local date, local time, status, late).
Row = tuple[int, dt.datetime, dt.date, dt.time, str, bool]

_CLAIM_SQL = """
INSERT INTO metrics_checkrun
    (plan_id, due_at, local_date, local_time, status, late, created_at, attempts,
     met, not_met, not_enough_evidence)
SELECT plan_id, due_at, local_date, local_time, status, late, %s, 0, 0, 0, 0
  FROM unnest(%s::bigint[], %s::timestamptz[], %s::date[], %s::time[], %s::text[], %s::bool[])
       AS t(plan_id, due_at, local_date, local_time, status, late)
 ORDER BY plan_id, due_at
ON CONFLICT (plan_id, due_at) WHERE trigger = 'scheduled' DO NOTHING
RETURNING id, status
"""


def _claim(rows: list[Row], now: dt.datetime) -> list[int]:
    """Insert the slots; the ids of the ``pending`` runs this statement inserted."""
    if not rows:
        return []
    columns = [list(column) for column in zip(*rows, strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, [now, *columns])
        return [pk for pk, status in cursor.fetchall() if status == CheckRun.Status.PENDING]


def _sweep(now: dt.datetime) -> list[int]:
    """Pending runs left behind. ``SKIP LOCKED`` leaves out runs a worker is executing now."""
    return list(
        CheckRun.objects.filter(status=CheckRun.Status.PENDING, created_at__lt=now - SWEEP_AFTER)
        .order_by("created_at")
        .select_for_update(skip_locked=True)
        .values_list("pk", flat=True)[:SWEEP_LIMIT]
    )


def _plan_rows(plan: PilotPlan, holidays: dict[int, list[dt.date]], now: dt.datetime) -> list[Row]:
    """The slots to claim for one plan: the newest due one, and the older ones as missed."""
    assert plan.start_date is not None and plan.end_date is not None
    tz = ZoneInfo(plan.time_zone)
    window_start, window_end = plan_window(
        start_date=plan.start_date, end_date=plan.end_date, tz=tz
    )
    if now < window_start:
        return []
    due = due_slots(
        check_times=plan.check_times,
        tz=tz,
        last_processed_due_at=plan.last_due_at,  # type: ignore[attr-defined]
        now=now,
        window_start=window_start,
        window_end=window_end,
        active_dates=business_day_filter(
            start_date=plan.start_date,
            business_days=plan.business_days,
            holidays=holidays.get(plan.team_id, ()),
        ),
    )
    if due.run is None:
        return []
    rows: list[Row] = [
        (plan.pk, slot.due_at, slot.local_date, slot.local_time, "missed", False)
        for slot in due.missed
    ]
    run = due.run
    rows.append((plan.pk, run.due_at, run.local_date, run.local_time, "pending", due.late))
    return rows


@transaction.atomic
def tick_process(*, now: dt.datetime) -> list[int]:
    """Claim every due slot of every running plan; return the ids of new pending runs.

    Also re-publishes pending runs older than ``SWEEP_AFTER`` (their message was lost). Safe to
    run concurrently and repeatedly: a slot is claimed by one tick only.

    One plan cannot stop the others (``metrics.failures``): a plan whose slots cannot be computed
    (a stored timeline out of range, an unknown time zone) is logged and recorded as failing, and
    if the one claiming statement fails, the slots are claimed plan by plan.
    """
    failures = JobFailures(Job.CHECKS, now=now)
    plans = _running_plans()
    holidays = _holidays({p.team_id for p in plans})
    by_plan: dict[int, list[Row]] = {}
    for plan in plans:
        try:
            by_plan[plan.pk] = _plan_rows(plan, holidays, now)
        except Exception as exc:  # one plan's data must not stop every plan's checks
            failures.catch(plan.pk, exc)
    try:
        with transaction.atomic():
            claimed = _claim([row for rows in by_plan.values() for row in rows], now)
    except Exception:  # e.g. the database refused one plan's row: claim plan by plan
        logger.exception("Claiming check slots failed as a whole; claiming plan by plan")
        done = per_plan(
            [pk for pk, rows in by_plan.items() if rows],
            lambda pk: _claim(by_plan[pk], now),
            failures,
        )
        claimed = [run_id for ids in done.values() for run_id in ids]
    failures.save()
    for i in range(0, len(claimed), CHUNK):
        enqueue_on_commit("metrics.tasks.check_runs_execute", claimed[i : i + CHUNK])
    for run_id in _sweep(now):  # one by one: a run left behind may be the one that fails
        enqueue_on_commit("metrics.tasks.check_run_execute", run_id)
    return claimed


# --- on demand ---------------------------------------------------------------------------------

ALREADY_WAITING = (
    "A check asked for is already waiting for the worker: it runs within a minute or two."
)


def check_run_request(*, plan: PilotPlan, user: User, now: dt.datetime | None = None) -> CheckRun:
    """Check the plan's exit criteria now, for its Product Owner or Scrum Master.

    The run is due now and marked ``on_demand``: it is outside the scheduled slots' unique key
    (a scheduled slot due at this very instant still runs), and it never counts as the plan's
    last claimed slot (``_running_plans``), so it moves no schedule. A plan has at most one
    on-demand run waiting (a database rule): asking twice while it waits is refused (409). The
    worker executes it like a scheduled run (``check_run_execute``), after this commits.
    """
    require(role_in_team(user=user, team_id=plan.team_id), Perm.CHECK_RUN_NOW)
    if plan.status != PilotPlan.Status.RUNNING or not (plan.start_date and plan.end_date):
        raise Conflict("Checks run while the pilot is running: start it first.")
    now = now or timezone.now()
    tz = ZoneInfo(plan.time_zone)
    window_start, _ = plan_window(start_date=plan.start_date, end_date=plan.end_date, tz=tz)
    if now < window_start:
        raise Conflict(
            f"The pilot's time-box starts on {day_text(plan.start_date)}: there is nothing to "
            "check before then."
        )
    local = now.astimezone(tz)
    run = CheckRun(
        plan=plan,
        due_at=now,
        local_date=local.date(),
        local_time=local.time(),
        created_at=now,
        trigger=CheckRun.Trigger.ON_DEMAND,
        requested_by=user,
    )
    try:
        with transaction.atomic():
            run.save()
    except IntegrityError as exc:  # metrics_checkrun_one_pending_on_demand
        raise Conflict(ALREADY_WAITING) from exc
    enqueue_on_commit("metrics.tasks.check_run_execute", run.pk)
    return run


# --- executing ---------------------------------------------------------------------------------


def check_run_execute(*, run_id: int) -> bool:
    """Evaluate every exit criterion of the run's plan, once; ``True`` if this call did it.

    One transaction: the run is locked (``SKIP LOCKED``: a concurrent execution of the same run
    makes this one return at once), its results stored, its counters set and its status made
    ``done``, and the day's digest sent if this is the plan's first check of that local day.
    Each criterion is evaluated as of the run's ``due_at`` (a late run judges the slot it was
    scheduled for, and gives the same answer whenever it runs).

    A run that raises is rolled back, logged and recorded against its plan; it stays pending and
    the tick's sweep tries it again. A digest that raises does not undo the check.
    """
    now = timezone.now()
    try:
        done = _check_runs_execute(run_ids=[run_id], now=now)
    except Exception as exc:  # recorded against the plan; the worker goes on with other runs
        plan_id = CheckRun.objects.filter(pk=run_id).values_list("plan_id", flat=True).first()
        if plan_id is None:
            raise
        failures = JobFailures(Job.CHECK_RUN, now=now)
        failures.catch(plan_id, exc)
        failures.save(done=[plan_id])
        return False
    return bool(done)


def check_runs_execute(*, run_ids: list[int]) -> list[int]:
    """:func:`check_run_execute` for a chunk of runs (the tick publishes its claimed runs in
    chunks of :data:`CHUNK`), set-based: the chunk's runs locked with their plans' criteria
    (one statement), the data of every criterion read (``evaluation.criteria_results``: one
    statement), the results inserted with the runs marked done (one statement), and the digests
    sent and past failures cleared, each in a few statements and only when there are some,
    whatever the chunk's size. Returns the ids of the runs this call executed.

    One run (:func:`check_run_execute`) takes this same path. When its day's digest went out
    already and its plan has no failure recorded, it is BEGIN, the lock with the criteria, the
    criteria's data (moments; sketches for percentiles; latest values), the results with the run
    marked done, and COMMIT: five statements.

    The same guarantees as one run at a time: a run locked or done elsewhere is skipped, and one
    plan cannot fail the others: if the chunk raises as a whole it is rolled back and its runs
    are executed one by one, each recorded against its own plan if it fails again.
    """
    now = timezone.now()
    try:
        return _check_runs_execute(run_ids=run_ids, now=now)
    except Exception:
        logger.exception("Executing %s check runs together failed; executing them one by one",
                         len(run_ids))  # fmt: skip
    return [run_id for run_id in run_ids if check_run_execute(run_id=run_id)]


# The check's two reads and its one write are plain SQL: the statements are tiny (an index
# probe or a few rows each) and building them with the ORM cost more than running them
# (measured: ~2 ms of query compilation each, against ~0.2 ms to execute).

# The columns of a run and of a criterion, in the model's order (what ``Model.from_db`` takes).
_RUN_FIELDS = [f.attname for f in CheckRun._meta.concrete_fields]
_CRITERION_FIELDS = [f.attname for f in ExitCriterion._meta.concrete_fields]
# What the lock statement adds to each run (see _RUNS_LOCK_SQL).
_RUN_EXTRAS = [
    "plan_start_date", "plan_end_date", "plan_time_zone", "plan_team_id", "plan_title",
    "failing_jobs", "digest_sent", "hooked",
]  # fmt: skip

# The runs still pending, locked (``SKIP LOCKED``: a run being executed elsewhere is left out),
# each with its plan's criteria in order (a row per criterion, one row with NULL criterion
# columns for a plan without any) and their metrics' names (all the evaluation and the result's
# label read of a metric): one statement where the run and the criteria were two round trips.
#
# Each run also carries the three columns of its plan that place its window and two cheap index
# probes that spare most checks four statements: ``failing_jobs``, the jobs of this path with a
# failure recorded against the plan (clearing failures is needed only then), and
# ``digest_sent``, whether the day's digest went out already (then there is none to send; when
# not, the digest's own ``ON CONFLICT`` claim still decides, so a concurrent run cannot send it
# twice). They are computed in the MATERIALIZED part, once per run, not once per criterion.
#
# The statement also turns ``synchronous_commit`` off for this transaction (``set_config`` with
# ``is_local``; evaluated for each locked row, to the same effect): the COMMIT returns without
# waiting for the disk, see ``_check_runs_execute``. Set here rather than by a statement of its
# own, which would cost every check a round trip.
_RUNS_LOCK_SQL = """
WITH locked AS MATERIALIZED (
    SELECT r.*, p.start_date AS plan_start_date, p.end_date AS plan_end_date,
           set_config('synchronous_commit', 'off', true) AS commit_without_flush,
           p.time_zone AS plan_time_zone, p.team_id AS plan_team_id, p.title AS plan_title,
           ARRAY(SELECT f.job FROM metrics_planjobfailure AS f
                  WHERE f.plan_id = r.plan_id AND f.job = ANY(%(jobs)s::text[])) AS failing_jobs,
           EXISTS (SELECT 1 FROM metrics_dailydigest AS d
                    WHERE d.plan_id = r.plan_id AND d.local_date = r.local_date) AS digest_sent,
           EXISTS (SELECT 1 FROM accounts_webhooksubscription AS s
                    WHERE s.team_id = p.team_id AND s.is_active
                      AND %(event)s = ANY(s.events)) AS hooked
      FROM metrics_checkrun AS r
      JOIN pilots_pilotplan AS p ON p.id = r.plan_id
     WHERE r.id = ANY(%(ids)s::bigint[]) AND r.status = 'pending'
       FOR UPDATE OF r SKIP LOCKED
)
SELECT {runs}, {extras}, {criteria}, m.name AS metric_name, d.name AS denominator_name
  FROM locked AS l
  LEFT JOIN pilots_exitcriterion AS c ON c.plan_id = l.plan_id
  LEFT JOIN metrics_metricdefinition AS m ON m.id = c.metric_id
  LEFT JOIN metrics_metricdefinition AS d ON d.id = c.denominator_id
 ORDER BY l.id, c.position, c.id
""".format(  # noqa: S608 - the column lists are the models' fields, not input
    runs=", ".join(f"l.{f.column}" for f in CheckRun._meta.concrete_fields),
    extras=", ".join(f"l.{name}" for name in _RUN_EXTRAS),
    criteria=", ".join(f"c.{f.column}" for f in ExitCriterion._meta.concrete_fields),
)

# The results inserted and the runs marked done, in one statement (a data-modifying WITH runs
# once whether or not the outer statement reads it).
_RESULTS_SQL = """
WITH done AS (
    UPDATE metrics_checkrun AS r
       SET status = 'done', finished_at = %s, attempts = r.attempts + 1,
           met = u.met, not_met = u.not_met, not_enough_evidence = u.unsure
      FROM unnest(%s::bigint[], %s::integer[], %s::integer[], %s::integer[])
           AS u(id, met, not_met, unsure)
     WHERE r.id = u.id
)
INSERT INTO metrics_criterionresult
    (run_id, criterion_id, position, label, comparator, threshold, blocking, value, low, high,
     sample_size, method, verdict, reason)
SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::smallint[], %s::text[], %s::text[],
                     %s::float8[], %s::bool[], %s::float8[], %s::float8[], %s::float8[],
                     %s::integer[], %s::text[], %s::text[], %s::text[])
"""
_RESULT_COLUMNS = [
    "run_id", "criterion_id", "position", "label", "comparator", "threshold", "blocking", "value",
    "low", "high", "sample_size", "method", "verdict", "reason",
]  # fmt: skip


def _runs_lock(run_ids: list[int]) -> list[tuple[CheckRun, list[ExitCriterion]]]:
    """The pending runs among ``run_ids``, locked, each with its plan's criteria in order.

    Each run carries what ``_RUNS_LOCK_SQL`` adds (``plan_start_date``, ``plan_end_date``,
    ``plan_time_zone``, ``plan_team_id``, ``plan_title``, ``failing_jobs``, ``digest_sent``, and
    ``hooked``: whether a webhook subscription of the plan's team hears ``check_run.finished``,
    so that a check nobody subscribed to costs no statement more). Each criterion has its metric
    and denominator loaded with their names only (their other fields are deferred, as
    ``.only()`` leaves them)."""
    jobs = [Job.CHECK_RUN, Job.DIGEST]
    params = {"jobs": jobs, "ids": list(run_ids), "event": EventType.CHECK_RUN_FINISHED.value}
    with connection.cursor() as cursor:
        cursor.execute(_RUNS_LOCK_SQL, params)
        rows = cursor.fetchall()
    db = connection.alias
    runs: dict[int, tuple[CheckRun, list[ExitCriterion]]] = {}
    extras_at = len(_RUN_FIELDS)
    criterion_at = extras_at + len(_RUN_EXTRAS)
    names_at = criterion_at + len(_CRITERION_FIELDS)
    for row in rows:
        if row[0] not in runs:
            run = CheckRun.from_db(db, _RUN_FIELDS, row[:extras_at])
            for name, value in zip(_RUN_EXTRAS, row[extras_at:criterion_at], strict=True):
                setattr(run, name, value)
            runs[row[0]] = (run, [])
        if row[criterion_at] is None:  # the plan has no criteria (the LEFT JOIN's one row)
            continue
        criterion = ExitCriterion.from_db(db, _CRITERION_FIELDS, row[criterion_at:names_at])
        metric_name, denominator_name = row[names_at:]
        criterion.metric = MetricDefinition.from_db(
            db, ["id", "name"], [criterion.metric_id, metric_name]
        )
        if criterion.denominator_id is not None:
            criterion.denominator = MetricDefinition.from_db(
                db, ["id", "name"], [criterion.denominator_id, denominator_name]
            )
        runs[row[0]][1].append(criterion)
    return list(runs.values())


def _plan_start(run: CheckRun) -> dt.datetime:
    start_date, end_date = run.plan_start_date, run.plan_end_date  # type: ignore[attr-defined]
    if start_date is None or end_date is None:
        return run.due_at  # dates cleared since the slot was claimed: nothing to look at
    start, _ = plan_window(
        start_date=start_date,
        end_date=end_date,
        tz=ZoneInfo(run.plan_time_zone),  # type: ignore[attr-defined]
    )
    return start


def _results_store(
    runs: list[CheckRun], results: list[CriterionResult], *, at: dt.datetime
) -> None:
    """Insert ``results`` and mark ``runs`` done with their counts (one statement)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _RESULTS_SQL,
            [
                at,
                [run.pk for run in runs],
                [run.met for run in runs],
                [run.not_met for run in runs],
                [run.not_enough_evidence for run in runs],
                *([getattr(r, name) for r in results] for name in _RESULT_COLUMNS),
            ],
        )


def _result(
    run: CheckRun, criterion: ExitCriterion, outcome: evaluation.Outcome
) -> CriterionResult:
    # The criterion as it reads now (kept with the result: the history shows what was checked
    # even after the criterion changes), within the column's 200 characters.
    label = wording.criterion_text(criterion)
    if len(label) > 200:
        label = label[:199] + "…"
    return CriterionResult(
        run_id=run.pk,  # ids, not instances: assigning a related instance costs ~0.05 ms
        criterion_id=criterion.pk,
        position=criterion.position,
        label=label,
        comparator=criterion.comparator,
        threshold=None if criterion.threshold is None else float(criterion.threshold),
        blocking=criterion.blocking,
        value=outcome.value,
        low=outcome.low,
        high=outcome.high,
        sample_size=outcome.sample_size,
        method=outcome.method,
        verdict=outcome.verdict,
        reason=outcome.reason,
    )


def _check_runs_execute(*, run_ids: list[int], now: dt.datetime) -> list[int]:
    with transaction.atomic():
        locked = _runs_lock(run_ids)
        if not locked:
            return []
        runs = [run for run, _ in locked]
        # The lock turned synchronous_commit off for this transaction; back on when a digest is
        # to be sent (see _commit_with_flush).
        if not all(run.digest_sent for run in runs):  # type: ignore[attr-defined]
            _commit_with_flush()
        pairs: list[tuple[CheckRun, ExitCriterion]] = []
        items: list[evaluation.Item] = []
        for run, criteria in locked:
            plan_start = _plan_start(run)
            for criterion in criteria:
                start, end = evaluation.criterion_window(
                    window_hours=criterion.window_hours, due_at=run.due_at, plan_start=plan_start
                )
                pairs.append((run, criterion))
                items.append((criterion, run.plan_id, start, end))
        outcomes = evaluation.criteria_results(items)
        results: dict[int, list[CriterionResult]] = {run.pk: [] for run in runs}
        for (run, criterion), outcome in zip(pairs, outcomes, strict=True):
            results[run.pk].append(_result(run, criterion, outcome))
        finished_at = timezone.now()
        for run in runs:
            verdicts = [r.verdict for r in results[run.pk]]
            run.status = CheckRun.Status.DONE
            run.finished_at = finished_at
            run.attempts += 1
            run.met = verdicts.count(Verdict.MET)
            run.not_met = verdicts.count(Verdict.NOT_MET)
            run.not_enough_evidence = verdicts.count(Verdict.NOT_ENOUGH_EVIDENCE)
        _results_store(runs, [r for rs in results.values() for r in rs], at=finished_at)
        _finished_publish([(run, results[run.pk]) for run in runs if run.hooked])  # type: ignore[attr-defined]
        # The check succeeded: its plans' past check failures are cleared (where there are any).
        JobFailures(Job.CHECK_RUN, now=now).save(done=_failing(runs, Job.CHECK_RUN))
        _digests_send(
            [(run, results[run.pk]) for run in runs if not run.digest_sent],  # type: ignore[attr-defined]
            failing=_failing(runs, Job.DIGEST),
            now=now,
        )
    return [run.pk for run in runs]


def _commit_with_flush() -> None:
    """Make this transaction's COMMIT wait for its WAL record to reach the disk again.

    A check's transaction commits without waiting (``synchronous_commit`` off, set by
    ``_RUNS_LOCK_SQL``): the flush was the largest single part of a check, 3–7 ms of a 13 ms
    check on the development machine, more than its reads (docs/operations.md, "Database and
    process settings"). What the wait protects is not needed there: if PostgreSQL crashes in the
    moment (at most three times ``wal_writer_delay``) between the COMMIT and the flush, the
    transaction is lost whole and the database stays consistent; the run is still pending, the
    tick's sweep publishes it again and it gives the same results (it is judged as of its due
    time). A check that sends its plan's daily digest waits, so its notifications never go out
    twice."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO ON")


def _finished_publish(done: list[tuple[CheckRun, list[CriterionResult]]]) -> None:
    """``check_run.finished`` for each run whose team has a subscription to it."""
    if not done:
        return
    event = EventType.CHECK_RUN_FINISHED
    listening = subscriptions_listening(
        team_ids={run.plan_team_id for run, _ in done},
        event=event,  # type: ignore[attr-defined]
    )
    for run, results in done:
        team_id: int = run.plan_team_id  # type: ignore[attr-defined]
        if team_id not in listening:
            continue
        counts = (
            f"{run.met} met, {run.not_met} not met, {run.not_enough_evidence} not enough evidence"
        )
        event_publish(
            team_id=team_id,
            event=event,
            data={
                "plan": plan_ref(plan_id=run.plan_id, title=run.plan_title),  # type: ignore[attr-defined]
                "check_run": {
                    "id": run.pk,
                    "due_at": iso(run.due_at),
                    "finished_at": iso(run.finished_at),
                    "late": run.late,
                    "met": run.met,
                    "not_met": run.not_met,
                    "not_enough_evidence": run.not_enough_evidence,
                },
                "results": [
                    {
                        "label": r.label,
                        "verdict": r.verdict,
                        "value": r.value,
                        "comparator": r.comparator,
                        "threshold": r.threshold,
                        "blocking": r.blocking,
                    }
                    for r in results
                ],
            },
            summary=f"Check of {run.local_date:%Y-%m-%d} {run.local_time:%H:%M}: {counts}.",
            link=reverse("metrics:checks", args=[run.plan_id]),
            subscriptions=listening[team_id],
        )


def _failing(runs: list[CheckRun], job: str) -> set[int]:
    """The runs' plans with a failure of ``job`` recorded when they were locked."""
    return {run.plan_id for run in runs if job in run.failing_jobs}  # type: ignore[attr-defined]


def _digests_send(
    runs: list[tuple[CheckRun, list[CriterionResult]]], *, failing: set[int], now: dt.datetime
) -> None:
    """The day's digests of the runs, together; if that raises, run by run, so one plan's
    failing digest is recorded against it and never undoes a check. ``failing``: the plans of
    the check's runs with a digest failure recorded, cleared unless it fails again (a day's
    digest already sent counts as success)."""
    digests = JobFailures(Job.DIGEST, now=now)
    if runs:
        try:
            with transaction.atomic():
                digest.digests_after_runs(runs)
        except Exception:
            logger.exception("Sending %s digests together failed; sending them one by one",
                             len(runs))  # fmt: skip
            for run, results in runs:
                try:
                    with transaction.atomic():
                        digest.digests_after_runs([(run, results)])
                except Exception as exc:  # the check stands; the failure is shown on the plan
                    digests.catch(run.plan_id, exc)
    digests.save(done=failing)


# --- reads (the checks page, the API, the Monitoring page's "today's status") ----------------


def check_runs_for_plan(*, plan_id: int) -> QuerySet[CheckRun]:
    """A plan's check runs, newest slot first, each with its results (two queries a page)."""
    return (
        CheckRun.objects.filter(plan_id=plan_id)
        .order_by("-due_at")
        .prefetch_related(
            Prefetch("results", queryset=CriterionResult.objects.order_by("position"))
        )
    )


def check_run_latest_done(*, plan_id: int) -> CheckRun | None:
    """The plan's newest done check run with its results (two queries), or ``None``."""
    return check_runs_for_plan(plan_id=plan_id).filter(status=CheckRun.Status.DONE).first()
