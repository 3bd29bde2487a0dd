from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.views.decorators.http import require_http_methods

from accounts.forms import TeamCreateForm
from accounts.http import AuthedHtmxRequest
from accounts.permissions import may_create_team
from accounts.selectors import team_list_for_user
from pilots.selectors import plan_list_for_user


@login_required
@require_http_methods(["GET"])
def home(request: AuthedHtmxRequest) -> HttpResponse:
    """The user's teams and pilots, with the next step spelled out when either is empty."""
    context = {
        "teams": team_list_for_user(user=request.user),
        "team_form": TeamCreateForm(),
        "may_create_team": may_create_team(request.user),
        "plans": plan_list_for_user(user=request.user)[:20],
    }
    return TemplateResponse(request, "home.html", context)
