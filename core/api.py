"""The shapes of the REST API's error bodies, for the OpenAPI schema of every app's endpoints."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers


class ErrorOutputSerializer(serializers.Serializer):
    detail = serializers.CharField()


INVALID = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="Invalid input, nothing saved: `{field: [reasons]}`; reasons that concern no "
    "single field are under `non_field_errors`.",
    examples=[
        OpenApiExample(
            "invalid", value={"threshold": ["A valid number is required."]}, status_codes=[400]
        )
    ],
)
FORBIDDEN = OpenApiResponse(
    ErrorOutputSerializer,
    description="Not logged in, CSRF header missing, or your role may not do this.",
)
NOT_FOUND = OpenApiResponse(
    ErrorOutputSerializer,
    description="No such object, or one you may not see (another team's).",
)
PRECONDITION_REQUIRED = OpenApiResponse(
    ErrorOutputSerializer,
    description="The change had no If-Match header (or `*`), so it could overwrite someone "
    "else's work unseen. Nothing was saved.",
)
