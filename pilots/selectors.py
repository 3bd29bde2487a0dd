"""Reads about pilot plans, always scoped to what the asking user may see."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import OuterRef, Prefetch, QuerySet, Subquery
from django.utils import timezone

from accounts.models import TeamHoliday, User
from accounts.permissions import Perm
from accounts.ui import zone_of
from pilots import timeline
from pilots.access import plan_for_user, plans_visible_to
from pilots.models import (
    CohortSegment,
    Dashboard,
    EntryCriterion,
    ExitCriterion,
    OnCallShift,
    PilotPlan,
    ResponseSla,
    Risk,
    RollbackRehearsal,
    RollbackStep,
    RollbackTrigger,
    ScopeItem,
)


def plan_list_for_user(*, user: User) -> QuerySet[PilotPlan]:
    """Every plan of every team ``user`` belongs to, and every plan they were invited to as a
    stakeholder (the portfolio's base query)."""
    return plans_visible_to(user=user).select_related("team")


def plan_detail_queryset() -> QuerySet[PilotPlan]:
    """A plan with every section loaded in a constant number of queries (the plan page, the
    health panel, exports and the API all read through this)."""
    return PilotPlan.objects.select_related(
        "team",
        "owner",
        "scrum_master",
        "decision_owner",
        "rollback_executor",
        "cohort",
        "environment__compliance_validated_by",
        "monitoring",
        "rollback_plan__approver",
    ).prefetch_related(
        "sections",
        "scope_items",
        "segments",
        "entry_criteria__confirmed_by",
        Prefetch(
            "exit_criteria",
            queryset=ExitCriterion.objects.select_related("metric", "denominator"),
        ),
        "dashboards",
        Prefetch("on_call", queryset=OnCallShift.objects.select_related("person")),
        "response_slas",
        Prefetch("rollback_triggers", queryset=RollbackTrigger.objects.select_related("metric")),
        Prefetch("rollback_steps", queryset=RollbackStep.objects.select_related("owner")),
        "rollback_rehearsals",
        Prefetch("risks", queryset=Risk.objects.select_related("owner")),
        Prefetch("team__holidays", queryset=TeamHoliday.objects.order_by("date")),
    )


def _any(model: type[Any], *fields: str, **filters: Any) -> QuerySet[Any]:
    """One row per plan that has any (its first): enough for "is there one", without loading
    every row of every plan. ``fields``: what the health rule reads of that row besides the
    plan (a deferred field would cost a query per plan)."""
    first = model.objects.filter(plan=OuterRef("plan"), **filters).order_by("pk").values("pk")
    return model.objects.filter(pk=Subquery(first[:1])).only("pk", "plan", *fields)


def plan_health_queryset() -> QuerySet[PilotPlan]:
    """Plans loaded with what ``pilots.health.plan_health`` reads and no more, for pages that
    show the health of many plans at once (the portfolio). Lists whose rules only ask whether
    a row exists hold at most one row here; only the rules that read every row (exit criteria
    thresholds, on-call coverage, the segment mix) get every row, with the fields they read.
    Not for showing a plan's sections: use ``plan_detail_queryset`` for that."""
    return PilotPlan.objects.select_related("team", "cohort", "environment").prefetch_related(
        Prefetch("scope_items", queryset=_any(ScopeItem, "kind", kind=ScopeItem.Kind.INCLUDED)),
        Prefetch("entry_criteria", queryset=_any(EntryCriterion)),
        Prefetch(
            "exit_criteria",
            queryset=ExitCriterion.objects.select_related("metric").only(
                "pk", "plan", "threshold", "metric__name"
            ),
        ),
        Prefetch("dashboards", queryset=_any(Dashboard)),
        Prefetch("response_slas", queryset=_any(ResponseSla)),
        Prefetch("risks", queryset=_any(Risk)),
        Prefetch("rollback_triggers", queryset=_any(RollbackTrigger)),
        Prefetch("rollback_steps", queryset=_any(RollbackStep)),
        Prefetch("rollback_rehearsals", queryset=_any(RollbackRehearsal)),
        Prefetch(
            "on_call", queryset=OnCallShift.objects.only("pk", "plan", "starts_on", "ends_on")
        ),
        Prefetch(
            "segments",
            queryset=CohortSegment.objects.only("pk", "plan", "dimension", "intended_share"),
        ),
        Prefetch("team__holidays", queryset=TeamHoliday.objects.only("pk", "team", "date")),
    )


def plan_detail(*, user: User, plan_id: int, perm: Perm = Perm.PLAN_VIEW) -> PilotPlan:
    return plan_for_user(user=user, plan_id=plan_id, perm=perm, queryset=plan_detail_queryset())


def section_versions_loaded(plan: PilotPlan) -> dict[str, int]:
    """``{section key: version}`` from a plan loaded with ``plan_detail_queryset`` (no query)."""
    return {section.key: section.version for section in plan.sections.all()}


def plan_days_left(plan: PilotPlan, *, today: dt.date | None = None) -> int | None:
    """Business days from today (in the plan's time zone) to the end of the time-box, both
    counted; ``None`` unless the plan is running with dates. Reads prefetched holidays."""
    if plan.status != PilotPlan.Status.RUNNING or plan.start_date is None or not plan.end_date:
        return None
    if today is None:
        # zone_of: a stored zone that is unknown reads as UTC, so one plan cannot break a list.
        today = timezone.localtime(timezone.now(), zone_of(plan)).date()
    holidays = [h.date for h in plan.team.holidays.all()]
    return timeline.business_days_between(max(today, plan.start_date), plan.end_date, holidays)
