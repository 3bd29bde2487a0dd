"""A plan's check history: every check, scheduled or run on demand, newest first, with each
criterion's result.

``plans/<id>/checks`` is the page (paginated; each run expands to its results without
JavaScript, with ``<details>``); ``plans/<id>/checks/latest`` answers the "today's status"
partial alone, for pages that load it with HTMX; ``plans/<id>/checks/run`` (POST) runs a check
now, for the plan's Product Owner or Scrum Master (a button with a confirmation on the page).
Everyone who reads the plan reads its checks (team members and invited stakeholders); to anyone
else the plan does not exist.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.views.decorators.http import require_http_methods

from accounts.http import AuthedHtmxRequest
from accounts.permissions import Perm, allows
from core.exceptions import Conflict
from metrics.checks import check_run_latest_done, check_run_request, check_runs_for_plan
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
    runs = check_runs_for_plan(plan_id=plan.pk).select_related("requested_by")
    page = Paginator(runs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "plan": plan,
        "page": page,
        "runs": page.object_list,
        "can_raise": _can_raise(plan),
        "can_run_now": not plan.viewer_is_guest  # type: ignore[attr-defined]
        and allows(plan.viewer_role, Perm.CHECK_RUN_NOW)  # type: ignore[attr-defined]
        and plan.status == PilotPlan.Status.RUNNING,
    }
    return TemplateResponse(request, "metrics/checks_history.html", context)


@login_required
@require_http_methods(["POST"])
def checks_run(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    """Run a check now; back to the history, where the run waits for the worker."""
    plan = plan_for_user(user=request.user, plan_id=plan_id, perm=Perm.CHECK_RUN_NOW)
    try:
        check_run_request(plan=plan, user=request.user)
    except Conflict as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Check queued: the worker runs it within a minute or two.")
    return redirect("metrics:checks", plan_id=plan.pk)


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
    path("plans/<int:plan_id>/checks/run", checks_run, name="checks_run"),
]
