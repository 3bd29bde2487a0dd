"""Reads that cross plans, metrics and the backlog."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Case, Count, F, OuterRef, QuerySet, Subquery, When
from django.db.models.functions import Coalesce

from backlog.models import BacklogItem
from backlog.participants.selectors import cohort_skewed_exists
from core.precompiled import AnyOf, Precompiled
from decisions.models import DecisionComment, DecisionRecord, IterateItem
from metrics.models import CheckRun, PlanJobFailure, SignalEpisode, TriggerEpisode
from pilots.health import plan_health
from pilots.listing import plan_overdue
from pilots.models import PilotPlan, SignOff
from pilots.review import REVIEWS
from pilots.selectors import plan_days_left, plan_health_queryset


@dataclass(frozen=True)
class PortfolioRow:
    plan: PilotPlan
    days_left: int | None  # None: not running, or no dates
    gap_count: int
    signed: int
    reviews: int
    unresolved_episodes: int = 0  # rollback trigger episodes nobody resolved yet
    criteria_met: int | None = None  # in the latest done check run; None: never checked
    criteria_checked: int = 0
    failing_job: str | None = None  # the background job failing longest for this plan, if any
    failing_since: dt.datetime | None = None
    blind_triggers: int = 0  # rollback triggers without fresh data (no data, stale) now
    cohort_skewed: bool = False  # the representativeness check flags a segment dimension
    overdue: bool = False  # pilots.listing.plan_overdue

    @property
    def failing_job_label(self) -> str:
        return PlanJobFailure.Job(self.failing_job).label if self.failing_job else ""

    @property
    def criteria_status(self) -> str:
        if self.criteria_met is None:
            return "—"
        return f"{self.criteria_met}/{self.criteria_checked} met"

    @property
    def sign_off_status(self) -> str:
        return f"{self.signed}/{self.reviews} signed"


def _count_per_plan(rows: QuerySet[Any]) -> Subquery:
    """How many of ``rows`` belong to the outer query's plan, as a subquery (no extra query)."""
    return Subquery(
        rows.filter(plan=OuterRef("pk"))
        .order_by()
        .values("plan")
        .annotate(n=Count("pk"))
        .values("n")
    )


def _portfolio_plans(*, plan_ids: list[int]) -> QuerySet[PilotPlan]:
    """The portfolio's plans with what each line shows, as annotations of one query."""
    # The reviews signed off and not voided (a kind counts once): a subquery, no extra query.
    signed = Subquery(
        SignOff.objects.filter(plan=OuterRef("pk"), voided_at__isnull=True, kind__in=list(REVIEWS))
        .order_by()
        .values("plan")
        .annotate(n=Count("kind", distinct=True))
        .values("n")
    )
    # Unresolved trigger episodes per plan (the red marker): a subquery, no extra query.
    unresolved = _count_per_plan(TriggerEpisode.objects.filter(resolved_at__isnull=True))
    # Rollback triggers without fresh data (open no-data / stale episodes): a subquery too.
    blind = _count_per_plan(SignalEpisode.objects.filter(ended_at__isnull=True))
    # The latest done check run's verdict counts (criteria met): subqueries, no extra query.
    latest_run = CheckRun.objects.filter(plan=OuterRef("pk"), status=CheckRun.Status.DONE).order_by(
        "-due_at"
    )
    # The background job failing longest for the plan (metrics.failures): subqueries too.
    failing = PlanJobFailure.objects.filter(plan=OuterRef("pk")).order_by("first_at", "job")
    return (
        plan_health_queryset()
        .select_related("owner")
        .filter(AnyOf(F("pk"), plan_ids))
        .annotate(
            unresolved_episodes=Coalesce(unresolved, 0),
            blind_triggers=Coalesce(blind, 0),
            latest_met=Subquery(latest_run.values("met")[:1]),
            latest_checked=Subquery(
                latest_run.annotate(
                    checked=F("met") + F("not_met") + F("not_enough_evidence")
                ).values("checked")[:1]
            ),
            failing_job=Subquery(failing.values("job")[:1]),
            failing_since=Subquery(failing.values("first_at")[:1]),
            # The stored representativeness check (backlog): an EXISTS, no extra query.
            cohort_skewed=cohort_skewed_exists(),
            signed_reviews=Coalesce(signed, 0),
        )
    )


# Compiled once per process (core.precompiled): Django took longer to build this query with its
# dozens of subqueries than PostgreSQL to run it.
_PORTFOLIO_PLANS = Precompiled(_portfolio_plans)


