from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_http_methods
from django_htmx.http import trigger_client_event

from accounts import selectors, services
from accounts.forms import TeamCreateForm
from accounts.http import AuthedHtmxRequest
from accounts.permissions import may_create_team, require_team_creation
from core.http import UNPROCESSABLE


class LoginView(auth_views.LoginView):
    """Django's login, on our page; in the demo (``DEMO_LOGIN_HINT``) it names the accounts."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "demo_login_hint": settings.DEMO_LOGIN_HINT}


@login_required
@require_http_methods(["GET"])
def team_list(request: AuthedHtmxRequest) -> HttpResponse:
    context = {
        "teams": selectors.team_list_for_user(user=request.user),
        "team_form": TeamCreateForm(),
        "may_create_team": may_create_team(request.user),
    }
    return TemplateResponse(request, "accounts/teams.html", context)


@login_required
@require_http_methods(["POST"])
def team_create(request: AuthedHtmxRequest) -> HttpResponse:
    """Create a team inline (HTMX swaps the team section) or by a plain POST (no JavaScript)."""
    require_team_creation(request.user)
    form = TeamCreateForm(request.POST)
    team = None
    if form.is_valid():
        try:
            team = services.team_create(
                creator=request.user,
                name=form.cleaned_data["name"],
                time_zone=form.cleaned_data["time_zone"],
                creator_role=form.cleaned_data["role"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
    if team is not None and not request.htmx:
        return redirect("accounts:team_list")

    context = {
        "teams": selectors.team_list_for_user(user=request.user),
        "team_form": TeamCreateForm() if team else form,
        "created_team": team,
        "may_create_team": True,
    }
    status = 200 if team else UNPROCESSABLE
    template = "accounts/teams.html#teams" if request.htmx else "accounts/teams.html"
    response = TemplateResponse(request, template, context, status=status)
    if team is not None:
        trigger_client_event(response, "teamsChanged", {"id": team.pk})
    return response
