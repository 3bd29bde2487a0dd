"""Reads about pilot plans, always scoped to what the asking user may see."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import Count, F, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import TeamHoliday, User
from pilots import timeline
from pilots.access import Action, plan_for_user, plans_visible_to
from pilots.health import plan_health
from pilots.models import (
    ExitCriterion,
    OnCallShift,
    PilotPlan,
    Risk,
    RollbackStep,
    RollbackTrigger,
    SignOff,
)
from pilots.review import REVIEWS

if TYPE_CHECKING:
    from metrics.models import TriggerEpisode


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


def plan_detail(*, user: User, plan_id: int, action: Action = Action.VIEW) -> PilotPlan:
    return plan_for_user(user=user, plan_id=plan_id, action=action, queryset=plan_detail_queryset())


def unresolved_episodes(*, plan_id: int) -> list[TriggerEpisode]:
    """The plan's rollback trigger episodes nobody resolved yet, newest first: the red banner
    at the top of the plan page (one query)."""
    from metrics.alerts import episodes_unresolved

    return episodes_unresolved(plan_id=plan_id)


def section_versions_loaded(plan: PilotPlan) -> dict[str, int]:
    """``{section key: version}`` from a plan loaded with ``plan_detail_queryset`` (no query)."""
    return {section.key: section.version for section in plan.sections.all()}


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

    @property
    def criteria_status(self) -> str:
        if self.criteria_met is None:
            return "—"
        return f"{self.criteria_met}/{self.criteria_checked} met"

    @property
    def sign_off_status(self) -> str:
        return f"{self.signed}/{self.reviews} signed"


def plan_days_left(plan: PilotPlan, *, today: dt.date | None = None) -> int | None:
    """Business days from today (in the plan's time zone) to the end of the time-box, both
    counted; ``None`` unless the plan is running with dates. Reads prefetched holidays."""
    if plan.status != PilotPlan.Status.RUNNING or plan.start_date is None or not plan.end_date:
        return None
    if today is None:
        today = timezone.localtime(timezone.now(), zoneinfo.ZoneInfo(plan.time_zone)).date()
    holidays = [h.date for h in plan.team.holidays.all()]
    return timeline.business_days_between(max(today, plan.start_date), plan.end_date, holidays)


def portfolio_rows(*, plan_ids: list[int]) -> list[PortfolioRow]:
    """The portfolio lines of these plans, in this order, in a constant number of queries."""
    active_sign_offs = Prefetch(
        "sign_offs",
        queryset=SignOff.objects.filter(voided_at__isnull=True).only("pk", "plan", "kind"),
    )
    from metrics.models import TriggerEpisode

    # Unresolved trigger episodes per plan (the red marker): a subquery, no extra query.
    unresolved = (
        TriggerEpisode.objects.filter(plan=OuterRef("pk"), resolved_at__isnull=True)
        .order_by()
        .values("plan")
        .annotate(n=Count("pk"))
        .values("n")
    )
    from metrics.models import CheckRun

    # The latest done check run's verdict counts (criteria met): subqueries, no extra query.
    latest_run = CheckRun.objects.filter(plan=OuterRef("pk"), status=CheckRun.Status.DONE).order_by(
        "-due_at"
    )
    loaded = {
        plan.pk: plan
        for plan in plan_detail_queryset()
        .filter(pk__in=plan_ids)
        .annotate(
            unresolved_episodes=Coalesce(Subquery(unresolved), 0),
            latest_met=Subquery(latest_run.values("met")[:1]),
            latest_checked=Subquery(
                latest_run.annotate(
                    checked=F("met") + F("not_met") + F("not_enough_evidence")
                ).values("checked")[:1]
            ),
        )
        .prefetch_related(active_sign_offs)
    }
    rows = []
    for pk in plan_ids:
        if (plan := loaded.get(pk)) is None:
            continue
        signed = {s.kind for s in plan.sign_offs.all()} & set(REVIEWS)
        rows.append(
            PortfolioRow(
                plan=plan,
                days_left=plan_days_left(plan),
                gap_count=len(plan_health(plan)),
                signed=len(signed),
                reviews=len(REVIEWS),
                unresolved_episodes=plan.unresolved_episodes,  # type: ignore[attr-defined]
                criteria_met=plan.latest_met,  # type: ignore[attr-defined]
                criteria_checked=plan.latest_checked or 0,  # type: ignore[attr-defined]
            )
        )
    return rows
