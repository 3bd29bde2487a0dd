"""The REST API's shared parts: the /api/v1/ root, the one exception handler and the error
answers Django gives under /api/ (the shapes of the error bodies, for the schema, are in
``core.api``)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse
from django.views import defaults
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.api.serializers import UserOutputSerializer
from accounts.ui import toast
from core.constraints import constraint_place_by_name
from core.exceptions import ServiceError
from core.problems import (
    EDIT_CONFLICT,
    INVALID_INPUT,
    PLAN_READ_ONLY,
    PROBLEM_JSON,
    invalid_input_detail,
    problem,
    problem_json_response,
    problem_response,
)
from pilots.editable import PlanReadOnly
from pilots.services import SectionConflict


def _validation_detail(exc: DjangoValidationError) -> dict[str, Any]:
    """A model/service ValidationError as ``{field: [reasons]}``, like DRF's own 400 errors."""
    if not hasattr(exc, "error_dict"):
        return {"non_field_errors": list(exc.messages)}
    detail = {}
    for field, errors in exc.error_dict.items():
        key = "non_field_errors" if field == NON_FIELD_ERRORS else field
        detail[key] = [message for error in errors for message in error.messages]
    return detail


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every error as problem details (``core.problems``), rendered as JSON whatever the view
    renders otherwise (the schema's YAML, Swagger's HTML page, the browsable API)."""
    response = _problem(exc, context)
    request = context.get("request")
    if response is not None and request is not None:
        # DRF renders the answer with the renderer negotiated for the request (finalize_response).
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = PROBLEM_JSON
    return response


def _problem(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Service errors mapped to 400 invalid, 403, 404, 409, 412, 428; DRF's own (401, 403, 404,
    405, 406, 415, 429…) reshaped."""
    if isinstance(exc, DjangoValidationError):
        return _invalid(_validation_detail(exc))
    if isinstance(exc, PlanReadOnly):  # a Decided or Closed plan: say which state refused it
        return problem_response(403, exc.message, PLAN_READ_ONLY, plan_status=exc.status)
    if isinstance(exc, SectionConflict):
        return problem_response(exc.status_code, exc.message, EDIT_CONFLICT, **_conflict(exc))
    if isinstance(exc, ServiceError):
        return problem_response(exc.status_code, exc.message)
    if isinstance(exc, IntegrityError):
        # A database rule that a write reached without full_clean: still said on its field.
        diag = getattr(exc.__cause__, "diag", None)
        place = constraint_place_by_name(getattr(diag, "constraint_name", None))
        if place is not None:
            field, message = place
            return _invalid({field: [message]})
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # an unhandled error: Django's 500 page, JSON under /api/ (below)
    if isinstance(exc, ValidationError):
        errors = (
            response.data
            if isinstance(response.data, dict)
            else {"non_field_errors": response.data}
        )
        response.data = problem(400, invalid_input_detail(errors), INVALID_INPUT, errors=errors)
    else:
        data = response.data
        detail = data.get("detail", "") if isinstance(data, dict) else " ".join(map(str, data))
        response.data = problem(response.status_code, str(detail))
    response.content_type = PROBLEM_JSON
    return response


def _invalid(errors: dict[str, Any]) -> Response:
    return problem_response(400, invalid_input_detail(errors), INVALID_INPUT, errors=errors)


def _conflict(exc: SectionConflict) -> dict[str, Any]:
    """What the client needs to recover: which version is saved now, and who saved it."""
    current = exc.current
    return {
        "section": exc.section,
        "current_version": current.version,
        "updated_by": UserOutputSerializer(current.updated_by).data if current.updated_by else None,
        "updated_at": serializers.DateTimeField().to_representation(current.updated_at),
    }


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
# DRF, an unhandled exception), so they are mapped here to the API's shape: problem details.


def _api_or_page(request: HttpRequest, status_code: int, detail: str) -> HttpResponse | None:
    if request.path.startswith("/api/"):
        return problem_json_response(status_code, detail)
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
