"""Reads about the backlog."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.urls import reverse

from backlog.models import BacklogItem, Finding
from core.precompiled import Precompiled
from pilots.models import PilotPlan, ScopeItem

# The backlog's filters: query parameter → (model field, its choices or None for an id).
FILTERS = {
    "type": ("kind", BacklogItem.Kind),
    "severity": ("severity", BacklogItem.Severity),
    "status": ("status", BacklogItem.Status),
    "origin": ("origin", BacklogItem.Origin),
    "plan": ("plan_id", None),
}


def finding_count(*, plan_id: int) -> int:
    return Finding.objects.filter(plan_id=plan_id).count()


def backlog_items(
    *, team_id: int, filters: Mapping[str, str] | None = None
) -> QuerySet[BacklogItem]:
    """The team's items in priority order, narrowed by ``filters`` (each may name several values,
    comma-separated: ``status=new,ready``) and ``q`` (reference or title contains). An unknown
    value is a 400 naming the filter, never an empty list that looks like "no items"."""
    items = BacklogItem.objects.filter(team_id=team_id).order_by("position")
    filters = filters or {}
    errors: dict[str, str] = {}
    for name, (field, choices) in FILTERS.items():
        raw = (filters.get(name) or "").strip()
        if not raw:
            continue
        values = [v.strip() for v in raw.split(",") if v.strip()]
        if choices is None:
            if not all(v.isdigit() for v in values):
                errors[name] = f"“{raw}” is not a list of ids."
                continue
            items = items.filter(**{f"{field}__in": [int(v) for v in values]})
            continue
        unknown = [v for v in values if v not in choices.values]  # type: ignore[attr-defined]
        if unknown:
            allowed = ", ".join(choices.values)  # type: ignore[attr-defined]
            errors[name] = f"Unknown {name} “{unknown[0]}”: use {allowed}."
            continue
        items = items.filter(**{f"{field}__in": values})
    if errors:
        raise ValidationError(errors)
    q = (filters.get("q") or "").strip()
    if q:
        items = items.filter(Q(reference__icontains=q) | Q(title__icontains=q))
    return items


def _scope_item_statuses(*, team_id: int, plan_id: int) -> QuerySet[Any]:
    scope = ScopeItem.objects.filter(plan_id=plan_id).exclude(reference="").values("reference")
    return BacklogItem.objects.filter(team_id=team_id, reference__in=scope).values_list(
        "reference", "status"
    )


# Compiled once per process (core.precompiled): the plan page asks it on every view.
_SCOPE_ITEM_STATUSES = Precompiled(_scope_item_statuses)


def scope_item_statuses(plan: PilotPlan) -> dict[str, str]:
    """``{reference: status label}`` of the team's backlog items the plan's scope names (one
    query: a join on the team and the reference, served by ``backlog_item_reference_unique``)."""
    rows = _SCOPE_ITEM_STATUSES.run(team_id=plan.team_id, plan_id=plan.pk)
    labels = dict(BacklogItem.Status.choices)
    return {reference: str(labels[status]) for reference, status in rows}


def references_url(plan: PilotPlan) -> str:
    """The reference autocomplete of the plan's team (``backlog.views_change``)."""
    return reverse("backlog:references", args=[plan.team_id])
