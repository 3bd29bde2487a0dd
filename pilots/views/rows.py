"""The rows of a plan's list sections (scope items, segments, criteria, coverage, triggers, steps,
rehearsals, risks), added, edited, reordered and removed inline: one set of views for every kind
in ``services.ROW_KINDS``.

HTMX requests get the list partial (``pilots/rows/list.html#list``) back; plain form posts
redirect to the plan page on success and get the list's own page with the errors otherwise. Every
write carries the section version the person saw: a stale one is refused (409) with who saved,
the fresh rows and the person's typed values still in the form.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, ValidationError
from django.db import models
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods
from django_htmx.http import trigger_client_event

from accounts.http import AuthedHtmxRequest
from accounts.permissions import Perm
from core.http import UNPROCESSABLE
from pilots import services
from pilots.access import can_edit, plan_for_user
from pilots.models import PilotPlan
from pilots.row_forms import row_form
from pilots.selectors import ALL_LISTS, plan_detail_queryset, section_versions_loaded
from pilots.services import RowKind, SectionConflict, row_kind

CONFLICT = 409
MOVES = {"up": -1, "down": +1}


# --- helpers -----------------------------------------------------------------------------------


def _rows(plan: PilotPlan, kind: RowKind) -> list[models.Model]:
    """The kind's rows from a plan loaded with ``plan_detail_queryset`` (no query)."""
    plan_field = cast(models.ForeignKey, kind.model._meta.get_field("plan"))
    accessor = plan_field.remote_field.get_accessor_name()
    assert accessor  # every row model has a reverse accessor on the plan (related_name)
    return list(getattr(plan, accessor).all())


def _loaded_row(plan: PilotPlan, kind: RowKind, row_id: int) -> models.Model:
    for row in _rows(plan, kind):
        if row.pk == row_id:
            return row
    raise Http404(f"No such {kind.label}")


def _fresh(plan: PilotPlan) -> PilotPlan:
    """``plan`` again with every section, after a write (or a refused one) changed them."""
    fresh = plan_detail_queryset().get(pk=plan.pk)
    fresh.viewer_role = plan.viewer_role  # type: ignore[attr-defined]
    return fresh


def _partial(request: AuthedHtmxRequest) -> bool:
    """HTMX swaps a part of the page (a boosted link or form wants the whole page)."""
    return bool(request.htmx) and not request.htmx.boosted


def _expected_version(request: AuthedHtmxRequest) -> int:
    try:
        return int(request.POST["version"])
    except (KeyError, ValueError):
        raise BadRequest("The form lacks the section version; reload the page.") from None


def _render(
    request: AuthedHtmxRequest,
    plan: PilotPlan,
    kind: RowKind,
    *,
    status: int = 200,
    **extra: Any,
) -> TemplateResponse:
    """The list: the partial for HTMX, the list's own page (with the plan's title and a way
    back) for plain requests."""
    context = {
        "plan": plan,
        "kind": kind,
        "rows": _rows(plan, kind),
        "version": section_versions_loaded(plan)[kind.section],
        "can_edit": can_edit(plan),
        # Every row: on the list's own page, and after a write in the list the person works in.
        "expanded": ALL_LISTS,
        **extra,
    }
    template = "pilots/rows/list.html#list" if _partial(request) else "pilots/rows/list.html"
    response = TemplateResponse(request, template, context, status=status)
    # The same URL answers with a partial or a page: caches must keep them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


def _saved(
    request: AuthedHtmxRequest, plan: PilotPlan, kind: RowKind, **extra: Any
) -> HttpResponse:
    if not _partial(request):
        url = reverse("pilots:plan_document", args=[plan.pk])
        return redirect(f"{url}#section-{kind.section}")
    response = _render(request, _fresh(plan), kind, **extra)
    # ``list`` lets the other lists of the same section refresh their version, not this one.
    return trigger_client_event(
        response, "planChanged", {"section": str(kind.section), "list": kind.slug}
    )


def _conflict(
    request: AuthedHtmxRequest,
    plan: PilotPlan,
    kind: RowKind,
    conflict: SectionConflict,
    **extra: Any,
) -> TemplateResponse:
    return _render(request, _fresh(plan), kind, status=CONFLICT, conflict=conflict.message, **extra)


# --- views -------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET"])
def row_list(request: AuthedHtmxRequest, plan_id: int, slug: str) -> HttpResponse:
    kind = row_kind(slug)
    plan = plan_for_user(user=request.user, plan_id=plan_id, queryset=plan_detail_queryset())
    # On the list's own page (no JavaScript) the add form is what the person came for; the plan
    # page asks for it (``?add=1``) when someone unfolds "Add …".
    add_open = not _partial(request) or request.GET.get("add") == "1"
    # On the plan page a list shows its first rows until "Show all" (``?all=1``) is asked for.
    expanded = ALL_LISTS if not _partial(request) or request.GET.get("all") == "1" else ""
    return _render(request, plan, kind, add_open=add_open, expanded=expanded)


