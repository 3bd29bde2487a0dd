"""The plan's History tab: its edit sessions in the reader's words, filtered by section and
person, the raw audit record one click away (pilots.history)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.views.decorators.http import require_http_methods

from accounts.http import AuthedHtmxRequest
from pilots.access import plan_for_user
from pilots.history import plan_history, section_choices

SESSIONS_PER_PAGE = 25


@login_required
@require_http_methods(["GET"])
def plan_history_page(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    """``?section=<key>&person=<user id>&page=<n>``; unknown filter values are ignored."""
    plan = plan_for_user(user=request.user, plan_id=plan_id)
    sections = section_choices()
    section = request.GET.get("section", "")
    if section not in dict(sections):
        section = ""
    person_text = request.GET.get("person", "")
    person = int(person_text) if person_text.isdigit() else None
    sessions, people = plan_history(plan=plan, section=section, person=person)
    if person not in dict(people):
        person = None  # plan_history ignored it too: the form shows "Everyone"
    page = Paginator(sessions, SESSIONS_PER_PAGE).get_page(request.GET.get("page"))
    filters = {"section": section, "person": person or ""}
    context = {
        "plan": plan,
        "page": page,
        "sections": sections,
        "people": people,
        "section": section,
        "person": person,
        "query": urlencode({k: v for k, v in filters.items() if v}),
    }
    return TemplateResponse(request, "pilots/history.html", context)


urlpatterns = [
    path("<int:plan_id>/history", plan_history_page, name="plan_history"),
]
