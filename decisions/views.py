"""The portfolio: every pilot the user may see across their teams, at a glance.

One row per plan: team, owner, state (with the overdue flag), dates, business days left in the
time-box, outcome, plan health (gap count) and sign-off status; searched, filtered and sorted
like the plan list (``pilots.listing``). The page's slice of plans is loaded with
``plan_health_queryset`` (what plan health reads, for those 25 plans at once), so the query count
does not grow with the number of plans and the time does not grow with the rows of their
sections.
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
from pilots import listing
from pilots.selectors import plan_list_for_user

PLANS_PER_PAGE = 25


@login_required
@require_http_methods(["GET"])
def portfolio(request: AuthedHtmxRequest) -> HttpResponse:
    """Searched, filtered and sorted by the query string (``pilots.listing``); paginated, most
    recently changed first by default."""
    teams = list(listing.teams_with_members(team_list_for_user(user=request.user)))
    owners = listing.owner_choices(teams)
    filters = listing.PlanListFilters.from_query(request.GET, teams=teams, owners=owners)
    ids = filters.apply(plan_list_for_user(user=request.user)).values_list("pk", flat=True)
    page = Paginator(ids, PLANS_PER_PAGE).get_page(request.GET.get("page"))
    rows = selectors.portfolio_rows(plan_ids=list(page.object_list))
    context = {
        "page": page,
        "rows": rows,
        "teams": teams,
        **listing.filter_context(filters, owners=owners),
    }
    return TemplateResponse(request, "decisions/portfolio.html", context)


urlpatterns = [
    path("portfolio", portfolio, name="portfolio"),
]
