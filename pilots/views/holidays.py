"""A team's holiday calendar: the days pilots' business days skip."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.views.decorators.http import require_http_methods
from django_htmx.http import trigger_client_event

from accounts.http import AuthedHtmxRequest
from accounts.models import Team, TeamHoliday
from accounts.permissions import Perm, allows, team_for_member
from core.http import UNPROCESSABLE
from core.validators import validate_sane_date
from pilots.services.holidays import team_holiday_add, team_holiday_remove


class HolidayForm(forms.Form):
    date = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date"}), validators=[validate_sane_date]
    )
    name = forms.CharField(max_length=100, required=False, label="Name (optional)")


def _render(
    request: AuthedHtmxRequest, team: Team, role: str, form: HolidayForm, status: int = 200
) -> TemplateResponse:
    context = {
        "team": team,
        "holidays": TeamHoliday.objects.filter(team=team).order_by("date"),
        "form": form,
        "can_change": allows(role, Perm.HOLIDAYS_MANAGE),
    }
    template = "pilots/team_holidays.html"
    if request.htmx:
        template += "#holidays"
    return TemplateResponse(request, template, context, status=status)


@login_required
@require_http_methods(["GET"])
def team_holidays(request: AuthedHtmxRequest, team_id: int) -> HttpResponse:
    team, role = team_for_member(user=request.user, team_id=team_id)
    return _render(request, team, role, HolidayForm())


@login_required
@require_http_methods(["POST"])
def team_holiday_create(request: AuthedHtmxRequest, team_id: int) -> HttpResponse:
    team, role = team_for_member(user=request.user, team_id=team_id, perm=Perm.HOLIDAYS_MANAGE)
    form = HolidayForm(request.POST)
    if form.is_valid():
        try:
            team_holiday_add(team=team, user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
    if form.errors:
        return _render(request, team, role, form, status=UNPROCESSABLE)
    if not request.htmx:
        return redirect("pilots:team_holidays", team_id=team.pk)
    response = _render(request, team, role, HolidayForm())
    trigger_client_event(response, "holidaysChanged")
    return response


@login_required
@require_http_methods(["POST"])
def team_holiday_delete(request: AuthedHtmxRequest, team_id: int, holiday_id: int) -> HttpResponse:
    team, role = team_for_member(user=request.user, team_id=team_id, perm=Perm.HOLIDAYS_MANAGE)
    form = HolidayForm()
    try:
        team_holiday_remove(team=team, user=request.user, holiday_id=holiday_id)
    except ValidationError as exc:
        form.add_error(None, exc)
        return _render(request, team, role, form, status=UNPROCESSABLE)
    if not request.htmx:
        return redirect("pilots:team_holidays", team_id=team.pk)
    response = _render(request, team, role, form)
    trigger_client_event(response, "holidaysChanged")
    return response


urlpatterns = [
    path("teams/<int:team_id>/holidays", team_holidays, name="team_holidays"),
    path("teams/<int:team_id>/holidays/new", team_holiday_create, name="team_holiday_create"),
    path(
        "teams/<int:team_id>/holidays/<int:holiday_id>/delete",
        team_holiday_delete,
        name="team_holiday_delete",
    ),
]
