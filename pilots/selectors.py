"""Reads about pilot plans, always scoped to what the asking user may see."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any, cast

from django.contrib.postgres.expressions import ArraySubquery
from django.db import models
from django.db.models import (
    Case,
    Count,
    Exists,
    OuterRef,
    Prefetch,
    QuerySet,
    Value,
    When,
)
from django.utils import timezone

from accounts.models import TeamHoliday, User
from accounts.permissions import Perm
from accounts.ui import zone_of
from core.precompiled import Bound, Precompiled, run_together
from pilots import health, timeline
from pilots.access import plan_checked_for_user, plan_for_user, plans_visible_to
from pilots.extensions import plan_panel_flags
from pilots.models import (
    CohortSegment,
    Dashboard,
    EntryCriterion,
    ExitCriterion,
    OnCallShift,
    PilotPlan,
    PlanSection,
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


def _row_prefetch(model: type[models.Model]) -> Prefetch:
    """Every row of one list of the plan, with what its rows show of their neighbours."""
    return Prefetch(_accessor(model), queryset=_rows_of(model))


def _rows_of(model: type[models.Model]) -> QuerySet[Any]:
    """The rows of ``model`` with the neighbours its list shows (``ROW_LISTS``). Never
    ``select_related()`` without names: that follows every non-null foreign key, the plan and
    its team and people for each row."""
    queryset = model._default_manager.all()
    if related := ROW_LISTS[model]:
        queryset = queryset.select_related(*related)
    return queryset


def _accessor(model: type[models.Model]) -> str:
    accessor = cast(
        models.ForeignKey, model._meta.get_field("plan")
    ).remote_field.get_accessor_name()
    assert accessor  # every row model has a reverse accessor on the plan (related_name)
    return accessor


def _row_list(*, key: tuple[type[models.Model], int | None], plan_id: int) -> QuerySet[Any]:
    """One row list of plan ``plan_id``: its first ``rows`` rows (``key = (model, rows)``),
    each with the list's total (``ROWS_TOTAL``: ``COUNT(*) OVER ()``, counted before the
    LIMIT), or every row (``rows`` None) in the list's own order. One plain ``LIMIT`` query: a
    sliced ``Prefetch`` asks for the same rows with ``ROW_NUMBER()`` in a subquery, which Django
    takes several times longer to build than PostgreSQL to run."""
    model, rows = key
    queryset = _rows_of(model).filter(plan_id=plan_id)
    if rows is None:
        return queryset
    total = models.Window(Count("pk"))
    return queryset.annotate(**{ROWS_TOTAL: total}).order_by(*_row_order(model))[:rows]


# Compiled once per process (core.precompiled): building and compiling these queries cost more
# than running them.
_ROW_LISTS = Precompiled(_row_list)


def _load_first_rows(
    plan: PilotPlan,
    *,
    rows: int,
    expanded: Collection[type[models.Model]] = (),
    also: tuple[Bound, ...] = (),
) -> list[list[Any]]:
    """Of each row list of ``plan``, its first ``rows`` rows with the list's total (see
    ``_row_list``), every row of the lists in ``expanded``, filed where a prefetch files them
    (``plan.<list>.all()`` reads them without a query). The lists are read in one round trip
    (``run_together``), with the queries in ``also``, whose rows this returns."""
    lists = [
        _ROW_LISTS.bind(key=(model, None if model in expanded else rows), plan_id=plan.pk)
        for model in ROW_LISTS
    ]
    loaded = run_together(*lists, *also)
    for model, found in zip(ROW_LISTS, loaded, strict=False):
        _file_prefetched(plan, _accessor(model), found)
    return loaded[len(lists) :]


def _file_prefetched(owner: models.Model, accessor: str, rows: list[Any]) -> None:
    """File ``rows`` where ``prefetch_related`` files ``owner.<accessor>``'s rows: reading
    ``owner.<accessor>.all()`` runs no query, narrowing it (``.filter``) queries as usual."""
    manager = getattr(owner, accessor)
    for row in rows:
        setattr(row, manager.field.name, owner)  # each row knows its owner without a query
    # The filter is built only if someone narrows the list (as Django's related managers defer
    # theirs): building it cost more than reading the rows.
    queryset = manager.model._default_manager.all()
    queryset._defer_next_filter = True
    queryset = queryset.filter(**{manager.field.name: owner})
    queryset._result_cache = rows
    queryset._prefetch_done = True
    owner.__dict__.setdefault("_prefetched_objects_cache", {})[accessor] = queryset


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


def plan_first_rows_queryset() -> QuerySet[PilotPlan]:
    """A plan with its sections and what plan health reads, as flags and arrays of its own query
    (as ``plan_health_queryset``), without its rows: ``_load_first_rows`` adds the rows shown.
    A plan with hundreds of rows costs what one with ten does (the plan page, the plan API's
    document)."""
    return _plan_sections().annotate(**_health_annotations())


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
    plan = plan_for_user(user=user, plan_id=plan_id, queryset=plan_first_rows_queryset())
    _load_first_rows(plan, rows=rows)
    return plan


def _plan_page_plan(*, plan_id: int) -> QuerySet[PilotPlan]:
    """The plan page's plan query: sections, what plan health reads and the page's panel flags
    (``pilots.extensions``), without its prefetches (``plan_page_prefetch``)."""
    flags = plan_panel_flags()
    queryset = plan_first_rows_queryset().annotate(**flags).prefetch_related(None)
    return queryset.filter(pk=plan_id).select_related("team")[:1]


_PLAN_PAGE_PLAN = Precompiled(_plan_page_plan)


def plan_page(
    *,
    user: User,
    plan_id: int,
    expanded: Collection[type[models.Model]] = (),
    prefetch: bool = True,
) -> PilotPlan:
    """The plan page's plan: of each list the rows it shows and one more (whether the last shown
    row can move down depends on the next one), every row of the lists in ``expanded``; with the
    flags the page's panels read (``pilots.extensions``): one EXISTS each in the plan's query
    instead of a query per panel with nothing to show. ``prefetch=False``: the plan alone, its
    sections and rows left for :func:`plan_page_prefetch` (a page that may redirect elsewhere
    first loads nothing it would not show)."""
    found = _PLAN_PAGE_PLAN.run(plan_id=plan_id)
    plan = plan_checked_for_user(user=user, plan=found[0] if found else None, plan_id=plan_id)
    if not prefetch:
        return plan
    return plan_page_prefetch(plan, expanded=expanded)


def plan_page_prefetch(
    plan: PilotPlan, *, expanded: Collection[type[models.Model]] = ()
) -> PilotPlan:
    """The sections and shown rows of a plan loaded with ``plan_page(prefetch=False)``: the same
    queries the plan page's own load would have run (``_plan_sections``' prefetches)."""
    sections, holidays = _load_first_rows(
        plan,
        rows=ROWS_SHOWN + 1,
        expanded=expanded,
        also=(_SECTIONS.bind(plan_id=plan.pk), _HOLIDAYS.bind(team_id=plan.team_id)),
    )
    _file_prefetched(plan, "sections", sections)
    _file_prefetched(plan.team, "holidays", holidays)
    return plan


_SECTIONS = Precompiled(lambda *, plan_id: PlanSection.objects.filter(plan_id=plan_id))
_HOLIDAYS = Precompiled(
    lambda *, team_id: TeamHoliday.objects.filter(team_id=team_id).order_by("date")
)


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
