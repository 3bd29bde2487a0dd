"""A plan's feedback triage page (``plans/<id>/feedback``) and its public link.

Team members only (invited guests see no feedback): newest first, 25 a page, filters (noise,
tagged, has a comment, turned into an item, one tag). Writers tag, mark as noise and turn a
feedback into a backlog item in one step; the Product Owner and Scrum Master issue, regenerate
and revoke the link (each after a confirmation page, so it works without JavaScript too).
Contacts are masked for roles without ``feedback.contact_view``. Every write is a service of
``backlog.services_feedback``; with HTMX a row re-renders in place, without it the form posts
and redirects back to the list.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods

from accounts.http import AuthedHtmxRequest
from accounts.permissions import Perm, allows
from accounts.ui import toast
from backlog import selectors_feedback as selectors
from backlog.models import Feedback
from backlog.services_feedback import (
    feedback_link_issue,
    feedback_link_revoke,
    feedback_plan_for_member,
    feedback_to_backlog_item,
    feedback_triage,
)
from core.exceptions import Conflict
from core.http import UNPROCESSABLE
from pilots.models import PilotPlan

PAGE_SIZE = 25
FILTER_CHOICES = [("", "Any"), ("yes", "Yes"), ("no", "No")]


def _query(request: AuthedHtmxRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def _back(plan: PilotPlan, request: AuthedHtmxRequest) -> HttpResponse:
    query = request.POST.get("return_query", "")
    url = reverse("backlog:feedback", args=[plan.pk])
    return redirect(f"{url}?{query}" if query else url)


def _row(feedback: Feedback, role: str) -> dict[str, Any]:
    return {"f": feedback, "contact": selectors.contact_for(role, feedback.contact)}


def _row_response(
    request: AuthedHtmxRequest, plan: PilotPlan, role: str, feedback: Feedback, status: int = 200
) -> TemplateResponse:
    feedback = Feedback.objects.select_related("backlog_item").get(pk=feedback.pk)
    context = {
        "plan": plan,
        "row": _row(feedback, role),
        "can_triage": allows(role, Perm.FEEDBACK_TRIAGE),
        "query": request.POST.get("return_query", ""),
    }
    return TemplateResponse(request, "backlog/feedback.html#row", context, status=status)


@login_required
@require_http_methods(["GET"])
def feedback_page(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    plan, role = feedback_plan_for_member(user=request.user, plan_id=plan_id)
    errors: list[str] = []
    try:
        items = selectors.feedback_list(plan_id=plan.pk, filters=request.GET)
    except ValidationError as error:
        items = Feedback.objects.none()
        errors = [f"{name}: {' '.join(m)}" for name, m in error.message_dict.items()]
    page = Paginator(items.select_related("backlog_item"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    filters = {
        name: {"label": label, "value": request.GET.get(name, "")}
        for name, (label, _q) in selectors.YES_NO_FILTERS.items()
    }
    link = selectors.feedback_link(plan_id=plan.pk)
    context = {
        "plan": plan,
        "page": page,
        "rows": [_row(f, role) for f in page.object_list],
        "filters": filters,
        "filter_choices": FILTER_CHOICES,
        "tag": request.GET.get("tag", ""),
        "filtered": any(request.GET.get(n) for n in [*selectors.YES_NO_FILTERS, "tag"]),
        "query": _query(request),
        "errors": errors,
        "link": link,
        "link_url": request.build_absolute_uri(
            reverse("decisions:feedback_page", args=[link.token])
        )
        if link
        else "",
        "can_triage": allows(role, Perm.FEEDBACK_TRIAGE),
        "can_manage_link": allows(role, Perm.FEEDBACK_LINK_MANAGE),
        "sees_contacts": allows(role, Perm.FEEDBACK_CONTACT_VIEW),
        "running": plan.status == PilotPlan.Status.RUNNING,
    }
    return TemplateResponse(request, "backlog/feedback.html", context)


@login_required
@require_http_methods(["POST"])
def feedback_tags(request: AuthedHtmxRequest, plan_id: int, feedback_id: int) -> HttpResponse:
    plan, role = feedback_plan_for_member(
        user=request.user, plan_id=plan_id, perm=Perm.FEEDBACK_TRIAGE
    )
    try:
        feedback = feedback_triage(
            plan_id=plan.pk,
            feedback_id=feedback_id,
            user=request.user,
            expected_version=None,
            tags=request.POST.get("tags", "")[:2000],
        )
    except ValidationError as error:
        message = " ".join(error.messages)
        if request.htmx:
            return toast(HttpResponse(status=UNPROCESSABLE), message, level="error")
        messages.error(request, message)
        return _back(plan, request)
    if request.htmx:
        return _row_response(request, plan, role, feedback)
    messages.success(request, "Tags saved.")
    return _back(plan, request)


@login_required
@require_http_methods(["POST"])
def feedback_noise(request: AuthedHtmxRequest, plan_id: int, feedback_id: int) -> HttpResponse:
    plan, role = feedback_plan_for_member(
        user=request.user, plan_id=plan_id, perm=Perm.FEEDBACK_TRIAGE
    )
    noise = request.POST.get("noise") == "1"
    feedback = feedback_triage(
        plan_id=plan.pk,
        feedback_id=feedback_id,
        user=request.user,
        expected_version=None,
        noise=noise,
    )
    if request.htmx:
        return _row_response(request, plan, role, feedback)
    messages.success(request, "Marked as noise." if noise else "No longer marked as noise.")
    return _back(plan, request)


@login_required
@require_http_methods(["POST"])
def feedback_item(request: AuthedHtmxRequest, plan_id: int, feedback_id: int) -> HttpResponse:
    """Turn the feedback into a backlog item in one step."""
    plan, role = feedback_plan_for_member(
        user=request.user, plan_id=plan_id, perm=Perm.FEEDBACK_TRIAGE
    )
    try:
        item = feedback_to_backlog_item(plan_id=plan.pk, feedback_id=feedback_id, user=request.user)
    except Conflict as error:
        messages.error(request, error.message)
        return _back(plan, request)
    text = f"Added {item.reference} “{item.title}” to the backlog."
    if request.htmx:
        feedback = Feedback(pk=feedback_id)
        return toast(_row_response(request, plan, role, feedback), text)
    messages.success(request, text)
    return _back(plan, request)


@login_required
@require_http_methods(["GET", "POST"])
def feedback_link_change(request: AuthedHtmxRequest, plan_id: int, action: str) -> HttpResponse:
    """Issue (or regenerate) or revoke the plan's link: GET asks for confirmation, POST does it."""
    plan, _role = feedback_plan_for_member(
        user=request.user, plan_id=plan_id, perm=Perm.FEEDBACK_LINK_MANAGE
    )
    if request.method == "GET":
        link = selectors.feedback_link(plan_id=plan.pk)
        context = {"plan": plan, "action": action, "link": link}
        return TemplateResponse(request, "backlog/feedback_link_confirm.html", context)
    if action == "revoke":
        revoked = feedback_link_revoke(plan_id=plan.pk, user=request.user)
        messages.success(
            request,
            "The feedback link is revoked: it answers “closed” from now on."
            if revoked
            else "There was no live feedback link.",
        )
    else:
        feedback_link_issue(plan_id=plan.pk, user=request.user)
        messages.success(request, "A new feedback link is ready; any earlier link is dead now.")
    return redirect("backlog:feedback", plan_id=plan.pk)


P = "plans/<int:plan_id>/feedback"
urlpatterns = [
    path(P, feedback_page, name="feedback"),
    path(f"{P}/<int:feedback_id>/tags", feedback_tags, name="feedback_tags"),
    path(f"{P}/<int:feedback_id>/noise", feedback_noise, name="feedback_noise"),
    path(f"{P}/<int:feedback_id>/item", feedback_item, name="feedback_item"),
    path(f"{P}/link/issue", feedback_link_change, {"action": "issue"}, name="feedback_link_issue"),
    path(
        f"{P}/link/revoke", feedback_link_change, {"action": "revoke"}, name="feedback_link_revoke"
    ),
]
