"""The portfolio: every pilot the user may see across their teams, at a glance.

One row per plan: team, state, business days left in the time-box, plan health (gap count) and
sign-off status. The page's slice of plans is loaded with ``plan_health_queryset`` (what plan
health reads, for those 25 plans at once), so the query count does not grow with the number of
plans and the time does not grow with the rows of their sections.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.views.decorators.http import require_http_methods

from accounts.http import AuthedHtmxRequest
from accounts.selectors import team_list_for_user
from decisions import selectors
from pilots.models import PilotPlan
from pilots.selectors import plan_list_for_user

PLANS_PER_PAGE = 25


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


@login_required
@require_http_methods(["GET"])
def portfolio(request: AuthedHtmxRequest) -> HttpResponse:
    """``?team=<id>&state=<status>`` filter; paginated, most recently changed first."""
    plans = plan_list_for_user(user=request.user)
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
    rows = selectors.portfolio_rows(plan_ids=page_ids)
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
    return TemplateResponse(request, "decisions/portfolio.html", context)


urlpatterns = [
    path("portfolio", portfolio, name="portfolio"),
]
