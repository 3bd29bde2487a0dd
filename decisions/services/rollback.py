"""The rollback checklist: start a run of the plan's runbook, mark its steps, verify, end.

- ``rollback_start``: from a Roll back decision (``decision=``, called by the decision service;
  the decision authorises it) or, before the decision, as an **emergency rollback** from a fired
  trigger episode (``episode=``; the plan Running or Evaluating). A Roll back decision recorded
  while an emergency run exists links to it instead of starting another. The plan's steps are
  copied in order, then one last verification step; the owner, the rollback executor and the
  whole team are told at once.
- ``rollback_step_mark``: done / skipped (with a reason) / failed (with a note), or back to not
  done (with a note), with who and when; compare-and-set on the step's version.
- ``rollback_verification``: whether the triggering metric recovered, in words (a selector).
- ``rollback_end``: every step marked; records who and when, tells the owner.
- ``rollback_ended_guard``: the "close" lifecycle guard (registered in ``decisions.apps``).

Who: starting needs ``Perm.ROLLBACK_START`` (Product Owner, DevOps) or being the plan's rollback
executor; working the checklist ``Perm.ROLLBACK_WORK`` (DevOps) or being the executor. The
Product Owner watches but does not tick steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.urls import reverse
from django.utils import timezone

from accounts.models import Notification, User
from accounts.permissions import PERMISSIONS, Perm, allows, person_writes, role_in_team
from accounts.services import notify
from accounts.ui import local_time
from catalogue import comparators
from catalogue.models import MetricDefinition
from core.exceptions import Conflict
from decisions.events import rollback_finished_publish, rollback_started_publish
from decisions.models import DecisionRecord, RollbackRun, RollbackStepRun
from decisions.selectors import decision_head
from metrics.models import TriggerEpisode, TriggerState
from pilots import wording
from pilots.extensions import PlanPanel
from pilots.models import PilotPlan, RollbackPlan, RollbackStep, RollbackTrigger

Status = RollbackStepRun.Status
VERIFICATION_ACTION = "Verify the triggering metric recovered"
EMERGENCY_STATES = frozenset({PilotPlan.Status.RUNNING, PilotPlan.Status.EVALUATING})


# --- who ------------------------------------------------------------------------------------------


def rollback_executor(plan: PilotPlan) -> User | None:
    """The person the plan names to execute a rollback (normally the DevOps lead)."""
    return plan.rollback_executor


def _role(plan: PilotPlan, user: User) -> str | None:
    return role_in_team(user=user, team_id=plan.team_id)


def _is_executor(plan: PilotPlan, user: User) -> bool:
    """The plan's rollback executor, acting as a person (a read-only token of theirs reads)."""
    return (
        plan.rollback_executor_id is not None
        and plan.rollback_executor_id == user.pk
        and person_writes(user)
    )


def rollback_start_allowed(plan: PilotPlan, user: User, role: str | None = None) -> bool:
    """May ``user`` start an emergency rollback of ``plan``? (Pages ask, to show the link.)"""
    if not user.is_authenticated:
        return False
    role = role if role is not None else _role(plan, user)
    return _is_executor(plan, user) or allows(role, Perm.ROLLBACK_START)


def rollback_work_allowed(plan: PilotPlan, user: User, role: str | None = None) -> bool:
    """May ``user`` tick the checklist's steps and end the rollback?"""
    if not user.is_authenticated:
        return False
    role = role if role is not None else _role(plan, user)
    return _is_executor(plan, user) or allows(role, Perm.ROLLBACK_WORK)


def _refusal(plan: PilotPlan, perm: Perm, doing: str) -> str:
    who = PERMISSIONS[perm].who
    executor = rollback_executor(plan)
    if executor is None:
        return f"Only the team's {who} can {doing}: this plan names no rollback executor."
    return f"{executor.display_name} (the rollback executor) or the team's {who} can {doing}."


def rollback_require_start(plan: PilotPlan, user: User, role: str | None = None) -> None:
    """``PermissionDenied`` naming the executor unless ``user`` may start a rollback."""
    if not rollback_start_allowed(plan, user, role=role):
        raise PermissionDenied(_refusal(plan, Perm.ROLLBACK_START, "start a rollback"))


def rollback_require_work(plan: PilotPlan, user: User) -> None:
    """``PermissionDenied`` naming the executor unless ``user`` may work the checklist."""
    if not rollback_work_allowed(plan, user):
        raise PermissionDenied(_refusal(plan, Perm.ROLLBACK_WORK, "work the rollback checklist"))


