"""The life of a pilot: Draft → In review → Approved → Running → Evaluating → Decided → Closed.

Each step is a guarded, compare-and-set transition: the guards run with the plan row locked, the
status changes only if it is still the one the step starts from, and the step is recorded with
who and why. A refused step says exactly what is missing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, Notification, User
from accounts.permissions import Perm, allows, refusal, require, role_in_team, roles_for
from accounts.services import notify
from accounts.ui import day_text
from core.exceptions import Conflict
from pilots import health
from pilots.events import plan_transitions_publish
from pilots.extensions import lifecycle_guards
from pilots.models import EntryCriterion, PilotPlan, PlanSection, PlanTransition, Section, SignOff
from pilots.review import REVIEWS
from pilots.selectors import plan_detail_queryset
from pilots.services.sections import plan_end_date, section_claim

Status = PilotPlan.Status
Role = Membership.Role


@dataclass(frozen=True)
class Transition:
    action: str
    label: str
    source: str
    target: str
    # The plan header offers the step as the state's primary action (the one button in colour);
    # the others are secondary.
    primary: bool = False
    # A step that cannot be undone (or ends something early) says so before its confirm button.
    warning: str = ""

    @property
    def perm(self) -> Perm:
        """Who may take the step: the permission table's ``step.<action>`` rule."""
        return Perm(f"step.{self.action}")

    @property
    def roles(self) -> frozenset[str]:
        return roles_for(self.perm)


TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in (
        Transition("submit", "Submit for review", Status.DRAFT, Status.IN_REVIEW, primary=True),
        Transition(
            "withdraw",
            "Back to draft",
            Status.IN_REVIEW,
            Status.DRAFT,
            warning="The review round ends: the plan must be submitted for review again.",
        ),
        Transition("approve", "Approve", Status.IN_REVIEW, Status.APPROVED, primary=True),
        Transition("start", "Start the pilot", Status.APPROVED, Status.RUNNING, primary=True),
        Transition(
            "evaluate",
            "End the time-box and evaluate",
            Status.RUNNING,
            Status.EVALUATING,
            warning="The pilot stops running now and waits for its decision; "
            "it cannot go back to Running.",
        ),
        Transition(
            "decide", "Record the decision", Status.EVALUATING, Status.DECIDED, primary=True
        ),
        Transition(
            "close",
            "Close the pilot",
            Status.DECIDED,
            Status.CLOSED,
            primary=True,
            warning="Closing is the last step: a closed pilot cannot be reopened.",
        ),
    )
}


def transition_for(action: str) -> Transition:
    try:
        return TRANSITIONS[action]
    except KeyError:
        raise ValidationError({"action": f"“{action}” is not a lifecycle step."}) from None


# The steps ``decisions.services.decision.decision_record`` takes (``via_record``).
RECORD_STEPS = frozenset({"evaluate", "decide"})


def decide_elsewhere(plan: PilotPlan) -> str:
    """Why ``decide`` is not a step of its own: the decision record takes it, with the evidence."""
    return (
        f"Record the decision on the plan's decision page (POST /api/v1/plans/{plan.pk}/decisions)."
    )


def transitions_from(status: str) -> list[Transition]:
    return [t for t in TRANSITIONS.values() if t.source == status]


