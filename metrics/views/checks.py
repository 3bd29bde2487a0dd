"""A plan's check history: every scheduled check, newest first, with each criterion's result.

``plans/<id>/checks`` is the page (paginated; each run expands to its results without
JavaScript, with ``<details>``); ``plans/<id>/checks/latest`` answers the "today's status"
partial alone, for pages that load it with HTMX. Everyone who reads the plan reads its checks
(team members and invited stakeholders); to anyone else the plan does not exist.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.views.decorators.http import require_http_methods

from accounts.http import AuthedHtmxRequest
from accounts.permissions import Perm, allows
from metrics.checks import check_run_latest_done, check_runs_for_plan
from pilots.access import plan_for_user
from pilots.models import PilotPlan

RUNS_PER_PAGE = 20


def _can_raise(plan: PilotPlan) -> bool:
    """May the viewer turn a failing criterion into a backlog item (a team member who changes
    the backlog; invited guests do not see the team's backlog)?"""
    return not plan.viewer_is_guest and allows(plan.viewer_role, Perm.BACKLOG_EDIT)  # type: ignore[attr-defined]


@login_required
@require_http_methods(["GET"])
def checks(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    plan = plan_for_user(user=request.user, plan_id=plan_id)
    page = Paginator(check_runs_for_plan(plan_id=plan.pk), RUNS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {"plan": plan, "page": page, "runs": page.object_list, "can_raise": _can_raise(plan)}
    return TemplateResponse(request, "metrics/checks_history.html", context)


@login_required
@require_http_methods(["GET"])
def checks_latest(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    """The newest done check and its results ("today's status"), as a fragment."""
    plan = plan_for_user(user=request.user, plan_id=plan_id)
    context = {
        "plan": plan,
        "latest_run": check_run_latest_done(plan_id=plan.pk),
        "can_raise": _can_raise(plan),
    }
    return TemplateResponse(request, "metrics/checks_latest.html", context)


urlpatterns = [
    path("plans/<int:plan_id>/checks", checks, name="checks"),
    path("plans/<int:plan_id>/checks/latest", checks_latest, name="checks_latest"),
]