def rollback_url(plan_id: int) -> str:
    return reverse("decisions:rollback", args=[plan_id])


# --- start ----------------------------------------------------------------------------------------


def _steps_copy(run: RollbackRun) -> list[RollbackStepRun]:
    steps = list(
        RollbackStep.objects.filter(plan_id=run.plan_id)
        .select_related("owner")
        .order_by("position", "pk")
    )
    rows = [
        RollbackStepRun(
            run=run,
            position=i,
            kind=RollbackStepRun.Kind.STEP,
            action=step.action,
            owner_name=step.owner.display_name if step.owner else "",
            expected_minutes=step.expected_minutes,
        )
        for i, step in enumerate(steps, start=1)
    ]
    rows.append(
        RollbackStepRun(
            run=run,
            position=len(rows) + 1,
            kind=RollbackStepRun.Kind.VERIFICATION,
            action=VERIFICATION_ACTION,
        )
    )
    return RollbackStepRun.objects.bulk_create(rows)


def _link(run: RollbackRun, decision: DecisionRecord) -> RollbackRun:
    RollbackRun.objects.filter(pk=run.pk).update(decision=decision, version=F("version") + 1)
    run.refresh_from_db()
    return run


def _tell_team(plan: PilotPlan, run: RollbackRun, user: User) -> None:
    team = list(User.objects.filter(memberships__team_id=plan.team_id))
    why = (
        f"after “{run.episode.description}” fired"
        if run.episode is not None
        else "after the Roll back decision"
    )
    kind = "Emergency rollback" if run.emergency else "Rollback"
    message = f"{kind} of “{plan.title}” started by {user.display_name} {why}."
    notify(
        users=[plan.owner, rollback_executor(plan), *team],
        kind=Notification.Kind.ROLLBACK_STARTED,
        message=message,
        url=rollback_url(plan.pk),
        actor=user,
    )
    rollback_started_publish(plan=plan, run=run, summary=message)


@transaction.atomic
def rollback_start(
    *,
    plan: PilotPlan,
    user: User,
    decision: DecisionRecord | None = None,
    episode: TriggerEpisode | None = None,
) -> RollbackRun:
    """Open the rollback checklist of ``plan`` (see the module's docstring)."""
    # One start at a time per plan; the partial unique index stays the last word.
    plan = (
        PilotPlan.objects.select_for_update(of=("self",))
        .select_related("owner", "rollback_executor")
        .get(pk=plan.pk)
    )
    runs = RollbackRun.objects.filter(plan=plan)
    if decision is not None:
        if decision.plan_id != plan.pk:
            raise ValidationError({"decision": "That decision belongs to another plan."})
        if decision.outcome != DecisionRecord.Outcome.ROLL_BACK:
            raise ValidationError({"decision": "Only a Roll back decision starts a rollback."})
        already = runs.filter(decision=decision).first()
        if already is not None:
            return already
        # An emergency run the decision has not linked yet (open or ended) is this rollback.
        emergency = runs.filter(emergency=True, decision__isnull=True).order_by("-started_at")
        if (run := emergency.first()) is not None:
            return _link(run, decision)
        # A correction of an earlier Roll back decision carries on with the open run.
        if (run := runs.filter(ended_at__isnull=True).first()) is not None:
            return _link(run, decision)
    else:
        rollback_require_start(plan, user)
        if episode is None:
            raise ValidationError(
                {"episode": "An emergency rollback starts from a fired rollback trigger."}
            )
        if episode.plan_id != plan.pk:
            raise ValidationError({"episode": "That trigger episode belongs to another plan."})
        if plan.status not in EMERGENCY_STATES:
            raise Conflict(
                "An emergency rollback starts while the pilot is Running or Evaluating; "
                f"this pilot is {plan.get_status_display()}."
            )
        if (
            run := runs.filter(ended_at__isnull=True).select_related("started_by").first()
        ) is not None:
            raise Conflict(
                f"A rollback is already in progress: {run.started_by.display_name} started it "
                f"{local_time(run.started_at, plan)}."
            )
    communication = (
        RollbackPlan.objects.filter(plan=plan).values_list("communication_plan", flat=True).first()
    )
    run = RollbackRun.objects.create(
        plan=plan,
        decision=decision,
        emergency=decision is None,
        episode=episode,
        started_by=user,
        communication_plan=communication or "",
    )
    _steps_copy(run)
    _tell_team(plan, run, user)
    return run


