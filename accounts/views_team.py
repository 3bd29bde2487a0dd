"""A team's page (``/teams/<id>/``): its members and roles, and its open invitations.

Every member reads it; the team's Product Owner and Scrum Master (``TEAM_MEMBERS_MANAGE``) also
change roles, remove members (after a confirmation) and invite people by e-mail. Non-members →
404, members without the rule → 403 on every write (accounts.teams checks the table).

Without JavaScript: plain POSTs, a confirmation page for removing, then a redirect. With HTMX
the members card is swapped in place (422 with the errors on the fields) and removing asks with
``hx-confirm``; each change triggers ``teamMembersChanged``.

The invitee's side (``/invitations/<token>``): signed in with the invited address → accept; not
signed in → sign in (an account exists) or sign up with the invited address; a used, expired
or withdrawn link says which.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods
from django_htmx.http import trigger_client_event

from accounts import teams
from accounts.http import AuthedHtmxRequest
from accounts.models import Membership, Team, User
from accounts.permissions import Perm, allows, team_for_member
from core.http import UNPROCESSABLE, HtmxHttpRequest

EVENT = "teamMembersChanged"


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail address", max_length=254)
    role = forms.ChoiceField(
        label="Role", choices=Membership.Role.choices, initial=Membership.Role.DEVELOPER
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=Membership.Role.choices)


class SignUpForm(forms.Form):
    full_name = forms.CharField(label="Your name", max_length=150)
    password = forms.CharField(
        label="Password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        validate_password(password)
        return password


def _team(request: AuthedHtmxRequest, team_id: int, perm: Perm | None = None) -> tuple[Team, str]:
    return team_for_member(user=request.user, team_id=team_id, perm=perm)


def _context(team: Team, role: str, **extra: Any) -> dict[str, Any]:
    now = timezone.now()
    can_manage = allows(role, Perm.TEAM_MEMBERS_MANAGE)
    invitations = list(teams.invitations_open(team=team, now=now)) if can_manage else []
    for invitation in invitations:
        invitation.expired = invitation.expires_at <= now  # type: ignore[attr-defined]
    return {
        "team": team,
        "my_role": role,
        "can_manage": can_manage,
        "members": list(teams.members_of(team=team)),
        "invitations": invitations,
        "invite_form": InviteForm(),
        "role_choices": Membership.Role.choices,
        **extra,
    }


def _render(
    request: AuthedHtmxRequest, team: Team, role: str, *, status: int = 200, **extra: Any
) -> TemplateResponse:
    template = "accounts/team_detail.html#members" if request.htmx else "accounts/team_detail.html"
    return TemplateResponse(request, template, _context(team, role, **extra), status=status)


def _done(request: AuthedHtmxRequest, team: Team, role: str, message: str) -> HttpResponse:
    if not request.htmx:
        messages.success(request, message)
        return redirect("accounts:team_detail", team_id=team.pk)
    response = _render(request, team, role, done_message=message)
    return trigger_client_event(response, EVENT, {"team": team.pk})


def _error(exc: ValidationError) -> str:
    return " ".join(exc.messages)


@login_required
@require_http_methods(["GET"])
def team_detail(request: AuthedHtmxRequest, team_id: int) -> HttpResponse:
    team, role = _team(request, team_id)
    return _render(request, team, role)


@login_required
@require_http_methods(["POST"])
def member_role(request: AuthedHtmxRequest, team_id: int, user_id: int) -> HttpResponse:
    team, role = _team(request, team_id, Perm.TEAM_MEMBERS_MANAGE)
    form = RoleForm(request.POST)
    if not form.is_valid():
        return _render(request, team, role, status=UNPROCESSABLE, error="Choose one of the roles.")
    try:
        membership = teams.member_role_change(
            team=team, by=request.user, user_id=user_id, role=form.cleaned_data["role"]
        )
    except ValidationError as exc:
        return _render(request, team, role, status=UNPROCESSABLE, error=_error(exc))
    _team_role = team_for_member(user=request.user, team_id=team.pk)[1]  # one's own may change
    return _done(
        request,
        team,
        _team_role,
        f"{membership.user.display_name} is now {membership.get_role_display()}.",
    )


@login_required
@require_http_methods(["GET", "POST"])
def member_remove(request: AuthedHtmxRequest, team_id: int, user_id: int) -> HttpResponse:
    """GET: confirm (the no-JavaScript path). POST: remove."""
    team, role = _team(request, team_id, Perm.TEAM_MEMBERS_MANAGE)
    membership = get_object_or_404(
        Membership.objects.select_related("user"), team=team, user_id=user_id
    )
    if request.method == "GET":
        return TemplateResponse(
            request, "accounts/team_member_remove.html", {"team": team, "membership": membership}
        )
    try:
        teams.member_remove(team=team, by=request.user, user_id=user_id)
    except ValidationError as exc:
        return _render(request, team, role, status=UNPROCESSABLE, error=_error(exc))
    if user_id == request.user.pk:  # removed oneself: the team is gone for them
        messages.success(request, f"You left the team “{team.name}”.")
        if request.htmx:
            response = HttpResponse(status=204)
            response["HX-Redirect"] = reverse("accounts:team_list")
            return response
        return redirect("accounts:team_list")
    return _done(request, team, role, f"{membership.user.display_name} was removed from the team.")


@login_required
@require_http_methods(["POST"])
def invitation_add(request: AuthedHtmxRequest, team_id: int) -> HttpResponse:
    team, role = _team(request, team_id, Perm.TEAM_MEMBERS_MANAGE)
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            invitation, _token = teams.invitation_create(
                team=team, by=request.user, email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
            )  # fmt: skip
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errors in exc.error_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                form.add_error(None, exc)
        else:
            return _done(
                request, team, role,
                f"Invitation e-mailed to {invitation.email} ({invitation.get_role_display()}).",
            )  # fmt: skip
    return _render(request, team, role, status=UNPROCESSABLE, invite_form=form)


@login_required
@require_http_methods(["POST"])
def invitation_revoke(request: AuthedHtmxRequest, team_id: int, invitation_id: int) -> HttpResponse:
    team, role = _team(request, team_id, Perm.TEAM_MEMBERS_MANAGE)
    invitation = teams.invitation_revoke(team=team, by=request.user, invitation_id=invitation_id)
    return _done(request, team, role, f"The invitation to {invitation.email} was withdrawn.")


# --- the invitee's side --------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def team_invitation(request: HtmxHttpRequest, token: str) -> HttpResponse:
    """The link of an e-mailed invitation: accept it (signed in), or sign in or sign up."""
    now = timezone.now()
    context: dict[str, Any] = {"token": token}
    try:
        invitation = teams.invitation_by_token(token=token, now=now)
    except teams.InvitationUnusable as exc:
        context |= {"unusable": exc.message, "invitation": exc.invitation}
        return TemplateResponse(
            request, "accounts/team_invitation.html", context, status=410 if exc.invitation else 404
        )
    context["invitation"] = invitation
    user = request.user
    if user.is_authenticated:
        if request.method == "POST":
            try:
                membership = teams.invitation_accept(token=token, user=user)  # type: ignore[arg-type]
            except teams.InvitationUnusable as exc:
                context["unusable"] = exc.message
                return TemplateResponse(
                    request, "accounts/team_invitation.html", context, status=409
                )
            messages.success(
                request,
                f"Welcome to “{membership.team.name}”: "
                f"you are its {membership.get_role_display()}.",
            )
            return redirect("accounts:team_detail", team_id=membership.team_id)
        context["wrong_person"] = user.email.lower() != invitation.email
        return TemplateResponse(request, "accounts/team_invitation.html", context)
    context["has_account"] = User.objects.filter(email__iexact=invitation.email).exists()
    context["login_url"] = f"{reverse('accounts:login')}?next={request.path}"
    form = SignUpForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and not context["has_account"] and form.is_valid():
        try:
            new_user, membership = teams.invitation_sign_up(
                token=token,
                full_name=form.cleaned_data["full_name"],
                password=form.cleaned_data["password"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        except teams.InvitationUnusable as exc:
            context["unusable"] = exc.message
            return TemplateResponse(request, "accounts/team_invitation.html", context, status=409)
        else:
            login(request, new_user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome to “{membership.team.name}”.")
            return redirect("accounts:team_detail", team_id=membership.team_id)
    context["form"] = form
    status = UNPROCESSABLE if request.method == "POST" else 200
    return TemplateResponse(request, "accounts/team_invitation.html", context, status=status)
