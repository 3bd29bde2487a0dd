"""A team's API keys in the browser: the team's Product Owner or Scrum Master creates keys (the
plaintext is shown once, in the answer to the creation) with scopes, optionally for some plans
only and with an expiry, sees when and from where each was last used, rotates them (a new key,
the old one working a grace period longer) and revokes them (after a confirmation). Other
members → 403, non-members → 404.

Without JavaScript: the list page, the creation answered with the list and the new key, a
confirmation page for revoking, then a redirect. With HTMX the card is swapped in place and
revoking asks with ``hx-confirm``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.http import require_http_methods
from django_htmx.http import trigger_client_event

from accounts.api_keys import (
    api_key_create,
    api_key_revoke,
    api_key_rotate,
    api_keys_of_team,
    team_plan_choices,
)
from accounts.http import AuthedHtmxRequest
from accounts.models import ApiKey, Team
from accounts.permissions import Perm, team_for_member
from accounts.ui import zone_of
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
    plans = forms.TypedMultipleChoiceField(
        label="Only for these plans",
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None chosen: every plan of the team, present and future.",
    )
    expires_on = forms.DateField(
        label="Expires on",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Empty: no expiry (revoke it when it is no longer needed).",
    )

    def __init__(self, *args: Any, plans: dict[int, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["plans"].choices = list(plans.items())


GRACE_CHOICES = [(0, "none: stop it now"), (1, "1 hour"), (24, "1 day"), (168, "7 days")]


class ApiKeyRotateForm(forms.Form):
    grace_hours = forms.TypedChoiceField(
        label="The old key keeps working for", choices=GRACE_CHOICES, coerce=int, initial=24
    )


def _team(request: AuthedHtmxRequest, team_id: int) -> Team:
    team, _role = team_for_member(user=request.user, team_id=team_id, perm=Perm.API_KEYS_MANAGE)
    return team


def _context(team: Team, **extra: Any) -> dict[str, Any]:
    keys = list(api_keys_of_team(team=team))
    titles = team_plan_choices(team.pk)
    for key in keys:
        key.plan_titles = [titles[i] for i in key.plan_ids if i in titles]  # type: ignore[attr-defined]
    return {
        "team": team,
        "keys": keys,
        "form": ApiKeyForm(plans=titles),
        "rotate_form": ApiKeyRotateForm(),
        "now": timezone.now(),
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
    form = ApiKeyForm(request.POST, plans=team_plan_choices(team.pk))
    if form.is_valid():
        expires_on = form.cleaned_data["expires_on"]
        try:
            key, plaintext = api_key_create(
                team=team,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                plan_ids=form.cleaned_data["plans"],
                # The end of that day in the team's time zone.
                expires_at=_end_of_day(expires_on, team) if expires_on else None,
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


def _end_of_day(day: dt.date, team: Team) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone_of(team))


@login_required
@require_http_methods(["POST"])
def api_key_rotate_view(request: AuthedHtmxRequest, team_id: int, key_id: int) -> HttpResponse:
    """Issue a new key like this one, shown once, and let the old one work the chosen grace
    period longer (both work meanwhile)."""
    team = _team(request, team_id)
    key = get_object_or_404(ApiKey, pk=key_id, team=team)
    form = ApiKeyRotateForm(request.POST)
    if form.is_valid():
        try:
            grace = dt.timedelta(hours=form.cleaned_data["grace_hours"])
            new, plaintext = api_key_rotate(key=key, user=request.user, grace=grace)
        except ValidationError as exc:
            return _render(request, team, status=UNPROCESSABLE, rotate_error=" ".join(exc.messages))
        response = _render(request, team, created=new, plaintext=plaintext, rotated=key)
        response["Cache-Control"] = "no-store"
        return trigger_client_event(response, "apiKeysChanged", {"team": team.pk})
    return _render(request, team, status=UNPROCESSABLE, rotate_error="Choose a grace period.")
