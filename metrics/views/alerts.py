"""Alerts in the browser: the red banner's buttons, a plan's episode history, and the team's
webhook endpoint.

- ``plans/<plan>/alerts``: every breach episode of the plan with who acknowledged and resolved
  it, the triggers' current states, and the banner of unresolved episodes on top;
- ``plans/<plan>/alerts/<episode>/acknowledge`` and ``…/resolve`` (POST): the banner's buttons.
  With HTMX they answer with the banner again (and an ``episodesChanged`` event); without
  JavaScript they redirect back to the page the button was on. Team members may, stakeholders
  may not (403); anyone else gets 404;
- ``teams/<team>/webhook``: the endpoint (address, on/off), its signing secret shown once
  when generated or rotated, a test event, and the latest deliveries. Product Owner, Scrum
  Master and DevOps configure it; other members read it.
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
from accounts.models import Team, User
from accounts.permissions import Perm, allows, team_for_member
from core.exceptions import Conflict
from core.http import UNPROCESSABLE
from metrics import alerts
from metrics.models import TriggerState, WebhookEndpoint
from metrics.webhooks import MAX_ATTEMPTS
from pilots import wording
from pilots.access import plan_for_user
from pilots.models import PilotPlan, RollbackTrigger

CONFLICT = 409
EPISODES_PER_PAGE = 50
SHOW_ONCE_SESSION_KEY = "metrics.webhook_secret"


class ResolveForm(forms.Form):
    resolution = forms.CharField(
        label="What was done",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say how the alert was resolved."},
    )


class WebhookForm(forms.Form):
    url = forms.URLField(
        label="Address",
        max_length=200,
        assume_scheme="https",
        help_text="We POST signed JSON here when a trigger fires, is acknowledged or resolved. "
        "An https:// address on a public host (not a private or internal network).",
    )
    is_active = forms.BooleanField(label="Send events", required=False, initial=True)


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


# --- the team's webhook ---------------------------------------------------------------------------


def _team(user: User, team_id: int, *, change: bool) -> tuple[Team, str]:
    return team_for_member(user=user, team_id=team_id, perm=Perm.WEBHOOK_MANAGE if change else None)


def _webhook_page(
    request: AuthedHtmxRequest,
    team: Team,
    role: str,
    *,
    form: WebhookForm | None = None,
    secret: str | None = None,
    error: str = "",
    status: int = 200,
) -> TemplateResponse:
    endpoint = WebhookEndpoint.objects.filter(team=team).first()
    if form is None:
        initial = {"url": endpoint.url, "is_active": endpoint.is_active} if endpoint else {}
        form = WebhookForm(initial=initial)
    context = {
        "team": team,
        "endpoint": endpoint,
        "form": form,
        "secret": secret,
        "error": error,
        "max_attempts": MAX_ATTEMPTS,
        "can_change": allows(role, Perm.WEBHOOK_MANAGE),
        "deliveries": alerts.webhook_deliveries_recent(team_id=team.pk) if endpoint else [],
    }
    template = (
        "metrics/alerts_webhook.html#webhook" if request.htmx else "metrics/alerts_webhook.html"
    )
    return TemplateResponse(request, template, context, status=status)


def _webhook_done(
    request: AuthedHtmxRequest, team: Team, role: str, message: str, secret: str | None = None
) -> HttpResponse:
    if request.htmx:
        return _webhook_page(request, team, role, secret=secret)
    if secret:
        # Shown once, on the page this redirect leads to, then forgotten.
        request.session[SHOW_ONCE_SESSION_KEY] = secret
    messages.success(request, message)
    return redirect("metrics:webhook", team_id=team.pk)


@login_required
@require_http_methods(["GET", "POST"])
def webhook(request: AuthedHtmxRequest, team_id: int) -> HttpResponse:
    """GET: the endpoint and its latest deliveries. POST: set the address / switch it on or off
    (the first save generates the signing secret and shows it once)."""
    if request.method == "GET":
        team, role = _team(request.user, team_id, change=False)
        return _webhook_page(
            request, team, role, secret=request.session.pop(SHOW_ONCE_SESSION_KEY, None)
        )
    team, role = _team(request.user, team_id, change=True)
    form = WebhookForm(request.POST)
    if form.is_valid():
        try:
            _, secret = alerts.webhook_endpoint_configure(
                team=team, user=request.user, **form.cleaned_data
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            return _webhook_done(request, team, role, "Webhook saved.", secret)
    return _webhook_page(request, team, role, form=form, status=UNPROCESSABLE)


def _webhook_action(request: AuthedHtmxRequest, team_id: int, action: str) -> HttpResponse:
    team, role = _team(request.user, team_id, change=True)
    try:
        if action == "rotate":
            _, secret = alerts.webhook_secret_rotate(team=team, user=request.user)
            return _webhook_done(request, team, role, "New signing secret generated.", secret)
        if action == "test":
            alerts.webhook_test_send(team=team, user=request.user)
            return _webhook_done(request, team, role, "Test event queued; reload to see it.")
        alerts.webhook_endpoint_delete(team=team, user=request.user)
        return _webhook_done(request, team, role, "Webhook removed.")
    except Conflict as exc:
        if not request.htmx:
            messages.error(request, exc.message)
            return redirect("metrics:webhook", team_id=team.pk)
        return _webhook_page(request, team, role, error=exc.message, status=CONFLICT)


@login_required
@require_http_methods(["POST"])
def webhook_rotate(request: AuthedHtmxRequest, team_id: int) -> HttpResponse:
    return _webhook_action(request, team_id, "rotate")


@login_required
@require_http_methods(["POST"])
def webhook_test(request: AuthedHtmxRequest, team_id: int) -> HttpResponse:
    return _webhook_action(request, team_id, "test")


@login_required
@require_http_methods(["POST"])
def webhook_delete(request: AuthedHtmxRequest, team_id: int) -> HttpResponse:
    return _webhook_action(request, team_id, "delete")


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
    path("teams/<int:team_id>/webhook", webhook, name="webhook"),
    path("teams/<int:team_id>/webhook/rotate", webhook_rotate, name="webhook_rotate"),
    path("teams/<int:team_id>/webhook/test", webhook_test, name="webhook_test"),
    path("teams/<int:team_id>/webhook/delete", webhook_delete, name="webhook_delete"),
]
