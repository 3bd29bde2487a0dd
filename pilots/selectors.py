"""Reads about pilot plans, always scoped to what the asking user may see."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any, cast

from django.contrib.postgres.expressions import ArraySubquery
from django.db import models
from django.db.models import Case, Count, Exists, F, OuterRef, Prefetch, QuerySet, Value, When
from django.db.models.functions import RowNumber
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

# A list on the plan page shows its first rows and a count; "Show all" loads the rest. Enough to
# read at a glance, few enough that a plan with hundreds of rows still renders in milliseconds.
ROWS_SHOWN = 10
# ``expanded`` of every list (the list's own page, a list re-rendered after a write).
ALL_LISTS = "*"
# On a row loaded by ``plan_page``: how many rows its list has, shown or not.
ROWS_TOTAL = "rows_in_list"

# The plan's row lists, each with what its rows show of their neighbours (loaded with them).
ROW_LISTS: dict[type[models.Model], tuple[str, ...]] = {
    ScopeItem: (),
    CohortSegment: (),
    EntryCriterion: ("confirmed_by",),
    ExitCriterion: ("metric", "denominator"),
    Dashboard: (),
    OnCallShift: ("person",),
    ResponseSla: (),
    RollbackTrigger: ("metric",),
    RollbackStep: ("owner",),
    RollbackRehearsal: (),
    Risk: ("owner",),
}


def row_groups(model: type[models.Model]) -> tuple[str, ...]:
    """The fields a list's order is kept within, read from its unique-position rule (scope
    items are ordered separately for included and excluded items)."""
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.UniqueConstraint) and "position" in constraint.fields:
            return tuple(f for f in constraint.fields if f not in ("plan", "position"))
    return ()


def _row_order(model: type[models.Model]) -> list[Any]:
    """The order a list shows its rows in, as SQL: by group (a choice field in the order of its
    choices, as ``pilots_rows.row_table`` sorts), then the model's own order, then the id."""
    order: list[Any] = []
    for name in row_groups(model):
        field = model._meta.get_field(name)
        if field.choices:
            whens = [When(**{name: value}, then=Value(i)) for i, (value, _l) in
                     enumerate(field.flatchoices)]  # fmt: skip
            order.append(Case(*whens, default=Value(len(whens))))
        else:
            order.append(name)
    return [*order, *model._meta.ordering, "pk"]


def _row_prefetch(model: type[models.Model], *, limit: int | None = None) -> Prefetch:
    """One list of the plan's rows; with ``limit``, the first ``limit`` rows only, each with
    its list's total (``ROWS_TOTAL``): one query for the list whatever its length."""
    plan_field = cast(models.ForeignKey, model._meta.get_field("plan"))
    accessor = plan_field.remote_field.get_accessor_name()
    rows = model._default_manager.select_related(*ROW_LISTS[model])
    if limit is not None:
        # A window filter rather than a slice: Django turns a sliced prefetch into the same
        # ROW_NUMBER() query, but then refuses to file its rows under ``plan.<list>.all``.
        order = _row_order(model)
        rows = (
            rows.annotate(
                **{ROWS_TOTAL: models.Window(Count("pk"), partition_by=[F("plan_id")])},
                row_number=models.Window(RowNumber(), partition_by=[F("plan_id")], order_by=order),
            )
            .filter(row_number__lte=limit)
            .order_by(*order)
        )
    return Prefetch(accessor, queryset=rows)


def plan_list_for_user(*, user: User) -> QuerySet[PilotPlan]:
    """Every plan of every team ``user`` belongs to, and every plan they were invited to as a
    stakeholder (the portfolio's base query)."""
    return plans_visible_to(user=user).select_related("team")


def plan_detail_queryset() -> QuerySet[PilotPlan]:
    """A plan with every section loaded in a constant number of queries (the plan page, the
    health panel, exports and the API all read through this)."""
    return _plan_sections().prefetch_related(*(_row_prefetch(model) for model in ROW_LISTS))


def _plan_sections() -> QuerySet[PilotPlan]:
    """A plan with its one-to-one sections, section versions and team holidays (no rows)."""
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
        Prefetch("team__holidays", queryset=TeamHoliday.objects.order_by("date")),
    )


def plan_first_rows_queryset(
    *, rows: int, expanded: Collection[type[models.Model]] = ()
) -> QuerySet[PilotPlan]:
    """A plan with its sections and, of each row list, its first ``rows`` rows with the list's
    total (``ROWS_TOTAL``) — every row only of the lists in ``expanded``. Plan health reads its
    flags and arrays (as ``plan_health_queryset``), not the rows: a plan with hundreds of rows
    costs what one with ten does (the plan page, the plan API's document)."""
    lists = (_row_prefetch(model, limit=None if model in expanded else rows) for model in ROW_LISTS)
    return _plan_sections().prefetch_related(*lists).annotate(**_health_annotations())


def plan_page_queryset(*, expanded: Collection[type[models.Model]] = ()) -> QuerySet[PilotPlan]:
    """The plan page's plan: of each list the rows it shows and one more (whether the last shown
    row can move down depends on the next one)."""
    return plan_first_rows_queryset(rows=ROWS_SHOWN + 1, expanded=expanded)


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

    return PilotPlan.objects.select_related("team", "cohort", "environment").annotate(
        **_health_annotations()
    )


def _health_annotations() -> dict[str, Any]:
    """What ``pilots.health`` reads, as annotations of a plan query (no rows loaded)."""

    def array(model: type[Any], column: str, order: tuple[str, ...], **filters: Any) -> Any:
        rows = model.objects.filter(plan=OuterRef("pk"), **filters).order_by(*order)
        return ArraySubquery(rows.values(column))

    return dict(
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


def plan_document(*, user: User, plan_id: int, rows: int) -> PilotPlan:
    """The plan for its API document: ``plan_detail`` with the first ``rows`` rows of each list."""
    queryset = plan_first_rows_queryset(rows=rows)
    return plan_for_user(user=user, plan_id=plan_id, queryset=queryset)


def plan_page(
    *, user: User, plan_id: int, expanded: Collection[type[models.Model]] = ()
) -> PilotPlan:
    """``plan_page_queryset`` with the flags the plan page's panels read (``pilots.extensions``):
    one EXISTS each in the plan's query instead of a query per panel with nothing to show."""
    queryset = plan_page_queryset(expanded=expanded).annotate(**plan_panel_flags())
    return plan_for_user(user=user, plan_id=plan_id, queryset=queryset)


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