@login_required
@require_http_methods(["POST"])
def row_add(request: AuthedHtmxRequest, plan_id: int, slug: str) -> HttpResponse:
    kind = row_kind(slug)
    plan = plan_for_user(user=request.user, plan_id=plan_id, perm=Perm.PLAN_EDIT)
    version = _expected_version(request)
    form = row_form(kind, plan, data=request.POST)
    if form.is_valid():
        try:
            services.row_add(
                plan=plan,
                kind=kind,
                user=request.user,
                expected_version=version,
                values=form.cleaned_data,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        except SectionConflict as conflict:
            return _conflict(request, plan, kind, conflict, add_form=form, add_open=True)
        else:
            return _saved(request, plan, kind, add_form=row_form(kind, plan).focus(), add_open=True)
    return _render(
        request,
        _fresh(plan),
        kind,
        status=UNPROCESSABLE,
        add_form=form.focus(),
        add_version=version,
        add_open=True,
    )


@login_required
@require_http_methods(["GET", "POST"])
def row_edit(request: AuthedHtmxRequest, plan_id: int, slug: str, row_id: int) -> HttpResponse:
    """GET: the row as a form (in place of its table row for HTMX, on the list's page
    otherwise). POST: save it."""
    kind = row_kind(slug)
    if request.method == "GET":
        plan = plan_for_user(
            user=request.user,
            plan_id=plan_id,
            perm=Perm.PLAN_EDIT,
            queryset=plan_detail_queryset(),
        )
        row = _loaded_row(plan, kind, row_id)
        form = row_form(kind, plan, row=row).focus()
        if not _partial(request):
            return _render(request, plan, kind, editing_id=row.pk, edit_form=form)
        context = {
            "plan": plan,
            "kind": kind,
            "row": row,
            "rows": _rows(plan, kind),  # the edit row spans the table's columns
            "form": form,
            "form_version": section_versions_loaded(plan)[kind.section],
        }
        return TemplateResponse(request, "pilots/rows/list.html#edit_row", context)

    plan = plan_for_user(user=request.user, plan_id=plan_id, perm=Perm.PLAN_EDIT)
    row = get_object_or_404(kind.model, plan=plan, pk=row_id)
    version = _expected_version(request)
    form = row_form(kind, plan, data=request.POST, row=row)
    if form.is_valid():
        try:
            services.row_update(
                plan=plan,
                kind=kind,
                row_id=row.pk,
                user=request.user,
                expected_version=version,
                values=form.cleaned_data,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        except SectionConflict as conflict:
            return _conflict(request, plan, kind, conflict, editing_id=row.pk, edit_form=form)
        else:
            return _saved(request, plan, kind)
    return _render(
        request,
        _fresh(plan),
        kind,
        status=UNPROCESSABLE,
        editing_id=row.pk,
        edit_form=form.focus(),
        edit_version=version,
    )


@login_required
@require_http_methods(["POST"])
def row_move(request: AuthedHtmxRequest, plan_id: int, slug: str, row_id: int) -> HttpResponse:
    kind = row_kind(slug)
    if not kind.ordered:
        raise Http404(f"The {kind.label} list has no order to change.")
    plan = plan_for_user(user=request.user, plan_id=plan_id, perm=Perm.PLAN_EDIT)
    version = _expected_version(request)
    offset = MOVES.get(request.POST.get("direction", ""))
    if offset is None:
        raise BadRequest("Move a row up or down.")
    try:
        services.row_move(
            plan=plan,
            kind=kind,
            row_id=row_id,
            user=request.user,
            expected_version=version,
            offset=offset,
        )
    except SectionConflict as conflict:
        return _conflict(request, plan, kind, conflict)
    return _saved(request, plan, kind)


@login_required
@require_http_methods(["GET", "POST"])
def row_remove(request: AuthedHtmxRequest, plan_id: int, slug: str, row_id: int) -> HttpResponse:
    """GET: a confirmation page (without JavaScript; HTMX asks with ``hx-confirm``).
    POST: remove the row."""
    kind = row_kind(slug)
    if request.method == "GET":
        plan = plan_for_user(
            user=request.user,
            plan_id=plan_id,
            perm=Perm.PLAN_EDIT,
            queryset=plan_detail_queryset(),
        )
        row = _loaded_row(plan, kind, row_id)
        context = {
            "plan": plan,
            "kind": kind,
            "row": row,
            "rows": [row],
            "version": section_versions_loaded(plan)[kind.section],
        }
        return TemplateResponse(request, "pilots/rows/remove.html", context)

    plan = plan_for_user(user=request.user, plan_id=plan_id, perm=Perm.PLAN_EDIT)
    version = _expected_version(request)
    try:
        services.row_remove(
            plan=plan, kind=kind, row_id=row_id, user=request.user, expected_version=version
        )
    except SectionConflict as conflict:
        return _conflict(request, plan, kind, conflict)
    return _saved(request, plan, kind)


urlpatterns = [
    path("<int:plan_id>/rows/<slug:slug>/", row_list, name="row_list"),
    path("<int:plan_id>/rows/<slug:slug>/add", row_add, name="row_add"),
    path("<int:plan_id>/rows/<slug:slug>/<int:row_id>/edit", row_edit, name="row_edit"),
    path("<int:plan_id>/rows/<slug:slug>/<int:row_id>/move", row_move, name="row_move"),
    path("<int:plan_id>/rows/<slug:slug>/<int:row_id>/remove", row_remove, name="row_remove"),
]
