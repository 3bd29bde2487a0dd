"""The REST API's shared parts: the /api/v1/ root, the one exception handler and the error
answers Django gives under /api/ (the shapes of the error bodies, for the schema, are in
``core.api``)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.api.serializers import UserOutputSerializer
from accounts.ui import toast
from core.constraints import constraint_place_by_name
from core.exceptions import ServiceError
from pilots.editable import PlanReadOnly
from pilots.services import SectionConflict


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
    if isinstance(exc, PlanReadOnly):  # a Decided or Closed plan: say which state refused it
        return Response(
            {"detail": exc.message, "status": exc.status}, status=status.HTTP_403_FORBIDDEN
        )
    if isinstance(exc, ServiceError):
        return Response(_service_error_body(exc), status=exc.status_code)
    if isinstance(exc, IntegrityError):
        # A database rule that a write reached without full_clean: still said on its field.
        diag = getattr(exc.__cause__, "diag", None)
        place = constraint_place_by_name(getattr(diag, "constraint_name", None))
        if place is not None:
            field, message = place
            return Response({field: [message]}, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)


def _service_error_body(exc: ServiceError) -> dict[str, Any]:
    body: dict[str, Any] = {"detail": exc.message}
    if isinstance(exc, SectionConflict):
        # What the client needs to recover: which version is saved now, and who saved it.
        current = exc.current
        body |= {
            "section": exc.section,
            "current_version": current.version,
            "updated_by": UserOutputSerializer(current.updated_by).data
            if current.updated_by
            else None,
            "updated_at": serializers.DateTimeField().to_representation(current.updated_at),
        }
    return body


@extend_schema(operation_id="api_root", responses={200: dict})
@api_view(["GET"])
def api_root(request: Request) -> Response:
    """The API's entry point: links to every collection and to the schema."""
    return Response(
        {
            "me": reverse("api:me", request=request),
            "teams": reverse("api:team-list", request=request),
            "plans": reverse("api:plan-list", request=request),
            "schema": reverse("api-schema", request=request),
            "docs": reverse("api-docs", request=request),
        }
    )


# --- error pages: JSON under /api/, the HTML pages elsewhere ------------------------------------
# Django answers these itself (an unknown URL such as /api/v1/plans/abc, a CSRF failure outside
# DRF, an unhandled exception), so they are mapped here to the API's shape: ``{"detail": …}``.


def _api_or_page(request: HttpRequest, status_code: int, detail: str) -> HttpResponse | None:
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": detail}, status=status_code)
    return None


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    answer = _api_or_page(request, 400, "Bad request.")
    return answer or defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    answer = _api_or_page(request, 403, "You do not have permission to do this.")
    if answer is not None:
        return answer
    response = defaults.permission_denied(request, exception)
    if request.headers.get("HX-Request") and isinstance(exception, PlanReadOnly):
        # htmx swaps no 403: the page says why in a toast instead of the generic refusal.
        toast(response, exception.message, level="error")
    return response


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    answer = _api_or_page(request, 404, "Not found.")
    return answer or defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    answer = _api_or_page(request, 500, "Server error: the problem was logged.")
    return answer or defaults.server_error(request)
