"""The team backlog page: the prioritised list, filters, inline add, edit, bulk status, drag to
reorder (SortableJS posting the neighbour it landed above), CSV export and import.

Every write goes through ``backlog.services`` (the same rules and words as the API). With HTMX
the list re-renders in place; without JavaScript each form posts and redirects back, and the
Product Owner moves items with "To top" / "To bottom" buttons.
"""

from __future__ import annotations

import copy
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods

from accounts.http import AuthedHtmxRequest
from accounts.models import Team
from accounts.permissions import Perm, allows, team_for_member
from backlog import selectors
from backlog.exchange import backlog_csv, backlog_csv_import
from backlog.forms import BulkStatusForm, EditForm, FilterForm, ImportForm, ItemForm
from backlog.models import BacklogItem
from backlog.services import (
    ItemConflict,
    backlog_item_create,
    backlog_item_delete,
    backlog_item_move,
    backlog_item_update,
    backlog_items_status_set,
)
from core.csvfile import upload_text
from core.http import UNPROCESSABLE
from pilots.models import PilotPlan

PAGE_SIZE = 50
FIELDS = ("title", "kind", "severity", "status", "estimate", "reference", "description")


def _query(request: AuthedHtmxRequest) -> str:
    """The list's filters, to keep on every link and redirect."""
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def _back(team: Team, request: AuthedHtmxRequest) -> HttpResponse:
    query = request.POST.get("return_query", "")
    url = reverse("backlog:backlog", args=[team.pk])
    return redirect(f"{url}?{query}" if query else url)


def _render(
    request: AuthedHtmxRequest,
    team: Team,
    role: str,
    *,
    form: ItemForm | None = None,
    errors: list[str] | None = None,
    status: int = 200,
) -> TemplateResponse:
    plans = list(
        PilotPlan.objects.filter(team=team).order_by("-created_at").values_list("pk", "title")
    )
    filters = FilterForm(request.GET or None, plans=plans)
    try:
        items = selectors.backlog_items(team_id=team.pk, filters=request.GET).select_related("plan")
    except ValidationError as error:
        items = BacklogItem.objects.none()
        errors = [*(errors or []), *error.messages]
    page = Paginator(
        items.only(
            "id",
            "reference",
            "title",
            "kind",
            "severity",
            "status",
            "estimate",
            "position",
            "origin",
            "plan__title",
        ),
        PAGE_SIZE,
    ).get_page(request.GET.get("page"))
    following = None
    if page.has_next():
        following = (
            items.filter(position__gt=page.object_list[len(page.object_list) - 1].position)
            .values_list("pk", flat=True)
            .first()
        )
    can_edit = allows(role, Perm.BACKLOG_EDIT)
    context: dict[str, Any] = {
        "team": team,
        "page": page,
        "total": BacklogItem.objects.filter(team=team).count(),
        "filters": filters,
        "filtered": any(request.GET.get(name) for name in [*selectors.FILTERS, "q"]),
        "query": _query(request),
        "form": form or ItemForm(),
        "errors": errors or [],
        "can_edit": can_edit,
        "can_order": allows(role, Perm.BACKLOG_ORDER),
        "statuses": BacklogItem.Status.choices,
        "following": following,
        "import_form": ImportForm(),
    }
    template = "backlog/backlog.html"
    if request.htmx and request.htmx.target == "backlog-list":
        template += "#list"
    return TemplateResponse(request, template, context, status=status)


@login_required
@require_http_methods(["GET"])
def backlog_page(request: AuthedHtmxRequest, team_id: int) -> HttpResponse:
    team, role = team_for_member(user=request.user, team_id=team_id)
    return _render(request, team, role)


@login_required
@require_http_methods(["POST"])
def backlog_item_new(request: AuthedHtmxRequest, team_id: int) -> HttpResponse:
    team, role = team_for_member(user=request.user, team_id=team_id, perm=Perm.BACKLOG_EDIT)
    form = ItemForm(request.POST)
    if form.is_valid():
        values = {name: form.cleaned_data[name] for name in FIELDS}
        try:
            item = backlog_item_create(
                team_id=team.pk,
                user=request.user,
                at_top=bool(request.POST.get("at_top")),
                **values,
            )
        except ValidationError as error:
            form.add_error(None, error)
    if form.errors:
        return _render(request, team, role, form=form, status=UNPROCESSABLE)
    messages.success(request, f"Added {item.reference}.")
    if request.htmx:
        return _render(request, team, role)
    return _back(team, request)


def _item(team: Team, item_id: int) -> BacklogItem:
    item = BacklogItem.objects.filter(team=team, pk=item_id).first()
    if item is None:
        raise Http404("No such backlog item")
    return item


