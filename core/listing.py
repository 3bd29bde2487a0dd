"""Filtering and ordering for the API's list endpoints (function views), with their schema.

Filters are django-filter ``FilterSet`` classes: the query string is validated like a form, and a
bad value answers 400 naming the parameter (problem details, ``errors``), never a 500 or a silent
"no filter". Ordering is ``?ordering=name,-created_at``: each name one of the endpoint's declared
fields, ``-`` for descending; an unknown name is a 400 on ``ordering``. Pagination stays
``core.pagination`` (``?page=``).
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request


class IdFilter(django_filters.NumberFilter):
    """An object's id: a whole number from 1 (a fraction or a number no id can be is a 400, not
    a database error)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        kwargs.setdefault("decimal_places", 0)
        super().__init__(*args, **kwargs)


_TYPES: list[tuple[type, OpenApiTypes]] = [
    (IdFilter, OpenApiTypes.INT),
    (django_filters.IsoDateTimeFilter, OpenApiTypes.DATETIME),
    (django_filters.DateFilter, OpenApiTypes.DATE),
    (django_filters.BooleanFilter, OpenApiTypes.BOOL),
    (django_filters.NumberFilter, OpenApiTypes.NUMBER),
]


def filtered(
    request: Request, filterset: type[django_filters.FilterSet], queryset: QuerySet
) -> QuerySet:
    """``queryset`` narrowed by the request's query string; 400 on a bad value."""
    bound = filterset(request.query_params, queryset=queryset, request=request)
    if not bound.is_valid():
        raise ValidationError({k: list(v) for k, v in bound.errors.items()})
    # A form lets an empty, repeated or unreadable value pass as "no filter" (a yes/no filter
    # reads "maybe" as nothing); the API says so instead, so a typo never widens a list unseen.
    errors: dict[str, list[str]] = {}
    for name in bound.filters:
        values = request.query_params.getlist(name)
        if not values:
            continue
        if len(values) > 1 or not values[0].strip():
            errors[name] = ["Give one value, or leave the parameter out."]
        elif bound.form.cleaned_data.get(name) in (None, ""):
            errors[name] = [f"“{values[0][:50]}” is not a value this filter knows."]
    if errors:
        raise ValidationError(errors)
    return bound.qs


def ordered(
    request: Request, queryset: QuerySet, *, fields: dict[str, str], default: list[str]
) -> QuerySet:
    """``queryset`` in the order ``?ordering=`` asks for (``fields``: public name → model
    field), else ``default`` (public names too); the primary key last, so pages never overlap."""
    raw = request.query_params.get("ordering", "").strip()
    names = [n.strip() for n in raw.split(",") if n.strip()] or default
    order: list[str] = []
    for name in names:
        field = fields.get(name.removeprefix("-"))
        if field is None:
            choices = ", ".join(sorted(fields))
            raise ValidationError({"ordering": [f"Unknown field “{name}”: order by {choices}."]})
        order.append(f"-{field}" if name.startswith("-") else field)
    return queryset.order_by(*order, "pk")


def filter_parameters(filterset: type[django_filters.FilterSet]) -> list[OpenApiParameter]:
    """The FilterSet's filters as query parameters for the schema."""
    parameters = []
    for name, spec in filterset.base_filters.items():
        kind: Any = OpenApiTypes.STR
        for cls, openapi_type in _TYPES:
            if isinstance(spec, cls):
                kind = openapi_type
                break
        choices = spec.extra.get("choices")
        parameters.append(
            OpenApiParameter(
                name,
                kind,
                required=False,
                description=str(spec.label or spec.extra.get("help_text") or name),
                enum=[value for value, _ in choices] if choices else None,
            )
        )
    return parameters


def ordering_parameter(fields: dict[str, str], default: list[str]) -> OpenApiParameter:
    names = ", ".join(f"`{n}`" for n in sorted(fields))
    return OpenApiParameter(
        "ordering",
        OpenApiTypes.STR,
        required=False,
        description=f"Comma-separated fields, `-` for descending: {names}. "
        f"Default: `{','.join(default)}`.",
    )
