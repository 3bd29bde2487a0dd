"""A team's metric catalogue: the built-in metrics plus the team's own."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.views.decorators.http import require_http_methods
from django_htmx.http import trigger_client_event

from accounts.http import AuthedHtmxRequest
from accounts.models import Team, User
from accounts.permissions import Perm, allows, team_for_member
from catalogue import selectors, services
from catalogue.forms import MetricForm
from core.http import UNPROCESSABLE


def _team(user: User, team_id: int, *, change: bool) -> tuple[Team, str]:
    return team_for_member(user=user, team_id=team_id, perm=Perm.CATALOGUE_EDIT if change else None)


def _render(
    request: AuthedHtmxRequest, team: Team, role: str, form: MetricForm, status: int = 200
) -> TemplateResponse:
    context = {
        "team": team,
        "metrics": selectors.metric_list_for_team(team_id=team.pk).order_by("team_id", "name"),
        "form": form,
        "can_change": allows(role, Perm.CATALOGUE_EDIT),
    }
    template = (
        "catalogue/metric_list.html#catalogue" if request.htmx else "catalogue/metric_list.html"
    )
    return TemplateResponse(request, template, context, status=status)


@login_required
@require_http_methods(["GET"])
def metric_list(request: AuthedHtmxRequest, team_id: int) -> HttpResponse:
    team, role = _team(request.user, team_id, change=False)
    return _render(request, team, role, MetricForm())


@login_required
@require_http_methods(["POST"])
def metric_add(request: AuthedHtmxRequest, team_id: int) -> HttpResponse:
    team, role = _team(request.user, team_id, change=True)
    form = MetricForm(request.POST)
    if form.is_valid():
        try:
            services.metric_create(team=team, user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
    if form.errors:
        return _render(request, team, role, form, status=UNPROCESSABLE)
    if not request.htmx:
        return redirect("catalogue:metric_list", team_id=team.pk)
    response = _render(request, team, role, MetricForm())
    trigger_client_event(response, "metricsChanged")
    return response


urlpatterns = [
    path("teams/<int:team_id>/metrics/", metric_list, name="metric_list"),
    path("teams/<int:team_id>/metrics/new", metric_add, name="metric_add"),
]
