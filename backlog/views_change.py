"""Change control pages: create a backlog item from something in a pilot, re-prioritise an item
because of it, and the plan's change-control log; plus the reference autocomplete the plan's
scope uses.

Higher layers (the checks page, the alerts, the decision page, the post-pilot review) link here
by URL name with the source in the query: ``?source=criterion&source_id=12``. Every write goes
through ``backlog.change_control``; every page works without JavaScript.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.views.decorators.http import require_http_methods

from accounts.http import AuthedHtmxRequest
from accounts.permissions import Perm, allows, team_for_member
from backlog.change_control import (
    backlog_item_raise,
    backlog_item_reprioritise,
    change_control_log,
    raise_initial,
)
from backlog.forms import RaiseForm, ReprioritiseForm
from backlog.models import BacklogItem, ChangeControlEntry
from core.http import UNPROCESSABLE
from pilots.access import plan_for_user
from pilots.models import PilotPlan

LOG_PAGE_SIZE = 50
SUGGESTIONS = 20


def _int(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() and len(raw) < 19 else None


def _team_plan(request: AuthedHtmxRequest, plan_id: int, perm: Perm) -> PilotPlan:
    """The plan, for a member of its team holding ``perm`` (404 for anyone else, invited
    guests included: the backlog is the team's; 403 for a member without the role)."""
    plan = plan_for_user(user=request.user, plan_id=plan_id)
    team_for_member(user=request.user, team_id=plan.team_id, perm=perm)
    return plan


def _form_errors(form: Any, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


@login_required
@require_http_methods(["GET", "POST"])
def backlog_item_raise_view(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    """The pre-filled "create backlog item" form (GET, with ``source``, ``source_id`` and, for a
    review finding, ``text``), and creating it (POST)."""
    plan = _team_plan(request, plan_id, Perm.BACKLOG_EDIT)
    status = 200
    if request.method == "POST":
        form = RaiseForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                item = backlog_item_raise(
                    team_id=plan.team_id,
                    user=request.user,
                    plan_id=plan.pk,
                    source=data["source"],
                    source_id=data["source_id"],
                    finding_text=data["finding_text"],
                    reason=data["reason"],
                    title=data["title"],
                    kind=data["kind"],
                    severity=data["severity"],
                    description=data["description"],
                    estimate=data["estimate"],
                    at_top=data["at_top"],
                )
            except ValidationError as error:
                _form_errors(form, error)
        if not form.errors:
            messages.success(request, f"Created {item.reference} and logged it.")
            return redirect("backlog:change_control", plan_id=plan.pk)
        status = UNPROCESSABLE
    else:
        try:
            initial = raise_initial(
                plan=plan,
                source=request.GET.get("source", ""),
                source_id=_int(request.GET.get("source_id")),
                text=request.GET.get("text", "")[:5000],
            )
        except ValidationError as error:
            return HttpResponse(" ".join(error.messages), status=400, content_type="text/plain")
        form = RaiseForm(initial=initial)
    context = {"plan": plan, "form": form, "source": form["source"].value()}
    return TemplateResponse(request, "backlog/raise.html", context, status=status)


def _reference_item(team_id: int, reference: str) -> BacklogItem | None:
    return BacklogItem.objects.filter(team_id=team_id, reference=reference.strip()).first()


@login_required
@require_http_methods(["GET", "POST"])
def backlog_item_reprioritise_view(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    """Move an existing item because of the pilot, with a reason (the Product Owner)."""
    plan = _team_plan(request, plan_id, Perm.BACKLOG_ORDER)
    status = 200
    if request.method == "POST":
        form = ReprioritiseForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            item = _reference_item(plan.team_id, data["reference"])
            above = None
            if item is None:
                form.add_error("reference", f"No item “{data['reference']}” in the backlog.")
            if data["to"] == ReprioritiseForm.ABOVE:
                above = _reference_item(plan.team_id, data["above"])
                if above is None:
                    form.add_error("above", "Name the item it goes above, by its reference.")
            if not form.errors:
                assert item is not None
                try:
                    moved = backlog_item_reprioritise(
                        team_id=plan.team_id,
                        user=request.user,
                        plan_id=plan.pk,
                        item_id=item.pk,
                        reason=data["reason"],
                        source=data["source"],
                        source_id=data["source_id"],
                        to_top=data["to"] == ReprioritiseForm.TOP,
                        before_id=above.pk if above is not None else None,
                    )
                except ValidationError as error:
                    _form_errors(form, error)
        if not form.errors:
            messages.success(request, f"Moved {moved.reference} to {moved.position} and logged it.")
            return redirect("backlog:change_control", plan_id=plan.pk)
        status = UNPROCESSABLE
    else:
        form = ReprioritiseForm(
            initial={
                "source": request.GET.get("source", ""),
                "source_id": _int(request.GET.get("source_id")),
                "reference": request.GET.get("reference", "")[:30],
                "to": ReprioritiseForm.TOP,
            }
        )
    context = {"plan": plan, "form": form}
    return TemplateResponse(request, "backlog/reprioritise.html", context, status=status)


@login_required
@require_http_methods(["GET"])
def change_control_page(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    """The plan's change-control log: every item created or re-prioritised because of the
    pilot, who, when, why, and the item's status now. Everyone who reads the plan."""
    plan = plan_for_user(user=request.user, plan_id=plan_id)
    page = Paginator(change_control_log(plan_id=plan.pk), LOG_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    role = plan.viewer_role  # type: ignore[attr-defined]
    member = not plan.viewer_is_guest  # type: ignore[attr-defined]
    context = {
        "plan": plan,
        "page": page,
        "can_raise": member and allows(role, Perm.BACKLOG_EDIT),
        "can_reprioritise": member and allows(role, Perm.BACKLOG_ORDER),
        "Action": ChangeControlEntry.Action,
    }
    return TemplateResponse(request, "backlog/change_control.html", context)


@login_required
@require_http_methods(["GET"])
def backlog_references(request: AuthedHtmxRequest, team_id: int) -> HttpResponse:
    """Up to 20 of the team's items whose reference or title contains ``q`` (or the value of the
    input that asked, ``reference``), as ``<option>`` elements for a ``<datalist>``."""
    team, _role = team_for_member(user=request.user, team_id=team_id)
    q = (request.GET.get("q") or request.GET.get("reference") or "").strip()[:50]
    items = BacklogItem.objects.filter(team=team).order_by("position")
    if q:
        items = items.filter(Q(reference__icontains=q) | Q(title__icontains=q))
    options = list(items.only("reference", "title", "status")[:SUGGESTIONS])
    return TemplateResponse(request, "backlog/_references.html", {"options": options})


urlpatterns = [
    path("plans/<int:plan_id>/backlog/raise", backlog_item_raise_view, name="item_raise"),
    path(
        "plans/<int:plan_id>/backlog/reprioritise",
        backlog_item_reprioritise_view,
        name="item_reprioritise",
    ),
    path("plans/<int:plan_id>/change-control", change_control_page, name="change_control"),
    path("teams/<int:team_id>/backlog/references", backlog_references, name="references"),
]