def portfolio_rows(*, plan_ids: list[int]) -> list[PortfolioRow]:
    """The portfolio lines of these plans, in this order, in a constant number of queries."""
    if not plan_ids:
        return []
    loaded = {plan.pk: plan for plan in _PORTFOLIO_PLANS.run(plan_ids=list(plan_ids))}
    rows = []
    for pk in plan_ids:
        if (plan := loaded.get(pk)) is None:
            continue
        rows.append(
            PortfolioRow(
                plan=plan,
                days_left=plan_days_left(plan),
                gap_count=len(plan_health(plan)),
                signed=plan.signed_reviews,  # type: ignore[attr-defined]
                reviews=len(REVIEWS),
                unresolved_episodes=plan.unresolved_episodes,  # type: ignore[attr-defined]
                criteria_met=plan.latest_met,  # type: ignore[attr-defined]
                criteria_checked=plan.latest_checked or 0,  # type: ignore[attr-defined]
                failing_job=plan.failing_job,  # type: ignore[attr-defined]
                failing_since=plan.failing_since,  # type: ignore[attr-defined]
                blind_triggers=plan.blind_triggers,  # type: ignore[attr-defined]
                cohort_skewed=plan.cohort_skewed,  # type: ignore[attr-defined]
                overdue=plan_overdue(plan),
            )
        )
    return rows


# --- the decision record -------------------------------------------------------------------------


def decision_records_for_plan(plan_id: int) -> list[DecisionRecord]:
    """The plan's decision records, newest first: the current decision, then each one it
    corrected. ``supersedes``, ``superseded_by`` and ``recorded_by`` come loaded: one query."""
    return list(decision_records_queryset(plan_id))


def decision_records_queryset(plan_id: int) -> QuerySet[DecisionRecord]:
    """``decision_records_for_plan`` as a queryset, for the API's pages."""
    return (
        DecisionRecord.objects.filter(plan_id=plan_id)
        .select_related("recorded_by", "supersedes", "superseded_by")
        .order_by("-recorded_at", "-pk")
    )


def decision_head(*, plan_id: int) -> DecisionRecord | None:
    """The plan's current decision: the latest record that nothing supersedes."""
    return (
        DecisionRecord.objects.filter(plan_id=plan_id, superseded_by__isnull=True)
        .select_related("recorded_by")
        .order_by("-recorded_at", "-pk")
        .first()
    )


def decision_record_get(*, plan_id: int, record_id: int) -> DecisionRecord | None:
    return decision_records_queryset(plan_id).filter(pk=record_id).first()


def decision_comments_for_plan(plan_id: int) -> QuerySet[DecisionComment]:
    """The comments on the plan's decision page, oldest first, with their authors."""
    return (
        DecisionComment.objects.filter(plan_id=plan_id)
        .select_related("author")
        .order_by("created_at", "pk")
    )


def decision_iteration(record: DecisionRecord) -> PilotPlan | None:
    """The iteration an Iterate record drafted (a clone of its plan made with it), if any."""
    if record.outcome != DecisionRecord.Outcome.ITERATE:
        return None
    return (
        PilotPlan.objects.filter(cloned_from_id=record.plan_id, created_at__gte=record.recorded_at)
        .order_by("created_at", "pk")
        .first()
    )


def iterate_candidates(plan: PilotPlan, *, limit: int = 50) -> list[BacklogItem]:
    """The backlog items an Iterate decision may list, in the order the form offers them: the
    open items raised by this plan first, then the rest of the team's open backlog in priority
    order (the first ``limit``; one query)."""
    return list(
        BacklogItem.objects.filter(team_id=plan.team_id)
        .exclude(status__in=[BacklogItem.Status.DONE, BacklogItem.Status.WONT_DO])
        .annotate(other_plan=Case(When(plan_id=plan.pk, then=0), default=1))
        .order_by("other_plan", "position")
        .only("id", "reference", "title", "status", "plan_id", "position")[:limit]
    )


def iterate_items(record_ids: list[int]) -> dict[int, list[IterateItem]]:
    """The items each record lists for the next iteration, in order (one query), with each
    item's current status where it still exists."""
    lists: dict[int, list[IterateItem]] = {pk: [] for pk in record_ids}
    for line in IterateItem.objects.filter(record_id__in=record_ids).select_related("item"):
        lists[line.record_id].append(line)
    return lists
