"""Alerts in the browser: the red banner's buttons and a plan's episode history (the team's
webhook subscriptions: metrics/views/webhooks.py).

- ``plans/<plan>/alerts``: every breach episode of the plan with who acknowledged and resolved
  it, the triggers' current states, and the banner of unresolved episodes on top;
- ``plans/<plan>/alerts/<episode>/acknowledge`` and ``…/resolve`` (POST): the banner's buttons.
  With HTMX they answer with the banner again (and an ``episodesChanged`` event); without
  JavaScript they redirect back to the page the button was on. Team members may, stakeholders
  may not (403); anyone else gets 404;
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods
from django_htmx.http import trigger_client_event

from accounts.http import AuthedHtmxRequest
from accounts.permissions import Perm, allows
from core.exceptions import Conflict
from core.http import UNPROCESSABLE
from metrics import alerts
from metrics.models import TriggerState
from pilots import wording
from pilots.access import plan_for_user
from pilots.models import PilotPlan, RollbackTrigger

CONFLICT = 409
EPISODES_PER_PAGE = 50


class ResolveForm(forms.Form):
    resolution = forms.CharField(
        label="What was done",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say how the alert was resolved."},
    )


# --- the banner and the episode list -------------------------------------------------------------


def _next(request: AuthedHtmxRequest, plan: PilotPlan) -> str:
    """Where a plain POST goes back to: the page the button was on, if it is ours."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("pilots:plan_detail", args=[plan.pk])


def _banner(
    request: AuthedHtmxRequest,
    plan: PilotPlan,
    *,
    status: int = 200,
    error_episode_id: int | None = None,
    error: str = "",
    draft: str = "",
) -> TemplateResponse:
    context = {
        "plan": plan,
        "episodes": alerts.episodes_unresolved(plan_id=plan.pk),
        "signals": alerts.signals_open(plan_id=plan.pk),
        "can_act": allows(plan.viewer_role, Perm.ALERTS_ACT),  # type: ignore[attr-defined]
        "banner_next": request.POST.get("next") or request.GET.get("next", ""),
        "error_episode_id": error_episode_id,
        "error": error,
        "draft": draft,
    }
    return TemplateResponse(request, "metrics/_trigger_banner.html", context, status=status)


def _alerts_page(
    request: AuthedHtmxRequest, plan: PilotPlan, *, status: int = 200, **banner: Any
) -> TemplateResponse:
    page = Paginator(alerts.episodes_for_plan(plan_id=plan.pk), EPISODES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    states = {s.trigger_id: s for s in TriggerState.objects.filter(plan=plan)}
    triggers = list(RollbackTrigger.objects.filter(plan=plan).select_related("metric"))
    context = {
        "plan": plan,
        "page": page,
        "history": page.object_list,
        "triggers": [(wording.trigger_text(t), t.description, states.get(t.pk)) for t in triggers],
        "episodes": alerts.episodes_unresolved(plan_id=plan.pk),
        "signals": alerts.signals_open(plan_id=plan.pk),
        "can_act": allows(plan.viewer_role, Perm.ALERTS_ACT),  # type: ignore[attr-defined]
        "banner_next": request.path,
        "error_episode_id": None,
        "error": "",
        "draft": "",
        **banner,
    }
    template = "metrics/alerts_list.html#history" if request.htmx else "metrics/alerts_list.html"
    return TemplateResponse(request, template, context, status=status)


@login_required
@require_http_methods(["GET"])
def alert_list(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    """The plan's breach episodes, newest first (HTMX: the history table alone)."""
    plan = plan_for_user(user=request.user, plan_id=plan_id)
    return _alerts_page(request, plan)


@login_required
@require_http_methods(["GET"])
def alert_banner(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    """The red banner alone (what the buttons swap in)."""
    plan = plan_for_user(user=request.user, plan_id=plan_id)
    return _banner(request, plan)


def _done(request: AuthedHtmxRequest, plan: PilotPlan, message: str) -> HttpResponse:
    if not request.htmx:
        messages.success(request, message)
        return redirect(_next(request, plan))
    response = _banner(request, plan)
    return trigger_client_event(response, "episodesChanged", {"plan": plan.pk})


def _refused(
    request: AuthedHtmxRequest,
    plan: PilotPlan,
    episode_id: int,
    message: str,
    status: int,
    draft="",
) -> HttpResponse:
    banner = {"error_episode_id": episode_id, "error": message, "draft": draft}
    if request.htmx:
        return _banner(request, plan, status=status, **banner)
    return _alerts_page(request, plan, status=status, **banner)


@login_required
@require_http_methods(["POST"])
def episode_acknowledge(request: AuthedHtmxRequest, plan_id: int, episode_id: int) -> HttpResponse:
    plan = plan_for_user(user=request.user, plan_id=plan_id, perm=Perm.ALERTS_ACT)
    try:
        alerts.episode_acknowledge(plan=plan, episode_id=episode_id, user=request.user)
    except Conflict as exc:
        return _refused(request, plan, episode_id, exc.message, CONFLICT)
    return _done(request, plan, "Alert acknowledged.")


@login_required
@require_http_methods(["POST"])
def episode_resolve(request: AuthedHtmxRequest, plan_id: int, episode_id: int) -> HttpResponse:
    plan = plan_for_user(user=request.user, plan_id=plan_id, perm=Perm.ALERTS_ACT)
    form = ResolveForm(request.POST)
    draft = request.POST.get("resolution", "")
    if not form.is_valid():
        message = " ".join(str(e) for e in form.errors["resolution"])
        return _refused(request, plan, episode_id, message, UNPROCESSABLE, draft)
    try:
        alerts.episode_resolve(
            plan=plan,
            episode_id=episode_id,
            user=request.user,
            resolution=form.cleaned_data["resolution"],
        )
    except ValidationError as exc:
        return _refused(request, plan, episode_id, " ".join(exc.messages), UNPROCESSABLE, draft)
    except Conflict as exc:
        return _refused(request, plan, episode_id, exc.message, CONFLICT)
    return _done(request, plan, "Alert resolved.")


urlpatterns = [
    path("plans/<int:plan_id>/alerts", alert_list, name="alerts"),
    path("plans/<int:plan_id>/alerts/banner", alert_banner, name="alerts_banner"),
    path(
        "plans/<int:plan_id>/alerts/<int:episode_id>/acknowledge",
        episode_acknowledge,
        name="alert_acknowledge",
    ),
    path(
        "plans/<int:plan_id>/alerts/<int:episode_id>/resolve",
        episode_resolve,
        name="alert_resolve",
    ),
]
