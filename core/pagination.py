"""Pagination for function-based API views, using the project's DRF paginator."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.settings import api_settings

PAGE_PARAMETER = OpenApiParameter(
    "page", OpenApiTypes.INT, description="Page number, from 1.", required=False
)


class StrictPageNumberPagination(PageNumberPagination):
    """DRF's page-number pagination, but ``?page=`` must be one whole number from 1 (400
    otherwise, naming ``page``); a page past the last is 404, as before."""

    def get_page_number(self, request: Request, paginator: object) -> int:
        values = request.query_params.getlist(self.page_query_param)
        if not values:
            return 1
        if len(values) > 1 or not values[0].isdigit() or int(values[0]) < 1:
            raise ValidationError({"page": ["Give one page number, a whole number from 1."]})
        return int(values[0])


def paginate(
    request: Request,
    queryset: QuerySet,
    serializer_class: type[Serializer],
    context: dict[str, Any] | None = None,
) -> Response:
    paginator = api_settings.DEFAULT_PAGINATION_CLASS()
    page = paginator.paginate_queryset(queryset, request)
    data = serializer_class(page, many=True, context=context or {}).data
    return paginator.get_paginated_response(data)


def paginated(serializer_class: type[Serializer]) -> Serializer:
    """The OpenAPI shape of what ``paginate`` returns: count, next, previous, results."""
    name = serializer_class.__name__.removesuffix("Serializer").removesuffix("Output")
    return inline_serializer(
        name=f"Paginated{name}List",
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer_class(many=True),
        },
    )