# --- the steps ------------------------------------------------------------------------------------


def _marked_words(step: RollbackStepRun, plan: PilotPlan) -> str:
    if step.done_by is None:
        return f"it is now “{step.get_status_display()}”"
    words = (
        f"{step.done_by.display_name} marked it “{step.get_status_display()}” "
        f"{local_time(step.done_at, plan)}"
    )
    return f"{words}: {step.note}" if step.note else words


@transaction.atomic
def rollback_step_mark(
    *,
    step: RollbackStepRun,
    user: User,
    status: str,
    note: str = "",
    expected_version: int,
) -> RollbackStepRun:
    """Mark one step done, skipped (reason required) or failed (note required), or set it back
    to not done (note required: the checklist stays honest). A form based on an older version
    of the step gets ``Conflict`` with what the other person did."""
    step = (
        RollbackStepRun.objects.select_for_update(of=("self",))
        .select_related("run__plan__rollback_executor", "done_by")
        .get(pk=step.pk)
    )
    run, plan = step.run, step.run.plan
    rollback_require_work(plan, user)
    if run.ended_at is not None:
        raise Conflict(
            f"This rollback ended {local_time(run.ended_at, plan)}; its checklist is closed."
        )
    if step.version != expected_version:
        raise Conflict(
            f"Someone changed this step while you had it open: {_marked_words(step, plan)}. "
            "Check it and mark it again if needed."
        )
    note = note.strip()
    if status not in Status.values:
        raise ValidationError({"status": "Mark the step done, skipped or failed."})
    if status == Status.SKIPPED and step.is_verification:
        raise ValidationError(
            {"status": "The verification is done (recovered) or failed (not recovered)."}
        )
    if status == Status.SKIPPED and not note:
        raise ValidationError({"note": "Say why the step is skipped."})
    if status == Status.FAILED and not note:
        raise ValidationError({"note": "Say what went wrong."})
    if status == Status.PENDING:
        if step.status == Status.PENDING:
            raise ValidationError({"status": "The step is not marked yet."})
        if not note:
            raise ValidationError({"note": "Say why the step is set back to not done."})
    step.status = status
    step.note = note
    step.done_by = user
    step.done_at = timezone.now()
    step.version += 1
    # The rules above are the database's (CONSTRAINT_FIELDS), checked here in words.
    step.save(update_fields=["status", "note", "done_by", "done_at", "version"])
    return step


# --- the verification -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TriggerCheck:
    """One trigger the verification looks at, in words."""

    trigger_id: int
    text: str  # "p95 latency > 300 ms for 30 minutes"
    state: str  # TriggerState.State, or "" when never evaluated
    state_label: str
    recovered: bool | None  # None: no data, cannot tell (never shown as recovered)
    value_text: str  # the latest minute, "210 ms at 14:31 CET", or "no data"
    threshold_text: str
    words: str


@dataclass(frozen=True)
class Verification:
    recovered: bool | None  # True: every trigger OK; False: one still breaches; None: cannot tell
    checks: tuple[TriggerCheck, ...]
    words: str

    @property
    def verdict(self) -> str:
        """``recovered`` / ``not_recovered`` / ``unknown`` (for the chip's colour)."""
        return {True: "recovered", False: "not_recovered", None: "unknown"}[self.recovered]

    @property
    def label(self) -> str:
        return {True: "Recovered", False: "Not recovered", None: "Cannot tell yet"}[self.recovered]


def _minute_value(metric: MetricDefinition, count: int, total: float) -> float:
    """A count metric's minute is its sum; a gauge's or score's is its mean (metrics.triggers)."""
    return total if metric.kind == MetricDefinition.Kind.COUNT else total / count


# Each metric's newest minute with data: its newest sample's UTC minute, and the samples of that
# minute (two ranges of the samples' natural-key index per metric).
_LATEST_MINUTES_SQL = """
SELECT m.metric_id, n.bucket, x.count, x.sum
FROM unnest(%s::bigint[]) AS m(metric_id), (SELECT %s::bigint AS plan_id) AS p
CROSS JOIN LATERAL (
    SELECT date_trunc('minute', s.observed_at, 'UTC') AS bucket FROM metrics_sample s
    WHERE s.plan_id = p.plan_id AND s.metric_id = m.metric_id
    ORDER BY s.observed_at DESC LIMIT 1
) n
CROSS JOIN LATERAL (
    SELECT count(*) AS count, sum(s.value) AS sum FROM metrics_sample s
    WHERE s.plan_id = p.plan_id AND s.metric_id = m.metric_id
      AND s.observed_at >= n.bucket AND s.observed_at < n.bucket + interval '1 minute'
) x
"""


