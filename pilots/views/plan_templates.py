"""A team's template library (``/teams/<id>/templates``): the built-in example and the team's own
plans saved as templates. Every member reads it; the team's Product Owner or Scrum Master
(``TEMPLATES_MANAGE``) saves a plan as a template and deletes templates (after a confirmation:
``hx-confirm``, or a confirmation page without JavaScript). "New plan" offers them
(``pilots.views.plans``). Non-members → 404, other members → 403 on every write.
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
from django.urls import path
from django.views.decorators.http import require_http_methods
from django_htmx.http import trigger_client_event

from accounts.http import AuthedHtmxRequest
from accounts.models import Team
from accounts.permissions import Perm, allows, team_for_member
from core.http import UNPROCESSABLE
from pilots.models import PilotPlan, PlanTemplate
from pilots.services.templates import plan_template_delete, plan_template_save, templates_of_teams

EVENT = "templatesChanged"


class TemplateSaveForm(forms.Form):
    plan = forms.TypedChoiceField(label="Plan", coerce=int)
    name = forms.CharField(
        label="Template name", max_length=200, help_text="e.g. “Checkout feature pilot, 2 weeks”."
    )

    def __init__(self, *args: Any, plans: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["plan"].choices = plans  # type: ignore[attr-defined]


def _plans(team: Team) -> list[tuple[int, str]]:
    rows = PilotPlan.objects.filter(team=team).order_by("-updated_at").values_list("pk", "title")
    return list(rows)


def _render(
    request: AuthedHtmxRequest, team: Team, role: str, *, status: int = 200, **extra: Any
) -> TemplateResponse:
    can_manage = allows(role, Perm.TEMPLATES_MANAGE)
    context: dict[str, Any] = {
        "team": team,
        "can_manage": can_manage,
        "templates": list(templates_of_teams(team_ids=[team.pk])),
        **extra,
    }
    if can_manage and "form" not in context:
        plans = _plans(team)
        initial = {"plan": request.GET.get("plan")}
        context["form"] = TemplateSaveForm(plans=plans, initial=initial)
    template = "pilots/team_templates.html"
    if request.htmx:
        template += "#templates"
    return TemplateResponse(request, template, context, status=status)


@login_required
@require_http_methods(["GET"])
def team_templates(request: AuthedHtmxRequest, team_id: int) -> HttpResponse:
    team, role = team_for_member(user=request.user, team_id=team_id)
    return _render(request, team, role)


@login_required
@require_http_methods(["POST"])
def team_template_save(request: AuthedHtmxRequest, team_id: int) -> HttpResponse:
    team, role = team_for_member(user=request.user, team_id=team_id, perm=Perm.TEMPLATES_MANAGE)
    form = TemplateSaveForm(request.POST, plans=_plans(team))
    if form.is_valid():
        plan = PilotPlan.objects.get(team=team, pk=form.cleaned_data["plan"])
        try:
            template = plan_template_save(
                plan=plan, by=request.user, name=form.cleaned_data["name"]
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            message = f"“{plan.title}” saved as the template “{template.name}”."
            if not request.htmx:
                messages.success(request, message)
                return redirect("pilots:team_templates", team_id=team.pk)
            response = _render(request, team, role, done_message=message)
            return trigger_client_event(response, EVENT, {"team": team.pk})
    return _render(request, team, role, status=UNPROCESSABLE, form=form)


@login_required
@require_http_methods(["GET", "POST"])
def team_template_delete(
    request: AuthedHtmxRequest, team_id: int, template_id: int
) -> HttpResponse:
    """GET: confirm (the no-JavaScript path). POST: delete."""
    team, role = team_for_member(user=request.user, team_id=team_id, perm=Perm.TEMPLATES_MANAGE)
    template = get_object_or_404(PlanTemplate, team=team, pk=template_id)
    if request.method == "GET":
        return TemplateResponse(
            request, "pilots/team_template_delete.html", {"team": team, "template": template}
        )
    plan_template_delete(team=team, template_id=template.pk, by=request.user)
    message = f"Template “{template.name}” deleted. Plans started from it stay as they are."
    if not request.htmx:
        messages.success(request, message)
        return redirect("pilots:team_templates", team_id=team.pk)
    response = _render(request, team, role, done_message=message)
    return trigger_client_event(response, EVENT, {"team": team.pk})


urlpatterns = [
    path("teams/<int:team_id>/templates", team_templates, name="team_templates"),
    path("teams/<int:team_id>/templates/new", team_template_save, name="team_template_save"),
    path(
        "teams/<int:team_id>/templates/<int:template_id>/delete",
        team_template_delete,
        name="team_template_delete",
    ),
]
