"""The rollback checklist in the browser.

- ``plans/<plan>/rollback``: the open (or latest) run: started and ended, each step with its
  status in words and colour, who and when, the forms to mark it (HTMX swaps the one step;
  without JavaScript POST → redirect → GET), the communication plan beside it, the verification
  evidence at the last step, "End rollback" with a confirmation; earlier runs below. Every
  member of the plan reads it; the rollback executor (or DevOps) works it;
- ``plans/<plan>/rollback/start?episode=<id>``: the emergency start's confirmation (GET: what
  will happen and who is told; POST: start). The executor, Product Owner or DevOps;
- ``plans/<plan>/rollback/steps/<step>`` (POST): mark one step;
- ``plans/<plan>/rollback/<run>/end`` (POST): end the run.

Outsiders get 404 (``plan_for_user``); members who may not act get 403 with the words.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods

from accounts.http import AuthedHtmxRequest
from accounts.models import User
from core.exceptions import Conflict
from core.http import UNPROCESSABLE
from decisions.models import RollbackRun, RollbackStepRun
from decisions.services import rollback as service
from metrics.models import TriggerEpisode
from pilots.access import plan_for_user
from pilots.models import PilotPlan

CONFLICT = 409


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _step_context(
    plan: PilotPlan,
    step: RollbackStepRun,
    *,
    can_work: bool,
    run_open: bool,
    verification: service.Verification | None = None,
    error: str = "",
    draft: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "plan": plan,
        "step": step,
        "can_work": can_work,
        "run_open": run_open,
        "verification": verification,
        "error": error,
        "draft": draft or {},
    }


def _page(
    request: AuthedHtmxRequest,
    plan: PilotPlan,
    *,
    status: int = 200,
    error_step_id: int | None = None,
    error: str = "",
    draft: dict[str, Any] | None = None,
    end_error: str = "",
) -> TemplateResponse:
    runs = service.rollback_runs(plan_id=plan.pk)
    run = runs[0] if runs else None
    role = plan.viewer_role  # type: ignore[attr-defined]
    steps = service.rollback_steps(run=run) if run else []
    verification = service.rollback_verification(run) if run else None
    can_work = service.rollback_work_allowed(plan, request.user, role=role)
    context = {
        "plan": plan,
        "run": run,
        "earlier": runs[1:],
        "steps": steps,
        "has_runbook_steps": any(not s.is_verification for s in steps),
        "verification": verification,
        "can_work": can_work,
        "executor": service.rollback_executor(plan),
        "error_step_id": error_step_id,
        "error": error,
        "draft": draft or {},
        "end_error": end_error,
        "pending": [s for s in steps if s.status == RollbackStepRun.Status.PENDING],
    }
    return TemplateResponse(request, "decisions/rollback.html", context, status=status)


def _plan(request: AuthedHtmxRequest, plan_id: int) -> PilotPlan:
    return plan_for_user(
        user=request.user,
        plan_id=plan_id,
        queryset=PilotPlan.objects.select_related("rollback_executor", "owner"),
    )


@login_required
@require_http_methods(["GET"])
def rollback_page(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    plan = _plan(request, plan_id)
    return _page(request, plan)


# --- emergency start ------------------------------------------------------------------------------


def _episode(plan: PilotPlan, raw: str | None) -> TriggerEpisode:
    episode_id = _int(raw)
    if episode_id is None:
        raise Http404("No such trigger episode")
    return get_object_or_404(
        TriggerEpisode.objects.select_related("trigger"), pk=episode_id, plan=plan
    )


def _start_context(plan: PilotPlan, episode: TriggerEpisode) -> dict[str, Any]:
    team = list(User.objects.filter(memberships__team_id=plan.team_id).order_by("full_name", "pk"))
    return {
        "plan": plan,
        "episode": episode,
        "step_count": plan.rollback_steps.count(),
        "executor": service.rollback_executor(plan),
        "team": team,
        "open_run": RollbackRun.objects.filter(plan=plan, ended_at__isnull=True)
        .select_related("started_by")
        .first(),
    }


@login_required
@require_http_methods(["GET", "POST"])
def rollback_start(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    """GET: what starting will do and who is told; POST: start the emergency rollback."""
    plan = _plan(request, plan_id)
    service.rollback_require_start(plan, request.user, role=plan.viewer_role)  # type: ignore[attr-defined]
    raw = request.POST.get("episode") if request.method == "POST" else request.GET.get("episode")
    episode = _episode(plan, raw)
    context = _start_context(plan, episode)
    if request.method == "GET":
        return TemplateResponse(request, "decisions/rollback_start.html", context)
    try:
        service.rollback_start(plan=plan, user=request.user, episode=episode)
    except Conflict as exc:
        context["error"] = exc.message
        return TemplateResponse(request, "decisions/rollback_start.html", context, status=CONFLICT)
    except ValidationError as exc:
        context["error"] = " ".join(exc.messages)
        return TemplateResponse(
            request, "decisions/rollback_start.html", context, status=UNPROCESSABLE
        )
    messages.success(request, "Emergency rollback started: the team has been told.")
    return redirect(reverse("decisions:rollback", args=[plan.pk]))


# --- mark a step ----------------------------------------------------------------------------------


@login_required
@require_http_methods(["POST"])
def rollback_step_mark(request: AuthedHtmxRequest, plan_id: int, step_id: int) -> HttpResponse:
    plan = _plan(request, plan_id)
    step = get_object_or_404(
        RollbackStepRun.objects.select_related("run"), pk=step_id, run__plan=plan
    )
    status_value = request.POST.get("status", "")
    note = request.POST.get("note", "")
    draft = {"status": status_value, "note": note}
    try:
        step = service.rollback_step_mark(
            step=step,
            user=request.user,
            status=status_value,
            note=note,
            expected_version=_int(request.POST.get("version")) or 0,
        )
    except ValidationError as exc:
        return _step_refused(request, plan, step, " ".join(exc.messages), UNPROCESSABLE, draft)
    except Conflict as exc:
        return _step_refused(request, plan, step, exc.message, CONFLICT, draft)
    if not request.htmx:
        messages.success(request, f"Step {step.position}: {step.get_status_display()}.")
        return redirect(reverse("decisions:rollback", args=[plan.pk]) + f"#step-{step.pk}")
    return _step_partial(request, plan, step)


def _step_partial(
    request: AuthedHtmxRequest,
    plan: PilotPlan,
    step: RollbackStepRun,
    *,
    status: int = 200,
    error: str = "",
    draft: dict[str, Any] | None = None,
) -> TemplateResponse:
    step = RollbackStepRun.objects.select_related("run", "done_by").get(pk=step.pk)
    run = RollbackRun.objects.select_related("plan", "episode").get(pk=step.run_id)
    context = _step_context(
        plan,
        step,
        can_work=service.rollback_work_allowed(plan, request.user, role=plan.viewer_role),  # type: ignore[attr-defined]
        run_open=run.ended_at is None,
        verification=service.rollback_verification(run) if step.is_verification else None,
        error=error,
        draft=draft,
    )
    return TemplateResponse(request, "decisions/rollback_step.html", context, status=status)


def _step_refused(
    request: AuthedHtmxRequest,
    plan: PilotPlan,
    step: RollbackStepRun,
    message: str,
    status: int,
    draft: dict[str, Any],
) -> HttpResponse:
    if request.htmx:
        return _step_partial(request, plan, step, status=status, error=message, draft=draft)
    return _page(request, plan, status=status, error_step_id=step.pk, error=message, draft=draft)


# --- end ------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["POST"])
def rollback_end(request: AuthedHtmxRequest, plan_id: int, run_id: int) -> HttpResponse:
    plan = _plan(request, plan_id)
    run = get_object_or_404(RollbackRun, pk=run_id, plan=plan)
    try:
        service.rollback_end(run=run, user=request.user)
    except Conflict as exc:
        return _page(request, plan, status=CONFLICT, end_error=exc.message)
    messages.success(request, "Rollback ended: the plan's owner has been told.")
    return redirect(reverse("decisions:rollback", args=[plan.pk]))


urlpatterns = [
    path("plans/<int:plan_id>/rollback", rollback_page, name="rollback"),
    path("plans/<int:plan_id>/rollback/start", rollback_start, name="rollback_start"),
    path(
        "plans/<int:plan_id>/rollback/steps/<int:step_id>",
        rollback_step_mark,
        name="rollback_step_mark",
    ),
    path("plans/<int:plan_id>/rollback/<int:run_id>/end", rollback_end, name="rollback_end"),
]