def _check(
    trigger: RollbackTrigger, state: TriggerState | None, latest: dict | None, plan: PilotPlan
) -> TriggerCheck:
    text = wording.trigger_text(trigger)
    metric = trigger.metric
    unit = "" if metric.unit in {"count", "score"} else metric.unit
    threshold = wording.threshold_text(trigger.comparator, trigger.threshold, unit)
    value: float | None = None
    if latest is not None:
        value = _minute_value(metric, latest["count"], latest["sum"])
        value_text = " ".join(p for p in (wording.number_text(round(value, 4)), unit) if p)
        value_text += f" (minute of {local_time(latest['bucket'], plan, 'time')})"
    else:
        value_text = "no data"
    kind = state.state if state is not None else ""
    label = state.get_state_display() if state is not None else "Not evaluated yet"
    detail = f" ({state.detail})" if state is not None and state.detail else ""
    breaches = value is not None and comparators.get(trigger.comparator).holds(
        value, float(trigger.threshold)
    )
    if kind in {TriggerState.State.NO_DATA, TriggerState.State.STALE, ""} or value is None:
        recovered = None
        words = f"No data: cannot tell whether “{text}” recovered{detail}."
    elif kind in {TriggerState.State.BREACHING, TriggerState.State.FIRED} or breaches:
        recovered = False
        words = (
            f"Still breached: “{text}” is {label.lower()}{detail}; the latest minute is "
            f"{value_text}, the trigger is {threshold}."
        )
    else:
        recovered = True
        words = (
            f"Recovered: “{text}” is OK; the latest minute is {value_text}, "
            f"inside the trigger's {threshold}."
        )
    return TriggerCheck(
        trigger_id=trigger.pk,
        text=text,
        state=kind,
        state_label=label,
        recovered=recovered,
        value_text=value_text,
        threshold_text=threshold,
        words=words,
    )


def rollback_verification(run: RollbackRun) -> Verification:
    """Whether the triggering metric recovered: the episode's trigger (an emergency rollback),
    or every trigger of the plan that fired during the pilot (a decision's). Each trigger's
    current state and its latest minute against the threshold, in words; no data or stale data
    is never "recovered". Three queries whatever the number of triggers."""
    plan = run.plan
    if run.episode_id is not None:
        trigger_ids = [run.episode.trigger_id] if run.episode and run.episode.trigger_id else []
    else:
        trigger_ids = list(
            TriggerEpisode.objects.filter(plan_id=plan.pk, trigger__isnull=False)
            .order_by()
            .values_list("trigger_id", flat=True)
            .distinct()
        )
    if not trigger_ids:
        return Verification(
            recovered=None,
            checks=(),
            words=(
                "No rollback trigger fired in this pilot: check the pilot's metrics on the "
                "monitoring page before marking the verification."
            ),
        )
    triggers = list(
        RollbackTrigger.objects.filter(pk__in=trigger_ids)
        .select_related("metric", "state")
        .order_by("position", "pk")
    )
    with connection.cursor() as cursor:
        cursor.execute(_LATEST_MINUTES_SQL, [sorted({t.metric_id for t in triggers}), plan.pk])
        latest = {
            metric_id: {"bucket": bucket, "count": count, "sum": total}
            for metric_id, bucket, count, total in cursor.fetchall()
        }
    checks = tuple(
        _check(t, getattr(t, "state", None), latest.get(t.metric_id), plan) for t in triggers
    )
    if any(c.recovered is False for c in checks):
        recovered: bool | None = False
        words = "Not recovered: a trigger that fired still breaches."
    elif checks and all(c.recovered for c in checks):
        recovered = True
        words = "Recovered: every trigger that fired is OK now."
    else:
        recovered = None
        words = "Cannot tell yet: a trigger that fired has no fresh data."
    if not triggers:
        words = "The trigger that fired was removed from the plan: check its metric by hand."
    return Verification(recovered=recovered, checks=checks, words=words)


# --- end ------------------------------------------------------------------------------------------


