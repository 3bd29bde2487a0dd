"""The REST API's shared parts: the /api/v1/ root and the one exception handler."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import exception_handler as drf_exception_handler

from pilotplan.exceptions import ServiceError


def _validation_detail(exc: DjangoValidationError) -> dict[str, list[str]]:
    """A model/service ValidationError as ``{field: [reasons]}``, like DRF's own 400 bodies."""
    if not hasattr(exc, "error_dict"):
        return {"non_field_errors": list(exc.messages)}
    detail = {}
    for field, errors in exc.error_dict.items():
        key = "non_field_errors" if field == NON_FIELD_ERRORS else field
        detail[key] = [message for error in errors for message in error.messages]
    return detail


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map service errors to statuses: 400 invalid, 403, 404, 409, 412, 428; else DRF's default."""
    if isinstance(exc, DjangoValidationError):
        return Response(_validation_detail(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, ServiceError):
        return Response({"detail": exc.message}, status=exc.status_code)
    return drf_exception_handler(exc, context)


@extend_schema(operation_id="api_root", responses={200: dict})
@api_view(["GET"])
def api_root(request: Request) -> Response:
    """The API's entry point: links to every collection and to the schema."""
    return Response(
        {
            "me": reverse("api:me", request=request),
            "teams": reverse("api:team-list", request=request),
            "schema": reverse("api-schema", request=request),
            "docs": reverse("api-docs", request=request),
        }
    )
