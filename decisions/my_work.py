"""My work: what waits for one person across their teams, each item one click from its place.

A fixed number of queries whatever the number of teams, plans or items (one per kind, plus the
person's memberships). What counts as waiting follows the permission table, so the list shows a
person only what they may act on:

- a review to sign: a plan in review whose review of a kind the person's role signs has no valid
  sign-off yet;
- entry criteria to confirm: pending criteria of a plan in review or approved, for the roles that
  may start the pilot (they cannot start it before the criteria are met or waived);
- an alert to acknowledge: a fired rollback trigger nobody acknowledged, for the roles that act on
  alerts;
- rollback steps to execute: an open rollback run, for its executor and the roles that work it;
- a decision due: an evaluating plan whose decision owner is the person;
- a post-pilot review due: an open review, for the roles that write it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Q
from django.urls import reverse

from accounts.models import Membership, User
from accounts.permissions import Perm, roles_for
from decisions.models import PostPilotReview, RollbackRun, RollbackStepRun
from metrics.models import TriggerEpisode
from pilots.models import EntryCriterion, PilotPlan, SignOff
from pilots.review import REVIEWS


@dataclass(frozen=True)
class Task:
    what: str  # "Sign the readiness review"
    plan: PilotPlan
    detail: str
    url: str
    since: dt.datetime | None = None  # when it began to wait
    due: dt.date | None = None


@dataclass(frozen=True)
class Group:
    key: str
    title: str
    tasks: list[Task]


def _teams_with(roles_by_team: dict[int, str], perm: Perm) -> list[int]:
    allowed = roles_for(perm)
    return [team for team, role in roles_by_team.items() if role in allowed]


def my_work(*, user: User) -> list[Group]:
    """Every kind of waiting work, in the order a person should look at them (alerts first)."""
    roles_by_team = dict(Membership.objects.filter(user=user).values_list("team_id", "role"))
    return [
        Group("alerts", "Alerts to acknowledge", _alerts(roles_by_team)),
        Group("rollbacks", "Rollback steps to execute", _rollbacks(user, roles_by_team)),
        Group("decisions", "Decisions due", _decisions(user, roles_by_team)),
        Group("reviews", "Reviews to sign", _reviews(roles_by_team)),
        Group("entry", "Entry criteria to confirm", _entry_criteria(roles_by_team)),
        Group("post_pilot", "Post-pilot reviews due", _post_pilot(roles_by_team)),
    ]


def my_work_count(groups: list[Group]) -> int:
    return sum(len(group.tasks) for group in groups)


def _alerts(roles_by_team: dict[int, str]) -> list[Task]:
    teams = _teams_with(roles_by_team, Perm.ALERTS_ACT)
    episodes = (
        TriggerEpisode.objects.filter(
            plan__team_id__in=teams,
            acknowledged_at__isnull=True,
            resolved_at__isnull=True,
            cleared_at__isnull=True,
        )
        .select_related("plan__team")
        .order_by("fired_at", "pk")
    )
    return [
        Task(
            what="Acknowledge a fired rollback trigger",
            plan=e.plan,
            detail=e.description,
            url=reverse("metrics:alerts", args=[e.plan_id]),
            since=e.fired_at,
        )
        for e in episodes
    ]


def _rollbacks(user: User, roles_by_team: dict[int, str]) -> list[Task]:
    teams = _teams_with(roles_by_team, Perm.ROLLBACK_WORK)
    runs = (
        RollbackRun.objects.filter(ended_at__isnull=True)
        .filter(Q(plan__team_id__in=teams) | Q(plan__rollback_executor=user))
        .annotate(
            pending=Count("steps", filter=Q(steps__status=RollbackStepRun.Status.PENDING)),
            total=Count("steps"),
        )
        .select_related("plan__team")
        .order_by("started_at", "pk")
    )
    return [
        Task(
            what="Execute the rollback" + (" (emergency)" if run.emergency else ""),
            plan=run.plan,
            detail=f"{run.pending} of {run.total} steps not done yet",
            url=reverse("decisions:rollback", args=[run.plan_id]),
            since=run.started_at,
        )
        for run in runs
    ]


def _decisions(user: User, roles_by_team: dict[int, str]) -> list[Task]:
    plans = (
        PilotPlan.objects.filter(
            team_id__in=_teams_with(roles_by_team, Perm.DECISION_RECORD),
            status=PilotPlan.Status.EVALUATING,
        )
        .filter(Q(decision_owner=user) | Q(decision_owner__isnull=True, owner=user))
        .select_related("team")
        .order_by("end_date", "pk")
    )
    return [
        Task(
            what="Record the go / iterate / roll-back decision",
            plan=plan,
            detail="The time-box has ended; the evidence is on the decision page.",
            url=reverse("decisions:decision", args=[plan.pk]),
            due=plan.end_date,
        )
        for plan in plans
    ]


def _reviews(roles_by_team: dict[int, str]) -> list[Task]:
    kinds_by_team = {
        team: [kind for kind, spec in REVIEWS.items() if role in spec.roles]
        for team, role in roles_by_team.items()
    }
    teams = [team for team, kinds in kinds_by_team.items() if kinds]
    plans = list(
        PilotPlan.objects.filter(team_id__in=teams, status=PilotPlan.Status.IN_REVIEW)
        .select_related("team")
        .order_by("updated_at", "pk")
    )
    signed = set(
        SignOff.objects.filter(plan__in=plans, voided_at__isnull=True).values_list(
            "plan_id", "kind"
        )
    )
    return [
        Task(
            what=f"Sign the {REVIEWS[kind].short_label} review",
            plan=plan,
            detail=f"{REVIEWS[kind].kind.label}: read the covered sections, answer the checklist, "
            "sign off.",
            url=reverse("pilots:plan_review", args=[plan.pk]),
            since=plan.updated_at,
        )
        for plan in plans
        for kind in kinds_by_team[plan.team_id]
        if (plan.pk, kind) not in signed
    ]


def _entry_criteria(roles_by_team: dict[int, str]) -> list[Task]:
    plans = (
        PilotPlan.objects.filter(
            team_id__in=_teams_with(roles_by_team, Perm.STEP_START),
            status__in=[PilotPlan.Status.IN_REVIEW, PilotPlan.Status.APPROVED],
        )
        .annotate(
            pending=Count(
                "entry_criteria",
                filter=Q(entry_criteria__status=EntryCriterion.Status.PENDING),
            )
        )
        .filter(pending__gt=0)
        .select_related("team")
        .order_by("start_date", "pk")
    )
    return [
        Task(
            what="Confirm the entry criteria",
            plan=plan,
            detail=f"{plan.pending} pending: mark each met (with evidence) or waived (with a "
            "reason) before the pilot can start.",
            url=reverse("pilots:plan_detail", args=[plan.pk]) + "#section-entry_criteria",
            due=plan.start_date,
        )
        for plan in plans
    ]


def _post_pilot(roles_by_team: dict[int, str]) -> list[Task]:
    reviews = (
        PostPilotReview.objects.filter(
            plan__team_id__in=_teams_with(roles_by_team, Perm.POSTPILOT_EDIT),
            completed_at__isnull=True,
        )
        .select_related("plan__team")
        .order_by("due_on", "pk")
    )
    return [
        Task(
            what="Complete the post-pilot review",
            plan=review.plan,
            detail="Findings, what went well and what to improve; the pilot closes after it.",
            url=reverse("decisions:post_pilot_review", args=[review.plan_id]),
            due=review.due_on,
        )
        for review in reviews
    ]