def _guards(
    plan: PilotPlan, action: str, *, override_gaps: bool = False, confirm_early_start: bool = False
) -> list[str]:
    """What is missing before ``action`` may happen (plan content; not role or state)."""
    missing: list[str] = []
    if action == "submit" and not override_gaps:
        gaps = health_gaps(plan)
        if gaps:
            missing.append(
                "Plan health lists open gaps: "
                + " ".join(gaps)
                + " Close them, or submit with an override and a reason the reviewers will see."
            )
    elif action == "approve":
        active = set(
            SignOff.objects.filter(plan=plan, voided_at__isnull=True).values_list("kind", flat=True)
        )
        for kind, spec in REVIEWS.items():
            if kind not in active:
                missing.append(f"The {spec.short_label} review is not signed off.")
        criteria = list(EntryCriterion.objects.filter(plan=plan))
        if not criteria:
            missing.append("The plan has no entry criteria.")
        pending = [c.text for c in criteria if c.status == EntryCriterion.Status.PENDING]
        if pending:
            missing.append(
                "Entry criteria not met or waived: " + "; ".join(f"“{t}”" for t in pending) + "."
            )
    elif action == "start":
        if plan.start_date is None:
            missing.append("The plan has no start date.")
        elif plan.start_date > plan_today(plan) and not confirm_early_start:
            missing.append(early_start_question(plan))
        loaded = _loaded(plan)
        for rule in (
            health.rollback_defined,
            health.real_data_validated,
            health.on_call_covers_window,
        ):
            missing.extend(gap.message for gap in rule(loaded))
    # Rules that read what lies above pilots (the backlog's findings, metrics), registered by
    # the layers that own them (pilots.extensions).
    for guard in lifecycle_guards(action):
        missing.extend(guard(plan))
    return missing


def health_gaps(plan: PilotPlan) -> list[str]:
    """Plan health's open gaps, as the panel words them."""
    return [gap.message for gap in health.plan_health(_loaded(plan))]


def plan_today(plan: PilotPlan) -> dt.date:
    return timezone.now().astimezone(ZoneInfo(plan.time_zone)).date()


def early_start_question(plan: PilotPlan) -> str:
    return (
        f"The pilot is planned to start on {day_text(plan.start_date)}. Starting it today "
        f"moves the start date to {day_text(plan_today(plan))}: confirm the early start."
    )


def _loaded(plan: PilotPlan) -> PilotPlan:
    return plan_detail_queryset().get(pk=plan.pk)


def transition_blockers(
    *,
    plan: PilotPlan,
    action: str,
    user: User,
    override_gaps: bool = False,
    confirm_early_start: bool = False,
    via_record: bool = False,
) -> list[str]:
    """Every reason ``user`` may not take ``action`` on ``plan`` now; empty when they may.
    ``override_gaps`` (submit) and ``confirm_early_start`` (start) are the person's answers to
    the two questions a step may ask; ``via_record``: see ``plan_transition``."""
    step = transition_for(action)
    reasons = []
    if action == "decide" and not via_record:
        reasons.append(decide_elsewhere(plan))
    if plan.status != step.source:
        reasons.append(
            f"“{step.label}” is for {Status(step.source).label} plans; "
            f"this one is {plan.get_status_display()}."
        )
    role = role_in_team(user=user, team_id=plan.team_id)
    if not (via_record and action in RECORD_STEPS) and not allows(role, step.perm):
        reasons.append(refusal(step.perm, role))
    if not reasons:
        reasons.extend(
            _guards(
                plan,
                action,
                override_gaps=override_gaps,
                confirm_early_start=confirm_early_start,
            )
        )
    return reasons


