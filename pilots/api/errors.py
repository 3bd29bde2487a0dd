"""The 412 body of the plans API: which section changed, and who saved it."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from accounts.api.serializers import UserOutputSerializer
from core.api import ErrorOutputSerializer


class PreconditionFailedOutputSerializer(ErrorOutputSerializer):
    section = serializers.CharField(help_text="The section someone else changed.")
    current_version = serializers.IntegerField(
        help_text="The version saved now: read the section again, reapply your change, and send "
        "this version in If-Match."
    )
    updated_by = UserOutputSerializer(allow_null=True, help_text="Who saved it.")
    updated_at = serializers.DateTimeField()


PRECONDITION_FAILED = OpenApiResponse(
    PreconditionFailedOutputSerializer,
    description="If-Match names a version that is no longer current: someone else saved first. "
    "Nothing was saved.",
)
