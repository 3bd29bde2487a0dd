"""Invited stakeholders on the plan page: who outside the team may read this plan, and (for the
team's Product Owner or Scrum Master) an invite form and remove buttons.

The plan page loads the card itself (``hx-trigger="load"``), so the plan page's own query count is
unchanged; without JavaScript the same card is a small page of its own. Writes go through
pilots/services/guests.py, which decides who may invite or remove.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods
from django_htmx.http import trigger_client_event

from accounts.http import AuthedHtmxRequest
from accounts.permissions import Perm, allows
from core.http import UNPROCESSABLE
from pilots.access import plan_for_user
from pilots.models import PilotPlan, PlanGuest, PlanInvitation
from pilots.services.guests import (
    invitation_accept,
    invitation_decline,
    invitations_pending_for,
    plan_guest_invite,
    plan_guest_remove,
    plan_invitation_cancel,
)

# The same answer whether or not the address has an account (pilots/services/guests.py).
INVITED = "Invitation recorded. The person can read this plan once they accept it."


class GuestInviteForm(forms.Form):
    email = forms.EmailField(
        label="E-mail",
        max_length=254,
        help_text="Someone outside the team. They see the plan once they accept the invitation, "
        "logged in with this address.",
    )


def _context(
    plan: PilotPlan, *, form: GuestInviteForm | None = None, message: str = ""
) -> dict[str, Any]:
    guest = plan.viewer_is_guest  # type: ignore[attr-defined]
    guests = (
        []
        if guest
        else list(
            PlanGuest.objects.filter(plan=plan)
            .select_related("user", "invited_by")
            .order_by("invited_at", "pk")
        )
    )
    invitations = (
        [] if guest else list(PlanInvitation.objects.filter(plan=plan).select_related("invited_by"))
    )
    return {
        "plan": plan,
        "guests": guests,
        "invitations": invitations,
        "viewer_is_guest": guest,
        "can_manage": allows(plan.viewer_role, Perm.GUESTS_MANAGE),  # type: ignore[attr-defined]
        "form": form or GuestInviteForm(),
        "guests_message": message,
    }


def _render(
    request: AuthedHtmxRequest, plan: PilotPlan, *, status: int = 200, **kw: Any
) -> HttpResponse:
    """The card alone (HTMX) or the card's own page (no JavaScript)."""
    template = "pilots/guests.html#guests" if request.htmx else "pilots/guests.html"
    return TemplateResponse(request, template, _context(plan, **kw), status=status)


def _done(request: AuthedHtmxRequest, plan: PilotPlan, message: str) -> HttpResponse:
    if not request.htmx:
        return redirect(reverse("pilots:plan_guests", args=[plan.pk]))
    response = _render(request, plan, message=message)
    return trigger_client_event(response, "guestsChanged", {"plan": plan.pk})


@login_required
@require_http_methods(["GET", "POST"])
def plan_guests(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    """GET: the card. POST: invite the person with the given e-mail (PO or SM only)."""
    plan = plan_for_user(user=request.user, plan_id=plan_id)
    if request.method == "GET":
        return _render(request, plan)
    form = GuestInviteForm(request.POST)
    if form.is_valid():
        try:
            plan_guest_invite(plan=plan, email=form.cleaned_data["email"], invited_by=request.user)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            return _done(request, plan, INVITED)
    return _render(request, plan, status=UNPROCESSABLE, form=form)


@login_required
@require_http_methods(["POST"])
def plan_guest_delete(request: AuthedHtmxRequest, plan_id: int, guest_id: int) -> HttpResponse:
    plan = plan_for_user(user=request.user, plan_id=plan_id)
    plan_guest_remove(plan=plan, guest_id=guest_id, by=request.user)
    return _done(request, plan, "Invitation removed.")


@login_required
@require_http_methods(["POST"])
def plan_invitation_delete(
    request: AuthedHtmxRequest, plan_id: int, invitation_id: int
) -> HttpResponse:
    plan = plan_for_user(user=request.user, plan_id=plan_id)
    plan_invitation_cancel(plan=plan, invitation_id=invitation_id, by=request.user)
    return _done(request, plan, "Invitation withdrawn.")


# --- the invitee's page --------------------------------------------------------------------------


@login_required
@require_http_methods(["GET"])
def invitation_list(request: AuthedHtmxRequest) -> HttpResponse:
    """Plans the person was invited to read and has not answered yet."""
    invitations = list(invitations_pending_for(user=request.user))
    return TemplateResponse(request, "pilots/invitations.html", {"invitations": invitations})


@login_required
@require_http_methods(["POST"])
def invitation_answer(request: AuthedHtmxRequest, invitation_id: int, answer: str) -> HttpResponse:
    if answer == "accept":
        guest = invitation_accept(user=request.user, invitation_id=invitation_id)
        if guest is not None:
            return redirect("pilots:plan_detail", guest.plan_id)
    else:
        invitation_decline(user=request.user, invitation_id=invitation_id)
    return redirect("pilots:invitation_list")


urlpatterns = [
    path("<int:plan_id>/guests", plan_guests, name="plan_guests"),
    path("<int:plan_id>/guests/<int:guest_id>/remove", plan_guest_delete, name="plan_guest_remove"),
    path(
        "<int:plan_id>/invitations/<int:invitation_id>/withdraw",
        plan_invitation_delete,
        name="plan_invitation_withdraw",
    ),
]

# Mounted at the site root (pilots/urls.py): the invitee's own list.
invitee_urlpatterns = [
    path("invitations/", invitation_list, name="invitation_list"),
    path(
        "invitations/<int:invitation_id>/accept",
        invitation_answer,
        {"answer": "accept"},
        name="invitation_accept",
    ),
    path(
        "invitations/<int:invitation_id>/decline",
        invitation_answer,
        {"answer": "decline"},
        name="invitation_decline",
    ),
]
