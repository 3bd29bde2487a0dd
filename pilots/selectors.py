"""Reads about pilot plans, always scoped to what the asking user may see."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Exists, OuterRef, Prefetch, QuerySet
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


def _has(model: type[Any], **filters: Any) -> Exists:
    """Whether the outer query's plan has a row of ``model`` (matching ``filters``)."""
    return Exists(model.objects.filter(plan=OuterRef("pk"), **filters))


def plan_health_queryset() -> QuerySet[PilotPlan]:
    """Plans loaded with what ``pilots.health.plan_health`` reads and no more, for pages that
    show the health of many plans at once (the portfolio). Lists whose rules only ask whether
    a row exists come as ``has_<list>`` flags (EXISTS in the plans' query: no query of their
    own); the lists the rules read row by row (exit criteria without a threshold, on-call
    shifts, the segment mix, the team's holidays) come as plain lists ``<list>_loaded``, with
    the fields the rules read. Plain lists (``to_attr``), not prefetched managers: Django
    builds a queryset per plan and list for those, which was most of the portfolio's time.
    Not for showing a plan's sections: use ``plan_detail_queryset`` for that."""
    return (
        PilotPlan.objects.select_related("team", "cohort", "environment")
        .annotate(
            has_included_scope=_has(ScopeItem, kind=ScopeItem.Kind.INCLUDED),
            has_entry_criteria=_has(EntryCriterion),
            has_exit_criteria=_has(ExitCriterion),
            has_dashboards=_has(Dashboard),
            has_response_slas=_has(ResponseSla),
            has_risks=_has(Risk),
            has_rollback_triggers=_has(RollbackTrigger),
            has_rollback_steps=_has(RollbackStep),
            has_rollback_rehearsals=_has(RollbackRehearsal),
        )
        .prefetch_related(
            Prefetch(
                "exit_criteria",
                queryset=ExitCriterion.objects.filter(threshold__isnull=True)
                .select_related("metric")
                .only("pk", "plan", "threshold", "metric__name"),
                to_attr="exit_criteria_loaded",
            ),
            Prefetch(
                "on_call",
                queryset=OnCallShift.objects.only("pk", "plan", "starts_on", "ends_on"),
                to_attr="on_call_loaded",
            ),
            Prefetch(
                "segments",
                queryset=CohortSegment.objects.only("pk", "plan", "dimension", "intended_share"),
                to_attr="segments_loaded",
            ),
            Prefetch(
                "team__holidays",
                queryset=TeamHoliday.objects.only("pk", "team", "date"),
                to_attr="holidays_loaded",
            ),
        )
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
    loaded = getattr(plan.team, "holidays_loaded", None)  # plan_health_queryset's plain list
    holidays = [h.date for h in (plan.team.holidays.all() if loaded is None else loaded)]
    return timeline.business_days_between(max(today, plan.start_date), plan.end_date, holidays)


def team_plan_titles(team_id: int) -> dict[int, str]:
    """{id: title} of a team's plans, oldest first: what a team API key may be restricted to
    (registered with accounts.api_keys when the app starts)."""
    return dict(PilotPlan.objects.filter(team_id=team_id).order_by("pk").values_list("id", "title"))
