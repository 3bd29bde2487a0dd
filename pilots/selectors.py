"""Reads about pilot plans, always scoped to what the asking user may see."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import Exists, OuterRef, Prefetch, QuerySet, prefetch_related_objects
from django.utils import timezone

from accounts.models import TeamHoliday, User
from accounts.permissions import Perm
from accounts.ui import zone_of
from pilots import health, timeline
from pilots.access import plan_for_user, plans_visible_to
from pilots.extensions import plan_panel_flags
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


def _has(model: type[Any], **filters: Any) -> Exists:
    """Whether the outer query's plan has a row of ``model`` (matching ``filters``)."""
    return Exists(model.objects.filter(plan=OuterRef("pk"), **filters))


def plan_health_queryset() -> QuerySet[PilotPlan]:
    """Plans loaded with what ``pilots.health.plan_health`` reads and no more, in one query, for
    pages that show the health of many plans at once (the portfolio). Lists whose rules only
    ask whether a row exists come as ``has_<list>`` flags (EXISTS); the values the rules read
    row by row come as arrays (ARRAY subqueries): the metric names of exit criteria without a
    threshold, the on-call shifts' first and last days, the segments' dimensions and shares,
    the team's holidays. No prefetch: each was a query of its own and a model per row, most of
    the portfolio's time. Not for showing a plan's sections: use ``plan_detail_queryset``."""

    def array(model: type[Any], column: str, order: tuple[str, ...], **filters: Any) -> Any:
        rows = model.objects.filter(plan=OuterRef("pk"), **filters).order_by(*order)
        return ArraySubquery(rows.values(column))

    return PilotPlan.objects.select_related("team", "cohort", "environment").annotate(
        has_included_scope=_has(ScopeItem, kind=ScopeItem.Kind.INCLUDED),
        has_entry_criteria=_has(EntryCriterion),
        has_exit_criteria=_has(ExitCriterion),
        has_dashboards=_has(Dashboard),
        has_response_slas=_has(ResponseSla),
        has_risks=_has(Risk),
        has_rollback_triggers=_has(RollbackTrigger),
        has_rollback_steps=_has(RollbackStep),
        has_rollback_rehearsals=_has(RollbackRehearsal),
        unset_threshold_metrics=array(
            ExitCriterion, "metric__name", ("position", "pk"), threshold__isnull=True
        ),
        on_call_starts=array(OnCallShift, "starts_on", ("pk",)),
        on_call_ends=array(OnCallShift, "ends_on", ("pk",)),
        segment_dimensions=array(CohortSegment, "dimension", ("position", "pk")),
        segment_shares=array(CohortSegment, "intended_share", ("position", "pk")),
        holiday_dates=ArraySubquery(
            TeamHoliday.objects.filter(team=OuterRef("team_id")).order_by("date").values("date")
        ),
    )


def plan_detail(*, user: User, plan_id: int, perm: Perm = Perm.PLAN_VIEW) -> PilotPlan:
    return plan_for_user(user=user, plan_id=plan_id, perm=perm, queryset=plan_detail_queryset())


def plan_page(*, user: User, plan_id: int, prefetch: bool = True) -> PilotPlan:
    """``plan_detail`` with the flags the plan page's panels read (``pilots.extensions``): one
    EXISTS each in the plan's query instead of a query per panel with nothing to show.
    ``prefetch=False``: the plan alone, its sections left for :func:`plan_page_prefetch` (a page
    that may redirect elsewhere first loads no section it would not show)."""
    queryset = plan_detail_queryset().annotate(**plan_panel_flags())
    if not prefetch:
        queryset = queryset.prefetch_related(None)
    return plan_for_user(user=user, plan_id=plan_id, queryset=queryset)


def plan_page_prefetch(plan: PilotPlan) -> PilotPlan:
    """The sections of a plan loaded with ``plan_page(prefetch=False)``: the same queries the
    plan page's own load would have run."""
    prefetch_related_objects([plan], *plan_detail_queryset()._prefetch_related_lookups)
    return plan


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
    holidays = health.holiday_dates(plan)
    return timeline.business_days_between(max(today, plan.start_date), plan.end_date, holidays)


def team_plan_titles(team_id: int) -> dict[int, str]:
    """{id: title} of a team's plans, oldest first: what a team API key may be restricted to
    (registered with accounts.api_keys when the app starts)."""
    return dict(PilotPlan.objects.filter(team_id=team_id).order_by("pk").values_list("id", "title"))
