"""A person's settings page for their personal access tokens: list them (never their secrets),
create one (the plaintext is shown once, in the answer to the creation) and revoke one (after a
confirmation). Each person sees and manages only their own tokens; another person's token is
404.

Without JavaScript: the page, the creation answered with the page and the new token, a
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
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts.forms import UserTimeZoneForm
from accounts.http import AuthedHtmxRequest
from accounts.models import PersonalToken
from accounts.services import user_time_zone_set
from accounts.tokens import personal_token_create, personal_token_revoke, personal_tokens_of
from core.http import UNPROCESSABLE

LIFETIMES = [(7, "7 days"), (30, "30 days"), (90, "90 days"), (365, "1 year")]


class PersonalTokenForm(forms.Form):
    name = forms.CharField(
        label="Name", max_length=100, help_text="What will use it, e.g. “release script”."
    )
    scopes = forms.MultipleChoiceField(
        label="May",
        choices=PersonalToken.Scope.choices,
        initial=[PersonalToken.Scope.READ],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one scope."},
    )
    lifetime = forms.TypedChoiceField(
        label="Expires after", choices=LIFETIMES, coerce=int, initial=30
    )


def _render(request: AuthedHtmxRequest, *, status: int = 200, **extra: Any) -> TemplateResponse:
    template = "accounts/tokens.html#tokens" if request.htmx else "accounts/tokens.html"
    context = {
        "tokens": list(personal_tokens_of(user=request.user)),
        "form": PersonalTokenForm(),
        "zone_form": UserTimeZoneForm(initial={"time_zone": request.user.time_zone}),
        "now": timezone.now(),
        **extra,
    }
    return TemplateResponse(request, template, context, status=status)


@login_required
@require_http_methods(["GET"])
def token_list(request: AuthedHtmxRequest) -> HttpResponse:
    return _render(request)


@login_required
@require_http_methods(["POST"])
def time_zone_set(request: AuthedHtmxRequest) -> HttpResponse:
    """Set the person's own zone (or clear it); back to the settings page."""
    form = UserTimeZoneForm(request.POST)
    if not form.is_valid():
        return _render(request, status=UNPROCESSABLE, zone_form=form)
    zone = form.cleaned_data["time_zone"]
    user_time_zone_set(user=request.user, time_zone=zone)
    messages.success(
        request,
        f"Times now show your clock ({zone}) on hover where it differs."
        if zone
        else "Times show only on their plan's or team's clock.",
    )
    return redirect(reverse("accounts:token_list"))


@login_required
@require_http_methods(["POST"])
def token_add(request: AuthedHtmxRequest) -> HttpResponse:
    """Create a token and answer with the page and the token's plaintext, shown this once (not
    redirected: the plaintext must not be stored anywhere, a session included)."""
    form = PersonalTokenForm(request.POST)
    if form.is_valid():
        try:
            token, plaintext = personal_token_create(
                user=request.user,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                expires_at=timezone.now() + dt.timedelta(days=form.cleaned_data["lifetime"]),
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            response = _render(request, created=token, plaintext=plaintext)
            response["Cache-Control"] = "no-store"
            return response
    return _render(request, status=UNPROCESSABLE, form=form)


@login_required
@require_http_methods(["GET", "POST"])
def token_revoke(request: AuthedHtmxRequest, token_id: int) -> HttpResponse:
    """GET: confirm (the no-JavaScript path). POST: revoke; the token stops working at once."""
    token = PersonalToken.objects.filter(user=request.user, pk=token_id).first()
    if token is None:
        raise Http404("No such token")
    if request.method == "GET":
        return TemplateResponse(request, "accounts/token_revoke.html", {"token": token})
    personal_token_revoke(user=request.user, token_id=token.pk)
    message = f"Token “{token.name}” revoked: requests using it are refused from now on."
    if not request.htmx:
        messages.success(request, message)
        return redirect("accounts:token_list")
    return _render(request, revoked_message=message)