@login_required
@require_http_methods(["GET", "POST"])
def backlog_item_edit(request: AuthedHtmxRequest, team_id: int, item_id: int) -> HttpResponse:
    writing = request.method == "POST"
    team, role = team_for_member(
        user=request.user, team_id=team_id, perm=Perm.BACKLOG_EDIT if writing else None
    )
    item = _item(team, item_id)
    can_edit = allows(role, Perm.BACKLOG_EDIT)
    status = 200
    if writing:
        # A copy: the form writes the posted values into its instance, and the page's heading
        # shows the item as saved.
        form = EditForm(request.POST, instance=copy.copy(item))
        if form.is_valid():
            try:
                backlog_item_update(
                    team_id=team.pk,
                    item_id=item.pk,
                    user=request.user,
                    expected_version=form.cleaned_data["version"],
                    values={name: form.cleaned_data[name] for name in FIELDS},
                )
            except ItemConflict as conflict:
                form.add_error(None, conflict.message)
                status = 409
            except ValidationError as error:
                form.add_error(None, error)
        if not form.errors:
            messages.success(request, f"Saved {item.reference}.")
            return _back(team, request)
        status = status if status == 409 else UNPROCESSABLE
    else:
        form = EditForm(instance=item, initial={"version": item.version})
    if not can_edit:
        for field in form.fields.values():
            field.disabled = True
    context = {
        "team": team,
        "item": item,
        # The cohort feedback the item was made from (backlog.services_feedback), if any.
        "feedback": list(item.feedback.all()[:5]),
        "form": form,
        "can_edit": can_edit,
        "return_query": request.GET.urlencode() or request.POST.get("return_query", ""),
    }
    return TemplateResponse(request, "backlog/item_edit.html", context, status=status)


@login_required
@require_http_methods(["POST"])
def backlog_item_remove(request: AuthedHtmxRequest, team_id: int, item_id: int) -> HttpResponse:
    team, role = team_for_member(user=request.user, team_id=team_id, perm=Perm.BACKLOG_EDIT)
    item = _item(team, item_id)
    backlog_item_delete(team_id=team.pk, item_id=item.pk, user=request.user)
    messages.success(request, f"Deleted {item.reference}.")
    if request.htmx:
        return _render(request, team, role)
    return _back(team, request)


@login_required
@require_http_methods(["POST"])
def backlog_item_reorder(request: AuthedHtmxRequest, team_id: int, item_id: int) -> HttpResponse:
    """Drop an item above ``before`` (an item id), or at the bottom when it is empty."""
    team, role = team_for_member(user=request.user, team_id=team_id, perm=Perm.BACKLOG_ORDER)
    item = _item(team, item_id)
    raw = request.POST.get("before", "")
    if raw == "top":
        first = BacklogItem.objects.filter(team=team).order_by("position").first()
        before = first.pk if first else None
    else:
        before = _item(team, int(raw)).pk if raw.isdigit() else None
    backlog_item_move(team_id=team.pk, item_id=item.pk, user=request.user, before_id=before)
    if request.htmx:
        return _render(request, team, role)
    return _back(team, request)


@login_required
@require_http_methods(["POST"])
def backlog_bulk_status(request: AuthedHtmxRequest, team_id: int) -> HttpResponse:
    team, role = team_for_member(user=request.user, team_id=team_id, perm=Perm.BACKLOG_EDIT)
    form = BulkStatusForm(request.POST)
    errors: list[str] = []
    if form.is_valid():
        try:
            changed = backlog_items_status_set(
                team_id=team.pk,
                item_ids=form.cleaned_data["items"],
                user=request.user,
                status=form.cleaned_data["status"],
            )
            label = BacklogItem.Status(form.cleaned_data["status"]).label
            messages.success(
                request, f"{changed} item{'s' if changed != 1 else ''} set to {label}."
            )
        except ValidationError as error:
            errors = error.messages
    else:
        errors = [m for messages_ in form.errors.values() for m in messages_]
    if errors:
        return _render(request, team, role, errors=errors, status=UNPROCESSABLE)
    if request.htmx:
        return _render(request, team, role)
    return _back(team, request)


@login_required
@require_http_methods(["GET"])
def backlog_export(request: AuthedHtmxRequest, team_id: int) -> HttpResponse:
    team, _role = team_for_member(user=request.user, team_id=team_id)
    try:
        items = selectors.backlog_items(team_id=team.pk, filters=request.GET)
    except ValidationError as error:
        return HttpResponse(" ".join(error.messages), status=400, content_type="text/plain")
    response = HttpResponse(backlog_csv(items), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="backlog-{team.slug}.csv"'
    return response


@login_required
@require_http_methods(["POST"])
def backlog_import(request: AuthedHtmxRequest, team_id: int) -> HttpResponse:
    team, role = team_for_member(user=request.user, team_id=team_id, perm=Perm.BACKLOG_EDIT)
    form = ImportForm(request.POST, request.FILES)
    errors: list[str] = []
    if not form.is_valid():
        errors = ["Choose a CSV file to import."]
    else:
        try:
            text = upload_text(form.cleaned_data["file"])
            result = backlog_csv_import(team_id=team.pk, user=request.user, text=text)
        except ValidationError as error:
            errors = error.messages
    if errors:
        return _render(request, team, role, errors=errors, status=UNPROCESSABLE)
    messages.success(
        request,
        f"Imported: {result.created} added, {result.updated} updated, "
        f"{result.unchanged} unchanged.",
    )
    return redirect("backlog:backlog", team_id=team.pk)


T = "teams/<int:team_id>/backlog"
urlpatterns = [
    path(T, backlog_page, name="backlog"),
    path(f"{T}/new", backlog_item_new, name="item_new"),
    path(f"{T}/status", backlog_bulk_status, name="bulk_status"),
    path(f"{T}/export.csv", backlog_export, name="export"),
    path(f"{T}/import", backlog_import, name="import"),
    path(f"{T}/<int:item_id>", backlog_item_edit, name="item_edit"),
    path(f"{T}/<int:item_id>/delete", backlog_item_remove, name="item_delete"),
    path(f"{T}/<int:item_id>/move", backlog_item_reorder, name="item_move"),
]