@transaction.atomic
def rollback_end(*, run: RollbackRun, user: User) -> RollbackRun:
    """End the rollback once every step is marked; the owner is told."""
    run = (
        RollbackRun.objects.select_for_update(of=("self",))
        .select_related("plan__owner", "plan__rollback_executor")
        .get(pk=run.pk)
    )
    plan = run.plan
    rollback_require_work(plan, user)
    if run.ended_at is not None:
        raise Conflict(f"This rollback already ended {local_time(run.ended_at, plan)}.")
    pending = list(run.steps.filter(status=Status.PENDING).order_by("position"))
    if pending:
        listed = "; ".join(f"{s.position}. {s.action[:80]}" for s in pending)
        raise Conflict(f"Mark every step before ending the rollback. Not done yet: {listed}.")
    run.ended_by = user
    run.ended_at = timezone.now()
    run.version += 1
    run.save(update_fields=["ended_by", "ended_at", "version"])
    failed = run.steps.filter(status=Status.FAILED).count()
    outcome = f" {failed} step{'s' if failed != 1 else ''} failed." if failed else ""
    message = f"The rollback of “{plan.title}” was ended by {user.display_name}.{outcome}"
    notify(
        users=[plan.owner],
        kind=Notification.Kind.ROLLBACK_STARTED,
        message=message,
        url=rollback_url(plan.pk),
        actor=user,
    )
    rollback_finished_publish(plan=plan, run=run, failed_steps=failed, summary=message)
    return run


# --- reads ----------------------------------------------------------------------------------------


def rollback_runs(*, plan_id: int) -> list[RollbackRun]:
    """Every run of the plan, open first, then newest first, with the people (one query)."""
    return list(
        RollbackRun.objects.filter(plan_id=plan_id)
        .select_related("plan", "started_by", "ended_by", "decision", "episode")
        .annotate(
            step_count=Count("steps"),
            marked_count=Count("steps", filter=~Q(steps__status=Status.PENDING)),
        )
        .order_by(F("ended_at").desc(nulls_first=True), "-started_at", "-pk")
    )


def rollback_steps(*, run: RollbackRun) -> list[RollbackStepRun]:
    return list(run.steps.select_related("done_by").order_by("position"))


def rollback_ended_guard(plan: PilotPlan) -> list[str]:
    """Closing: a rollback in progress must end first, and a plan whose current decision is
    Roll back closes only after that rollback ended."""
    runs = RollbackRun.objects.filter(plan_id=plan.pk)
    if runs.filter(ended_at__isnull=True).exists():
        return ["End the rollback in progress (every step marked) before closing the pilot."]
    decision = decision_head(plan_id=plan.pk)
    # A correction that keeps Roll back carries on with the rollback of the record it corrects:
    # the run may be linked to any Roll back record of the unbroken chain.
    chain: list[int] = []
    while decision is not None and decision.outcome == DecisionRecord.Outcome.ROLL_BACK:
        chain.append(decision.pk)
        decision = decision.supersedes
    if not chain:
        return []
    if not runs.filter(decision_id__in=chain, ended_at__isnull=False).exists():
        return ["The decision is Roll back: run the rollback checklist to its end before closing."]
    return []


def rollback_plan_flags() -> dict[str, Exists]:
    """Whether a rollback is in progress: an ``Exists`` of the plan page's plan query."""
    return {
        "has_rollback_running": Exists(
            RollbackRun.objects.filter(plan=OuterRef("pk"), ended_at__isnull=True)
        )
    }


def rollback_plan_panel(plan: PilotPlan) -> PlanPanel | None:
    """The plan page's panel while a rollback is in progress (one query; nothing otherwise,
    and no query when the plan's flag, ``rollback_plan_flags``, says none is running)."""
    if not getattr(plan, "has_rollback_running", True):
        return None
    run = (
        RollbackRun.objects.filter(plan_id=plan.pk, ended_at__isnull=True)
        .select_related("started_by")
        .annotate(
            step_count=Count("steps"),
            marked_count=Count("steps", filter=~Q(steps__status=Status.PENDING)),
        )
        .first()
    )
    if run is None:
        return None
    return PlanPanel("decisions/rollback_panel.html", {"run": run})


__all__ = [
    "VERIFICATION_ACTION",
    "TriggerCheck",
    "Verification",
    "rollback_end",
    "rollback_ended_guard",
    "rollback_executor",
    "rollback_plan_flags",
    "rollback_plan_panel",
    "rollback_require_start",
    "rollback_require_work",
    "rollback_runs",
    "rollback_start",
    "rollback_start_allowed",
    "rollback_step_mark",
    "rollback_steps",
    "rollback_url",
    "rollback_verification",
    "rollback_work_allowed",
]