@transaction.atomic
def plan_transition(
    *,
    plan: PilotPlan,
    action: str,
    user: User,
    reason: str = "",
    decision: str = "",
    override_gaps: bool = False,
    confirm_early_start: bool = False,
    via_record: bool = False,
) -> PlanTransition:
    """Take one lifecycle step; raises Conflict listing what is missing when it may not.

    Submitting with plan-health gaps needs ``override_gaps`` and a ``reason`` (both recorded);
    starting before the start date needs ``confirm_early_start`` and moves the start date to
    today (recorded).

    ``decide`` happens only as part of recording the decision (``decisions.services.decision.
    decision_record``, which freezes the evidence with it): that service passes ``via_record``;
    anyone else is sent to the decision page. With ``via_record`` the ``evaluate`` and
    ``decide`` steps skip the role rule: the record's own rule (the plan's decision owner,
    ``Perm.DECISION_RECORD``) has been checked by the caller, and it may name a non-PO."""
    step = transition_for(action)
    if not (via_record and action in RECORD_STEPS):
        require(role_in_team(user=user, team_id=plan.team_id), step.perm)
    if action == "decide" and not via_record:
        raise ValidationError({"action": decide_elsewhere(plan)})
    if action == "submit" and override_gaps and not reason.strip():
        raise ValidationError(
            {"reason": "Say why the plan goes to review with open gaps: the reviewers read it."}
        )
    if action == "decide":
        if decision not in PilotPlan.Decision.values:
            raise ValidationError({"decision": "Choose go, iterate or roll back."})
        if not reason.strip():
            raise ValidationError({"reason": "Say why: the decision record keeps it."})
        if plan.decision_owner_id and plan.decision_owner_id != user.pk:
            raise PermissionDenied(f"{plan.decision_owner} decides this pilot at exit.")
    # Lock the row so guards and the status change see the same plan (no edit or sign-off
    # slips in between), then compare-and-set on the status.
    locked = PilotPlan.objects.select_for_update().get(pk=plan.pk)
    blockers = transition_blockers(
        plan=locked,
        action=action,
        user=user,
        override_gaps=override_gaps,
        confirm_early_start=confirm_early_start,
        via_record=via_record,
    )
    if blockers:
        raise Conflict(" ".join(blockers))
    overridden = health_gaps(locked) if action == "submit" and override_gaps else []
    if action == "start" and locked.start_date and locked.start_date > plan_today(locked):
        reason = _start_early(locked, user, reason)
        plan.start_date, plan.end_date = locked.start_date, locked.end_date
    changes: dict[str, object] = {"status": step.target}
    if action == "withdraw":
        changes["review_round"] = locked.review_round + 1
    if action == "decide":
        changes.update(decision=decision, decided_by=user, decided_at=timezone.now())
    updated = PilotPlan.objects.filter(pk=plan.pk, status=step.source).update(**changes)
    if not updated:  # pragma: no cover - the row lock above makes this unreachable
        raise Conflict("The plan changed state meanwhile; reload and try again.")
    for name, value in changes.items():
        setattr(plan, name, value)
    transition = PlanTransition.objects.create(
        plan=plan,
        from_status=step.source,
        to_status=step.target,
        actor=user,
        reason=reason,
        overridden_gaps=overridden,
    )
    if not via_record:  # the decision record tells people itself, in its outcome's words
        _announce(plan, step, user)
    plan_transitions_publish([(plan, transition)])
    return transition


def _start_early(plan: PilotPlan, user: User, reason: str) -> str:
    """Move the start date of ``plan`` (locked) to today and its end date with it, as an edit of
    the timeline; return the transition's reason saying so."""
    planned, today = plan.start_date, plan_today(plan)
    plan.start_date = today
    plan.end_date = plan_end_date(plan=plan)
    version = PlanSection.objects.get(plan=plan, key=Section.TIMELINE).version
    section_claim(plan=plan, key=Section.TIMELINE, expected_version=version, user=user)
    plan.save(update_fields=["start_date", "end_date"])
    moved = f"Started before the planned start date {day_text(planned)}: the start date moved "
    moved += f"to {day_text(today)}, the end date to {day_text(plan.end_date)}."
    return f"{reason.strip()} {moved}".strip()


# Who hears of which step: (notification kind, message, reviewers only?). The decision is
# announced by the decision record (decisions.services.decision), in its outcome's words.
_ANNOUNCEMENTS = {
    "submit": (Notification.Kind.REVIEW_REQUESTED, "{actor} asks you to review “{title}”.", True),
    "approve": (Notification.Kind.PLAN_APPROVED, "“{title}” is approved.", False),
    "start": (Notification.Kind.PILOT_STARTED, "The pilot “{title}” has started.", False),
}
_REVIEWER_ROLES = frozenset(role for spec in REVIEWS.values() for role in spec.roles)


def _announce(plan: PilotPlan, step: Transition, actor: User) -> None:
    if step.action not in _ANNOUNCEMENTS:
        return
    kind, message, reviewers_only = _ANNOUNCEMENTS[step.action]
    members = Membership.objects.filter(team_id=plan.team_id).select_related("user")
    if reviewers_only:
        members = members.filter(role__in=_REVIEWER_ROLES)
    notify(
        users=[m.user for m in members],
        kind=kind,
        actor=actor,
        url=reverse("pilots:plan_detail", args=[plan.pk]),
        message=message.format(
            actor=actor.display_name, title=plan.title, decision=plan.get_decision_display()
        ),
    )
