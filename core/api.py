"""The shapes of the REST API's error bodies, for the OpenAPI schema of every app's endpoints.

Every error is problem details (RFC 9457, ``core.problems``): ``ErrorOutputSerializer`` is its
common part, and the bodies with more members extend it. ``core.schema`` adds the statuses every
operation can answer (401, 403, 404, 406, 413, 415, 429, 500) where a view does not list them, and
serves every error as ``application/problem+json``.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema_field
from rest_framework import serializers

from core.problems import INVALID_INPUT, invalid_input_detail, problem


class ErrorOutputSerializer(serializers.Serializer):
    """Problem details (RFC 9457)."""

    type = serializers.CharField(
        help_text="What kind of problem: `about:blank` when the status says it all, else one of "
        "the `urn:pilotplan:problem:…` types (docs/api.md)."
    )
    title = serializers.CharField(help_text="The short, fixed wording of the type.")
    status = serializers.IntegerField(help_text="The HTTP status code.")
    detail = serializers.CharField(help_text="What went wrong this time.")


@extend_schema_field(
    {
        "type": "object",
        # A field's reasons are a list; a list field's are an object by position ("0": […]),
        # a nested field's an object by its own fields.
        "additionalProperties": {"anyOf": [{"type": "array", "items": {}}, {"type": "object"}]},
        "description": "`{field: [reasons]}`; reasons that concern no single field are under "
        "`non_field_errors`. A list or nested field has a list or object of reasons in its place.",
    }
)
class FieldErrorsField(serializers.DictField):
    pass


class InvalidInputOutputSerializer(ErrorOutputSerializer):
    # Absent when the body could not be read at all (not JSON): no field to name.
    errors = FieldErrorsField(required=False)


_INVALID_ERRORS = {"threshold": ["A valid number is required."]}
INVALID = OpenApiResponse(
    InvalidInputOutputSerializer,
    description="Invalid input, nothing saved (type `urn:pilotplan:problem:invalid-input`): "
    "`errors` says `{field: [reasons]}`; reasons that concern no single field are under "
    "`non_field_errors`. Also a body that is not JSON.",
    examples=[
        OpenApiExample(
            "invalid",
            value=problem(
                400,
                invalid_input_detail(_INVALID_ERRORS),
                INVALID_INPUT,
                errors=_INVALID_ERRORS,
            ),
            status_codes=[400],
        )
    ],
)
UNAUTHORIZED = OpenApiResponse(
    ErrorOutputSerializer,
    description="No credentials, or an invalid, expired or revoked API key.",
)
FORBIDDEN = OpenApiResponse(
    ErrorOutputSerializer,
    description="Not logged in, CSRF header missing, or your role may not do this.",
)
NOT_FOUND = OpenApiResponse(
    ErrorOutputSerializer,
    description="No such object, or one you may not see (another team's); also a malformed id.",
)
PRECONDITION_REQUIRED = OpenApiResponse(
    ErrorOutputSerializer,
    description="The change had no If-Match header (or `*`), so it could overwrite someone "
    "else's work unseen. Nothing was saved.",
)
NOT_ACCEPTABLE = OpenApiResponse(
    ErrorOutputSerializer, description="The Accept header asks for something other than JSON."
)
TOO_LARGE = OpenApiResponse(
    ErrorOutputSerializer, description="The request body is larger than the limit."
)
UNSUPPORTED_MEDIA_TYPE = OpenApiResponse(
    ErrorOutputSerializer,
    description="The body is not JSON (send `Content-Type: application/json`).",
)
TOO_MANY_REQUESTS = OpenApiResponse(
    ErrorOutputSerializer,
    description="Too many requests; `Retry-After` says how many seconds to wait.",
)
SERVER_ERROR = OpenApiResponse(
    ErrorOutputSerializer, description="Our failure: the problem was logged."
)
