"""The portfolio: every pilot the user may see across their teams, at a glance.

One row per plan: team, state, business days left in the time-box, plan health (gap count) and
sign-off status. The page's slice of plans is loaded with ``plan_detail_queryset`` (every section
prefetched for those 25 plans at once), so the query count does not grow with the number of plans.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts.selectors import team_list_for_user
from pilotplan.http import AuthedHtmxRequest
from pilots import selectors, timeline
from pilots.health import plan_health
from pilots.models import PilotPlan, SignOff
from pilots.review import REVIEWS

PLANS_PER_PAGE = 25


@dataclass(frozen=True)
class PortfolioRow:
    plan: PilotPlan
    days_left: int | None  # None: not running, or no dates
    gap_count: int
    signed: int
    reviews: int

    @property
    def sign_off_status(self) -> str:
        return f"{self.signed}/{self.reviews} signed"


def _today(time_zone: str) -> dt.date:
    return timezone.localtime(timezone.now(), zoneinfo.ZoneInfo(time_zone)).date()


def days_left(plan: PilotPlan) -> int | None:
    """Business days from today (in the team's time zone) to the end of the time-box, both
    counted; ``None`` unless the plan is running with dates. Reads prefetched holidays."""
    if plan.status != PilotPlan.Status.RUNNING or plan.start_date is None or not plan.end_date:
        return None
    today = _today(plan.team.time_zone)
    holidays = frozenset(h.date for h in plan.team.holidays.all())
    day, left = max(today, plan.start_date), 0
    while day <= plan.end_date:
        left += timeline.is_business_day(day, holidays)
        day += dt.timedelta(days=1)
    return left


def _row(plan: PilotPlan) -> PortfolioRow:
    active = {s.kind for s in plan.sign_offs.all()}  # prefetched: active ones only
    return PortfolioRow(
        plan=plan,
        days_left=days_left(plan),
        gap_count=len(plan_health(plan)),
        signed=len(active & set(REVIEWS)),
        reviews=len(REVIEWS),
    )


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


@login_required
@require_http_methods(["GET"])
def portfolio(request: AuthedHtmxRequest) -> HttpResponse:
    """``?team=<id>&state=<status>`` filter; paginated, most recently changed first."""
    plans = selectors.plan_list_for_user(user=request.user)
    team_id = _int(request.GET.get("team"))
    state = request.GET.get("state", "")
    if team_id is not None:
        plans = plans.filter(team_id=team_id)
    if state in PilotPlan.Status.values:
        plans = plans.filter(status=state)
    else:
        state = ""
    ids = plans.order_by("-updated_at", "-pk").values_list("pk", flat=True)
    page = Paginator(ids, PLANS_PER_PAGE).get_page(request.GET.get("page"))
    page_ids = list(page.object_list)
    loaded = {
        plan.pk: plan
        for plan in selectors.plan_detail_queryset()
        .filter(pk__in=page_ids)
        .prefetch_related(
            Prefetch(
                "sign_offs",
                queryset=SignOff.objects.filter(voided_at__isnull=True).only("pk", "plan", "kind"),
            )
        )
    }
    rows = [_row(loaded[pk]) for pk in page_ids if pk in loaded]
    query = "&".join(
        f"{name}={value}" for name, value in (("team", team_id), ("state", state)) if value
    )
    context = {
        "page": page,
        "rows": rows,
        "teams": list(team_list_for_user(user=request.user)),
        "states": PilotPlan.Status.choices,
        "team_id": team_id,
        "state": state,
        "query": query,
    }
    return TemplateResponse(request, "pilots/portfolio.html", context)


urlpatterns = [
    path("portfolio", portfolio, name="portfolio"),
]
