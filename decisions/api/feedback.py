"""The public feedback link over the API, for in-product widgets (docs/feedback.md).

``POST feedback/{token}``: no log-in and no CSRF token; the link's token is the credential. The
body ``{"csat": 1–5, "nps": 0–10, "comment": "…", "contact": "…"}`` (each optional, at least a
score or a comment) goes through the same service as the public page
(``decisions.services.feedback.feedback_submit``): 201 stored (and counted in the CSAT / NPS
metrics), 400 naming the field, 404 unknown link, 410 revoked link or plan not running, 429 with
``Retry-After`` when the address or the link sent too many.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.throttle import client_address
from backlog.models import FEEDBACK_COMMENT_MAX, FEEDBACK_CONTACT_MAX
from core.api import INVALID, NOT_FOUND, ErrorOutputSerializer
from core.problems import problem_response
from decisions.services.feedback import (
    FeedbackLinkClosed,
    FeedbackLinkUnknown,
    FeedbackRateLimited,
    feedback_rate_check,
    feedback_submit,
)

TAGS = ["feedback"]


class FeedbackInputSerializer(serializers.Serializer):
    """The body's shape, for the schema; the rules (and their words) are the service's."""

    csat = serializers.IntegerField(
        min_value=1, max_value=5, required=False, allow_null=True, help_text="CSAT, 1 to 5."
    )
    nps = serializers.IntegerField(
        min_value=0, max_value=10, required=False, allow_null=True, help_text="NPS, 0 to 10."
    )
    comment = serializers.CharField(
        max_length=FEEDBACK_COMMENT_MAX, required=False, allow_blank=True
    )
    contact = serializers.CharField(
        max_length=FEEDBACK_CONTACT_MAX,
        required=False,
        allow_blank=True,
        help_text="An e-mail address or anything else the team may reach the respondent by.",
    )


class FeedbackReceivedOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    csat = serializers.IntegerField(allow_null=True)
    nps = serializers.IntegerField(allow_null=True)


@extend_schema(
    tags=TAGS,
    operation_id="feedback_submit",
    summary="Send feedback through a plan's public feedback link",
    description="No log-in: the link's token is the credential. At least one of `csat`, `nps` "
    "or `comment`. The scores count in the plan's CSAT and NPS metrics at once.",
    auth=[],
    request=FeedbackInputSerializer,
    responses={
        201: FeedbackReceivedOutputSerializer,
        400: INVALID,
        404: NOT_FOUND,
        410: OpenApiResponse(
            ErrorOutputSerializer,
            description="The link was revoked, or the pilot is not running: nothing was stored.",
        ),
        429: OpenApiResponse(
            ErrorOutputSerializer,
            description="Too many answers from this address or through this link; "
            "`Retry-After` says how many seconds to wait.",
        ),
    },
)
@api_view(["POST"])
@authentication_classes([])
@permission_classes([AllowAny])
def feedback_submit_api(request: Request, token: str) -> Response:
    try:
        feedback_rate_check(token=token, address=client_address(request))
    except FeedbackRateLimited as error:
        return problem_response(429, error.message, headers={"Retry-After": str(error.retry_after)})
    if not isinstance(request.data, dict):
        raise ValidationError(
            {"__all__": "Send a JSON object with csat, nps, comment and/or contact."}
        )
    try:
        feedback = feedback_submit(token=token, values=request.data)
    except (FeedbackLinkUnknown, FeedbackLinkClosed) as error:
        return problem_response(error.status_code, error.message)
    return Response(FeedbackReceivedOutputSerializer(feedback).data, status=status.HTTP_201_CREATED)


urlpatterns = [path("feedback/<str:token>", feedback_submit_api, name="feedback-submit")]
