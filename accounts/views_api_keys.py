"""A team's API keys in the browser: the team's Product Owner or Scrum Master creates keys (the
plaintext is shown once, in the answer to the creation), sees when each was last used and
revokes them (after a confirmation). Other members → 403, non-members → 404.

Without JavaScript: the list page, the creation answered with the list and the new key, a
confirmation page for revoking, then a redirect. With HTMX the card is swapped in place and
revoking asks with ``hx-confirm``.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_http_methods
from django_htmx.http import trigger_client_event

from accounts.api_keys import api_key_create, api_key_revoke
from accounts.http import AuthedHtmxRequest
from accounts.models import ApiKey, Team
from accounts.permissions import Perm, team_for_member
from core.http import UNPROCESSABLE


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=100,
        help_text="What will use it, e.g. “Grafana exporter”.",
    )
    scopes = forms.MultipleChoiceField(
        label="May",
        choices=ApiKey.Scope.choices,
        initial=[ApiKey.Scope.INGEST],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one scope."},
    )


def _team(request: AuthedHtmxRequest, team_id: int) -> Team:
    team, _role = team_for_member(user=request.user, team_id=team_id, perm=Perm.API_KEYS_MANAGE)
    return team


def _context(team: Team, **extra: Any) -> dict[str, Any]:
    return {
        "team": team,
        "keys": list(team.api_keys.select_related("created_by").order_by("-created_at", "-pk")),
        "form": ApiKeyForm(),
        **extra,
    }


def _render(
    request: AuthedHtmxRequest, team: Team, *, status: int = 200, **extra: Any
) -> TemplateResponse:
    template = "accounts/api_keys.html#api-keys" if request.htmx else "accounts/api_keys.html"
    return TemplateResponse(request, template, _context(team, **extra), status=status)


@login_required
@require_http_methods(["GET"])
def api_key_list(request: AuthedHtmxRequest, team_id: int) -> HttpResponse:
    return _render(request, _team(request, team_id))


@login_required
@require_http_methods(["POST"])
def api_key_add(request: AuthedHtmxRequest, team_id: int) -> HttpResponse:
    """Create a key and answer with the list and the key's plaintext, shown this once (not
    redirected: the plaintext must not be stored anywhere, a session included)."""
    team = _team(request, team_id)
    form = ApiKeyForm(request.POST)
    if form.is_valid():
        try:
            key, plaintext = api_key_create(
                team=team,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                created_by=request.user,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            response = _render(request, team, created=key, plaintext=plaintext)
            response["Cache-Control"] = "no-store"
            return trigger_client_event(response, "apiKeysChanged", {"team": team.pk})
    return _render(request, team, status=UNPROCESSABLE, form=form)


@login_required
@require_http_methods(["GET", "POST"])
def api_key_revoke_view(request: AuthedHtmxRequest, team_id: int, key_id: int) -> HttpResponse:
    """GET: confirm (the no-JavaScript path). POST: revoke; the key stops working at once."""
    team = _team(request, team_id)
    key = get_object_or_404(ApiKey, pk=key_id, team=team)
    if request.method == "GET":
        return TemplateResponse(
            request, "accounts/api_keys_revoke.html", {"team": team, "key": key}
        )
    api_key_revoke(key=key, user=request.user)
    message = f"API key “{key.name}” revoked: requests using it are refused from now on."
    if not request.htmx:
        messages.success(request, message)
        return redirect("accounts:api_key_list", team_id=team.pk)
    response = _render(request, team, revoked_message=message)
    return trigger_client_event(response, "apiKeysChanged", {"team": team.pk})
