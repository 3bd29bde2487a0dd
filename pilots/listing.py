"""The filters, sort and overdue rule shared by the two lists of plans: the plan list
(``pilots.views.plans.plan_list``) and the portfolio (``decisions.views.portfolio``).

Everything comes from the query string (GET forms, no JavaScript needed). A value that is not
one of the offered choices is ignored, never an error: a stale bookmark still opens the list.
Filters and sort only narrow and order the already scoped queryset (``plans_visible_to``), so
they can never reveal a plan the person may not see, and they add no query per row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import Case, F, OuterRef, QuerySet, Value, When
from django.db.models.functions import Coalesce, JSONObject, Lower, NullIf
from django.http import QueryDict
from django.utils import timezone

from accounts.models import Membership, Team, TeamHoliday
from accounts.ui import zone_of
from pilots import health, timeline
from pilots.models import PilotPlan

# An evaluating plan is overdue when no decision is recorded by the end of this many business
# days after the last day of its time-box (docs/user-guide.md, "Overdue").
DECISION_DUE_BUSINESS_DAYS = 5
SEARCH_MAX_LENGTH = 200

_STATE_ORDER = Case(
    *(When(status=value, then=Value(i)) for i, value in enumerate(PilotPlan.Status.values)),
    default=Value(len(PilotPlan.Status.values)),
)

# The one whitelist of sort orders: key -> (label, ORDER BY). Dates latest first, plans
# without dates last; ``pk`` breaks ties so pages never repeat or skip a plan.
SORTS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "changed": ("Recently changed", (F("updated_at").desc(), F("pk").desc())),
    "start": ("Start date", (F("start_date").desc(nulls_last=True), F("pk").desc())),
    "end": ("End date", (F("end_date").desc(nulls_last=True), F("pk").desc())),
    "title": ("Title", (Lower("title"), F("pk"))),
    "state": ("State", (_STATE_ORDER, F("updated_at").desc(), F("pk").desc())),
}
DEFAULT_SORT = "changed"


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def teams_with_members(teams: QuerySet[Team]) -> QuerySet[Team]:
    """``teams`` with each team's members as ``member_list`` ([{id, name}]), in the teams' own
    query (an ARRAY subquery): the owner filter's choices without a query of their own."""
    members = Membership.objects.filter(team=OuterRef("pk")).order_by("user_id")
    name = Coalesce(NullIf("user__full_name", Value("")), "user__email")
    return teams.annotate(
        member_list=ArraySubquery(members.values(json=JSONObject(id="user_id", name=name)))
    )


def owner_choices(teams: list[Team]) -> list[tuple[int, str]]:
    """The members of ``teams`` (loaded with ``teams_with_members``), once each, by name."""
    people = {m["id"]: m["name"] for team in teams for m in team.member_list}  # type: ignore[attr-defined]
    return sorted(people.items(), key=lambda item: (item[1].casefold(), item[0]))


@dataclass(frozen=True)
class PlanListFilters:
    """What a list of plans is narrowed to and ordered by, read from the query string."""

    q: str = ""
    team: int | None = None
    state: str = ""
    owner: int | None = None
    sort: str = DEFAULT_SORT

    @classmethod
    def from_query(
        cls, params: QueryDict, *, teams: list[Team], owners: list[tuple[int, str]]
    ) -> PlanListFilters:
        """Each value kept only when it is one of the choices offered; otherwise dropped."""
        team = _int(params.get("team"))
        owner = _int(params.get("owner"))
        state = params.get("state", "")
        sort = params.get("sort", "")
        return cls(
            q=" ".join(params.get("q", "").split())[:SEARCH_MAX_LENGTH],
            team=team if team in {t.pk for t in teams} else None,
            state=state if state in PilotPlan.Status.values else "",
            owner=owner if owner in {pk for pk, _ in owners} else None,
            sort=sort if sort in SORTS else DEFAULT_SORT,
        )

    @property
    def narrowed(self) -> bool:
        return bool(self.q or self.team or self.state or self.owner)

    @property
    def query(self) -> str:
        """The filters as a query string (without ``page``), for the pager and sort links."""
        pairs = [
            ("q", self.q),
            ("team", self.team or ""),
            ("state", self.state),
            ("owner", self.owner or ""),
            ("sort", "" if self.sort == DEFAULT_SORT else self.sort),
        ]
        return urlencode([(k, v) for k, v in pairs if v])

    def apply(self, plans: QuerySet[PilotPlan]) -> QuerySet[PilotPlan]:
        if self.q:
            plans = plans.filter(title__icontains=self.q)
        if self.team is not None:
            plans = plans.filter(team_id=self.team)
        if self.state:
            plans = plans.filter(status=self.state)
        if self.owner is not None:
            plans = plans.filter(owner_id=self.owner)
        return plans.order_by(*SORTS[self.sort][1])


def with_holidays(plans: QuerySet[PilotPlan]) -> QuerySet[PilotPlan]:
    """``plans`` with their team's holidays as ``holiday_dates`` (an ARRAY subquery, no query
    of its own), which ``plan_overdue`` reads."""
    return plans.annotate(
        holiday_dates=ArraySubquery(
            TeamHoliday.objects.filter(team=OuterRef("team_id")).order_by("date").values("date")
        )
    )


def decision_due_on(plan: PilotPlan) -> dt.date | None:
    """The last day to record the decision: the ``DECISION_DUE_BUSINESS_DAYS``-th business day
    after the time-box's last day (weekends and the team's holidays skipped)."""
    if plan.end_date is None or plan.end_date == dt.date.max:
        return None
    after = plan.end_date + dt.timedelta(days=1)
    return timeline.end_date(after, DECISION_DUE_BUSINESS_DAYS, health.holiday_dates(plan))


def plan_overdue(plan: PilotPlan, *, today: dt.date | None = None) -> bool:
    """Overdue: still Running after the last day of its time-box, or Evaluating (no decision)
    after the decision was due (``decision_due_on``). Today is the plan's own today."""
    if plan.end_date is None or plan.status not in (
        PilotPlan.Status.RUNNING,
        PilotPlan.Status.EVALUATING,
    ):
        return False
    if today is None:
        today = timezone.localtime(timezone.now(), zone_of(plan)).date()
    if plan.status == PilotPlan.Status.RUNNING:
        return today > plan.end_date
    due = decision_due_on(plan)
    return due is not None and today > due


def filter_context(filters: PlanListFilters, *, owners: list[tuple[int, str]]) -> dict[str, Any]:
    """What ``_plan_filters.html`` and ``_pager.html`` read (the plan list and the portfolio)."""
    return {
        "filters": filters,
        "query": filters.query,
        "owners": owners,
        "states": PilotPlan.Status.choices,
        "sorts": [(key, label) for key, (label, _) in SORTS.items()],
        # The pager says Newer / Older only when the list is newest first.
        **(
            {}
            if filters.sort == DEFAULT_SORT
            else {"newer_label": "← Previous", "older_label": "Next →"}
        ),
    }
